// CPU GeLU, both forms, with analytic derivatives:
//   tanh: y = 0.5 x (1 + t), t = tanh(k (x + 0.044715 x^3)), k = sqrt(2/pi)
//         y' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2)
//   erf:  y = 0.5 x (1 + erf(x / sqrt 2)),  y' = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
#include <cmath>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCoeff = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

float gelu(float x, GeluApprox approx) {
  if (approx == GeluApprox::kTanh) return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + kCoeff * x * x * x)));
  return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
}

float gelu_grad(float x, GeluApprox approx) {
  if (approx == GeluApprox::kTanh) {
    const float t = std::tanh(kSqrt2OverPi * (x + kCoeff * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kCoeff * x * x);
  }
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * std::exp(-0.5f * x * x) * kInvSqrt2Pi;
}

}  // namespace

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) yp[i] = from_f<T>(gelu(to_f(xp[i]), approx));
    });
  });
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) dxp[i] = from_f<T>(gelu_grad(to_f(xp[i]), approx) * to_f(gp[i]));
    });
  });
}

}  // namespace bignlp::ops::cpu
