// The parameter layout of a checkpoint's shards, and reading full (unsharded) tensors out of them
// one at a time: the streaming side of conversion and export.
//
// Which parameters a (tp rank, pp stage) shard holds, their shapes and TP split dimensions, is not
// a table kept here: the checkpoint's family builds that shard's model (every parameter frozen, so
// it allocates only an untouched compute copy, no gradients) and its ParameterStore is read off
// (names with GLOBAL layer indices, see partition.h). CheckpointTensors maps the shard files
// (safetensors, mmap) and assembles one full fp32 tensor on request: a converter that walks the
// parameters holds one full tensor at a time, never a second copy of the model.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/integrity.h"
#include "bignlp/checkpoint/metadata.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/tensor/shape.h"

namespace bignlp::checkpoint {

/// The tied embedding's copy on the last pipeline stage (NeMo's key) and the tensor it copies.
inline constexpr const char* kWordEmbeddingName = "model.language_model.embedding.word_embeddings.weight";
inline constexpr const char* kWordEmbeddingCopyName = "model.word_embeddings.weight";

/// One parameter of one shard.
struct ShardParameter {
  std::string name;  ///< global-layer-index NeMo name
  Shape shape;       ///< this shard's shape
  int split_dim = -1;  ///< TP split dimension, -1 whole on every rank
  int tp_size = 1;
  int tp_rank = 0;
  Shape full_shape;  ///< the unsharded shape
};

/// The family config `config` with tensor_model_parallel_size `tp` (and the padded vocabulary
/// `padded_vocab_size` it implies, when the config has that key).
nlohmann::json config_for_tensor_parallel(const nlohmann::json& config, int tp);

/// The parameters of shard (tp_rank, pp_rank) of a `tp` x `pp` layout of the model `meta`
/// describes (family, typed config, virtual chunks), in registration order. Throws ConfigError for
/// a layout the model cannot take, DataError for a family the registry lacks.
std::vector<ShardParameter> shard_parameters(const CheckpointState& meta, int tp, int pp, int tp_rank, int pp_rank);

/// The shard's layer-index renaming between bignlp's GLOBAL indices and the indices LOCAL to the
/// stage NeMo and Megatron use (without virtual chunks): for every layer stack ("...encoder.layers.",
/// "...decoder.layers.") the first layer the shard holds becomes 0. Built from the shard's
/// parameters, so it holds for any family whose stages hold consecutive layers.
class LayerRenaming {
 public:
  explicit LayerRenaming(const std::vector<ShardParameter>& params);
  std::string to_local(const std::string& global_name) const;
  /// Throws DataError when `local_name` is not one of the shard's parameters.
  std::string to_global(const std::string& local_name) const;

 private:
  std::map<std::string, std::string> to_local_, to_global_;
};

/// Full fp32 tensors of a bignlp checkpoint, assembled from its shards on request.
class CheckpointTensors {
 public:
  /// Reads the metadata and maps every shard's model.safetensors, checking each file's size against
  /// metadata.json (integrity.h). Throws DataError/IoError.
  explicit CheckpointTensors(const std::filesystem::path& dir);
  ~CheckpointTensors();

  const CheckpointState& meta() const { return meta_; }
  const std::filesystem::path& dir() const { return dir_; }
  /// Every parameter of the model once (the tied copy left out), by global name.
  const std::map<std::string, ShardParameter>& parameters() const { return full_; }
  /// Bytes of all fp32 parameters (the tied copy once).
  std::size_t total_bytes() const;
  /// The full fp32 tensor `name` (global name; the tied copy gives the word embedding), its shape
  /// in `shape` when given. Throws DataError naming the shard file and tensor when missing, of the
  /// wrong shape, failing its checksum or holding a non-finite value.
  std::vector<float> full(const std::string& name, Shape* shape = nullptr) const;

 private:
  struct Source {
    ShardParameter param;
    const SafetensorsReader* reader;
    const ShardChecksums* checksums;
  };
  std::filesystem::path dir_;
  CheckpointState meta_;
  std::vector<std::unique_ptr<SafetensorsReader>> readers_;
  std::vector<std::unique_ptr<ShardChecksums>> checksums_;
  std::map<std::string, ShardParameter> full_;
  std::map<std::string, std::vector<Source>> sources_;
};

}  // namespace bignlp::checkpoint
