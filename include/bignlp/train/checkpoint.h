// Checkpoints: one directory per save, written atomically (ARCHITECTURE §4).
//
//   <checkpoints>/<name>/
//     metadata.json                      format, step, consumed samples, val_loss, model config,
//                                        precision, seed, scheduler/optimizer/loss-scaler state,
//                                        tokenizer, tp/pp sizes (written last)
//     tp_rank_00_pp_rank_000/            one shard per (tp, pp) rank
//       model.safetensors                fp32 master weights under their NeMo state-dict names
//       optimizer.safetensors            exp_avg.<name>, exp_avg_sq.<name> (training checkpoints)
// The directory is assembled under "<checkpoints>/.tmp-<name>-<random>", every file fsynced, then
// renamed into place: a crash leaves either the old state or the complete new one, and readers
// skip dot-directories and directories without a readable metadata.json.
// Parallel ranks (a ParallelContext): every (tp, pp) position writes its own shard directory (the
// DP rank 0 copy; with the distributed optimizer the DP ranks first gather the moments), rank 0
// writes metadata.json and renames the directory once all shards are in, with barriers between.
// The shards do not depend on the data-parallel size, so a run may resume with a different number
// of nodes; a different TP/PP layout needs `bignlp-convert --reshard`.
// Names render exp_manager.checkpoint_callback_params.filename like PyTorch Lightning:
// "megatron_gpt--{val_loss:.2f}-{step}-{consumed_samples}" -> "megatron_gpt--val_loss=2.35-step=100-
// consumed_samples=800.0"; the most recent save also exists as "<name>-last".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/model/gpt.h"
#include "bignlp/model/parameters.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/train/loss_scaler.h"

namespace bignlp::train {

class AdamOptimizer;

/// Everything besides tensors that a checkpoint records.
struct CheckpointState {
  std::int64_t global_step = 0;
  std::int64_t consumed_samples = 0;
  std::optional<double> val_loss;
  std::int64_t scheduler_step = 0;   ///< LR scheduler step (successful optimizer steps)
  std::int64_t optimizer_steps = 0;  ///< Adam bias-correction step count
  LossScalerState loss_scaler;
  std::uint64_t seed = 0;
  model::GptConfig model;
  std::map<std::string, std::string> tokenizer;  ///< model.tokenizer.* (library, type, vocab_file, ...)
  int tp_size = 1;
  int pp_size = 1;
  bool has_optimizer_state = false;
};

/// "tp_rank_00_pp_rank_000".
std::string checkpoint_shard_name(int tp_rank, int pp_rank);

/// Writes `state`, the parameters' fp32 master weights and (when given) the optimizer moments to
/// `dir`, atomically (see the file comment); an existing `dir` is replaced. Throws IoError.
void save_checkpoint(const std::filesystem::path& dir, const CheckpointState& state, const model::ParameterStore& store,
                     AdamOptimizer* optimizer, const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {});

/// Writes one shard directory (model.safetensors with the fp32 master weights; optimizer.safetensors
/// when exp_avg is given, moments laid out like the store's flat buffers) and fsyncs it.
void write_checkpoint_shard(const std::filesystem::path& shard_dir, const model::ParameterStore& store,
                            const TensorView& exp_avg, const TensorView& exp_avg_sq, const ops::OpContext& ctx);
/// Writes <dir>/metadata.json (atomically) for `state`.
void write_checkpoint_metadata(const std::filesystem::path& dir, const CheckpointState& state);

/// Reads <dir>/metadata.json. Throws DataError naming the file when missing or malformed.
CheckpointState read_checkpoint_metadata(const std::filesystem::path& dir);

/// Loads master weights (and refreshes the compute copy) and, when `optimizer` is given, its moments,
/// from this rank's (tp, pp) shard. Every parameter must be present with its shape; throws
/// DataError naming the file and tensor, or the parallel sizes when they differ from the run's.
void load_checkpoint(const std::filesystem::path& dir, model::ParameterStore& store, AdamOptimizer* optimizer,
                     const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {});

/// A GptModel built from the checkpoint's config (precision overridden when given) with its weights
/// loaded: the entry point of evaluation, generation and export. Throws DataError/IoError.
std::unique_ptr<model::GptModel> load_gpt_from_checkpoint(const std::filesystem::path& dir, const ops::OpContext& ctx,
                                                          std::optional<model::Precision> precision = std::nullopt);

/// Complete checkpoints under `checkpoints_dir`, oldest step first (ties: "-last" after others).
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& checkpoints_dir);
/// The complete checkpoint with the highest step, if any.
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& checkpoints_dir);

/// Renders a PTL filename template: "{name}" -> "name=<value>", "{name:.2f}" -> formatted; known
/// names: step, consumed_samples (a float, "800.0"), val_loss, epoch (0). Unknown names throw ConfigError.
std::string render_checkpoint_name(const std::string& pattern, std::int64_t step, std::int64_t consumed_samples,
                                   std::optional<double> val_loss);

}  // namespace bignlp::train
