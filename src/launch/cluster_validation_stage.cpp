// The cluster_validation stage (docs/cluster_tools.md): one Slurm job on the nodes of
// cluster_validation.nodelist whose single task runs bignlp-validate, which starts a Slurm step
// per check on the node(s) it tests; before it, with topology_file set, a one-node job writes the
// NCCL topology file (bignlp-validate --write-topology, the seed's gentopo step). Locally
// (cluster_type=local) the checks run on this machine with the node names as labels.
#include <fmt/format.h>

#include "bignlp/cluster/nodelist.h"
#include "bignlp/core/error.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

class ClusterValidationStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    const LaunchSettings& s = ctx.settings;
    StageJobs plan = start_stage_jobs(c, family, p);
    if (s.cluster_type == ClusterType::kBcp) {
      p.add("cluster_type=bcp: cluster validation tests Slurm nodes (srun per node); Base Command Platform chooses "
            "the nodes itself. Use cluster_type=bcm (or local for this machine)");
    }
    const auto nodes = c.find<std::int64_t>("nodes");
    const auto nodelist = c.find<std::string>("nodelist");
    const bool dcgm = c.get_or<bool>("dcgm", true);
    const bool nccl = c.get_or<bool>("nccl", true);
    const auto topology = c.find<std::string>("topology_file");
    const int level = static_cast<int>(c.get_or<std::int64_t>("dcgm_level", 1));
    const std::string backend = c.get_or<std::string>("backend", "nccl");
    const bool checks = dcgm || nccl;
    std::vector<std::string> hosts;
    if (checks || topology) {
      if (!nodelist) {
        p.add(fmt::format("{} is required: the nodes to test in Slurm syntax, as sinfo shows them (e.g. {}=hpc-pg0-[1-8])",
                          c.full_path("nodelist"), c.full_path("nodelist")));
      } else {
        try {
          hosts = cluster::expand_nodelist(*nodelist, c.full_path("nodelist"));
        } catch (const ConfigError& e) {
          p.add(std::string(e.what()) + origin_note(c, "nodelist"));
        }
      }
    }
    if (checks) {
      if (!nodes) {
        p.add(fmt::format("{} is required: the number of nodes to test", c.full_path("nodes")));
      } else if (*nodes < 1) {
        p.add(fmt::format("{} must be at least 1", c.as_override("nodes")));
      } else if (!hosts.empty() && static_cast<std::int64_t>(hosts.size()) != *nodes) {
        p.add(fmt::format("{} but {} names {} node(s); give the same count", c.as_override("nodes"),
                          c.as_override("nodelist"), hosts.size()));
      }
    }
    if (!checks && !topology) {
      p.add(fmt::format("{}, {} and {} unset: nothing to do", c.as_override("dcgm"), c.as_override("nccl"),
                        c.full_path("topology_file")));
    }
    if (level < 1 || level > 4) p.add(fmt::format("{}: dcgmi diag runs levels 1 to 4", c.as_override("dcgm_level")));
    if (backend != "nccl" && backend != "gloo") {
      p.add(fmt::format("{}: use nccl (GPU nodes) or gloo (CPU nodes)", c.as_override("backend")));
    }
    const double fraction = c.get_or<double>("slow_fraction", 0.8);
    if (fraction < 0 || fraction > 1) p.add(fmt::format("{} must be between 0 and 1", c.as_override("slow_fraction")));
    p.throw_if_any();

    const bool slurm = s.cluster_type == ClusterType::kBcm;
    if (topology) {
      JobSpec job = base_job(c, plan, ctx, /*uses_gpus=*/true);
      job.name += "_topology";
      job.nodes = 1;
      job.ntasks_per_node = 1;
      if (slurm) job.slurm.extra_directives["nodelist"] = hosts.front();
      job.groups = {CommandGroup{{Command{s.program("bignlp-validate"), "--write-topology", *topology}}}};
      plan.jobs.push_back(std::move(job));
    }
    if (!checks) return plan;

    Command cmd = {s.program("bignlp-validate"), fmt::format("--nodes={}", *nodes), "--nodelist=" + *nodelist};
    if (s.cluster.partition) cmd.push_back("--partition=" + *s.cluster.partition);
    if (dcgm && !nccl) cmd.push_back("--dcgm");
    if (nccl && !dcgm) cmd.push_back("--nccl");
    cmd.push_back(fmt::format("--runner={}", slurm ? "srun" : "local"));
    cmd.push_back("--results-dir=" + plan.results_dir.string());
    if (dcgm) cmd.push_back(fmt::format("--dcgm-level={}", level));
    if (nccl) {
      cmd.push_back("--backend=" + backend);
      std::optional<std::int64_t> tasks = c.find<std::int64_t>("tasks_per_node");
      if (!tasks && backend == "nccl" && s.cluster.gpus_per_node) tasks = *s.cluster.gpus_per_node;
      if (tasks) cmd.push_back(fmt::format("--tasks-per-node={}", *tasks));
      if (auto b = c.find<std::int64_t>("message_bytes")) cmd.push_back(fmt::format("--message-bytes={}", *b));
      if (auto m = c.find<double>("min_busbw_gbps")) cmd.push_back(fmt::format("--min-busbw={}", *m));
      cmd.push_back(fmt::format("--slow-fraction={}", fraction));
      cmd.push_back("--bench-comm=" + s.program("bench_comm"));
    }
    JobSpec job = base_job(c, plan, ctx, /*uses_gpus=*/true);
    job.nodes = slurm ? static_cast<int>(*nodes) : 1;
    job.ntasks_per_node = 1;
    if (slurm) job.slurm.extra_directives["nodelist"] = *nodelist;
    // One task (on the first node) runs the checks; each is its own step on the node(s) it tests.
    job.groups = {CommandGroup{{std::move(cmd)}, 1, 1}};
    plan.jobs.push_back(std::move(job));
    return plan;
  }
};

}  // namespace

std::unique_ptr<Stage> make_cluster_validation_stage() { return std::make_unique<ClusterValidationStage>(); }

}  // namespace bignlp::launch::detail
