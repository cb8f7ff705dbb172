// Zero-shot evaluation at TP 2 and PP 2, as two bignlp-evaluate processes (gloo, the local
// executor's Slurm variables), gives the numbers of one process on the same weights: the
// evaluation checkpoint (tests/support/eval_fixture.h) resharded by checkpoint::reshard_checkpoint,
// every task and metric of the fixture task files compared.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "bignlp/checkpoint/reshard.h"
#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/core/strings.h"
#include "eval_fixture.h"
#include "rank_launcher.h"

namespace bignlp {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Runs `ranks` bignlp-evaluate processes with `args`; returns each rank's exit status and log.
std::vector<std::pair<int, std::string>> launch(const fs::path& dir, int ranks, const std::vector<std::string>& args) {
  return test_support::launch_ranks(fmt::format("{}/bignlp-evaluate", BIGNLP_BIN_DIR), dir, ranks, args);
}

class EvalParallelTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(EvalParallelTest, TwoRanksGiveTheNumbersOfOne) {
  const auto [tp, pp] = GetParam();
  TempDir dir("eval-parallel");
  const fs::path data = fs::path(BIGNLP_SOURCE_DIR) / "tests" / "data" / "eval";
  test_support::write_small_bpe(dir.path() / "bpe");
  const fs::path one = dir.path() / "one", split = dir.path() / "split";
  test_support::write_eval_checkpoint(one, dir.path() / "bpe");
  checkpoint::reshard_checkpoint(one, split, tp, pp, Logger("reshard"));
  auto args = [&](const fs::path& ckpt, const std::string& name, bool cache) {
    std::vector<std::string> a{"--checkpoint", ckpt.string(), "--data-dir", data.string(), "--tasks", "all_tasks",
                               "--batch-size", "3", "--threads", "1", "--output", (dir.path() / name).string()};
    if (cache) {
      a.push_back("--cache-dir");
      a.push_back((dir.path() / ("cache-" + name)).string());
    } else {
      a.push_back("--no-cache");
    }
    return a;
  };
  const auto single = launch(dir.path(), 1, args(one, "one.json", false));
  ASSERT_EQ(single[0].first, 0) << single[0].second;
  const auto two = launch(dir.path(), 2, args(split, "two.json", true));
  for (const auto& [status, log] : two) ASSERT_EQ(status, 0) << log;
  const auto a = nlohmann::json::parse(read_file(dir.path() / "one.json"));
  const auto b = nlohmann::json::parse(read_file(dir.path() / "two.json"));
  EXPECT_EQ(b["config"]["tensor_model_parallel_size"], tp);
  EXPECT_EQ(b["config"]["pipeline_model_parallel_size"], pp);
  int compared = 0;
  ASSERT_EQ(a["results"].size(), 8u);
  for (const auto& [task, metrics] : a["results"].items()) {
    ASSERT_EQ(b["results"][task].size(), metrics.size()) << task;
    for (const auto& [m, v] : metrics.items()) {
      const double x = v.get<double>(), y = b["results"][task][m].get<double>();
      EXPECT_NEAR(y, x, 1e-5 * std::max(1.0, std::abs(x))) << task << "." << m;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 26);
  // One process cannot hold a split checkpoint: refused before any rendezvous.
  const auto lone = launch(dir.path(), 1, args(split, "lone.json", false));
  EXPECT_NE(lone[0].first, 0);
  EXPECT_NE(lone[0].second.find(fmt::format("= {} ranks, but 1 processes were started", tp * pp)), std::string::npos)
      << lone[0].second;
  // Rank 1 computes and agrees but does not write or print the table.
  EXPECT_EQ(two[1].second.find("|lambada"), std::string::npos);
  EXPECT_NE(two[0].second.find("|lambada"), std::string::npos) << two[0].second;
}

INSTANTIATE_TEST_SUITE_P(Layouts, EvalParallelTest, ::testing::Values(std::make_pair(2, 1), std::make_pair(1, 2)),
                         [](const auto& info) { return fmt::format("tp{}_pp{}", info.param.first, info.param.second); });

}  // namespace
}  // namespace bignlp
