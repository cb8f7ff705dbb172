#include "bignlp/model/hf_t5.h"

#include <fmt/format.h>

#include <cmath>

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

bool tied_embeddings(const nlohmann::json& j) { return get_or<bool>(j, "tie_word_embeddings", true); }

}  // namespace

T5Config read_hf_t5_config(const fs::path& dir) {
  const fs::path file = dir / "config.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed JSON: {}", file.string(), e.what()));
  }
  auto reject = [&](const std::string& msg) { throw DataError(fmt::format("{}: {}", file.string(), msg)); };
  try {
    const std::string type = get_or<std::string>(j, "model_type", "t5");
    if (type != "t5" && type != "mt5") reject(fmt::format("model_type is '{}', expected 't5' or 'mt5'", type));
    T5Config c;
    c.vocab_size = j.at("vocab_size").get<std::int64_t>();
    c.make_vocab_size_divisible_by = 1;
    c.encoder_seq_length = get_or<std::int64_t>(j, "n_positions", 512);
    c.decoder_seq_length = 0;
    const float dropout = get_or<float>(j, "dropout_rate", 0.1f);
    const std::string proj = get_or<std::string>(j, "feed_forward_proj", "relu");
    std::string activation;
    bool tanh = true;
    if (proj == "relu") {
      activation = "relu";
    } else if (proj == "gelu") {
      activation = "gelu";
      tanh = false;
    } else if (proj == "gelu_new") {
      activation = "gelu";
    } else if (proj == "gated-gelu") {
      activation = "geglu";
    } else if (proj == "gated-relu") {
      activation = "reglu";
    } else if (proj == "gated-silu") {
      activation = "swiglu";
    } else {
      reject(fmt::format("feed_forward_proj '{}' is not supported (relu, gelu, gelu_new, gated-gelu, gated-relu, gated-silu)", proj));
    }
    const int layers = j.at("num_layers").get<int>();
    for (T5StackConfig* s : {&c.encoder, &c.decoder}) {
      s->num_layers = s == &c.decoder ? get_or<int>(j, "num_decoder_layers", layers) : layers;
      s->hidden_size = j.at("d_model").get<std::int64_t>();
      s->ffn_hidden_size = j.at("d_ff").get<std::int64_t>();
      s->num_attention_heads = j.at("num_heads").get<int>();
      s->kv_channels = j.at("d_kv").get<std::int64_t>();
      s->init_method_std = get_or<float>(j, "initializer_factor", 1.0f) * 0.05f;  // used only if retrained from scratch
      s->hidden_dropout = dropout;
      s->attention_dropout = dropout;
      s->position_embedding_type = "relative";
      s->relative_attention_num_buckets = get_or<int>(j, "relative_attention_num_buckets", 32);
      s->relative_attention_max_distance = get_or<int>(j, "relative_attention_max_distance", 128);
      s->relative_position_bias_self_attention_only = true;
      s->apply_query_key_layer_scaling = false;
      s->layernorm_epsilon = get_or<float>(j, "layer_norm_epsilon", 1e-6f);
      s->activation = activation;
      s->bias_activation_fusion = tanh;
      s->openai_gelu = false;
      s->bias = false;
      s->normalization = "rmsnorm";
      s->normalize_attention_scores = false;
    }
    c.embedding_init_method_std = c.encoder.init_method_std;
    c.embedding_dropout = dropout;
    c.share_token_embeddings = true;
    c.share_decoder_tokens_head_embeddings = tied_embeddings(j);
    c.tokens_head_bias = false;
    c.decoder_start_token_id = get_or<std::int64_t>(j, "decoder_start_token_id", get_or<std::int64_t>(j, "pad_token_id", 0));
    c.validate();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: {}", file.string(), e.what()));
  } catch (const ConfigError& e) {
    throw DataError(fmt::format("{}: {}", file.string(), e.what()));
  }
}

