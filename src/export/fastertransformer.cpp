#include "bignlp/export/fastertransformer.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "bignlp/checkpoint/layout.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/ops/ops.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

/// Python's str() of a float as configparser writes it ("1e-05", "0.1", "1.0"); the config holds
/// fp32 values, so the shortest fp32 representation (1e-05, not 9.999999747378752e-06).
std::string py_float(double v) {
  std::string s = fmt::format("{}", static_cast<float>(v));
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

struct Shape2 {
  std::int64_t rows, cols;
};

/// Writes `data` (fp32, row-major) as a raw file of `dtype`.
void write_raw(const fs::path& file, const std::vector<float>& data, DType dtype) {
  if (dtype == DType::kF32) {
    write_file_atomic(file, std::string_view(reinterpret_cast<const char*>(data.data()), data.size() * 4));
    return;
  }
  std::vector<std::uint16_t> half(data.size());
  const Shape s{static_cast<std::int64_t>(data.size())};
  ops::copy(ops::OpContext::cpu(), TensorView(const_cast<float*>(data.data()), DType::kF32, s),
            TensorView(half.data(), dtype, s));
  write_file_atomic(file, std::string_view(reinterpret_cast<const char*>(half.data()), half.size() * 2));
}

/// out[c][r] = in[r][c] for a (rows, cols) matrix.
std::vector<float> transpose(const std::vector<float>& in, std::int64_t rows, std::int64_t cols) {
  std::vector<float> out(in.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) out[static_cast<std::size_t>(c * rows + r)] = in[static_cast<std::size_t>(r * cols + c)];
  return out;
}

/// Rows [r0, r0 + n) of a (rows, cols) matrix.
std::vector<float> row_block(const std::vector<float>& in, std::int64_t cols, std::int64_t r0, std::int64_t n) {
  return std::vector<float>(in.begin() + r0 * cols, in.begin() + (r0 + n) * cols);
}

/// Columns [c0, c0 + n) of a (rows, cols) matrix.
std::vector<float> col_block(const std::vector<float>& in, std::int64_t rows, std::int64_t cols, std::int64_t c0,
                             std::int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(rows * n));
  for (std::int64_t r = 0; r < rows; ++r)
    std::copy(in.begin() + r * cols + c0, in.begin() + r * cols + c0 + n, out.begin() + r * n);
  return out;
}

std::string ids_of_vocab(const nlohmann::json& tokenizer_vocab, std::int64_t& start, std::int64_t& end) {
  start = end = 50256;
  if (tokenizer_vocab.is_object() && tokenizer_vocab.contains("<|endoftext|>"))
    start = end = tokenizer_vocab["<|endoftext|>"].get<std::int64_t>();
  return {};
}

}  // namespace

std::string ft_weights_folder(const FtExportOptions& o) {
  return fmt::format("{}{}-gpu", o.fused_qkv ? "" : "unfusedQKV-", o.tensor_para_size);
}

std::string ft_config_ini(const nlohmann::json& c, std::int64_t padded_vocab, int tp, DType wdt, std::int64_t start_id,
                          std::int64_t end_id) {
  const int heads = c.at("num_attention_heads").get<int>();
  const std::int64_t kv = c.contains("kv_channels") && !c["kv_channels"].is_null() ? c["kv_channels"].get<std::int64_t>()
                                                                                 : c.at("hidden_size").get<std::int64_t>() / heads;
  std::string s = "[gpt]\n";
  s += "model_name = gpt\n";
  s += fmt::format("tensor_para_size = {}\n", tp);
  s += fmt::format("head_num = {}\n", heads);
  s += fmt::format("size_per_head = {}\n", kv);
  s += fmt::format("inter_size = {}\n", c.at("ffn_hidden_size").get<std::int64_t>());
  s += fmt::format("num_layer = {}\n", c.at("num_layers").get<int>());
  s += fmt::format("max_pos_seq_len = {}\n", c.at("max_position_embeddings").get<std::int64_t>());
  s += fmt::format("weight_data_type = {}\n", wdt == DType::kF16 ? "fp16" : "fp32");
  s += fmt::format("vocab_size = {}\n", padded_vocab);
  s += fmt::format("start_id = {}\n", start_id);
  s += fmt::format("end_id = {}\n", end_id);
  // Not written by FT's NeMo converter (FT then assumes 1e-6); written here so FT normalises like training.
  s += fmt::format("layernorm_eps = {}\n", py_float(c.value("layernorm_epsilon", 1e-5)));
  s += "\n";
  return s;
}

