#include "bignlp/checkpoint/metadata.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/checkpoint/integrity.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {

void write_checkpoint_metadata(const fs::path& dir, const CheckpointState& state) {
  nlohmann::json meta;
  meta["format"] = kFormatName;
  meta["version"] = kFormatVersion;
  meta["family"] = state.family;
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
  meta["model_config"] = state.model_config;
  meta["precision"] = state.model.is_object() ? state.model.value("precision", std::string("32")) : std::string("32");
  meta["weights_dtype"] = std::string(dtype_name(state.weights_dtype));
  meta["tokenizer"] = state.tokenizer;
  meta["tensor_model_parallel_size"] = state.tp_size;
  meta["pipeline_model_parallel_size"] = state.pp_size;
  meta["virtual_pipeline_model_parallel_size"] = state.virtual_pp_size;
  meta["has_optimizer_state"] = state.has_optimizer_state;
  const auto files = shard_file_sizes(dir);
  if (!files.empty()) {
    meta["files"] = files;
    meta["tensor_checksums"] = kChecksumAlgorithm;  // every writer of shards uses write_shard_file
  }
  write_file_atomic(dir / "metadata.json", meta.dump(2) + "\n");
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
    if (!meta.is_object() || meta.value("format", "") != kFormatName)
      throw DataError(fmt::format("{}: format is '{}', expected '{}'", file.string(),
                                  meta.is_object() ? meta.value("format", "") : std::string(), kFormatName));
    CheckpointState s;
    s.format_version = meta.at("version").get<int>();
    if (s.format_version < 1 || s.format_version > kFormatVersion)
      throw DataError(fmt::format("{}: checkpoint format version {} is not readable here (versions 1 to {}; a newer "
                                  "bignlp wrote it)",
                                  file.string(), s.format_version, kFormatVersion));
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
    // Version 1 knew one family and no model section.
    s.family = meta.value("family", std::string("gpt"));
    s.model = meta.at("model");
    if (!s.model.is_object()) throw DataError(fmt::format("{}: 'model' must be an object", file.string()));
    s.model_config = meta.value("model_config", nlohmann::json());
    s.tokenizer = meta.at("tokenizer").get<std::map<std::string, std::string>>();
    s.tp_size = meta.at("tensor_model_parallel_size").get<int>();
    s.pp_size = meta.at("pipeline_model_parallel_size").get<int>();
    s.virtual_pp_size = meta.value("virtual_pipeline_model_parallel_size", 1);
    const std::string weights = meta.value("weights_dtype", std::string("fp32"));
    s.weights_dtype = parse_dtype(weights);
    if (!is_floating(s.weights_dtype))
      throw DataError(fmt::format("{}: weights_dtype '{}' is not a floating dtype", file.string(), weights));
    s.has_optimizer_state = meta.at("has_optimizer_state").get<bool>();
    if (meta.contains("files")) s.file_sizes = meta.at("files").get<std::map<std::string, std::uint64_t>>();
    if (meta.contains("tensor_checksums")) {
      const std::string algo = meta.at("tensor_checksums").get<std::string>();
      if (algo != kChecksumAlgorithm)
        throw DataError(fmt::format("{}: tensor_checksums '{}' is not one this bignlp checks ('{}')", file.string(),
                                    algo, kChecksumAlgorithm));
      s.tensor_checksums = true;
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed checkpoint metadata: {}", file.string(), e.what()));
  } catch (const UsageError& e) {  // an unknown dtype name
    throw DataError(fmt::format("{}: malformed checkpoint metadata: {}", file.string(), e.what()));
  }
}

}  // namespace bignlp::checkpoint
