#include "bignlp/export/hf_export.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/layout.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {

void export_hf_gpt2(const fs::path& checkpoint, const fs::path& output, bool overwrite, const Logger& log) {
  if (fs::exists(output) && !overwrite)
    throw ConfigError(fmt::format("{} exists; remove it or pass --overwrite", output.string()));
  const checkpoint::CheckpointTensors src(checkpoint);
  const auto& meta = src.meta();
  if (meta.family != "gpt")
    throw ConfigError(fmt::format("{}: --to hf-gpt2 exports GPT models; this checkpoint holds a '{}' model",
                                  checkpoint.string(), meta.family));
  const nlohmann::json& c = meta.model;
  const std::int64_t h = c.at("hidden_size").get<std::int64_t>(), f = c.at("ffn_hidden_size").get<std::int64_t>();
  const std::int64_t V = c.at("vocab_size").get<std::int64_t>();
  const int L = c.at("num_layers").get<int>(), nh = c.at("num_attention_heads").get<int>();
  const std::int64_t hs = c.at("kv_channels").get<std::int64_t>();
  if (hs * nh != h)
    throw ConfigError(fmt::format("{}: kv_channels {} x {} heads != hidden_size {}; GPT-2 cannot express it",
                                  checkpoint.string(), hs, nh, h));
  std::int64_t eos = 50256;
  if (auto it = meta.tokenizer.find("vocab_file"); it != meta.tokenizer.end() && fs::path(it->second).extension() == ".json" &&
                                                  fs::exists(it->second)) {
    const auto vocab = nlohmann::json::parse(read_file(it->second), nullptr, false);
    if (vocab.is_object() && vocab.contains("<|endoftext|>")) eos = vocab["<|endoftext|>"].get<std::int64_t>();
  }
  std::vector<std::vector<float>> data;
  data.reserve(static_cast<std::size_t>(4 + 12 * L));
  SafetensorsWriter w;
  auto add = [&](const std::string& name, std::vector<float> v, Shape shape) {
    data.push_back(std::move(v));
    w.add("transformer." + name, TensorView(data.back().data(), DType::kF32, shape));
  };
  auto transposed = [](const std::vector<float>& in, std::int64_t rows, std::int64_t cols) {
    std::vector<float> out(in.size());
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) out[static_cast<std::size_t>(j * rows + i)] = in[static_cast<std::size_t>(i * cols + j)];
    return out;
  };
  const std::string lm = "model.language_model.";
  {
    Shape s;
    std::vector<float> wte = src.full(lm + "embedding.word_embeddings.weight", &s);
    wte.resize(static_cast<std::size_t>(V * h));  // the real rows
    add("wte.weight", std::move(wte), Shape{V, h});
  }
  {
    Shape s;
    std::vector<float> wpe = src.full(lm + "embedding.position_embeddings.weight", &s);
    add("wpe.weight", std::move(wpe), s);
  }
  for (int l = 0; l < L; ++l) {
    const std::string ours = fmt::format("{}encoder.layers.{}.", lm, l), hf = fmt::format("h.{}.", l);
    add(hf + "ln_1.weight", src.full(ours + "input_layernorm.weight"), Shape{h});
    add(hf + "ln_1.bias", src.full(ours + "input_layernorm.bias"), Shape{h});
    add(hf + "ln_2.weight", src.full(ours + "post_attention_layernorm.weight"), Shape{h});
    add(hf + "ln_2.bias", src.full(ours + "post_attention_layernorm.bias"), Shape{h});
    const std::vector<float> qw = src.full(ours + "self_attention.query_key_value.weight");
    const std::vector<float> qb = src.full(ours + "self_attention.query_key_value.bias");
    std::vector<float> cw(qw.size()), cb(qb.size());
    for (std::int64_t head = 0; head < nh; ++head)
      for (std::int64_t part = 0; part < 3; ++part)
        for (std::int64_t e = 0; e < hs; ++e) {
          const std::int64_t col = part * h + head * hs + e, row = 3 * hs * head + part * hs + e;
          cb[static_cast<std::size_t>(col)] = qb[static_cast<std::size_t>(row)];
          for (std::int64_t i = 0; i < h; ++i) cw[static_cast<std::size_t>(i * 3 * h + col)] = qw[static_cast<std::size_t>(row * h + i)];
        }
    add(hf + "attn.c_attn.weight", std::move(cw), Shape{h, 3 * h});
    add(hf + "attn.c_attn.bias", std::move(cb), Shape{3 * h});
    add(hf + "attn.c_proj.weight", transposed(src.full(ours + "self_attention.dense.weight"), h, h), Shape{h, h});
    add(hf + "attn.c_proj.bias", src.full(ours + "self_attention.dense.bias"), Shape{h});
    add(hf + "mlp.c_fc.weight", transposed(src.full(ours + "mlp.dense_h_to_4h.weight"), f, h), Shape{h, f});
    add(hf + "mlp.c_fc.bias", src.full(ours + "mlp.dense_h_to_4h.bias"), Shape{f});
    add(hf + "mlp.c_proj.weight", transposed(src.full(ours + "mlp.dense_4h_to_h.weight"), h, f), Shape{f, h});
    add(hf + "mlp.c_proj.bias", src.full(ours + "mlp.dense_4h_to_h.bias"), Shape{h});
  }
  add("ln_f.weight", src.full(lm + "encoder.final_layernorm.weight"), Shape{h});
  add("ln_f.bias", src.full(lm + "encoder.final_layernorm.bias"), Shape{h});
  w.set_metadata("format", "pt");
  const nlohmann::json config = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", V},
      {"n_positions", c.at("max_position_embeddings")},
      {"n_ctx", c.at("max_position_embeddings")},
      {"n_embd", h},
      {"n_layer", L},
      {"n_head", nh},
      {"n_inner", f},
      {"activation_function", c.value("activation", "gelu") == "gelu_tanh" ? "gelu_new" : "gelu"},
      {"layer_norm_epsilon", static_cast<double>(c.at("layernorm_epsilon").get<float>())},
      {"initializer_range", static_cast<double>(c.value("init_method_std", 0.02f))},
      {"resid_pdrop", static_cast<double>(c.value("hidden_dropout", 0.1f))},
      {"embd_pdrop", static_cast<double>(c.value("hidden_dropout", 0.1f))},
      {"attn_pdrop", static_cast<double>(c.value("attention_dropout", 0.1f))},
      {"scale_attn_weights", true},
      {"bos_token_id", eos},
      {"eos_token_id", eos},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"}};
  StagedDirectory stage(output);
  w.write(stage.path() / "model.safetensors");
  write_file_atomic(stage.path() / "config.json", config.dump(2) + "\n");
  for (const auto& [key, name] : {std::pair{"vocab_file", "vocab.json"}, std::pair{"merge_file", "merges.txt"}}) {
    auto it = meta.tokenizer.find(key);
    if (it == meta.tokenizer.end() || it->second.empty()) continue;
    if (!fs::is_regular_file(it->second))
      throw DataError(fmt::format("{}: tokenizer.{} '{}' not found", checkpoint.string(), key, it->second));
    fs::copy_file(it->second, stage.path() / name);
    fsync_path(stage.path() / name);
  }
  stage.commit(overwrite);
  log.info("exported {} as a Hugging Face GPT-2 model in {}", checkpoint.string(), output.string());
}

}  // namespace bignlp::exporting
