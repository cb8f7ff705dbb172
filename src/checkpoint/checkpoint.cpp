#include "bignlp/checkpoint/checkpoint.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/core/logging.h"
#include "bignlp/checkpoint/integrity.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {
namespace {

/// Host-accessible fp32 view of `t`: the view itself on the CPU, else a copy kept in `storage`.
TensorView host_view(const TensorView& t, std::vector<std::vector<float>>& storage, const ops::OpContext& ctx) {
  if (t.device().is_cpu()) return t;
  storage.emplace_back(static_cast<std::size_t>(t.numel()));
  TensorView h(storage.back().data(), DType::kF32, t.shape());
  ops::copy(ctx, t, h);
  return h;
}

}  // namespace

std::string checkpoint_shard_name(int tp_rank, int pp_rank) { return fmt::format("tp_rank_{:02d}_pp_rank_{:03d}", tp_rank, pp_rank); }

void save_checkpoint(const fs::path& dir, const CheckpointState& state, const model::ParameterStore& store,
                     OptimizerState* optimizer, const ops::OpContext& ctx, const parallel::ParallelContext& parallel) {
  comm::Communicator* world = parallel.world;
  const bool lead = parallel.grid.rank() == 0;
  // All ranks assemble one directory, so its name must not be random per rank. Rank 0 owns it:
  // creates it, commits it, and removes it when the save fails on rank 0.
  const std::string shared_suffix = fmt::format("step{}", state.global_step);
  std::optional<StagedDirectory> stage;
  if (lead) stage.emplace(dir, world != nullptr ? std::optional<std::string>(shared_suffix) : std::nullopt);
  if (world != nullptr) world->barrier();
  const fs::path staging = stage ? stage->path() : StagedDirectory::staging_path(dir, shared_suffix);
  const fs::path shard = staging / checkpoint_shard_name(parallel.tp_rank(), parallel.pp_rank());
  const bool writer = parallel.dp_rank() == 0;
  TensorView master = store.master_complete() ? store.flat_master() : TensorView{};
  TensorView m, v;
  if (optimizer != nullptr) {
    m = optimizer->exp_avg();
    v = optimizer->exp_avg_sq();
  }
  // A sharded optimizer state lives on the DP ranks: assemble it on the writer first (host memory,
  // one bucket at a time).
  std::vector<float> full_master, full_m, full_v;
  if (optimizer != nullptr && optimizer->sharded()) {
    optimizer->gather_state(writer, full_master, full_m, full_v);
    if (writer) {
      const Shape flat{static_cast<std::int64_t>(full_m.size())};
      if (!full_master.empty()) master = TensorView(full_master.data(), DType::kF32, flat);
      m = TensorView(full_m.data(), DType::kF32, flat);
      v = TensorView(full_v.data(), DType::kF32, flat);
    }
  }
  BIGNLP_CHECK(master.defined() || !writer,
               "saving a checkpoint of a store that keeps master-weight shards needs its sharded optimizer state");
  if (writer) write_checkpoint_shard(shard, store, master, m, v, ctx);
  if (world != nullptr) world->barrier();
  if (lead) {
    try {
      CheckpointState st = state;
      st.has_optimizer_state = optimizer != nullptr;
      write_checkpoint_metadata(stage->path(), st);
      stage->commit();
    } catch (...) {
      stage.reset();  // removes the staging directory
      if (world != nullptr) world->barrier();
      throw;
    }
  }
  if (world != nullptr) world->barrier();  // the directory is in place when this returns
}

