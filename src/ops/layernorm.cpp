#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_LAYERNORM
#define BIGNLP_OPS_CUDA_LAYERNORM 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

void check_stats(const OpContext& ctx, std::string_view op, const TensorView& mean, const TensorView& rstd,
                 std::int64_t rows) {
  check_on_device(ctx, op, "mean", mean);
  check_on_device(ctx, op, "rstd", rstd);
  check_dtype(op, "mean", mean, {DType::kF32});
  check_dtype(op, "rstd", rstd, {DType::kF32});
  check_shape(op, "mean", mean, Shape{rows});
  check_shape(op, "rstd", rstd, Shape{rows});
}

}  // namespace

void layernorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& bias,
                       const TensorView& y, const TensorView& mean, const TensorView& rstd, float eps) {
  constexpr std::string_view op = "layernorm_forward";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "weight", weight);
  check_on_device(ctx, op, "y", y);
  check_rank(op, "x", x, 2);
  check_float(op, "x", x);
  check_contiguous(op, "x", x);
  check_contiguous(op, "y", y);
  const Shape vec{x.size(1)};
  check_shape(op, "weight", weight, vec);
  check_dtype(op, "weight", weight, {x.dtype()});
  if (bias.defined()) {  // empty: LayerNorm without bias
    check_on_device(ctx, op, "bias", bias);
    check_shape(op, "bias", bias, vec);
    check_dtype(op, "bias", bias, {x.dtype()});
  }
  check_dtype(op, "y", y, {x.dtype()});
  check_shape(op, "y", y, x.shape());
  BIGNLP_CHECK(mean.defined() == rstd.defined(), "layernorm_forward: pass both mean and rstd, or neither");
  if (mean.defined()) check_stats(ctx, op, mean, rstd, x.size(0));
  BIGNLP_CHECK(eps > 0.0f, "layernorm_forward: eps must be positive, got {}", eps);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_LAYERNORM, layernorm_forward, ctx, x, weight, bias, y, mean, rstd, eps);
}

void layernorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& mean,
                        const TensorView& rstd, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dbias, bool accumulate_dx) {
  constexpr std::string_view op = "layernorm_backward";
  check_norm_backward(ctx, op, x, weight, dy, dx, dweight);
  const Shape vec{x.size(1)};
  if (dbias.defined()) {  // empty: LayerNorm without bias
    check_on_device(ctx, op, "dbias", dbias);
    check_shape(op, "dbias", dbias, vec);
    check_dtype(op, "dbias", dbias, {DType::kF32});
  }
  check_stats(ctx, op, mean, rstd, x.size(0));
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_LAYERNORM, layernorm_backward, ctx, x, weight, mean, rstd, dy, dx, dweight,
                      dbias, accumulate_dx);
}

}  // namespace bignlp::ops
