#include "bignlp/model/gpt_config.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::model {

std::int64_t GptConfig::padded_vocab_size() const {
  return sizing::padded_vocab_size(vocab_size, make_vocab_size_divisible_by, std::max(1, tensor_model_parallel_size));
}

DType GptConfig::compute_dtype() const {
  switch (precision) {
    case Precision::kBf16: return DType::kBF16;
    case Precision::kFp16: return DType::kF16;
    case Precision::kFp32: break;
  }
  return DType::kF32;
}

std::int64_t GptConfig::num_parameters() const { return sizing::parameter_count(gpt_shape(*this)); }

void GptConfig::validate() const {
  auto fail = [](const std::string& key, const std::string& msg) {
    throw ConfigError(fmt::format("model.{}: {}", key, msg));
  };
  if (vocab_size <= 0) fail("tokenizer", fmt::format("vocabulary size must be positive, got {}", vocab_size));
  if (make_vocab_size_divisible_by <= 0)
    fail("make_vocab_size_divisible_by", fmt::format("must be positive, got {}", make_vocab_size_divisible_by));
  if (seq_length <= 0) fail("encoder_seq_length", fmt::format("must be positive, got {}", seq_length));
  if (max_position_embeddings != 0 && max_position_embeddings < seq_length)
    fail("max_position_embeddings",
         fmt::format("{} is smaller than encoder_seq_length {}", max_position_embeddings, seq_length));
  if (num_layers <= 0) fail("num_layers", fmt::format("must be positive, got {}", num_layers));
  if (hidden_size <= 0) fail("hidden_size", fmt::format("must be positive, got {}", hidden_size));
  if (num_attention_heads <= 0) fail("num_attention_heads", fmt::format("must be positive, got {}", num_attention_heads));
  if (kv_channels == 0 && hidden_size % num_attention_heads != 0)
    fail("num_attention_heads",
         fmt::format("hidden_size {} is not divisible by num_attention_heads {} (set kv_channels)", hidden_size,
                     num_attention_heads));
  if (num_attention_heads % std::max(1, tensor_model_parallel_size) != 0)
    fail("num_attention_heads", fmt::format("{} heads are not divisible by tensor_model_parallel_size {}",
                                            num_attention_heads, tensor_model_parallel_size));
  if (ffn_hidden_size < 0) fail("ffn_hidden_size", fmt::format("must be positive, got {}", ffn_hidden_size));
  if (init_method_std <= 0.0f) fail("init_method_std", fmt::format("must be positive, got {}", init_method_std));
  if (hidden_dropout < 0.0f || hidden_dropout >= 1.0f)
    fail("hidden_dropout", fmt::format("must be in [0, 1), got {}", hidden_dropout));
  if (attention_dropout < 0.0f || attention_dropout >= 1.0f)
    fail("attention_dropout", fmt::format("must be in [0, 1), got {}", attention_dropout));
  if (layernorm_epsilon <= 0.0f) fail("layernorm_epsilon", fmt::format("must be positive, got {}", layernorm_epsilon));
  if (activations_checkpoint.granularity != CheckpointGranularity::kNone && activations_checkpoint.num_layers < 0)
    fail("activations_checkpoint_num_layers",
         fmt::format("must be >= 0, got {}", activations_checkpoint.num_layers));
  if (activations_checkpoint.granularity == CheckpointGranularity::kFull &&
      activations_checkpoint.method == CheckpointMethod::kUniform && activations_checkpoint.num_layers == 0)
    fail("activations_checkpoint_num_layers", "full/uniform checkpointing needs a chunk size >= 1");
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "16";
    case Precision::kFp32: break;
  }
  return "32";
}

Precision parse_precision(const std::string& text) {
  const std::string t = to_lower(trim(text));
  if (t == "32" || t == "fp32" || t == "32-true") return Precision::kFp32;
  if (t == "bf16" || t == "bf16-mixed") return Precision::kBf16;
  if (t == "16" || t == "fp16" || t == "16-mixed") return Precision::kFp16;
  throw ConfigError(fmt::format("trainer.precision: '{}' is not a precision; expected one of 32, bf16, 16", text));
}

namespace {

std::string granularity_name(CheckpointGranularity g) {
  return g == CheckpointGranularity::kFull ? "full" : g == CheckpointGranularity::kSelective ? "selective" : "";
}

}  // namespace

