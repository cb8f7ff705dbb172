#include "bignlp/cluster/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

namespace bignlp::cluster {
namespace {

using ::testing::HasSubstr;

// dcgmi diag -r 1 as DCGM 3 prints it.
const char* kPass = R"(Successfully ran diagnostic for group.
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Metadata  ----------+------------------------------------------------|
| DCGM Version              | 3.1.8                                          |
| Driver Version Detected   | 525.85.12                                      |
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
| NVML Library              | Pass                                           |
| Persistence Mode          | Skip                                           |
+-----  Integration  -------+------------------------------------------------+
| PCIe                      | Pass - All                                     |
+-----  Hardware  ----------+------------------------------------------------+
| GPU Memory                | Pass - All                                     |
+---------------------------+------------------------------------------------+
)";

const char* kFail = R"(Successfully ran diagnostic for group.
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
+-----  Hardware  ----------+------------------------------------------------+
| GPU Memory                | Fail - GPU: 3                                  |
| Warning                   | GPU 3 had uncorrectable memory errors          |
|                           | and row remapping is pending                   |
| PCIe                      | Pass - All                                     |
+---------------------------+------------------------------------------------+
)";

TEST(DcgmDiag, ReadsEveryTestRowAndPasses) {
  const auto r = parse_dcgm_diag(kPass, 0);
  EXPECT_TRUE(r.passed());
  ASSERT_EQ(r.tests.size(), 5u);  // the metadata rows are not tests
  EXPECT_EQ(r.tests[2].name, "Persistence Mode");
  EXPECT_EQ(r.tests[2].outcome, "Skip");
  EXPECT_EQ(r.tests[3].outcome, "Pass");
  EXPECT_EQ(r.tests[3].detail, "All");
}

TEST(DcgmDiag, AFailedTestFailsTheNodeWithItsWarning) {
  const auto r = parse_dcgm_diag(kFail, 0);
  EXPECT_FALSE(r.passed());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("'GPU Memory' failed"));
  EXPECT_THAT(r.errors[0], HasSubstr("GPU: 3"));
  EXPECT_THAT(r.errors[0], HasSubstr("uncorrectable memory errors"));
  EXPECT_THAT(r.errors[0], HasSubstr("row remapping is pending"));
  EXPECT_EQ(r.tests.back().name, "PCIe");
}

TEST(DcgmDiag, ErrorsExitStatusAndEmptyOutputFail) {
  auto r = parse_dcgm_diag("Error: Unable to complete diagnostic for group 2147483647. Return: (-33) timeout\n", 226);
  EXPECT_FALSE(r.passed());
  EXPECT_THAT(r.errors[0], HasSubstr("Unable to complete diagnostic"));
  EXPECT_THAT(r.errors.back(), HasSubstr("status 226"));
  EXPECT_FALSE(parse_dcgm_diag("", 0).passed());
  EXPECT_FALSE(parse_dcgm_diag(kPass, 1).passed());
}

const char* kBench = R"(# bench_comm: backend nccl, 16 ranks, fp32, 20 iterations after 2 warm-up
collective              size        count      time_us   algbw_GB/s   busbw_GB/s
all_reduce          64.0 MiB     16777216       712.0       94.254      176.726
all_reduce           1.0 GiB    268435456     11000.5       97.610      183.019
)";

TEST(BenchComm, TakesTheLargestAllReduceRow) {
  const auto r = parse_bench_comm(kBench, 0);
  ASSERT_TRUE(r.busbw_gbps);
  EXPECT_DOUBLE_EQ(*r.busbw_gbps, 183.019);
  EXPECT_EQ(r.bytes, 268435456LL * 4);
  EXPECT_FALSE(parse_bench_comm(kBench, 1).busbw_gbps);
  EXPECT_THAT(parse_bench_comm(kBench, 1).error, HasSubstr("status 1"));
  EXPECT_THAT(parse_bench_comm("nccl error\n", 0).error, HasSubstr("no all_reduce"));
}

