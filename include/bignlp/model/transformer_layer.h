// TransformerLayer: the one pre-norm transformer block of every model family, chosen by a
// BlockSpec (block_spec.h), on sequence-first rows (N = T*B, C).
//
//   x1  = x  + dropout(dense(self_attention(qkv(norm1(x)))))                      hidden_dropout
//   x2  = x1 + dropout(inter_dense(cross_attention(query(norm_c(x1)), key_value(enc))))  [cross]
//   out = x2 + dropout(fc2(act(fc1(norm2(x2)) [, fc1_2(norm2(x2))])))              hidden_dropout
// with Megatron's fused, head-interleaved QKV (NH*3*HS), cross-attention key/value head-interleaved
// (NH*2*HS), attention_dropout on the probabilities, and biases added in the GEMMs (spec.bias).
// Self-attention is causal or bidirectional (spec), with optional key padding (LayerPass::
// key_lengths) and an additive position bias (LayerPass::position_bias, T5). The plain GPT block
// (BlockSpec::fused_causal_attention without padding) runs the fused causal attention op; every
// other case the general attention op on q/k/v taken out of the fused projection.
// Dropout streams: offset_base + site, site = 1 + S*layer_index + {0: attention probabilities,
// 1: attention output, 2: MLP output, 3: cross-attention probabilities, 4: its output} with
// S = spec.dropout_sites_per_layer(), so a recomputation (activation checkpointing) reproduces
// every mask. The layer keeps no per-batch state: activations live in TransformerLayerActivations,
// one per in-flight micro-batch (pipeline schedules keep several).
// Tensor parallelism (ParallelContext with a TP communicator, t ranks): QKV, query, key_value,
// fc1 (and fc1_2) are column-parallel, dense, inter_dense and fc2 row-parallel, attention runs NH/t
// heads (head_offset keeps its dropout masks those of the full model). With sequence parallelism
// the residual stream, the norms and the hidden dropouts work on this rank's sequence slice: x_in/
// x_out are (N/t, C) and dropout element indices start at the slice's first row.
// Not handled: sequence parallelism together with cross-attention.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "bignlp/model/block_spec.h"
#include "bignlp/model/linear.h"
#include "bignlp/model/model.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::model {

/// What a forward pass keeps for the backward pass.
enum class ActivationStorage {
  kAll,              ///< everything the backward needs
  kNoCoreAttention,  ///< selective checkpointing: attention output and lse are recomputed from qkv
  kNone,             ///< full checkpointing: nothing (the caller keeps the input and recomputes)
};

/// Saved tensors of one layer for one micro-batch (empty buffers when not kept).
struct TransformerLayerActivations {
  Buffer ln1_out, ln1_mean, ln1_rstd;  // (N, C), (N), (N)
  Buffer qkv;                          // (T, B, 3*NH*HS)
  Buffer attn, lse;                    // (T, B, NH*HS), (B, NH, T)
  Buffer x1;                           // (N, C) residual after attention
  Buffer lnc_out, lnc_mean, lnc_rstd;  // cross-attention: (N, C), (N), (N)
  Buffer q_cross, kv_cross;            // (T, B, NH*HS), (Te, B, 2*NH*HS)
  Buffer attn_cross, lse_cross;        // (T, B, NH*HS), (B, NH, T)
  Buffer x2;                           // (N, C) residual after cross-attention
  Buffer ln2_out, ln2_mean, ln2_rstd;  // (N, C), (N), (N)
  Buffer fc1, fc1_2, act;              // (N, F) pre-activation(s), activation output
  void clear() { *this = TransformerLayerActivations{}; }
};

/// Shapes, random streams and the per-micro-batch inputs of one pass.
struct LayerPass {
  std::int64_t batch = 0;          ///< B
  std::int64_t seq = 0;            ///< T
  bool training = false;           ///< dropout on
  std::uint64_t seed = 0;
  std::uint64_t offset_base = 0;   ///< Philox offset of this micro-batch's site 0
  /// (B) int32 host: valid keys of each row's self-attention (padding), or empty for all.
  TensorView key_lengths;
  /// (NH/t, T, T) fp32 additive self-attention bias (spec.position_bias), or empty.
  TensorView position_bias;
  /// (NH/t, T, T) fp32 gradient of position_bias, accumulated (+=) by the backward pass, or empty.
  TensorView position_bias_grad;
  /// Cross-attention: the encoder's output (Te, B, C) in the compute dtype, its valid lengths (B)
  /// int32 host (or empty), and the gradient of the encoder output, accumulated (+=) in backward.
  TensorView encoder_output;
  TensorView encoder_lengths;
  TensorView encoder_output_grad;
  std::int64_t rows() const { return batch * seq; }
};

/// What cached decoding of an encoder-decoder block brings besides the self-attention cache.
struct CachedDecodeExtras {
  /// Per segment: its self-attention position bias (NH/t, count, past + count) fp32 contiguous, as
  /// the provider gives it (the layer applies query-key layer scaling); empty without a bias.
  std::span<const TensorView> position_bias;
  /// Cross-attention: keys and values of the encoded inputs (slots, Te capacity, NH/t*HS), and per
  /// segment the encoder slot it reads and that slot's valid positions.
  TensorView cross_keys, cross_values;
  std::span<const std::int64_t> cross_slot, cross_length;
};

