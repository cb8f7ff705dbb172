// GEMMs through cuBLASLt: bf16/fp16 inputs with fp32 accumulation (tensor cores), fp32 inputs in
// TF32 or full fp32 (CudaContext::allow_tf32), fused epilogues for bias, bias + GeLU (with the
// pre-activation kept) and dGeLU + bias gradient.
//
// Row-major to cuBLASLt's column-major: a row-major (R, C) matrix with leading dimension ld is the
// column-major (C, R) matrix with the same ld, i.e. its transpose. So c = op(a) op(b) is computed
// as c^T = op(b)^T op(a)^T with cuBLASLt's "A" = our b and "B" = our a:
//   our b (K, N) row-major  = col-major (N, K): no transpose;   b (N, K) with trans_b: transpose
//   our a (M, K) row-major  = col-major (K, M): no transpose;   a (K, M) with trans_a: transpose
//   our c (M, N) row-major  = col-major (N, M) = D.
// The bias of the BIAS epilogues runs along D's rows, i.e. along our columns: bias (N) as the op
// table defines. Plans (descriptors + algorithm) are cached per problem in the context.
#include <cublasLt.h>

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "cuda_common.h"
#include "gemm_plans.h"

namespace bignlp::ops::cuda {
namespace {

enum class Epilogue { kNone, kBias, kGeluAuxBias, kDGeluBGrad };

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF16: return CUDA_R_16F;
    default: break;
  }
  throw RuntimeError(fmt::format("gemm: no cuBLASLt type for dtype {}", dtype_name(t)));
}

cublasLtEpilogue_t lt_epilogue(Epilogue e) {
  switch (e) {
    case Epilogue::kBias: return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::kGeluAuxBias: return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    case Epilogue::kDGeluBGrad: return CUBLASLT_EPILOGUE_DGELU_BGRAD;
    case Epilogue::kNone: break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

int alignment_of(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  int a = 1;
  while (a < 256 && v % (2 * a) == 0) a *= 2;
  return a;
}

/// One GEMM call as cuBLASLt sees it.
struct Problem {
  const TensorView* a;
  const TensorView* b;
  const TensorView* c;
  GemmParams params;
  Epilogue epilogue = Epilogue::kNone;
  const void* bias = nullptr;  // BIAS / GELU_AUX_BIAS input, or DGELU_BGRAD output (fp32)
  DType bias_dtype = DType::kF32;
  void* aux = nullptr;  // GELU_AUX output / DGELU input: (M, N) like c, contiguous
  DType aux_dtype = DType::kF32;
};

GemmKey key_of(const CudaContext& cc, const Problem& p) {
  const TensorView& a = *p.a;
  const TensorView& b = *p.b;
  const TensorView& c = *p.c;
  GemmKey k;
  k.a_type = static_cast<int>(b.dtype());
  k.b_type = static_cast<int>(a.dtype());
  k.c_type = static_cast<int>(c.dtype());
  k.bias_type = p.epilogue == Epilogue::kNone ? -1 : static_cast<int>(p.bias_dtype);
  k.aux_type = p.aux != nullptr ? static_cast<int>(p.aux_dtype) : -1;
  k.compute = a.dtype() == DType::kF32 ? (cc.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                       : CUBLAS_COMPUTE_32F;
  k.epilogue = static_cast<int>(p.epilogue);
  const std::int64_t m = c.size(0), n = c.size(1);
  const std::int64_t kk = p.params.trans_a ? a.size(0) : a.size(1);
  // cuBLASLt A = our b.
  k.trans_a = p.params.trans_b;
  k.rows_a = p.params.trans_b ? kk : n;
  k.cols_a = p.params.trans_b ? n : kk;
  k.ld_a = leading_dim(b);
  // cuBLASLt B = our a.
  k.trans_b = p.params.trans_a;
  k.rows_b = p.params.trans_a ? m : kk;
  k.cols_b = p.params.trans_a ? kk : m;
  k.ld_b = leading_dim(a);
  k.rows_c = n;
  k.cols_c = m;
  k.ld_c = leading_dim(c);
  k.ld_aux = p.aux != nullptr ? n : 0;
  k.align_a = alignment_of(b.raw());
  k.align_b = alignment_of(a.raw());
  k.align_c = alignment_of(c.raw());
  k.beta_zero = p.params.beta == 0.0f;
  return k;
}

GemmPlan make_plan(const CudaContext& cc, const GemmKey& k) {
  GemmPlan plan;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, static_cast<cublasComputeType_t>(k.compute), CUDA_R_32F));
  const cublasOperation_t op_a = k.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = k.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
  const cublasLtEpilogue_t epi = lt_epilogue(static_cast<Epilogue>(k.epilogue));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  if (k.bias_type >= 0) {
    const cudaDataType_t bt = cuda_type(static_cast<DType>(k.bias_type));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
  }
  if (k.aux_type >= 0) {
    const std::int64_t ld = k.ld_aux;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
    const cudaDataType_t at = cuda_type(static_cast<DType>(k.aux_type));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &at, sizeof at));
  }
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, cuda_type(static_cast<DType>(k.a_type)),
                                          static_cast<std::uint64_t>(k.rows_a), static_cast<std::uint64_t>(k.cols_a),
                                          k.ld_a));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, cuda_type(static_cast<DType>(k.b_type)),
                                          static_cast<std::uint64_t>(k.rows_b), static_cast<std::uint64_t>(k.cols_b),
                                          k.ld_b));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, cuda_type(static_cast<DType>(k.c_type)),
                                          static_cast<std::uint64_t>(k.rows_c), static_cast<std::uint64_t>(k.cols_c),
                                          k.ld_c));

  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::size_t ws = cc.gemm_workspace_bytes;
  CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const std::uint32_t aa = static_cast<std::uint32_t>(k.align_a), ab = static_cast<std::uint32_t>(k.align_b),
                      ac = static_cast<std::uint32_t>(k.align_c);
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof ac));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof ac));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(cc.cublaslt, plan.desc, plan.a, plan.b, plan.c,
                                                               plan.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status == CUBLAS_STATUS_SUCCESS && found > 0) {
    plan.algo = result.algo;
    plan.usable = true;
  } else if (status != CUBLAS_STATUS_SUCCESS && status != CUBLAS_STATUS_NOT_SUPPORTED) {
    CUBLAS_CHECK(status);
  }
  return plan;
}

