#include "bignlp/launch/stage_registry.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "stages.h"

namespace bignlp::launch {

const std::vector<std::string>& known_stages() {
  static const std::vector<std::string> stages = {"data_preparation", "training",   "conversion", "fine_tuning",
                                                  "prompt_learning",  "evaluation", "export",
                                                  "search_config", "cluster_validation"};
  return stages;
}

std::string model_family(std::string_view stage, std::string_view choice, const config::ConfigNode& resolved) {
  const auto slash = choice.rfind('/');
  if (slash != std::string_view::npos) return std::string(choice.substr(0, slash));
  (void)stage;
  return resolved.find_path("model.encoder") ? "t5" : "gpt3";
}

std::unique_ptr<Stage> make_stage(std::string_view stage, std::string_view family) {
  auto unsupported = [&](const std::vector<std::string>& families) -> std::unique_ptr<Stage> {
    throw ConfigError(fmt::format("{}: there is no {} for {} models (its option's family is '{}'); {} supports: {}",
                                  stage, stage, family, family, stage, join(families, ", ")));
  };
  auto is = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (family == n) return true;
    }
    return false;
  };
  if (stage == "data_preparation") return detail::make_data_preparation_stage();
  if (stage == "training") {
    if (is({"gpt3", "t5", "mt5"})) return detail::make_training_stage();
    return unsupported({"gpt3", "t5", "mt5"});
  }
  if (stage == "fine_tuning") {
    if (is({"t5", "mt5"})) return detail::make_fine_tuning_stage();
    return unsupported({"t5", "mt5"});
  }
  if (stage == "prompt_learning") {
    if (is({"gpt3", "t5", "mt5"})) return detail::make_prompt_learning_stage();
    return unsupported({"gpt3", "t5", "mt5"});
  }
  if (stage == "conversion") {
    if (is({"gpt3", "t5", "mt5"})) return detail::make_conversion_stage();
    return unsupported({"gpt3", "t5", "mt5"});
  }
  if (stage == "evaluation") {
    if (is({"gpt3", "prompt_gpt3", "t5", "mt5", "prompt_t5", "prompt_mt5"})) return detail::make_evaluation_stage();
    return unsupported({"gpt3", "prompt_gpt3", "t5", "mt5", "prompt_t5", "prompt_mt5"});
  }
  if (stage == "export") {
    if (is({"gpt3"})) return detail::make_export_stage();
    return unsupported({"gpt3"});
  }
  if (stage == "search_config") {
    if (is({"gpt3", "t5", "mt5"})) return detail::make_search_config_stage();
    return unsupported({"gpt3", "t5", "mt5"});
  }
  if (stage == "cluster_validation") return detail::make_cluster_validation_stage();  // no model family
  const auto close = closest_matches(stage, known_stages());
  throw ConfigError(fmt::format("stages: '{}' is not a stage{}. Stages: {}", stage,
                                close.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", close.front()),
                                join(known_stages(), ", ")));
}

}  // namespace bignlp::launch
