// The stage registry: which implementation plans a stage, chosen by the stage's name and the
// model family of its chosen option (NeMo Megatron's dispatch: "gpt3/5b" is family gpt3;
// evaluation=prompt_t5/squad is family prompt_t5; data preparation goes by its `dataset` key:
// pile, mc4, custom_dataset, or a config with its own `steps` list).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/launch/stage.h"

namespace bignlp::launch {

/// The stages bignlp runs, in their usual order.
const std::vector<std::string>& known_stages();

/// The family of a stage's option: the choice up to its last '/' ("gpt3/5b" -> "gpt3"). Without a
/// choice (a config given another way), it is read from the config: a T5-style model (with
/// model.encoder) is "t5", anything else "gpt3".
std::string model_family(std::string_view stage, std::string_view choice, const config::ConfigNode& resolved);

/// The implementation of `stage` for `family`. Throws ConfigError for an unknown stage (with
/// the closest names) or a family the stage does not support (with the supported ones).
std::unique_ptr<Stage> make_stage(std::string_view stage, std::string_view family);

}  // namespace bignlp::launch
