#include "bignlp/train/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/ops/ops.h"
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
                     const AdamOptimizer* optimizer, const ops::OpContext& ctx) {
  const fs::path parent = dir.parent_path();
  const fs::path tmp = parent / fmt::format(".tmp-{}-{}", dir.filename().string(), random_suffix());
  std::error_code ec;
  fs::create_directories(tmp / checkpoint_shard_name(0, 0), ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", tmp.string(), ec.message()));
  try {
    const fs::path shard = tmp / checkpoint_shard_name(0, 0);
    std::vector<std::vector<float>> storage;
    storage.reserve(3 * store.params().size());
    {
      SafetensorsWriter w;
      for (const auto& p : store.params()) w.add(p.name, host_view(p.master, storage, ctx));
      w.set_metadata("format", kFormat);
      w.write(shard / "model.safetensors");
    }
    if (optimizer != nullptr) {
      SafetensorsWriter w;
      std::vector<std::string> names;
      for (const auto& p : store.params()) {
        w.add("exp_avg." + p.name,
              host_view(optimizer->exp_avg().slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
        w.add("exp_avg_sq." + p.name,
              host_view(optimizer->exp_avg_sq().slice(0, p.offset, p.numel()).reshape(p.shape), storage, ctx));
      }
      w.write(shard / "optimizer.safetensors");
    }
    storage.clear();
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
    meta["has_optimizer_state"] = optimizer != nullptr;
    write_file_atomic(tmp / "metadata.json", meta.dump(2) + "\n");
    fsync_path(shard);
    fsync_path(tmp);
    rename_directory_atomic(tmp, dir, /*replace=*/true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
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
                     const ops::OpContext& ctx) {
  const CheckpointState meta = read_checkpoint_metadata(dir);
  if (meta.tp_size != 1 || meta.pp_size != 1)
    throw DataError(fmt::format("{}: checkpoint has tensor/pipeline parallel sizes {}/{}; this loader reads 1/1",
                                dir.string(), meta.tp_size, meta.pp_size));
  const fs::path shard = dir / checkpoint_shard_name(0, 0);
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
    for (auto& p : store.params()) {
      load_into(r, "exp_avg." + p.name, optimizer->exp_avg().slice(0, p.offset, p.numel()).reshape(p.shape));
      load_into(r, "exp_avg_sq." + p.name, optimizer->exp_avg_sq().slice(0, p.offset, p.numel()).reshape(p.shape));
    }
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
