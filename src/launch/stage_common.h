// Helpers shared by the stage implementations (private to the launch library): the run section,
// the parts every JobSpec shares, worker commands, and the parallel-layout checks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/launch/stage.h"

namespace bignlp::launch::detail {

/// True for Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED/infinite.
bool is_slurm_time(std::string_view text);

/// run.name, run.results_dir and run.time_limit, checked; fills the plan's name, folder, config.
void read_run_section(const StageConfig& c, Problems& problems, StagePlan& plan);

/// The JobSpec fields every job of a stage shares: name (with the cluster's prefix on Slurm),
/// folder, time limit, dependency (run.dependency), environment, W&B key, container and Slurm
/// options. `uses_gpus` adds the cluster's GPU request.
JobSpec base_job(const StageConfig& c, const StagePlan& plan, const StageContext& ctx, bool uses_gpus);

/// `<program> --config-path <results_dir> --config-name <run.name>_hydra.yaml [extra...]`, run
/// through bignlp-bind (numa_mapping) when `bind` and numa_mapping.enable.
Command worker_command(const StagePlan& plan, const StageContext& ctx, const std::string& program,
                       const std::vector<std::string>& extra, bool bind);

/// A plan for `c` of `family` with its run section read (problems go to `problems`).
StagePlan start_plan(const StageConfig& c, const std::string& family, Problems& problems);

/// Appends the stage's one job: base_job() on `nodes` x `ntasks_per_node` tasks, each running
/// worker_command(program, extra, bind). Returns it for stage-specific additions.
JobSpec& add_worker_job(StagePlan& plan, const StageConfig& c, const StageContext& ctx, bool uses_gpus,
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
void check_parallel_layout(const StageConfig& c, const StageContext& ctx, const ParallelKeys& keys, Problems& problems);

/// A path a stage reads: an error (a warning in a dry run, or nothing when `produced_by` runs
/// earlier in this pipeline) when it does not exist.
void require_input(const StageConfig& c, const StageContext& ctx, StagePlan& plan, Problems& problems,
                   std::string_view key, const std::string& path, std::string_view produced_by, std::string_view hint);

}  // namespace bignlp::launch::detail
