#include "bignlp/launch/submitter.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/process.h"

namespace bignlp::launch {
namespace {

std::uint64_t ids_needed(const JobSpec& job) { return job.array ? job.array->indices.size() : 1; }

// launcher.log keeps the history of every launch into the folder: one line appended per job.
void append_launcher_log(const std::filesystem::path& dir, const std::string& line) {
  const std::filesystem::path path = dir / "launcher.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      throw IoError(fmt::format("cannot write '{}': {}", path.string(), err));
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
}

}  // namespace

std::string DryRunSubmitter::planned_id(const JobSpec&) const { return fmt::format("{}", next_); }

std::string DryRunSubmitter::submit(const JobSpec& job) {
  const std::string id = planned_id(job);
  next_ += ids_needed(job);
  return id;
}

std::string parse_sbatch_job_id(const std::string& output) {
  const std::string_view text = trim(output);
  const std::string_view id = text.substr(0, text.find(';'));
  bool digits = !id.empty();
  for (char c : id) digits = digits && c >= '0' && c <= '9';
  if (!digits) {
    throw SubmitError(fmt::format("sbatch printed {} where a job id was expected", text.empty() ? "nothing" : "'" + std::string(text) + "'"));
  }
  return std::string(id);
}

SlurmSubmitter::SlurmSubmitter(Logger logger, std::string sbatch) : logger_(std::move(logger)), sbatch_(std::move(sbatch)) {}

std::string SlurmSubmitter::submit(const JobSpec& job) {
  const CapturedRun run = run_captured({sbatch_, "--parsable", job.script_path().string()}, job.dir);
  if (run.exit_code == 127 && run.out.empty()) {
    throw SubmitError(fmt::format("cannot run '{}' to submit '{}': {}\nIs this a Slurm login node? To run here use "
                                  "cluster_type=local; to only write the scripts use dry_run=true.",
                                  sbatch_, job.script_path().string(), trim(run.err)));
  }
  if (run.exit_code != 0) {
    throw SubmitError(fmt::format("sbatch refused '{}' (exit status {}):\n{}", job.script_path().string(),
                                  run.exit_code, trim(run.err.empty() ? run.out : run.err)));
  }
  const std::string id = parse_sbatch_job_id(run.out);
  append_launcher_log(job.dir, fmt::format("Submitted batch job {}\n", id));
  return id;
}

BcpSubmitter::BcpSubmitter(Logger logger, std::string bash) : logger_(std::move(logger)), bash_(std::move(bash)) {}

std::string BcpSubmitter::submit(const JobSpec& job) {
  logger_.info("running {} here (Base Command Platform)", job.script_path().string());
  const int rc = run_inherited({bash_, job.script_path().string()}, job.dir);
  append_launcher_log(job.dir, fmt::format("Ran {} here: exit status {}\n", job.script_path().filename().string(), rc));
  if (rc != 0) {
    throw JobFailedError(fmt::format("job '{}' failed with exit status {}; its log is in {}", job.name, rc,
                                     job.dir.string()),
                         rc);
  }
  return "";
}

LocalSubmitter::LocalSubmitter(Logger logger, std::uint64_t first_id, LocalExecutorOptions options)
    : logger_(logger), executor_(logger, options), next_(first_id) {}

std::string LocalSubmitter::planned_id(const JobSpec&) const { return fmt::format("{}", next_); }

std::string LocalSubmitter::submit(const JobSpec& job) {
  const std::string id = planned_id(job);
  next_ += ids_needed(job);
  const LocalRunResult result = executor_.run(job, id);
  append_launcher_log(job.dir, fmt::format("Ran local job {}: exit status {}\n", id, result.exit_code));
  if (result.exit_code != 0) {
    throw JobFailedError(fmt::format("{}; logs: {}", result.message,
                                     job.log_path(true, id, job.array ? job.array->indices.front() : -1).parent_path().string()),
                         result.exit_code);
  }
  return id;
}

}  // namespace bignlp::launch
