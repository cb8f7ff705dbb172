// The activations of the op table for one fp32 value, with their derivatives; shared by the plain
// and gated CPU activation ops. The GeLU kinds are gelu_math.h's functions (the gelu op's own).
//   relu: y = max(x, 0),  y' = 1 for x > 0 else 0 (PyTorch's threshold_backward: 0 at x = 0)
//   silu: y = x s, s = 1 / (1 + exp(-x)),  y' = s (1 + x (1 - s))
#pragma once

#include <cmath>

#include "bignlp/ops/ops.h"
#include "gelu_math.h"

namespace bignlp::ops::cpu {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline float activation_value(float x, Activation act) {
  switch (act) {
    case Activation::kGeluTanh: return gelu_value(x, GeluApprox::kTanh);
    case Activation::kGeluErf: return gelu_value(x, GeluApprox::kErf);
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kSilu: return x * sigmoid(x);
  }
  return 0.0f;
}

inline float activation_derivative(float x, Activation act) {
  switch (act) {
    case Activation::kGeluTanh: return gelu_derivative(x, GeluApprox::kTanh);
    case Activation::kGeluErf: return gelu_derivative(x, GeluApprox::kErf);
    case Activation::kRelu: return x > 0.0f ? 1.0f : 0.0f;
    case Activation::kSilu: {
      const float s = sigmoid(x);
      return s * (1.0f + x * (1.0f - s));
    }
  }
  return 0.0f;
}

}  // namespace bignlp::ops::cpu
