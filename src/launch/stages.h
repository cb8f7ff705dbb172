// The stage implementations, created through make_stage() (stage_registry.h). Private to the
// launch library.
#pragma once

#include <memory>

#include "bignlp/launch/stage.h"

namespace bignlp::launch::detail {

std::unique_ptr<Stage> make_data_preparation_stage();
std::unique_ptr<Stage> make_training_stage();
std::unique_ptr<Stage> make_fine_tuning_stage();
std::unique_ptr<Stage> make_prompt_learning_stage();
std::unique_ptr<Stage> make_conversion_stage();
std::unique_ptr<Stage> make_evaluation_stage();
std::unique_ptr<Stage> make_export_stage();
std::unique_ptr<Stage> make_search_config_stage();

}  // namespace bignlp::launch::detail
