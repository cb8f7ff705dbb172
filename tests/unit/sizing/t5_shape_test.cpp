// T5 / mT5 parameter counts and FLOPs against values worked out by hand and the HP tool's formulas
// (hp-tool.md §3.4 and §4.6).
#include "bignlp/sizing/t5_shape.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::sizing {
namespace {

/// t5/220m: 12 + 12 layers, C 768, F 2048 geglu, 12 heads of 64, BERT vocabulary 29000 -> 29056,
/// learned positions (512), everything shared and tied, head bias.
T5Shape t5_220m() {
  T5Shape s;
  s.encoder_num_layers = 12;
  s.decoder_num_layers = 12;
  s.hidden_size = 768;
  s.ffn_hidden_size = 2048;
  s.num_attention_heads = 12;
  s.kv_channels = 64;
  s.vocab_size = 29000;
  s.padded_vocab_size = padded_vocab_size(29000, 128, 1);
  s.max_position_embeddings = 512;
  s.encoder_seq_length = 512;
  s.decoder_seq_length = 128;
  return s;
}

/// The HP tool's T5 size (hp-tool.md §3.4), L layers per stack, Pj = heads * kv.
double hp_tool_size(const T5Shape& s) {
  const double l = s.encoder_num_layers, f = static_cast<double>(s.ffn_hidden_size);
  const double pj = static_cast<double>(s.num_attention_heads * s.kv_channels), h = static_cast<double>(s.hidden_size);
  return 3 * l * f + 3 * l * pj +
         h * (2 + 6 * l * f + l * (21 + 12 * pj) + static_cast<double>(s.encoder_seq_length) +
              static_cast<double>(s.vocab_size));
}

TEST(T5Shape, PresetParameterCounts) {
  const T5Shape s = t5_220m();
  // Encoder layer: 2 LN 4C + QKV 3C^2 + 3C + dense C^2 + C + two input projections 2(FC + F) + output FC + C
  //   = 3072 + 1,771,776 + 590,592 + 3,149,824 + 1,573,632 = 7,088,896.
  EXPECT_EQ(layer_parameter_count(s.encoder_layer()), 7'088'896);
  // Decoder layer: + a third LN 2C, Q C^2 + C, KV 2C^2 + 2C, dense C^2 + C = 9,452,800.
  EXPECT_EQ(layer_parameter_count(s.decoder_layer()), 9'452'800);
  // 12 * 7,088,896 + 12 * 9,452,800 + word 29056 * 768 + positions 512 * 768 + 2 final LNs 4 * 768
  // + head bias 29056.
  EXPECT_EQ(parameter_count(s), 221'240'704);
  // The HP tool's approximate formula says 0.22 B as well (its test_utils row: 0.22).
  EXPECT_NEAR(parameter_count(s) / hp_tool_size(s), 1.0, 0.002);

  // mt5/170m: 8 + 8 layers, C 512, F 1024, 6 heads of 64 (NH * HS = 384 != C), vocabulary
  // 250000 -> 250112.
  T5Shape m = s;
  m.encoder_num_layers = m.decoder_num_layers = 8;
  m.hidden_size = 512;
  m.ffn_hidden_size = 1024;
  m.num_attention_heads = 6;
  m.vocab_size = 250000;
  m.padded_vocab_size = 250112;
  EXPECT_EQ(parameter_count(m), 172'733'696);
  EXPECT_NEAR(parameter_count(m) / hp_tool_size(m), 1.0, 0.002);  // HP tool: 0.17 B
}

TEST(T5Shape, SharingRelativePositionsAndNormsChangeTheCount) {
  const T5Shape s = t5_220m();
  const std::int64_t n = parameter_count(s);
  T5Shape own = s;
  own.share_token_embeddings = false;  // the decoder has its own word and position tables
  EXPECT_EQ(parameter_count(own), n + 29056 * 768 + 512 * 768);
  T5Shape untied = s;
  untied.tied_output = false;
  untied.output_bias = false;
  EXPECT_EQ(parameter_count(untied), n + 29056 * 768 - 29056);
  T5Shape relative = s;  // no absolute table; (32, 12) tables for the encoder and the decoder
  relative.position_embedding = T5PositionEmbedding::kRelative;
  EXPECT_EQ(parameter_count(relative), n - 512 * 768 + 2 * 32 * 12);
  relative.relative_position_bias_self_attention_only = false;  // and one for cross-attention
  EXPECT_EQ(parameter_count(relative), n - 512 * 768 + 3 * 32 * 12);
  T5Shape v11 = s;  // T5 v1.1: norms without bias: 2 + 3 per layer pair, 2 final
  v11.norm_bias = false;
  EXPECT_EQ(parameter_count(v11), n - (12 * 2 + 12 * 3 + 2) * 768);
}

TEST(T5Shape, RankCountsFollowThePipelineSplit) {
  const T5Shape s = t5_220m();
  EXPECT_EQ(rank_parameter_count(s, {}), parameter_count(s));
  // PP 2, split 1: stage 0 = encoder (12 layers, embedding, final LN); stage 1 = decoder (12 layers,
  // its copy of word and position tables, final LN, head bias; the head uses the copy on the stage).
  const std::int64_t s0 = 12 * 7'088'896LL + 29056 * 768 + 512 * 768 + 2 * 768;
  const std::int64_t s1 = 12 * 9'452'800LL + 29056 * 768 + 512 * 768 + 2 * 768 + 29056;
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 1, .pp_size = 2, .pp_rank = 0}), s0);
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 1, .pp_size = 2, .pp_rank = 1}), s1);
  EXPECT_EQ(s0 + s1, parameter_count(s) + 29056 * 768 + 512 * 768);
  // PP 4 (split 2), TP 2: 6 layers per stage, halves of the split tensors.
  const std::int64_t enc = layer_parameter_count(s.encoder_layer(), 2), dec = layer_parameter_count(s.decoder_layer(), 2);
  EXPECT_EQ(enc, 3'546'752);
  EXPECT_EQ(dec, 4'729'856);
  const ModelParallelRank r{.tp_size = 2, .pp_size = 4, .pp_rank = 0};
  EXPECT_EQ(rank_parameter_count(s, r), 6 * enc + 14528 * 768 + 512 * 768);
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 2, .pp_size = 4, .pp_rank = 1}), 6 * enc + 2 * 768);
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 2, .pp_size = 4, .pp_rank = 2}), 6 * dec + 14528 * 768 + 512 * 768);
  // Last stage: final LN, head bias shard and its copy of the tied embedding shard.
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 2, .pp_size = 4, .pp_rank = 3}), 6 * dec + 2 * 768 + 14528 + 14528 * 768);
  // An explicit split rank: 3 encoder stages of 4 layers, one decoder stage.
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 1, .pp_size = 4, .pp_rank = 3, .pipeline_split_rank = 3}),
            12 * 9'452'800LL + 29056 * 768 + 512 * 768 + 2 * 768 + 29056);
  // Relative tables live on every stage of their stack.
  T5Shape rel = s;
  rel.position_embedding = T5PositionEmbedding::kRelative;
  EXPECT_EQ(rank_parameter_count(rel, {.tp_size = 2, .pp_size = 4, .pp_rank = 1}), 6 * enc + 2 * 768 + 32 * 12);
}

