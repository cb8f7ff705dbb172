// BlockSpec: what one transformer block is made of, as data. One block implementation
// (transformer_layer.h) reads it; model families differ only in the spec they build.
//
//   GPT (Megatron/NeMo GPT)       layernorm+bias, tanh GeLU, biases, causal self-attention, no cross
//                                 attention, learned absolute positions (outside the block)
//   T5 encoder / decoder (NeMo)   padding (bidirectional) self-attention / causal + padding with
//                                 cross-attention, optionally GeGLU and T5 relative position bias
//   LLaMA-style (a test family)   rmsnorm without bias, SwiGLU, no linear biases, causal
// The spec carries the sizes of the block too, so a family with two stacks (encoder, decoder) has
// one spec per stack. Parameter names follow NeMo's state-dict keys through BlockNaming.
// Not expressed here (rejected by the families): post-LN / normformer blocks, rotary positions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "bignlp/ops/ops.h"

namespace bignlp::model {

enum class Normalization {
  kLayerNorm,  ///< (x - mean) / sqrt(var + eps) * weight [+ bias]
  kRmsNorm,    ///< x / sqrt(mean(x^2) + eps) * weight (no bias): T5LayerNorm, LLaMA
};

/// Which keys each query of the block's self-attention sees.
enum class SelfAttentionMask {
  kCausal,         ///< keys j <= i (decoder-only, T5 decoder), plus key padding when lengths are given
  kBidirectional,  ///< every key, plus key padding when lengths are given (T5 encoder)
};

/// The additive attention bias the block's self-attention takes from its model.
enum class PositionBias {
  kNone,
  kRelative,  ///< T5 relative position buckets: (NH, T, T) computed once per stack by the model
};

/// NeMo/Megatron state-dict names of one stack's layers.
struct BlockNaming {
  /// fmt pattern of layer i's prefix, e.g. "model.language_model.encoder.layers.{}".
  std::string layer_pattern = "model.language_model.encoder.layers.{}";
  /// "model.language_model.encoder.layers.<i>" for layer_index i (0-based).
  std::string prefix(int layer_index) const;

  static BlockNaming gpt();
  static BlockNaming t5_encoder();
  static BlockNaming t5_decoder();
};

struct BlockSpec {
  // Sizes (this stack's).
  std::int64_t hidden_size = 0;          ///< C
  std::int64_t ffn_hidden_size = 0;      ///< F (the width of each branch of a gated MLP)
  int num_attention_heads = 0;           ///< NH
  std::int64_t kv_channels = 0;          ///< HS
  int num_layers = 0;                    ///< layers of the stack (the scaled init's sqrt(2L))

  // Numerics.
  Normalization normalization = Normalization::kLayerNorm;
  bool normalization_bias = true;        ///< the norms have a bias
  float normalization_epsilon = 1e-5f;
  ops::Activation activation = ops::Activation::kGeluTanh;
  bool gated_linear_unit = false;        ///< act(x W1 + b1) * (x W2 + b2): geglu / swiglu / reglu
  bool bias = true;                      ///< the linear layers have biases
  SelfAttentionMask self_attention_mask = SelfAttentionMask::kCausal;
  bool cross_attention = false;          ///< a cross-attention sub-block over the encoder's output
  PositionBias position_bias = PositionBias::kNone;
  /// Attention score scale; 0: 1/sqrt(HS). T5 with normalize_attention_scores false uses 1.
  float softmax_scale = 0.0f;
  /// Megatron's query-key layer scaling. Scores are computed in fp32, so it does not change them;
  /// it does multiply a relative position bias by the layer number (NeMo's behaviour).
  bool apply_query_key_layer_scaling = false;
  float init_method_std = 0.02f;
  bool use_scaled_init_method = true;    ///< output projections use std / sqrt(2L)
  float hidden_dropout = 0.0f;
  float attention_dropout = 0.0f;

  BlockNaming naming;

  std::int64_t projection_size() const { return kv_channels * num_attention_heads; }
  /// Dropout streams per layer: 3 (attention probabilities, attention output, MLP output), and 2
  /// more with cross-attention (its probabilities and output).
  int dropout_sites_per_layer() const { return cross_attention ? 5 : 3; }
  /// True when the block is the plain GPT block: causal self-attention over the fused QKV with
  /// the default scale and no bias, which runs the fused attention op.
  bool fused_causal_attention() const {
    return self_attention_mask == SelfAttentionMask::kCausal && position_bias == PositionBias::kNone &&
           softmax_scale == 0.0f;
  }
  /// Throws ConfigError for inconsistent values (sizes, heads).
  void validate() const;

 private:
  bool layer_pattern_ok() const;
};

/// "layernorm" / "rmsnorm"; parse accepts NeMo's spellings and throws ConfigError naming `key`.
std::string normalization_name(Normalization n);
Normalization parse_normalization(const std::string& text, const std::string& key);

/// NeMo's `activation` key: gelu (the tanh form of Megatron's fused bias-GeLU), relu, swish/silu,
/// and the gated geglu, reglu, swiglu. Returns the activation and whether it is gated; throws
/// ConfigError naming `key` for anything else.
std::pair<ops::Activation, bool> parse_activation(const std::string& text, const std::string& key);

}  // namespace bignlp::model