TEST(RingPairs, EveryNodeHasTwoPartnersAndRoundsAreDisjoint) {
  for (int n = 3; n <= 9; ++n) {
    const auto rounds = ring_pair_rounds(n);
    EXPECT_LE(rounds.size(), n % 2 ? 3u : 2u) << n;
    std::map<int, std::set<int>> partners;
    std::size_t pairs = 0;
    for (const auto& round : rounds) {
      std::set<int> busy;
      for (const auto& [a, b] : round) {
        EXPECT_TRUE(busy.insert(a).second && busy.insert(b).second) << "node busy twice in a round, n=" << n;
        partners[a].insert(b);
        partners[b].insert(a);
        ++pairs;
      }
    }
    EXPECT_EQ(pairs, static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(partners[i].size(), 2u) << "node " << i << " of " << n;
  }
  ASSERT_EQ(ring_pair_rounds(2).size(), 1u);
  EXPECT_EQ(ring_pair_rounds(2)[0].size(), 1u);
  EXPECT_TRUE(ring_pair_rounds(1).empty());
}

std::vector<PairMeasurement> ring(const std::vector<std::string>& nodes, const std::map<std::string, double>& node_bw,
                                  double link_default = 180) {
  std::vector<PairMeasurement> out;
  for (const auto& round : ring_pair_rounds(static_cast<int>(nodes.size()))) {
    for (const auto& [i, j] : round) {
      double bw = link_default;
      for (const auto* n : {&nodes[i], &nodes[j]}) {
        if (node_bw.count(*n)) bw = std::min(bw, node_bw.at(*n));
      }
      BandwidthResult r;
      r.busbw_gbps = bw;
      out.push_back({nodes[i], nodes[j], r});
    }
  }
  return out;
}

std::vector<std::string> failing(const std::vector<NodeVerdict>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) {
    if (!x.reasons.empty()) out.push_back(x.node);
  }
  return out;
}

TEST(JudgeBandwidth, ASlowNodeStandsOutAloneAndItsPartnersPass) {
  const std::vector<std::string> nodes = {"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"};
  std::vector<NodeVerdict> v;
  judge_bandwidth(ring(nodes, {{"n5", 60}}), std::nullopt, 0.8, v);
  EXPECT_EQ(failing(v), std::vector<std::string>{"n5"});
  EXPECT_THAT(v[0].reasons[0], HasSubstr("below 0.80 x the median"));
}

TEST(JudgeBandwidth, ASlowLinkFailsBothEndsAsSuspect) {
  auto pairs = ring({"a", "b", "c", "d"}, {});
  for (auto& p : pairs) {
    if (p.a == "b" && p.b == "c") p.result.busbw_gbps = 20;
  }
  std::vector<NodeVerdict> v;
  judge_bandwidth(pairs, std::nullopt, 0.8, v);
  EXPECT_EQ(failing(v), (std::vector<std::string>{"b", "c"}));
  EXPECT_THAT(v[0].reasons[0], HasSubstr("link between"));
}

TEST(JudgeBandwidth, AbsoluteMinimumAndFailedRuns) {
  std::vector<NodeVerdict> v;
  judge_bandwidth(ring({"a", "b"}, {}, 150), 170.0, 0.8, v);  // one pair: the minimum decides
  EXPECT_EQ(failing(v), (std::vector<std::string>{"a", "b"}));
  v.clear();
  judge_bandwidth(ring({"a", "b"}, {}, 150), std::nullopt, 0.8, v);  // no median rule for one pair
  EXPECT_TRUE(failing(v).empty());
  auto pairs = ring({"a", "b", "c"}, {});
  pairs[0].result = parse_bench_comm("", 1);  // (a,b) crashed
  pairs[2].result = parse_bench_comm("", 1);  // (c,a) crashed
  v.clear();
  judge_bandwidth(pairs, std::nullopt, 0.8, v);
  EXPECT_EQ(failing(v), std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace bignlp::cluster
