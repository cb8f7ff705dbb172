#include "bignlp/model/block_spec.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::model {

std::string BlockNaming::prefix(int layer_index) const { return fmt::format(fmt::runtime(layer_pattern), layer_index); }

BlockNaming BlockNaming::gpt() { return BlockNaming{"model.language_model.encoder.layers.{}"}; }
BlockNaming BlockNaming::t5_encoder() { return BlockNaming{"enc_dec_model.enc_dec_model.encoder.model.layers.{}"}; }
BlockNaming BlockNaming::t5_decoder() { return BlockNaming{"enc_dec_model.enc_dec_model.decoder.model.layers.{}"}; }

void BlockSpec::validate() const {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("transformer block: " + what);
  };
  need(hidden_size > 0, fmt::format("hidden_size must be positive, got {}", hidden_size));
  need(ffn_hidden_size > 0, fmt::format("ffn_hidden_size must be positive, got {}", ffn_hidden_size));
  need(num_attention_heads > 0, fmt::format("num_attention_heads must be positive, got {}", num_attention_heads));
  need(kv_channels > 0, fmt::format("kv_channels must be positive, got {}", kv_channels));
  need(num_layers > 0, fmt::format("num_layers must be positive, got {}", num_layers));
  need(normalization_epsilon > 0.0f, fmt::format("the normalization epsilon must be positive, got {}", normalization_epsilon));
  need(hidden_dropout >= 0.0f && hidden_dropout < 1.0f, fmt::format("hidden_dropout {} outside [0, 1)", hidden_dropout));
  need(attention_dropout >= 0.0f && attention_dropout < 1.0f,
       fmt::format("attention_dropout {} outside [0, 1)", attention_dropout));
  need(!(normalization == Normalization::kRmsNorm && normalization_bias),
       "rmsnorm has no bias (set the normalization bias off)");
  need(layer_pattern_ok(), fmt::format("the layer name pattern '{}' needs one '{{}}'", naming.layer_pattern));
}

bool BlockSpec::layer_pattern_ok() const { return naming.layer_pattern.find("{}") != std::string::npos; }

std::string normalization_name(Normalization n) { return n == Normalization::kRmsNorm ? "rmsnorm" : "layernorm"; }

Normalization parse_normalization(const std::string& text, const std::string& key) {
  if (text == "layernorm" || text == "LayerNorm") return Normalization::kLayerNorm;
  if (text == "rmsnorm" || text == "RMSNorm") return Normalization::kRmsNorm;
  throw ConfigError(fmt::format("{}: unknown normalization '{}' (expected layernorm or rmsnorm)", key, text));
}

std::pair<ops::Activation, bool> parse_activation(const std::string& text, const std::string& key) {
  if (text == "gelu") return {ops::Activation::kGeluTanh, false};
  if (text == "relu") return {ops::Activation::kRelu, false};
  if (text == "silu" || text == "swish") return {ops::Activation::kSilu, false};
  if (text == "geglu") return {ops::Activation::kGeluTanh, true};
  if (text == "reglu") return {ops::Activation::kRelu, true};
  if (text == "swiglu") return {ops::Activation::kSilu, true};
  throw ConfigError(fmt::format("{}: unknown activation '{}' (expected gelu, relu, swish, geglu, reglu or swiglu)",
                                key, text));
}

}  // namespace bignlp::model
