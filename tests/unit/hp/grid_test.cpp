// The candidate grid: the reference's test_training_config.py table (_calculate_tp_pp_mbs_grid),
// and the candidate counts its shipped presets give (reference hp-tool.md §4.4).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "bignlp/hp/grid.h"

namespace bignlp::hp {
namespace {

using V = std::vector<int>;
const V kGptDefaultMbs = {1, 2, 3, 4, 6, 8};

struct GridCase {
  Family family;
  double size;
  int layers;
  int seq;
  Grid expected;
};

TEST(CalculateTpPpMbsGrid, TableOfTheReference80GB) {
  const Family G = Family::kGpt3, T = Family::kT5, M = Family::kMt5, B = Family::kBert;
  const GridCase cases[] = {
      {G, 0.126, 12, 2048, {{1, 2}, {1}, {1, 2, 3, 4, 6, 8}, 1, 8}},
      {G, 0.126, 12, 8192, {{1, 2, 4}, {1, 2}, {1, 2, 4}, 1, 8}},
      {G, 0.843, 12, 2048, {{1, 2}, {1}, kGptDefaultMbs, 1, 8}},
      {G, 2, 12, 2048, {{1, 2, 4}, {1}, kGptDefaultMbs, 1, 8}},
      {G, 2, 12, 8192, {{1, 2, 4}, {1, 2}, {1, 2, 4}, 1, 8}},
      {G, 2.5, 24, 2048, {{1, 2, 4}, {1}, kGptDefaultMbs, 1, 8}},
      {G, 5, 24, 2048, {{1, 2, 4}, {1}, kGptDefaultMbs, 1, 8}},
      {G, 8, 24, 4096, {{1, 2, 4}, {1, 2}, {1, 2, 4}, 1, 8}},
      {G, 10, 24, 2048, {{1, 2, 4, 8}, {1}, kGptDefaultMbs, 1, 8}},
      {G, 20, 44, 2048, {{1, 2, 4}, {1, 2, 4}, {1, 2, 4}, 4, 8}},
      {G, 20, 44, 8192, {{4, 8}, {1, 2, 4}, {1}, 4, 32}},
      {G, 43, 52, 2048, {{2, 4, 8}, {1, 2, 4}, {1, 2, 4}, 8, 32}},
      {G, 43, 52, 4096, {{4, 8}, {4}, {1, 2}, 16, 64}},
      {G, 175, 96, 2048, {{8}, {4, 6, 8, 12, 16}, {1, 2, 4}, 32, 256}},
      {T, 0.22, 12, 512, {{1, 2}, {1}, {16, 32, 64, 128}, 1, 8}},
      {T, 3, 24, 512, {{1, 2, 4}, {1}, {4, 6, 8, 12, 16, 24, 32, 48}, 1, 8}},
      {T, 11, 24, 512, {{4, 8}, {1}, {2, 4, 6, 8, 12, 16, 24}, 1, 8}},
      {T, 23, 36, 512, {{4, 8}, {1, 2}, {1, 2, 4, 6, 8}, 4, 16}},
      {T, 41, 48, 512, {{4, 8}, {1, 2, 4}, {1, 2, 4, 6, 8}, 8, 32}},
      {M, 0.17, 6, 512, {{1, 2}, {1}, {16, 32, 64, 128}, 1, 8}},
      {M, 0.39, 12, 512, {{1, 2}, {1}, {16, 32, 64, 128}, 1, 8}},
      {M, 3.2, 24, 512, {{1, 2, 4}, {1}, {4, 6, 8, 12, 16, 24, 32, 48}, 1, 8}},
      {M, 11.9, 24, 512, {{4, 8}, {1}, {2, 4, 6, 8, 12, 16, 24}, 1, 8}},
      {M, 24.65, 36, 512, {{4, 8}, {1, 2}, {1, 2, 4, 6, 8}, 4, 16}},
      {M, 42.54, 48, 512, {{4, 8}, {1, 2, 4}, {1, 2, 4, 6, 8}, 8, 32}},
      {B, 0.11, 12, 512, {{1, 2}, {1}, {1, 2, 3, 4, 6, 8}, 1, 8}},
      {B, 2.5, 24, 512, {{1, 2, 4}, {1}, {1, 2, 3, 4, 6, 8}, 1, 8}},
      {B, 5, 24, 512, {{2, 4, 8}, {1}, {1, 2, 3, 4, 6, 8}, 2, 8}},
      {B, 10, 24, 512, {{2, 4, 8}, {1}, {1, 2, 3, 4, 6}, 2, 8}},
      {B, 20, 48, 512, {{4, 8}, {1}, {1, 2, 3, 4}, 4, 8}},
  };
  for (const auto& c : cases) {
    const Grid g = calculate_tp_pp_mbs_grid(c.family, c.size, c.layers, c.seq, 80);
    EXPECT_EQ(g.tp, c.expected.tp) << to_string(c.family) << " " << c.size << " seq " << c.seq;
    EXPECT_EQ(g.pp, c.expected.pp) << to_string(c.family) << " " << c.size << " seq " << c.seq;
    EXPECT_EQ(g.mbs, c.expected.mbs) << to_string(c.family) << " " << c.size << " seq " << c.seq;
    EXPECT_EQ(g.min_model_parallel, c.expected.min_model_parallel) << to_string(c.family) << " " << c.size;
    EXPECT_EQ(g.max_model_parallel, c.expected.max_model_parallel) << to_string(c.family) << " " << c.size;
  }
}

TEST(CalculateTpPpMbsGrid, ExplicitListsAreReturnedUnchanged) {
  GridOverrides o;
  o.tensor_parallel_sizes = V{1, 2, 4, 5};
  o.pipeline_parallel_sizes = V{2, 4, 8};
  o.micro_batch_sizes = V{4, 8, 32};
  o.min_model_parallel_size = 1;
  o.max_model_parallel_size = 32;
  const Grid g = calculate_tp_pp_mbs_grid(Family::kGpt3, 0.126, 12, 2048, 80, o);
  EXPECT_EQ(g, (Grid{{1, 2, 4, 5}, {2, 4, 8}, {4, 8, 32}, 1, 32}));
  GridOverrides lists = o;
  lists.min_model_parallel_size.reset();
  lists.max_model_parallel_size.reset();
  for (Family f : {Family::kT5, Family::kMt5, Family::kBert}) {
    EXPECT_EQ(calculate_tp_pp_mbs_grid(f, 0.22, 12, 512, 80, lists), (Grid{{1, 2, 4, 5}, {2, 4, 8}, {4, 8, 32}, 1, 8}))
        << to_string(f);
  }
}

TEST(CalculateTpPpMbsGrid, FortyGigabyteRows) {
  // GPT 40 GB <= 8: TP 2,4,8; literal PP 1,2; MBS 1,2,4; 2-8.
  EXPECT_EQ(calculate_tp_pp_mbs_grid(Family::kGpt3, 5, 24, 2048, 40), (Grid{{2, 4, 8}, {1, 2}, {1, 2, 4}, 2, 8}));
  // <= 23: the default 40 GB micro batches.
  EXPECT_EQ(calculate_tp_pp_mbs_grid(Family::kGpt3, 20, 44, 2048, 40),
            (Grid{{2, 4, 8}, {1, 2, 4}, {1, 2, 4, 6, 8, 10, 12, 16}, 8, 64}));
  EXPECT_EQ(calculate_tp_pp_mbs_grid(Family::kT5, 11, 24, 512, 40),
            (Grid{{4, 8}, {1, 2}, {2, 4, 6, 8, 12, 16}, 4, 16}));
}

TEST(ValidPipelineSizes, GptDivisorsAndT5Stacks) {
  EXPECT_EQ(valid_pipeline_sizes(Family::kGpt3, 12), (V{1, 2, 3, 4, 6, 12}));
  EXPECT_EQ(valid_pipeline_sizes(Family::kT5, 24), (V{1, 2, 4, 6, 8, 12, 16, 24, 48}));
}

struct CountCase {
  Family family;
  double size;
  const char* label;
  int layers, heads, gbs, seq, nodes;
  std::vector<std::pair<int, int>> pairs;
  std::size_t raw_count;
};

// The candidate counts of the reference for its presets (80 GB): the grid of the size table,
// pruned by divisibility, times the activation-checkpointing lists.
TEST(GenerateCandidates, CountsOfTheShippedPresets) {
  const Family G = Family::kGpt3, T = Family::kT5, M = Family::kMt5;
  const CountCase cases[] = {
      {G, 0.126, "0.126", 12, 12, 256, 2048, 8, {{1, 1}, {2, 1}}, 28},
      {G, 0.843, "0.843", 26, 16, 256, 2048, 8, {{1, 1}, {2, 1}}, 49},
      {G, 2, "2", 24, 32, 1024, 2048, 8, {{1, 1}, {2, 1}, {4, 1}}, 48},
      {G, 5, "5", 24, 32, 2048, 2048, 16, {{1, 1}, {2, 1}, {4, 1}}, 48},
      {G, 8, "8", 24, 40, 2048, 2048, 16, {{1, 1}, {2, 1}, {4, 1}}, 48},
      {G, 20, "20", 44, 48, 2048, 2048, 64, {{1, 4}, {2, 2}, {2, 4}, {4, 1}, {4, 2}}, 345},
      {G, 43, "43", 52, 64, 2048, 2048, 128, {{2, 4}, {4, 2}, {4, 4}, {8, 1}, {8, 2}, {8, 4}}, 534},
      {G, 175, "175", 96, 96, 2048, 2048, 128, {{8, 4}, {8, 8}, {8, 16}}, 54},
      {G, 12.9, "12.9", 40, 40, 2048, 2048, 32, {{1, 1}, {2, 1}, {4, 1}, {8, 1}}, 48},
      {T, 0.22, "0.22", 12, 12, 2048, 512, 4, {}, 49},
      {T, 2.8, "2.8", 24, 32, 1920, 512, 20, {}, 105},
      {T, 11, "11", 24, 64, 1920, 512, 20, {}, 98},
      {M, 0.17, "0.17", 8, 6, 2048, 512, 4, {}, 35},
      {M, 0.39, "0.39", 12, 12, 2048, 512, 8, {}, 35},
      {M, 3.2, "3.2", 24, 32, 1920, 512, 20, {}, 105},
  };
  for (const auto& c : cases) {
    SearchModel m{c.family, c.size, c.label, c.layers, c.heads, c.gbs, c.seq, "block"};
    const Grid g = calculate_tp_pp_mbs_grid(c.family, c.size, c.layers, c.seq, 80);
    const Cluster cluster{c.nodes, 8};
    if (!c.pairs.empty()) {
      EXPECT_EQ(valid_tp_pp(m, g, cluster), c.pairs) << to_string(c.family) << " " << c.size;
    }
    const auto raw = generate_candidates(m, g, cluster, std::nullopt, /*raw=*/true);
    EXPECT_EQ(raw.size(), c.raw_count) << to_string(c.family) << " " << c.size;
    const auto unique = generate_candidates(m, g, cluster);
    EXPECT_LE(unique.size(), raw.size());
    for (std::size_t i = 0; i < unique.size(); ++i) {
      for (std::size_t j = i + 1; j < unique.size(); ++j) ASSERT_FALSE(unique[i] == unique[j]);
    }
  }
}

TEST(GenerateCandidates, Gpt175bInterleavedKnobs) {
  SearchModel m{Family::kGpt3, 175, "175", 96, 96, 2048, 2048, "block"};
  const Grid g = calculate_tp_pp_mbs_grid(Family::kGpt3, 175, 96, 2048, 80);
  const auto cands = generate_candidates(m, g, Cluster{128, 8});
  std::map<int, std::set<std::tuple<int, int, int>>> by_pp;
  for (const auto& c : cands) {
    EXPECT_EQ(c.virtual_pipeline_size, 96 / c.pp);
    by_pp[c.pp].insert({*c.act_ckpt_layers, *c.num_micro_batches_with_partial_activation_checkpoints,
                        *c.activations_checkpoint_layers_per_pipeline});
  }
  // PP 4 -> act {0,1}, num_mbs {1}, per pipe {0}; PP 8 -> num_mbs {1,96}; PP 16 -> {1,48,96} x {0,2}.
  EXPECT_EQ(by_pp[4].size(), 2u);
  EXPECT_EQ(by_pp[8].size(), 4u);
  EXPECT_EQ(by_pp[16].size(), 12u);
  EXPECT_TRUE(by_pp[16].count({1, 48, 2}));
  EXPECT_TRUE(by_pp[8].count({0, 96, 0}));
  // Launch order: no recompute first.
  EXPECT_EQ(*cands.front().act_ckpt_layers, 0);
  EXPECT_EQ(*cands.back().act_ckpt_layers, 1);
}

TEST(GenerateCandidates, FractionalDataParallelIsRefused) {
  // TP x PP larger than the cluster: the reference's float modulo lets it through.
  SearchModel m{Family::kGpt3, 0.126, "0.126", 12, 12, 256, 2048, "block"};
  Grid g{{16}, {1}, {1}, 1, 64};
  EXPECT_TRUE(valid_tp_pp(m, g, Cluster{1, 8}).empty());
}

TEST(CandidateName, ReferenceFormat) {
  SearchModel m{Family::kGpt3, 5.0, "5.0", 24, 32, 2048, 2048, "block"};
  Candidate c{2, 1, 4, 8, std::nullopt, std::nullopt, std::nullopt};
  EXPECT_EQ(candidate_name(m, 16, c), "gpt3_5.0b_16nodes_tp_2_pp_1_mbs_4_act_ckpt_8_num_mbs_act_None_act_per_pipe_None");
  EXPECT_EQ(python_float_str(5.0), "5.0");
  EXPECT_EQ(python_float_str(0.126), "0.126");
  EXPECT_EQ(python_float_str(12.9), "12.9");
}

}  // namespace
}  // namespace bignlp::hp
