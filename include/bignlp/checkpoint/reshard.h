// Resharding: rewrite a checkpoint for another tensor/pipeline-parallel layout.
//
// The checkpoint's (tp, pp) shards are read into full (unsharded) tensors and split again for the
// new layout (partition.h: tp_concat / tp_split); Adam moments follow their weights. Which tensors
// are split, and along which dimension, is not a table kept here: the model is instantiated for
// every (tp rank, pp stage) of the old and of the new layout, and each parameter's partition
// (GptModel, parallel::StagePlan with the checkpoint's virtual chunks) says where its shard lies.
// The last stage's copy of the tied embedding is dropped on reading (it equals the word embedding)
// and recreated for the new last stage.
// When the new TP size pads the vocabulary to a different size (make_vocab_size_divisible_by x TP),
// the word embedding's padding rows (>= the tokenizer's vocabulary) are cut off or zero-filled
// (repad_vocab_rows); real rows are untouched. Holds the full fp32 model (and moments) in host
// memory. Writes atomically (core StagedDirectory). The data-parallel size never matters (shards do
// not depend on it). The output keeps the input's virtual pipeline chunks and metadata, in the
// current format version. Parameters saved without moments (frozen) are written without moments.
#pragma once

#include <filesystem>

#include "bignlp/core/logging.h"

namespace bignlp::checkpoint {

/// Rewrites checkpoint `input` as `output` with tensor_parallel x pipeline_parallel shards.
/// Throws DataError for an unreadable checkpoint, ConfigError for a layout the model cannot take
/// (heads, layers or vocabulary not divisible).
void reshard_checkpoint(const std::filesystem::path& input, const std::filesystem::path& output, int tensor_parallel,
                        int pipeline_parallel, const Logger& log);

}  // namespace bignlp::checkpoint
