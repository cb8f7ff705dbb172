// Stages that train with bignlp-train: training (pre-training), fine_tuning, prompt_learning.
// One task per GPU (nodes x devices tasks), each bound to its cores by bignlp-bind.
#include <fmt/format.h>

#include "bignlp/config/worker_keys.h"
#include "bignlp/core/strings.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

std::int64_t nodes_of(const config::ConfigView& c) {
  return c.find<std::int64_t>("run.nodes").value_or(c.find<std::int64_t>("trainer.num_nodes").value_or(1));
}
std::int64_t tasks_of(const config::ConfigView& c) {
  return c.find<std::int64_t>("run.ntasks_per_node").value_or(c.find<std::int64_t>("trainer.devices").value_or(1));
}
bool on_gpus(const config::ConfigView& c) {
  return c.find<std::string>("trainer.accelerator").value_or("gpu") != "cpu";
}

// The attention heads at `heads_key` split evenly over the `tp` tensor-parallel ranks.
void check_whole_heads(const config::ConfigView& c, const std::string& heads_key, std::int64_t tp, Problems& p) {
  if (const auto heads = c.find<std::int64_t>(heads_key); heads && *heads % tp != 0) {
    p.add(fmt::format("{} is not divisible by {}: each tensor-parallel rank needs whole attention heads. Fix: a "
                      "tensor-parallel size among {}",
                      c.as_override(heads_key), c.as_override("model.tensor_model_parallel_size"),
                      divisors_text(*heads)));
  }
}

// Whole heads per tensor-parallel rank, whole layers per pipeline stage (GPT).
void check_gpt_model(const config::ConfigView& c, Problems& p) {
  const std::int64_t tp = c.find<std::int64_t>("model.tensor_model_parallel_size").value_or(1);
  const std::int64_t pp = c.find<std::int64_t>("model.pipeline_model_parallel_size").value_or(1);
  if (tp < 1 || pp < 1) return;
  check_whole_heads(c, "model.num_attention_heads", tp, p);
  if (const auto heads = c.find<std::int64_t>("model.num_attention_heads")) {
    if (const auto hidden = c.find<std::int64_t>("model.hidden_size");
        hidden && !c.has("model.kv_channels") && *hidden % *heads != 0) {
      p.add(fmt::format(
          "{} is not divisible by {} (and model.kv_channels is null). Fix: set a head count among {}",
          c.as_override("model.hidden_size"), c.as_override("model.num_attention_heads"),
          divisors_text(*hidden)));
    }
  }
  if (c.get_or<bool>("model.sequence_parallel", false)) {
    for (const char* key : {"model.encoder_seq_length", "model.data.seq_length"}) {
      if (const auto seq = c.find<std::int64_t>(key); seq && *seq % tp != 0) {
        p.add(fmt::format("model.sequence_parallel=true splits the sequence across tensor-parallel ranks, but {} is "
                          "not divisible by {}. Fix: a sequence length divisible by {}, or "
                          "{}.model.sequence_parallel=false",
                          c.as_override(key), c.as_override("model.tensor_model_parallel_size"), tp, c.prefix()));
      }
    }
  }
  if (const auto layers = c.find<std::int64_t>("model.num_layers")) {
    const std::int64_t vp = c.find<std::int64_t>("model.virtual_pipeline_model_parallel_size").value_or(1);
    if (*layers % pp != 0) {
      p.add(fmt::format(
          "{} is not divisible by {}: each pipeline stage needs whole layers. Fix: a pipeline-parallel "
          "size among {}",
          c.as_override("model.num_layers"), c.as_override("model.pipeline_model_parallel_size"),
          divisors_text(*layers)));
    } else if (c.has("model.virtual_pipeline_model_parallel_size")) {
      if (pp <= 2) {
        p.add(fmt::format("{} needs {} of at least 3 (the interleaved schedule). Fix: "
                          "{}.model.virtual_pipeline_model_parallel_size=null, or a larger pipeline",
                          c.as_override("model.virtual_pipeline_model_parallel_size"),
                          c.full_path("model.pipeline_model_parallel_size"), c.prefix()));
      } else if (vp < 1 || *layers % (pp * vp) != 0) {
        p.add(fmt::format("{} is not divisible by {} x {} = {} model chunks. Fix: a virtual size among {}",
                          c.as_override("model.num_layers"), c.as_override("model.pipeline_model_parallel_size"),
                          c.as_override("model.virtual_pipeline_model_parallel_size"), pp * vp,
                          divisors_text(*layers / pp)));
      }
    }
  }
}

