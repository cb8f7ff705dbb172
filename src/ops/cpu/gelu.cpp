// CPU GeLU, both forms: the plain activation op's GeLU kinds (formulas in gelu_math.h).
#include "../backend.h"

namespace bignlp::ops::cpu {
namespace {

Activation activation_of(GeluApprox approx) {
  return approx == GeluApprox::kTanh ? Activation::kGeluTanh : Activation::kGeluErf;
}

}  // namespace

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  cpu::activation_forward(ctx, x, y, activation_of(approx));
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  cpu::activation_backward(ctx, x, dy, dx, activation_of(approx));
}

}  // namespace bignlp::ops::cpu
