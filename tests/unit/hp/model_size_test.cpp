// The reference tool's own unit-test tables (docs/hp_tool.md; reference hp-tool.md §7):
// test_base_config.py (_estimate_model_size, _estimate_training_time, _calculate_gbs_tp_pp) and
// test_utils.py (_calculate_model_size, calculate_model_size_params). "approx" is pytest's
// relative 5%, as there.
#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/hp/model_size.h"

namespace bignlp::hp {
namespace {

struct SizeCase {
  double days;
  int nodes;
  double expected;
};

TEST(EstimateModelSize, T5TableOfTheReference) {
  const SizeCase cases[] = {{10, 4, 0.48},  {10, 8, 0.97},  {15, 8, 1.45},  {15, 16, 2.9},  {15, 20, 3.6},
                            {20, 20, 4.8},  {20, 32, 7.7},  {30, 32, 11.6}, {30, 40, 14.5}, {30, 48, 17.4},
                            {30, 60, 21.8}, {30, 80, 29.0}, {50, 80, 48.4}};
  for (const auto& c : cases) {
    const auto got = estimate_model_size("t5", c.days, Budget{c.nodes, 8, 140, 1000});
    ASSERT_TRUE(got.has_value());
    EXPECT_NEAR(*got, c.expected, 0.05 * c.expected) << c.days << " days, " << c.nodes << " nodes";
  }
  EXPECT_FALSE(estimate_model_size("invalid_name", 10, Budget{8, 8, 140, 1000}).has_value());
}

TEST(EstimateModelSize, ExactOutputsOfTheReference) {
  EXPECT_DOUBLE_EQ(*estimate_model_size("gpt3", 10, Budget{32, 8, 140, 300}), 12.9);
  EXPECT_DOUBLE_EQ(*estimate_model_size("gpt3", 10, Budget{40, 8, 140, 300}), 16.13);
  EXPECT_DOUBLE_EQ(*estimate_model_size("t5", 50, Budget{80, 8, 140, 1000}), 48.38);
  EXPECT_DOUBLE_EQ(*estimate_model_size("mt5", 10, Budget{20, 8, 140, 1000}), 2.1);
  EXPECT_DOUBLE_EQ(*estimate_model_size("t5", 10, Budget{20, 8, 140, 1000}), 2.42);
  // The README's worked example: 20 nodes, 5 days, 300 B tokens.
  EXPECT_DOUBLE_EQ(*estimate_model_size("gpt3", 5, Budget{20, 8, 140, 300}), 4.03);
}

TEST(EstimateModelSize, RefusesAnEmptyBudget) {
  EXPECT_THROW(estimate_model_size("gpt3", 5, Budget{0, 8, 140, 300}), ConfigError);
  EXPECT_THROW(estimate_model_size("gpt3", 0, Budget{1, 8, 140, 300}), ConfigError);
  EXPECT_THROW(estimate_model_size("gpt3", 5, Budget{1, 8, 0, 300}), ConfigError);
}

struct DaysCase {
  const char* model;
  double size;
  int nodes;
  double tokens;
  double expected;
};

TEST(EstimateTrainingTime, TablesOfTheReference) {
  const DaysCase cases[] = {
      {"gpt3", 0.126, 8, 300, 0.4}, {"gpt3", 0.843, 8, 300, 2.6},  {"gpt3", 2, 8, 300, 6},
      {"gpt3", 5, 20, 300, 6},      {"gpt3", 8, 20, 300, 9.9},     {"gpt3", 20, 80, 300, 6},
      {"gpt3", 43, 80, 300, 13},    {"gpt3", 175, 128, 300, 35},   {"gpt3", 40, 80, 300, 12.5},
      {"t5", 0.22, 4, 1000, 4.5},   {"t5", 2.8, 20, 1000, 11.6},   {"t5", 11, 20, 1000, 45.5},
      {"t5", 23.5, 40, 1000, 48.6}, {"t5", 41.2, 40, 1000, 85.1},  {"mt5", 0.17, 4, 1000, 4.0},
      {"mt5", 0.39, 8, 1000, 4.6},  {"mt5", 3.2, 20, 1000, 15.2},  {"mt5", 11.9, 20, 1000, 56.6},
      {"mt5", 24.65, 40, 1000, 58.6}, {"mt5", 42.54, 40, 1000, 101.1}, {"bert", 0.11, 8, 300, 0.34},
      {"bert", 4, 16, 300, 6.2},    {"bert", 20, 64, 300, 7.75}};
  for (const auto& c : cases) {
    const auto got = estimate_training_days(c.model, c.size, Budget{c.nodes, 8, 140, c.tokens});
    ASSERT_TRUE(got.has_value());
    EXPECT_NEAR(*got, c.expected, 0.05 * c.expected) << c.model << " " << c.size;
  }
  EXPECT_FALSE(estimate_training_days("invalid_name", 5, Budget{8, 8, 140, 300}).has_value());
}

TEST(EstimateTrainingTime, ExactOutputsOfTheReference) {
  EXPECT_DOUBLE_EQ(*estimate_training_days("gpt3", 175, Budget{128, 8, 140, 300}), 33.91);
  EXPECT_DOUBLE_EQ(*estimate_training_days("gpt3", 20, Budget{64, 8, 140, 300}), 7.75);
  EXPECT_DOUBLE_EQ(*estimate_training_days("t5", 11, Budget{20, 8, 140, 1000}), 45.47);
  EXPECT_DOUBLE_EQ(*estimate_training_days("mt5", 42.54, Budget{40, 8, 140, 1000}), 101.11);
  EXPECT_DOUBLE_EQ(*estimate_training_days("gpt3", 5, Budget{20, 8, 140, 300}), 6.2);
  EXPECT_DOUBLE_EQ(*estimate_training_days("gpt3", 5, Budget{16, 8, 140, 300}), 7.75);
}

struct GbsCase {
  Family family;
  double size;
  int seq;
  GbsTpPp expected;
};

TEST(CalculateGbsTpPp, TablesOfTheReference80GB) {
  const GbsCase cases[] = {
      {Family::kGpt3, 0.126, 2048, {256, 1, 1}}, {Family::kGpt3, 3, 2048, {1024, 1, 1}},
      {Family::kGpt3, 5, 2048, {2048, 2, 1}},    {Family::kGpt3, 10, 2048, {2048, 4, 1}},
      {Family::kGpt3, 20, 2048, {2048, 8, 1}},   {Family::kGpt3, 40, 2048, {2048, 8, 2}},
      {Family::kGpt3, 80, 2048, {2048, 8, 4}},   {Family::kGpt3, 175, 2048, {2048, 8, 8}},
      {Family::kGpt3, 300, 2048, {2048, 8, 16}}, {Family::kGpt3, 600, 2048, {2048, 8, 32}},
      {Family::kGpt3, 1000, 2048, {2048, 8, 64}}, {Family::kBert, 0.11, 512, {256, 1, 1}},
      {Family::kBert, 3, 512, {1024, 1, 1}},     {Family::kBert, 6, 512, {2048, 2, 1}},
      {Family::kBert, 13, 512, {2048, 4, 1}},    {Family::kBert, 20, 512, {2048, 8, 1}},
      // The other sequence lengths of the GPT table.
      {Family::kGpt3, 0.5, 4096, {128, 1, 1}},   {Family::kGpt3, 20, 8192, {512, 8, 1}},
  };
  for (const auto& c : cases) {
    const auto got = calculate_gbs_tp_pp(c.family, c.size, 80, c.seq);
    EXPECT_EQ(got.gbs, c.expected.gbs) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(got.tp, c.expected.tp) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(got.pp, c.expected.pp) << to_string(c.family) << " " << c.size;
  }
  for (Family f : {Family::kT5, Family::kMt5}) {
    const std::pair<double, GbsTpPp> t5[] = {{0.5, {2048, 1, 1}},  {3, {1920, 2, 1}},  {6, {1920, 4, 1}},
                                             {13, {1920, 8, 1}},   {20, {1920, 8, 2}}, {40, {1920, 8, 4}}};
    for (const auto& [size, e] : t5) {
      const auto got = calculate_gbs_tp_pp(f, size, 80, 512);
      EXPECT_EQ(got.gbs, e.gbs) << size;
      EXPECT_EQ(got.tp, e.tp) << size;
      EXPECT_EQ(got.pp, e.pp) << size;
    }
  }
}

TEST(CalculateGbsTpPp, FortyGigabyteAndLimits) {
  const auto a = calculate_gbs_tp_pp(Family::kGpt3, 3, 40, 2048);
  EXPECT_EQ(a.tp, 4);
  EXPECT_EQ(a.gbs, 1024);
  // T5 at 40 GB: the reference's unreachable "<= 0.5 B -> TP 1" row is restored here.
  EXPECT_EQ(calculate_gbs_tp_pp(Family::kT5, 0.22, 40, 512).tp, 1);
  EXPECT_EQ(calculate_gbs_tp_pp(Family::kT5, 0.8, 40, 512).tp, 2);
  EXPECT_THROW(calculate_gbs_tp_pp(Family::kGpt3, 1200, 80, 2048), ConfigError);
  EXPECT_THROW(calculate_gbs_tp_pp(Family::kGpt3, 5, 80, 1024), ConfigError);
  EXPECT_THROW(calculate_gbs_tp_pp(Family::kGpt3, 5, 40, 4096), ConfigError);
  EXPECT_THROW(calculate_gbs_tp_pp(Family::kT5, 5, 80, 1024), ConfigError);
  EXPECT_THROW(calculate_gbs_tp_pp(Family::kGpt3, 5, 24, 2048), ConfigError);
}

struct ParamCountCase {
  Family family;
  double vocab, seq, hidden, layers, ffn, kv, heads;
  double expected;
};

TEST(CalculateModelSize, TablesOfTheReference) {
  const Family G = Family::kGpt3, T = Family::kT5, M = Family::kMt5, B = Family::kBert;
  const ParamCountCase cases[] = {
      {G, 51200, 2048, 768, 12, 0, 0, 0, 0.126},    {G, 51200, 4096, 1536, 26, 0, 0, 0, 0.843},
      {G, 51200, 4096, 2560, 24, 0, 0, 0, 2.0},     {G, 51200, 2048, 4096, 24, 0, 0, 0, 5.0},
      {G, 51200, 2048, 5120, 24, 0, 0, 0, 8.0},     {G, 51200, 2048, 6144, 44, 0, 0, 0, 20.0},
      {G, 51200, 8192, 8192, 52, 0, 0, 0, 43.0},    {G, 51200, 2048, 12288, 96, 0, 0, 0, 175.0},
      {T, 29000, 512, 768, 12, 2048, 64, 12, 0.22}, {T, 29000, 512, 2048, 24, 5120, 64, 32, 2.8},
      {T, 29000, 512, 4096, 24, 10240, 64, 64, 11.0}, {T, 29000, 512, 5120, 36, 10880, 64, 80, 23.5},
      {T, 29000, 512, 6144, 48, 10880, 64, 96, 41.2}, {M, 250000, 512, 512, 8, 1024, 64, 6, 0.17},
      {M, 250000, 512, 768, 12, 2048, 64, 12, 0.39}, {M, 250000, 512, 2048, 24, 5120, 64, 32, 3.2},
      {M, 250000, 512, 4096, 24, 10240, 64, 64, 11.9}, {M, 250000, 512, 5120, 36, 10880, 64, 80, 24.65},
      {M, 250000, 512, 6144, 48, 10880, 64, 96, 42.65}, {B, 30522, 512, 768, 12, 3072, 0, 12, 0.11},
      {B, 30522, 512, 2560, 48, 10240, 0, 40, 4.0}, {B, 30522, 512, 6144, 44, 24576, 0, 96, 20.0},
      {B, 30522, 512, 9216, 96, 36864, 0, 96, 100.0},
  };
  for (const auto& c : cases) {
    const double got = calculate_model_size(c.family, c.vocab, c.seq, c.hidden, c.layers, c.ffn, c.kv, c.heads);
    EXPECT_NEAR(got, c.expected, 0.05 * c.expected) << to_string(c.family) << " h " << c.hidden << " L " << c.layers;
  }
}

struct ShapeCase {
  Family family;
  double size, vocab, seq;
  int layers, hidden, heads;
  std::optional<int> ffn, kv;
  double lr;
};

TEST(CalculateModelSizeParams, TablesOfTheReference) {
  const Family G = Family::kGpt3, T = Family::kT5, M = Family::kMt5, B = Family::kBert;
  const std::optional<int> none;
  const ShapeCase cases[] = {
      {G, 0.126, 51200, 2048, 12, 768, 12, none, none, 6e-4},
      {G, 0.843, 51200, 4096, 26, 1536, 16, none, none, 2.5e-4},
      {G, 2.0, 51200, 4096, 24, 2560, 32, none, none, 1.6e-4},
      {G, 5.0, 51200, 2048, 24, 4096, 32, none, none, 1.2e-4},
      {G, 8.0, 51200, 2048, 24, 5120, 40, none, none, 1e-4},
      {G, 20.0, 51200, 2048, 44, 6144, 48, none, none, 1e-4},
      {G, 43.0, 51200, 2048, 52, 8192, 64, none, none, 8e-5},
      {G, 175.0, 51200, 2048, 96, 12288, 96, none, none, 6e-5},
      // The §3.5 preset shapes for T5 and mT5, kv 64, lr 1e-4.
      {T, 0.22, 29000, 512, 12, 768, 12, 2048, 64, 1e-4},
      {T, 2.8, 29000, 512, 24, 2048, 32, 5120, 64, 1e-4},
      {T, 11.0, 29000, 512, 24, 4096, 64, 10240, 64, 1e-4},
      {T, 23.5, 29000, 512, 36, 5120, 80, 10880, 64, 1e-4},
      {T, 41.2, 29000, 512, 48, 6144, 96, 10880, 64, 1e-4},
      {M, 0.17, 250000, 512, 8, 512, 6, 1024, 64, 1e-4},
      {M, 0.39, 250000, 512, 12, 768, 12, 2048, 64, 1e-4},
      {M, 3.2, 250000, 512, 24, 2048, 32, 5120, 64, 1e-4},
      {M, 11.9, 250000, 512, 24, 4096, 64, 10240, 64, 1e-4},
      {M, 24.65, 250000, 512, 36, 5120, 80, 10880, 64, 1e-4},
      {M, 42.65, 250000, 512, 48, 6144, 96, 10880, 64, 1e-4},
      {B, 0.11, 30522, 512, 12, 768, 12, 3072, none, 2e-4},
      {B, 4.0, 30522, 512, 48, 2560, 32, 10240, none, 1e-4},
      {B, 20.0, 30522, 512, 44, 6144, 48, 24576, none, 1e-4},
      {B, 100.0, 30522, 512, 96, 9216, 96, 36864, none, 1e-4},
  };
  for (const auto& c : cases) {
    const auto p = calculate_model_size_params(c.family, c.size, c.vocab, c.seq);
    EXPECT_EQ(p.num_layers, c.layers) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(p.hidden_size, c.hidden) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(p.num_attention_heads, c.heads) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(p.ffn_hidden_size, c.ffn) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(p.kv_channels, c.kv) << to_string(c.family) << " " << c.size;
    EXPECT_DOUBLE_EQ(p.lr, c.lr) << to_string(c.family) << " " << c.size;
  }
}

TEST(CalculateModelSizeParams, PresetShapesOfSection35) {
  // gpt3 unknown_size: the recommended 12.9 B on 32 nodes has 40 layers of 5120.
  const auto p = calculate_model_size_params(Family::kGpt3, 12.9, 51200, 2048);
  EXPECT_EQ(p.num_layers, 40);
  EXPECT_EQ(p.hidden_size, 5120);
  // T5 100b and 203b: 48 layers, kv 128.
  const auto t100 = calculate_model_size_params(Family::kT5, 100, 29000, 512);
  EXPECT_EQ(t100.num_layers, 48);
  EXPECT_EQ(t100.kv_channels, 128);
  EXPECT_EQ(t100.ffn_hidden_size, 20480);
  EXPECT_EQ(calculate_model_size_params(Family::kT5, 203, 29000, 512).num_layers, 48);
}

TEST(CalculateModelSizeParams, RefusesSizesOutsideTheTables) {
  EXPECT_THROW(calculate_model_size_params(Family::kGpt3, 1105, 51200, 2048), ConfigError);
  EXPECT_THROW(calculate_model_size_params(Family::kT5, 251, 29000, 512), ConfigError);
}

}  // namespace
}  // namespace bignlp::hp