void load_hf_t5_weights(const fs::path& dir, T5Model& model) {
  const fs::path file = dir / "model.safetensors";
  const nlohmann::json hf = nlohmann::json::parse(read_file(dir / "config.json"));
  SafetensorsReader r(file);
  const T5Config& c = model.config();
  BIGNLP_CHECK(model.parallel_context().tp_size() == 1, "HF T5 import builds a one-rank model (reshard afterwards)");
  const ops::OpContext& ctx = model.context();
  ParameterStore& store = model.parameters();
  const std::int64_t h = c.encoder.hidden_size, nh = c.encoder.num_attention_heads, hs = c.encoder.head_size(),
                     f = c.encoder.ffn_hidden_size, proj = nh * hs;

  auto tensor = [&](const std::string& key, Shape shape) {
    const SafetensorsEntry* e = r.find(key);
    if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", file.string(), key));
    if (!(e->shape == shape))
      throw DataError(fmt::format("{}: tensor '{}' has shape {}, config.json implies {}", file.string(), key,
                                  e->shape.to_string(), shape.to_string()));
    std::vector<float> out(static_cast<std::size_t>(shape.numel()));
    ops::copy(ops::OpContext::cpu(), r.view(key), TensorView(out.data(), DType::kF32, shape));
    return out;
  };
  auto set = [&](const std::string& name, const std::vector<float>& host) {
    Parameter* p = store.find(name);
    BIGNLP_CHECK(p != nullptr, "model has no parameter '{}'", name);
    BIGNLP_CHECK(static_cast<std::int64_t>(host.size()) == p->numel(), "size mismatch importing '{}'", name);
    store.assign(ctx, *p, TensorView(const_cast<float*>(host.data()), DType::kF32, p->shape));
  };
  // Rows head*parts*HS + part*HS + e of a fused projection from `parts` (proj, C) matrices.
  auto interleave = [&](const std::vector<std::vector<float>>& parts) {
    const std::int64_t n = static_cast<std::int64_t>(parts.size());
    std::vector<float> out(static_cast<std::size_t>(n * proj * h));
    for (std::int64_t head = 0; head < nh; ++head)
      for (std::int64_t part = 0; part < n; ++part)
        for (std::int64_t e = 0; e < hs; ++e)
          std::copy_n(&parts[part][(head * hs + e) * h], h, &out[((head * n + part) * hs + e) * h]);
    return out;
  };
  const bool gated = c.encoder.activation == "geglu" || c.encoder.activation == "reglu" || c.encoder.activation == "swiglu";
  auto mlp = [&](const std::string& hf_prefix, const std::string& ours) {
    if (gated) {
      set(ours + "mlp.dense_h_to_4h.weight", tensor(hf_prefix + "DenseReluDense.wi_0.weight", Shape{f, h}));
      set(ours + "mlp.dense_h_to_4h_2.weight", tensor(hf_prefix + "DenseReluDense.wi_1.weight", Shape{f, h}));
    } else {
      set(ours + "mlp.dense_h_to_4h.weight", tensor(hf_prefix + "DenseReluDense.wi.weight", Shape{f, h}));
    }
    set(ours + "mlp.dense_4h_to_h.weight", tensor(hf_prefix + "DenseReluDense.wo.weight", Shape{h, f}));
  };
  auto self_attention = [&](const std::string& hf_prefix, const std::string& ours) {
    set(ours + "input_layernorm.weight", tensor(hf_prefix + "layer_norm.weight", Shape{h}));
    set(ours + "self_attention.query_key_value.weight",
        interleave({tensor(hf_prefix + "SelfAttention.q.weight", Shape{proj, h}),
                    tensor(hf_prefix + "SelfAttention.k.weight", Shape{proj, h}),
                    tensor(hf_prefix + "SelfAttention.v.weight", Shape{proj, h})}));
    set(ours + "self_attention.dense.weight", tensor(hf_prefix + "SelfAttention.o.weight", Shape{h, proj}));
  };

  set("enc_dec_model.encoder_embedding.word_embeddings.weight", tensor("shared.weight", Shape{c.vocab_size, h}));
  set("enc_dec_model.encoder_relative_position_embedding.relative_position_embedding.weight",
      tensor("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
             Shape{c.encoder.relative_attention_num_buckets, nh}));
  set("enc_dec_model.decoder_relative_position_embedding.relative_position_embedding.weight",
      tensor("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
             Shape{c.decoder.relative_attention_num_buckets, nh}));
  for (int l = 0; l < c.encoder.num_layers; ++l) {
    const std::string hf_block = fmt::format("encoder.block.{}.", l);
    const std::string ours = BlockNaming::t5_encoder().prefix(l) + ".";
    self_attention(hf_block + "layer.0.", ours);
    set(ours + "post_attention_layernorm.weight", tensor(hf_block + "layer.1.layer_norm.weight", Shape{h}));
    mlp(hf_block + "layer.1.", ours);
  }
  for (int l = 0; l < c.decoder.num_layers; ++l) {
    const std::string hf_block = fmt::format("decoder.block.{}.", l);
    const std::string ours = BlockNaming::t5_decoder().prefix(l) + ".";
    self_attention(hf_block + "layer.0.", ours);
    const std::string x = hf_block + "layer.1.";
    set(ours + "post_attention_layernorm.weight", tensor(x + "layer_norm.weight", Shape{h}));
    set(ours + "inter_attention.query.weight", tensor(x + "EncDecAttention.q.weight", Shape{proj, h}));
    set(ours + "inter_attention.key_value.weight", interleave({tensor(x + "EncDecAttention.k.weight", Shape{proj, h}),
                                                               tensor(x + "EncDecAttention.v.weight", Shape{proj, h})}));
    set(ours + "inter_attention.dense.weight", tensor(x + "EncDecAttention.o.weight", Shape{h, proj}));
    set(ours + "post_inter_attention_layernorm.weight", tensor(hf_block + "layer.2.layer_norm.weight", Shape{h}));
    mlp(hf_block + "layer.2.", ours);
  }
  set("enc_dec_model.enc_dec_model.encoder.model.final_layernorm.weight",
      tensor("encoder.final_layer_norm.weight", Shape{h}));
  std::vector<float> dec_final = tensor("decoder.final_layer_norm.weight", Shape{h});
  if (tied_embeddings(hf)) {
    // HF rescales the decoder output by d_model^-0.5 before the tied head.
    const float s = 1.0f / std::sqrt(static_cast<float>(h));
    for (float& v : dec_final) v *= s;
  } else {
    set("enc_dec_model.tokens_head.weight", tensor("lm_head.weight", Shape{c.vocab_size, h}));
  }
  set("enc_dec_model.enc_dec_model.decoder.model.final_layernorm.weight", dec_final);
}

}  // namespace bignlp::model
