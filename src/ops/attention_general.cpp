#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_ATTENTION_GENERAL
#define BIGNLP_OPS_CUDA_ATTENTION_GENERAL 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

/// q, k, v, dq, dk, dv: (T, B, NH*HS) or (T, B, NH, HS), unit inner stride, non-negative strides.
/// Returns HS.
std::int64_t check_heads_view(const OpContext& ctx, std::string_view op, std::string_view name, const TensorView& t,
                              int num_heads) {
  check_on_device(ctx, op, name, t);
  check_float(op, name, t);
  BIGNLP_CHECK(t.rank() == 3 || t.rank() == 4, "{}: tensor '{}' must be (T, B, NH*HS) or (T, B, NH, HS), got {}", op,
               name, t.to_string());
  BIGNLP_CHECK(t.has_unit_inner_stride(), "{}: tensor '{}' needs unit stride in the last dimension, got {}", op, name,
               t.to_string());
  for (int i = 0; i + 1 < t.rank(); ++i)
    BIGNLP_CHECK(t.stride(i) >= 0, "{}: tensor '{}' has a negative stride: {}", op, name, t.to_string());
  if (t.rank() == 4) {
    BIGNLP_CHECK(t.size(2) == num_heads, "{}: tensor '{}' has {} heads, num_heads is {}", op, name, t.size(2),
                 num_heads);
    return t.size(3);
  }
  BIGNLP_CHECK(t.size(2) % num_heads == 0, "{}: tensor '{}' width {} is not a multiple of num_heads = {}", op, name,
               t.size(2), num_heads);
  return t.size(2) / num_heads;
}

void check_attention_general(const OpContext& ctx, std::string_view op, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& bias, std::span<const std::int32_t> key_lengths,
                             const TensorView& out, const TensorView& lse, const GeneralAttentionParams& params) {
  BIGNLP_CHECK(params.num_heads > 0, "{}: num_heads must be positive, got {}", op, params.num_heads);
  const std::int64_t nh = params.num_heads;
  const std::int64_t hs = check_heads_view(ctx, op, "q", q, params.num_heads);
  const std::int64_t hs_k = check_heads_view(ctx, op, "k", k, params.num_heads);
  const std::int64_t hs_v = check_heads_view(ctx, op, "v", v, params.num_heads);
  BIGNLP_CHECK(hs_k == hs && hs_v == hs, "{}: head sizes differ: q {}, k {}, v {}", op, hs, hs_k, hs_v);
  check_dtype(op, "k", k, {q.dtype()});
  check_dtype(op, "v", v, {q.dtype()});
  const std::int64_t tq = q.size(0), b = q.size(1), tk = k.size(0);
  BIGNLP_CHECK(tq > 0 && tk > 0 && b > 0, "{}: Tq, Tk and B must be positive: q {}, k {}", op, q.to_string(),
               k.to_string());
  BIGNLP_CHECK(k.size(1) == b, "{}: k has batch {}, q has {}", op, k.size(1), b);
  BIGNLP_CHECK(v.size(0) == tk && v.size(1) == b, "{}: v {} does not match k {}", op, v.to_string(), k.to_string());
  check_on_device(ctx, op, "out", out);
  check_on_device(ctx, op, "lse", lse);
  check_dtype(op, "out", out, {q.dtype()});
  check_shape(op, "out", out, Shape{tq, b, nh * hs});
  check_contiguous(op, "out", out);
  check_dtype(op, "lse", lse, {DType::kF32});
  check_shape(op, "lse", lse, Shape{b, nh, tq});
  check_contiguous(op, "lse", lse);
  if (bias.defined()) {
    check_on_device(ctx, op, "bias", bias);
    check_dtype(op, "bias", bias, {DType::kF32});
    check_shape(op, "bias", bias, Shape{nh, tq, tk});
    check_contiguous(op, "bias", bias);
  }
  if (!key_lengths.empty()) {
    BIGNLP_CHECK(static_cast<std::int64_t>(key_lengths.size()) == b, "{}: key_lengths has {} values, batch is {}", op,
                 key_lengths.size(), b);
    for (std::size_t i = 0; i < key_lengths.size(); ++i)
      BIGNLP_CHECK(key_lengths[i] >= 0 && key_lengths[i] <= tk, "{}: key_lengths[{}] = {} is outside [0, Tk = {}]", op,
                   i, key_lengths[i], tk);
  }
  BIGNLP_CHECK(params.kv_offset >= 0, "{}: kv_offset must be >= 0, got {}", op, params.kv_offset);
  BIGNLP_CHECK(params.head_offset >= 0, "{}: head_offset must be >= 0, got {}", op, params.head_offset);
  BIGNLP_CHECK(params.total_heads == 0 || params.head_offset + nh <= params.total_heads,
               "{}: heads [{}, {}) exceed total_heads {}", op, params.head_offset, params.head_offset + nh,
               params.total_heads);
  BIGNLP_CHECK(params.dropout.p >= 0.0f && params.dropout.p < 1.0f, "{}: dropout p must be in [0, 1), got {}", op,
               params.dropout.p);
}

}  // namespace

void attention_general_forward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                               const TensorView& bias, std::span<const std::int32_t> key_lengths,
                               const TensorView& out, const TensorView& lse, const GeneralAttentionParams& params) {
  check_attention_general(ctx, "attention_general_forward", q, k, v, bias, key_lengths, out, lse, params);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ATTENTION_GENERAL, attention_general_forward, ctx, q, k, v, bias, key_lengths,
                      out, lse, params);
}

void attention_general_backward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView& bias, std::span<const std::int32_t> key_lengths,
                                const TensorView& out, const TensorView& lse, const TensorView& dout,
                                const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                const TensorView& dbias, const GeneralAttentionParams& params) {
  constexpr std::string_view op = "attention_general_backward";
  check_attention_general(ctx, op, q, k, v, bias, key_lengths, out, lse, params);
  check_on_device(ctx, op, "dout", dout);
  check_dtype(op, "dout", dout, {q.dtype()});
  check_shape(op, "dout", dout, out.shape());
  check_contiguous(op, "dout", dout);
  const std::pair<const TensorView*, const TensorView*> grads[] = {{&dq, &q}, {&dk, &k}, {&dv, &v}};
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    check_heads_view(ctx, op, names[i], *grads[i].first, params.num_heads);
    check_dtype(op, names[i], *grads[i].first, {q.dtype()});
    check_shape(op, names[i], *grads[i].first, grads[i].second->shape());
  }
  if (dbias.defined()) {
    check_on_device(ctx, op, "dbias", dbias);
    check_dtype(op, "dbias", dbias, {DType::kF32});
    check_shape(op, "dbias", dbias, Shape{params.num_heads, q.size(0), k.size(0)});
    check_contiguous(op, "dbias", dbias);
  }
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ATTENTION_GENERAL, attention_general_backward, ctx, q, k, v, bias, key_lengths,
                      out, lse, dout, dq, dk, dv, dbias, params);
}

}  // namespace bignlp::ops
