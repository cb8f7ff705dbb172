#include "bignlp/export/hf_export.h"

#include <fmt/format.h>

#include <cmath>
#include <deque>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/layout.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/block_spec.h"
#include "bignlp/model/t5_config.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

/// What every Hugging Face export shares: the refusal of an existing output, the tensors
/// assembled in memory (safetensors needs its header first), config.json and the tokenizer files
/// written in a staging directory that is renamed into place.
class HfDirectoryWriter {
 public:
  HfDirectoryWriter(const fs::path& checkpoint, const fs::path& output, bool overwrite)
      : checkpoint_(checkpoint), output_(output), overwrite_(overwrite) {
    if (fs::exists(output) && !overwrite)
      throw ConfigError(fmt::format("{} exists; remove it or pass --overwrite", output.string()));
  }

  void add(const std::string& name, std::vector<float> v, Shape shape) {
    BIGNLP_CHECK(static_cast<std::int64_t>(v.size()) == shape.numel(), "HF export: '{}' has {} values for shape {}", name,
                 v.size(), shape.to_string());
    data_.push_back(std::move(v));
    writer_.add(name, TensorView(data_.back().data(), DType::kF32, shape));
  }

  /// Copies the checkpoint's tokenizer file `key` (a tokenizer.* entry of its metadata) as `name`
  /// when it records one.
  void copy_tokenizer_file(const checkpoint::CheckpointState& meta, const std::string& key, const std::string& name) {
    auto it = meta.tokenizer.find(key);
    if (it == meta.tokenizer.end() || it->second.empty()) return;
    if (!fs::is_regular_file(it->second))
      throw DataError(fmt::format("{}: tokenizer.{} '{}' not found", checkpoint_.string(), key, it->second));
    files_.emplace_back(it->second, name);
  }

  void commit(const nlohmann::json& config) {
    writer_.set_metadata("format", "pt");
    StagedDirectory stage(output_);
    writer_.write(stage.path() / "model.safetensors");
    write_file_atomic(stage.path() / "config.json", config.dump(2) + "\n");
    for (const auto& [from, name] : files_) {
      fs::copy_file(from, stage.path() / name);
      fsync_path(stage.path() / name);
    }
    stage.commit(overwrite_);
  }

 private:
  fs::path checkpoint_, output_;
  bool overwrite_;
  std::deque<std::vector<float>> data_;
  SafetensorsWriter writer_;
  std::vector<std::pair<fs::path, std::string>> files_;
};

/// in (rows, cols) row-major -> (cols, rows).
std::vector<float> transposed(const std::vector<float>& in, std::int64_t rows, std::int64_t cols) {
  std::vector<float> out(in.size());
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) out[static_cast<std::size_t>(j * rows + i)] = in[static_cast<std::size_t>(i * cols + j)];
  return out;
}

}  // namespace

