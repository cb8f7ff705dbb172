#include "bignlp/train/training_config.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::train {

int TrainingConfig::data_parallel_size() const {
  const int mp = tensor_model_parallel_size() * pipeline_model_parallel_size;
  return mp > 0 ? world_size() / mp : 0;
}

std::int64_t TrainingConfig::num_micro_batches() const {
  const std::int64_t per_step = micro_batch_size * data_parallel_size();
  return per_step > 0 ? global_batch_size / per_step : 0;
}

void TrainingConfig::validate(bool needs_data) const {
  if (family_config.is_null()) model.validate();
  if (micro_batch_size <= 0)
    throw ConfigError(fmt::format("model.micro_batch_size: must be positive, got {}", micro_batch_size));
  if (global_batch_size <= 0)
    throw ConfigError(fmt::format("model.global_batch_size: must be positive, got {}", global_batch_size));
  const int mp = tensor_model_parallel_size() * pipeline_model_parallel_size;
  if (mp <= 0 || world_size() % mp != 0)
    throw ConfigError(fmt::format(
        "model.tensor_model_parallel_size x model.pipeline_model_parallel_size = {} does not divide the {} ranks "
        "(trainer.num_nodes {} x trainer.devices {})",
        mp, world_size(), num_nodes, devices));
  const std::int64_t per_step = micro_batch_size * data_parallel_size();
  if (global_batch_size % per_step != 0)
    throw ConfigError(fmt::format(
        "model.global_batch_size: {} is not divisible by model.micro_batch_size {} x data-parallel size {} (= {}); "
        "use a multiple of {}",
        global_batch_size, micro_batch_size, data_parallel_size(), per_step, per_step));
  const int vp = virtual_pipeline_model_parallel_size;
  if (vp < 1)
    throw ConfigError(fmt::format("model.virtual_pipeline_model_parallel_size: must be >= 1 (or null), got {}", vp));
  if (vp > 1 && pipeline_model_parallel_size < 2)
    throw ConfigError("model.virtual_pipeline_model_parallel_size: the interleaved schedule needs "
                      "model.pipeline_model_parallel_size >= 2");
  if (vp > 1 && num_micro_batches() % pipeline_model_parallel_size != 0)
    throw ConfigError(fmt::format(
        "model.virtual_pipeline_model_parallel_size: the interleaved schedule needs the micro-batches per step ({} = "
        "global_batch_size / (micro_batch_size x data-parallel size)) to be a multiple of "
        "model.pipeline_model_parallel_size ({})",
        num_micro_batches(), pipeline_model_parallel_size));
  if (sequence_parallel && tensor_model_parallel_size() > 1 && model.seq_length % tensor_model_parallel_size() != 0)
    throw ConfigError(fmt::format("model.sequence_parallel: encoder_seq_length {} is not divisible by "
                                  "model.tensor_model_parallel_size {}",
                                  model.seq_length, tensor_model_parallel_size()));
  if (grad_bucket_mb <= 0.0)
    throw ConfigError(fmt::format("model.grad_allreduce_chunk_size_mb: must be positive, got {}", grad_bucket_mb));
  if (max_steps <= 0) throw ConfigError(fmt::format("trainer.max_steps: must be positive, got {}", max_steps));
  if (val_check_interval < 0)
    throw ConfigError(fmt::format("trainer.val_check_interval: must be >= 0, got {}", val_check_interval));
  if (log_every_n_steps <= 0)
    throw ConfigError(fmt::format("trainer.log_every_n_steps: must be positive, got {}", log_every_n_steps));
  if (gradient_clip_val < 0.0)
    throw ConfigError(fmt::format("trainer.gradient_clip_val: must be >= 0, got {}", gradient_clip_val));
  if (needs_data && data.data_prefix.empty() && data.t5.preprocessed_dir.empty())
    throw ConfigError("model.data.data_prefix: no training data given; set it to a dataset prefix (path without "
                      ".bin/.idx) or a list [weight, prefix, ...]");
  if ((data.eod_mask_loss || data.reset_position_ids) && data.eod_token < 0)
    throw ConfigError("model.data.eod_mask_loss/reset_position_ids need the tokenizer's end-of-document id");
  if (exp_manager.mode != "min" && exp_manager.mode != "max")
    throw ConfigError(fmt::format("exp_manager.checkpoint_callback_params.mode: '{}' must be min or max",
                                  exp_manager.mode));
  if (exp_manager.explicit_log_dir.empty())
    throw ConfigError("exp_manager.explicit_log_dir: required (the results directory)");
}

double parse_max_time(const std::string& text) {
  const std::string t(trim(text));
  if (t.empty() || t == "null" || t == "None") return 0.0;
  const std::vector<std::string> parts = split(t, ':');
  double seconds = 0.0;
  const double unit[] = {86400.0, 3600.0, 60.0, 1.0};
  if (parts.size() > 4) throw ConfigError(fmt::format("trainer.max_time: '{}' is not DD:HH:MM:SS", text));
  const std::size_t first = 4 - parts.size();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    try {
      std::size_t used = 0;
      const double v = std::stod(parts[i], &used);
      if (used != parts[i].size() || v < 0) throw std::invalid_argument("bad");
      seconds += v * unit[first + i];
    } catch (const std::exception&) {
      throw ConfigError(fmt::format("trainer.max_time: '{}' is not DD:HH:MM:SS", text));
    }
  }
  return seconds;
}

}  // namespace bignlp::train
