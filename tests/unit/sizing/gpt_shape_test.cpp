// GPT parameter counts and FLOPs against values worked out by hand and against the HP tool's and
// the GPT-3 recipe's formulas. The cross-check against the real model's parameter store is in
// tests/unit/model/gpt_model_test.cpp.
#include "bignlp/sizing/gpt_shape.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::sizing {
namespace {

/// The gpt3/* presets: GPT-2 vocabulary padded at the preset's TP, 2048 tokens, F = 4C, HS = C/NH.
GptShape gpt3(int layers, std::int64_t hidden, int heads, int tp) {
  GptShape s;
  s.num_layers = layers;
  s.hidden_size = hidden;
  s.ffn_hidden_size = 4 * hidden;
  s.num_attention_heads = heads;
  s.head_size = hidden / heads;
  s.vocab_size = 50257;
  s.padded_vocab_size = padded_vocab_size(50257, 128, tp);
  s.max_position_embeddings = 2048;
  s.seq_length = 2048;
  return s;
}

/// The HP tool's size formula (hp-tool.md §3.4): 12 L h^2 (1 + 13/(12h) + (V + s)/(12 L h)), which
/// leaves out the final LayerNorm.
double hp_tool_size(const GptShape& s) {
  const double l = s.num_layers, h = static_cast<double>(s.hidden_size);
  const double v = static_cast<double>(s.padded_vocab_size), t = static_cast<double>(s.seq_length);
  return 12.0 * l * h * h * (1.0 + 13.0 / (12.0 * h) + (v + t) / (12.0 * l * h));
}

TEST(GptShape, PresetParameterCounts) {
  // 126m: 12 layers of 12 C^2 + 13 C = 7,087,872; embeddings 50304 * 768 + 2048 * 768; final LN 2 * 768.
  EXPECT_EQ(parameter_count(gpt3(12, 768, 12, 1)), 12 * 7'087'872LL + 38'633'472 + 1'572'864 + 1'536);
  EXPECT_EQ(parameter_count(gpt3(12, 768, 12, 1)), 125'262'336);
  EXPECT_EQ(parameter_count(gpt3(24, 4096, 32, 2)), 5'048'082'432);      // 5b (Vp 50432 at TP 2)
  EXPECT_EQ(parameter_count(gpt3(44, 6144, 48, 2)), 20'257'296'384);     // 20b
  EXPECT_EQ(parameter_count(gpt3(48, 8192, 64, 4)), 39'091'847'168);     // 40b (Vp 50688 at TP 4)
  EXPECT_EQ(parameter_count(gpt3(96, 12288, 96, 8)), 174'615'846'912);   // 175b (Vp 51200 at TP 8)
}

TEST(GptShape, MatchesTheHpToolFormulaPlusTheFinalNorm) {
  // With Vp = V = 51200 (the HP tool's vocabulary) the two differ by the final LayerNorm's 2C.
  for (const GptShape& preset : {gpt3(12, 768, 12, 1), gpt3(24, 4096, 32, 1), gpt3(96, 12288, 96, 1)}) {
    GptShape s = preset;
    s.padded_vocab_size = 51200;
    EXPECT_DOUBLE_EQ(static_cast<double>(parameter_count(s)), hp_tool_size(s) + 2.0 * static_cast<double>(s.hidden_size));
  }
  // hp-tool.md §7 test_utils: (51200, 2048, 12288, 96) -> 175.0 B (approx).
  GptShape s = gpt3(96, 12288, 96, 8);
  EXPECT_NEAR(static_cast<double>(parameter_count(s)) / 1e9, 175.0, 0.5);
}

TEST(GptShape, VariantsChangeTheCountByTheirTensors) {
  const GptShape base = gpt3(12, 768, 12, 1);
  const std::int64_t n = parameter_count(base);
  GptShape untied = base;
  untied.tied_output = false;
  EXPECT_EQ(parameter_count(untied), n + 50304 * 768);
  GptShape rope = base;
  rope.learned_position_embeddings = false;
  EXPECT_EQ(parameter_count(rope), n - 2048 * 768);
  GptShape no_bias = base;
  no_bias.linear_bias = false;  // per layer: QKV 3C, dense C, fc1 F, fc2 C
  EXPECT_EQ(parameter_count(no_bias), n - 12 * (3 * 768 + 768 + 3072 + 768));
  GptShape rms = base;
  rms.norm_bias = false;  // two norms per layer and the final one
  EXPECT_EQ(parameter_count(rms), n - (12 * 2 + 1) * 768);
  GptShape gated = base;
  gated.gated_mlp = true;  // a second (F, C) input projection and its bias
  EXPECT_EQ(parameter_count(gated), n + 12 * (3072 * 768 + 3072));
}

TEST(GptShape, RankCountsSplitTheModel) {
  // 175b at TP 8 x PP 8, 12 layers per stage; a layer on one TP rank = 4C (norms) + 3C^2/8 + 3C/8 + C^2/8 + C + 4C^2/8 + 4C/8 + 4C^2/8 + C
  //                      = 226,576,896; 12 of them 2,718,922,752.
  const GptShape s = gpt3(96, 12288, 96, 8);
  EXPECT_EQ(layer_parameter_count(s.layer(), 8), 226'576'896);
  // First stage adds its vocabulary shard 6400 x C and the position table 2048 x C.
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 8, .pp_size = 8, .pp_rank = 0}),
            2'718'922'752 + 6400LL * 12288 + 2048LL * 12288);
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 8, .pp_size = 8, .pp_rank = 3}), 2'718'922'752);
  // Last stage: final LN and its copy of the tied embedding shard.
  EXPECT_EQ(rank_parameter_count(s, {.tp_size = 8, .pp_size = 8, .pp_rank = 7}), 2'718'922'752 + 2 * 12288 + 6400LL * 12288);

  // One stage, one rank: the whole model.
  EXPECT_EQ(rank_parameter_count(s, {}), parameter_count(s));
  // TP 1, PP 4: the stages add up to the model plus the last stage's copy of the embedding.
  std::int64_t sum = 0;
  for (int r = 0; r < 4; ++r) sum += rank_parameter_count(s, {.tp_size = 1, .pp_size = 4, .pp_rank = r});
  EXPECT_EQ(sum, parameter_count(s) + 51200LL * 12288);
}

TEST(GptShape, RankCountsRejectImpossibleLayouts) {
  const GptShape s = gpt3(12, 768, 12, 1);
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 1, .pp_size = 5, .pp_rank = 0}), ConfigError);  // 12 % 5
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 5, .pp_size = 1, .pp_rank = 0}), ConfigError);  // heads
  EXPECT_THROW(rank_parameter_count(s, {.tp_size = 1, .pp_size = 2, .pp_rank = 2}), ConfigError);
  GptShape odd_vocab = s;
  odd_vocab.padded_vocab_size = 50257;
  EXPECT_THROW(rank_parameter_count(odd_vocab, {.tp_size = 2, .pp_size = 1, .pp_rank = 0}), ConfigError);
  try {
    rank_parameter_count(s, {.tp_size = 1, .pp_size = 5, .pp_rank = 0});
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "num_layers 12 is not divisible by pipeline_model_parallel_size 5");
  }
}

