// Host entry points of the CUDA kernels (kernels/*.cu), called by the op launchers in
// src/ops/cuda/. Plain C++: compiled by the host compiler as well as nvcc.
//
// Conventions: pointers are device pointers of the dtype named next to them; every launch goes on
// the given stream and returns without synchronising; argument checks happened in the op table
// (src/ops/<op>.cpp), so these functions check only what the kernels themselves assume
// (alignment for vector paths is tested here and a scalar path taken otherwise). Shape letters
// follow docs/shapes.md. Row n of an (N, C) activation is token t*B + b (sequence-first).
// Workspaces are device memory the caller obtains from its allocator (never cudaMalloc here).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "bignlp/tensor/dtype.h"

namespace bignlp::kernels {

/// Throws RuntimeError: `where` has no kernel for `dtype`.
[[noreturn]] void throw_unsupported_dtype(const char* where, DType dtype);

// ---------------------------------------------------------------------------------------------
// elementwise.cu

/// Sets n elements of `elem_bytes` (1, 2, 4 or 8) each to the low bytes of `pattern`.
void launch_fill(void* x, std::size_t elem_bytes, std::int64_t n, std::uint64_t pattern, cudaStream_t stream);

/// A strided source: element i (row-major index over sizes) lives at sum_d idx_d * strides[d].
struct StridedLayout {
  int rank = 0;
  std::int64_t sizes[6] = {};
  std::int64_t strides[6] = {};
};

/// dst[i] = convert(src[layout(i)]) for n elements, any dtype pair (floats round to nearest even;
/// ints <-> floats by value, float -> int truncates, as the CPU reference). src_layout null means
/// contiguous.
void launch_convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, std::int64_t n,
                    const StridedLayout* src_layout, cudaStream_t stream);

/// out = a + b (n elements of a float dtype; out may alias a or b).
void launch_add(const void* a, const void* b, void* out, DType dtype, std::int64_t n, cudaStream_t stream);
/// x *= factor.
void launch_scale(void* x, DType dtype, std::int64_t n, float factor, cudaStream_t stream);
/// out (fp32, n) += x (fp32, n).
void launch_accumulate_f32(const float* x, float* out, std::int64_t n, cudaStream_t stream);

/// Elements per partial sum of sum_squares (matches the CPU reference's chunking).
inline constexpr std::int64_t kSumSquaresChunk = 4096;
/// partials[c] = sum over chunk c of x^2 in fp64, chunks of kSumSquaresChunk elements.
void launch_sum_squares_partials(const void* x, DType dtype, std::int64_t n, double* partials, cudaStream_t stream);
/// out[0] (fp32) = (or += with accumulate) the sum of partials[0..count), added in a fixed order.
void launch_sum_partials(const double* partials, std::int64_t count, float* out, bool accumulate,
                         cudaStream_t stream);

/// Column sums over row chunks: partial[r][j] = sum of x[i][j] for rows i of chunk r
/// (kColumnChunk rows each); x (rows, cols) of a float dtype, contiguous.
inline constexpr std::int64_t kColumnChunk = 64;
void launch_column_partials(const void* x, DType dtype, std::int64_t rows, std::int64_t cols, float* partial,
                            cudaStream_t stream);
/// out[j] (fp32) += sum over r < chunks of partial[r][j], in order of r (deterministic).
void launch_reduce_partials(const float* partial, std::int64_t chunks, std::int64_t cols, float* out,
                            cudaStream_t stream);

/// The k == 0 GEMM: c (m, n; leading dimension ldc) = beta * c + bias (bias may be null).
void launch_gemm_no_k(void* c, DType c_dtype, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta,
                      const void* bias, DType bias_dtype, cudaStream_t stream);
