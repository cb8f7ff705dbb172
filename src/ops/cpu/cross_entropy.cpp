// CPU cross entropy, one row per task: lse = m + log(sum exp(z - m)) (fp32 exp, fp64 sum),
// loss = lse - z_target.
#include <cmath>
#include <limits>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void cross_entropy_forward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                           const TensorView& losses, const TensorView& lse, std::int64_t vocab_start) {
  const std::int64_t n = logits.size(0), v = logits.size(1), ld = logits.size(0) > 1 ? logits.stride(0) : v;
  const std::int32_t* tp = static_cast<const std::int32_t*>(targets.raw());
  float* lp = static_cast<float*>(losses.raw());
  float* sp = static_cast<float*>(lse.raw());
  dispatch_float(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* zp = static_cast<const T*>(logits.raw());
    parallel_for(ctx, n, v, [&](std::int64_t r) {
      const T* row = zp + r * ld;
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t j = 0; j < v; ++j) mx = std::max(mx, to_f(row[j]));
      double sum = 0.0;
      for (std::int64_t j = 0; j < v; ++j) sum += std::exp(to_f(row[j]) - mx);  // fp32 exp, fp64 sum
      const float l = mx + static_cast<float>(std::log(sum));
      const std::int64_t t = static_cast<std::int64_t>(tp[r]) - vocab_start;
      const float zt = (t >= 0 && t < v) ? to_f(row[t]) : 0.0f;
      sp[r] = l;
      lp[r] = l - zt;
    });
  });
}

void cross_entropy_backward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                            const TensorView& lse, const TensorView& dlosses, const TensorView& dlogits,
                            std::int64_t vocab_start) {
  const std::int64_t n = logits.size(0), v = logits.size(1);
  const std::int64_t ld = n > 1 ? logits.stride(0) : v, ldd = n > 1 ? dlogits.stride(0) : v;
  const std::int32_t* tp = static_cast<const std::int32_t*>(targets.raw());
  const float* sp = static_cast<const float*>(lse.raw());
  const float* gp = static_cast<const float*>(dlosses.raw());
  dispatch_float(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* zp = static_cast<const T*>(logits.raw());
    dispatch_float(dlogits.dtype(), [&](auto dtag) {
      using D = decltype(dtag);
      D* dp = static_cast<D*>(dlogits.raw());
      parallel_for(ctx, n, v, [&](std::int64_t r) {
        const std::int64_t t = static_cast<std::int64_t>(tp[r]) - vocab_start;
        const float g = gp[r], l = sp[r];
        for (std::int64_t j = 0; j < v; ++j) {
          float p = std::exp(to_f(zp[r * ld + j]) - l);
          if (j == t) p -= 1.0f;
          dp[r * ldd + j] = from_f<D>(p * g);
        }
      });
    });
  });
}

void argmax(const OpContext& ctx, const TensorView& x, const TensorView& out) {
  const std::int64_t n = x.size(0), v = x.size(1), ld = n > 1 ? x.stride(0) : v;
  std::int32_t* op = static_cast<std::int32_t*>(out.raw());
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    parallel_for(ctx, n, v, [&](std::int64_t r) {
      std::int64_t best = 0;
      float best_v = to_f(xp[r * ld]);
      for (std::int64_t j = 1; j < v; ++j) {
        const float val = to_f(xp[r * ld + j]);
        if (val > best_v) {
          best_v = val;
          best = j;
        }
      }
      op[r] = static_cast<std::int32_t>(best);
    });
  });
}

}  // namespace bignlp::ops::cpu
