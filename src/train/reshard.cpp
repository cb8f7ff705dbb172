#include "bignlp/train/reshard.h"

#include <fmt/format.h>

#include <map>
#include <random>
#include <vector>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/train/checkpoint.h"

namespace fs = std::filesystem;

namespace bignlp::train {
namespace {

constexpr const char* kWord = "model.language_model.embedding.word_embeddings.weight";
constexpr const char* kWordCopy = "model.word_embeddings.weight";

/// A full (unsharded) fp32 tensor, row-major.
struct Full {
  Shape shape;
  std::vector<float> data;
};

/// The model of one (tp rank, pp stage) of a layout, without training state. The communicators
/// only give the layers their TP size and rank; nothing is communicated.
struct ShardModel {
  std::vector<std::unique_ptr<comm::Communicator>> comms;
  std::unique_ptr<model::GptModel> model;
};

ShardModel shard_model(const model::GptConfig& base, int tp, int pp, int tp_rank, int pp_rank, const ops::OpContext& ctx) {
  ShardModel s;
  model::GptConfig cfg = base;
  cfg.tensor_model_parallel_size = tp;
  parallel::ParallelContext pc;
  pc.grid = comm::ProcessGrid(tp * pp, pp_rank * tp + tp_rank, tp, pp);
  if (tp > 1) {
    comm::LocalWorld world(tp);
    for (int r = 0; r < tp; ++r) s.comms.push_back(world.communicator(r));
    pc.tp = s.comms[static_cast<std::size_t>(tp_rank)].get();
  }
  s.model = std::make_unique<model::GptModel>(cfg, ctx, pc);
  return s;
}

/// Index of shard element (i) of parameter p in its full tensor (partition along p.partition_dim).
std::int64_t full_index(const model::Parameter& p, const Shape& full, std::int64_t i) {
  if (!p.tensor_parallel()) return i;
  const int pd = p.partition_dim;
  std::int64_t inner = 1;
  for (int d = pd + 1; d < p.shape.rank(); ++d) inner *= p.shape[d];
  const std::int64_t local = p.shape[pd], outer = i / (local * inner);
  const std::int64_t mid = (i / inner) % local + p.tp_rank * local;
  return (outer * full[pd] + mid) * inner + i % inner;
}

Shape full_shape(const model::Parameter& p) {
  Shape s = p.shape;
  if (p.tensor_parallel()) s.set(p.partition_dim, p.shape[p.partition_dim] * p.tp_size);
  return s;
}

}  // namespace

void reshard_checkpoint(const fs::path& input, const fs::path& output, int tensor_parallel, int pipeline_parallel,
                        const Logger& log) {
  const CheckpointState meta = read_checkpoint_metadata(input);
  if (tensor_parallel < 1 || pipeline_parallel < 1)
    throw ConfigError(fmt::format("--tensor-model-parallel-size and --pipeline-model-parallel-size must be >= 1, got {} "
                                  "and {}", tensor_parallel, pipeline_parallel));
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const bool with_optimizer = meta.has_optimizer_state;
  // 1. Read every old shard into full tensors (weights, and moments under "exp_avg." / "exp_avg_sq.").
  std::map<std::string, Full> full;
  for (int pp_rank = 0; pp_rank < meta.pp_size; ++pp_rank) {
    for (int tp_rank = 0; tp_rank < meta.tp_size; ++tp_rank) {
      ShardModel sm = shard_model(meta.model, meta.tp_size, meta.pp_size, tp_rank, pp_rank, ctx);
      const fs::path shard = input / checkpoint_shard_name(tp_rank, pp_rank);
      const SafetensorsReader weights(shard / "model.safetensors");
      std::unique_ptr<SafetensorsReader> moments;
      if (with_optimizer) moments = std::make_unique<SafetensorsReader>(shard / "optimizer.safetensors");
      std::vector<std::pair<std::string, const SafetensorsReader*>> sources{{"", &weights}};
      if (moments) {
        sources.emplace_back("exp_avg.", moments.get());
        sources.emplace_back("exp_avg_sq.", moments.get());
      }
      for (const auto& p : sm.model->parameters().params()) {
        if (p.name == kWordCopy) continue;  // a copy of the word embedding
        const Shape fs_shape = full_shape(p);
        for (const auto& [prefix, reader] : sources) {
          const SafetensorsReader& r = *reader;
          const std::string name = prefix + p.name;
          const SafetensorsEntry* e = r.find(name);
          if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", r.path().string(), name));
          if (!(e->shape == p.shape))
            throw DataError(fmt::format("{}: tensor '{}' has shape {}, the checkpoint's layout expects {}",
                                        r.path().string(), name, e->shape.to_string(), p.shape.to_string()));
          std::vector<float> local(static_cast<std::size_t>(p.numel()));
          ops::copy(ctx, r.view(name), TensorView(local.data(), DType::kF32, p.shape));
          Full& f = full[name];
          if (f.data.empty()) {
            f.shape = fs_shape;
            f.data.assign(static_cast<std::size_t>(fs_shape.numel()), 0.0f);
          }
          for (std::int64_t i = 0; i < p.numel(); ++i)
            f.data[static_cast<std::size_t>(full_index(p, fs_shape, i))] = local[static_cast<std::size_t>(i)];
        }
      }
    }
  }
  // 2. The new layout: pad or cut the vocabulary rows, then write every new shard.
  CheckpointState out_meta = meta;
  out_meta.model.tensor_model_parallel_size = tensor_parallel;
  out_meta.tp_size = tensor_parallel;
  out_meta.pp_size = pipeline_parallel;
  const std::int64_t old_vp = meta.model.padded_vocab_size(), new_vp = out_meta.model.padded_vocab_size();
  if (old_vp != new_vp) {
    log.warn("the padded vocabulary changes from {} to {} rows (make_vocab_size_divisible_by {} x TP {}): padding rows "
             "beyond the {} real tokens are {}",
             old_vp, new_vp, meta.model.make_vocab_size_divisible_by, tensor_parallel, meta.model.vocab_size,
             new_vp < old_vp ? "dropped" : "added as zeros");
    const std::int64_t c = meta.model.hidden_size;
    for (const std::string prefix : {"", "exp_avg.", "exp_avg_sq."}) {
      auto it = full.find(prefix + kWord);
      if (it == full.end()) continue;
      it->second.data.resize(static_cast<std::size_t>(new_vp * c), 0.0f);
      it->second.shape = Shape{new_vp, c};
    }
  }
  const fs::path tmp = output.parent_path() / fmt::format(".tmp-{}-{:08x}", output.filename().string(), std::random_device{}());
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", tmp.string(), ec.message()));
  try {
    for (int pp_rank = 0; pp_rank < pipeline_parallel; ++pp_rank) {
      for (int tp_rank = 0; tp_rank < tensor_parallel; ++tp_rank) {
        ShardModel sm = shard_model(meta.model, tensor_parallel, pipeline_parallel, tp_rank, pp_rank, ctx);
        model::ParameterStore& store = sm.model->parameters();
        Buffer m, v;
        if (with_optimizer) {
          m = Buffer(alloc, DType::kF32, Shape{store.numel()});
          v = Buffer(alloc, DType::kF32, Shape{store.numel()});
        }
        for (auto& p : store.params()) {
          const std::string source = p.name == kWordCopy ? kWord : p.name;
          const Shape fs_shape = full_shape(p);
          auto fill = [&](const std::string& name, float* dst) {
            auto it = full.find(name);
            if (it == full.end())
              throw DataError(fmt::format("{}: no tensor '{}' in any shard", input.string(), name));
            if (!(it->second.shape == fs_shape))
              throw DataError(fmt::format("{}: tensor '{}' has full shape {}, the new layout expects {}", input.string(),
                                          name, it->second.shape.to_string(), fs_shape.to_string()));
            for (std::int64_t i = 0; i < p.numel(); ++i)
              dst[i] = it->second.data[static_cast<std::size_t>(full_index(p, fs_shape, i))];
          };
          fill(source, p.master.data<float>());
          if (with_optimizer) {
            fill("exp_avg." + source, m.data<float>() + p.offset);
            fill("exp_avg_sq." + source, v.data<float>() + p.offset);
          }
        }
        write_checkpoint_shard(tmp / checkpoint_shard_name(tp_rank, pp_rank), store, m.view(), v.view(), ctx);
      }
    }
    write_checkpoint_metadata(tmp, out_meta);
    fsync_path(tmp);
    if (output.has_parent_path()) fs::create_directories(output.parent_path());
    rename_directory_atomic(tmp, output, /*replace=*/true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  log.info("resharded {} (TP {} x PP {}) into {} (TP {} x PP {})", input.string(), meta.tp_size, meta.pp_size,
           output.string(), tensor_parallel, pipeline_parallel);
}

}  // namespace bignlp::train
