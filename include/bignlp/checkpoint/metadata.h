// Checkpoint metadata: metadata.json of a checkpoint directory, and CheckpointState, its in-memory
// form (everything a checkpoint records besides tensors).
//
// Format "bignlp-checkpoint", version 2. Keys (JSON object, written last, atomically):
//   format, version                   "bignlp-checkpoint", 2
//   family                            model family: "gpt"                                   (v2)
//   model                             the family's typed config, Model::config_json() (NeMo key
//                                     names; GPT: GptConfig's)
//   model_config                      the stage config's complete `model:` section, resolved,
//                                     as NeMo's model_config.yaml / hparams.yaml need it;
//                                     null when the writer had no stage config (imports)  (v2)
//   precision                         trainer.precision: "32", "bf16", "16" (model.precision)
//   weights_dtype                     dtype of the tensors in the shards: "fp32"             (v2)
//   tokenizer                         model.tokenizer.* (library, type, vocab_file, ...)
//   tensor_model_parallel_size        the shard layout
//   pipeline_model_parallel_size
//   virtual_pipeline_model_parallel_size                                                   (v2)
//   global_step, consumed_samples, val_loss (null when not validated), scheduler_step,
//   optimizer_steps, loss_scaler {scale, growth_tracker, hysteresis_tracker}, seed
//   has_optimizer_state               shards hold optimizer.safetensors
//   files                             {"<shard>/<file>": bytes} of every shard file (optional: absent
//                                     in checkpoints written before it; integrity.h)
//   tensor_checksums                  "crc32": every shard file carries per-tensor CRC-32s in its
//                                     header (optional, as "files"; integrity.h)
// Version-2 keys only add to version 1, so version-1 readers still read version-2 checkpoints.
// Reading a version-1 checkpoint gives family "gpt", a null model_config, weights "fp32" and no
// virtual pipeline; a version above 2 is refused (written by a newer bignlp). Which families can
// be built is the registry's business (load_model_from_checkpoint), not the reader's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bignlp/tensor/dtype.h"

namespace bignlp::checkpoint {

inline constexpr const char* kFormatName = "bignlp-checkpoint";
/// The version this code writes; it reads every version up to it.
inline constexpr int kFormatVersion = 2;

/// The dynamic loss scaler's resumable state (train::DynamicLossScaler).
struct LossScalerState {
  double scale = 1.0;
  std::int64_t growth_tracker = 0;
  int hysteresis_tracker = 0;
};

/// Everything besides tensors that a checkpoint records.
struct CheckpointState {
  int format_version = kFormatVersion;  ///< as read; writing always writes kFormatVersion
  std::int64_t global_step = 0;
  std::int64_t consumed_samples = 0;
  std::optional<double> val_loss;
  std::int64_t scheduler_step = 0;   ///< LR scheduler step (successful optimizer steps)
  std::int64_t optimizer_steps = 0;  ///< Adam bias-correction step count
  LossScalerState loss_scaler;
  std::uint64_t seed = 0;
  std::string family = "gpt";        ///< model family (the registry key, model::ModelFamilyRegistry)
  /// The family's typed config (model::Model::config_json()): what the family's builder reads.
  nlohmann::json model = nlohmann::json::object();
  nlohmann::json model_config;       ///< the complete `model:` section, or null
  std::map<std::string, std::string> tokenizer;  ///< model.tokenizer.* (library, type, vocab_file, ...)
  int tp_size = 1;
  int pp_size = 1;
  int virtual_pp_size = 1;
  DType weights_dtype = DType::kF32;  ///< what the shards hold (always fp32 when this code writes)
  bool has_optimizer_state = false;
  /// Shard file sizes as read ("<shard>/<file>" -> bytes); empty for checkpoints written before
  /// them. Writing records the files present in the directory instead.
  std::map<std::string, std::uint64_t> file_sizes;
  bool tensor_checksums = false;  ///< as read: the shards carry per-tensor CRC-32s
};

/// Writes <dir>/metadata.json (atomically) for `state`, as version kFormatVersion, recording the
/// sizes of the shard files already in `dir` (write it last).
void write_checkpoint_metadata(const std::filesystem::path& dir, const CheckpointState& state);

/// Reads <dir>/metadata.json (any version up to kFormatVersion). Throws DataError naming the file
/// when missing, malformed, of another format or of a newer version.
CheckpointState read_checkpoint_metadata(const std::filesystem::path& dir);

}  // namespace bignlp::checkpoint
