#include "bignlp/model/hf_gpt2.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::model {
namespace {

template <typename T>
T get_or(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return j.at(key).get<T>();
}

}  // namespace

GptConfig read_hf_gpt2_config(const fs::path& dir) {
  const fs::path file = dir / "config.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed JSON: {}", file.string(), e.what()));
  }
  auto reject = [&](const std::string& msg) { throw DataError(fmt::format("{}: {}", file.string(), msg)); };
  try {
    if (j.contains("model_type") && j.at("model_type").get<std::string>() != "gpt2")
      reject(fmt::format("model_type is '{}', expected 'gpt2'", j.at("model_type").get<std::string>()));
    GptConfig c;
    c.vocab_size = j.at("vocab_size").get<std::int64_t>();
    c.make_vocab_size_divisible_by = 1;
    c.max_position_embeddings = get_or<std::int64_t>(j, "n_positions", get_or<std::int64_t>(j, "n_ctx", 1024));
    c.seq_length = c.max_position_embeddings;
    c.hidden_size = j.at("n_embd").get<std::int64_t>();
    c.num_layers = j.at("n_layer").get<int>();
    c.num_attention_heads = j.at("n_head").get<int>();
    c.ffn_hidden_size = get_or<std::int64_t>(j, "n_inner", 4 * c.hidden_size);
    c.layernorm_epsilon = get_or<float>(j, "layer_norm_epsilon", 1e-5f);
    c.init_method_std = get_or<float>(j, "initializer_range", 0.02f);
    c.hidden_dropout = get_or<float>(j, "resid_pdrop", 0.1f);
    c.attention_dropout = get_or<float>(j, "attn_pdrop", 0.1f);
    const std::string act = get_or<std::string>(j, "activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_fast" || act == "gelu_pytorch_tanh")
      c.activation = ops::GeluApprox::kTanh;
    else if (act == "gelu")
      c.activation = ops::GeluApprox::kErf;
    else
      reject(fmt::format("activation_function '{}' is not supported (gelu_new, gelu_fast, gelu_pytorch_tanh, gelu)", act));
    if (get_or<bool>(j, "scale_attn_by_inverse_layer_idx", false)) reject("scale_attn_by_inverse_layer_idx is not supported");
    if (!get_or<bool>(j, "scale_attn_weights", true)) reject("scale_attn_weights false is not supported");
    if (get_or<bool>(j, "add_cross_attention", false)) reject("add_cross_attention is not supported");
    c.validate();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: {}", file.string(), e.what()));
  } catch (const ConfigError& e) {
    throw DataError(fmt::format("{}: {}", file.string(), e.what()));
  }
}

void load_hf_gpt2_weights(const fs::path& dir, GptModel& model) {
  const fs::path file = dir / "model.safetensors";
  SafetensorsReader r(file);
  const std::string prefix = r.find("transformer.wte.weight") != nullptr ? "transformer." : "";
  const GptConfig& c = model.config();
  const ops::OpContext& ctx = model.context();
  ParameterStore& store = model.parameters();
  const std::int64_t h = c.hidden_size, nh = c.num_attention_heads, hs = c.head_size(), f = c.ffn_size();

  auto tensor = [&](const std::string& name, Shape shape) {
    const std::string key = prefix + name;
    const SafetensorsEntry* e = r.find(key);
    if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", file.string(), key));
    if (!(e->shape == shape))
      throw DataError(fmt::format("{}: tensor '{}' has shape {}, config.json implies {}", file.string(), key,
                                  e->shape.to_string(), shape.to_string()));
    std::vector<float> out(static_cast<std::size_t>(shape.numel()));
    ops::copy(ops::OpContext::cpu(), r.view(key), TensorView(out.data(), DType::kF32, shape));
    return out;
  };
  auto param = [&](const std::string& name) -> Parameter& {
    Parameter* p = store.find(name);
    BIGNLP_CHECK(p != nullptr, "model has no parameter '{}'", name);
    return *p;
  };
  auto set = [&](const std::string& name, const std::vector<float>& host) {
    Parameter& p = param(name);
    BIGNLP_CHECK(static_cast<std::int64_t>(host.size()) == p.numel(), "size mismatch importing '{}'", name);
    ops::copy(ctx, TensorView(const_cast<float*>(host.data()), DType::kF32, p.shape), p.master);
  };
  auto transposed = [](const std::vector<float>& in, std::int64_t rows, std::int64_t cols) {
    std::vector<float> out(in.size());
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) out[j * rows + i] = in[i * cols + j];
    return out;
  };

  const std::string lm = "model.language_model.";
  set(lm + "embedding.word_embeddings.weight", tensor("wte.weight", Shape{c.vocab_size, h}));
  set(lm + "embedding.position_embeddings.weight", tensor("wpe.weight", Shape{c.positions(), h}));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string hf = fmt::format("h.{}.", l);
    const std::string ours = layer_prefix(l) + ".";
    set(ours + "input_layernorm.weight", tensor(hf + "ln_1.weight", Shape{h}));
    set(ours + "input_layernorm.bias", tensor(hf + "ln_1.bias", Shape{h}));
    set(ours + "post_attention_layernorm.weight", tensor(hf + "ln_2.weight", Shape{h}));
    set(ours + "post_attention_layernorm.bias", tensor(hf + "ln_2.bias", Shape{h}));
    // c_attn: (C, 3C) with output column part*C + head*HS + e; ours row 3HS*head + part*HS + e.
    const std::vector<float> w = tensor(hf + "attn.c_attn.weight", Shape{h, 3 * nh * hs});
    const std::vector<float> b = tensor(hf + "attn.c_attn.bias", Shape{3 * nh * hs});
    std::vector<float> qkv_w(w.size()), qkv_b(b.size());
    for (std::int64_t head = 0; head < nh; ++head)
      for (std::int64_t part = 0; part < 3; ++part)
        for (std::int64_t e = 0; e < hs; ++e) {
          const std::int64_t col = part * nh * hs + head * hs + e;
          const std::int64_t row = 3 * hs * head + part * hs + e;
          qkv_b[row] = b[col];
          for (std::int64_t i = 0; i < h; ++i) qkv_w[row * h + i] = w[i * 3 * nh * hs + col];
        }
    set(ours + "self_attention.query_key_value.weight", qkv_w);
    set(ours + "self_attention.query_key_value.bias", qkv_b);
    set(ours + "self_attention.dense.weight", transposed(tensor(hf + "attn.c_proj.weight", Shape{nh * hs, h}), nh * hs, h));
    set(ours + "self_attention.dense.bias", tensor(hf + "attn.c_proj.bias", Shape{h}));
    set(ours + "mlp.dense_h_to_4h.weight", transposed(tensor(hf + "mlp.c_fc.weight", Shape{h, f}), h, f));
    set(ours + "mlp.dense_h_to_4h.bias", tensor(hf + "mlp.c_fc.bias", Shape{f}));
    set(ours + "mlp.dense_4h_to_h.weight", transposed(tensor(hf + "mlp.c_proj.weight", Shape{f, h}), f, h));
    set(ours + "mlp.dense_4h_to_h.bias", tensor(hf + "mlp.c_proj.bias", Shape{h}));
  }
  set(lm + "encoder.final_layernorm.weight", tensor("ln_f.weight", Shape{h}));
  set(lm + "encoder.final_layernorm.bias", tensor("ln_f.bias", Shape{h}));
  store.sync_values_from_master(ctx);
}

}  // namespace bignlp::model