TEST(GptShape, FlopsFollowTheBenchmarkRecipe) {
  // 175B: T (24 L C^2 + 12 L C T + 48 L C^2 + 6 Vp C) with Vp 51200:
  // 2048 * (376,883,380,224 + 695,784,701,952 + 3,774,873,600) = 2.20e15.
  const GptShape s = gpt3(96, 12288, 96, 8);
  EXPECT_DOUBLE_EQ(model_flops_per_sequence(s), 2048.0 * (376883380224.0 + 695784701952.0 + 3774873600.0));
  EXPECT_NEAR(model_flops_per_sequence(s), 2.20e15, 0.005e15);
  // The NeMo HP tool's throughput script for one sequence: (24 s h^2 + 4 s^2 h) 3L + 6 s h V.
  const double l = 96, h = 12288, t = 2048, v = 51200;
  EXPECT_NEAR(model_flops_per_sequence(s), (24 * t * h * h + 4 * t * t * h) * 3 * l + 6 * t * h * v, 1e3);
  // A gated MLP has three (F, C) GEMMs instead of two: 18 L C F instead of 12.
  GptShape gated = s;
  gated.gated_mlp = true;
  EXPECT_NEAR((model_flops_per_sequence(gated) - model_flops_per_sequence(s)) / (t * 6.0 * l * h * (4 * h)), 1.0, 1e-9);
}

TEST(GptShape, HardwareFlopsAddTheRecomputedForward) {
  const GptShape s = gpt3(96, 12288, 96, 8);
  const double l = 96, h = 12288, t = 2048, v = 51200;
  EXPECT_DOUBLE_EQ(hardware_flops_per_sequence(s, Recompute::kNone), model_flops_per_sequence(s));
  // Full: 96 B s L h^2 (1 + s/(6h) + V/(16 L h)) for B = 1 (megatron-model.md §9).
  EXPECT_NEAR(hardware_flops_per_sequence(s, Recompute::kFull) / (96 * t * l * h * h * (1 + t / (6 * h) + v / (16 * l * h))),
              1.0, 1e-12);
  // Selective: + 4 s^2 h L.
  EXPECT_NEAR(hardware_flops_per_sequence(s, Recompute::kSelective) - model_flops_per_sequence(s), 4 * t * t * h * l, 1e3);
}

}  // namespace
}  // namespace bignlp::sizing
