// CPU RMSNorm. The mean square per row in double, applied in fp32; the backward computes the input
// gradient per row and the weight gradient per column block, rows in order (deterministic).
//   rstd = 1 / sqrt(mean(x^2) + eps),  xhat = x * rstd,  y = xhat * w
//   dx_j = rstd * (g_j - xhat_j * mean(g * xhat)),  g = dy * w
// Derivation: d rstd / d x_j = -rstd^3 x_j / C, so dx_j = rstd g_j - (sum_k g_k x_k) rstd^3 x_j / C,
// which is the line above. Worked example (C = 2, w = 1, eps -> 0): x = (3, 4), rstd = 1/sqrt(12.5),
// dy = (1, 0): dx = rstd * ((1, 0) - (3, 4) * 3 / 25) = rstd * (0.64, -0.48).
#include <cmath>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void rmsnorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& y,
                     const TensorView& rstd, float eps) {
  const std::int64_t n = x.size(0), c = x.size(1);
  float* rstd_out = rstd.defined() ? static_cast<float*>(rstd.raw()) : nullptr;
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* wp = static_cast<const T*>(weight.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_for(ctx, n, 3 * c, [&](std::int64_t r) {
      const T* row = xp + r * c;
      double sum = 0.0;
      for (std::int64_t j = 0; j < c; ++j) {
        const double v = to_f(row[j]);
        sum += v * v;
      }
      const float s = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(c) + static_cast<double>(eps)));
      // Every element is read before it is written: y may alias x.
      for (std::int64_t j = 0; j < c; ++j) yp[r * c + j] = from_f<T>(to_f(row[j]) * s * to_f(wp[j]));
      if (rstd_out) rstd_out[r] = s;
    });
  });
}

void rmsnorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& rstd,
                      const TensorView& dy, const TensorView& dx, const TensorView& dweight, bool accumulate_dx) {
  const std::int64_t n = x.size(0), c = x.size(1);
  const float* sp = static_cast<const float*>(rstd.raw());
  float* dw = static_cast<float*>(dweight.raw());
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* wp = static_cast<const T*>(weight.raw());
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    // Column block reductions first: dx may alias dy.
    parallel_chunks(ctx, c, 64, [&](std::int64_t c0, std::int64_t c1) {
      std::vector<float> aw(static_cast<std::size_t>(c1 - c0), 0.0f);
      for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t j = c0; j < c1; ++j) aw[j - c0] += to_f(gp[r * c + j]) * (to_f(xp[r * c + j]) * sp[r]);
      for (std::int64_t j = c0; j < c1; ++j) dw[j] += aw[j - c0];
    });
    parallel_for(ctx, n, 3 * c, [&](std::int64_t r) {
      double sum_gx = 0.0;
      for (std::int64_t j = 0; j < c; ++j) {
        const float g = to_f(gp[r * c + j]) * to_f(wp[j]);
        sum_gx += static_cast<double>(g) * (to_f(xp[r * c + j]) * sp[r]);
      }
      const float mean_gx = static_cast<float>(sum_gx / static_cast<double>(c));
      for (std::int64_t j = 0; j < c; ++j) {
        const float g = to_f(gp[r * c + j]) * to_f(wp[j]);
        const float xhat = to_f(xp[r * c + j]) * sp[r];
        float v = sp[r] * (g - xhat * mean_gx);
        if (accumulate_dx) v += to_f(dxp[r * c + j]);
        dxp[r * c + j] = from_f<T>(v);
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
