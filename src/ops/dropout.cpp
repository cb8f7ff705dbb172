#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_DROPOUT
#define BIGNLP_OPS_CUDA_DROPOUT 0
#endif

namespace bignlp::ops {

using namespace detail;

void dropout_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, const DropoutParams& params,
                     const TensorView& residual) {
  constexpr std::string_view op = "dropout_forward";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "y", y);
  check_float(op, "x", x);
  check_dtype(op, "y", y, {x.dtype()});
  check_shape(op, "y", y, x.shape());
  check_contiguous(op, "x", x);
  check_contiguous(op, "y", y);
  if (residual.defined()) {
    check_on_device(ctx, op, "residual", residual);
    check_dtype(op, "residual", residual, {x.dtype()});
    check_shape(op, "residual", residual, x.shape());
    check_contiguous(op, "residual", residual);
  }
  BIGNLP_CHECK(params.p >= 0.0f && params.p < 1.0f, "dropout_forward: p must be in [0, 1), got {}", params.p);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_DROPOUT, dropout_forward, ctx, x, y, params, residual);
}

void dropout_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dx, const DropoutParams& params,
                      bool accumulate) {
  constexpr std::string_view op = "dropout_backward";
  check_on_device(ctx, op, "dy", dy);
  check_on_device(ctx, op, "dx", dx);
  check_float(op, "dy", dy);
  check_dtype(op, "dx", dx, {dy.dtype()});
  check_shape(op, "dx", dx, dy.shape());
  check_contiguous(op, "dy", dy);
  check_contiguous(op, "dx", dx);
  BIGNLP_CHECK(params.p >= 0.0f && params.p < 1.0f, "dropout_backward: p must be in [0, 1), got {}", params.p);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_DROPOUT, dropout_backward, ctx, dy, dx, params, accumulate);
}

}  // namespace bignlp::ops
