// data_preparation: a chain of sub-jobs, one per step, each running
//   bignlp-preprocess --config-path <results_dir> --config-name <run.name>_hydra.yaml --step <step>
// in its own folder <results_dir>/<step>/ (script and logs), all reading the one saved config.
//
//   pile            download, extract (download_the_pile), preprocess (preprocess_data): each a job
//                   array over file_numbers -- the array index is the file number -- throttled to
//                   run.node_array_size at once, each element waiting for the same element of the
//                   step before (aftercorr).
//   mc4             prepare; download (download_mc4, array over run.node_array_size nodes);
//                   setup_preprocess; preprocess (preprocess_data, array over the nodes with
//                   run.workers_per_node tasks each); each step waits for the whole step before.
//   custom_dataset  train_tokenizer (train_tokenizer); preprocess (preprocess_data, array over the
//                   nodes with run.workers_per_node tasks each).
//   other           a config with its own `steps` list: one single-task job per step, in order.
// On BCP (no job arrays) a step runs as one bcprun over run.node_array_size nodes with mpirun,
// and the workers split the work by rank.
#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/index_list.h"
#include "bignlp/core/strings.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

struct Step {
  std::string name;
  std::optional<ArraySpec> array;  // Slurm array (bcm and local)
  int ntasks_per_node = 1;
  std::optional<int> cpus_per_task;
  int bcp_nodes = 1;               // BCP: nodes and tasks per node of the bcprun
  int bcp_npernode = 1;
};

class DataPreparationStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    const std::string dataset = c.find<std::string>("dataset").value_or("");
    plan.family = dataset.empty() ? family : dataset;
    std::vector<Step> steps;
    if (dataset == "pile") {
      steps = pile_steps(c, p);
    } else if (dataset == "mc4") {
      steps = mc4_steps(c, p);
    } else if (dataset == "custom_dataset") {
      steps = custom_steps(c, ctx, plan, p);
    } else if (c.has("steps")) {
      for (const auto& s : c.string_list("steps")) steps.push_back(Step{s, std::nullopt, 1, std::nullopt, 1, 1});
      if (steps.empty()) p.add(fmt::format("{} lists no step", c.full_path("steps")));
    } else {
      p.add(fmt::format("{} is not pile, mc4 or custom_dataset, and the config has no `steps` list saying what "
                        "to run. Fix: set {}.dataset, or list the steps of bignlp-preprocess in {}",
                        c.as_override("dataset"), c.prefix(), c.full_path("steps")));
    }
    p.throw_if_any();
    if (steps.empty()) {
      p.add(fmt::format("nothing to do: every step is switched off (download/preprocess flags of {})", c.prefix()));
      p.throw_if_any();
    }

    for (const Step& s : steps) {
      JobSpec job = base_job(c, plan, ctx, false);
      job.step = s.name;
      job.dir = plan.results_dir / s.name;
      if (ctx.settings.cluster_type == ClusterType::kBcp) {
        job.nodes = s.bcp_nodes;
        job.ntasks_per_node = s.bcp_npernode;
        if (s.bcp_nodes * s.bcp_npernode > 1) job.bcp.launcher = "mpirun --allow-run-as-root";
      } else {
        job.array = s.array;
        job.ntasks_per_node = s.ntasks_per_node;
        job.slurm.cpus_per_task = s.cpus_per_task;
      }
      job.env.emplace_back("NGC_ARRAY_TYPE", "MPIJob");
      job.groups = {CommandGroup{{worker_command(plan, ctx, "bignlp-preprocess", {"--step", s.name}, false)}}};
      plan.jobs.push_back(std::move(job));
    }
    return plan;
  }

 private:
  static int positive(const config::ConfigView& c, std::string_view key, std::int64_t fallback, Problems& p) {
    const std::int64_t v = c.find<std::int64_t>(key).value_or(fallback);
    if (v < 1) p.add(fmt::format("{} must be at least 1", c.as_override(key)));
    return static_cast<int>(std::max<std::int64_t>(v, 1));
  }

  static std::vector<Step> pile_steps(const config::ConfigView& c, Problems& p) {
    const int throttle = positive(c, "run.node_array_size", 30, p);
    const int bcp_npernode = positive(c, "run.bcp_preproc_npernode", 2, p);
    std::vector<int> files;
    try {
      files = parse_index_list(c.get<std::string>("file_numbers"), c.full_path("file_numbers"));
    } catch (const ConfigError& e) {
      p.add(e.what());
      return {};
    }
    const ArraySpec array{files, throttle};
    const int nodes = std::min<int>(throttle, static_cast<int>(files.size()));
    std::vector<Step> out;
    if (c.get_or<bool>("download_the_pile", true)) {
      out.push_back({"download", array, 1, std::nullopt, nodes, 1});
      out.push_back({"extract", array, 1, std::nullopt, nodes, 1});
    }
    if (c.get_or<bool>("preprocess_data", true))
      out.push_back({"preprocess", array, 1, std::nullopt, nodes, bcp_npernode});
    return out;
  }

  static std::vector<Step> mc4_steps(const config::ConfigView& c, Problems& p) {
    const int nodes = positive(c, "run.node_array_size", 20, p);
    const int workers = positive(c, "run.workers_per_node", 4, p);
    const int cpus = positive(c, "run.cpus_per_node", 256, p);
    std::vector<int> all(static_cast<std::size_t>(nodes));
    for (int i = 0; i < nodes; ++i) all[static_cast<std::size_t>(i)] = i;
    const ArraySpec per_node{all, nodes};
    std::vector<Step> out;
    out.push_back({"prepare", std::nullopt, 1, std::nullopt, 1, 1});
    if (c.get_or<bool>("download_mc4", true)) out.push_back({"download", per_node, 1, std::nullopt, nodes, 1});
    if (c.get_or<bool>("preprocess_data", true)) {
      out.push_back({"setup_preprocess", std::nullopt, 1, std::nullopt, 1, 1});
      out.push_back({"preprocess", per_node, workers, std::max(1, cpus / workers), nodes, workers});
    }
    return out;
  }

  static std::vector<Step> custom_steps(const config::ConfigView& c, const StageContext& ctx, StageJobs& plan,
                                        Problems& p) {
    const int nodes = positive(c, "run.node_array_size", 4, p);
    const int workers = positive(c, "run.workers_per_node", 4, p);
    const int cpus = positive(c, "run.cpus_per_node", 256, p);
    std::vector<Step> out;
    if (c.get_or<bool>("train_tokenizer", false)) {
      if (auto input = c.find<std::string>("train_tokenizer_args.input")) {
        // SentencePiece takes a comma-separated list of files.
        for (const auto& file : split(*input, ','))
          require_input(c, ctx, plan, p, "train_tokenizer_args.input", std::string(trim(file)), "",
                        "set it to the text file(s) the tokenizer is trained on");
      } else {
        p.add(fmt::format(
            "{} is true but {} is null. Fix: set {}.train_tokenizer_args.input to a text file, or "
            "{}.train_tokenizer=false with an existing tokenizer_model",
            c.full_path("train_tokenizer"), c.full_path("train_tokenizer_args.input"), c.prefix(),
            c.prefix()));
      }
      out.push_back({"train_tokenizer", std::nullopt, 1, std::nullopt, 1, 1});
    }
    if (c.get_or<bool>("preprocess_data", true)) {
      const auto files = c.string_list("raw_dataset_files");
      if (files.empty()) {
        p.add(fmt::format("{} lists no file. Fix: {}.raw_dataset_files=[/path/a.jsonl,/path/b.jsonl]",
                          c.full_path("raw_dataset_files"), c.prefix()));
      }
      for (std::size_t i = 0; i < files.size(); ++i) {
        require_input(c, ctx, plan, p, fmt::format("raw_dataset_files.{}", i), files[i], "",
                      "correct the path");
      }
      std::vector<int> all(static_cast<std::size_t>(nodes));
      for (int i = 0; i < nodes; ++i) all[static_cast<std::size_t>(i)] = i;
      out.push_back({"preprocess", ArraySpec{all, nodes}, workers, std::max(1, cpus / workers), nodes, workers});
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<Stage> make_data_preparation_stage() { return std::make_unique<DataPreparationStage>(); }

}  // namespace bignlp::launch::detail
