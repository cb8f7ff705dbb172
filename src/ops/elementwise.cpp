#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_ELEMENTWISE
#define BIGNLP_OPS_CUDA_ELEMENTWISE 0
#endif

namespace bignlp::ops {

using namespace detail;

void fill(const OpContext& ctx, const TensorView& x, double value) {
  check_on_device(ctx, "fill", "x", x);
  check_contiguous("fill", "x", x);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ELEMENTWISE, fill, ctx, x, value);
}

void copy(const OpContext& ctx, const TensorView& src, const TensorView& dst) {
  constexpr std::string_view op = "copy";
  BIGNLP_CHECK(src.defined() && dst.defined(), "copy: src and dst are required");
  check_shape(op, "dst", dst, src.shape());
  check_contiguous(op, "dst", dst);
  const bool cuda = src.device().is_cuda() || dst.device().is_cuda();
  BIGNLP_CHECK(!cuda || ctx.device.is_cuda(), "copy: {} -> {} needs a CUDA context, got {}",
               src.device().to_string(), dst.device().to_string(), ctx.device.to_string());
  if (cuda) {
    BIGNLP_OPS_CAT(BIGNLP_OPS_CUDA_CALL_, BIGNLP_OPS_CUDA_ELEMENTWISE)(copy, ctx, src, dst);
  }
  return cpu::copy(ctx, src, dst);
}

void add(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out) {
  constexpr std::string_view op = "add";
  for (const auto* t : {&a, &b, &out}) {
    check_on_device(ctx, op, "a/b/out", *t);
    check_contiguous(op, "a/b/out", *t);
  }
  check_float(op, "a", a);
  check_dtype(op, "b", b, {a.dtype()});
  check_dtype(op, "out", out, {a.dtype()});
  check_shape(op, "b", b, a.shape());
  check_shape(op, "out", out, a.shape());
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ELEMENTWISE, add, ctx, a, b, out);
}

void scale(const OpContext& ctx, const TensorView& x, float factor) {
  check_on_device(ctx, "scale", "x", x);
  check_float("scale", "x", x);
  check_contiguous("scale", "x", x);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ELEMENTWISE, scale, ctx, x, factor);
}

void sum_squares(const OpContext& ctx, const TensorView& x, const TensorView& out, bool accumulate) {
  constexpr std::string_view op = "sum_squares";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "out", out);
  check_float(op, "x", x);
  check_contiguous(op, "x", x);
  check_dtype(op, "out", out, {DType::kF32});
  BIGNLP_CHECK(out.numel() == 1, "sum_squares: out must hold one element, got {}", out.to_string());
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ELEMENTWISE, sum_squares, ctx, x, out, accumulate);
}

void sum_squares_multi(const OpContext& ctx, std::span<const TensorView> xs, const TensorView& out, bool accumulate) {
  constexpr std::string_view op = "sum_squares_multi";
  for (const TensorView& x : xs) {
    check_on_device(ctx, op, "xs[i]", x);
    check_float(op, "xs[i]", x);
    check_contiguous(op, "xs[i]", x);
  }
  check_on_device(ctx, op, "out", out);
  check_dtype(op, "out", out, {DType::kF32});
  BIGNLP_CHECK(out.numel() == 1, "sum_squares_multi: out must hold one element, got {}", out.to_string());
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ELEMENTWISE, sum_squares_multi, ctx, xs, out, accumulate);
}

}  // namespace bignlp::ops
