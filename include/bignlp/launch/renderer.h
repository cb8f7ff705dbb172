// Renderers: JobSpec + template -> job script text, for Slurm (bcm), Base Command Platform and
// this machine (local).
//
// Each renderer is a pure function: it reads no clock, environment, working directory or file,
// so the same JobSpec always gives the same bytes (tests/golden/launch/ diffs them). Templates
// are the files of conf/templates/, compiled into the library (TemplateSet::builtin()).
//
// Slurm: `#SBATCH` directives sorted by key (true flags bare), `export` lines for the job's
//   environment, the W&B key read from its file at run time, then one `srun` per command group:
//   pyxis flags (--container-image, --container-mounts, --no-container-mount-home) when the job
//   has a container, a plain `srun` otherwise. One command runs directly; several run in
//   `bash -c` with `set -e`.
// BCP: the same setup, then per group `bcprun --nnodes N --npernode n ... --cmd '...'` with its
//   output appended to `log-<name>_${NGC_JOB_ID}.out` in the job's folder. Inside the command the
//   launcher's rank variables (bcprun's RANK/LOCAL_RANK/WORLD_SIZE or Open MPI's) are exported
//   under Slurm's names, so workers read one set of variables everywhere.
// local: a script that does by hand what the local executor does (one process per task, with
//   local_task_env()); the job id is an input.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bignlp/launch/job_spec.h"

namespace bignlp::launch {

enum class ClusterType { kBcm, kBcp, kLocal };

/// "bcm" | "bcp" | "local"; throws ConfigError naming `cluster_type` and the choices otherwise.
ClusterType parse_cluster_type(std::string_view text);
std::string_view to_string(ClusterType type);

/// The script templates, by cluster type.
struct TemplateSet {
  std::string slurm;
  std::string bcp;
  std::string local;
  /// The templates of conf/templates/ as they were when the library was built.
  static TemplateSet builtin();
};

/// `#SBATCH` lines of a job without the "#SBATCH " prefix, sorted: {"--exclusive", "--nodes=2", ...}.
std::vector<std::string> slurm_directives(const JobSpec& job);

/// The `srun ...` line of one command group of a Slurm job.
std::string slurm_srun_line(const JobSpec& job, const CommandGroup& group);

std::string render_slurm_script(const JobSpec& job, const TemplateSet& templates);
std::string render_bcp_script(const JobSpec& job, const TemplateSet& templates);
/// `job_id` is the local job id the executor will use (it names the logs and SLURM_JOB_ID).
std::string render_local_script(const JobSpec& job, const TemplateSet& templates, const std::string& job_id);

/// Dispatches on `type`; `job_id` is used by the local renderer only.
std::string render_script(ClusterType type, const JobSpec& job, const TemplateSet& templates,
                          const std::string& job_id);

/// The environment the local executor gives task `task` (0-based, node-major) of `group`
/// (number `step`, 0-based), on top of the job's own env: SLURM_JOB_ID, SLURM_JOB_NAME,
/// SLURM_NNODES, SLURM_JOB_NUM_NODES, SLURM_NTASKS, SLURM_NTASKS_PER_NODE, SLURM_PROCID,
/// SLURM_LOCALID, SLURM_NODEID, SLURM_STEP_ID, SLURM_JOB_NODELIST (localhost), the
/// SLURM_ARRAY_* variables for array elements (`array_index` >= 0), and the torchrun-style
/// RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR (127.0.0.1) and MASTER_PORT
/// (derived from the job id, so concurrent local runs do not collide). The executor adds
/// SLURM_CPUS_ON_NODE (this machine's CPU count).
std::vector<std::pair<std::string, std::string>> local_task_env(const JobSpec& job, const CommandGroup& group,
                                                                int step, int task, const std::string& job_id,
                                                                const std::string& array_job_id, int array_index);

/// MASTER_PORT of a local job: 20000 + (the job id's digits modulo 30000).
int local_master_port(const std::string& job_id);

}  // namespace bignlp::launch