// T5: heads per stack, and encoder/decoder layers split at pipeline_model_parallel_split_rank.
void check_t5_model(const config::ConfigView& c, Problems& p) {
  const std::int64_t tp = c.find<std::int64_t>("model.tensor_model_parallel_size").value_or(1);
  const std::int64_t pp = c.find<std::int64_t>("model.pipeline_model_parallel_size").value_or(1);
  if (tp < 1 || pp < 1) return;
  std::int64_t split = c.find<std::int64_t>("model.pipeline_model_parallel_split_rank").value_or(pp / 2);
  if (pp > 1 && (split < 1 || split >= pp)) {
    p.add(
        fmt::format("{} must be between 1 and {} - 1 (the first decoder pipeline stage). Fix: "
                    "{}.model.pipeline_model_parallel_split_rank={}",
                    c.as_override("model.pipeline_model_parallel_split_rank"),
                    c.as_override("model.pipeline_model_parallel_size"), c.prefix(), pp / 2));
    return;
  }
  for (const char* stack : {"encoder", "decoder"}) {
    check_whole_heads(c, fmt::format("model.{}.num_attention_heads", stack), tp, p);
    const std::string layers_key = fmt::format("model.{}.num_layers", stack);
    const std::int64_t stages = pp == 1 ? 1 : (std::string(stack) == "encoder" ? split : pp - split);
    if (const auto layers = c.find<std::int64_t>(layers_key); layers && *layers % stages != 0) {
      p.add(fmt::format("{} is not divisible by its {} pipeline stages ({} with {}). Fix: a layer count divisible "
                        "by {}, or another split rank",
                        c.as_override(layers_key), stages, c.as_override("model.pipeline_model_parallel_size"),
                        c.as_override("model.pipeline_model_parallel_split_rank"), stages));
    }
  }
}

void check_tokenizer_files(const config::ConfigView& c, const StageContext& ctx, StageJobs& plan, Problems& p) {
  for (const char* key : {"model.tokenizer.vocab_file", "model.tokenizer.merge_file", "model.tokenizer.model"}) {
    if (auto path = c.find<std::string>(key)) {
      require_input(c, ctx, plan, p, key, *path, "data_preparation",
                    fmt::format("download it, or set {}", c.full_path(key)));
    }
  }
}

void check_datasets(const config::ConfigView& c, const StageContext& ctx, StageJobs& plan, Problems& p) {
  const std::optional<config::ConfigNode> prefix = c.find<config::ConfigNode>("model.data.data_prefix");
  if (!prefix) {
    if (auto dir = c.find<std::string>("run.preprocessed_dir")) {
      require_input(c, ctx, plan, p, "run.preprocessed_dir", *dir, "data_preparation",
                    "point it at the preprocessed datasets (a blend of all of them is used)");
    }
    return;
  }
  // A blend lists weight, prefix, weight, prefix, ...; a plain list or string lists prefixes.
  std::vector<std::string> prefixes;
  const std::vector<std::string> items = c.string_list("model.data.data_prefix");
  const bool weighted = prefix->is_list() && items.size() % 2 == 0 && !items.empty() &&
                        ((*prefix)[0].is_float() || (*prefix)[0].is_int());
  for (std::size_t i = weighted ? 1 : 0; i < items.size(); i += weighted ? 2 : 1) prefixes.push_back(items[i]);
  if (ctx.runs_earlier("data_preparation") || !ctx.exists) return;
  std::vector<std::string> missing;
  std::size_t total = 0;
  for (const auto& pre : prefixes) {
    for (const char* ext : {".bin", ".idx"}) {
      ++total;
      if (!ctx.exists(pre + ext)) missing.push_back(pre + ext);
    }
  }
  if (missing.empty()) return;
  if (missing.size() == 1) {
    require_input(c, ctx, plan, p, "model.data.data_prefix", missing.front(), "data_preparation",
                  "point model.data.data_prefix at datasets that exist");
    return;
  }
  std::string msg = fmt::format("{}: {} of the {} dataset files do not exist, e.g. '{}' and '{}'{}. Add "
                                "data_preparation before {} in stages, or point model.data.data_prefix at datasets "
                                "that exist",
                                c.full_path("model.data.data_prefix"), missing.size(), total, missing[0], missing[1],
                                origin_note(c, "model.data.data_prefix"), c.prefix());
  if (ctx.settings.dry_run) {
    plan.warnings.push_back(msg);
  } else {
    p.add(msg + " (a dry run, dry_run=true, only warns)");
  }
}

// The job of the training-like stages: bignlp-train on trainer.num_nodes x trainer.devices tasks.
void add_train_job(StageJobs& plan, const config::ConfigView& c, const StageContext& ctx,
                   const std::vector<std::string>& extra) {
  JobSpec& job = add_worker_job(plan, c, ctx, on_gpus(c), nodes_of(c), tasks_of(c), "bignlp-train", extra, /*bind=*/true);
  if (c.find<std::int64_t>("model.tensor_model_parallel_size").value_or(1) > 1) {
    job.env.emplace_back("CUDA_DEVICE_MAX_CONNECTIONS", "1");  // keeps TP communication overlapped
  }
}

class TrainingStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    // The types and ranges bignlp-train checks when it binds the config (one schema), before any
    // check below reads those keys.
    for (std::string& problem : config::check_training_keys(c)) p.add(std::move(problem));
    if (!p.empty()) p.throw_if_any();
    check_parallel_layout(c, ctx,
                          {"trainer.num_nodes", "trainer.devices", "model.tensor_model_parallel_size",
                           "model.pipeline_model_parallel_size", "model.global_batch_size", "model.micro_batch_size"},
                          p);
    if (plan.config.find_path("model.encoder")) {
      check_t5_model(c, p);
    } else {
      check_gpt_model(c, p);
    }
    check_datasets(c, ctx, plan, p);
    check_tokenizer_files(c, ctx, plan, p);
    if (p.empty()) check_training_memory(c, ctx, p);
    p.throw_if_any();

    add_train_job(plan, c, ctx, {});
    return plan;
  }
};

// SQuAD/XQuAD tasks of fine_tuning: their data is downloaded and converted first, by one task
// (bignlp-preprocess --step prepare_squad into run.squad_dir, default <data_dir>/squad_data;
// run.squad_mirror, when set, replaces the public hosts).
void add_squad_preparation(StageJobs& plan, const config::ConfigView& c, const StageContext& ctx) {
  const std::string task = c.find<std::string>("run.task_name").value_or("");
  if (task != "squad" && task != "xquad") return;
  const std::string dir = c.find<std::string>("run.squad_dir").value_or((ctx.settings.data_dir / "squad_data").string());
  Command cmd = worker_command(plan, ctx, "bignlp-preprocess", {"--step", "prepare_squad", "--squad-dir", dir},
                               /*bind=*/false);
  if (auto mirror = c.find<std::string>("run.squad_mirror")) cmd.insert(cmd.end(), {"--squad-mirror", *mirror});
  CommandGroup group{{std::move(cmd)}};
  group.nodes = 1;
  group.ntasks_per_node = 1;
  auto& groups = plan.jobs.back().groups;
  groups.insert(groups.begin(), std::move(group));
}

// Fine-tuning and prompt learning: bignlp-train with --stage, from a converted (.nemo) model.
class TuningStage final : public Stage {
 public:
  TuningStage(std::string model_key, std::string gbs_key, std::string mbs_key)
      : model_key_(std::move(model_key)), gbs_key_(std::move(gbs_key)), mbs_key_(std::move(mbs_key)) {}

  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    check_parallel_layout(c, ctx,
                          {"trainer.num_nodes", "trainer.devices", "model.tensor_model_parallel_size",
                           "model.pipeline_model_parallel_size", gbs_key_, mbs_key_},
                          p);
    if (auto model = c.find<std::string>(model_key_)) {
      require_input(c, ctx, plan, p, model_key_, *model, "conversion",
                    fmt::format("set {} to a converted .nemo model", c.full_path(model_key_)));
    }
    if (p.empty()) check_training_memory(c, ctx, p);  // fine-tuning: when its .nemo exists
    p.throw_if_any();

    add_train_job(plan, c, ctx, {"--stage", c.prefix()});
    // Prompt learning on SQuAD converts the SQuAD files first (tuning.md §2.2), every launch.
    if (c.prefix() == "prompt_learning" && c.find<std::string>("run.task_name").value_or("") == "squad") {
      JobSpec& job = plan.jobs.back();
      job.groups.insert(job.groups.begin(),
                        CommandGroup{{worker_command(plan, ctx, "bignlp-preprocess", {"--step", "squad_prompt_learning"},
                                                     /*bind=*/false)},
                                     /*nodes=*/1, /*ntasks_per_node=*/1});
    }
    if (c.prefix() == "fine_tuning") add_squad_preparation(plan, c, ctx);
    return plan;
  }

 private:
  std::string model_key_, gbs_key_, mbs_key_;
};

}  // namespace

std::unique_ptr<Stage> make_training_stage() { return std::make_unique<TrainingStage>(); }
std::unique_ptr<Stage> make_fine_tuning_stage() {
  return std::make_unique<TuningStage>("model.restore_from_path", "model.data.train_ds.global_batch_size",
                                       "model.data.train_ds.micro_batch_size");
}
std::unique_ptr<Stage> make_prompt_learning_stage() {
  return std::make_unique<TuningStage>("model.language_model_path", "model.global_batch_size",
                                       "model.micro_batch_size");
}

}  // namespace bignlp::launch::detail