std::string ft_config_pbtxt(const FtExportOptions& o, const fs::path& checkpoint_path) {
  struct In {
    const char* name;
    const char* type;
    std::vector<int> dims;
    bool reshape;
    bool optional;
    bool ragged;
  };
  const std::vector<In> inputs = {
      {"input_ids", "TYPE_UINT32", {-1}, false, false, true},
      {"input_lengths", "TYPE_UINT32", {1}, true, false, false},
      {"request_output_len", "TYPE_UINT32", {-1}, false, false, false},
      {"runtime_top_k", "TYPE_UINT32", {1}, true, true, false},
      {"runtime_top_p", "TYPE_FP32", {1}, true, true, false},
      {"beam_search_diversity_rate", "TYPE_FP32", {1}, true, true, false},
      {"temperature", "TYPE_FP32", {1}, true, true, false},
      {"len_penalty", "TYPE_FP32", {1}, true, true, false},
      {"repetition_penalty", "TYPE_FP32", {1}, true, true, false},
      {"random_seed", "TYPE_UINT64", {1}, true, true, false},
      {"is_return_log_probs", "TYPE_BOOL", {1}, true, true, false},
      {"is_return_context_embeddings", "TYPE_BOOL", {1}, true, true, false},
      {"beam_width", "TYPE_UINT32", {1}, true, true, false},
      {"start_id", "TYPE_UINT32", {1}, true, true, false},
      {"end_id", "TYPE_UINT32", {1}, true, true, false},
      {"stop_words_list", "TYPE_INT32", {2, -1}, false, true, false},
      {"bad_words_list", "TYPE_INT32", {2, -1}, false, true, false},
      {"prompt_learning_task_name_ids", "TYPE_UINT32", {1}, true, true, false},
      {"request_prompt_embedding", "TYPE_FP16", {-1, -1}, false, true, false},
      {"request_prompt_lengths", "TYPE_UINT32", {1}, true, true, false},
      {"request_prompt_type", "TYPE_UINT32", {1}, true, true, false},
      {"top_p_decay", "TYPE_FP32", {1}, true, true, false},
      {"top_p_min", "TYPE_FP32", {1}, true, true, false},
      {"top_p_reset_ids", "TYPE_UINT32", {1}, true, true, false},
  };
  struct Out {
    const char* name;
    const char* type;
    std::vector<int> dims;
  };
  const std::vector<Out> outputs = {{"output_ids", "TYPE_UINT32", {-1, -1}},
                                    {"sequence_length", "TYPE_UINT32", {-1}},
                                    {"response_input_lengths", "TYPE_INT32", {-1}},
                                    {"cum_log_probs", "TYPE_FP32", {-1}},
                                    {"output_log_probs", "TYPE_FP32", {-1, -1}},
                                    {"context_embeddings", "TYPE_FP32", {-1, -1}}};
  // ModelConfig field numbers: name 1, max_batch_size 4, input 5, output 6, instance_group 7,
  // default_model_filename 8, dynamic_batching 11, parameters 14, backend 17,
  // model_transaction_policy 19, batch_input 20.
  std::string s;
  s += fmt::format("name: \"{}\"\n", o.model_name);
  s += fmt::format("max_batch_size: {}\n", o.max_batch_size);
  for (const In& in : inputs) {
    s += "input {\n";
    s += fmt::format("  name: \"{}\"\n  data_type: {}\n", in.name, in.type);
    for (int d : in.dims) s += fmt::format("  dims: {}\n", d);
    if (in.reshape) s += "  reshape {\n  }\n";
    if (in.ragged) s += "  allow_ragged_batch: true\n";
    if (in.optional) s += "  optional: true\n";
    s += "}\n";
  }
  for (const Out& out : outputs) {
    s += "output {\n";
    s += fmt::format("  name: \"{}\"\n  data_type: {}\n", out.name, out.type);
    for (int d : out.dims) s += fmt::format("  dims: {}\n", d);
    s += "}\n";
  }
  s += "instance_group {\n  count: 1\n  kind: KIND_CPU\n}\n";
  s += fmt::format("default_model_filename: \"{}\"\n", ft_weights_folder(o));
  s += "dynamic_batching {\n  max_queue_delay_microseconds: 50000\n}\n";
  const std::map<std::string, std::string> params = {
      {"tensor_para_size", std::to_string(o.tensor_para_size)},
      {"pipeline_para_size", std::to_string(o.pipeline_para_size)},
      {"data_type", o.data_type},
      {"model_type", "GPT"},
      {"model_checkpoint_path", checkpoint_path.string()},
      {"int8_mode", o.int8_mode ? "1" : "0"},
      {"enable_custom_all_reduce", o.enable_custom_all_reduce ? "1" : "0"}};
  for (const auto& [k, v] : params)  // sorted by key
    s += fmt::format("parameters {{\n  key: \"{}\"\n  value {{\n    string_value: \"{}\"\n  }}\n}}\n", k, v);
  s += "backend: \"fastertransformer\"\n";
  s += "model_transaction_policy {\n}\n";
  s += "batch_input {\n  kind: BATCH_ITEM_SHAPE\n  target_name: \"input_ids_item_shape\"\n  data_type: TYPE_INT32\n"
       "  source_input: \"input_ids\"\n}\n";
  return s;
}