/// Runs the problem with cuBLASLt; returns false when cuBLASLt has no algorithm for it.
bool run_lt(const CudaContext& cc, const Problem& p) {
  const GemmKey key = key_of(cc, p);
  GemmPlan* plan = nullptr;
  {
    std::lock_guard lock(cc.gemm_plans->mutex);
    auto it = cc.gemm_plans->plans.find(key);
    if (it == cc.gemm_plans->plans.end()) it = cc.gemm_plans->plans.emplace(key, make_plan(cc, key)).first;
    plan = &it->second;
  }
  if (!plan->usable) return false;
  if (p.epilogue != Epilogue::kNone) {
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  }
  if (p.aux != nullptr) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &p.aux,
                                                sizeof p.aux));
  }
  const float alpha = p.params.alpha, beta = p.params.beta;
  CUBLAS_CHECK(cublasLtMatmul(cc.cublaslt, plan->desc, &alpha, p.b->raw(), plan->a, p.a->raw(), plan->b, &beta,
                              p.c->raw(), plan->c, p.c->raw(), plan->c, &plan->algo, cc.gemm_workspace,
                              cc.gemm_workspace_bytes, cc.stream));
  return true;
}

std::int64_t inner_dim(const TensorView& a, const GemmParams& params) { return params.trans_a ? a.size(0) : a.size(1); }

[[noreturn]] void throw_no_algorithm(std::string_view op, const TensorView& a, const TensorView& b,
                                     const TensorView& c, const GemmParams& params) {
  throw RuntimeError(fmt::format("{}: cuBLASLt has no algorithm for a {} b {} c {} (trans_a {}, trans_b {})", op,
                                 a.to_string(), b.to_string(), c.to_string(), params.trans_a, params.trans_b));
}

/// The plain GEMM with optional bias; the bias goes through the epilogue when cuBLASLt offers one
/// for it, else through a separate kernel.
void plain_gemm(const OpContext& ctx, CudaContext& cc, const TensorView& a, const TensorView& b, const TensorView& c,
                const GemmParams& params, const TensorView& bias) {
  const std::int64_t m = c.size(0), n = c.size(1);
  if (m == 0 || n == 0) return;
  if (inner_dim(a, params) == 0) {
    kernels::launch_gemm_no_k(c.raw(), c.dtype(), m, n, leading_dim(c), params.beta,
                              bias.defined() ? bias.raw() : nullptr, bias.defined() ? bias.dtype() : DType::kF32,
                              cc.stream);
    BIGNLP_CUDA_LAUNCH_CHECK(cc, "gemm_no_k");
    return;
  }
  Problem p{&a, &b, &c, params};
  if (bias.defined() && alignment_of(bias.raw()) >= 16) {
    p.epilogue = Epilogue::kBias;
    p.bias = bias.raw();
    p.bias_dtype = bias.dtype();
    if (run_lt(cc, p)) {
      BIGNLP_CUDA_LAUNCH_CHECK(cc, "cublasLtMatmul(bias)");
      return;
    }
    p.epilogue = Epilogue::kNone;
    p.bias = nullptr;
  }
  if (!run_lt(cc, p)) throw_no_algorithm("gemm", a, b, c, params);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "cublasLtMatmul");
  if (bias.defined()) {
    kernels::launch_add_bias(c.raw(), c.dtype(), m, n, leading_dim(c), bias.raw(), bias.dtype(), cc.stream);
    BIGNLP_CUDA_LAUNCH_CHECK(cc, "add_bias");
  }
}

