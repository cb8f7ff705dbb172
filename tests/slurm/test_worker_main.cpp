// bignlp-test-worker: a stand-in for the worker programs in launcher tests (local executor and
// the real Slurm cluster). Installed under a worker's name (a link named bignlp-train, ...), it
// records what it was given and where it ran, then succeeds, fails or waits as told:
//
//   BIGNLP_TEST_RECORD  file to append one line per event to:
//                       "<event> prog=<name> step=<--step> procid=.. localid=.. ntasks=.. nnodes=..
//                        jobid=.. array_task=.. array_job=.. cwd=.. time_ns=.. args=<argv, NUL->|>"
//                       events: start, end, term (SIGTERM received)
//   BIGNLP_TEST_FAIL    comma list of "<prog>[:<step>[:<array index>]]" that exit with status 7
//   BIGNLP_TEST_SLEEP   seconds to wait before finishing (SIGTERM ends the wait: exit 143)
//   BIGNLP_TEST_ARGV    file to write the arguments to, each followed by a NUL (exact bytes)
//   BIGNLP_TEST_ENV     file to write "NAME=VALUE" + NUL to, for every BIGNLP_TEST_* variable and
//                       WANDB_API_KEY (exact bytes)
//
// With --config-path/--config-name it checks that the config file exists (exit 3 otherwise),
// as a worker would. It prints one line to stdout and one to stderr, so log routing is visible.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

std::atomic<bool> g_term{false};  // set from the signal handler; this is a test program

void on_term(int) { g_term = true; }

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Worker {
  std::string prog, step, args;
};

void record(const Worker& w, const std::string& event) {
  const std::string path = env("BIGNLP_TEST_RECORD");
  if (path.empty()) return;
  std::string line = event + " prog=" + w.prog + " step=" + w.step + " procid=" + env("SLURM_PROCID") +
                     " localid=" + env("SLURM_LOCALID") + " ntasks=" + env("SLURM_NTASKS") +
                     " nnodes=" + env("SLURM_NNODES") + " jobid=" + env("SLURM_JOB_ID") +
                     " array_task=" + env("SLURM_ARRAY_TASK_ID") + " array_job=" + env("SLURM_ARRAY_JOB_ID") +
                     " custom=" + env("BIGNLP_TEST_CUSTOM") + " cwd=" + std::filesystem::current_path().string() +
                     " time_ns=" + std::to_string(now_ns()) + " args=" + w.args + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());  // one write: lines of concurrent tasks never mix
  ::close(fd);
}

bool told_to_fail(const Worker& w) {
  const std::string list = env("BIGNLP_TEST_FAIL");
  std::size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    const std::size_t comma = list.find(',', start);
    const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::vector<std::string> parts;
    std::size_t p = 0;
    while (true) {
      const std::size_t c = item.find(':', p);
      parts.push_back(item.substr(p, c == std::string::npos ? std::string::npos : c - p));
      if (c == std::string::npos) break;
      p = c + 1;
    }
    bool match = parts[0] == w.prog;
    if (parts.size() > 1) match = match && parts[1] == w.step;
    if (parts.size() > 2) match = match && parts[2] == env("SLURM_ARRAY_TASK_ID");
    if (match) return true;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Worker w;
  w.prog = std::filesystem::path(argv[0]).filename().string();
  std::string config_path, config_name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    w.args += (i > 1 ? "|" : "") + a;
    if (i + 1 < argc && a == "--step") w.step = argv[i + 1];
    if (i + 1 < argc && a == "--config-path") config_path = argv[i + 1];
    if (i + 1 < argc && a == "--config-name") config_name = argv[i + 1];
  }
  if (const std::string argv_file = env("BIGNLP_TEST_ARGV"); !argv_file.empty()) {
    std::string all;
    for (int i = 1; i < argc; ++i) all += std::string(argv[i]) + '\0';
    const int fd = ::open(argv_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, all.data(), all.size());
      ::close(fd);
    }
  }
  if (const std::string env_file = env("BIGNLP_TEST_ENV"); !env_file.empty()) {
    std::string all;
    for (char** e = environ; e && *e; ++e) {
      const std::string entry(*e);
      if (entry.rfind("BIGNLP_TEST_", 0) == 0 || entry.rfind("WANDB_API_KEY=", 0) == 0) all += entry + '\0';
    }
    const int fd = ::open(env_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, all.data(), all.size());
      ::close(fd);
    }
  }
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  record(w, "start");
  std::cout << "hello from " << w.prog << " rank " << env("SLURM_PROCID") << std::endl;
  std::cerr << "stderr from " << w.prog << " rank " << env("SLURM_PROCID") << std::endl;
  if (!config_path.empty() || !config_name.empty()) {
    const auto file = std::filesystem::path(config_path) / config_name;
    if (!std::filesystem::is_regular_file(file)) {
      std::cerr << w.prog << ": config file " << file << " does not exist" << std::endl;
      record(w, "end");
      return 3;
    }
  }
  const double sleep_s = std::atof(env("BIGNLP_TEST_SLEEP").c_str());
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(sleep_s);
  while (std::chrono::steady_clock::now() < until && !g_term) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (g_term) {
    record(w, "term");
    return 143;
  }
  const bool fail = told_to_fail(w);
  record(w, "end");
  if (fail) {
    std::cerr << w.prog << ": failing as told (BIGNLP_TEST_FAIL)" << std::endl;
    return 7;
  }
  return 0;
}
