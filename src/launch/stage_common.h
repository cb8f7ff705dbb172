// Helpers shared by the stage implementations (private to the launch library): the run section,
// the parts every JobSpec shares, worker commands, and the parallel-layout checks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/launch/stage.h"

namespace bignlp::launch::detail {

/// " (conf/training/gpt3/5b.yaml:12:3)" or " (override #2 'training.run.name=x')": where the value
/// at `path` was set, for the end of a message; empty when it was set another way or is absent.
std::string origin_note(const config::ConfigView& c, std::string_view path);

/// True for Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED/infinite.
bool is_slurm_time(std::string_view text);

/// run.name, run.results_dir and run.time_limit, checked; fills the plan's name, folder, config.
void read_run_section(const config::ConfigView& c, Problems& problems, StageJobs& plan);

/// The JobSpec fields every job of a stage shares: name (with the cluster's prefix on Slurm),
/// folder, time limit, dependency (run.dependency), environment, W&B key, container and Slurm
/// options. `uses_gpus` adds the cluster's GPU request.
JobSpec base_job(const config::ConfigView& c, const StageJobs& plan, const StageContext& ctx, bool uses_gpus);

/// `<program> --config-path <results_dir> --config-name <run.name>_hydra.yaml [extra...]`, run
/// through bignlp-bind (numa_mapping) when `bind` and numa_mapping.enable.
Command worker_command(const StageJobs& plan, const StageContext& ctx, const std::string& program,
                       const std::vector<std::string>& extra, bool bind);

/// The StageJobs of `c` for `family`, its run section read (problems go to `problems`), no jobs yet.
StageJobs start_stage_jobs(const config::ConfigView& c, const std::string& family, Problems& problems);

/// Appends the stage's one job: base_job() on `nodes` x `ntasks_per_node` tasks, each running
/// worker_command(program, extra, bind). Returns it for stage-specific additions.
JobSpec& add_worker_job(StageJobs& plan, const config::ConfigView& c, const StageContext& ctx, bool uses_gpus,
                        std::int64_t nodes, std::int64_t ntasks_per_node, const std::string& program,
                        const std::vector<std::string>& extra, bool bind);

/// Divisors of n, as "1, 2, 4, 8" (for fix suggestions).
std::string divisors_text(std::int64_t n);

/// The checks every model-parallel job needs: TP x PP divides the GPUs, the global batch divides
/// into micro batches x data-parallel size, and (on Slurm) devices fit a node. Keys are paths in
/// the stage config; gbs/mbs may be empty when the stage has no batch to check.
struct ParallelKeys {
  std::string nodes, devices, tp, pp, gbs, mbs;
};
void check_parallel_layout(const config::ConfigView& c, const StageContext& ctx, const ParallelKeys& keys,
                           Problems& problems);

/// A path a stage reads: an error (a warning in a dry run, or nothing when `produced_by` runs
/// earlier in this stage sequence) when it does not exist.
void require_input(const config::ConfigView& c, const StageContext& ctx, StageJobs& plan, Problems& problems,
                   std::string_view key, const std::string& path, std::string_view produced_by, std::string_view hint);

}  // namespace bignlp::launch::detail
