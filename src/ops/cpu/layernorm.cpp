// CPU LayerNorm. Statistics per row in double (two passes), applied in fp32; the backward computes
// the input gradient per row and the weight/bias gradients per column block, rows in order.
//   xhat = (x - mean) * rstd,  y = xhat * w + b
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * w
// An empty bias (dbias) means a LayerNorm without bias: b = 0 (its gradient is not computed).
#include <cmath>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void layernorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& bias,
                       const TensorView& y, const TensorView& mean, const TensorView& rstd, float eps) {
  const std::int64_t n = x.size(0), c = x.size(1);
  float* mean_out = mean.defined() ? static_cast<float*>(mean.raw()) : nullptr;
  float* rstd_out = rstd.defined() ? static_cast<float*>(rstd.raw()) : nullptr;
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* wp = static_cast<const T*>(weight.raw());
    const T* bp = bias.defined() ? static_cast<const T*>(bias.raw()) : nullptr;
    T* yp = static_cast<T*>(y.raw());
    parallel_for(ctx, n, 4 * c, [&](std::int64_t r) {
      const T* row = xp + r * c;
      double sum = 0.0;
      for (std::int64_t j = 0; j < c; ++j) sum += to_f(row[j]);
      const double mu = sum / static_cast<double>(c);
      double var = 0.0;
      for (std::int64_t j = 0; j < c; ++j) {
        const double d = to_f(row[j]) - mu;
        var += d * d;
      }
      var /= static_cast<double>(c);
      const float m = static_cast<float>(mu);
      const float s = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
      for (std::int64_t j = 0; j < c; ++j) {
        const float b = bp != nullptr ? to_f(bp[j]) : 0.0f;
        yp[r * c + j] = from_f<T>((to_f(row[j]) - m) * s * to_f(wp[j]) + b);
      }
      if (mean_out) mean_out[r] = m;
      if (rstd_out) rstd_out[r] = s;
    });
  });
}

void layernorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& mean,
                        const TensorView& rstd, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dbias, bool accumulate_dx) {
  const std::int64_t n = x.size(0), c = x.size(1);
  const float* mp = static_cast<const float*>(mean.raw());
  const float* sp = static_cast<const float*>(rstd.raw());
  float* dw = static_cast<float*>(dweight.raw());
  float* db = dbias.defined() ? static_cast<float*>(dbias.raw()) : nullptr;
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* wp = static_cast<const T*>(weight.raw());
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    // Column block reductions first: dx may alias dy.
    parallel_chunks(ctx, c, 64, [&](std::int64_t c0, std::int64_t c1) {
      std::vector<float> aw(static_cast<std::size_t>(c1 - c0), 0.0f), ab(aw.size(), 0.0f);
      for (std::int64_t r = 0; r < n; ++r) {
        for (std::int64_t j = c0; j < c1; ++j) {
          const float g = to_f(gp[r * c + j]);
          const float xhat = (to_f(xp[r * c + j]) - mp[r]) * sp[r];
          aw[j - c0] += g * xhat;
          ab[j - c0] += g;
        }
      }
      for (std::int64_t j = c0; j < c1; ++j) {
        dw[j] += aw[j - c0];
        if (db != nullptr) db[j] += ab[j - c0];
      }
    });
    parallel_for(ctx, n, 4 * c, [&](std::int64_t r) {
      double sum_g = 0.0, sum_gx = 0.0;
      for (std::int64_t j = 0; j < c; ++j) {
        const float g = to_f(gp[r * c + j]) * to_f(wp[j]);
        const float xhat = (to_f(xp[r * c + j]) - mp[r]) * sp[r];
        sum_g += g;
        sum_gx += static_cast<double>(g) * xhat;
      }
      const float mean_g = static_cast<float>(sum_g / static_cast<double>(c));
      const float mean_gx = static_cast<float>(sum_gx / static_cast<double>(c));
      for (std::int64_t j = 0; j < c; ++j) {
        const float g = to_f(gp[r * c + j]) * to_f(wp[j]);
        const float xhat = (to_f(xp[r * c + j]) - mp[r]) * sp[r];
        float v = sp[r] * (g - mean_g - xhat * mean_gx);
        if (accumulate_dx) v += to_f(dxp[r * c + j]);
        dxp[r * c + j] = from_f<T>(v);
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
