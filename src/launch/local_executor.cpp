#include "bignlp/launch/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/process.h"
#include "bignlp/launch/renderer.h"
#include "bignlp/launch/shell.h"

extern char** environ;

namespace bignlp::launch {
namespace {

using Clock = std::chrono::steady_clock;

// 128 random bits as hex, from the kernel's generator (std::random_device reads it on Linux).
std::string new_store_secret() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<std::uint32_t>(rd()));
  return out;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a closed terminal or log must not stop the job
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Blocks SIGINT/SIGTERM/SIGHUP for the calling thread and reads them from a signalfd; restores
// the previous mask on destruction.
class SignalScope {
 public:
  SignalScope() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set_, &old_) != 0) throw IoError("cannot block signals");
    fd_ = ::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
      pthread_sigmask(SIG_SETMASK, &old_, nullptr);
      throw IoError(fmt::format("signalfd failed: {}", std::strerror(errno)));
    }
  }
  ~SignalScope() {
    ::close(fd_);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;
  int fd() const { return fd_; }
  /// The next pending signal, or 0.
  int take() const {
    signalfd_siginfo info{};
    const ssize_t n = ::read(fd_, &info, sizeof info);
    return n == static_cast<ssize_t>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0;
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  int fd_ = -1;
};

struct Task {
  pid_t pid = -1;
  int fds[2] = {-1, -1};      // read ends of the task's stdout and stderr
  std::string partial[2];     // an unfinished last line per stream
  bool exited = false;
  int exit_code = 0;
  std::string prefix;
};

// Environment of a child: ours, then the job's, then the task's (later entries win).
std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> out;
  std::vector<std::string> keys;
  for (const auto& [k, v] : extra) keys.push_back(k);
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    const std::string_view key = entry.substr(0, eq);
    bool overridden = false;
    for (const auto& k : keys) overridden = overridden || k == key;
    if (!overridden) out.emplace_back(entry);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::string first_line_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("wandb_api_key_file: cannot read '{}': {}", path.string(), std::strerror(errno)));
  std::string line;
  std::getline(in, line);
  return std::string(trim(line));
}

// The program's path as posix_spawnp/execvp find it (PATH of this process); "" when not found.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path && *path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    const std::string full = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
    if (::access(full.c_str(), X_OK) == 0) return full;
  }
  return "";
}

// Starts one task: its own process group, stdin from /dev/null, stdout/stderr into the pipes, the
// default signal dispositions and an empty mask, and PR_SET_PDEATHSIG so the task gets SIGTERM
// (workers save and stop on it) when this launcher dies, even by SIGKILL: no orphan trains on.
// Returns 0 or the errno of the failed start (reported through a close-on-exec pipe).
int spawn_task(const std::vector<char*>& argv, const std::vector<char*>& envp, const std::filesystem::path& cwd,
               int out_fd, int err_fd, pid_t* pid) {
  const std::string program = find_program(argv[0]);
  if (program.empty()) return ENOENT;
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return errno;
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return err;
  }
  if (child == 0) {
    // Only async-signal-safe calls from here to exec.
    auto fail = [&](int err) {
      while (::write(report[1], &err, sizeof err) < 0 && errno == EINTR) {
      }
      ::_exit(127);
    };
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail(errno);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);  // the launcher died before prctl
    if (::setpgid(0, 0) != 0) fail(errno);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) fail(errno);
    if (::chdir(cwd.c_str()) != 0) fail(errno);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), argv.data(), envp.data());
    fail(errno);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  while ((n = ::read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(child, nullptr, 0);
    return err;
  }
  *pid = child;
  return 0;
}

class GroupRun {
 public:
  GroupRun(const LocalExecutorOptions& options, int out_log, int err_log, int signal_fd, const SignalScope& signals)
      : options_(options), logs_{out_log, err_log}, signal_fd_(signal_fd), signals_(signals) {}