void to_json(nlohmann::json& j, const GptConfig& c) {
  j = nlohmann::json{
      {"vocab_size", c.vocab_size},
      {"make_vocab_size_divisible_by", c.make_vocab_size_divisible_by},
      {"padded_vocab_size", c.padded_vocab_size()},
      {"encoder_seq_length", c.seq_length},
      {"max_position_embeddings", c.positions()},
      {"num_layers", c.num_layers},
      {"hidden_size", c.hidden_size},
      {"ffn_hidden_size", c.ffn_size()},
      {"num_attention_heads", c.num_attention_heads},
      {"kv_channels", c.head_size()},
      {"init_method_std", c.init_method_std},
      {"use_scaled_init_method", c.use_scaled_init_method},
      {"hidden_dropout", c.hidden_dropout},
      {"attention_dropout", c.attention_dropout},
      {"apply_query_key_layer_scaling", c.apply_query_key_layer_scaling},
      {"layernorm_epsilon", c.layernorm_epsilon},
      {"activation", c.activation == ops::GeluApprox::kTanh ? "gelu_tanh" : "gelu"},
      {"precision", precision_name(c.precision)},
      {"activations_checkpoint_granularity",
       c.activations_checkpoint.granularity == CheckpointGranularity::kNone
           ? nlohmann::json(nullptr)
           : nlohmann::json(granularity_name(c.activations_checkpoint.granularity))},
      {"activations_checkpoint_method",
       c.activations_checkpoint.method == CheckpointMethod::kBlock ? "block" : "uniform"},
      {"activations_checkpoint_num_layers", c.activations_checkpoint.num_layers},
      {"tensor_model_parallel_size", c.tensor_model_parallel_size},
  };
}

void from_json(const nlohmann::json& j, GptConfig& c) {
  c = GptConfig{};
  c.vocab_size = j.at("vocab_size").get<std::int64_t>();
  c.make_vocab_size_divisible_by = j.at("make_vocab_size_divisible_by").get<std::int64_t>();
  c.seq_length = j.at("encoder_seq_length").get<std::int64_t>();
  c.max_position_embeddings = j.at("max_position_embeddings").get<std::int64_t>();
  c.num_layers = j.at("num_layers").get<int>();
  c.hidden_size = j.at("hidden_size").get<std::int64_t>();
  c.ffn_hidden_size = j.at("ffn_hidden_size").get<std::int64_t>();
  c.num_attention_heads = j.at("num_attention_heads").get<int>();
  c.kv_channels = j.at("kv_channels").get<std::int64_t>();
  c.init_method_std = j.at("init_method_std").get<float>();
  c.use_scaled_init_method = j.at("use_scaled_init_method").get<bool>();
  c.hidden_dropout = j.at("hidden_dropout").get<float>();
  c.attention_dropout = j.at("attention_dropout").get<float>();
  c.apply_query_key_layer_scaling = j.at("apply_query_key_layer_scaling").get<bool>();
  c.layernorm_epsilon = j.at("layernorm_epsilon").get<float>();
  c.activation = j.at("activation").get<std::string>() == "gelu_tanh" ? ops::GeluApprox::kTanh : ops::GeluApprox::kErf;
  c.precision = parse_precision(j.at("precision").get<std::string>());
  const auto& g = j.at("activations_checkpoint_granularity");
  c.activations_checkpoint.granularity = g.is_null()                ? CheckpointGranularity::kNone
                                         : g.get<std::string>() == "full" ? CheckpointGranularity::kFull
                                                                          : CheckpointGranularity::kSelective;
  c.activations_checkpoint.method =
      j.at("activations_checkpoint_method").get<std::string>() == "block" ? CheckpointMethod::kBlock
                                                                          : CheckpointMethod::kUniform;
  c.activations_checkpoint.num_layers = j.at("activations_checkpoint_num_layers").get<int>();
  c.tensor_model_parallel_size = j.value("tensor_model_parallel_size", 1);
}

sizing::GptShape gpt_shape(const GptConfig& c) {
  sizing::GptShape s;
  s.num_layers = c.num_layers;
  s.hidden_size = c.hidden_size;
  s.ffn_hidden_size = c.ffn_size();
  s.num_attention_heads = c.num_attention_heads;
  // HS only when it is defined (a config with no heads yet still has FLOPs and a vocabulary).
  s.head_size = c.kv_channels > 0 || c.num_attention_heads > 0 ? c.head_size() : 0;
  s.vocab_size = c.vocab_size;
  s.padded_vocab_size = c.padded_vocab_size();
  s.max_position_embeddings = c.positions();
  s.seq_length = c.seq_length;
  return s;
}

double model_flops_per_sequence(const GptConfig& c) { return sizing::model_flops_per_sequence(gpt_shape(c)); }

}  // namespace bignlp::model
