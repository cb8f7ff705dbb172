// GptShape: the sizes of a Megatron GPT as plain numbers, and the arithmetic over them: parameter
// counts (whole model, one (TP, PP) rank) and model FLOPs per sequence.
//
//   word embedding (Vp, C), vocab-parallel      position embedding (P, C), replicated (learned only)
//   L x layer (layer_shape.h)                    final norm C [+ C]
//   output: the word embedding again (tied; with PP > 1 the last stage holds its own copy, kept
//   equal by an all-reduce) or its own (Vp, C) column-parallel matrix without bias (untied).
// Knows nothing of configs, YAML or devices (model::gpt_shape builds one from a model::GptConfig;
// the HP tool builds them from its size tables). Layers are split evenly over PP stages (L % PP ==
// 0, as Megatron requires); the interleaved schedule moves layers between chunks of a stage, never
// between stages, so it changes no per-rank count.
#pragma once

#include <cstdint>

#include "bignlp/sizing/layer_shape.h"
#include "bignlp/sizing/layout.h"

namespace bignlp::sizing {

struct GptShape {
  int num_layers = 0;                       ///< L
  std::int64_t hidden_size = 0;             ///< C
  std::int64_t ffn_hidden_size = 0;         ///< F
  int num_attention_heads = 0;              ///< NH
  std::int64_t head_size = 0;               ///< HS (kv_channels; C / NH by default)
  std::int64_t vocab_size = 0;              ///< V: the tokenizer's
  std::int64_t padded_vocab_size = 0;       ///< Vp (vocab.h)
  std::int64_t max_position_embeddings = 0; ///< P
  std::int64_t seq_length = 0;              ///< T
  bool gated_mlp = false;                   ///< two MLP input projections (layer_shape.h)
  bool linear_bias = true;                  ///< NeMo `bias`
  bool norm_bias = true;                    ///< LayerNorm (true) or RMSNorm (false)
  bool learned_position_embeddings = true;  ///< false: no position table (rotary or none)
  bool tied_output = true;                  ///< the output layer is the word embedding

  /// One of the L identical layers.
  LayerShape layer() const;
};

/// Every parameter once (the tied output counted once). gpt3/126m: 125,262,336.
std::int64_t parameter_count(const GptShape& shape);

/// The parameters rank `rank` stores: its layers, the embeddings on the first stage, the final
/// norm and the output layer (or its copy of the tied embedding) on the last stage; split tensors
/// count the rank's shard. Summed over the ranks of one model replica this exceeds
/// parameter_count() by the replicated tensors and the tied copy. Throws ConfigError for a layout
/// the model cannot take (L % PP, NH % TP, F % TP, Vp % TP, a rank outside the stages).
std::int64_t rank_parameter_count(const GptShape& shape, const ModelParallelRank& rank);

/// Model FLOPs of one sequence of T tokens, forward + backward (recomputation not counted), the
/// formula of the GPT-3 benchmark recipe (Megatron, Narayanan et al. 2021 §5.1; NeMo's
/// throughput script):
///   T * (24 L C^2 + 12 L C T + 12 L C F + 6 Vp C)
/// attention 24 L C^2 (QKV and dense: 2 FLOPs per multiply-add x 4 C^2, x3 for forward + backward)
/// plus 12 L C T (QK^T and probs*V), MLP 12 L C F (= 48 L C^2 at F = 4C; 18 L C F when gated), the
/// logits 6 Vp C. The recipe assumes NH * HS = C. Example gpt3/175b (L 96, C 12288, T 2048, Vp 51200):
/// 2048 * (3.769e11 + 6.958e11 + 3.775e9) = 2.20e15.
double model_flops_per_sequence(const GptShape& shape);

/// Hardware FLOPs of one sequence: model FLOPs plus the recomputed forward work. Full: one more
/// forward of every layer, T * L * (8 C^2 + 4 C T + 4 C F) (6 C F gated); selective: one more core attention,
/// 4 L C T^2 (Korthikanti et al. 2022, the HP tool's "HW TFLOPS").
double hardware_flops_per_sequence(const GptShape& shape, Recompute recompute);

}  // namespace bignlp::sizing
