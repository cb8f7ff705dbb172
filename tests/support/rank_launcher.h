// Starting a worker program as N local ranks, as the launcher's local executor does (Slurm
// variables, one MASTER_PORT, the job's BIGNLP_STORE_SECRET, one thread each): for the tests that
// run bignlp-evaluate / bignlp-generate across processes.
#pragma once

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

extern char** environ;

namespace bignlp::test_support {

inline int free_port() {
  comm::TcpStoreOptions so;
  so.is_server = true;
  comm::TcpStore probe(so);
  return probe.port();
}

/// Runs `ranks` processes of `bin` with `args` (logs in dir/rank<r>.log); returns each rank's exit
/// status and log. Processes still running after 300 s are killed.
inline std::vector<std::pair<int, std::string>> launch_ranks(const std::string& bin, const std::filesystem::path& dir,
                                                             int ranks, const std::vector<std::string>& args) {
  using namespace std::chrono_literals;
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    const std::filesystem::path log = dir / fmt::format("rank{}.log", r);
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stdout);
      dup2(fileno(stdout), fileno(stderr));
      std::vector<std::string> env;
      for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        if (!starts_with(kv, "SLURM_") && !starts_with(kv, "RANK=") && !starts_with(kv, "WORLD_SIZE=") &&
            !starts_with(kv, "MASTER_") && !starts_with(kv, "LOCAL_RANK=") && !starts_with(kv, "BIGNLP_STORE_SECRET="))
          env.push_back(kv);
      }
      for (const auto& kv : std::vector<std::string>{
               fmt::format("SLURM_PROCID={}", r), fmt::format("SLURM_NTASKS={}", ranks), fmt::format("SLURM_LOCALID={}", r),
               "SLURM_NNODES=1", "SLURM_JOB_ID=78", "SLURM_JOB_NODELIST=localhost", fmt::format("MASTER_PORT={}", port),
               fmt::format("BIGNLP_STORE_SECRET=test-{}", port), "OMP_NUM_THREADS=1"})
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
  std::vector<std::pair<int, std::string>> out;
  for (int r = 0; r < ranks; ++r)
    out.emplace_back(status[static_cast<std::size_t>(r)], read_file(dir / fmt::format("rank{}.log", r)));
  return out;
}

}  // namespace bignlp::test_support
