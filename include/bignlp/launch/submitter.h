// Submitters: what happens to a job once its script is written.
//
//   DryRunSubmitter  nothing; returns made-up ids (1000001, 1000002, ...) so the scripts of later
//                    stages still show their dependencies.
//   SlurmSubmitter   `sbatch --parsable <script>` from the job's folder; the job id goes to
//                    `<dir>/launcher.log` ("Submitted batch job <id>").
//   BcpSubmitter     `bash <script>` in the job's folder, now (BCP runs bignlp inside the job).
//   LocalSubmitter   the local executor, now, on this machine.
// A submission that fails throws SubmitError (sbatch refused the job; its message is quoted);
// a job that ran here and failed throws JobFailedError carrying the job's exit status, which
// `bignlp` then exits with.
#pragma once

#include <cstdint>
#include <string>

#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/launch/job_spec.h"
#include "bignlp/launch/local_executor.h"

namespace bignlp::launch {

/// A job that ran on this machine (local, BCP) and failed; exit_code() is the job's status.
class JobFailedError : public Error {
 public:
  JobFailedError(std::string message, int status) : Error(std::move(message), static_cast<ExitCode>(status)) {}
};

class Submitter {
 public:
  virtual ~Submitter() = default;
  /// The id `job` will get when it is known before submission (dry run, local), else empty.
  /// Renderers use it (local scripts name their logs with it).
  virtual std::string planned_id(const JobSpec& job) const = 0;
  /// Submits or runs `job`, whose script is already at job.script_path(). Returns the job id
  /// the next job can depend on ("" when there is none, e.g. BCP).
  virtual std::string submit(const JobSpec& job) = 0;
  /// True when submit() runs the job to completion before returning.
  virtual bool synchronous() const = 0;
};

class DryRunSubmitter final : public Submitter {
 public:
  explicit DryRunSubmitter(std::uint64_t first_id = 1000001) : next_(first_id) {}
  std::string planned_id(const JobSpec& job) const override;
  std::string submit(const JobSpec& job) override;
  bool synchronous() const override { return false; }

 private:
  std::uint64_t next_;
};

class SlurmSubmitter final : public Submitter {
 public:
  /// `sbatch` is the program to run (a name on PATH or a path).
  explicit SlurmSubmitter(Logger logger, std::string sbatch = "sbatch");
  std::string planned_id(const JobSpec&) const override { return ""; }
  std::string submit(const JobSpec& job) override;
  bool synchronous() const override { return false; }

 private:
  Logger logger_;
  std::string sbatch_;
};

class BcpSubmitter final : public Submitter {
 public:
  explicit BcpSubmitter(Logger logger, std::string bash = "bash");
  std::string planned_id(const JobSpec&) const override { return ""; }
  std::string submit(const JobSpec& job) override;
  bool synchronous() const override { return true; }

 private:
  Logger logger_;
  std::string bash_;
};

class LocalSubmitter final : public Submitter {
 public:
  /// Local job ids start at `first_id` (e.g. derived from the process id, so that logs of
  /// different runs do not collide); each job takes as many ids as it has array elements.
  LocalSubmitter(Logger logger, std::uint64_t first_id, LocalExecutorOptions options = {});
  std::string planned_id(const JobSpec& job) const override;
  std::string submit(const JobSpec& job) override;
  bool synchronous() const override { return true; }

 private:
  Logger logger_;
  LocalExecutor executor_;
  std::uint64_t next_;
};

/// Parses `sbatch --parsable` output ("123" or "123;cluster"); throws SubmitError otherwise.
std::string parse_sbatch_job_id(const std::string& output);

}  // namespace bignlp::launch
