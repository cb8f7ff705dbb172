// LayerShape: the sizes of one pre-LN transformer layer (Megatron's ParallelTransformerLayer), and
// what follows from them alone: its parameter count, whole or on one tensor-parallel rank.
//
//   self-attention   norm (C [+ C bias]), QKV (3*NH*HS, C) [+ 3*NH*HS], dense (C, NH*HS) [+ C]
//   cross-attention  decoder layers only: norm, Q (NH*HS, C) [+ NH*HS], KV (2*NH*HS, C) [+ 2*NH*HS],
//                    dense (C, NH*HS) [+ C]
//   MLP              norm, input (F, C) [+ F] (twice when gated: act(x W1) * (x W2)), output (C, F) [+ C]
// Brackets are the linear biases (NeMo `bias`) and the norm biases (LayerNorm has one, RMSNorm and
// T5's layer norm do not). Tensor parallelism splits the column-parallel projections (QKV, Q, KV,
// MLP inputs: weights and biases) and the row-parallel weights (dense, MLP output) into TP equal
// parts; norms and row-parallel biases are replicated on every rank. Position tables, embeddings
// and output layers belong to the model (gpt_shape.h, t5_shape.h), not to a layer.
#pragma once

#include <cstdint>

namespace bignlp::sizing {

struct LayerShape {
  std::int64_t hidden_size = 0;      ///< C
  std::int64_t ffn_hidden_size = 0;  ///< F: the width of each MLP input projection
  int num_attention_heads = 0;       ///< NH
  std::int64_t head_size = 0;        ///< HS (kv_channels)
  bool gated_mlp = false;            ///< two MLP input projections (geglu, swiglu)
  bool linear_bias = true;           ///< every linear layer has a bias
  bool norm_bias = true;             ///< the norms have a bias (LayerNorm: yes; RMSNorm: no)
  bool cross_attention = false;      ///< a decoder layer: cross-attention and its norm

  /// NH * HS: the width of the attention projections.
  std::int64_t projection_size() const { return head_size * num_attention_heads; }
  /// 2, or 3 when gated: the MLP's (F, C) matrices.
  int mlp_matrices() const { return gated_mlp ? 3 : 2; }
  /// 2, or 3 with cross-attention.
  int norms() const { return cross_attention ? 3 : 2; }
};

/// Parameters of `layer` on one of `tp_size` tensor-parallel ranks (1: the whole layer). Throws
/// ConfigError when NH or F is not divisible by tp_size.
std::int64_t layer_parameter_count(const LayerShape& layer, int tp_size = 1);

}  // namespace bignlp::sizing
