// GeLU and its derivative for one fp32 value, both forms; shared by the CPU GeLU op and the CPU
// references of the fused GEMM + GeLU ops.
//   tanh: y = 0.5 x (1 + t), t = tanh(k (x + 0.044715 x^3)), k = sqrt(2/pi)
//         y' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2)
//   erf:  y = 0.5 x (1 + erf(x / sqrt 2)),  y' = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
#pragma once

#include <cmath>

#include "bignlp/ops/ops.h"

namespace bignlp::ops::cpu {

inline constexpr float kGeluSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCoeff = 0.044715f;
inline constexpr float kGeluInvSqrt2 = 0.7071067811865476f;
inline constexpr float kGeluInvSqrt2Pi = 0.3989422804014327f;

inline float gelu_value(float x, GeluApprox approx) {
  if (approx == GeluApprox::kTanh)
    return 0.5f * x * (1.0f + std::tanh(kGeluSqrt2OverPi * (x + kGeluCoeff * x * x * x)));
  return 0.5f * x * (1.0f + std::erf(x * kGeluInvSqrt2));
}

inline float gelu_derivative(float x, GeluApprox approx) {
  if (approx == GeluApprox::kTanh) {
    const float t = std::tanh(kGeluSqrt2OverPi * (x + kGeluCoeff * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kGeluSqrt2OverPi * (1.0f + 3.0f * kGeluCoeff * x * x);
  }
  return 0.5f * (1.0f + std::erf(x * kGeluInvSqrt2)) + x * std::exp(-0.5f * x * x) * kGeluInvSqrt2Pi;
}

}  // namespace bignlp::ops::cpu
