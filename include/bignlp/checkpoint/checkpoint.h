// Checkpoints: one directory per save, written atomically (ARCHITECTURE §4).
//
//   <checkpoints>/<name>/
//     metadata.json                      format version, family, step, consumed samples, val_loss,
//                                        typed and full model config, precision, weights dtype,
//                                        seed, scheduler/optimizer/loss-scaler state, tokenizer,
//                                        tp/pp/virtual pp sizes (metadata.h; written last)
//     tp_rank_00_pp_rank_000/            one shard per (tp, pp) rank
//       model.safetensors                fp32 master weights under their NeMo state-dict names
//                                        (transformer layers by global index, see partition.h)
//       optimizer.safetensors            exp_avg.<name>, exp_avg_sq.<name> (training checkpoints;
//                                        none for frozen parameters)
// The directory is assembled in a core StagedDirectory (".tmp-<name>-<suffix>" beside it), every
// file fsynced, then renamed into place: a crash leaves either the old state or the complete new
// one, and readers skip dot-directories and directories without a readable metadata.json.
// Parallel ranks (a ParallelContext): every (tp, pp) position writes its own shard directory (the
// DP rank 0 copy; with a sharded optimizer state the DP ranks first assemble the fp32 master
// weights and moments from their shards on DP rank 0, bucket by bucket, in host memory), rank 0
// writes metadata.json and renames the directory once all shards are in, with barriers between.
// Loading reads the (tp, pp) shard on every DP rank and keeps what the rank holds (all of it, or
// its optimizer shards). The shards do not depend on the data-parallel size or on the optimizer
// being distributed, so a run may resume with a different number of nodes; a different TP/PP
// layout needs `bignlp-convert --reshard` (reshard.h).
// The optimizer is seen through checkpoint::OptimizerState only; this library does not know the
// trainer. Frozen parameters (Parameter::trainable false) are saved with their weights (their
// compute copy widened to fp32: they have no master weights) and without moments; loading sets
// their weights and never asks for their moments, so a checkpoint saved before a parameter was
// frozen, or with it frozen, both load into a store where it is frozen. A trainable parameter
// without moments in optimizer.safetensors is an error.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "bignlp/checkpoint/metadata.h"
#include "bignlp/core/logging.h"
#include "bignlp/checkpoint/optimizer_state.h"
#include "bignlp/model/gpt_config.h"
#include "bignlp/model/model_family.h"
#include "bignlp/model/parameters.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::checkpoint {

/// "tp_rank_00_pp_rank_000".
std::string checkpoint_shard_name(int tp_rank, int pp_rank);

/// Writes `state`, the parameters' fp32 master weights and (when given) the optimizer moments to
/// `dir`, atomically (see the file comment); an existing `dir` is replaced. Throws IoError. A store
/// that keeps master-weight shards only needs its (sharded) optimizer state. Collective over
/// `parallel`'s world: every rank calls it.
void save_checkpoint(const std::filesystem::path& dir, const CheckpointState& state, const model::ParameterStore& store,
                     OptimizerState* optimizer, const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {});

/// Writes one shard directory and fsyncs it: model.safetensors with the fp32 master weights
/// `master` of the trainable parameters and the compute copy of the frozen ones;
/// optimizer.safetensors when exp_avg is given. `master` and the moments are laid out like the
/// store's flat gradients (trainable_numel() elements), host or device memory.
void write_checkpoint_shard(const std::filesystem::path& shard_dir, const model::ParameterStore& store,
                            const TensorView& master, const TensorView& exp_avg, const TensorView& exp_avg_sq,
                            const ops::OpContext& ctx);

/// Loads master weights (and refreshes the compute copy) and, when `optimizer` is given, its moments
/// and step count, from this rank's (tp, pp) shard, keeping the elements the store and optimizer
/// hold. Every parameter must be present with its shape (any float dtype); throws DataError naming
/// the file and tensor, or the parallel sizes when they differ from the run's. Integrity
/// (integrity.h): a shard file whose size differs from metadata.json's record, a tensor failing its
/// CRC-32, or a non-finite weight or moment throws DataError naming the file and tensor (the store
/// may then hold part of the checkpoint: load another one or discard it). A checkpoint without
/// checksums (older bignlp) loads with a warning on `log` (stderr when null).
void load_checkpoint(const std::filesystem::path& dir, model::ParameterStore& store, OptimizerState* optimizer,
                     const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {},
                     const Logger* log = nullptr);

/// The model of the checkpoint's family (built by `registry` from the recorded config; precision
/// overridden when given) with its weights loaded, on one rank (the checkpoint must be TP 1 x PP 1):
/// the entry point of evaluation, generation and export. Throws DataError naming the directory for
/// a family the registry does not know, DataError/IoError for unreadable shards.
std::unique_ptr<model::Model> load_model_from_checkpoint(
    const std::filesystem::path& dir, const ops::OpContext& ctx, std::optional<model::Precision> precision = std::nullopt,
    const model::ModelFamilyRegistry& registry = model::ModelFamilyRegistry::builtin());

}  // namespace bignlp::checkpoint
