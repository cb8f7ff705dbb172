#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_CROSS_ENTROPY
#define BIGNLP_OPS_CUDA_CROSS_ENTROPY 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

void check_logits(const OpContext& ctx, std::string_view op, const TensorView& logits, const TensorView& targets,
                  const TensorView& lse) {
  check_on_device(ctx, op, "logits", logits);
  check_on_device(ctx, op, "targets", targets);
  check_on_device(ctx, op, "lse", lse);
  check_rank(op, "logits", logits, 2);
  check_float(op, "logits", logits);
  BIGNLP_CHECK(logits.has_unit_inner_stride(), "{}: logits need unit inner stride, got {}", op, logits.to_string());
  const Shape rows{logits.size(0)};
  check_dtype(op, "targets", targets, {DType::kI32});
  check_shape(op, "targets", targets, rows);
  check_contiguous(op, "targets", targets);
  check_dtype(op, "lse", lse, {DType::kF32});
  check_shape(op, "lse", lse, rows);
  check_contiguous(op, "lse", lse);
}

}  // namespace

void cross_entropy_forward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                           const TensorView& losses, const TensorView& lse, std::int64_t vocab_start) {
  constexpr std::string_view op = "cross_entropy_forward";
  check_logits(ctx, op, logits, targets, lse);
  check_on_device(ctx, op, "losses", losses);
  check_dtype(op, "losses", losses, {DType::kF32});
  check_shape(op, "losses", losses, Shape{logits.size(0)});
  check_contiguous(op, "losses", losses);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_CROSS_ENTROPY, cross_entropy_forward, ctx, logits, targets, losses, lse,
                      vocab_start);
}

void cross_entropy_backward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                            const TensorView& lse, const TensorView& dlosses, const TensorView& dlogits,
                            std::int64_t vocab_start) {
  constexpr std::string_view op = "cross_entropy_backward";
  check_logits(ctx, op, logits, targets, lse);
  check_on_device(ctx, op, "dlosses", dlosses);
  check_on_device(ctx, op, "dlogits", dlogits);
  check_dtype(op, "dlosses", dlosses, {DType::kF32});
  check_shape(op, "dlosses", dlosses, Shape{logits.size(0)});
  check_contiguous(op, "dlosses", dlosses);
  check_float(op, "dlogits", dlogits);
  check_shape(op, "dlogits", dlogits, logits.shape());
  BIGNLP_CHECK(dlogits.has_unit_inner_stride(), "{}: dlogits need unit inner stride", op);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_CROSS_ENTROPY, cross_entropy_backward, ctx, logits, targets, lse, dlosses,
                      dlogits, vocab_start);
}

void argmax(const OpContext& ctx, const TensorView& x, const TensorView& out) {
  constexpr std::string_view op = "argmax";
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "out", out);
  check_rank(op, "x", x, 2);
  check_float(op, "x", x);
  BIGNLP_CHECK(x.has_unit_inner_stride(), "argmax: x needs unit inner stride, got {}", x.to_string());
  BIGNLP_CHECK(x.size(1) > 0, "argmax: x has no columns");
  check_dtype(op, "out", out, {DType::kI32});
  check_shape(op, "out", out, Shape{x.size(0)});
  check_contiguous(op, "out", out);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_CROSS_ENTROPY, argmax, ctx, x, out);
}

}  // namespace bignlp::ops
