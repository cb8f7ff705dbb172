#include "bignlp/infer/ft_repository.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/partition.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/ops/ops.h"

namespace fs = std::filesystem;

namespace bignlp::infer {
namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// config.ini's [gpt] section: key -> (value, line).
std::map<std::string, std::pair<std::string, int>> read_ini_section(const fs::path& file, const std::string& section) {
  std::ifstream in(file);
  if (!in) throw IoError(fmt::format("{}: cannot open (a FasterTransformer weights folder holds config.ini)", file.string()));
  std::map<std::string, std::pair<std::string, int>> out;
  std::string line, current;
  bool seen = false;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') throw DataError(fmt::format("{}:{}: malformed section header '{}'", file.string(), n, t));
      current = t.substr(1, t.size() - 2);
      seen = seen || current == section;
      continue;
    }
    const auto eq = t.find_first_of("=:");
    if (eq == std::string::npos)
      throw DataError(fmt::format("{}:{}: expected 'key = value', got '{}'", file.string(), n, t));
    if (current.empty()) throw DataError(fmt::format("{}:{}: '{}' outside a section", file.string(), n, t));
    if (current == section) out[lower(trim(t.substr(0, eq)))] = {trim(t.substr(eq + 1)), n};
  }
  if (!seen) throw DataError(fmt::format("{}: no [{}] section (a FasterTransformer GPT config.ini has one)", file.string(), section));
  return out;
}

