// The op table: every numerical operation the engine runs, declared once.
//
// Each op dispatches on the device of its tensors (all must be on ctx.device): the CPU reference
// in src/ops/cpu/<op>.cpp (readable ground truth, OpenMP over rows/columns) or, in builds with
// BIGNLP_WITH_CUDA, the CUDA implementation src/ops/cuda/<op>.cpp + kernels/<op>.cu. An op without a
// CUDA implementation throws a RuntimeError naming it when given CUDA tensors. Argument checks
// (shapes, dtypes, devices) happen once, before dispatch, in src/ops/<op>.cpp.
//
// Conventions (shape letters: docs/shapes.md):
// - "A" below is an activation dtype: fp32, bf16 or fp16. Arithmetic is fp32 (16-bit inputs are
//   widened, results rounded to nearest even once when stored). Statistics (LayerNorm mean/rstd,
//   attention log-sum-exp, per-token losses) are fp32.
// - Parameter gradients (dweight, dbias, dtable) are fp32 and always ACCUMULATED (+=): the caller
//   zeroes them once per optimizer step, micro-batches add up. Input gradients are written (=)
//   unless the op says otherwise.
// - Results never depend on the thread count: every reduction has a fixed order.
// - Token ids and targets are int32.
// - Activations are sequence-first: rows n = t*B + b of an (N, C) = (T*B, C) matrix.
#pragma once

#include <cstdint>
#include <span>

#include "bignlp/ops/context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::ops {

// ---------------------------------------------------------------------------------------------
// GEMM

struct GemmParams {
  bool trans_a = false;  ///< use a^T: a is (K, M) instead of (M, K)
  bool trans_b = false;  ///< use b^T: b is (N, K) instead of (K, N)
  float alpha = 1.0f;
  float beta = 0.0f;     ///< 0: c is overwritten (its old contents may be NaN); 1: accumulate into c
};

/// c = alpha * op(a) @ op(b) + beta * c + bias (bias broadcast over rows).
/// a, b: 2-D, same dtype A; c: (M, N) of dtype A or fp32 (fp32 c with 16-bit a/b is how weight
/// gradients accumulate into fp32 main grads); bias: (N) of c's dtype or fp32, or empty.
/// Matrices need unit stride in the last dimension; the leading stride may exceed the row length
/// (sub-views). Accumulation is fp32. Linear layers (weight (out, in), Megatron layout) use:
/// forward y = x w^T (trans_b), input grad dx = dy w, weight grad dw += dy^T x (trans_a, beta 1).
void gemm(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
          const GemmParams& params, const TensorView& bias = {});

/// dbias (C) fp32 += sum over rows of dy (N, C) of dtype A.
void bias_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dbias);

/// Linear layer + tanh GeLU in one pass (the MLP's first projection): with v = op(a) @ op(b) + bias
/// in fp32, pre = v (the GeLU input the backward needs) and c = gelu_tanh(v), each rounded once to
/// its dtype (c is computed from v, not from the rounded pre). a, b as in gemm; c, pre (M, N) of
/// a's dtype, contiguous; bias (N) of a's dtype or fp32, or empty; params.beta must be 0. On CUDA
/// one cuBLASLt call with the GELU_AUX_BIAS epilogue (unfused kernels where cuBLASLt has none).
void gemm_bias_gelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                    const TensorView& pre, const GemmParams& params, const TensorView& bias = {});

/// The backward of that GeLU fused into the GEMM producing its output gradient:
/// c = (op(a) @ op(b)) * gelu_tanh'(pre), with pre from gemm_bias_gelu, and dbias (N) fp32 += the
/// column sums of c (the bias gradient of the layer whose pre-activation pre is; empty: skipped).
/// c, pre (M, N) of a's dtype, contiguous; params.beta must be 0. On CUDA one cuBLASLt call with the
/// DGELU_BGRAD epilogue (unfused kernels where cuBLASLt has none).
void gemm_dgelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                const TensorView& pre, const GemmParams& params, const TensorView& dbias = {});

// ---------------------------------------------------------------------------------------------
// Embedding

/// out (N, C) [+]= table[ids[n] - vocab_start] for each row n; ids (N) int32; table (Vl, C) of
/// dtype A (a vocab shard when vocab_start > 0); ids outside [vocab_start, vocab_start + Vl) give a
/// zero row (vocab-parallel embedding: the shards are summed by the caller). `accumulate` adds to
/// out (word + position embedding), rounding once.
void embedding_forward(const OpContext& ctx, const TensorView& ids, const TensorView& table, const TensorView& out,
                       std::int64_t vocab_start = 0, bool accumulate = false);

