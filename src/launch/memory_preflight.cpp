// The training stage's pre-flight memory check (docs/hp_tool.md "Pre-flight check").
#include <fmt/format.h>

#include "bignlp/hp/memory_check.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {

void check_training_memory(const config::ConfigView& c, const StageContext& ctx, Problems& problems) {
  const auto limit = ctx.settings.gpu_memory_gb;
  if (!limit) return;
  if (c.find<std::string>("trainer.accelerator").value_or("gpu") == "cpu") return;  // host memory, not a GPU's
  const config::ConfigNode cfg = c.node();
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
  msg += "\n  (gpu_memory_gb=null turns the check off; bignlp-hp --explain-memory prints the breakdown of any config)";
  problems.add(msg);
}

}  // namespace bignlp::launch::detail
