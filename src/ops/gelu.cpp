#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_GELU
#define BIGNLP_OPS_CUDA_GELU 0
#endif

namespace bignlp::ops {

using namespace detail;

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  constexpr std::string_view op = "gelu_forward";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "y", y);
  check_float(op, "x", x);
  check_dtype(op, "y", y, {x.dtype()});
  check_shape(op, "y", y, x.shape());
  check_contiguous(op, "x", x);
  check_contiguous(op, "y", y);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GELU, gelu_forward, ctx, x, y, approx);
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  constexpr std::string_view op = "gelu_backward";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "dy", dy);
  check_on_device(ctx, op, "dx", dx);
  check_float(op, "x", x);
  check_dtype(op, "dy", dy, {x.dtype()});
  check_dtype(op, "dx", dx, {x.dtype()});
  check_shape(op, "dy", dy, x.shape());
  check_shape(op, "dx", dx, x.shape());
  for (const auto* t : {&x, &dy, &dx}) check_contiguous(op, "x/dy/dx", *t);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GELU, gelu_backward, ctx, x, dy, dx, approx);
}

}  // namespace bignlp::ops
