// NUMA planning on made-up machines, and bignlp-bind on this one: the binding must hold in the
// program it executes (the same process), not only in a helper.
#include "bignlp/launch/numa.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/process.h"

namespace bignlp::launch {
namespace {

// `sockets` packages x `numa_per_socket` NUMA nodes x `cores_per_numa` cores, 2 threads per
// core with Linux numbering (thread 1 of core c is PU c + total cores).
Topology machine(int sockets, int numa_per_socket, int cores_per_numa, int gpus_per_numa = 0) {
  Topology t;
  const int total = sockets * numa_per_socket * cores_per_numa;
  for (int c = 0; c < total; ++c) {
    const int numa = c / cores_per_numa;
    t.cores.push_back({{c, c + total}, numa, numa / numa_per_socket});
  }
  for (int n = 0; n < sockets * numa_per_socket; ++n) {
    for (int g = 0; g < gpus_per_numa; ++g) t.gpus.push_back({n, n / numa_per_socket});
  }
  return t;
}

std::string plan(const Topology& t, const NumaSettings& s, int rank, int size) {
  return format_cpu_list(plan_numa_placement(t, s, rank, size).pus);
}

TEST(NumaPlan, UniqueContiguousSplitsTheGpusNumaNode) {
  // DGX-like: 2 sockets x 4 NUMA nodes x 8 cores (hyper-threads 64-127), one GPU per NUMA node.
  const Topology t = machine(2, 4, 8, 1);
  NumaSettings s;  // the config's defaults: unique_contiguous, node, all_logical, balanced, 1..8
  EXPECT_EQ(plan(t, s, 0, 8), "0-7,64-71");
  EXPECT_EQ(plan(t, s, 5, 8), "40-47,104-111");
  s.cores = NumaCores::kSingleLogical;
  EXPECT_EQ(plan(t, s, 5, 8), "40-47");
  s.max_cores = 4;
  EXPECT_EQ(plan(t, s, 1, 8), "8-11");
}

TEST(NumaPlan, RanksSharingADomainGetDisjointCores) {
  const Topology t = machine(1, 1, 8);  // no GPU information: ranks share the only domain
  NumaSettings s;
  s.cores = NumaCores::kSingleLogical;
  EXPECT_EQ(plan(t, s, 0, 2), "0-3");
  EXPECT_EQ(plan(t, s, 1, 2), "4-7");
  s.mode = NumaMode::kUniqueInterleaved;
  EXPECT_EQ(plan(t, s, 0, 2), "0,2,4,6");
  EXPECT_EQ(plan(t, s, 1, 2), "1,3,5,7");
  s.mode = NumaMode::kSingleUnique;
  EXPECT_EQ(plan(t, s, 1, 2), "1");
  s.mode = NumaMode::kSingle;
  EXPECT_EQ(plan(t, s, 1, 2), "0");
  s.mode = NumaMode::kAll;
  EXPECT_EQ(plan(t, s, 1, 2), "0-7");
}

TEST(NumaPlan, ScopeSocketUsesThePackage) {
  const Topology t = machine(2, 2, 4, 1);  // GPUs 0,1 on package 0; 2,3 on package 1
  NumaSettings s;
  s.scope = NumaScope::kSocket;
  s.mode = NumaMode::kAll;
  s.cores = NumaCores::kSingleLogical;
  EXPECT_EQ(plan(t, s, 3, 4), "8-15");
  s.mode = NumaMode::kUniqueContiguous;
  EXPECT_EQ(plan(t, s, 3, 4), "12-15");
}

TEST(NumaPlan, BalancedGivesEveryRankTheSmallestShare) {
  Topology t = machine(1, 2, 4);
  t.cores.pop_back();  // NUMA node 1 has 3 usable cores
  NumaSettings s;
  s.cores = NumaCores::kSingleLogical;
  s.balanced = false;
  EXPECT_EQ(plan(t, s, 0, 2), "0-3");
  s.balanced = true;
  EXPECT_EQ(plan(t, s, 0, 2), "0-2");
  EXPECT_EQ(plan(t, s, 1, 2), "4-6");
}

TEST(NumaPlan, TooFewCoresIsAnError) {
  const Topology t = machine(1, 1, 2);
  NumaSettings s;
  EXPECT_THROW(plan_numa_placement(t, s, 0, 4), RuntimeError);
  s.min_cores = 2;
  EXPECT_THROW(plan_numa_placement(t, s, 0, 2), RuntimeError);
  EXPECT_THROW(plan_numa_placement(t, s, 2, 2), RuntimeError);
}

TEST(NumaSettings, ParseConfigWords) {
  EXPECT_EQ(parse_numa_mode("unique_interleaved"), NumaMode::kUniqueInterleaved);
  EXPECT_EQ(parse_numa_scope("socket"), NumaScope::kSocket);
  EXPECT_EQ(parse_numa_cores("single_logical"), NumaCores::kSingleLogical);
  try {
    parse_numa_mode("spread");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "numa_mapping.mode: 'spread' is not one of all, single, single_unique, unique_interleaved, "
                 "unique_contiguous");
  }
}

TEST(NumaDetect, SeesThisMachinesCores) {
  const Topology t = detect_topology("");
  ASSERT_FALSE(t.cores.empty());
  for (const auto& c : t.cores) EXPECT_FALSE(c.pus.empty());
}

std::string allowed_cpus_of(const CapturedRun& r) {
  const auto pos = r.out.find("Cpus_allowed_list:");
  if (pos == std::string::npos) return "";
  return std::string(trim(r.out.substr(pos + 18, r.out.find('\n', pos) - pos - 18)));
}

TEST(BignlpBind, TheExecutedProgramKeepsTheBinding) {
  const std::string bind = std::string(BIGNLP_BIN_DIR) + "/bignlp-bind";
  const Topology t = detect_topology("");
  NumaSettings s;
  const int size = static_cast<int>(std::min<std::size_t>(2, t.cores.size()));
  for (int rank = 0; rank < size; ++rank) {
    const std::string want = format_cpu_list(plan_numa_placement(t, s, rank, size).pus);
    // The program reads its own /proc/self/status: it is the bound process.
    const CapturedRun r = run_captured({bind, "--local-rank", std::to_string(rank), "--local-size",
                                        std::to_string(size), "--", "grep", "Cpus_allowed_list", "/proc/self/status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(allowed_cpus_of(r), want);
  }
}

TEST(BignlpBind, UsesSlurmVariablesAndReportsUnmetSettings) {
  const std::string bind = std::string(BIGNLP_BIN_DIR) + "/bignlp-bind";
  // More ranks than cores: a warning, and the program still runs.
  const CapturedRun r = run_captured({"env", "SLURM_LOCALID=0", "SLURM_NTASKS_PER_NODE=100000", bind, "--", "true"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("running without binding"), std::string::npos) << r.err;
  const CapturedRun bad = run_captured({bind, "--mode", "spread", "--", "true"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("numa_mapping.mode: 'spread'"), std::string::npos) << bad.err;
  const CapturedRun missing = run_captured({bind, "--", "/no/such/program"});
  EXPECT_EQ(missing.exit_code, 127);
}

}  // namespace
}  // namespace bignlp::launch