void column_sums(const OpContext& ctx, CudaContext& cc, const TensorView& dy, float* dbias) {
  const std::int64_t rows = dy.size(0), cols = dy.size(1);
  const std::int64_t chunks = (rows + kernels::kColumnChunk - 1) / kernels::kColumnChunk;
  Scratch partial(*ctx.allocator, static_cast<std::size_t>(chunks * cols) * sizeof(float));
  kernels::launch_column_partials(dy.raw(), dy.dtype(), rows, cols, partial.as<float>(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "column_partials");
  kernels::launch_reduce_partials(partial.as<float>(), chunks, cols, dbias, cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "reduce_partials");
}

}  // namespace

void gemm(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
          const GemmParams& params, const TensorView& bias) {
  plain_gemm(ctx, cuda_state(ctx), a, b, c, params, bias);
}

void bias_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dbias) {
  CudaContext& cc = cuda_state(ctx);
  if (dy.size(0) == 0 || dy.size(1) == 0) return;
  column_sums(ctx, cc, dy, static_cast<float*>(dbias.raw()));
}

void gemm_bias_gelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                    const TensorView& pre, const GemmParams& params, const TensorView& bias) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t m = c.size(0), n = c.size(1);
  if (m == 0 || n == 0) return;
  // cuBLASLt's GELU_AUX needs a bias pointer for the _BIAS form and an aux leading dimension that
  // is a multiple of 8; otherwise (and when it offers no algorithm) run the unfused pair.
  if (inner_dim(a, params) > 0 && bias.defined() && alignment_of(bias.raw()) >= 16 && n % 8 == 0 &&
      alignment_of(pre.raw()) >= 16) {
    Problem p{&a, &b, &c, params, Epilogue::kGeluAuxBias, bias.raw(), bias.dtype(), pre.raw(), pre.dtype()};
    if (run_lt(cc, p)) {
      BIGNLP_CUDA_LAUNCH_CHECK(cc, "cublasLtMatmul(gelu_aux_bias)");
      return;
    }
  }
  plain_gemm(ctx, cc, a, b, pre, params, bias);
  kernels::launch_gelu_forward(pre.raw(), c.raw(), c.dtype(), c.numel(), static_cast<int>(GeluApprox::kTanh),
                               cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "gelu_forward");
}

void gemm_dgelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                const TensorView& pre, const GemmParams& params, const TensorView& dbias) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t m = c.size(0), n = c.size(1);
  if (m == 0 || n == 0) return;
  if (inner_dim(a, params) > 0 && dbias.defined() && n % 8 == 0 && alignment_of(pre.raw()) >= 16) {
    // cuBLASLt writes (=) the bias gradient; the op accumulates (+=): go through a scratch vector.
    Scratch grad(*ctx.allocator, static_cast<std::size_t>(n) * sizeof(float));
    Problem p{&a, &b, &c, params, Epilogue::kDGeluBGrad, grad.get(), DType::kF32, pre.raw(), pre.dtype()};
    if (run_lt(cc, p)) {
      BIGNLP_CUDA_LAUNCH_CHECK(cc, "cublasLtMatmul(dgelu_bgrad)");
      kernels::launch_accumulate_f32(grad.as<float>(), static_cast<float*>(dbias.raw()), n, cc.stream);
      BIGNLP_CUDA_LAUNCH_CHECK(cc, "accumulate_f32");
      return;
    }
  }
  plain_gemm(ctx, cc, a, b, c, params, TensorView{});
  kernels::launch_gelu_backward(pre.raw(), c.raw(), c.raw(), c.dtype(), c.numel(), static_cast<int>(GeluApprox::kTanh),
                                cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "gelu_backward");
  if (dbias.defined()) column_sums(ctx, cc, c, static_cast<float*>(dbias.raw()));
}

}  // namespace bignlp::ops::cuda
