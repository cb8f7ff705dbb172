// T5Shape: the sizes of a Megatron T5 / mT5 (NeMo MegatronT5Model) as plain numbers, and the
// arithmetic over them: parameter counts (whole model, one (TP, PP) rank) and model FLOPs.
//
//   embedding: word (Vp, C) vocab-parallel [+ position (P, C) when learned_absolute]; the decoder
//     uses the encoder's tables (share_token_embeddings) or its own
//   relative position bias (relative): one (buckets, NH) table per use, replicated: encoder
//     self-attention, decoder self-attention, decoder cross-attention unless self-attention only
//   Le encoder layers, Ld decoder layers (cross-attention); a final norm per stack
//   head: the word embedding again (share_decoder_tokens_head_embeddings) or its own (Vp, C)
//     matrix; a (Vp) bias when tokens_head_bias.
// Pipeline split (megatron-model.md §8.6): stages [0, k) hold Le / k encoder layers each, stages
// [k, PP) Ld / (PP - k) decoder layers each, k = pipeline_split_rank (PP / 2 by default). Stage 0
// holds the embedding; stage k the decoder's embedding (a copy of the shared one, kept equal by an
// all-reduce, or its own); stage k-1 the encoder's final norm; the last stage the decoder's final
// norm and the head (with a copy of the tied embedding unless stage k is the last stage); every
// stage the relative-position tables of its stack.
// mT5 / T5 v1.1 are the same shapes with a gated MLP (geglu); T5 v1.1's norm has no bias.
#pragma once

#include <cstdint>

#include "bignlp/sizing/layer_shape.h"
#include "bignlp/sizing/layout.h"

namespace bignlp::sizing {

/// position_embedding_type.
enum class T5PositionEmbedding { kLearnedAbsolute, kRelative };

struct T5Shape {
  int encoder_num_layers = 0;                ///< Le
  int decoder_num_layers = 0;                ///< Ld
  std::int64_t hidden_size = 0;              ///< C (the same in both stacks)
  std::int64_t ffn_hidden_size = 0;          ///< F
  int num_attention_heads = 0;               ///< NH
  std::int64_t kv_channels = 0;              ///< HS
  std::int64_t vocab_size = 0;               ///< V
  std::int64_t padded_vocab_size = 0;        ///< Vp (vocab.h)
  std::int64_t max_position_embeddings = 0;  ///< P (learned_absolute)
  std::int64_t encoder_seq_length = 0;       ///< Te (model.seq_length)
  std::int64_t decoder_seq_length = 0;       ///< Td (model.data.seq_length_dec)
  T5PositionEmbedding position_embedding = T5PositionEmbedding::kLearnedAbsolute;
  int relative_attention_num_buckets = 32;
  bool relative_position_bias_self_attention_only = true;
  bool gated_mlp = true;              ///< activation geglu (reglu, swiglu)
  bool linear_bias = true;
  bool norm_bias = true;
  bool share_token_embeddings = true;  ///< the decoder embeds with the encoder's tables
  bool tied_output = true;             ///< share_decoder_tokens_head_embeddings
  bool output_bias = true;             ///< tokens_head_bias

  LayerShape encoder_layer() const;
  LayerShape decoder_layer() const;
};

/// Every parameter once (shared and tied tables counted once). t5/220m: 221,240,704.
std::int64_t parameter_count(const T5Shape& shape);

/// The parameters rank `rank` stores (see the file comment for what each stage holds). Throws
/// ConfigError for a layout the model cannot take (Le % k, Ld % (PP - k), NH % TP, F % TP, Vp % TP,
/// a split rank outside [1, PP), a rank outside the stages).
std::int64_t rank_parameter_count(const T5Shape& shape, const ModelParallelRank& rank);

/// Model FLOPs of one sequence pair (Te encoder tokens, Td decoder tokens), forward + backward,
/// recomputation not counted: 3 x the forward, the formula of NeMo's HP tool (its throughput
/// script, megatron-model.md §9), counting 2 FLOPs per multiply-add:
///   encoder layer   8 Te C^2 + 4 Te^2 C + 2 m Te C F        (QKV + dense, QK^T + probs*V, MLP)
///   decoder layer   8 Td C^2 + 4 Td^2 C                       (self-attention)
///                 + 4 Td C^2 + 4 Te C^2 + 4 Te Td C           (cross-attention: Q + dense on the
///                                                              decoder, KV on the encoder output)
///                 + 2 m Td C F                                (MLP)
///   forward = Le * encoder + Ld * decoder + 2 Td C Vp         (logits)
/// with m = 3 matrices for a gated MLP, 2 otherwise. Like the GPT recipe it assumes NH * HS = C;
/// the HP tool uses the unpadded V (give a shape with Vp = V to reproduce its figures).
/// Example t5/220m (Le = Ld = 12, C 768, F 2048 geglu, Te 512, Td 128, Vp 29056):
///   encoder 2,415,919,104 + 805,306,368 + 4,831,838,208 = 8,053,063,680
///   decoder 603,979,776 + 50,331,648 + 301,989,888 + 1,207,959,552 + 201,326,592 + 1,207,959,552
///           = 3,573,547,008
///   logits  2 * 128 * 768 * 29056 = 5,712,642,048
///   forward 12 * 8,053,063,680 + 12 * 3,573,547,008 + 5,712,642,048 = 145,231,970,304
///   forward + backward 3 * forward = 4.357e11 per sequence pair
double model_flops_per_sequence(const T5Shape& shape);

/// Model FLOPs plus the recomputed forward work: full, one more forward of every layer; selective,
/// one more core attention (4 Te^2 C per encoder layer, 4 Td^2 C + 4 Te Td C per decoder layer).
double hardware_flops_per_sequence(const T5Shape& shape, Recompute recompute);

}  // namespace bignlp::sizing
