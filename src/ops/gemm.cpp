#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_GEMM
#define BIGNLP_OPS_CUDA_GEMM 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

/// Checks shared by the fused GEMMs: a, b, c as in gemm; pre (M, N) like c; both contiguous.
void check_fused_gemm(const OpContext& ctx, std::string_view op, const TensorView& a, const TensorView& b,
                      const TensorView& c, const TensorView& pre, const GemmParams& params) {
  check_on_device(ctx, op, "a", a);
  check_on_device(ctx, op, "b", b);
  check_on_device(ctx, op, "c", c);
  check_on_device(ctx, op, "pre", pre);
  check_rank(op, "a", a, 2);
  check_rank(op, "b", b, 2);
  check_float(op, "a", a);
  check_dtype(op, "b", b, {a.dtype()});
  check_dtype(op, "c", c, {a.dtype()});
  check_dtype(op, "pre", pre, {a.dtype()});
  const std::int64_t m = params.trans_a ? a.size(1) : a.size(0);
  const std::int64_t k = params.trans_a ? a.size(0) : a.size(1);
  const std::int64_t kb = params.trans_b ? b.size(1) : b.size(0);
  const std::int64_t n = params.trans_b ? b.size(0) : b.size(1);
  BIGNLP_CHECK(k == kb, "{}: inner dimensions differ: op(a) is ({}, {}), op(b) is ({}, {})", op, m, k, kb, n);
  check_shape(op, "c", c, Shape{m, n});
  check_shape(op, "pre", pre, Shape{m, n});
  check_contiguous(op, "c", c);
  check_contiguous(op, "pre", pre);
  BIGNLP_CHECK(a.has_unit_inner_stride() && b.has_unit_inner_stride(),
               "{}: a and b need unit stride in the last dimension: a {}, b {}", op, a.to_string(), b.to_string());
  BIGNLP_CHECK(params.beta == 0.0f, "{}: beta must be 0 (the output is overwritten), got {}", op, params.beta);
}

}  // namespace

void gemm(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
          const GemmParams& params, const TensorView& bias) {
  constexpr std::string_view op = "gemm";
  check_on_device(ctx, op, "a", a);
  check_on_device(ctx, op, "b", b);
  check_on_device(ctx, op, "c", c);
  check_rank(op, "a", a, 2);
  check_rank(op, "b", b, 2);
  check_rank(op, "c", c, 2);
  check_float(op, "a", a);
  check_dtype(op, "b", b, {a.dtype()});
  check_dtype(op, "c", c, {a.dtype(), DType::kF32});
  const std::int64_t m = params.trans_a ? a.size(1) : a.size(0);
  const std::int64_t k = params.trans_a ? a.size(0) : a.size(1);
  const std::int64_t kb = params.trans_b ? b.size(1) : b.size(0);
  const std::int64_t n = params.trans_b ? b.size(0) : b.size(1);
  BIGNLP_CHECK(k == kb, "gemm: inner dimensions differ: op(a) is ({}, {}), op(b) is ({}, {})", m, k, kb, n);
  check_shape(op, "c", c, Shape{m, n});
  BIGNLP_CHECK(a.has_unit_inner_stride() && b.has_unit_inner_stride() && c.has_unit_inner_stride(),
               "gemm: matrices need unit stride in the last dimension: a {}, b {}, c {}", a.to_string(),
               b.to_string(), c.to_string());
  if (bias.defined()) {
    check_on_device(ctx, op, "bias", bias);
    check_dtype(op, "bias", bias, {c.dtype(), DType::kF32});
    check_shape(op, "bias", bias, Shape{n});
    check_contiguous(op, "bias", bias);
  }
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GEMM, gemm, ctx, a, b, c, params, bias);
}

void bias_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dbias) {
  constexpr std::string_view op = "bias_backward";
  check_on_device(ctx, op, "dy", dy);
  check_on_device(ctx, op, "dbias", dbias);
  check_rank(op, "dy", dy, 2);
  check_float(op, "dy", dy);
  check_contiguous(op, "dy", dy);
  check_dtype(op, "dbias", dbias, {DType::kF32});
  check_shape(op, "dbias", dbias, Shape{dy.size(1)});
  check_contiguous(op, "dbias", dbias);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GEMM, bias_backward, ctx, dy, dbias);
}

void gemm_bias_gelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                    const TensorView& pre, const GemmParams& params, const TensorView& bias) {
  constexpr std::string_view op = "gemm_bias_gelu";
  check_fused_gemm(ctx, op, a, b, c, pre, params);
  if (bias.defined()) {
    check_on_device(ctx, op, "bias", bias);
    check_dtype(op, "bias", bias, {c.dtype(), DType::kF32});
    check_shape(op, "bias", bias, Shape{c.size(1)});
    check_contiguous(op, "bias", bias);
  }
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GEMM, gemm_bias_gelu, ctx, a, b, c, pre, params, bias);
}

void gemm_dgelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                const TensorView& pre, const GemmParams& params, const TensorView& dbias) {
  constexpr std::string_view op = "gemm_dgelu";
  check_fused_gemm(ctx, op, a, b, c, pre, params);
  if (dbias.defined()) {
    check_on_device(ctx, op, "dbias", dbias);
    check_dtype(op, "dbias", dbias, {DType::kF32});
    check_shape(op, "dbias", dbias, Shape{c.size(1)});
    check_contiguous(op, "dbias", dbias);
  }
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_GEMM, gemm_dgelu, ctx, a, b, c, pre, params, dbias);
}

}  // namespace bignlp::ops