  void start(const Command& argv_words, const std::vector<std::string>& env, const std::filesystem::path& cwd,
             std::string prefix) {
    Task t;
    t.prefix = std::move(prefix);
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      throw IoError(fmt::format("pipe failed: {}", std::strerror(errno)));
    }
    std::vector<char*> argv;
    for (const auto& a : argv_words) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const int rc = spawn_task(argv, envp, cwd, out_pipe[1], err_pipe[1], &t.pid);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (rc != 0) {
      ::close(out_pipe[0]);
      ::close(err_pipe[0]);
      const std::string msg = fmt::format("cannot run '{}': {}\n", argv_words.front(), std::strerror(rc));
      write_all(logs_[1], msg);
      write_all(options_.err_fd, t.prefix + msg);
      t.pid = -1;
      t.exited = true;
      t.exit_code = 127;
    } else {
      t.fds[0] = out_pipe[0];
      t.fds[1] = err_pipe[0];
      for (int fd : t.fds) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    tasks_.push_back(std::move(t));
    if (tasks_.back().exited) on_failure(tasks_.size() - 1);
  }

  // Streams output until every task has exited; returns the group's result.
  LocalRunResult wait() {
    char buf[65536];
    while (true) {
      reap();
      enforce_deadline();
      std::vector<pollfd> pfds;
      std::vector<std::pair<std::size_t, int>> owners;
      for (std::size_t i = 0; i < tasks_.size(); ++i) {
        for (int s = 0; s < 2; ++s) {
          if (tasks_[i].fds[s] >= 0) {
            pfds.push_back({tasks_[i].fds[s], POLLIN, 0});
            owners.emplace_back(i, s);
          }
        }
      }
      bool all_exited = true;
      for (const auto& t : tasks_) all_exited = all_exited && t.exited;
      if (all_exited && pfds.empty()) break;
      // A process that left its task's process group may hold the pipes open after the task
      // ended: stop reading a little while after the last task exited.
      if (all_exited) {
        if (!drain_until_) drain_until_ = Clock::now() + std::chrono::seconds(2);
        if (Clock::now() > *drain_until_) {
          for (auto& t : tasks_) {
            for (int& fd : t.fds) {
              if (fd >= 0) ::close(fd);
              fd = -1;
            }
          }
          break;
        }
      }
      pfds.push_back({signal_fd_, POLLIN, 0});
      const int n = ::poll(pfds.data(), pfds.size(), 100);
      if (n < 0 && errno != EINTR) throw IoError(fmt::format("poll failed: {}", std::strerror(errno)));
      if (n <= 0) continue;
      if (pfds.back().revents != 0) {
        while (const int sig = signals_.take()) on_signal(sig);
      }
      for (std::size_t k = 0; k + 1 < pfds.size(); ++k) {
        if (pfds[k].revents == 0) continue;
        auto [i, s] = owners[k];
        Task& t = tasks_[i];
        const ssize_t got = ::read(t.fds[s], buf, sizeof buf);
        if (got > 0) {
          emit(t, s, std::string_view(buf, static_cast<std::size_t>(got)));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(t.fds[s]);
          t.fds[s] = -1;
          if (!t.partial[s].empty()) emit(t, s, "\n");
        }
      }
    }
    LocalRunResult result;
    if (signal_ != 0) {
      result.exit_code = 128 + signal_;
      result.signal = signal_;
      result.message = fmt::format("interrupted by signal {} ({})", signal_, strsignal(signal_));
    } else if (failed_ >= 0) {
      result.exit_code = tasks_[static_cast<std::size_t>(failed_)].exit_code;
      result.message = fmt::format("task {} of {} exited with status {}", failed_, tasks_.size(), result.exit_code);
    }
    return result;
  }

 private:
  void emit(Task& t, int s, std::string_view data) {
    std::string& part = t.partial[s];
    part.append(data);
    std::size_t start = 0;
    std::string terminal;
    std::size_t nl;
    while ((nl = part.find('\n', start)) != std::string::npos) {
      terminal += t.prefix;
      terminal.append(part, start, nl - start + 1);
      start = nl + 1;
    }
    if (start > 0) {
      write_all(logs_[s], std::string_view(part).substr(0, start));
      write_all(s == 0 ? options_.out_fd : options_.err_fd, terminal);
      part.erase(0, start);
    }
  }

