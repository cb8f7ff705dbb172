// The local executor with real processes (bignlp-test-worker): one process per task with
// Slurm's variables, stages in order, logs and prefixed output, failures and signals.
#include "bignlp/launch/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <thread>

#include "bignlp/core/file_io.h"
#include "bignlp/launch/submitter.h"
#include "test_support.h"

namespace bignlp::launch {
namespace {

using testing::read_argv;
using testing::read_records;
using testing::worker_as;

struct Fixture {
  TempDir tmp{"bignlp-local"};
  std::filesystem::path record = tmp.path() / "record.txt";
  std::filesystem::path out = tmp.path() / "terminal.out";
  std::filesystem::path err = tmp.path() / "terminal.err";
  int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ~Fixture() {
    ::close(out_fd);
    ::close(err_fd);
  }
  LocalExecutorOptions options(double grace = 5) const { return {out_fd, err_fd, grace}; }

  JobSpec job(const std::string& stage, const std::string& program, int tasks) const {
    JobSpec j;
    j.stage = stage;
    j.name = "bignlp-" + stage;
    j.dir = tmp.path() / stage;
    j.config_file = j.dir / (stage + "_hydra.yaml");
    j.nodes = 1;
    j.ntasks_per_node = tasks;
    j.env = {{"BIGNLP_TEST_RECORD", record.string()}, {"BIGNLP_TEST_CUSTOM", "value with spaces"}};
    j.groups = {CommandGroup{{{worker_as(tmp.path() / "bin", program).string(), "--config-path", j.dir.string(),
                               "--config-name", stage + "_hydra.yaml"}}}};
    write_file_atomic(j.config_file, "x: 1\n");
    return j;
  }
};

TEST(LocalExecutor, TwoStagesOfTwoTasksRunInOrderWithSlurmEnvironment) {
  Fixture fx;
  LocalSubmitter submitter(Logger::capturing(), 4000, fx.options());
  const JobSpec a = fx.job("training", "bignlp-train", 2);
  const JobSpec b = fx.job("evaluation", "bignlp-evaluate", 2);
  EXPECT_EQ(submitter.submit(a), "4000");
  EXPECT_EQ(submitter.submit(b), "4001");

  const auto recs = read_records(fx.record);
  ASSERT_EQ(recs.size(), 8u);
  std::set<std::string> ranks_a, ranks_b;
  long long last_end_a = 0, first_start_b = -1;
  for (const auto& r : recs) {
    const bool is_a = r.f.at("prog") == "bignlp-train";
    EXPECT_EQ(r.f.at("ntasks"), "2");
    EXPECT_EQ(r.f.at("nnodes"), "1");
    EXPECT_EQ(r.f.at("localid"), r.f.at("procid"));
    EXPECT_EQ(r.f.at("jobid"), is_a ? "4000" : "4001");
    EXPECT_EQ(r.f.at("cwd"), (fx.tmp.path() / (is_a ? "training" : "evaluation")).string());
    EXPECT_EQ(r.f.at("custom"), "value");  // the record splits on spaces; the full value is checked below
    const long long t = std::stoll(r.f.at("time_ns"));
    if (is_a) {
      ranks_a.insert(r.f.at("procid"));
      if (r.event == "end") last_end_a = std::max(last_end_a, t);
    } else {
      ranks_b.insert(r.f.at("procid"));
      if (r.event == "start") first_start_b = first_start_b < 0 ? t : std::min(first_start_b, t);
    }
  }
  EXPECT_EQ(ranks_a, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(ranks_b, (std::set<std::string>{"0", "1"}));
  EXPECT_LT(last_end_a, first_start_b) << "the second stage started before the first ended";

  // Logs per job, unprefixed; the terminal gets prefixed lines on the matching stream.
  const std::string log_a = read_file(a.dir / "log-bignlp-training_4000.out");
  EXPECT_NE(log_a.find("hello from bignlp-train rank 0\n"), std::string::npos);
  EXPECT_NE(log_a.find("hello from bignlp-train rank 1\n"), std::string::npos);
  EXPECT_NE(read_file(a.dir / "log-bignlp-training_4000.err").find("stderr from bignlp-train rank 1\n"),
            std::string::npos);
  const std::string term = read_file(fx.out);
  EXPECT_NE(term.find("[training 0] hello from bignlp-train rank 0\n"), std::string::npos) << term;
  EXPECT_NE(term.find("[evaluation 1] hello from bignlp-evaluate rank 1\n"), std::string::npos) << term;
  EXPECT_NE(read_file(fx.err).find("[training 1] stderr from bignlp-train rank 1\n"), std::string::npos);
  EXPECT_EQ(term.find("stderr from"), std::string::npos);
}

TEST(LocalExecutor, EnvironmentValuesArriveIntact) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 1);
  const std::string tricky = "a b $(touch " + (fx.tmp.path() / "pwned").string() + ") `id` 'q' \"d\"\nline2";
  j.env.emplace_back("BIGNLP_TEST_TRICKY", tricky);
  j.groups[0].commands = {{"bash", "-c", "printf '%s' \"$BIGNLP_TEST_TRICKY\" > " + (fx.tmp.path() / "v").string()}};
  LocalExecutor exec(Logger::capturing(), fx.options());
  EXPECT_EQ(exec.run(j, "1").exit_code, 0);
  EXPECT_EQ(read_file(fx.tmp.path() / "v"), tricky);
  EXPECT_FALSE(std::filesystem::exists(fx.tmp.path() / "pwned"));
}

TEST(LocalExecutor, EachJobGetsAFreshStoreSecretSharedByItsTasks) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 2);
  j.groups[0].commands = {{"bash", "-c", "printf '%s' \"$BIGNLP_STORE_SECRET\" > " + fx.tmp.path().string() +
                                             "/s.$SLURM_JOB_ID.$SLURM_PROCID"}};
  LocalExecutor exec(Logger::capturing(), fx.options());
  ::setenv("BIGNLP_STORE_SECRET", "inherited", 1);  // never passed on: each job makes its own
  EXPECT_EQ(exec.run(j, "1").exit_code, 0);
  EXPECT_EQ(exec.run(j, "2").exit_code, 0);
  ::unsetenv("BIGNLP_STORE_SECRET");
  const std::string a0 = read_file(fx.tmp.path() / "s.1.0");
  EXPECT_EQ(a0.size(), 32u);
  EXPECT_NE(a0, "inherited");
  EXPECT_EQ(read_file(fx.tmp.path() / "s.1.1"), a0);
  EXPECT_NE(read_file(fx.tmp.path() / "s.2.0"), a0);
}

