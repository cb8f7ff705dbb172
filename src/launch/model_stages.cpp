// Stages that use a trained model: conversion (bignlp-convert), evaluation (bignlp-evaluate) and
// export (bignlp-export).
#include <fmt/format.h>

#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

// nodes x ntasks_per_node must hold exactly one model replica of TP x PP ranks.
void check_model_parallel(const config::ConfigView& c, std::int64_t nodes, std::int64_t ntasks,
                          std::string_view nodes_key, std::string_view ntasks_key, std::string_view tp_key,
                          std::string_view pp_key, Problems& p) {
  const std::int64_t tp = c.find<std::int64_t>(tp_key).value_or(1);
  const std::int64_t pp = c.find<std::int64_t>(pp_key).value_or(1);
  if (nodes < 1 || ntasks < 1) {
    p.add(fmt::format("{} and {} must be at least 1", c.as_override(nodes_key), c.as_override(ntasks_key)));
  } else if (nodes * ntasks != tp * pp) {
    p.add(fmt::format(
        "{} x {} = {} tasks, but the model has {} x {} = {} ranks. Fix: one task per rank (the presets "
        "compute run.nodes and run.ntasks_per_node from the parallel sizes)",
        c.as_override(nodes_key), c.as_override(ntasks_key), nodes * ntasks, c.as_override(tp_key),
        c.as_override(pp_key), tp * pp));
  }
}

class ConversionStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    const std::int64_t nodes = c.find<std::int64_t>("run.nodes").value_or(1);
    const std::int64_t ntasks = c.find<std::int64_t>("run.ntasks_per_node").value_or(1);
    check_model_parallel(c, nodes, ntasks, "run.nodes", "run.ntasks_per_node", "model.tensor_model_parallel_size",
                         "model.pipeline_model_parallel_size", p);
    if (auto nemo = c.find<std::string>("run.nemo_file_name"); nemo && !nemo->ends_with(".nemo")) {
      p.add(fmt::format("{} must end in .nemo", c.as_override("run.nemo_file_name")));
    }
    for (const char* key : {"model.checkpoint_folder", "model.hparams_file"}) {
      if (auto path = c.find<std::string>(key)) {
        require_input(c, ctx, plan, p, key, *path, "training",
                      fmt::format("set {} (or run.model_train_name) to a finished training run", c.full_path(key)));
      }
    }
    p.throw_if_any();
    add_worker_job(plan, c, ctx, /*uses_gpus=*/true, nodes, ntasks, "bignlp-convert", {}, /*bind=*/false);
    return plan;
  }
};

class EvaluationStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    std::int64_t nodes = 1;
    std::int64_t ntasks = 1;
    if (family == "gpt3" || family == "prompt_gpt3") {
      nodes = c.find<std::int64_t>("run.nodes").value_or(1);
      ntasks = c.find<std::int64_t>("run.ntasks_per_node").value_or(1);
      check_model_parallel(c, nodes, ntasks, "run.nodes", "run.ntasks_per_node", "model.tensor_model_parallel_size",
                           "model.pipeline_model_parallel_size", p);
    } else {
      nodes = c.find<std::int64_t>("trainer.num_nodes").value_or(1);
      ntasks = c.find<std::int64_t>("trainer.devices").value_or(1);
      const bool prompt = family.starts_with("prompt_");
      check_model_parallel(c, nodes, ntasks, "trainer.num_nodes", "trainer.devices",
                           prompt ? "tensor_model_parallel_size" : "model.tensor_model_parallel_size",
                           prompt ? "pipeline_model_parallel_size" : "model.pipeline_model_parallel_size", p);
    }
    auto input = [&](const char* key, std::string_view producer, std::string_view hint) {
      if (auto path = c.find<std::string>(key)) require_input(c, ctx, plan, p, key, *path, producer, hint);
    };
    if (family == "gpt3") {
      input("model.checkpoint_folder", "training", "set run.model_train_name to a finished training run");
      input("model.hparams_file", "training", "set run.model_train_name to a finished training run");
      input("run.tasks_data_dir", "",
            "fetch the task files with `bignlp-evaluate --download --tasks all_tasks --data-dir DIR`, or point it at "
            "the fixtures in tests/data/eval (docs/evaluation.md)");
    } else if (family == "prompt_gpt3") {
      input("model.nemo_model", "prompt_learning", "set it to a prompt-learnt .nemo model");
      // The prompt_learning stage's SQuAD step writes the jsonl files when it runs earlier.
      input("model.prompt_dataset_paths", "prompt_learning", "prepare the prompt-learning test set");
    } else if (family == "prompt_t5" || family == "prompt_mt5") {
      input("pretrained_language_model_file", "conversion", "set it to a converted .nemo model");
      input("virtual_prompt_model_file", "prompt_learning", "set it to a prompt-learnt .nemo model");
    } else {
      input("model.restore_from_path", "fine_tuning", "set it to a fine-tuned .nemo model");
    }
    p.throw_if_any();
    add_worker_job(plan, c, ctx, /*uses_gpus=*/true, nodes, ntasks, "bignlp-evaluate", {}, /*bind=*/true);
    return plan;
  }
};

class ExportStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    StageJobs plan = start_stage_jobs(c, family, p);
    if (auto path = c.find<std::string>("model.checkpoint_path")) {
      const std::string_view producer = ctx.runs_earlier("conversion") ? "conversion" : "training";
      require_input(c, ctx, plan, p, "model.checkpoint_path", *path, producer,
                    "set run.model_train_name to a finished training run");
    }
    p.throw_if_any();
    add_worker_job(plan, c, ctx, /*uses_gpus=*/true, 1, 1, "bignlp-export", {}, /*bind=*/false);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Stage> make_conversion_stage() { return std::make_unique<ConversionStage>(); }
std::unique_ptr<Stage> make_evaluation_stage() { return std::make_unique<EvaluationStage>(); }
std::unique_ptr<Stage> make_export_stage() { return std::make_unique<ExportStage>(); }

}  // namespace bignlp::launch::detail
