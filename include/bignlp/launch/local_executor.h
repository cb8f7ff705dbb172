// The local executor: runs a JobSpec on this machine the way Slurm would run it on one node.
//
// Each command group starts one child process per task (nodes x ntasks_per_node), each with the
// environment Slurm gives a task (local_task_env(): SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS,
// SLURM_NNODES, SLURM_JOB_ID, ... and the torchrun-style RANK/WORLD_SIZE/MASTER_ADDR/PORT), in
// the job's folder, in a process group of its own. Their output is streamed line by line to our
// stdout/stderr with a "[stage rank]" prefix and appended, unprefixed, to the job's logs
// (log-<name>_<job id>.out/.err, or _<job id>_<index> for array elements). Groups run in order,
// array elements one after another (so `aftercorr` between steps holds trivially).
//
// Failure and signals: when a task fails, the other tasks of its group get SIGTERM (then
// SIGKILL after the grace period), like `srun --kill-on-bad-exit`, and the job stops. SIGINT,
// SIGTERM and SIGHUP sent to us are forwarded to every task's process group with the same grace
// period. While run() runs, those signals (and SIGCHLD) are blocked in the calling thread and
// read through a signalfd; the previous mask is restored on return. No global state.
#pragma once

#include <string>

#include "bignlp/core/logging.h"
#include "bignlp/launch/job_spec.h"

namespace bignlp::launch {

struct LocalExecutorOptions {
  int out_fd = 1;                   ///< where prefixed stdout lines go
  int err_fd = 2;                   ///< where prefixed stderr lines go
  double kill_grace_seconds = 30;   ///< SIGTERM to SIGKILL (a worker may save a checkpoint)
};

/// How a local job ended.
struct LocalRunResult {
  int exit_code = 0;       ///< 0; the first failed task's code; or 128 + signal when interrupted
  int signal = 0;          ///< the signal that interrupted us, 0 otherwise
  std::string message;     ///< what failed, for the user ("task 1 of step 1 exited with 3")
};

class LocalExecutor {
 public:
  explicit LocalExecutor(Logger logger, LocalExecutorOptions options = {});

  /// Runs every group of `job` (every array element in turn) with local job id `job_id` (digits;
  /// array elements get job_id + position as SLURM_JOB_ID). Blocks until the job ends.
  LocalRunResult run(const JobSpec& job, const std::string& job_id) const;

 private:
  Logger logger_;
  LocalExecutorOptions options_;
};

}  // namespace bignlp::launch
