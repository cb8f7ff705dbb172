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
std::unique_ptr<Stage> make_cluster_validation_stage();

/// The pre-flight memory check of a training stage (memory_preflight.cpp): with gpu_memory_gb
/// set and the job on GPUs, a config whose per-GPU estimate exceeds it is refused with the
/// breakdown and the nearest layouts that fit.
void check_training_memory(const config::ConfigView& c, const StageContext& ctx, Problems& problems);

/// `bignlp --explain-memory`: the per-GPU breakdown of a training, fine-tuning (shape from its
/// .nemo) or prompt-learning stage, or why there is none; with gpu_memory_gb, whether it fits and
/// the nearest layouts that do.
std::string explain_stage_memory(const config::ConfigView& c, const LaunchSettings& settings);

}  // namespace bignlp::launch::detail