/// x (m, n; leading dimension ld) += bias (n) broadcast over rows.
void launch_add_bias(void* x, DType dtype, std::int64_t m, std::int64_t n, std::int64_t ld, const void* bias,
                     DType bias_dtype, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// gelu.cu (approx: 0 tanh, 1 erf; the numbering of ops::GeluApprox)

void launch_gelu_forward(const void* x, void* y, DType dtype, std::int64_t n, int approx, cudaStream_t stream);
void launch_gelu_backward(const void* x, const void* dy, void* dx, DType dtype, std::int64_t n, int approx,
                          cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// dropout.cu: element i uses the Philox index first_index + i (bignlp/ops/philox.h)

struct DropoutArgs {
  float p = 0.0f;
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
  std::uint64_t first_index = 0;
};

/// y = residual + keep * x / (1 - p) (residual may be null); y may alias x or residual.
void launch_dropout_forward(const void* x, const void* residual, void* y, DType dtype, std::int64_t n,
                            const DropoutArgs& args, cudaStream_t stream);
/// dx = (or += with accumulate) keep * dy / (1 - p); dx may alias dy.
void launch_dropout_backward(const void* dy, void* dx, DType dtype, std::int64_t n, const DropoutArgs& args,
                             bool accumulate, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// embedding.cu

/// out (N, C) [+]= table[ids[n] - vocab_start] (rows outside [0, V) give zeros).
void launch_embedding_forward(const std::int32_t* ids, const void* table, void* out, DType dtype, std::int64_t n,
                              std::int64_t c, std::int64_t v, std::int64_t vocab_start, bool accumulate,
                              cudaStream_t stream);
/// Bytes of workspace launch_embedding_backward needs.
std::size_t embedding_backward_workspace_bytes(std::int64_t n, std::int64_t v);
/// dtable (V, C) fp32 += scatter of dout (N, C) rows by id. Deterministic: tokens are sorted by id
/// (stable), and each table row is summed by one block in token order.
void launch_embedding_backward(const std::int32_t* ids, const void* dout, float* dtable, DType dtype, std::int64_t n,
                               std::int64_t c, std::int64_t v, std::int64_t vocab_start, void* workspace,
                               std::size_t workspace_bytes, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// layernorm.cu

/// y = LN(x) * w + b per row of x (N, C); bias may be null (+ 0); mean, rstd (N) fp32 may be null.
void launch_layernorm_forward(const void* x, const void* weight, const void* bias, void* y, float* mean, float* rstd,
                              DType dtype, std::int64_t n, std::int64_t c, float eps, cudaStream_t stream);
/// Bytes of workspace launch_layernorm_backward needs (column partials of dweight and dbias).
std::size_t layernorm_backward_workspace_bytes(std::int64_t n, std::int64_t c);
/// dx = (or += with accumulate_dx) the input gradient (dx may alias dy); dweight, dbias (C) fp32 +=;
/// dbias may be null (LayerNorm without bias).
void launch_layernorm_backward(const void* x, const void* weight, const float* mean, const float* rstd,
                               const void* dy, void* dx, float* dweight, float* dbias, DType dtype, std::int64_t n,
                               std::int64_t c, bool accumulate_dx, void* workspace, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// cross_entropy.cu (logits rows have leading dimension ld >= V)

void launch_cross_entropy_forward(const void* logits, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld,
                                  const std::int32_t* targets, std::int64_t vocab_start, float* losses, float* lse,
                                  cudaStream_t stream);
void launch_cross_entropy_backward(const void* logits, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld,
                                   const std::int32_t* targets, std::int64_t vocab_start, const float* lse,
                                   const float* dlosses, void* dlogits, DType dlogits_dtype, std::int64_t ld_dlogits,
                                   cudaStream_t stream);
void launch_argmax(const void* x, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld, std::int32_t* out,
                   cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// adamw.cu: multi-tensor Adam(W) and sum of squares over lists of tensors

/// One fp32 tensor group of an Adam(W) update (device pointers).
struct AdamWTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  void* model_param = nullptr;  ///< may be null
  DType model_dtype = DType::kBF16;
  std::int64_t numel = 0;
  float weight_decay = 0.0f;
};

struct AdamWArgs {
  float lr = 0.0f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float bias_correction1 = 1.0f, bias_correction2 = 1.0f;  ///< 1 - beta^step, computed like the CPU reference
  bool decoupled = true;
  float grad_scale = 1.0f;
};

/// Updates every tensor of the list (host array) in one launch per 160 tensors; the tensor table
/// is a kernel parameter, so nothing is copied to the device and the stream never waits.
void launch_adamw(const AdamWTensor* tensors, int count, const AdamWArgs& args, cudaStream_t stream);
/// Partial sums of squares of every tensor of the list into `partials` (doubles, one per
/// (tensor, kSumSquaresChunk chunk) in list order); returns the number of partials written.
std::int64_t launch_sum_squares_multi(const void* const* xs, const DType* dtypes, const std::int64_t* numels,
                                      int count, double* partials, cudaStream_t stream);
/// Number of partials launch_sum_squares_multi writes.
std::int64_t sum_squares_multi_partials(const std::int64_t* numels, int count);

// ---------------------------------------------------------------------------------------------
// attention.cu + instances/: causal (or full) flash attention over the head-interleaved QKV

struct AttentionArgs {
  int t = 0, b = 0, nh = 0, hs = 0;
  int total_heads = 0;  ///< heads of the full model (dropout indices)
  int head_offset = 0;
  float scale = 0.0f;   ///< softmax scale (already resolved: 1/sqrt(HS) by default)
  bool causal = true;
  float dropout_p = 0.0f;
  std::uint64_t seed = 0, offset = 0;
};

/// True when the tensor-core kernels handle this case (bf16/fp16, HS 64 or 128, 16-byte aligned
/// pointers); otherwise the generic (scalar fp32 math) kernels run.
bool attention_fast_path(DType dtype, int hs, const void* qkv, const void* out);
/// qkv (T, B, NH*3*HS), out (T, B, NH*HS), lse (B, NH, T) fp32.
void launch_attention_forward(const void* qkv, void* out, float* lse, DType dtype, const AttentionArgs& args,
                              cudaStream_t stream);
/// Workspace of the backward pass: fp32 dQ accumulators and D = rowsum(dO * O).
std::size_t attention_backward_workspace_bytes(const AttentionArgs& args);
/// dqkv (T, B, NH*3*HS) = gradients of q, k, v.
void launch_attention_backward(const void* qkv, const void* out, const float* lse, const void* dout, void* dqkv,
                               DType dtype, const AttentionArgs& args, void* workspace, std::size_t workspace_bytes,
                               cudaStream_t stream);

}  // namespace bignlp::kernels