class TransformerLayer {
 public:
  /// layer_index: 0-based index within the stack (Megatron layer_number - 1).
  TransformerLayer(const BlockSpec& spec, ParameterStore& store, int layer_index,
                   const parallel::ParallelContext& parallel = {});

  /// x_out (N, C) = block(x_in (N, C)) ((N/t, C) each under sequence parallelism); keeps what
  /// `storage` says in `acts`. ctx.allocator required.
  void forward(const ops::OpContext& ctx, const LayerPass& pass, const TensorView& x_in, const TensorView& x_out,
               TransformerLayerActivations& acts, ActivationStorage storage) const;
  /// dx (N, C): on entry the gradient of x_out, on return the gradient of x_in. Parameter
  /// gradients accumulate. `acts` must come from a kAll or kNoCoreAttention forward of the same
  /// x_in and pass; they are released as the backward pass consumes them.
  void backward(const ops::OpContext& ctx, const LayerPass& pass, const TensorView& x_in,
                TransformerLayerActivations& acts, const TensorView& dx) const;

  /// Inference forward (no dropout, nothing kept) of packed rows x_in (N, C) -> x_out (N, C):
  /// segment s owns the next segs[s].count rows, positions [past, past + count) of the sequence in
  /// cache slot segs[s].slot. Their keys and values are written into k_cache/v_cache (slots,
  /// capacity, NH/t*HS) and each query attends causally to positions [0, its own]. A block with a
  /// position bias or cross-attention needs them in `extras`; causal self-attention only; no
  /// sequence parallelism.
  void forward_cached(const ops::OpContext& ctx, std::span<const DecodeSegment> segs, const TensorView& x_in,
                      const TensorView& x_out, const TensorView& k_cache, const TensorView& v_cache,
                      const CachedDecodeExtras& extras = {}) const;
  /// Cross-attention keys and values of an encoder output enc (Te, C) into keys/values (Te,
  /// NH/t*HS) each (rows of a cache slot). Blocks with cross-attention only.
  void cross_key_values(const ops::OpContext& ctx, const TensorView& enc, const TensorView& keys,
                        const TensorView& values) const;

  int layer_index() const { return layer_index_; }
  const BlockSpec& spec() const { return spec_; }
  /// Every parameter of the layer, in registration order.
  std::vector<Parameter*> parameters() const;

 private:
  ops::AttentionParams fused_attention_params(const LayerPass& pass) const;
  ops::GeneralAttentionParams attention_params(const LayerPass& pass, bool causal, int site) const;
  ops::DropoutParams hidden_dropout(const LayerPass& pass, int site) const;
  std::uint64_t site_offset(const LayerPass& pass, int site) const;
  /// Rows of the residual stream on this rank: N, or N/t with sequence parallelism.
  std::int64_t local_rows(const LayerPass& pass) const;
  bool uses_fused_attention(const LayerPass& pass) const;
  /// The self-attention bias of this layer: pass.position_bias, times the layer number under
  /// query-key layer scaling (then a scaled copy in `storage`).
  TensorView self_attention_bias(const ops::OpContext& ctx, const LayerPass& pass, Buffer& storage) const;
  void self_attention_forward(const ops::OpContext& ctx, const LayerPass& pass, TransformerLayerActivations& a) const;
  void self_attention_backward(const ops::OpContext& ctx, const LayerPass& pass, TransformerLayerActivations& a,
                               const TensorView& d_attn, const TensorView& d_qkv) const;
  void cross_attention_forward(const ops::OpContext& ctx, const LayerPass& pass, TransformerLayerActivations& a) const;
  void cross_attention_backward(const ops::OpContext& ctx, const LayerPass& pass, TransformerLayerActivations& a,
                                const TensorView& d_attn, const TensorView& d_query) const;
  void mlp_activation_forward(const ops::OpContext& ctx, TransformerLayerActivations& a) const;
  /// From d_act (N, F), the gradient of the activation output: returns the gradient of fc1's
  /// output (in d_act's or fc1's memory) and sets *d_up to that of fc1_2's (gated units).
  TensorView mlp_activation_backward(const ops::OpContext& ctx, TransformerLayerActivations& a,
                                     const TensorView& d_act, TensorView* d_up) const;

  BlockSpec spec_;
  int layer_index_;
  parallel::ParallelContext parallel_;
  int tp_size_ = 1;
  std::int64_t local_heads_ = 0;  // NH/t
  Norm norm1_;
  Linear qkv_;
  Linear dense_;
  std::optional<Norm> norm_cross_;
  std::optional<Linear> query_cross_;
  std::optional<Linear> key_value_cross_;
  std::optional<Linear> dense_cross_;
  Norm norm2_;
  Linear fc1_;
  std::optional<Linear> fc1_2_;
  Linear fc2_;
};

/// Name prefix of GPT layer i: "model.language_model.encoder.layers.<i>".
std::string layer_prefix(int layer_index);

}  // namespace bignlp::model
