#include "bignlp/export/nemo.h"

#include <fmt/format.h>

#include <random>
#include <set>

#include "bignlp/checkpoint/integrity.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/layout.h"
#include "bignlp/checkpoint/partition.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/export/tar.h"
#include "bignlp/export/torch_file.h"
#include "bignlp/export/json_node.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

std::string random_hex32() {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < 4; ++i) s += fmt::format("{:08x}", rd());
  return s;
}

/// The folder of rank (tp, pp) in a .nemo of tp x pp ranks ("" for a single rank).
std::string nemo_rank_folder(int tp, int pp, int tp_rank, int pp_rank) {
  if (tp == 1 && pp == 1) return "";
  if (pp == 1) return fmt::format("mp_rank_{:02d}", tp_rank);
  return fmt::format("tp_rank_{:02d}_pp_rank_{:03d}", tp_rank, pp_rank);
}

const char* const kTokenizerFileKeys[] = {"vocab_file", "merge_file", "model"};

/// Copies shard rows that two padded vocabularies share (a full tensor of another row count).
std::vector<float> repad(std::vector<float> full, const Shape& from, const Shape& to, const std::string& name,
                         const fs::path& where) {
  if (from == to) return full;
  bool rows_only = from.rank() == to.rank() && from.rank() >= 1;
  for (int d = 1; rows_only && d < from.rank(); ++d) rows_only = from[d] == to[d];
  if (!rows_only)
    throw DataError(fmt::format("{}: tensor '{}' has full shape {}, the output layout expects {}", where.string(), name,
                                from.to_string(), to.to_string()));
  std::vector<float> out(static_cast<std::size_t>(to.numel()));
  checkpoint::repad_vocab_rows(TensorView(full.data(), DType::kF32, from), TensorView(out.data(), DType::kF32, to));
  return out;
}

}  // namespace

std::string nemo_target_for_family(const std::string& family) {
  if (family == "gpt") return "nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel";
  if (family == "t5" || family == "mt5")
    return "nemo.collections.nlp.models.language_modeling.megatron_t5_model.MegatronT5Model";
  throw ConfigError(fmt::format("model family '{}' has no NeMo model class known to the .nemo exporter", family));
}

