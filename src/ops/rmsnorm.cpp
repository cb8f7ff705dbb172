#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_RMSNORM
#define BIGNLP_OPS_CUDA_RMSNORM 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

void check_rstd(const OpContext& ctx, std::string_view op, const TensorView& rstd, std::int64_t rows) {
  check_on_device(ctx, op, "rstd", rstd);
  check_dtype(op, "rstd", rstd, {DType::kF32});
  check_shape(op, "rstd", rstd, Shape{rows});
}

}  // namespace

void rmsnorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& y,
                     const TensorView& rstd, float eps) {
  constexpr std::string_view op = "rmsnorm_forward";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "weight", weight);
  check_on_device(ctx, op, "y", y);
  check_rank(op, "x", x, 2);
  check_float(op, "x", x);
  check_contiguous(op, "x", x);
  check_contiguous(op, "y", y);
  check_shape(op, "weight", weight, Shape{x.size(1)});
  check_dtype(op, "weight", weight, {x.dtype()});
  check_dtype(op, "y", y, {x.dtype()});
  check_shape(op, "y", y, x.shape());
  if (rstd.defined()) check_rstd(ctx, op, rstd, x.size(0));
  BIGNLP_CHECK(eps > 0.0f, "rmsnorm_forward: eps must be positive, got {}", eps);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_RMSNORM, rmsnorm_forward, ctx, x, weight, y, rstd, eps);
}

void rmsnorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& rstd,
                      const TensorView& dy, const TensorView& dx, const TensorView& dweight, bool accumulate_dx) {
  constexpr std::string_view op = "rmsnorm_backward";
  check_norm_backward(ctx, op, x, weight, dy, dx, dweight);
  check_rstd(ctx, op, rstd, x.size(0));
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_RMSNORM, rmsnorm_backward, ctx, x, weight, rstd, dy, dx, dweight, accumulate_dx);
}

}  // namespace bignlp::ops
