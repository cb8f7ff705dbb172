// TransformerLayer: one pre-LayerNorm Megatron GPT block on sequence-first rows (N = T*B, C).
//
//   x1  = x + dropout(dense(attention(qkv(LN1(x)))))        hidden_dropout
//   out = x1 + dropout(fc2(gelu(fc1(LN2(x1)))))             hidden_dropout
// with fused QKV (NH*3*HS, head-interleaved), causal attention with attention_dropout on the
// probabilities, and biases added in the GEMMs. Dropout streams: offset_base + site, site =
// 1 + 3*layer_index + {0: attention probabilities, 1: attention output, 2: MLP output}, so a
// recomputation (activation checkpointing) reproduces every mask.
// The layer keeps no per-batch state: activations live in TransformerLayerActivations, one per
// in-flight micro-batch (pipeline schedules keep several).
// Tensor parallelism (ParallelContext with a TP communicator, t ranks): QKV and fc1 are
// column-parallel, dense and fc2 row-parallel, attention runs NH/t heads (head_offset keeps its
// dropout masks those of the full model). With sequence parallelism the residual stream, the
// LayerNorms and the hidden dropouts work on this rank's sequence slice: x_in/x_out are (N/t, C)
// and dropout element indices start at the slice's first row, so masks match one rank's.
#pragma once

#include "bignlp/model/gpt_config.h"
#include "bignlp/model/linear.h"
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
  Buffer ln2_out, ln2_mean, ln2_rstd;  // (N, C), (N), (N)
  Buffer fc1, act;                     // (N, F) pre-activation, GeLU output
  void clear() { *this = TransformerLayerActivations{}; }
};

/// Shapes and random streams of one micro-batch pass.
struct LayerPass {
  std::int64_t batch = 0;          ///< B
  std::int64_t seq = 0;            ///< T
  bool training = false;           ///< dropout on
  std::uint64_t seed = 0;
  std::uint64_t offset_base = 0;   ///< Philox offset of this micro-batch's site 0
  std::int64_t rows() const { return batch * seq; }
};

class TransformerLayer {
 public:
  /// layer_index: 0-based global index (Megatron layer_number - 1).
  TransformerLayer(const GptConfig& config, ParameterStore& store, int layer_index,
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

  int layer_index() const { return layer_index_; }
  const Linear& qkv() const { return qkv_; }
  const Linear& dense() const { return dense_; }
  const Linear& fc1() const { return fc1_; }
  const Linear& fc2() const { return fc2_; }
  Parameter& ln1_weight() const { return ln1_.weight(); }
  Parameter& ln1_bias() const { return ln1_.bias(); }
  Parameter& ln2_weight() const { return ln2_.weight(); }
  Parameter& ln2_bias() const { return ln2_.bias(); }

 private:
  ops::AttentionParams attention_params(const LayerPass& pass) const;
  ops::DropoutParams hidden_dropout(const LayerPass& pass, int site) const;
  /// Rows of the residual stream on this rank: N, or N/t with sequence parallelism.
  std::int64_t local_rows(const LayerPass& pass) const;

  const GptConfig* config_;
  int layer_index_;
  parallel::ParallelContext parallel_;
  int tp_size_ = 1;
  std::int64_t local_heads_ = 0;  // NH/t
  LayerNorm ln1_;
  Linear qkv_;
  Linear dense_;
  LayerNorm ln2_;
  Linear fc1_;
  Linear fc2_;
};

/// Name prefix of layer i: "model.language_model.encoder.layers.<i>".
std::string layer_prefix(int layer_index);

}  // namespace bignlp::model