ConversionStats export_nemo(const fs::path& checkpoint, const fs::path& output, const NemoExportOptions& options,
                            const Logger& log) {
  if (fs::exists(output) && !options.overwrite)
    throw ConfigError(fmt::format("{} exists; remove it or pass --overwrite", output.string()));
  const checkpoint::CheckpointTensors source(checkpoint);
  const checkpoint::CheckpointState& meta = source.meta();
  const int tp = options.tensor_model_parallel_size > 0 ? options.tensor_model_parallel_size : meta.tp_size;
  const int pp = options.pipeline_model_parallel_size > 0 ? options.pipeline_model_parallel_size : meta.pp_size;
  checkpoint::CheckpointState out_meta = meta;
  out_meta.model = checkpoint::config_for_tensor_parallel(meta.model, tp);
  out_meta.tp_size = tp;
  out_meta.pp_size = pp;
  out_meta.virtual_pp_size = 1;  // NeMo's rank files here hold one model chunk
  out_meta.has_optimizer_state = false;

  // model_config.yaml
  nlohmann::json cfg = options.model_config.is_object() ? options.model_config
                       : meta.model_config.is_object() ? meta.model_config : meta.model;
  cfg["tensor_model_parallel_size"] = tp;
  cfg["pipeline_model_parallel_size"] = pp;
  if (cfg.contains("virtual_pipeline_model_parallel_size")) cfg["virtual_pipeline_model_parallel_size"] = nullptr;
  if (cfg.contains("model_parallel_size")) cfg["model_parallel_size"] = tp * pp;
  cfg["target"] = nemo_target_for_family(meta.family);
  cfg["nemo_version"] = kNemoVersion;
  std::vector<std::pair<std::string, fs::path>> artifacts;  // archive name, source
  nlohmann::json& tok = cfg["tokenizer"];
  if (!tok.is_object()) tok = nlohmann::json::object();
  for (const auto& [k, v] : meta.tokenizer)
    if (!tok.contains(k)) tok[k] = v;
  for (const char* key : kTokenizerFileKeys) {
    std::string path;
    if (auto it = options.tokenizer_files.find(key); it != options.tokenizer_files.end()) path = it->second;
    else if (tok.contains(key) && tok[key].is_string()) path = tok[key].get<std::string>();
    if (path.empty()) continue;
    if (path.rfind("nemo:", 0) == 0) {
      throw DataError(fmt::format("{}: tokenizer.{} is '{}', a file inside another .nemo; give the file with "
                                  "--{}",
                                  checkpoint.string(), key, path, std::string(key) == "model" ? "tokenizer-model" : key));
    }
    if (!fs::is_regular_file(path))
      throw DataError(fmt::format("tokenizer.{}: file '{}' not found (the checkpoint records it; give another with --{})",
                                  key, path,
                                  std::string(key) == "model" ? "tokenizer-model" : (std::string(key) == "vocab_file" ? "vocab-file" : "merge-file")));
    const std::string name = random_hex32() + "_" + fs::path(path).filename().string();
    artifacts.emplace_back(name, path);
    tok[key] = "nemo:" + name;
    out_meta.tokenizer[key] = path;
  }

  const fs::path parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
  fs::create_directories(parent);
  TempDir scratch((parent / (".tmp-" + output.filename().string() + "-")).string());
  const fs::path tmp_tar = scratch.path() / "archive.tar";
  ConversionStats stats;
  {
    TarWriter tar(tmp_tar);
    tar.add_directory("./");
    tar.add_bytes("./model_config.yaml", config::to_yaml(json_to_node(cfg)));
    for (const auto& [name, path] : artifacts) tar.add_file("./" + name, path);
    nlohmann::json m = nlohmann::json::object();
    {
      const fs::path mdir = scratch.path() / "meta";
      fs::create_directories(mdir);
      checkpoint::write_checkpoint_metadata(mdir, out_meta);
      tar.add_file("./bignlp_metadata.json", mdir / "metadata.json");
    }
    for (int pp_rank = 0; pp_rank < pp; ++pp_rank) {
      for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
        const auto params = checkpoint::shard_parameters(out_meta, tp, pp, tp_rank, pp_rank);
        const checkpoint::LayerRenaming names(params);
        const fs::path rank_file = scratch.path() / "model_weights.ckpt";
        {
          TorchFileWriter w(rank_file, "model_weights");
          std::vector<float> shard;
          for (const auto& p : params) {
            Shape from;
            std::vector<float> full = source.full(p.name, &from);
            full = repad(std::move(full), from, p.full_shape, p.name, checkpoint);
            shard.resize(static_cast<std::size_t>(p.shape.numel()));
            const TensorView sv(shard.data(), DType::kF32, p.shape);
            checkpoint::tp_split(TensorView(full.data(), DType::kF32, p.full_shape), p.split_dim, p.tp_size, p.tp_rank, sv);
            w.add(names.to_local(p.name), sv);
            stats.tensor_bytes += sv.nbytes();
          }
          w.finish();
        }
        const std::string folder = nemo_rank_folder(tp, pp, tp_rank, pp_rank);
        if (!folder.empty()) tar.add_directory("./" + folder + "/");
        tar.add_file(folder.empty() ? "./model_weights.ckpt" : "./" + folder + "/model_weights.ckpt", rank_file);
        fs::remove(rank_file);
      }
    }
    tar.finish();
  }
  stats.file_bytes = fs::file_size(tmp_tar);
  std::error_code ec;
  fs::rename(tmp_tar, output, ec);
  if (ec) throw IoError(fmt::format("cannot move the archive to '{}': {}", output.string(), ec.message()));
  fsync_path(parent);
  log.info("wrote {} ({} family, TP {} x PP {}, {:.1f} MB of tensors)", output.string(), meta.family, tp, pp,
           static_cast<double>(stats.tensor_bytes) / 1e6);
  return stats;
}

namespace {

/// The typed GPT config of a NeMo model_config.yaml: NeMo's defaults for keys it lacks.
nlohmann::json gpt_config_from_nemo(const nlohmann::json& c, std::int64_t vocab_size) {
  auto get = [&](const char* key, nlohmann::json dflt) {
    return c.contains(key) && !c[key].is_null() ? c[key] : dflt;
  };
  nlohmann::json j;
  const std::int64_t hidden = c.at("hidden_size").get<std::int64_t>();
  const int heads = c.at("num_attention_heads").get<int>();
  j["vocab_size"] = vocab_size;
  j["make_vocab_size_divisible_by"] = get("make_vocab_size_divisible_by", 128);
  j["encoder_seq_length"] = get("encoder_seq_length", get("max_position_embeddings", 2048));
  j["max_position_embeddings"] = get("max_position_embeddings", j["encoder_seq_length"]);
  j["num_layers"] = c.at("num_layers");
  j["hidden_size"] = hidden;
  j["ffn_hidden_size"] = get("ffn_hidden_size", 4 * hidden);
  j["num_attention_heads"] = heads;
  j["kv_channels"] = get("kv_channels", hidden / heads);
  j["init_method_std"] = get("init_method_std", 0.02);
  j["use_scaled_init_method"] = get("use_scaled_init_method", true);
  j["hidden_dropout"] = get("hidden_dropout", 0.1);
  j["attention_dropout"] = get("attention_dropout", 0.1);
  j["apply_query_key_layer_scaling"] = get("apply_query_key_layer_scaling", true);
  j["layernorm_epsilon"] = get("layernorm_epsilon", 1e-5);
  j["activation"] = get("activation", "gelu");
  const nlohmann::json prec = get("precision", "32");
  j["precision"] = prec.is_string() ? prec.get<std::string>() : std::to_string(prec.get<int>());
  j["activations_checkpoint_granularity"] = nullptr;
  j["activations_checkpoint_method"] = "uniform";
  j["activations_checkpoint_num_layers"] = 1;
  j["tensor_model_parallel_size"] = get("tensor_model_parallel_size", 1);
  return j;
}

}  // namespace