TEST(T5Shape, RankCountsRejectImpossibleSplits) {
  const T5Shape s = t5_220m();
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 1, .pp_size = 2, .pp_rank = 0, .pipeline_split_rank = 2}),
               ConfigError);
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 1, .pp_size = 6, .pp_rank = 0, .pipeline_split_rank = 5}),
               ConfigError);  // 12 encoder layers over 5 stages
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 5, .pp_size = 1, .pp_rank = 0}), ConfigError);
}

TEST(T5Shape, FlopsFollowTheHpToolFormula) {
  const T5Shape s = t5_220m();
  // The worked example of t5_shape.h: 3 * 145,231,970,304.
  EXPECT_DOUBLE_EQ(model_flops_per_sequence(s), 3.0 * 145'231'970'304.0);
  // The HP tool's script for B = 1 with layers = Le + Ld (hp-tool.md §4.6).
  const double h = 768, se = 512, sd = 128, f = 2048, v = 29056, layers = 24;
  const double enc = 8 * se * h * h + 4 * se * se * h + 6 * se * h * f;
  const double dec = 8 * sd * h * h + 4 * sd * sd * h + 4 * se * h * h + 4 * sd * h * h + 4 * se * sd * h + 6 * sd * h * f;
  EXPECT_NEAR(model_flops_per_sequence(s) / (3 * ((enc + dec) * (layers / 2) + 2 * sd * h * v)), 1.0, 1e-12);
  // Full recompute: one more forward of the layers; selective: one more of the attention cores.
  EXPECT_NEAR(hardware_flops_per_sequence(s, Recompute::kFull) - model_flops_per_sequence(s), 12 * (enc + dec), 1e3);
  EXPECT_NEAR(hardware_flops_per_sequence(s, Recompute::kSelective) - model_flops_per_sequence(s),
              12 * (4 * se * se * h) + 12 * (4 * sd * sd * h + 4 * se * sd * h), 1e3);
}

}  // namespace
}  // namespace bignlp::sizing