void export_fastertransformer(const fs::path& checkpoint, const fs::path& repo, const FtExportOptions& o,
                              const Logger& log) {
  const fs::path model_dir = repo / o.model_name;
  if (fs::exists(model_dir) && !o.overwrite)
    throw ConfigError(fmt::format("{} exists; remove it or pass --overwrite (export writes a new model directory)",
                                  model_dir.string()));
  if (o.weight_data_type != DType::kF32 && o.weight_data_type != DType::kF16)
    throw ConfigError(fmt::format("weight_data_type must be fp32 or fp16, got {}", dtype_name(o.weight_data_type)));
  if (o.data_type != "fp32" && o.data_type != "fp16" && o.data_type != "bf16")
    throw ConfigError(fmt::format("data_type must be fp32, fp16 or bf16, got '{}'", o.data_type));
  if (o.tensor_para_size < 1 || o.pipeline_para_size < 1 || o.max_batch_size < 1 || o.processes < 1)
    throw ConfigError("tensor_para_size, pipeline_para_size, max_batch_size and processes must be >= 1");
  const checkpoint::CheckpointTensors src(checkpoint);
  const auto& meta = src.meta();
  if (meta.family != "gpt")
    throw ConfigError(fmt::format("{}: the FasterTransformer export writes the GPT layout; this checkpoint holds a "
                                  "'{}' model",
                                  checkpoint.string(), meta.family));
  const nlohmann::json& c = meta.model;
  const int T = o.tensor_para_size;
  const int L = c.at("num_layers").get<int>();
  const int heads = c.at("num_attention_heads").get<int>();
  const std::int64_t h = c.at("hidden_size").get<std::int64_t>();
  const std::int64_t f = c.at("ffn_hidden_size").get<std::int64_t>();
  const std::int64_t kv = c.contains("kv_channels") && !c["kv_channels"].is_null() ? c["kv_channels"].get<std::int64_t>() : h / heads;
  if (heads % T != 0 || f % T != 0)
    throw ConfigError(fmt::format("inference tensor_para_size {} must divide the {} attention heads and the FFN size {}",
                                  T, heads, f));
  const std::int64_t ha = heads * kv, hl = heads / T;  // attention width, heads per rank
  std::int64_t start_id = 50256, end_id = 50256;
  nlohmann::json vocab_json;
  if (auto it = meta.tokenizer.find("vocab_file"); it != meta.tokenizer.end() && fs::path(it->second).extension() == ".json" &&
                                                  fs::exists(it->second)) {
    try {
      vocab_json = nlohmann::json::parse(read_file(it->second));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: {}", it->second, e.what()));
    }
  }
  ids_of_vocab(vocab_json, start_id, end_id);

  StagedDirectory stage(model_dir);
  const fs::path wdir_rel = fs::path("1") / ft_weights_folder(o);
  const fs::path wdir = stage.path() / wdir_rel;
  fs::create_directories(wdir);
  const DType wdt = o.weight_data_type;
  auto put = [&](const std::string& name, const std::vector<float>& data) { write_raw(wdir / name, data, wdt); };
  const std::string lm = "model.language_model.";
  // Whole-model tensors.
  Shape wshape;
  const std::vector<float> wte = src.full(lm + "embedding.word_embeddings.weight", &wshape);
  const std::int64_t padded_vocab = wshape[0];
  put("model.wte.bin", wte);
  put("model.wpe.bin", src.full(lm + "embedding.position_embeddings.weight"));
  put("model.final_layernorm.weight.bin", src.full(lm + "encoder.final_layernorm.weight"));
  put("model.final_layernorm.bias.bin", src.full(lm + "encoder.final_layernorm.bias"));
  // Layers, `processes` at a time.
  auto convert_layer = [&](int l) {
    const std::string in = fmt::format("{}encoder.layers.{}.", lm, l);
    const std::string out = fmt::format("model.layers.{}.", l);
    for (const char* n : {"input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight",
                          "post_attention_layernorm.bias"})
      put(out + n + ".bin", src.full(in + n));
    put(out + "attention.dense.bias.bin", src.full(in + "self_attention.dense.bias"));
    put(out + "mlp.dense_4h_to_h.bias.bin", src.full(in + "mlp.dense_4h_to_h.bias"));
    {
      // QKV: W [3*ha, h], row (head*3 + j)*kv + e. Rank R: [h, 3, hl*kv] (fused) or [3, h, hl*kv].
      const std::vector<float> w = src.full(in + "self_attention.query_key_value.weight");
      const std::vector<float> b = src.full(in + "self_attention.query_key_value.bias");
      const std::int64_t nl = hl * kv;
      for (int r = 0; r < T; ++r) {
        std::vector<float> fw(static_cast<std::size_t>(h * 3 * nl)), fb(static_cast<std::size_t>(3 * nl));
        for (int j = 0; j < 3; ++j)
          for (std::int64_t n = 0; n < nl; ++n) {
            const std::int64_t head = r * hl + n / kv;
            const std::int64_t row = (head * 3 + j) * kv + n % kv;
            fb[static_cast<std::size_t>(j * nl + n)] = b[static_cast<std::size_t>(row)];
            for (std::int64_t i = 0; i < h; ++i) {
              const std::int64_t at = o.fused_qkv ? (i * 3 + j) * nl + n : (j * h + i) * nl + n;
              fw[static_cast<std::size_t>(at)] = w[static_cast<std::size_t>(row * h + i)];
            }
          }
        put(out + fmt::format("attention.query_key_value.weight.{}.bin", r), fw);
        put(out + fmt::format("attention.query_key_value.bias.{}.bin", r), fb);
      }
    }
    {
      // dense: W [h, ha] -> [ha, h], rows split.
      const std::vector<float> t = transpose(src.full(in + "self_attention.dense.weight"), h, ha);
      for (int r = 0; r < T; ++r) put(out + fmt::format("attention.dense.weight.{}.bin", r), row_block(t, h, r * ha / T, ha / T));
    }
    {
      const std::vector<float> t = transpose(src.full(in + "mlp.dense_h_to_4h.weight"), f, h);  // [h, f]
      const std::vector<float> b = src.full(in + "mlp.dense_h_to_4h.bias");
      for (int r = 0; r < T; ++r) {
        put(out + fmt::format("mlp.dense_h_to_4h.weight.{}.bin", r), col_block(t, h, f, r * f / T, f / T));
        put(out + fmt::format("mlp.dense_h_to_4h.bias.{}.bin", r),
            std::vector<float>(b.begin() + r * f / T, b.begin() + (r + 1) * f / T));
      }
    }
    {
      const std::vector<float> t = transpose(src.full(in + "mlp.dense_4h_to_h.weight"), h, f);  // [f, h]
      for (int r = 0; r < T; ++r) put(out + fmt::format("mlp.dense_4h_to_h.weight.{}.bin", r), row_block(t, h, r * f / T, f / T));
    }
  };
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int l = next++; l < L; l = next++) {
      try {
        convert_layer(l);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next = L;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int p = 1; p < std::min(o.processes, L); ++p) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  write_file_atomic(wdir / "config.ini", ft_config_ini(c, padded_vocab, T, wdt, start_id, end_id));
  for (const auto& [key, file] : {std::pair{"vocab_file", "vocab.json"}, std::pair{"merge_file", "merges.txt"},
                                  std::pair{"model", "tokenizer.model"}}) {
    auto it = meta.tokenizer.find(key);
    if (it == meta.tokenizer.end() || it->second.empty()) continue;
    if (!fs::is_regular_file(it->second))
      throw DataError(fmt::format("{}: tokenizer.{} '{}' not found", checkpoint.string(), key, it->second));
    fs::copy_file(it->second, wdir / file);
    fsync_path(wdir / file);
  }
  write_file_atomic(stage.path() / "config.pbtxt",
                    ft_config_pbtxt(o, fs::absolute(model_dir / wdir_rel).lexically_normal()));
  stage.commit(o.overwrite);
  log.info("exported {} to {} (FasterTransformer GPT, tensor_para_size {}, {} weights)", checkpoint.string(),
           (model_dir / wdir_rel).string(), T, wdt == DType::kF16 ? "fp16" : "fp32");
}

}  // namespace bignlp::exporting
