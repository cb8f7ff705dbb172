#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_GELU
#define BIGNLP_OPS_CUDA_GELU 0
#endif

namespace bignlp::ops {

using namespace detail;

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  check_elementwise(ctx, "gelu_forward", x, y);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GELU, gelu_forward, ctx, x, y, approx);
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  check_elementwise_backward(ctx, "gelu_backward", x, dy, dx);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GELU, gelu_backward, ctx, x, dy, dx, approx);
}

}  // namespace bignlp::ops
