#include "bignlp/export/conversion_stage.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/metadata.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/export/json_node.h"
#include "bignlp/export/nemo.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {

fs::path select_checkpoint(const fs::path& folder, const std::string& name) {
  if (!fs::is_directory(folder)) throw DataError(fmt::format("{}: checkpoint folder not found", folder.string()));
  if (name == "latest") {
    auto latest = checkpoint::find_latest_checkpoint(folder);
    if (!latest) throw DataError(fmt::format("{}: no complete checkpoint (checkpoint_name: latest)", folder.string()));
    return *latest;
  }
  std::optional<fs::path> found;
  for (const auto& c : checkpoint::list_checkpoints(folder)) {  // oldest step first
    const std::string n = c.filename().string();
    if (fnmatch(name.c_str(), n.c_str(), 0) == 0 || fnmatch(name.c_str(), (n + ".ckpt").c_str(), 0) == 0) found = c;
  }
  if (!found)
    throw DataError(fmt::format("{}: no complete checkpoint matches checkpoint_name '{}'", folder.string(), name));
  return *found;
}

fs::path run_conversion_stage(const config::ConfigView& cfg, const Logger& log) {
  cfg.mark_used("run");
  const fs::path output_dir = cfg.get<std::string>("run.output_path");
  const std::string file_name = cfg.get<std::string>("run.nemo_file_name");
  if (!file_name.ends_with(".nemo"))
    throw ConfigError(fmt::format("{}: '{}' must end in .nemo", cfg.full_path("run.nemo_file_name"), file_name));
  const fs::path folder = cfg.get<std::string>("model.checkpoint_folder");
  const std::string name = cfg.get_or<std::string>("model.checkpoint_name", "latest");
  const fs::path ckpt = select_checkpoint(folder, name);
  const checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(ckpt);
  const std::string model_type = cfg.get_or<std::string>("model.model_type", "gpt");
  const std::string family_type = meta.family == "gpt" ? "gpt" : (meta.family == "t5" || meta.family == "mt5") ? "t5" : meta.family;
  if (model_type != family_type)
    throw ConfigError(fmt::format("{}: '{}', but checkpoint {} holds a '{}' model", cfg.full_path("model.model_type"),
                                  model_type, ckpt.string(), meta.family));
  NemoExportOptions opt;
  opt.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", meta.tp_size);
  opt.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", meta.pp_size);
  if (opt.tensor_model_parallel_size < 1 || opt.pipeline_model_parallel_size < 1)
    throw ConfigError(fmt::format("{} and {} must be >= 1", cfg.full_path("model.tensor_model_parallel_size"),
                                  cfg.full_path("model.pipeline_model_parallel_size")));
  if (auto mp = cfg.find<int>("model.model_parallel_size");
      mp && *mp != opt.tensor_model_parallel_size * opt.pipeline_model_parallel_size)
    throw ConfigError(fmt::format("{} is {}, but tensor x pipeline parallel size is {} x {}",
                                  cfg.full_path("model.model_parallel_size"), *mp, opt.tensor_model_parallel_size,
                                  opt.pipeline_model_parallel_size));
  if (opt.tensor_model_parallel_size != meta.tp_size || opt.pipeline_model_parallel_size != meta.pp_size)
    log.info("checkpoint {} is TP {} x PP {}; the .nemo is written as TP {} x PP {}", ckpt.string(), meta.tp_size,
             meta.pp_size, opt.tensor_model_parallel_size, opt.pipeline_model_parallel_size);
  for (const auto& [key, tok_key] : {std::pair{"model.vocab_file", "vocab_file"}, std::pair{"model.merge_file", "merge_file"},
                                     std::pair{"model.tokenizer_model", "model"}}) {
    if (auto v = cfg.find<std::string>(key)) opt.tokenizer_files[tok_key] = *v;
  }
  if (auto hp = cfg.find<std::string>("model.hparams_file")) {
    if (!fs::exists(*hp)) throw DataError(fmt::format("{}: hparams file '{}' not found", cfg.full_path("model.hparams_file"), *hp));
    const nlohmann::json root = node_to_json(config::load_yaml_file(*hp));
    if (!root.is_object() || !root.contains("cfg") || !root["cfg"].is_object())
      throw DataError(fmt::format("{}: no 'cfg:' section (a PyTorch Lightning hparams.yaml has one)", *hp));
    nlohmann::json mc = root["cfg"];
    for (const char* key : {"num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads",
                            "max_position_embeddings", "encoder_num_layers", "decoder_num_layers"}) {
      if (mc.contains(key) && meta.model.contains(key) && !mc[key].is_null() && mc[key] != meta.model[key])
        throw DataError(fmt::format("{}: cfg.{} is {}, but checkpoint {} has {}", *hp, key, mc[key].dump(),
                                    ckpt.string(), meta.model[key].dump()));
    }
    if (mc.contains("activations_checkpoint_granularity")) mc["activations_checkpoint_granularity"] = nullptr;
    if (mc.contains("activations_checkpoint_method")) mc["activations_checkpoint_method"] = nullptr;
    if (mc.contains("optim") && mc["optim"].is_object() && mc["optim"].value("name", "") == "distributed_fused_adam")
      mc["optim"]["name"] = "fused_adam";
    opt.model_config = mc;
  }
  cfg.check_all_used("the conversion stage config");
  const fs::path out = output_dir / file_name;
  opt.overwrite = true;  // a rerun of the stage replaces its output (atomically)
  export_nemo(ckpt, out, opt, log);
  return out;
}

}  // namespace bignlp::exporting