/// The `default_model_filename` and `parameters` of a config.pbtxt (protobuf text format).
void read_pbtxt(const fs::path& file, FtRepository& r, std::string& default_filename) {
  const std::string text = read_file(file);
  static const std::regex name_re(R"re((?:^|\n)\s*name\s*:\s*"([^"]*)")re");
  static const std::regex file_re(R"re(default_model_filename\s*:\s*"([^"]*)")re");
  static const std::regex param_re(
      R"re(parameters\s*\{\s*key\s*:\s*"([^"]*)"\s*value\s*\{\s*string_value\s*:\s*"([^"]*)"\s*\}\s*\})re");
  std::smatch m;
  if (std::regex_search(text, m, name_re)) r.model_name = m[1];
  if (std::regex_search(text, m, file_re)) default_filename = m[1];
  for (auto it = std::sregex_iterator(text.begin(), text.end(), param_re); it != std::sregex_iterator(); ++it)
    r.parameters[(*it)[1]] = (*it)[2];
}

bool is_version_dir(const fs::path& p) {
  const std::string n = p.filename().string();
  return fs::is_directory(p) && !n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// The raw file `name` of the weights folder as fp32, checked to hold `numel` values.
std::vector<float> read_weights(const FtRepository& r, const std::string& name, std::int64_t numel, const Shape& shape) {
  const fs::path file = r.weights_dir / name;
  if (!fs::is_regular_file(file))
    throw DataError(fmt::format("{}: weight file missing (expected {} {} values)", file.string(), shape.to_string(),
                                dtype_name(r.weight_data_type)));
  const std::string bytes = read_file(file);
  const std::size_t width = r.weight_data_type == DType::kF32 ? 4 : 2;
  if (bytes.size() != static_cast<std::size_t>(numel) * width)
    throw DataError(fmt::format("{}: {} bytes, expected {} ({} {} values; config.ini weight_data_type {})", file.string(),
                                bytes.size(), static_cast<std::size_t>(numel) * width, shape.to_string(),
                                dtype_name(r.weight_data_type), dtype_name(r.weight_data_type)));
  std::vector<float> out(static_cast<std::size_t>(numel));
  const Shape flat{numel};
  ops::copy(ops::OpContext::cpu(), TensorView(const_cast<char*>(bytes.data()), r.weight_data_type, flat),
            TensorView(out.data(), DType::kF32, flat));
  return out;
}

/// The full NeMo tensors of the repository, re-assembled from the rank files.
class Reassembler {
 public:
  explicit Reassembler(const FtRepository& r) : r_(r) {
    h_ = r.head_num * r.size_per_head;
    kv_ = r.size_per_head;
    f_ = r.inter_size;
    t_ = r.tensor_para_size;
    if (r.head_num % t_ != 0 || f_ % t_ != 0)
      throw DataError(fmt::format("{}: tensor_para_size {} does not divide head_num {} and inter_size {}",
                                  (r.weights_dir / "config.ini").string(), t_, r.head_num, f_));
  }

  /// The full tensor of NeMo parameter `name` (global layer index), row-major.
  std::vector<float> full(const std::string& name, Shape& shape) const {
    const std::string lm = "model.language_model.";
    if (name == lm + "embedding.word_embeddings.weight" || name == "model.word_embeddings.weight") {
      shape = Shape{r_.padded_vocab, h_};
      return read_weights(r_, "model.wte.bin", shape.numel(), shape);
    }
    if (name == lm + "embedding.position_embeddings.weight") {
      shape = Shape{r_.max_pos_seq_len, h_};
      return read_weights(r_, "model.wpe.bin", shape.numel(), shape);
    }
    if (name == lm + "encoder.final_layernorm.weight" || name == lm + "encoder.final_layernorm.bias") {
      shape = Shape{h_};
      return read_weights(r_, "model.final_layernorm." + name.substr(name.rfind('.') + 1) + ".bin", h_, shape);
    }
    static const std::regex layer_re(R"(model\.language_model\.encoder\.layers\.(\d+)\.(.+))");
    std::smatch m;
    if (!std::regex_match(name, m, layer_re))
      throw DataError(fmt::format("{}: the FasterTransformer layout has no file for parameter '{}'",
                                  r_.weights_dir.string(), name));
    const int l = std::stoi(m[1]);
    const std::string rest = m[2];
    const std::string out = fmt::format("model.layers.{}.", l);
    for (const char* n : {"input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight",
                          "post_attention_layernorm.bias"})
      if (rest == n) {
        shape = Shape{h_};
        return read_weights(r_, out + n + ".bin", h_, shape);
      }
    if (rest == "self_attention.dense.bias" || rest == "mlp.dense_4h_to_h.bias") {
      shape = Shape{h_};
      return read_weights(r_, out + (rest[0] == 's' ? "attention.dense.bias" : "mlp.dense_4h_to_h.bias") + ".bin", h_,
                          shape);
    }
    const std::int64_t nl = h_ / t_;  // attention width per rank (heads/T whole heads)
    const std::int64_t hl = r_.head_num / t_;
    if (rest == "self_attention.query_key_value.weight" || rest == "self_attention.query_key_value.bias") {
      const bool weight = rest.back() == 't';
      shape = weight ? Shape{3 * h_, h_} : Shape{3 * h_};
      std::vector<float> full(static_cast<std::size_t>(shape.numel()));
      for (int rank = 0; rank < t_; ++rank) {
        const std::string file =
            out + fmt::format("attention.query_key_value.{}.{}.bin", weight ? "weight" : "bias", rank);
        const Shape fs = weight ? (r_.fused_qkv ? Shape{h_, 3, nl} : Shape{3, h_, nl}) : Shape{3, nl};
        const std::vector<float> part = read_weights(r_, file, fs.numel(), fs);
        for (int j = 0; j < 3; ++j)
          for (std::int64_t n = 0; n < nl; ++n) {
            const std::int64_t head = rank * hl + n / kv_;
            const std::int64_t row = (head * 3 + j) * kv_ + n % kv_;
            if (!weight) {
              full[static_cast<std::size_t>(row)] = part[static_cast<std::size_t>(j * nl + n)];
              continue;
            }
            for (std::int64_t i = 0; i < h_; ++i) {
              const std::int64_t at = r_.fused_qkv ? (i * 3 + j) * nl + n : (j * h_ + i) * nl + n;
              full[static_cast<std::size_t>(row * h_ + i)] = part[static_cast<std::size_t>(at)];
            }
          }
      }
      return full;
    }
    if (rest == "self_attention.dense.weight") {  // files [h/T, h] (rows of the transposed [h_in, h_out])
      shape = Shape{h_, h_};
      return transpose_of_rows(out + "attention.dense.weight", h_, h_);
    }
    if (rest == "mlp.dense_4h_to_h.weight") {  // files [f/T, h]
      shape = Shape{h_, f_};
      return transpose_of_rows(out + "mlp.dense_4h_to_h.weight", f_, h_);
    }
    if (rest == "mlp.dense_h_to_4h.weight") {  // files [h, f/T]: columns of [h, f]; NeMo [f, h]
      shape = Shape{f_, h_};
      std::vector<float> full(static_cast<std::size_t>(f_ * h_));
      const std::int64_t fl = f_ / t_;
      for (int rank = 0; rank < t_; ++rank) {
        const std::vector<float> part =
            read_weights(r_, out + fmt::format("mlp.dense_h_to_4h.weight.{}.bin", rank), h_ * fl, Shape{h_, fl});
        for (std::int64_t i = 0; i < h_; ++i)
          for (std::int64_t c = 0; c < fl; ++c)
            full[static_cast<std::size_t>((rank * fl + c) * h_ + i)] = part[static_cast<std::size_t>(i * fl + c)];
      }
      return full;
    }
    if (rest == "mlp.dense_h_to_4h.bias") {
      shape = Shape{f_};
      std::vector<float> full;
      for (int rank = 0; rank < t_; ++rank) {
        const std::vector<float> part =
            read_weights(r_, out + fmt::format("mlp.dense_h_to_4h.bias.{}.bin", rank), f_ / t_, Shape{f_ / t_});
        full.insert(full.end(), part.begin(), part.end());
      }
      return full;
    }
    throw DataError(fmt::format("{}: the FasterTransformer layout has no file for parameter '{}'",
                                r_.weights_dir.string(), name));
  }

 private:
  /// NeMo [out, in] from rank files [in/T, out] holding consecutive row blocks of [in, out].
  std::vector<float> transpose_of_rows(const std::string& stem, std::int64_t in, std::int64_t outw) const {
    std::vector<float> full(static_cast<std::size_t>(in * outw));
    const std::int64_t il = in / t_;
    for (int rank = 0; rank < t_; ++rank) {
      const std::vector<float> part = read_weights(r_, fmt::format("{}.{}.bin", stem, rank), il * outw, Shape{il, outw});
      for (std::int64_t i = 0; i < il; ++i)
        for (std::int64_t o = 0; o < outw; ++o)
          full[static_cast<std::size_t>(o * in + rank * il + i)] = part[static_cast<std::size_t>(i * outw + o)];
    }
    return full;
  }

  const FtRepository& r_;
  std::int64_t h_ = 0, kv_ = 0, f_ = 0;
  int t_ = 1;
};

}  // namespace

FtRepository open_ft_repository(const fs::path& dir, const std::string& model_name) {
  if (!fs::is_directory(dir)) throw IoError(fmt::format("{}: not a directory (a FasterTransformer model repository)", dir.string()));
  FtRepository r;
  fs::path model_dir;
  if (fs::exists(dir / "config.ini")) {
    r.weights_dir = dir;
  } else if (fs::exists(dir / "config.pbtxt")) {
    model_dir = dir;
  } else {
    std::vector<fs::path> models;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && fs::exists(e.path() / "config.pbtxt")) models.push_back(e.path());
    std::sort(models.begin(), models.end());
    if (!model_name.empty() && fs::exists(dir / model_name / "config.pbtxt")) {
      model_dir = dir / model_name;
    } else if (models.size() == 1) {  // a --model-name that names none: the name it is served under
      model_dir = models[0];
    } else {
      std::vector<std::string> names;
      for (const auto& m : models) names.push_back(m.filename().string());
      throw DataError(fmt::format("{}: {}; the models here: {}", dir.string(),
                                  model_name.empty() ? std::string("holds no single model (config.pbtxt) to load; name one")
                                                     : fmt::format("has no model '{}'", model_name),
                                  names.empty() ? std::string("none") : join(names, ", ")));
    }
  }
  std::string default_filename;
  if (!model_dir.empty()) {
    r.model_dir = model_dir;
    r.model_name = model_dir.filename().string();
    read_pbtxt(model_dir / "config.pbtxt", r, default_filename);
    std::vector<fs::path> versions;
    for (const auto& e : fs::directory_iterator(model_dir))
      if (is_version_dir(e.path())) versions.push_back(e.path());
    if (versions.empty())
      throw DataError(fmt::format("{}: no version directory (e.g. 1/) beside config.pbtxt", model_dir.string()));
    const fs::path version = *std::max_element(versions.begin(), versions.end(), [](const fs::path& a, const fs::path& b) {
      return std::stoll(a.filename().string()) < std::stoll(b.filename().string());
    });
    if (!default_filename.empty() && fs::exists(version / default_filename / "config.ini")) {
      r.weights_dir = version / default_filename;
    } else {
      std::vector<fs::path> folders;
      for (const auto& e : fs::directory_iterator(version))
        if (e.is_directory() && bignlp::ends_with(e.path().filename().string(), "-gpu") && fs::exists(e.path() / "config.ini"))
          folders.push_back(e.path());
      if (folders.size() != 1)
        throw DataError(fmt::format("{}: {} weight folders (<T>-gpu with config.ini){}; config.pbtxt "
                                    "default_model_filename '{}' names none of them",
                                    version.string(), folders.size(), folders.empty() ? "" : ", expected one",
                                    default_filename));
      r.weights_dir = folders[0];
    }
  }
  if (r.model_name.empty()) r.model_name = r.weights_dir.lexically_normal().filename().string();
  r.fused_qkv = !bignlp::starts_with(r.weights_dir.filename().string(), "unfusedQKV-");
  const fs::path ini = r.weights_dir / "config.ini";
  const auto kv = read_ini_section(ini, "gpt");
  auto where = [&](const std::string& key) {
    auto it = kv.find(key);
    return it == kv.end() ? ini.string() : fmt::format("{}:{}", ini.string(), it->second.second);
  };
  auto get = [&](const std::string& key) -> const std::string& {
    auto it = kv.find(key);
    if (it == kv.end()) throw DataError(fmt::format("{}: [gpt] {} is missing", ini.string(), key));
    return it->second.first;
  };
  auto get_int = [&](const std::string& key, std::optional<std::int64_t> fallback = std::nullopt) -> std::int64_t {
    if (!kv.contains(key) && fallback) return *fallback;
    const std::string& v = get(key);
    std::size_t used = 0;
    std::int64_t x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || v.empty()) throw DataError(fmt::format("{}: [gpt] {} = '{}' is not an integer", where(key), key, v));
    return x;
  };
  auto get_bool = [&](const std::string& key, bool fallback) {
    if (!kv.contains(key)) return fallback;
    const std::string v = lower(get(key));
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return false;
    throw DataError(fmt::format("{}: [gpt] {} = '{}' is not a boolean", where(key), key, get(key)));
  };
  r.tensor_para_size = static_cast<int>(get_int("tensor_para_size"));
  r.head_num = get_int("head_num");
  r.size_per_head = get_int("size_per_head");
  r.inter_size = get_int("inter_size");
  r.num_layer = static_cast<int>(get_int("num_layer"));
  r.max_pos_seq_len = get_int("max_pos_seq_len");
  r.padded_vocab = get_int("vocab_size");
  r.start_id = get_int("start_id", 50256);
  r.end_id = get_int("end_id", 50256);
  const std::pair<const char*, std::int64_t> sizes[] = {
      {"tensor_para_size", r.tensor_para_size}, {"head_num", r.head_num}, {"size_per_head", r.size_per_head},
      {"inter_size", r.inter_size}, {"num_layer", r.num_layer}, {"max_pos_seq_len", r.max_pos_seq_len},
      {"vocab_size", r.padded_vocab}};
  for (const auto& [key, value] : sizes)
    if (value < 1) throw DataError(fmt::format("{}: [gpt] {} = {} must be >= 1", where(key), key, value));
  {
    // FT matches the type by substring; anything else means fp32.
    const std::string w = kv.contains("weight_data_type") ? get("weight_data_type") : "fp32";
    if (w.find("bf16") != std::string::npos)
      throw DataError(fmt::format("{}: [gpt] weight_data_type = {}: bf16 weight files are not read here (fp32, fp16)",
                                  where("weight_data_type"), w));
    r.weight_data_type = w.find("fp16") != std::string::npos ? DType::kF16 : DType::kF32;
  }
  if (kv.contains("layernorm_eps")) {
    try {
      r.layernorm_eps = std::stof(get("layernorm_eps"));
    } catch (const std::exception&) {
      throw DataError(fmt::format("{}: [gpt] layernorm_eps = '{}' is not a number", where("layernorm_eps"),
                                  get("layernorm_eps")));
    }
  }
  // What the GPT family cannot be told: refused by key.
  auto refuse_unless = [&](bool ok, const std::string& key, const std::string& why) {
    if (!ok) throw DataError(fmt::format("{}: [gpt] {} = {}: {}", where(key), key, get(key), why));
  };
  if (kv.contains("layernorm_type"))
    refuse_unless(lower(get("layernorm_type")) == "pre_layernorm", "layernorm_type", "only pre_layernorm GPT blocks load");
  if (kv.contains("activation_type"))
    refuse_unless(lower(get("activation_type")) == "gelu", "activation_type", "only Gelu loads");
  if (kv.contains("has_positional_encoding"))
    refuse_unless(get_bool("has_positional_encoding", true), "has_positional_encoding", "learned positions are required");
  if (kv.contains("has_pre_decoder_layernorm"))
    refuse_unless(!get_bool("has_pre_decoder_layernorm", false), "has_pre_decoder_layernorm", "not part of the GPT family");
  if (kv.contains("has_post_decoder_layernorm"))
    refuse_unless(get_bool("has_post_decoder_layernorm", true), "has_post_decoder_layernorm", "the final LayerNorm is required");
  if (kv.contains("use_attention_linear_bias"))
    refuse_unless(!get_bool("use_attention_linear_bias", false), "use_attention_linear_bias", "ALiBi is not supported");
  if (kv.contains("has_adapters")) refuse_unless(!get_bool("has_adapters", false), "has_adapters", "adapters are not supported");
  if (kv.contains("prompt_learning_type"))
    refuse_unless(get_int("prompt_learning_type") == 0, "prompt_learning_type", "prompt tables are not loaded");
  if (kv.contains("num_tasks")) refuse_unless(get_int("num_tasks") == 0, "num_tasks", "prompt tables are not loaded");
  if (kv.contains("model_name"))
    refuse_unless(lower(get("model_name")).find("gpt") != std::string::npos || lower(get("model_name")).empty(),
                  "model_name", "not a GPT model");
  if (fs::exists(r.weights_dir / "model.lm_head.weight.bin"))
    throw DataError(fmt::format("{}: a separate LM head is not supported (the GPT family ties it to model.wte.bin)",
                                (r.weights_dir / "model.lm_head.weight.bin").string()));
  if (auto it = r.parameters.find("int8_mode"); it != r.parameters.end() && it->second != "0")
    throw DataError(fmt::format("{}: parameters int8_mode = \"{}\": int8 weight-only inference is not built; export "
                                "with int8_mode 0",
                                (r.model_dir / "config.pbtxt").string(), it->second));
  if (auto it = r.parameters.find("data_type"); it != r.parameters.end() && it->second != "fp32" &&
                                                it->second != "fp16" && it->second != "bf16")
    throw DataError(fmt::format("{}: parameters data_type = \"{}\": expected fp32, fp16 or bf16",
                                (r.model_dir / "config.pbtxt").string(), it->second));
  return r;
}

std::unique_ptr<data::Tokenizer> load_ft_tokenizer(const FtRepository& r) {
  data::TokenizerSpec spec;
  if (fs::exists(r.weights_dir / "vocab.json") && fs::exists(r.weights_dir / "merges.txt")) {
    spec.library = "megatron";
    spec.type = "GPT2BPETokenizer";
    spec.vocab_file = r.weights_dir / "vocab.json";
    spec.merge_file = r.weights_dir / "merges.txt";
  } else if (fs::exists(r.weights_dir / "tokenizer.model")) {
    spec.library = "sentencepiece";
    spec.model_file = r.weights_dir / "tokenizer.model";
  } else {
    return nullptr;
  }
  try {
    return data::load_tokenizer(spec);
  } catch (const Error& e) {
    throw DataError(fmt::format("{}: the tokenizer files cannot be loaded: {}", r.weights_dir.string(), e.what()));
  }
}

std::optional<model::Precision> ft_data_type(const FtRepository& r) {
  auto it = r.parameters.find("data_type");
  if (it == r.parameters.end()) return std::nullopt;
  return model::parse_precision(it->second);
}

model::GptConfig ft_gpt_config(const FtRepository& r, std::int64_t vocab_size, int tp, model::Precision precision) {
  model::GptConfig c;
  c.vocab_size = vocab_size;
  // The padded rows of the file when the model's TP divides them (the same Vp), else the usual 128.
  c.make_vocab_size_divisible_by = r.padded_vocab % tp == 0 ? r.padded_vocab / tp : 128;
  c.seq_length = r.max_pos_seq_len;
  c.max_position_embeddings = r.max_pos_seq_len;
  c.num_layers = r.num_layer;
  c.hidden_size = r.head_num * r.size_per_head;
  c.ffn_hidden_size = r.inter_size;
  c.num_attention_heads = static_cast<int>(r.head_num);
  c.kv_channels = r.size_per_head;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.layernorm_epsilon = r.layernorm_eps;
  c.activation = ops::GeluApprox::kTanh;
  c.precision = precision;
  c.tensor_model_parallel_size = tp;
  return c;
}

std::unique_ptr<model::Model> load_model_from_ft_repository(const FtRepository& r, const ops::OpContext& ctx,
                                                            std::optional<model::Precision> precision,
                                                            const parallel::ParallelContext& parallel,
                                                            const model::ModelFamilyRegistry& registry) {
  std::int64_t vocab = r.padded_vocab;
  if (const auto tok = load_ft_tokenizer(r)) {
    vocab = tok->vocab_size();
    if (vocab > r.padded_vocab)
      throw DataError(fmt::format("{}: the tokenizer has {} ids, config.ini vocab_size (the embedding rows) only {}",
                                  r.weights_dir.string(), vocab, r.padded_vocab));
  }
  const model::Precision p = precision ? *precision : ft_data_type(r).value_or(model::Precision::kFp32);
  const model::GptConfig c = ft_gpt_config(r, vocab, parallel.tp_size(), p);
  auto m = registry.build("gpt", nlohmann::json(c), ctx, parallel);
  const Reassembler full(r);
  model::ParameterStore& store = m->parameters();
  for (auto& param : store.params()) {
    Shape shape;
    std::vector<float> data = full.full(param.name, shape);
    const bool vocab_rows = param.name == "model.language_model.embedding.word_embeddings.weight" ||
                            param.name == "model.word_embeddings.weight";
    Shape want = checkpoint::tp_full_shape(param.shape, param.partition_dim, param.tp_size);
    if (vocab_rows && !(want == shape)) {  // the model pads the vocabulary for its own TP size
      std::vector<float> repadded(static_cast<std::size_t>(want.numel()));
      checkpoint::repad_vocab_rows(TensorView(data.data(), DType::kF32, shape),
                                   TensorView(repadded.data(), DType::kF32, want));
      data = std::move(repadded);
      shape = want;
    }
    if (!(want == shape))
      throw DataError(fmt::format("{}: parameter '{}' re-assembles to {}, the model expects {}", r.weights_dir.string(),
                                  param.name, shape.to_string(), want.to_string()));
    if (param.partition_dim < 0 || param.tp_size == 1) {
      store.assign(ctx, param, TensorView(data.data(), DType::kF32, shape));
    } else {
      std::vector<float> shard(static_cast<std::size_t>(param.numel()));
      checkpoint::tp_split(TensorView(data.data(), DType::kF32, shape), param.partition_dim, param.tp_size,
                           param.tp_rank, TensorView(shard.data(), DType::kF32, param.shape));
      store.assign(ctx, param, TensorView(shard.data(), DType::kF32, param.shape));
    }
  }
  return m;
}

InferenceModel load_inference_model(const fs::path& checkpoint, const fs::path& model_repo,
                                    const std::string& repo_model_name, const ops::OpContext& ctx,
                                    std::optional<model::Precision> precision,
                                    const parallel::ParallelContext& parallel) {
  if (checkpoint.empty() == model_repo.empty())
    throw UsageError("give either --checkpoint (a bignlp checkpoint) or --model-repo (a FasterTransformer repository)");
  InferenceModel out;
  auto tokenizer_end = [&]() -> std::optional<std::int32_t> {
    if (!out.tokenizer) return std::nullopt;
    if (out.tokenizer->special_tokens().eod) return *out.tokenizer->special_tokens().eod;
    if (out.tokenizer->special_tokens().eos) return *out.tokenizer->special_tokens().eos;
    return std::nullopt;
  };
  if (!model_repo.empty()) {
    const FtRepository repo = open_ft_repository(model_repo, repo_model_name);
    out.model = load_model_from_ft_repository(repo, ctx, precision, parallel);
    out.tokenizer = load_ft_tokenizer(repo);
    out.end_id = repo.end_id >= 0 && repo.end_id < out.model->vocab_size() ? std::optional<std::int32_t>(
                                                                                   static_cast<std::int32_t>(repo.end_id))
                                                                             : tokenizer_end();
    out.name = repo.model_name;
    out.source = fmt::format("FasterTransformer repository {} ({}, {} weights, tensor_para_size {})",
                             model_repo.string(), repo.weights_dir.string(), dtype_name(repo.weight_data_type),
                             repo.tensor_para_size);
    return out;
  }
  if (parallel.tp_size() * parallel.pp_size() > 1) {
    checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(checkpoint);
    if (precision) meta.model["precision"] = model::precision_name(*precision);
    const auto registry = model::ModelFamilyRegistry::builtin();
    out.model = registry.build(meta.family, meta.model, ctx, parallel);
    checkpoint::load_checkpoint(checkpoint, out.model->parameters(), nullptr, ctx, parallel);
  } else {
    out.model = checkpoint::load_model_from_checkpoint(checkpoint, ctx, precision);
  }
  out.tokenizer = load_checkpoint_tokenizer(checkpoint);
  out.end_id = tokenizer_end();
  out.name = checkpoint.lexically_normal().filename().string();
  if (out.name.empty()) out.name = checkpoint.lexically_normal().parent_path().filename().string();
  out.source = fmt::format("checkpoint {}", checkpoint.string());
  return out;
}

}  // namespace bignlp::infer