/// dtable (Vl, C) fp32 += scatter of dout (N, C) rows to ids - vocab_start (ids outside the shard
/// are skipped). Deterministic (columns are split across threads, rows summed in order).
void embedding_backward(const OpContext& ctx, const TensorView& ids, const TensorView& dout, const TensorView& dtable,
                        std::int64_t vocab_start = 0);

// ---------------------------------------------------------------------------------------------
// LayerNorm: y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance, per row.

/// x, y (N, C) A; weight, bias (C) A; bias may be empty (LayerNorm without bias: + 0); mean, rstd
/// (N) fp32 outputs for the backward pass (may be empty when no backward follows).
void layernorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& bias,
                       const TensorView& y, const TensorView& mean, const TensorView& rstd, float eps);

/// dx (N, C) A = (or += with accumulate_dx) the input gradient; dweight, dbias (C) fp32 +=; dbias
/// may be empty (a LayerNorm without bias: its column sums are not computed).
void layernorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& mean,
                        const TensorView& rstd, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dbias, bool accumulate_dx = false);

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps), per row (no centering, no
// bias; T5LayerNorm, LLaMA RMSNorm).

/// x, y (N, C) A, contiguous; weight (C) A; rstd (N) fp32 output for the backward pass (may be
/// empty when no backward follows); y may alias x. mean(x^2) is summed in double.
void rmsnorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& y,
                     const TensorView& rstd, float eps);

/// dx (N, C) A = (or += with accumulate_dx) rstd * (g - xhat * mean(g * xhat)), g = dy * weight,
/// xhat = x * rstd; dweight (C) fp32 += sum over rows of dy * xhat. rstd (N) from the forward;
/// dx may alias dy.
void rmsnorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& rstd,
                      const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                      bool accumulate_dx = false);

// ---------------------------------------------------------------------------------------------
// GeLU

enum class GeluApprox {
  kTanh,  ///< 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): Megatron's fused bias-GeLU, HF gelu_new
  kErf,   ///< 0.5 x (1 + erf(x / sqrt(2))): exact
};

/// y = gelu(x), elementwise, same shape and dtype A; y may alias x.
void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx);
/// dx = gelu'(x) * dy; dx may alias dy.
void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx);

// ---------------------------------------------------------------------------------------------
// Activations, plain and gated (the MLP's nonlinearity as data; gelu_forward/backward above stay
// the GPT path's op)

/// The MLP nonlinearity, as data (one FFN with an activation parameter, not a family of FFNs).
enum class Activation {
  kGeluTanh,  ///< GeluApprox::kTanh
  kGeluErf,   ///< GeluApprox::kErf
  kRelu,      ///< max(x, 0); derivative 0 at x = 0 (as PyTorch)
  kSilu,      ///< x * sigmoid(x) (swish)
};

/// y = act(x), elementwise, same shape and dtype A, contiguous; y may alias x.
void activation_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, Activation act);
/// dx = act'(x) * dy, contiguous, same shape and dtype A; dx may alias dy.
void activation_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                         Activation act);

/// Gated linear unit: y = act(gate) * up, elementwise (GeGLU: kGeluTanh/kGeluErf, SwiGLU: kSilu,
/// ReGLU: kRelu). gate, up (N, F) A with unit inner stride and any leading stride (the two column
/// halves of one (N, 2F) projection work); y (N, F) A contiguous.
void gated_activation_forward(const OpContext& ctx, const TensorView& gate, const TensorView& up, const TensorView& y,
                              Activation act);
/// dgate = act'(gate) * up * dy and dup = act(gate) * dy, written (=). dy (N, F) A contiguous;
/// dgate, dup (N, F) A with unit inner stride (column halves of one (N, 2F) gradient work). Each
/// element is read before it is written, so dgate may alias gate and dup may alias up.
void gated_activation_backward(const OpContext& ctx, const TensorView& gate, const TensorView& up,
                               const TensorView& dy, const TensorView& dgate, const TensorView& dup, Activation act);

// ---------------------------------------------------------------------------------------------
// Dropout (counter-based: the mask is a function of (seed, offset, element index), ops/philox.h)

struct DropoutParams {
  float p = 0.0f;             ///< drop probability; 0 disables (the op is then a copy/add)
  std::uint64_t seed = 0;     ///< the run's seed
  std::uint64_t offset = 0;   ///< stream id: distinct per call site and step (see model/rng_streams)
  std::uint64_t first_index = 0;  ///< element index of element 0 (a shard's position in the full tensor)
};

/// y = residual + keep(i) * x / (1 - p), elementwise (residual empty: 0). Same shapes, dtype A;
/// y may alias x or residual. Element i of the (contiguous) tensor has index first_index + i.
void dropout_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, const DropoutParams& params,
                     const TensorView& residual = {});