TEST(LocalExecutor, SeveralCommandsPassArgumentsAsData) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 1);
  const auto worker = worker_as(fx.tmp.path() / "bin", "bignlp-train").string();
  const std::vector<std::string> words = {"$(touch " + (fx.tmp.path() / "pwned").string() + ")", "`id`", "it's",
                                          "two\nlines", "a;b|c&d", ""};
  Command cmd = {worker};
  cmd.insert(cmd.end(), words.begin(), words.end());
  j.env.emplace_back("BIGNLP_TEST_ARGV", (fx.tmp.path() / "argv").string());
  j.groups[0].commands = {{"true"}, cmd};
  LocalExecutor exec(Logger::capturing(), fx.options());
  EXPECT_EQ(exec.run(j, "1").exit_code, 0);
  EXPECT_EQ(read_argv(fx.tmp.path() / "argv"), words);
  EXPECT_FALSE(std::filesystem::exists(fx.tmp.path() / "pwned"));
}

TEST(LocalExecutor, ArrayElementsGetTheirIndicesAndLogs) {
  Fixture fx;
  JobSpec j = fx.job("data_preparation", "bignlp-preprocess", 1);
  j.step = "download";
  j.array = ArraySpec{{0, 3, 5}, 2};
  LocalSubmitter submitter(Logger::capturing(), 700, fx.options());
  EXPECT_EQ(submitter.submit(j), "700");
  EXPECT_EQ(submitter.planned_id(j), "703");  // one id per element
  std::vector<std::string> tasks, jobs;
  for (const auto& r : read_records(fx.record)) {
    if (r.event != "start") continue;
    tasks.push_back(r.f.at("array_task"));
    jobs.push_back(r.f.at("jobid"));
    EXPECT_EQ(r.f.at("array_job"), "700");
  }
  EXPECT_EQ(tasks, (std::vector<std::string>{"0", "3", "5"}));
  EXPECT_EQ(jobs, (std::vector<std::string>{"700", "701", "702"}));
  for (int idx : {0, 3, 5}) {
    EXPECT_TRUE(std::filesystem::exists(j.dir / ("log-bignlp-data_preparation_700_" + std::to_string(idx) + ".out")));
  }
  EXPECT_NE(read_file(fx.out).find("[data_preparation/download:3 0] hello"), std::string::npos);
}

TEST(LocalExecutor, AFailedTaskStopsItsPeersAndTheJob) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 2);
  j.env.emplace_back("BIGNLP_TEST_FAIL", "bignlp-train");
  j.groups.push_back(CommandGroup{{{worker_as(fx.tmp.path() / "bin", "bignlp-export").string()}}});
  LocalSubmitter submitter(Logger::capturing(), 10, fx.options());
  try {
    submitter.submit(j);
    FAIL() << "a failing job was reported as successful";
  } catch (const JobFailedError& e) {
    EXPECT_EQ(e.exit_code(), 7);
    EXPECT_NE(std::string(e.what()).find("exited with status 7"), std::string::npos) << e.what();
  }
  for (const auto& r : read_records(fx.record)) EXPECT_NE(r.f.at("prog"), "bignlp-export") << "ran after a failure";
  EXPECT_NE(read_file(j.dir / "launcher.log").find("exit status 7"), std::string::npos);
}

