// The pre-flight memory check of training and fine-tuning stages, and `bignlp --explain-memory`
// (docs/hp_tool.md "Pre-flight check").
#include <fmt/format.h>

#include "bignlp/config/yaml.h"
#include "bignlp/core/strings.h"
#include "bignlp/core/error.h"
#include "bignlp/hp/memory_check.h"
#include "bignlp/launch/process.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

// The model's shape as the memory estimate reads it (conf/training layout): a training config as
// it is; a fine-tuning config has no shape of its own (it is restored from a .nemo), so the
// .nemo's model_config.yaml with the stage's parallel layout, batch and trainer on top. Empty,
// with `why` set, when the shape is not available (the .nemo does not exist yet).
std::optional<config::ConfigNode> training_shape(const config::ConfigView& c, std::string& why) {
  const std::string stage = c.prefix();
  if (stage == "training") return c.node();
  if (stage == "prompt_learning") {
    why = "prompt learning trains a prompt encoder over a frozen language model, which the memory model (full "
          "training: gradients and optimizer state for every weight) does not describe; it is not estimated";
    return std::nullopt;
  }
  const auto nemo = c.find<std::string>("model.restore_from_path");
  if (!nemo) {
    why = fmt::format("{} is not set: the model's shape comes from that .nemo", c.full_path("model.restore_from_path"));
    return std::nullopt;
  }
  std::error_code ec;
  if (!std::filesystem::exists(*nemo, ec)) {
    why = fmt::format("{}: '{}' does not exist yet; the model's shape comes from its model_config.yaml",
                      c.full_path("model.restore_from_path"), *nemo);
    return std::nullopt;
  }
  CapturedRun r;
  for (const char* member : {"./model_config.yaml", "model_config.yaml"}) {
    r = run_captured({"tar", "-xOf", *nemo, member});
    if (r.exit_code == 0) break;
  }
  if (r.exit_code != 0) {
    throw ConfigError(fmt::format("{}: '{}' holds no model_config.yaml (tar: {})", c.full_path("model.restore_from_path"),
                                  *nemo, trim(r.err)));
  }
  config::ConfigNode model = config::load_yaml_string(r.out);
  if (const auto* inner = model.find_path("model"); inner && inner->is_dict()) {
    config::ConfigNode section = *inner;  // (not assigned from its own child)
    model = std::move(section);
  }
  config::ConfigNode cfg = config::ConfigNode::dict();
  cfg.set("model", std::move(model));
  const config::ConfigNode stage_cfg = c.node();  // resolved
  if (const auto* trainer = stage_cfg.find_path("trainer")) cfg.set("trainer", *trainer);
  auto copy = [&](const std::string& from, const std::string& to) {
    if (const auto* v = stage_cfg.find_path(from)) cfg.set_path(to, *v);
  };
  copy("model.tensor_model_parallel_size", "model.tensor_model_parallel_size");
  copy("model.pipeline_model_parallel_size", "model.pipeline_model_parallel_size");
  copy("model.data.train_ds.micro_batch_size", "model.micro_batch_size");
  copy("model.data.train_ds.global_batch_size", "model.global_batch_size");
  copy("model.optim", "model.optim");
  copy("model.activations_checkpoint_method", "model.activations_checkpoint_method");
  copy("model.activations_checkpoint_granularity", "model.activations_checkpoint_granularity");
  copy("model.activations_checkpoint_num_layers", "model.activations_checkpoint_num_layers");
  return cfg;
}

}  // namespace

void check_training_memory(const config::ConfigView& c, const StageContext& ctx, Problems& problems) {
  const auto limit = ctx.settings.gpu_memory_gb;
  if (!limit) return;
  if (c.find<std::string>("trainer.accelerator").value_or("gpu") == "cpu") return;  // host memory, not a GPU's
  std::string why;
  const auto shape = training_shape(c, why);
  if (!shape) return;  // nothing to check against (the shape is produced later or not modelled)
  const config::ConfigNode& cfg = *shape;
  const std::int64_t vocab = hp::assumed_vocab_size(cfg);
  hp::MemoryBreakdown m;
  try {
    m = hp::estimate_training_memory(cfg, vocab);
  } catch (const ConfigError& e) {
    problems.add(fmt::format("the memory check cannot estimate this config: {}", e.what()));
    return;
  }
  const double gib = m.total_bytes() / (1024.0 * 1024.0 * 1024.0);
  if (gib <= *limit) return;
  std::string msg = fmt::format(
      "the estimated memory per GPU is {:.1f} GiB, more than gpu_memory_gb={} (vocabulary assumed {}):\n{}", gib,
      *limit, vocab, m.explain());
  const auto fits = hp::nearest_fitting(cfg, vocab, *limit);
  if (fits.empty()) {
    msg += "  No layout within one or two changes fits; use more GPUs per model replica.";
  } else {
    msg += "  Nearest configs that fit:";
    for (const auto& f : fits) {
      std::string text;
      for (const auto& [k, v] : f.overrides) {
        text += " " + c.prefix() + "." + hp::FittingChange{{{k, v}}, 0}.text();
      }
      msg += fmt::format("\n   {} ({:.1f} GiB)", text, f.total_gb);
    }
  }
  msg += "\n  (gpu_memory_gb=null turns the check off; bignlp --explain-memory prints the breakdown of any config)";
  problems.add(msg);
}

std::string explain_stage_memory(const config::ConfigView& c, const LaunchSettings& settings) {
  const std::string stage = c.prefix();
  if (stage != "training" && stage != "fine_tuning" && stage != "prompt_learning") {
    return fmt::format("{}: trains nothing; no per-GPU training memory to estimate\n", stage);
  }
  std::string why;
  const auto shape = training_shape(c, why);
  if (!shape) return fmt::format("{}: not estimated: {}\n", stage, why);
  const std::int64_t vocab = hp::assumed_vocab_size(*shape);
  const hp::MemoryBreakdown m = hp::estimate_training_memory(*shape, vocab);  // ConfigError names the key
  const double gib = m.total_bytes() / (1024.0 * 1024.0 * 1024.0);
  std::string out = fmt::format("{}: estimated memory per GPU (vocabulary assumed {}):\n{}", stage, vocab, m.explain());
  if (settings.gpu_memory_gb) {
    out += fmt::format("  gpu_memory_gb={}: {}\n", *settings.gpu_memory_gb,
                       gib <= *settings.gpu_memory_gb ? "fits" : "does NOT fit");
    if (gib > *settings.gpu_memory_gb) {
      for (const auto& f : hp::nearest_fitting(*shape, vocab, *settings.gpu_memory_gb)) {
        std::string text;
        for (const auto& [k, v] : f.overrides) text += " " + stage + "." + hp::FittingChange{{{k, v}}, 0}.text();
        out += fmt::format("   fits with{} ({:.1f} GiB)\n", text, f.total_gb);
      }
    }
  }
  return out;
}

}  // namespace bignlp::launch::detail