void export_hf_gpt2(const fs::path& checkpoint, const fs::path& output, bool overwrite, const Logger& log) {
  HfDirectoryWriter out(checkpoint, output, overwrite);
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
  auto add = [&](const std::string& name, std::vector<float> v, Shape shape) {
    out.add("transformer." + name, std::move(v), shape);
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
  out.copy_tokenizer_file(meta, "vocab_file", "vocab.json");
  out.copy_tokenizer_file(meta, "merge_file", "merges.txt");
  out.commit(config);
  log.info("exported {} as a Hugging Face GPT-2 model in {}", checkpoint.string(), output.string());
}

namespace {

/// The HF feed_forward_proj of a stack, or a ConfigError naming the key HF T5 cannot express.
std::string hf_feed_forward_proj(const model::T5StackConfig& s, const std::string& stack, const fs::path& checkpoint) {
  const bool tanh = s.bias_activation_fusion || s.openai_gelu;
  auto refuse = [&](const std::string& key, const std::string& why) {
    return ConfigError(fmt::format("{}: model.{}.{} {}; Hugging Face T5 cannot express it", checkpoint.string(), stack,
                                   key, why));
  };
  if (s.activation == "relu") return "relu";
  if (s.activation == "reglu") return "gated-relu";
  if (s.activation == "swiglu") return "gated-silu";
  if (s.activation == "gelu") return tanh ? "gelu_new" : "gelu";
  if (s.activation == "geglu") {
    if (!tanh)
      throw refuse("bias_activation_fusion",
                   "is False with activation geglu (GeGLU in the erf form; HF's gated-gelu is the tanh form)");
    return "gated-gelu";
  }
  throw refuse("activation", fmt::format("is '{}' (HF T5: relu, gelu, geglu, reglu, swiglu)", s.activation));
}

/// A value v' with float(v' * s) == v where one exists (the import multiplies by s): v / s, nudged
/// by an ulp where rounding needs it; else v / s (1 ulp off after the import).
float unscale(float v, float s) {
  float e = v / s;
  for (float cand : {e, std::nextafter(e, INFINITY), std::nextafter(e, -INFINITY)})
    if (cand * s == v) return cand;
  return e;
}

}  // namespace

void export_hf_t5(const fs::path& checkpoint, const fs::path& output, bool overwrite, const Logger& log) {
  HfDirectoryWriter out(checkpoint, output, overwrite);
  const checkpoint::CheckpointTensors src(checkpoint);
  const auto& meta = src.meta();
  if (meta.family != "t5")
    throw ConfigError(fmt::format("{}: --to hf-t5 exports T5 / mT5 models (the t5 family); this checkpoint holds a '{}' model",
                                  checkpoint.string(), meta.family));
  model::T5Config c;
  try {
    c = meta.model.get<model::T5Config>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: model config: {}", checkpoint.string(), e.what()));
  }
  auto refuse = [&](const std::string& key, const std::string& why) {
    return ConfigError(fmt::format("{}: model.{} {}; Hugging Face T5 cannot express it", checkpoint.string(), key, why));
  };
  std::string proj;
  for (const auto& [s, stack] : {std::pair<const model::T5StackConfig*, std::string>{&c.encoder, "encoder"},
                                 std::pair<const model::T5StackConfig*, std::string>{&c.decoder, "decoder"}}) {
    const std::string k = stack + ".";
    if (!s->relative())
      throw refuse(k + "position_embedding_type",
                   fmt::format("is '{}' (HF T5 has relative position buckets only, no learned absolute positions)",
                               s->position_embedding_type));
    if (!s->relative_position_bias_self_attention_only)
      throw refuse(k + "relative_position_bias_self_attention_only", "is False (HF T5 biases self-attention only)");
    if (s->apply_query_key_layer_scaling && s->num_layers > 1)
      throw refuse(k + "apply_query_key_layer_scaling",
                   "is True (the relative position bias of layer l is then scaled by l; HF T5 adds it unscaled)");
    if (s->normalization != "rmsnorm")
      throw refuse(k + "normalization", fmt::format("is '{}' (HF T5 has T5LayerNorm: RMS norm without bias)", s->normalization));
    if (s->bias) throw refuse(k + "bias", "is True (HF T5's linear layers have no biases)");
    const std::string p = hf_feed_forward_proj(*s, stack, checkpoint);
    if (stack == "encoder") proj = p;
    else if (p != proj)
      throw refuse("decoder.activation", fmt::format("gives '{}' and the encoder's '{}' (HF T5 has one feed_forward_proj)", p, proj));
  }
  for (const auto& [key, same] :
       {std::pair{"hidden_size", c.encoder.hidden_size == c.decoder.hidden_size},
        std::pair{"ffn_hidden_size", c.encoder.ffn_hidden_size == c.decoder.ffn_hidden_size},
        std::pair{"num_attention_heads", c.encoder.num_attention_heads == c.decoder.num_attention_heads},
        std::pair{"kv_channels", c.encoder.head_size() == c.decoder.head_size()},
        std::pair{"layernorm_epsilon", c.encoder.layernorm_epsilon == c.decoder.layernorm_epsilon},
        std::pair{"relative_attention_num_buckets",
                  c.encoder.relative_attention_num_buckets == c.decoder.relative_attention_num_buckets},
        std::pair{"relative_attention_max_distance",
                  c.encoder.relative_attention_max_distance == c.decoder.relative_attention_max_distance}})
    if (!same) throw refuse(std::string("decoder.") + key, "differs from model.encoder's (HF T5 has one value for both stacks)");
  if (!c.share_token_embeddings)
    throw refuse("share_token_embeddings", "is False (HF T5's encoder and decoder share one token embedding)");
  if (c.share_decoder_tokens_head_embeddings && c.tokens_head_bias)
    throw refuse("tokens_head_bias", "is True (HF T5's output layer has no bias)");

  const model::T5StackConfig& e = c.encoder;
  const std::int64_t h = e.hidden_size, f = e.ffn_hidden_size, V = c.vocab_size, nh = e.num_attention_heads,
                     hs = e.head_size(), inner = nh * hs;
  const bool gated = proj.rfind("gated-", 0) == 0;
  // 1/sqrt(d_kv) of NeMo's attention folded into the query weights (HF T5 does not scale scores).
  const float qscale = e.normalize_attention_scores ? 1.0f / std::sqrt(static_cast<float>(hs)) : 1.0f;
  // Rows head*parts*HS + part*HS + e of a fused (parts*inner, h) projection -> `parts` (inner, h) matrices.
  auto deinterleave = [&](const std::vector<float>& fused, std::int64_t parts) {
    std::vector<std::vector<float>> outp(static_cast<std::size_t>(parts), std::vector<float>(static_cast<std::size_t>(inner * h)));
    for (std::int64_t head = 0; head < nh; ++head)
      for (std::int64_t part = 0; part < parts; ++part)
        for (std::int64_t x = 0; x < hs; ++x)
          std::copy_n(&fused[static_cast<std::size_t>(((head * parts + part) * hs + x) * h)], h,
                      &outp[static_cast<std::size_t>(part)][static_cast<std::size_t>((head * hs + x) * h)]);
    return outp;
  };
  auto scaled = [](std::vector<float> v, float s) {
    if (s != 1.0f)
      for (float& x : v) x *= s;
    return v;
  };
  auto mlp = [&](const std::string& ours, const std::string& hf) {
    if (gated) {
      out.add(hf + "DenseReluDense.wi_0.weight", src.full(ours + "mlp.dense_h_to_4h.weight"), Shape{f, h});
      out.add(hf + "DenseReluDense.wi_1.weight", src.full(ours + "mlp.dense_h_to_4h_2.weight"), Shape{f, h});
    } else {
      out.add(hf + "DenseReluDense.wi.weight", src.full(ours + "mlp.dense_h_to_4h.weight"), Shape{f, h});
    }
    out.add(hf + "DenseReluDense.wo.weight", src.full(ours + "mlp.dense_4h_to_h.weight"), Shape{h, f});
  };
  auto self_attention = [&](const std::string& ours, const std::string& hf, float qs) {
    out.add(hf + "layer_norm.weight", src.full(ours + "input_layernorm.weight"), Shape{h});
    auto qkv = deinterleave(src.full(ours + "self_attention.query_key_value.weight"), 3);
    out.add(hf + "SelfAttention.q.weight", scaled(std::move(qkv[0]), qs), Shape{inner, h});
    out.add(hf + "SelfAttention.k.weight", std::move(qkv[1]), Shape{inner, h});
    out.add(hf + "SelfAttention.v.weight", std::move(qkv[2]), Shape{inner, h});
    out.add(hf + "SelfAttention.o.weight", src.full(ours + "self_attention.dense.weight"), Shape{h, inner});
  };

  {
    std::vector<float> shared = src.full("enc_dec_model.encoder_embedding.word_embeddings.weight");
    shared.resize(static_cast<std::size_t>(V * h));  // the real rows (padding dropped)
    out.add("shared.weight", std::move(shared), Shape{V, h});
  }
  out.add("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
          src.full("enc_dec_model.encoder_relative_position_embedding.relative_position_embedding.weight"),
          Shape{e.relative_attention_num_buckets, nh});
  out.add("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
          src.full("enc_dec_model.decoder_relative_position_embedding.relative_position_embedding.weight"),
          Shape{c.decoder.relative_attention_num_buckets, nh});
  for (int l = 0; l < e.num_layers; ++l) {
    const std::string ours = model::BlockNaming::t5_encoder().prefix(l) + ".", hf = fmt::format("encoder.block.{}.", l);
    self_attention(ours, hf + "layer.0.", qscale);
    out.add(hf + "layer.1.layer_norm.weight", src.full(ours + "post_attention_layernorm.weight"), Shape{h});
    mlp(ours, hf + "layer.1.");
  }
  const float dqscale = c.decoder.normalize_attention_scores ? 1.0f / std::sqrt(static_cast<float>(hs)) : 1.0f;
  for (int l = 0; l < c.decoder.num_layers; ++l) {
    const std::string ours = model::BlockNaming::t5_decoder().prefix(l) + ".", hf = fmt::format("decoder.block.{}.", l);
    self_attention(ours, hf + "layer.0.", dqscale);
    const std::string x = hf + "layer.1.";
    out.add(x + "layer_norm.weight", src.full(ours + "post_attention_layernorm.weight"), Shape{h});
    out.add(x + "EncDecAttention.q.weight", scaled(src.full(ours + "inter_attention.query.weight"), dqscale), Shape{inner, h});
    auto kv = deinterleave(src.full(ours + "inter_attention.key_value.weight"), 2);
    out.add(x + "EncDecAttention.k.weight", std::move(kv[0]), Shape{inner, h});
    out.add(x + "EncDecAttention.v.weight", std::move(kv[1]), Shape{inner, h});
    out.add(x + "EncDecAttention.o.weight", src.full(ours + "inter_attention.dense.weight"), Shape{h, inner});
    out.add(hf + "layer.2.layer_norm.weight", src.full(ours + "post_inter_attention_layernorm.weight"), Shape{h});
    mlp(ours, hf + "layer.2.");
  }
  out.add("encoder.final_layer_norm.weight", src.full("enc_dec_model.enc_dec_model.encoder.model.final_layernorm.weight"),
          Shape{h});
  std::vector<float> dec_final = src.full("enc_dec_model.enc_dec_model.decoder.model.final_layernorm.weight");
  if (c.share_decoder_tokens_head_embeddings) {
    // HF rescales the decoder output by d_model^-0.5 before the tied head: fold its inverse into
    // the final norm (the import multiplies it back).
    const float s = 1.0f / std::sqrt(static_cast<float>(h));
    for (float& v : dec_final) v = unscale(v, s);
  } else {
    std::vector<float> head = src.full("enc_dec_model.tokens_head.weight");
    head.resize(static_cast<std::size_t>(V * h));
    out.add("lm_head.weight", std::move(head), Shape{V, h});
  }
  out.add("decoder.final_layer_norm.weight", std::move(dec_final), Shape{h});
  const std::int64_t start = c.decoder_start_token_id >= 0 ? c.decoder_start_token_id : 0;
  nlohmann::json config = {
      // mT5 is the T5 architecture with another config: one model_type computes both.
      {"architectures", {"T5ForConditionalGeneration"}},
      {"model_type", "t5"},
      {"vocab_size", V},
      {"d_model", h},
      {"d_kv", hs},
      {"d_ff", f},
      {"num_layers", e.num_layers},
      {"num_decoder_layers", c.decoder.num_layers},
      {"num_heads", nh},
      {"relative_attention_num_buckets", e.relative_attention_num_buckets},
      {"relative_attention_max_distance", e.relative_attention_max_distance},
      {"dropout_rate", static_cast<double>(e.hidden_dropout)},
      {"layer_norm_epsilon", static_cast<double>(e.layernorm_epsilon)},
      {"initializer_factor", 1.0},
      {"feed_forward_proj", proj},
      {"is_encoder_decoder", true},
      {"use_cache", true},
      {"tie_word_embeddings", c.share_decoder_tokens_head_embeddings},
      {"decoder_start_token_id", start},
      {"n_positions", c.encoder_seq_length},
      {"torch_dtype", "float32"}};
  auto lib = meta.tokenizer.find("library");
  if (lib != meta.tokenizer.end() && lib->second == "sentencepiece") out.copy_tokenizer_file(meta, "model", "spiece.model");
  out.commit(config);
  log.info("exported {} as a Hugging Face T5 model in {} (feed_forward_proj {}, {} + {} layers)", checkpoint.string(),
           output.string(), proj, e.num_layers, c.decoder.num_layers);
}

}  // namespace bignlp::exporting
