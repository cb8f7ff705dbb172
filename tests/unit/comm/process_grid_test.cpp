// ProcessGrid against Megatron's group tables (initialize_model_parallel docstring) and against
// the direct enumeration of every group kind.
#include <gtest/gtest.h>

#include <set>

#include "bignlp/comm/process_grid.h"
#include "bignlp/core/error.h"

namespace bignlp::comm {
namespace {

using Groups = std::vector<std::vector<int>>;

TEST(ProcessGrid, MegatronDocstringExample16Ranks) {
  // W = 16, tp = 2, pp = 4: the tables printed in Megatron's initialize_model_parallel.
  const ProcessGrid g(16, 0, 2, 4);
  EXPECT_EQ(g.dp_size(), 2);
  EXPECT_EQ(g.all_tp_groups(), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(g.all_pp_groups(), (Groups{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  EXPECT_EQ(g.all_dp_groups(), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  const ProcessGrid r11(16, 11, 2, 4);
  EXPECT_EQ(r11.tp_rank(), 1);
  EXPECT_EQ(r11.dp_rank(), 1);
  EXPECT_EQ(r11.pp_rank(), 2);
  EXPECT_EQ(r11.tp_group(), (std::vector<int>{10, 11}));
  EXPECT_EQ(r11.pp_group(), (std::vector<int>{3, 7, 11, 15}));
  EXPECT_EQ(r11.dp_group(), (std::vector<int>{9, 11}));
  EXPECT_EQ(r11.model_parallel_group(), (std::vector<int>{2, 3, 6, 7, 10, 11, 14, 15}));
  EXPECT_EQ(r11.embedding_group(), (std::vector<int>{3, 15}));
  EXPECT_FALSE(r11.in_embedding_group());
  EXPECT_EQ(r11.to_string(), "tp 1/2 pp 2/4 dp 1/2");
}

TEST(ProcessGrid, EightRanksTp2Pp2Dp2) {
  const ProcessGrid g(8, 5, 2, 2);
  EXPECT_EQ(g.all_tp_groups(), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(g.all_pp_groups(), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(g.all_dp_groups(), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(g.tp_rank(), 1);
  EXPECT_EQ(g.dp_rank(), 0);
  EXPECT_EQ(g.pp_rank(), 1);
  EXPECT_TRUE(g.is_last_stage());
  EXPECT_EQ(g.embedding_group(), (std::vector<int>{1, 5}));
}

// Every rank's own groups (from rank_of) are exactly one of the enumerated groups, each group is
// found by each of its members, and the groups of a kind partition the world.
TEST(ProcessGrid, OwnGroupsMatchTheEnumerationForManyShapes) {
  for (int tp : {1, 2, 4}) {
    for (int pp : {1, 2, 3}) {
      for (int dp : {1, 2, 3}) {
        const int w = tp * pp * dp;
        const ProcessGrid any(w, 0, tp, pp);
        for (const Groups& kind : {any.all_tp_groups(), any.all_pp_groups(), any.all_dp_groups()}) {
          std::multiset<int> seen;
          for (const auto& grp : kind) seen.insert(grp.begin(), grp.end());
          ASSERT_EQ(seen.size(), static_cast<std::size_t>(w));
          for (int r = 0; r < w; ++r) ASSERT_EQ(seen.count(r), 1u);
        }
        for (int r = 0; r < w; ++r) {
          const ProcessGrid g(w, r, tp, pp);
          ASSERT_EQ(g.rank_of(g.tp_rank(), g.pp_rank(), g.dp_rank()), r);
          auto contains = [&](const Groups& gs, const std::vector<int>& mine) {
            for (const auto& x : gs) {
              if (x == mine) return true;
            }
            return false;
          };
          EXPECT_TRUE(contains(any.all_tp_groups(), g.tp_group())) << tp << pp << dp << " rank " << r;
          EXPECT_TRUE(contains(any.all_pp_groups(), g.pp_group())) << tp << pp << dp << " rank " << r;
          EXPECT_TRUE(contains(any.all_dp_groups(), g.dp_group())) << tp << pp << dp << " rank " << r;
          EXPECT_EQ(static_cast<int>(g.model_parallel_group().size()), tp * pp);
        }
      }
    }
  }
}

TEST(ProcessGrid, RejectsWorldsThatDoNotDivide) {
  try {
    ProcessGrid(6, 0, 4, 1);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.tensor_model_parallel_size x model.pipeline_model_parallel_size = 4 x 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ProcessGrid(4, 0, 0, 1), ConfigError);
  EXPECT_THROW(ProcessGrid(4, 4, 2, 1), RuntimeError);
}

}  // namespace
}  // namespace bignlp::comm