/// dx = (or += with accumulate) keep(i) * dy / (1 - p); dx may alias dy.
void dropout_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dx, const DropoutParams& params,
                      bool accumulate = false);

// ---------------------------------------------------------------------------------------------
// Attention: fused softmax(q k^T * scale [causal]) [dropout] v over Megatron's fused QKV layout.

struct AttentionParams {
  int num_heads = 0;      ///< NH heads in this tensor (per TP rank)
  float scale = 0.0f;     ///< 0: 1/sqrt(HS)
  bool causal = true;     ///< key j > query i masked (-inf), as Megatron's upper-triangular kernel
  DropoutParams dropout;  ///< attention-probability dropout; element index below
  int head_offset = 0;    ///< global index of head 0 of this tensor (TP rank r: r*NH)
  int total_heads = 0;    ///< heads of the full model (0: num_heads); with head_offset keeps masks TP-invariant
};

/// qkv (T, B, NH*3*HS) A, head-interleaved (head h: columns [3HS h, 3HS h + HS) = q, then k, then v);
/// out (T, B, NH*HS) A, head h at columns [HS h, HS h + HS); lse (B, NH, T) fp32 = log-sum-exp of
/// each score row, kept for the backward pass (which recomputes probabilities; no (T, T) tensor is
/// stored). Dropout element (b, h, i, j) has index ((b*total_heads + head_offset + h)*T + i)*T + j.
void attention_forward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                       const AttentionParams& params);
/// dqkv (T, B, NH*3*HS) A is written (=) from dout (T, B, NH*HS) and the forward's qkv, out, lse.
void attention_backward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                        const TensorView& dout, const TensorView& dqkv, const AttentionParams& params);

// ---------------------------------------------------------------------------------------------
// General attention: softmax(scale q k^T + bias, masked) [dropout] v over separate q, k, v views.
// The case attention_forward does not cover: cross attention (Tq != Tk), T5's relative position
// bias, key padding, and decoding against a KV cache. Per batch row b, head h, query i, key j:
//   s_ij = scale * q_i . k_j + bias[h, i, j]
//   key j is masked (-inf) when j >= key_lengths[b], or, with causal, when j > kv_offset + i;
//   both masks keep a prefix j < L_i of the keys.
// Query i sits at position kv_offset + i of the key sequence: decoding a block of Tq new tokens
// against a cache of kv_offset earlier ones is causal with kv_offset = Tk - Tq; kv_offset 0 with
// Tq == Tk is ordinary causal self-attention (the CPU reference then equals attention_forward bit
// for bit).
// A query with no unmasked key (all keys padded, or bias -inf everywhere) gets out = 0,
// lse = +inf and zero gradients, never NaN.

/// The scalar settings of attention_general_*; the tensors (bias, key_lengths) are arguments.
struct GeneralAttentionParams {
  int num_heads = 0;           ///< NH heads in this tensor (per TP rank)
  float scale = 0.0f;          ///< 0: 1/sqrt(HS); T5 uses 1
  bool causal = false;         ///< key j > kv_offset + i masked
  std::int64_t kv_offset = 0;  ///< position of query 0 in the key sequence (>= 0; the KV-cache length)
  DropoutParams dropout;       ///< attention-probability dropout; element index below
  int head_offset = 0;         ///< global index of head 0 of this tensor (TP rank r: r*NH)
  int total_heads = 0;         ///< heads of the full model (0: num_heads)
};

/// q (Tq, B, NH*HS) A; k, v (Tk, B, NH*HS) A; Tq, Tk, B >= 1. Each may be a strided view: unit stride in the last
/// dimension, any stride in the others (column slices of a fused projection), or 4-D
/// (T, B, NH, HS) with any head stride (Megatron's head-interleaved fused QKV seen as three views).
/// bias (NH, Tq, Tk) fp32 contiguous, broadcast over the batch, or empty. key_lengths: B host
/// values in [0, Tk], or empty (every key valid). out (Tq, B, NH*HS) A contiguous; lse (B, NH, Tq)
/// fp32 = log-sum-exp of each masked score row, kept for the backward pass (+inf for a row with no
/// unmasked key). Dropout element (b, h, i, j) has index ((b*total_heads + head_offset + h)*Tq + i)*Tk + j.
void attention_general_forward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                               const TensorView& bias, std::span<const std::int32_t> key_lengths,
                               const TensorView& out, const TensorView& lse, const GeneralAttentionParams& params);
/// From dout (Tq, B, NH*HS) A contiguous and the forward's tensors: dq, dk, dv written (=), each
/// with its input's shape and any strides allowed for it (slices of one fused gradient work; the
/// three must not overlap); dbias (NH, Tq, Tk) fp32 += the score gradient summed over the batch
/// (batch rows added in order), or empty (not computed). bias must be what the forward got.
void attention_general_backward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView& bias, std::span<const std::int32_t> key_lengths,
                                const TensorView& out, const TensorView& lse, const TensorView& dout,
                                const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                const TensorView& dbias, const GeneralAttentionParams& params);

