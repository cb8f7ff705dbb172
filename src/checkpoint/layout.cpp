#include "bignlp/checkpoint/layout.h"

#include <fmt/format.h>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/partition.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/core/error.h"
#include "bignlp/model/model_family.h"
#include "bignlp/ops/ops.h"
#include "bignlp/sizing/vocab.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {

nlohmann::json config_for_tensor_parallel(const nlohmann::json& config, int tp) {
  nlohmann::json c = config;
  c["tensor_model_parallel_size"] = tp;
  if (c.contains("padded_vocab_size") && c.contains("vocab_size") && c.contains("make_vocab_size_divisible_by"))
    c["padded_vocab_size"] = sizing::padded_vocab_size(c.at("vocab_size").get<std::int64_t>(),
                                                       c.at("make_vocab_size_divisible_by").get<std::int64_t>(), tp);
  return c;
}

std::vector<ShardParameter> shard_parameters(const CheckpointState& meta, int tp, int pp, int tp_rank, int pp_rank) {
  nlohmann::json cfg = config_for_tensor_parallel(meta.model, tp);
  cfg["precision"] = model::precision_name(model::Precision::kFp32);
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  parallel::ParallelContext pc;
  pc.grid = comm::ProcessGrid(tp * pp, pp_rank * tp + tp_rank, tp, pp);
  pc.options.virtual_pipeline_size = pp > 1 ? meta.virtual_pp_size : 1;
  std::vector<std::unique_ptr<comm::Communicator>> comms;
  if (tp > 1) {
    comm::LocalWorld world(tp);
    for (int r = 0; r < tp; ++r) comms.push_back(world.communicator(r));
    pc.tp = comms[static_cast<std::size_t>(tp_rank)].get();
  }
  const auto& registry = model::ModelFamilyRegistry::builtin();
  if (!registry.contains(meta.family))
    throw DataError(fmt::format("unknown model family '{}' (this bignlp builds: {})", meta.family,
                                fmt::join(registry.names(), ", ")));
  // Frozen: the store allocates the compute copy only (never touched here), no gradients.
  auto m = registry.build(meta.family, cfg, ctx, pc, [](const model::Parameter&) { return false; });
  std::vector<ShardParameter> out;
  for (const auto& p : m->parameters().params()) {
    ShardParameter s;
    s.name = p.name;
    s.shape = p.shape;
    s.split_dim = p.tensor_parallel() ? p.partition_dim : -1;
    s.tp_size = p.tp_size;
    s.tp_rank = p.tp_rank;
    s.full_shape = tp_full_shape(p.shape, s.split_dim, p.tp_size);
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

/// "...layers." prefix of a layer parameter name, the index, and the rest.
bool split_layer_name(const std::string& name, std::string& prefix, int& index, std::string& rest) {
  const auto idx = layer_index_of(name);
  if (!idx) return false;
  const std::string key = fmt::format("layers.{}.", *idx);
  const auto pos = name.find(key);
  if (pos == std::string::npos) return false;
  prefix = name.substr(0, pos + 7);
  index = *idx;
  rest = name.substr(pos + key.size());
  return true;
}

}  // namespace

LayerRenaming::LayerRenaming(const std::vector<ShardParameter>& params) {
  std::map<std::string, int> first;
  for (const auto& p : params) {
    std::string prefix, rest;
    int index = 0;
    if (!split_layer_name(p.name, prefix, index, rest)) continue;
    auto [it, inserted] = first.emplace(prefix, index);
    if (!inserted) it->second = std::min(it->second, index);
  }
  for (const auto& p : params) {
    std::string prefix, rest, local = p.name;
    int index = 0;
    if (split_layer_name(p.name, prefix, index, rest)) local = fmt::format("{}{}.{}", prefix, index - first[prefix], rest);
    to_local_[p.name] = local;
    to_global_[local] = p.name;
  }
}

std::string LayerRenaming::to_local(const std::string& global_name) const {
  auto it = to_local_.find(global_name);
  return it == to_local_.end() ? global_name : it->second;
}

std::string LayerRenaming::to_global(const std::string& local_name) const {
  auto it = to_global_.find(local_name);
  if (it == to_global_.end()) throw DataError(fmt::format("'{}' is not a parameter of this shard", local_name));
  return it->second;
}

CheckpointTensors::CheckpointTensors(const fs::path& dir) : dir_(dir), meta_(read_checkpoint_metadata(dir)) {
  for (int pp_rank = 0; pp_rank < meta_.pp_size; ++pp_rank) {
    for (int tp_rank = 0; tp_rank < meta_.tp_size; ++tp_rank) {
      const fs::path file = dir / checkpoint_shard_name(tp_rank, pp_rank) / "model.safetensors";
      if (!fs::exists(file))
        throw DataError(fmt::format("{}: shard file missing (the checkpoint records TP {} x PP {})", file.string(),
                                    meta_.tp_size, meta_.pp_size));
      check_shard_file_size(dir, meta_, file);
      readers_.push_back(std::make_unique<SafetensorsReader>(file));
      const SafetensorsReader* r = readers_.back().get();
      checksums_.push_back(std::make_unique<ShardChecksums>(*r, meta_.tensor_checksums));
      const ShardChecksums* crc = checksums_.back().get();
      for (auto& p : shard_parameters(meta_, meta_.tp_size, meta_.pp_size, tp_rank, pp_rank)) {
        if (p.name == kWordEmbeddingCopyName) continue;
        const SafetensorsEntry* e = r->find(p.name);
        if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", file.string(), p.name));
        if (!(e->shape == p.shape))
          throw DataError(fmt::format("{}: tensor '{}' has shape {}, the checkpoint's config implies {}", file.string(),
                                      p.name, e->shape.to_string(), p.shape.to_string()));
        if (!is_floating(e->dtype))
          throw DataError(fmt::format("{}: tensor '{}' has dtype {}, not a float", file.string(), p.name,
                                      dtype_name(e->dtype)));
        full_.emplace(p.name, p);
        sources_[p.name].push_back(Source{p, r, crc});
      }
    }
  }
}

CheckpointTensors::~CheckpointTensors() = default;

std::size_t CheckpointTensors::total_bytes() const {
  std::size_t n = 0;
  for (const auto& [name, p] : full_) n += static_cast<std::size_t>(p.full_shape.numel()) * 4;
  return n;
}

std::vector<float> CheckpointTensors::full(const std::string& name, Shape* shape) const {
  const std::string key = name == kWordEmbeddingCopyName ? kWordEmbeddingName : name;
  auto it = sources_.find(key);
  if (it == sources_.end()) throw DataError(fmt::format("{}: no tensor '{}' in any shard", dir_.string(), name));
  const Shape full_shape = full_.at(key).full_shape;
  std::vector<float> out(static_cast<std::size_t>(full_shape.numel()));
  const TensorView full_view(out.data(), DType::kF32, full_shape);
  std::vector<float> local;
  for (const Source& s : it->second) {
    s.checksums->verify(key);
    const TensorView src = s.reader->view(key);
    local.resize(static_cast<std::size_t>(s.param.shape.numel()));
    const TensorView lv(local.data(), DType::kF32, s.param.shape);
    ops::copy(ops::OpContext::cpu(), src, lv);
    check_finite(lv, s.reader->path(), key);
    if (s.param.split_dim < 0) {
      ops::copy(ops::OpContext::cpu(), lv, full_view);
      continue;
    }
    tp_concat(lv, s.param.split_dim, s.param.tp_size, s.param.tp_rank, full_view);
  }
  if (shape != nullptr) *shape = full_shape;
  return out;
}

}  // namespace bignlp::checkpoint
