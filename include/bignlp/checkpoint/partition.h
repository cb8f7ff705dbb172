// Shard/unshard math of tensor- and pipeline-parallel checkpoints: how a full tensor is split over
// tensor-parallel ranks, how the padded vocabulary changes with the TP size, and which pipeline
// stage and virtual chunk holds a transformer layer (and under which name). The resharder uses it;
// .nemo and FasterTransformer export are meant to use it too. Pure functions on host memory.
//
// Tensor parallelism. A tensor split over t ranks along dimension d holds on rank r the r-th of t
// equal consecutive blocks of the full tensor along d (column-parallel weights and biases and the
// vocab-parallel embedding split dim 0, row-parallel weights dim 1); a replicated tensor (d < 0) is
// whole on every rank. Worked example, full W (4, 6) over t = 2:
//   d = 0: rank 0 holds rows 0-1 (2, 6), rank 1 rows 2-3;
//   d = 1: rank 0 holds columns 0-2 of every row (4, 3), rank 1 columns 3-5, so element
//          i = a*3 + b (row a, column b) of rank 1 is full element a*6 + 3 + b (tp_full_index).
// tp_split copies one block out of the full tensor; tp_concat puts it back (for every rank it
// reassembles the full tensor): split(concat) and concat(split) are identities.
//
// Vocabulary padding. The word embedding (and the tied output layer) has Vp rows: the V real rows
// rounded up to a multiple of make_vocab_size_divisible_by * t (sizing::padded_vocab_size), so that
// every TP rank holds Vp/t rows. V = 51, divisible by 8: Vp = 56 at t = 1, 64 at t = 2 and t = 4, 96 at t = 12. A new TP
// size can change Vp: repad_vocab_rows keeps the rows both sizes share and cuts the extra padding
// rows or adds zero rows (the real rows, < V, are never touched: Vp >= V for any t).
//
// Pipeline parallelism. parallel::StagePlan assigns layers to (stage, virtual chunk). bignlp names
// a layer by its GLOBAL index in every shard ("model.language_model.encoder.layers.5.mlp..."); NeMo
// and Megatron name it by its index LOCAL to its stage, or with virtual chunks local to its chunk
// (whose state-dict is "model{c}"). Example L = 8, p = 2, vp = 2 (chunks of 2 layers):
//   stage 0 = chunk 0 [0, 1] + chunk 1 [4, 5];  stage 1 = chunk 0 [2, 3] + chunk 1 [6, 7]
//   global layer 5 -> {stage 0, chunk 1, local 1}: "...layers.5.mlp..." <-> "...layers.1.mlp..."
// The embedding lives on stage 0 chunk 0, the final LayerNorm on the last chunk of the last stage,
// which with p > 1 also keeps its own copy of the tied word embedding ("model.word_embeddings.weight").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bignlp/parallel/stage_plan.h"
#include "bignlp/tensor/shape.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::checkpoint {

// ---- tensor parallelism (dim < 0 or tp_size == 1: not split) ---------------------------------

/// The full shape of a shard split along `dim` over `tp_size` ranks.
Shape tp_full_shape(const Shape& shard, int dim, int tp_size);
/// The shape of each shard of `full` split along `dim` over `tp_size` ranks. Throws ConfigError
/// when full[dim] is not divisible by tp_size.
Shape tp_shard_shape(const Shape& full, int dim, int tp_size);
/// The row-major index in the full tensor of row-major element `i` of shard `tp_rank`.
std::int64_t tp_full_index(const Shape& shard, int dim, int tp_size, int tp_rank, std::int64_t i);
/// Copies shard `tp_rank` of `full` into `shard` (contiguous host views of one dtype, shard of
/// tp_shard_shape(full, dim, tp_size)).
void tp_split(const TensorView& full, int dim, int tp_size, int tp_rank, const TensorView& shard);
/// Copies `shard` (shard `tp_rank`) to its place in `full`: the inverse of tp_split.
void tp_concat(const TensorView& shard, int dim, int tp_size, int tp_rank, const TensorView& full);

// ---- vocabulary padding ---------------------------------------------------------------------------

// Vp itself is sizing::padded_vocab_size (sizing/vocab.h), also GptConfig::padded_vocab_size.

/// Copies the rows `src` and `dst` share (dim 0; the other dims equal) and zero-fills the rows
/// only `dst` has. Contiguous host views of one dtype.
void repad_vocab_rows(const TensorView& src, const TensorView& dst);

// ---- pipeline stages and layer names ------------------------------------------------------------

/// Where a transformer layer lives: pipeline stage, virtual chunk, index within the chunk.
struct LayerLocation {
  int stage = 0;
  int chunk = 0;
  int local_index = 0;
  friend bool operator==(const LayerLocation&, const LayerLocation&) = default;
};

/// The location of global layer `layer` under `plan`. Throws ConfigError when out of range.
LayerLocation locate_layer(const parallel::StagePlan& plan, int layer);
/// The global index of the layer at `where` (the inverse of locate_layer).
int global_layer(const parallel::StagePlan& plan, const LayerLocation& where);

/// The layer index of a parameter name ("model.language_model.encoder.layers.12.mlp.x" -> 12:
/// the number after a "layers." path element), or nullopt for parameters outside the layers.
std::optional<int> layer_index_of(std::string_view name);
/// `name` with its layer index replaced by `index` (unchanged when it has none).
std::string with_layer_index(std::string_view name, int index);
/// A global-index name (bignlp) as the name local to its stage / chunk (NeMo, Megatron).
std::string to_local_layer_name(std::string_view name, const parallel::StagePlan& plan);
/// A name local to (stage, chunk) as the global-index name.
std::string to_global_layer_name(std::string_view local_name, const parallel::StagePlan& plan, int stage, int chunk);

}  // namespace bignlp::checkpoint