// ---------------------------------------------------------------------------------------------
// Cross entropy over a (padded, possibly vocab-sharded) vocabulary

/// Per row n of logits (N, Vl) (A or fp32, unit inner stride): lse[n] = logsumexp(logits[n]) and
/// losses[n] = lse[n] - logits[n][targets[n] - vocab_start] (the target term is 0 when the target
/// lies outside this shard: vocab-parallel callers combine shards' lse and target logits).
/// targets (N) int32; losses, lse (N) fp32. Padded vocab columns are ordinary softmax entries.
void cross_entropy_forward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                           const TensorView& losses, const TensorView& lse, std::int64_t vocab_start = 0);
/// dlogits (N, Vl) = (exp(logits - lse) - onehot(targets - vocab_start)) * dlosses[n]; lse is the
/// full-vocabulary log-sum-exp; dlogits may alias logits (in place).
void cross_entropy_backward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                            const TensorView& lse, const TensorView& dlosses, const TensorView& dlogits,
                            std::int64_t vocab_start = 0);

/// out[n] (int32) = the column of the largest x[n] (lowest index on ties); x (N, V) A or fp32 with
/// unit inner stride (a column slice of padded logits works).
void argmax(const OpContext& ctx, const TensorView& x, const TensorView& out);

// ---------------------------------------------------------------------------------------------
// Optimizer

struct AdamWParams {
  float lr = 0.0f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = true;  ///< true: AdamW (apex FusedAdam adam_w_mode); false: L2 added to g (torch Adam)
  std::int64_t step = 1;               ///< 1-based step for bias correction
  float grad_scale = 1.0f;             ///< g is multiplied by this first (1/loss_scale, clip coefficient)
};

/// One Adam(W) update on fp32 tensors of equal numel: param, exp_avg, exp_avg_sq updated in place
/// from grad (apex FusedAdam math: eps outside the sqrt, bias correction, wd scaled by lr).
/// model_param (same numel, A, or empty) receives the updated param rounded to its dtype (the
/// bf16/fp16 compute copy of an fp32 master weight).
void adamw_step(const OpContext& ctx, const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
                const TensorView& exp_avg_sq, const AdamWParams& params, const TensorView& model_param = {});

/// One group of tensors of a multi-tensor Adam(W) step.
struct AdamWTensors {
  TensorView param, grad, exp_avg, exp_avg_sq;  ///< fp32, equal numel, contiguous
  TensorView model_param;                       ///< A or empty, as in adamw_step
  float weight_decay = 0.0f;                    ///< this group's decay (replaces params.weight_decay)
};

/// adamw_step over every group with its own weight decay: the optimizer step over a parameter list
/// (decay and no-decay groups). The result equals one adamw_step per group; on CUDA it is a single
/// launch for the whole list.
void adamw_step_multi(const OpContext& ctx, std::span<const AdamWTensors> groups, const AdamWParams& params);

// ---------------------------------------------------------------------------------------------
// Elementwise and utilities (contiguous tensors unless stated)

/// Sets every element of x (any dtype) to value.
void fill(const OpContext& ctx, const TensorView& x, double value);
/// dst = src converted to dst's dtype (floats round to nearest even; ints <-> floats by value).
/// Same shape; src may be strided; src and dst may be on different devices (host <-> device copies).
void copy(const OpContext& ctx, const TensorView& src, const TensorView& dst);
/// out = a + b elementwise (float dtypes, all the same shape; out may alias a or b).
void add(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out);
/// x *= factor in place (float dtypes).
void scale(const OpContext& ctx, const TensorView& x, float factor);
/// out (a 1-element fp32 tensor) = (or += with accumulate) sum of x^2 over x (float dtypes).
/// Partial sums over fixed 4096-element chunks in fp64, added in order: deterministic. Inf/NaN in x
/// propagate (the fp16 overflow check uses this).
void sum_squares(const OpContext& ctx, const TensorView& x, const TensorView& out, bool accumulate = false);

/// out (1-element fp32) = (or += with accumulate) the sum of x^2 over every tensor of xs (float
/// dtypes, contiguous): the squared global norm for gradient clipping. Fixed 4096-element chunks per
/// tensor in fp64, added in list order (deterministic); equal to sum_squares per tensor with
/// accumulate up to the fp32 rounding of the running total. On CUDA two launches for the whole list.
void sum_squares_multi(const OpContext& ctx, std::span<const TensorView> xs, const TensorView& out,
                       bool accumulate = false);

}  // namespace bignlp::ops