TEST(LocalExecutor, PeersOfAFailedTaskAreTerminated) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 2);
  // Rank 1 would sleep 60 s; rank 0 fails once rank 1 runs, so rank 1 must get SIGTERM.
  j.groups[0].commands[0] = {"bash", "-c",
                             "if [ \"$SLURM_PROCID\" = 0 ]; then until grep -q '^start' \"$BIGNLP_TEST_RECORD\" "
                             "2>/dev/null; do sleep 0.02; done; exit 5; fi; BIGNLP_TEST_SLEEP=60 exec " +
                                 worker_as(fx.tmp.path() / "bin", "bignlp-train").string()};
  LocalExecutor exec(Logger::capturing(), fx.options());
  const auto t0 = std::chrono::steady_clock::now();
  const LocalRunResult r = exec.run(j, "3");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  bool termed = false;
  for (const auto& rec : read_records(fx.record)) termed = termed || rec.event == "term";
  EXPECT_TRUE(termed) << "rank 1 did not receive SIGTERM";
}

TEST(LocalExecutor, SignalsAreForwardedAndReported) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 2);
  j.env.emplace_back("BIGNLP_TEST_SLEEP", "60");
  // Block SIGTERM in every thread of this process (the sender inherits the mask), so the signal
  // can only be taken by the executor's signalfd.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  std::thread sender([&] {
    for (int i = 0; i < 200 && read_records(fx.record).size() < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ::kill(::getpid(), SIGTERM);
  });
  LocalExecutor exec(Logger::capturing(), fx.options());
  const LocalRunResult r = exec.run(j, "9");
  sender.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  int termed = 0;
  for (const auto& rec : read_records(fx.record)) termed += rec.event == "term" ? 1 : 0;
  EXPECT_EQ(termed, 2) << "SIGTERM did not reach both tasks";
}

TEST(LocalExecutor, ADetachedProcessHoldingTheOutputDoesNotHangTheJob) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 1);
  // The task leaves a process behind in a session of its own, still writing to the task's stdout.
  j.groups[0].commands[0] = {"bash", "-c", "setsid sleep 5 & echo started"};
  LocalExecutor exec(Logger::capturing(), fx.options());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(exec.run(j, "1").exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_NE(read_file(j.dir / "log-bignlp-training_1.out").find("started"), std::string::npos);
}

// A launcher killed with SIGKILL (no chance to forward anything) takes its tasks with it.
TEST(LocalExecutor, TasksDieWithTheirLauncher) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 2);
  const auto pids = fx.tmp.path() / "pids";
  j.groups[0].commands = {{"bash", "-c", "echo $$ >> " + pids.string() + "; exec sleep 60"}};
  const pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    LocalExecutor exec(Logger::capturing(), fx.options());
    exec.run(j, "1");
    ::_exit(0);
  }
  std::vector<pid_t> tasks;
  for (int i = 0; i < 200 && tasks.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    tasks.clear();
    if (!std::filesystem::exists(pids)) continue;
    std::istringstream in(read_file(pids));
    for (pid_t p; in >> p;) tasks.push_back(p);
  }
  ASSERT_EQ(tasks.size(), 2u) << "the tasks did not start";
  ::kill(launcher, SIGKILL);
  ::waitpid(launcher, nullptr, 0);
  auto alive = [](pid_t p) {
    if (::kill(p, 0) != 0) return false;
    // A zombie waiting for its new parent to reap it is dead too.
    const std::string stat = read_file("/proc/" + std::to_string(p) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || stat.substr(close + 2, 1) != "Z";
  };
  bool any = true;
  for (int i = 0; i < 200 && any; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    any = false;
    for (pid_t p : tasks) {
      try {
        any = any || alive(p);
      } catch (const std::exception&) {
      }
    }
  }
  for (pid_t p : tasks) {
    if (::kill(p, 0) == 0) ::kill(p, SIGKILL);
  }
  EXPECT_FALSE(any) << "tasks outlived their launcher";
}

TEST(LocalExecutor, AMissingProgramFailsWith127) {
  Fixture fx;
  JobSpec j = fx.job("training", "bignlp-train", 1);
  j.groups[0].commands[0] = {(fx.tmp.path() / "no-such-program").string()};
  LocalExecutor exec(Logger::capturing(), fx.options());
  EXPECT_EQ(exec.run(j, "1").exit_code, 127);
  EXPECT_NE(read_file(j.dir / "log-bignlp-training_1.err").find("cannot run"), std::string::npos);
}

}  // namespace
}  // namespace bignlp::launch
