// CPU Adam(W), apex FusedAdam math per element (step k, bias corrections c1 = 1 - b1^k, c2 = 1 - b2^k):
//   g = grad * grad_scale (+ wd * p when not decoupled)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ((m / c1) / (sqrt(v / c2) + eps) + wd * p)   (wd term only when decoupled)
#include <cmath>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void adamw_step(const OpContext& ctx, const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
                const TensorView& exp_avg_sq, const AdamWParams& a, const TensorView& model_param) {
  float* p = static_cast<float*>(param.raw());
  const float* g = static_cast<const float*>(grad.raw());
  float* m = static_cast<float*>(exp_avg.raw());
  float* v = static_cast<float*>(exp_avg_sq.raw());
  const float c1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step)));
  const float c2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step)));
  auto update = [&](std::int64_t i) {
    float gi = g[i] * a.grad_scale;
    if (!a.decoupled_weight_decay) gi += a.weight_decay * p[i];
    m[i] = a.beta1 * m[i] + (1.0f - a.beta1) * gi;
    v[i] = a.beta2 * v[i] + (1.0f - a.beta2) * gi * gi;
    float u = (m[i] / c1) / (std::sqrt(v[i] / c2) + a.eps);
    if (a.decoupled_weight_decay) u += a.weight_decay * p[i];
    p[i] -= a.lr * u;
  };
  const std::int64_t n = param.numel();
  if (!model_param.defined()) {
    parallel_chunks(ctx, n, 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) update(i);
    });
    return;
  }
  dispatch_float(model_param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* mp = static_cast<T*>(model_param.raw());
    parallel_chunks(ctx, n, 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        update(i);
        mp[i] = from_f<T>(p[i]);
      }
    });
  });
}

void adamw_step_multi(const OpContext& ctx, std::span<const AdamWTensors> groups, const AdamWParams& params) {
  for (const AdamWTensors& g : groups) {
    AdamWParams p = params;
    p.weight_decay = g.weight_decay;
    cpu::adamw_step(ctx, g.param, g.grad, g.exp_avg, g.exp_avg_sq, p, g.model_param);
  }
}

}  // namespace bignlp::ops::cpu