void write_checkpoint_shard(const fs::path& shard, const model::ParameterStore& store, const TensorView& master,
                            const TensorView& exp_avg, const TensorView& exp_avg_sq, const ops::OpContext& ctx) {
  const std::int64_t n = store.trainable_numel();
  BIGNLP_CHECK(master.defined() && master.numel() == n,
               "write_checkpoint_shard: the master weights must hold the store's {} trainable elements, got {}", n,
               master.defined() ? master.to_string() : std::string("none"));
  BIGNLP_CHECK(!exp_avg.defined() || (exp_avg.numel() == n && exp_avg_sq.numel() == n),
               "write_checkpoint_shard: the moments must hold the store's {} trainable elements, got {} and {}", n,
               exp_avg.to_string(), exp_avg_sq.to_string());
  std::error_code ec;
  fs::create_directories(shard, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", shard.string(), ec.message()));
  std::vector<std::vector<float>> storage;
  storage.reserve(3 * store.params().size());
  {
    SafetensorsWriter w;
    for (const auto& p : store.params()) {
      if (p.trainable) {
        w.add(p.name, host_view(master.slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
        continue;
      }
      // A frozen parameter has no master weights: its compute copy, widened (exact).
      auto& wide = storage.emplace_back(static_cast<std::size_t>(p.numel()));
      const TensorView h(wide.data(), DType::kF32, p.shape);
      ops::copy(ctx, p.value, h);
      w.add(p.name, h);
    }
    w.set_metadata("format", kFormatName);
    write_shard_file(w, shard / "model.safetensors");
  }
  if (exp_avg.defined()) {
    SafetensorsWriter w;
    for (const auto& p : store.params()) {
      if (!p.trainable) continue;  // frozen: no optimizer state
      w.add("exp_avg." + p.name, host_view(exp_avg.slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
      w.add("exp_avg_sq." + p.name, host_view(exp_avg_sq.slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
    }
    write_shard_file(w, shard / "optimizer.safetensors");
  }
  fsync_path(shard);
}

void load_checkpoint(const fs::path& dir, model::ParameterStore& store, OptimizerState* optimizer,
                     const ops::OpContext& ctx, const parallel::ParallelContext& parallel, const Logger* log) {
  const CheckpointState meta = read_checkpoint_metadata(dir);
  if (meta.tp_size != parallel.tp_size() || meta.pp_size != parallel.pp_size())
    throw DataError(fmt::format(
        "{}: checkpoint was written with tensor/pipeline parallel sizes {}/{}, this run uses {}/{}; convert it with "
        "bignlp-convert --reshard --input {} --output <dir> --tensor-model-parallel-size {} "
        "--pipeline-model-parallel-size {}",
        dir.string(), meta.tp_size, meta.pp_size, parallel.tp_size(), parallel.pp_size(), dir.string(),
        parallel.tp_size(), parallel.pp_size()));
  // Virtual chunks change which layers a stage holds (version 1 did not record them).
  if (meta.format_version >= 2 && meta.pp_size > 1 &&
      meta.virtual_pp_size != parallel.options.virtual_pipeline_size)
    throw DataError(fmt::format("{}: checkpoint was written with {} virtual pipeline chunks per stage, this run uses {} "
                                "(model.virtual_pipeline_model_parallel_size)",
                                dir.string(), meta.virtual_pp_size, parallel.options.virtual_pipeline_size));
  std::vector<std::vector<float>> widened;  // host fp32 copies of non-fp32 entries
  const fs::path shard = dir / checkpoint_shard_name(parallel.tp_rank(), parallel.pp_rank());
  // The stored tensor `name` (fp32, p's shape), a host view into the reader.
  // Integrity (integrity.h): sizes against metadata.json, each tensor's CRC-32 before use, and
  // finite values only. Checkpoints from before checksums load with a warning.
  bool warned = false;
  auto open = [&](const fs::path& file) {
    if (!check_shard_file_size(dir, meta, file) && !warned) {
      warned = true;
      const std::string text = fmt::format(
          "{}: written without shard sizes and tensor checksums (an older bignlp); loading it unverified", dir.string());
      if (log != nullptr)
        log->warn("{}", text);
      else
        Logger().warn("{}", text);
    }
    return std::make_unique<SafetensorsReader>(file);
  };
  auto entry = [&](const SafetensorsReader& r, const ShardChecksums& crc, const std::string& name,
                   const model::Parameter& p) {
    const SafetensorsEntry* e = r.find(name);
    if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", r.path().string(), name));
    if (!(e->shape == p.shape))
      throw DataError(fmt::format("{}: tensor '{}' has shape {}, the model expects {}", r.path().string(), name,
                                  e->shape.to_string(), p.shape.to_string()));
    crc.verify(name);
    TensorView h = r.view(name);
    if (e->dtype != DType::kF32) {
      // Another float dtype (a converted checkpoint): widen on the host.
      auto& wide = widened.emplace_back(static_cast<std::size_t>(p.numel()));
      h = TensorView(wide.data(), DType::kF32, p.shape);
      ops::copy(ops::OpContext::cpu(), r.view(name), h);
    }
    check_finite(h, r.path(), name);
    return h;
  };
  {
    const auto reader = open(shard / "model.safetensors");
    const SafetensorsReader& r = *reader;
    const ShardChecksums crc(r, meta.tensor_checksums);
    // Each parameter's full fp32 weights: the store keeps what it keeps (all, or its master shards).
    for (auto& p : store.params()) {
      store.assign(ctx, p, entry(r, crc, p.name, p));
      widened.clear();
    }
  }
  if (optimizer != nullptr) {
    if (!meta.has_optimizer_state)
      throw DataError(fmt::format("{}: checkpoint holds no optimizer state (an imported or inference checkpoint)",
                                  dir.string()));
    const auto reader = open(shard / "optimizer.safetensors");
    const SafetensorsReader& r = *reader;
    const ShardChecksums crc(r, meta.tensor_checksums);
    for (auto& p : store.params()) {
      if (!p.trainable) continue;  // needs no moments (the checkpoint may have none for it)
      const TensorView m = entry(r, crc, "exp_avg." + p.name, p);
      optimizer->assign_moments(p, m, entry(r, crc, "exp_avg_sq." + p.name, p));
      widened.clear();
    }
    optimizer->set_steps(meta.optimizer_steps);
  }
}

std::unique_ptr<model::Model> load_model_from_checkpoint(const fs::path& dir, const ops::OpContext& ctx,
                                                         std::optional<model::Precision> precision,
                                                         const model::ModelFamilyRegistry& registry) {
  CheckpointState meta = read_checkpoint_metadata(dir);
  if (!registry.contains(meta.family))
    throw DataError(fmt::format("{}: unknown model family '{}' (this bignlp builds: {})", dir.string(), meta.family,
                                join(registry.names(), ", ")));
  if (precision) meta.model["precision"] = model::precision_name(*precision);
  auto model = registry.build(meta.family, meta.model, ctx);
  load_checkpoint(dir, model->parameters(), nullptr, ctx);
  return model;
}

}  // namespace bignlp::checkpoint
