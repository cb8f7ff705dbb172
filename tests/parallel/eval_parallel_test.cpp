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

extern char** environ;

namespace bignlp {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int free_port() {
  comm::TcpStoreOptions so;
  so.is_server = true;
  comm::TcpStore probe(so);
  return probe.port();
}

/// Runs `ranks` bignlp-evaluate processes with `args`; returns each rank's exit status and log.
std::vector<std::pair<int, std::string>> launch(const fs::path& dir, int ranks, const std::vector<std::string>& args) {
  const std::string bin = fmt::format("{}/bignlp-evaluate", BIGNLP_BIN_DIR);
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    const fs::path log = dir / fmt::format("rank{}.log", r);
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stdout);
      dup2(fileno(stdout), fileno(stderr));
      std::vector<std::string> env;
      for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        if (!starts_with(kv, "SLURM_") && !starts_with(kv, "RANK=") && !starts_with(kv, "WORLD_SIZE=") &&
            !starts_with(kv, "MASTER_") && !starts_with(kv, "LOCAL_RANK=") &&
            !starts_with(kv, "BIGNLP_STORE_SECRET="))
          env.push_back(kv);
      }
      for (const auto& kv : std::vector<std::string>{
               fmt::format("SLURM_PROCID={}", r), fmt::format("SLURM_NTASKS={}", ranks), fmt::format("SLURM_LOCALID={}", r),
               "SLURM_NNODES=1", "SLURM_JOB_ID=78", "SLURM_JOB_NODELIST=localhost", fmt::format("MASTER_PORT={}", port),
               fmt::format("BIGNLP_STORE_SECRET=eval-test-{}", port), "OMP_NUM_THREADS=1"})
        env.push_back(kv);
      std::vector<char*> envp;
      for (auto& kv : env) envp.push_back(kv.data());
      envp.push_back(nullptr);
      std::vector<std::string> a{bin};
      a.insert(a.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execve(bin.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<std::pair<int, std::string>> out;
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  std::vector<int> status(static_cast<std::size_t>(ranks), -1);
  for (int left = ranks; left > 0;) {
    for (int r = 0; r < ranks; ++r) {
      int st = 0;
      if (status[static_cast<std::size_t>(r)] == -1 && waitpid(pids[static_cast<std::size_t>(r)], &st, WNOHANG) > 0) {
        status[static_cast<std::size_t>(r)] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        --left;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (pid_t p : pids) kill(p, SIGKILL);
      for (pid_t p : pids) waitpid(p, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  for (int r = 0; r < ranks; ++r)
    out.emplace_back(status[static_cast<std::size_t>(r)], read_file(dir / fmt::format("rank{}.log", r)));
  return out;
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
