#include "bignlp/train/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/train/optimizer.h"

namespace fs = std::filesystem;

namespace bignlp::train {
namespace {

constexpr const char* kFormat = "bignlp-checkpoint";
constexpr int kVersion = 1;

/// Host-accessible fp32 view of `t`: the view itself on the CPU, else a copy kept in `storage`.
TensorView host_view(const TensorView& t, std::vector<std::vector<float>>& storage, const ops::OpContext& ctx) {
  if (t.device().is_cpu()) return t;
  storage.emplace_back(static_cast<std::size_t>(t.numel()));
  TensorView h(storage.back().data(), DType::kF32, t.shape());
  ops::copy(ctx, t, h);
  return h;
}

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

std::string checkpoint_shard_name(int tp_rank, int pp_rank) { return fmt::format("tp_rank_{:02d}_pp_rank_{:03d}", tp_rank, pp_rank); }

void save_checkpoint(const fs::path& dir, const CheckpointState& state, const model::ParameterStore& store,
                     AdamOptimizer* optimizer, const ops::OpContext& ctx, const parallel::ParallelContext& parallel) {
  const fs::path parent = dir.parent_path();
  comm::Communicator* world = parallel.world;
  const bool lead = parallel.grid.rank() == 0;
  // All ranks assemble one directory, so its name must not be random per rank.
  const fs::path tmp = parent / (world != nullptr ? fmt::format(".tmp-{}-step{}", dir.filename().string(), state.global_step)
                                                  : fmt::format(".tmp-{}-{}", dir.filename().string(), random_suffix()));
  std::error_code ec;
  if (lead) {
    fs::remove_all(tmp, ec);  // a leftover of an interrupted save
    fs::create_directories(tmp, ec);
    if (ec) throw IoError(fmt::format("cannot create '{}': {}", tmp.string(), ec.message()));
  }
  if (world != nullptr) world->barrier();
  const fs::path shard = tmp / checkpoint_shard_name(parallel.tp_rank(), parallel.pp_rank());
  try {
    // The distributed optimizer's state lives in shards over the DP ranks: gather it first.
    Buffer full_m, full_v;
    if (optimizer != nullptr && optimizer->sharded()) {
      optimizer->gather_moments(full_m, full_v);
      optimizer->gather_master();
    }
    if (parallel.dp_rank() == 0) {
      TensorView m, v;
      if (optimizer != nullptr) {
        m = full_m.defined() ? full_m.view() : optimizer->exp_avg();
        v = full_v.defined() ? full_v.view() : optimizer->exp_avg_sq();
      }
      write_checkpoint_shard(shard, store, m, v, ctx);
    }
  } catch (...) {
    if (world == nullptr) fs::remove_all(tmp, ec);
    throw;
  }
  if (world != nullptr) world->barrier();
  if (!lead) {
    if (world != nullptr) world->barrier();  // the directory is in place when this returns
    return;
  }
  try {
    CheckpointState st = state;
    st.has_optimizer_state = optimizer != nullptr;
    write_checkpoint_metadata(tmp, st);
    fsync_path(tmp);
    rename_directory_atomic(tmp, dir, /*replace=*/true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    if (world != nullptr) world->barrier();
    throw;
  }
  if (world != nullptr) world->barrier();
}

void write_checkpoint_shard(const fs::path& shard, const model::ParameterStore& store, const TensorView& exp_avg,
                            const TensorView& exp_avg_sq, const ops::OpContext& ctx) {
  std::error_code ec;
  fs::create_directories(shard, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", shard.string(), ec.message()));
  std::vector<std::vector<float>> storage;
  storage.reserve(3 * store.params().size());
  {
    SafetensorsWriter w;
    for (const auto& p : store.params()) w.add(p.name, host_view(p.master, storage, ctx));
    w.set_metadata("format", kFormat);
    w.write(shard / "model.safetensors");
  }
  if (exp_avg.defined()) {
    SafetensorsWriter w;
    for (const auto& p : store.params()) {
      w.add("exp_avg." + p.name, host_view(exp_avg.slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
      w.add("exp_avg_sq." + p.name, host_view(exp_avg_sq.slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
    }
    w.write(shard / "optimizer.safetensors");
  }
  fsync_path(shard);
}

void write_checkpoint_metadata(const fs::path& dir, const CheckpointState& state) {
  {
    nlohmann::json meta;
    meta["format"] = kFormat;
    meta["version"] = kVersion;
    meta["global_step"] = state.global_step;
    meta["consumed_samples"] = state.consumed_samples;
    meta["val_loss"] = state.val_loss ? nlohmann::json(*state.val_loss) : nlohmann::json(nullptr);
    meta["scheduler_step"] = state.scheduler_step;
    meta["optimizer_steps"] = state.optimizer_steps;
    meta["loss_scaler"] = {{"scale", state.loss_scaler.scale},
                           {"growth_tracker", state.loss_scaler.growth_tracker},
                           {"hysteresis_tracker", state.loss_scaler.hysteresis_tracker}};
    meta["seed"] = state.seed;
    meta["model"] = state.model;
    meta["precision"] = model::precision_name(state.model.precision);
    meta["tokenizer"] = state.tokenizer;
    meta["tensor_model_parallel_size"] = state.tp_size;
    meta["pipeline_model_parallel_size"] = state.pp_size;
    meta["has_optimizer_state"] = state.has_optimizer_state;
    write_file_atomic(dir / "metadata.json", meta.dump(2) + "\n");
  }
}

CheckpointState read_checkpoint_metadata(const fs::path& dir) {
  const fs::path file = dir / "metadata.json";
  if (!fs::exists(file))
    throw DataError(fmt::format("{}: not a bignlp checkpoint (no metadata.json; incomplete or foreign)", dir.string()));
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed checkpoint metadata: {}", file.string(), e.what()));
  }
  try {
    if (meta.value("format", "") != kFormat)
      throw DataError(fmt::format("{}: format is '{}', expected '{}'", file.string(), meta.value("format", ""), kFormat));
    CheckpointState s;
    s.global_step = meta.at("global_step").get<std::int64_t>();
    s.consumed_samples = meta.at("consumed_samples").get<std::int64_t>();
    if (!meta.at("val_loss").is_null()) s.val_loss = meta.at("val_loss").get<double>();
    s.scheduler_step = meta.at("scheduler_step").get<std::int64_t>();
    s.optimizer_steps = meta.at("optimizer_steps").get<std::int64_t>();
    const auto& ls = meta.at("loss_scaler");
    s.loss_scaler.scale = ls.at("scale").get<double>();
    s.loss_scaler.growth_tracker = ls.at("growth_tracker").get<std::int64_t>();
    s.loss_scaler.hysteresis_tracker = ls.at("hysteresis_tracker").get<int>();
    s.seed = meta.at("seed").get<std::uint64_t>();
    s.model = meta.at("model").get<model::GptConfig>();
    s.tokenizer = meta.at("tokenizer").get<std::map<std::string, std::string>>();
    s.tp_size = meta.at("tensor_model_parallel_size").get<int>();
    s.pp_size = meta.at("pipeline_model_parallel_size").get<int>();
    s.has_optimizer_state = meta.at("has_optimizer_state").get<bool>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed checkpoint metadata: {}", file.string(), e.what()));
  }
}

void load_checkpoint(const fs::path& dir, model::ParameterStore& store, AdamOptimizer* optimizer,
                     const ops::OpContext& ctx, const parallel::ParallelContext& parallel) {
  const CheckpointState meta = read_checkpoint_metadata(dir);
  if (meta.tp_size != parallel.tp_size() || meta.pp_size != parallel.pp_size())
    throw DataError(fmt::format(
        "{}: checkpoint was written with tensor/pipeline parallel sizes {}/{}, this run uses {}/{}; convert it with "
        "bignlp-convert --reshard --input {} --output <dir> --tensor-model-parallel-size {} "
        "--pipeline-model-parallel-size {}",
        dir.string(), meta.tp_size, meta.pp_size, parallel.tp_size(), parallel.pp_size(), dir.string(),
        parallel.tp_size(), parallel.pp_size()));
  const fs::path shard = dir / checkpoint_shard_name(parallel.tp_rank(), parallel.pp_rank());
  auto load_into = [&](const SafetensorsReader& r, const std::string& name, const TensorView& dst) {
    const SafetensorsEntry* e = r.find(name);
    if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", r.path().string(), name));
    if (!(e->shape == dst.shape()))
      throw DataError(fmt::format("{}: tensor '{}' has shape {}, the model expects {}", r.path().string(), name,
                                  e->shape.to_string(), dst.shape().to_string()));
    ops::copy(ctx, r.view(name), dst);
  };
  {
    SafetensorsReader r(shard / "model.safetensors");
    for (auto& p : store.params()) load_into(r, p.name, p.master);
  }
  store.sync_values_from_master(ctx);
  if (optimizer != nullptr) {
    if (!meta.has_optimizer_state)
      throw DataError(fmt::format("{}: checkpoint holds no optimizer state (an imported or inference checkpoint)",
                                  dir.string()));
    SafetensorsReader r(shard / "optimizer.safetensors");
    Buffer full_m, full_v;
    TensorView m = optimizer->exp_avg(), v = optimizer->exp_avg_sq();
    if (optimizer->sharded()) {
      full_m = Buffer(*ctx.allocator, DType::kF32, Shape{store.numel()});
      full_v = Buffer(*ctx.allocator, DType::kF32, Shape{store.numel()});
      m = full_m.view();
      v = full_v.view();
    }
    for (auto& p : store.params()) {
      load_into(r, "exp_avg." + p.name, m.slice(0, p.offset, p.numel()).reshape(p.shape));
      load_into(r, "exp_avg_sq." + p.name, v.slice(0, p.offset, p.numel()).reshape(p.shape));
    }
    if (optimizer->sharded()) optimizer->load_moments(m, v);
    optimizer->set_steps(meta.optimizer_steps);
  }
}

std::unique_ptr<model::GptModel> load_gpt_from_checkpoint(const fs::path& dir, const ops::OpContext& ctx,
                                                          std::optional<model::Precision> precision) {
  CheckpointState meta = read_checkpoint_metadata(dir);
  if (precision) meta.model.precision = *precision;
  auto model = std::make_unique<model::GptModel>(meta.model, ctx);
  load_checkpoint(dir, model->parameters(), nullptr, ctx);
  return model;
}

std::vector<fs::path> list_checkpoints(const fs::path& checkpoints_dir) {
  std::vector<std::pair<std::pair<std::int64_t, int>, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // temporary (possibly half-written) directories
    try {
      const CheckpointState s = read_checkpoint_metadata(entry.path());
      found.push_back({{s.global_step, ends_with(name, "-last") ? 1 : 0}, entry.path()});
    } catch (const Error&) {
      continue;  // incomplete or foreign: never picked up
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [key, path] : found) out.push_back(path);
  return out;
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& checkpoints_dir) {
  auto all = list_checkpoints(checkpoints_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string render_checkpoint_name(const std::string& pattern, std::int64_t step, std::int64_t consumed_samples,
                                   std::optional<double> val_loss) {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] != '{') {
      out.push_back(pattern[i++]);
      continue;
    }
    const std::size_t close = pattern.find('}', i);
    if (close == std::string::npos)
      throw ConfigError(fmt::format("exp_manager.checkpoint_callback_params.filename: unbalanced '{{' in '{}'", pattern));
    const std::string field = pattern.substr(i + 1, close - i - 1);
    const std::size_t colon = field.find(':');
    const std::string name = field.substr(0, colon);
    const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    double value = 0.0;
    bool integral = false;
    if (name == "step") {
      value = static_cast<double>(step);
      integral = true;
    } else if (name == "consumed_samples") {
      value = static_cast<double>(consumed_samples);
    } else if (name == "val_loss") {
      value = val_loss.value_or(0.0);
    } else if (name == "epoch") {
      integral = true;
    } else {
      throw ConfigError(fmt::format(
          "exp_manager.checkpoint_callback_params.filename: unknown field '{{{}}}' in '{}' (known: step, "
          "consumed_samples, val_loss, epoch)",
          name, pattern));
    }
    std::string text;
    if (!spec.empty())
      text = fmt::format(fmt::runtime("{:" + spec + "}"), value);
    else if (integral)
      text = fmt::format("{}", static_cast<std::int64_t>(value));
    else
      text = fmt::format("{:.1f}", value);  // Python's str() of a float like 800.0
    out += name + "=" + text;
    i = close + 1;
  }
  return out;
}

}  // namespace bignlp::train
