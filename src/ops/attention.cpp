#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_ATTENTION
#define BIGNLP_OPS_CUDA_ATTENTION 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

void check_attention(const OpContext& ctx, std::string_view op, const TensorView& qkv, const TensorView& out,
                     const TensorView& lse, const AttentionParams& params) {
  check_on_device(ctx, op, "qkv", qkv);
  check_on_device(ctx, op, "out", out);
  check_on_device(ctx, op, "lse", lse);
  check_rank(op, "qkv", qkv, 3);
  check_float(op, "qkv", qkv);
  check_contiguous(op, "qkv", qkv);
  check_contiguous(op, "out", out);
  check_dtype(op, "out", out, {qkv.dtype()});
  BIGNLP_CHECK(params.num_heads > 0, "{}: num_heads must be positive, got {}", op, params.num_heads);
  const std::int64_t t = qkv.size(0), b = qkv.size(1), nh = params.num_heads;
  BIGNLP_CHECK(qkv.size(2) % (3 * nh) == 0, "{}: qkv width {} is not a multiple of 3*num_heads = {}", op,
               qkv.size(2), 3 * nh);
  const std::int64_t hs = qkv.size(2) / (3 * nh);
  check_shape(op, "out", out, Shape{t, b, nh * hs});
  check_dtype(op, "lse", lse, {DType::kF32});
  check_shape(op, "lse", lse, Shape{b, nh, t});
  BIGNLP_CHECK(params.total_heads == 0 || params.head_offset + nh <= params.total_heads,
               "{}: heads [{}, {}) exceed total_heads {}", op, params.head_offset, params.head_offset + nh,
               params.total_heads);
  BIGNLP_CHECK(params.dropout.p >= 0.0f && params.dropout.p < 1.0f, "{}: dropout p must be in [0, 1), got {}", op,
               params.dropout.p);
}

}  // namespace

void attention_forward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                       const AttentionParams& params) {
  check_attention(ctx, "attention_forward", qkv, out, lse, params);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ATTENTION, attention_forward, ctx, qkv, out, lse, params);
}

void attention_backward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                        const TensorView& dout, const TensorView& dqkv, const AttentionParams& params) {
  constexpr std::string_view op = "attention_backward";
  check_attention(ctx, op, qkv, out, lse, params);
  check_on_device(ctx, op, "dout", dout);
  check_on_device(ctx, op, "dqkv", dqkv);
  check_dtype(op, "dout", dout, {qkv.dtype()});
  check_dtype(op, "dqkv", dqkv, {qkv.dtype()});
  check_shape(op, "dout", dout, out.shape());
  check_shape(op, "dqkv", dqkv, qkv.shape());
  check_contiguous(op, "dout", dout);
  check_contiguous(op, "dqkv", dqkv);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ATTENTION, attention_backward, ctx, qkv, out, lse, dout, dqkv, params);
}

}  // namespace bignlp::ops