void import_nemo(const fs::path& nemo, const fs::path& output, const Logger& log) {
  if (fs::exists(output)) throw ConfigError(fmt::format("{} exists; import writes a new checkpoint directory", output.string()));
  if (!fs::is_regular_file(nemo)) throw IoError(fmt::format("{}: no such file", nemo.string()));
  const fs::path parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
  fs::create_directories(parent);
  TempDir unpacked((parent / (".tmp-unpack-" + output.filename().string() + "-")).string());
  extract_tar(nemo, unpacked.path());
  const fs::path cfg_file = unpacked.path() / "model_config.yaml";
  if (!fs::exists(cfg_file)) throw DataError(fmt::format("{}: no model_config.yaml in the archive", nemo.string()));
  const nlohmann::json cfg = node_to_json(config::load_yaml_file(cfg_file));
  if (!cfg.is_object()) throw DataError(fmt::format("{}: model_config.yaml is not a mapping", nemo.string()));
  auto int_key = [&](const char* key) {
    if (!cfg.contains(key) || cfg[key].is_null()) return 1;
    if (!cfg[key].is_number_integer())
      throw DataError(fmt::format("{}: model_config.yaml: {} is not an integer", nemo.string(), key));
    return cfg[key].get<int>();
  };
  const int tp = int_key("tensor_model_parallel_size"), pp = int_key("pipeline_model_parallel_size");
  // Rank files: all present before anything is written.
  for (int pp_rank = 0; pp_rank < pp; ++pp_rank)
    for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
      const std::string folder = nemo_rank_folder(tp, pp, tp_rank, pp_rank);
      const fs::path f = unpacked.path() / folder / "model_weights.ckpt";
      if (!fs::exists(f))
        throw DataError(fmt::format("{}: '{}' is missing (model_config.yaml says TP {} x PP {})", nemo.string(),
                                    (fs::path(".") / folder / "model_weights.ckpt").lexically_normal().string(), tp, pp));
    }
  checkpoint::CheckpointState meta;
  const fs::path meta_file = unpacked.path() / "bignlp_metadata.json";
  // Tokenizer artifacts: "nemo:<name>" -> the unpacked file.
  std::map<std::string, fs::path> artifact_files;
  nlohmann::json tok = cfg.contains("tokenizer") && cfg["tokenizer"].is_object() ? cfg["tokenizer"] : nlohmann::json::object();
  for (const char* key : kTokenizerFileKeys) {
    if (!tok.contains(key) || !tok[key].is_string()) continue;
    std::string v = tok[key].get<std::string>();
    if (v.rfind("nemo:", 0) != 0) continue;
    const fs::path f = unpacked.path() / v.substr(5);
    if (!fs::exists(f))
      throw DataError(fmt::format("{}: tokenizer.{} names '{}', which the archive lacks", nemo.string(), key, v));
    artifact_files[key] = f;
  }
  if (fs::exists(meta_file)) {
    const fs::path d = meta_file.parent_path() / "meta";
    fs::create_directories(d);
    fs::copy_file(meta_file, d / "metadata.json");
    meta = checkpoint::read_checkpoint_metadata(d);
    if (meta.tp_size != tp || meta.pp_size != pp)
      throw DataError(fmt::format("{}: bignlp_metadata.json records TP {} x PP {}, model_config.yaml TP {} x PP {}",
                                  nemo.string(), meta.tp_size, meta.pp_size, tp, pp));
  } else {
    const std::string target = cfg.value("target", "");
    if (target.find("MegatronGPTModel") == std::string::npos)
      throw DataError(fmt::format("{}: model_config.yaml target '{}': importing NeMo's own archives is built for "
                                  "MegatronGPTModel only",
                                  nemo.string(), target));
    meta.family = "gpt";
    std::int64_t vocab = 0;
    if (auto it = artifact_files.find("vocab_file"); it != artifact_files.end() && it->second.extension() == ".json") {
      try {
        vocab = static_cast<std::int64_t>(nlohmann::json::parse(read_file(it->second)).size());
      } catch (const nlohmann::json::exception& e) {
        throw DataError(fmt::format("{}: tokenizer vocab file: {}", nemo.string(), e.what()));
      }
    }
    const fs::path first = unpacked.path() / nemo_rank_folder(tp, pp, 0, 0) / "model_weights.ckpt";
    if (vocab == 0) {  // no vocab file: every embedding row is a token
      TorchFileReader r(first);
      const TorchTensor* e = r.find(checkpoint::kWordEmbeddingName);
      if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", first.string(), checkpoint::kWordEmbeddingName));
      vocab = e->shape[0] * tp;
    }
    try {
      meta.model = gpt_config_from_nemo(cfg, vocab);
      meta.model["tensor_model_parallel_size"] = tp;
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: model_config.yaml: {}", nemo.string(), e.what()));
    }
    meta.tp_size = tp;
    meta.pp_size = pp;
    meta.model_config = cfg;
    meta.model_config.erase("target");
    meta.model_config.erase("nemo_version");
    for (auto it = tok.begin(); it != tok.end(); ++it)
      if (it.value().is_string()) meta.tokenizer[it.key()] = it.value().get<std::string>();
  }
  meta.has_optimizer_state = false;
  meta.weights_dtype = DType::kF32;
  meta.virtual_pp_size = 1;
  StagedDirectory stage(output);
  for (const auto& [key, file] : artifact_files) {
    const std::string name = file.filename().string();
    const std::string plain = name.size() > 33 && name[32] == '_' ? name.substr(33) : name;
    fs::create_directories(stage.path() / "artifacts");
    fs::copy_file(file, stage.path() / "artifacts" / plain, fs::copy_options::overwrite_existing);
    meta.tokenizer[key] = fs::absolute(output / "artifacts" / plain).string();
    if (meta.model_config.is_object() && meta.model_config.contains("tokenizer"))
      meta.model_config["tokenizer"][key] = meta.tokenizer[key];
  }
  for (int pp_rank = 0; pp_rank < pp; ++pp_rank) {
    for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
      const fs::path file = unpacked.path() / nemo_rank_folder(tp, pp, tp_rank, pp_rank) / "model_weights.ckpt";
      const std::string shown = (fs::path(nemo.filename()) / nemo_rank_folder(tp, pp, tp_rank, pp_rank) / "model_weights.ckpt").string();
      std::unique_ptr<TorchFileReader> reader;
      try {
        reader = std::make_unique<TorchFileReader>(file);
      } catch (const DataError& e) {
        throw DataError(fmt::format("{}: {}", nemo.string(), e.what()));
      }
      const auto params = checkpoint::shard_parameters(meta, tp, pp, tp_rank, pp_rank);
      const checkpoint::LayerRenaming names(params);
      std::set<std::string> expected;
      std::vector<std::vector<float>> data;
      data.reserve(params.size());
      SafetensorsWriter w;
      for (const auto& p : params) {
        const std::string local = names.to_local(p.name);
        expected.insert(local);
        const TorchTensor* t = reader->find(local);
        if (t == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", shown, local));
        if (!(t->shape == p.shape))
          throw DataError(fmt::format("{}: tensor '{}' has shape {}, model_config.yaml implies {}", shown, local,
                                      t->shape.to_string(), p.shape.to_string()));
        data.push_back(reader->read_f32(local));
        w.add(p.name, TensorView(data.back().data(), DType::kF32, p.shape));
      }
      for (const auto& t : reader->tensors())
        if (expected.count(t.name) == 0)
          throw DataError(fmt::format("{}: tensor '{}' is not a parameter of the model model_config.yaml describes",
                                      shown, t.name));
      w.set_metadata("format", checkpoint::kFormatName);
      const fs::path shard = stage.path() / checkpoint::checkpoint_shard_name(tp_rank, pp_rank);
      fs::create_directories(shard);
      checkpoint::write_shard_file(w, shard / "model.safetensors");
    }
  }
  checkpoint::write_checkpoint_metadata(stage.path(), meta);
  stage.commit(/*replace=*/false);
  log.info("imported {} ({} family, TP {} x PP {}) into {}", nemo.string(), meta.family, tp, pp, output.string());
}

}  // namespace bignlp::exporting