  void reap() {
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      Task& t = tasks_[i];
      if (t.exited) continue;
      int status = 0;
      const pid_t r = ::waitpid(t.pid, &status, WNOHANG);
      if (r != t.pid) continue;
      t.exited = true;
      t.exit_code = exit_code_of(status);
      // Like the end of a Slurm step: nothing the task started outlives it (and keeps its pipes open).
      ::kill(-t.pid, SIGKILL);
      if (t.exit_code != 0) on_failure(i);
    }
  }

  void on_failure(std::size_t i) {
    if (failed_ >= 0 || signal_ != 0) return;
    failed_ = static_cast<int>(i);
    signal_others(SIGTERM);
  }

  void on_signal(int sig) {
    if (signal_ == 0) signal_ = sig;
    signal_others(sig);
  }

  void signal_others(int sig) {
    for (const auto& t : tasks_) {
      if (!t.exited && t.pid > 0) ::kill(-t.pid, sig);
    }
    if (!deadline_) {
      deadline_ = Clock::now() + std::chrono::milliseconds(static_cast<long>(options_.kill_grace_seconds * 1000));
    }
  }

  void enforce_deadline() {
    if (!deadline_ || Clock::now() < *deadline_) return;
    for (const auto& t : tasks_) {
      if (!t.exited && t.pid > 0) ::kill(-t.pid, SIGKILL);
    }
  }

  const LocalExecutorOptions& options_;
  int logs_[2];
  int signal_fd_;
  const SignalScope& signals_;
  std::vector<Task> tasks_;
  int failed_ = -1;
  int signal_ = 0;
  std::optional<Clock::time_point> deadline_;
  std::optional<Clock::time_point> drain_until_;
};

int open_log(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot open log '{}': {}", path.string(), std::strerror(errno)));
  return fd;
}

}  // namespace

LocalExecutor::LocalExecutor(Logger logger, LocalExecutorOptions options)
    : logger_(std::move(logger)), options_(options) {}

LocalRunResult LocalExecutor::run(const JobSpec& job, const std::string& job_id) const {
  std::uint64_t base = 0;
  for (char c : job_id) {
    if (c < '0' || c > '9') throw RenderError(fmt::format("local job id '{}' is not a number", job_id));
    base = base * 10 + static_cast<std::uint64_t>(c - '0');
  }
  std::error_code ec;
  std::filesystem::create_directories(job.dir, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", job.dir.string(), ec.message()));

  std::vector<std::pair<std::string, std::string>> job_env = job.env;
  if (job.wandb_api_key_file) job_env.emplace_back("WANDB_API_KEY", first_line_of(*job.wandb_api_key_file));
  job_env.emplace_back("BIGNLP_STORE_SECRET", new_store_secret());  // the rendezvous store admits only this job
  job_env.emplace_back("SLURM_CPUS_ON_NODE", fmt::format("{}", std::max(1u, std::thread::hardware_concurrency())));

  SignalScope signals;
  const std::vector<int> elements = job.array ? job.array->indices : std::vector<int>{-1};
  for (std::size_t e = 0; e < elements.size(); ++e) {
    const int index = elements[e];
    const std::string element_id = index >= 0 ? fmt::format("{}", base + e) : job_id;
    const int out_log = open_log(job.log_path(false, job_id, index));
    const int err_log = open_log(job.log_path(true, job_id, index));
    LocalRunResult result;
    for (std::size_t g = 0; g < job.groups.size() && result.exit_code == 0; ++g) {
      const CommandGroup& group = job.groups[g];
      const int ntasks = job.group_tasks(group);
      logger_.debug("local job {}: step {} of '{}' with {} task(s)", element_id, g, job.name, ntasks);
      GroupRun run(options_, out_log, err_log, signals.fd(), signals);
      std::string label = job.stage;
      if (!job.step.empty()) label += "/" + job.step;
      if (index >= 0) label += fmt::format(":{}", index);
      for (int t = 0; t < ntasks; ++t) {
        auto env = job_env;
        for (auto& kv : local_task_env(job, group, static_cast<int>(g), t, element_id, job_id, index)) {
          env.push_back(std::move(kv));
        }
        // Several commands run in one shell that stops at the first failure, as in the scripts.
        Command cmd = group.commands.front();
        if (group.commands.size() > 1) {
          std::string script = "set -e";
          for (const auto& c : group.commands) script += "\n" + shell_join(c);
          cmd = {"bash", "-c", script};
        }
        run.start(cmd, child_environment(env), job.dir, fmt::format("[{} {}] ", label, t));
      }
      result = run.wait();
      if (result.exit_code != 0) {
        result.message = fmt::format("job '{}'{}: {}", job.name, index >= 0 ? fmt::format(" element {}", index) : "",
                                     result.message);
      }
    }
    ::close(out_log);
    ::close(err_log);
    if (result.exit_code != 0) return result;
  }
  return {};
}

}  // namespace bignlp::launch
