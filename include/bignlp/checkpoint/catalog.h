// Finding and naming checkpoints in a checkpoints/ directory.
//
// A checkpoint is complete when its directory has a readable metadata.json (written last, see
// checkpoint.h); directories whose names start with '.' are staging or moved-aside directories of
// interrupted writes (core StagedDirectory) and are never listed.
// Names render exp_manager.checkpoint_callback_params.filename like PyTorch Lightning:
// "megatron_gpt--{val_loss:.2f}-{step}-{consumed_samples}" -> "megatron_gpt--val_loss=2.35-step=100-
// consumed_samples=800.0"; the trainer keeps the most recent save also as "<name>-last".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bignlp::checkpoint {

/// Complete checkpoints under `checkpoints_dir`, oldest step first (ties: "-last" after others).
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& checkpoints_dir);
/// The complete checkpoint with the highest step, if any.
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& checkpoints_dir);

/// Renders a PTL filename template: "{name}" -> "name=<value>", "{name:.2f}" -> formatted; known
/// names: step, consumed_samples (a float, "800.0"), val_loss (or the monitored metric's name, e.g.
/// validation_exact_string_match, which then takes its value), epoch (0). Unknown names throw ConfigError.
std::string render_checkpoint_name(const std::string& pattern, std::int64_t step, std::int64_t consumed_samples,
                                   std::optional<double> val_loss, const std::string& monitor = "val_loss");

}  // namespace bignlp::checkpoint
