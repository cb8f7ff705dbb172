#include "bignlp/model/t5_config.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::model {
namespace {

std::string granularity_name(CheckpointGranularity g) {
  return g == CheckpointGranularity::kFull ? "full" : g == CheckpointGranularity::kSelective ? "selective" : "";
}

nlohmann::json stack_json(const T5StackConfig& s) {
  const auto& ac = s.activations_checkpoint;
  return nlohmann::json{
      {"num_layers", s.num_layers},
      {"hidden_size", s.hidden_size},
      {"ffn_hidden_size", s.ffn_hidden_size},
      {"num_attention_heads", s.num_attention_heads},
      {"kv_channels", s.head_size()},
      {"init_method_std", s.init_method_std},
      {"use_scaled_init_method", s.use_scaled_init_method},
      {"hidden_dropout", s.hidden_dropout},
      {"attention_dropout", s.attention_dropout},
      {"position_embedding_type", s.position_embedding_type},
      {"relative_attention_num_buckets", s.relative_attention_num_buckets},
      {"relative_attention_max_distance", s.relative_attention_max_distance},
      {"relative_position_bias_self_attention_only", s.relative_position_bias_self_attention_only},
      {"apply_query_key_layer_scaling", s.apply_query_key_layer_scaling},
      {"layernorm_epsilon", s.layernorm_epsilon},
      {"activation", s.activation},
      {"bias_activation_fusion", s.bias_activation_fusion},
      {"openai_gelu", s.openai_gelu},
      {"bias", s.bias},
      {"normalization", s.normalization},
      {"normalize_attention_scores", s.normalize_attention_scores},
      {"activations_checkpoint_granularity",
       ac.granularity == CheckpointGranularity::kNone ? nlohmann::json(nullptr)
                                                      : nlohmann::json(granularity_name(ac.granularity))},
      {"activations_checkpoint_method", ac.method == CheckpointMethod::kBlock ? "block" : "uniform"},
      {"activations_checkpoint_num_layers", ac.num_layers},
  };
}

T5StackConfig stack_from_json(const nlohmann::json& j) {
  T5StackConfig s;
  s.num_layers = j.value("num_layers", s.num_layers);
  s.hidden_size = j.value("hidden_size", s.hidden_size);
  s.ffn_hidden_size = j.value("ffn_hidden_size", s.ffn_hidden_size);
  s.num_attention_heads = j.value("num_attention_heads", s.num_attention_heads);
  if (j.contains("kv_channels") && !j.at("kv_channels").is_null()) s.kv_channels = j.at("kv_channels").get<std::int64_t>();
  s.init_method_std = j.value("init_method_std", s.init_method_std);
  s.use_scaled_init_method = j.value("use_scaled_init_method", s.use_scaled_init_method);
  s.hidden_dropout = j.value("hidden_dropout", s.hidden_dropout);
  s.attention_dropout = j.value("attention_dropout", s.attention_dropout);
  s.position_embedding_type = j.value("position_embedding_type", s.position_embedding_type);
  s.relative_attention_num_buckets = j.value("relative_attention_num_buckets", s.relative_attention_num_buckets);
  s.relative_attention_max_distance = j.value("relative_attention_max_distance", s.relative_attention_max_distance);
  s.relative_position_bias_self_attention_only =
      j.value("relative_position_bias_self_attention_only", s.relative_position_bias_self_attention_only);
  s.apply_query_key_layer_scaling = j.value("apply_query_key_layer_scaling", s.apply_query_key_layer_scaling);
  s.layernorm_epsilon = j.value("layernorm_epsilon", s.layernorm_epsilon);
  s.activation = j.value("activation", s.activation);
  s.bias_activation_fusion = j.value("bias_activation_fusion", s.bias_activation_fusion);
  s.openai_gelu = j.value("openai_gelu", s.openai_gelu);
  s.bias = j.value("bias", s.bias);
  s.normalization = j.value("normalization", s.normalization);
  s.normalize_attention_scores = j.value("normalize_attention_scores", s.normalize_attention_scores);
  auto& ac = s.activations_checkpoint;
  if (j.contains("activations_checkpoint_granularity") && !j.at("activations_checkpoint_granularity").is_null()) {
    const std::string g = j.at("activations_checkpoint_granularity").get<std::string>();
    ac.granularity = g == "full" ? CheckpointGranularity::kFull : CheckpointGranularity::kSelective;
  }
  ac.method = j.value("activations_checkpoint_method", std::string("uniform")) == "block" ? CheckpointMethod::kBlock
                                                                                          : CheckpointMethod::kUniform;
  ac.num_layers = j.value("activations_checkpoint_num_layers", 1);
  return s;
}

void validate_stack(const T5StackConfig& s, const std::string& stack, int tp) {
  const auto fail = [&](const std::string& key, const std::string& msg) {
    throw ConfigError(fmt::format("model.{}.{}: {}", stack, key, msg));
  };
  if (s.num_layers <= 0) fail("num_layers", fmt::format("must be positive, got {}", s.num_layers));
  if (s.hidden_size <= 0) fail("hidden_size", fmt::format("must be positive, got {}", s.hidden_size));
  if (s.ffn_hidden_size <= 0) fail("ffn_hidden_size", fmt::format("must be positive, got {}", s.ffn_hidden_size));
  if (s.num_attention_heads <= 0)
    fail("num_attention_heads", fmt::format("must be positive, got {}", s.num_attention_heads));
  if (s.kv_channels == 0 && s.hidden_size % s.num_attention_heads != 0)
    fail("num_attention_heads", fmt::format("hidden_size {} is not divisible by {} heads (set kv_channels)",
                                            s.hidden_size, s.num_attention_heads));
  if (s.num_attention_heads % tp != 0)
    fail("num_attention_heads",
         fmt::format("{} heads are not divisible by tensor_model_parallel_size {}", s.num_attention_heads, tp));
  if (s.ffn_hidden_size % tp != 0)
    fail("ffn_hidden_size",
         fmt::format("{} is not divisible by tensor_model_parallel_size {}", s.ffn_hidden_size, tp));
  if (s.init_method_std <= 0.0f) fail("init_method_std", fmt::format("must be positive, got {}", s.init_method_std));
  if (s.hidden_dropout < 0.0f || s.hidden_dropout >= 1.0f)
    fail("hidden_dropout", fmt::format("must be in [0, 1), got {}", s.hidden_dropout));
  if (s.attention_dropout < 0.0f || s.attention_dropout >= 1.0f)
    fail("attention_dropout", fmt::format("must be in [0, 1), got {}", s.attention_dropout));
  if (s.position_embedding_type != "learned_absolute" && s.position_embedding_type != "relative")
    fail("position_embedding_type",
         fmt::format("'{}' is not supported (learned_absolute or relative)", s.position_embedding_type));
  if (s.relative()) {
    if (s.relative_attention_num_buckets < 4)
      fail("relative_attention_num_buckets", fmt::format("must be >= 4, got {}", s.relative_attention_num_buckets));
    if (s.relative_attention_max_distance <= s.relative_attention_num_buckets / 4)
      fail("relative_attention_max_distance",
           fmt::format("{} must exceed relative_attention_num_buckets / 4", s.relative_attention_max_distance));
    if (!s.relative_position_bias_self_attention_only)
      fail("relative_position_bias_self_attention_only",
           "False is not supported: the relative position bias applies to self-attention only");
  }
  if (s.layernorm_epsilon <= 0.0f) fail("layernorm_epsilon", fmt::format("must be positive, got {}", s.layernorm_epsilon));
  parse_activation(s.activation, fmt::format("model.{}.activation", stack));
  const Normalization n = parse_normalization(s.normalization, fmt::format("model.{}.normalization", stack));
  (void)n;
  const auto& ac = s.activations_checkpoint;
  if (ac.granularity != CheckpointGranularity::kNone && ac.num_layers < 0)
    fail("activations_checkpoint_num_layers", fmt::format("must be >= 0, got {}", ac.num_layers));
  if (ac.granularity == CheckpointGranularity::kFull && ac.method == CheckpointMethod::kUniform && ac.num_layers == 0)
    fail("activations_checkpoint_num_layers", "full/uniform checkpointing needs a chunk size >= 1");
}

}  // namespace

std::int64_t T5Config::padded_vocab_size() const {
  return sizing::padded_vocab_size(vocab_size, make_vocab_size_divisible_by, std::max(1, tensor_model_parallel_size));
}

DType T5Config::compute_dtype() const {
  switch (precision) {
    case Precision::kBf16: return DType::kBF16;
    case Precision::kFp16: return DType::kF16;
    case Precision::kFp32: break;
  }
  return DType::kF32;
}

std::int64_t T5Config::num_parameters() const {
  // Each stack with its own sizes (the encoder and decoder sections may differ beyond num_layers;
  // sizing::T5Shape takes one layer shape): equal to sizing::parameter_count(t5_shape()) when not.
  const std::int64_t c = encoder.hidden_size, vp = padded_vocab_size();
  const std::int64_t positions_params = relative() ? 0 : this->positions() * c;
  std::int64_t n = (share_token_embeddings ? 1 : 2) * (vp * c + positions_params);
  for (const bool dec : {false, true}) {
    const T5StackConfig& st = dec ? decoder : encoder;
    const BlockSpec spec = t5_block_spec(*this, dec);
    sizing::LayerShape l;
    l.hidden_size = spec.hidden_size;
    l.ffn_hidden_size = spec.ffn_hidden_size;
    l.num_attention_heads = spec.num_attention_heads;
    l.head_size = spec.kv_channels;
    l.gated_mlp = spec.gated_linear_unit;
    l.linear_bias = spec.bias;
    l.norm_bias = spec.normalization_bias;
    l.cross_attention = spec.cross_attention;
    n += st.num_layers * sizing::layer_parameter_count(l);
    n += c * (spec.normalization_bias ? 2 : 1);  // final norm
    if (st.relative()) n += static_cast<std::int64_t>(st.relative_attention_num_buckets) * st.num_attention_heads;
  }
  if (share_decoder_tokens_head_embeddings)
    n += tokens_head_bias ? vp : 0;
  else
    n += vp * c;
  return n;
}

void T5Config::validate() const {
  const auto fail = [](const std::string& key, const std::string& msg) {
    throw ConfigError(fmt::format("model.{}: {}", key, msg));
  };
  const int tp = std::max(1, tensor_model_parallel_size);
  if (vocab_size <= 0) fail("tokenizer", fmt::format("vocabulary size must be positive, got {}", vocab_size));
  if (make_vocab_size_divisible_by <= 0)
    fail("make_vocab_size_divisible_by", fmt::format("must be positive, got {}", make_vocab_size_divisible_by));
  if (encoder_seq_length <= 0) fail("seq_length", fmt::format("must be positive, got {}", encoder_seq_length));
  if (decoder_seq_length < 0) fail("data.seq_length_dec", fmt::format("must be positive, got {}", decoder_seq_length));
  if (max_position_embeddings != 0 && max_position_embeddings < encoder_seq_length)
    fail("max_position_embeddings",
         fmt::format("{} is smaller than seq_length {}", max_position_embeddings, encoder_seq_length));
  if (!relative() && decoder_seq_length > positions())
    fail("max_position_embeddings",
         fmt::format("{} is smaller than data.seq_length_dec {} (learned positions)", positions(), decoder_seq_length));
  validate_stack(encoder, "encoder", tp);
  validate_stack(decoder, "decoder", tp);
  if (encoder.hidden_size != decoder.hidden_size)
    fail("decoder.hidden_size", fmt::format("{} differs from model.encoder.hidden_size {}", decoder.hidden_size,
                                            encoder.hidden_size));
  if (encoder.position_embedding_type != decoder.position_embedding_type)
    fail("decoder.position_embedding_type",
         fmt::format("'{}' differs from model.encoder.position_embedding_type '{}' (not supported)",
                     decoder.position_embedding_type, encoder.position_embedding_type));
  if (embedding_init_method_std <= 0.0f)
    fail("embedding_init_method_std", fmt::format("must be positive, got {}", embedding_init_method_std));
  if (embedding_dropout < 0.0f || embedding_dropout >= 1.0f)
    fail("embedding_dropout", fmt::format("must be in [0, 1), got {}", embedding_dropout));
  if (decoder_start_token_id >= vocab_size)
    fail("decoder_start_token_id", fmt::format("{} outside the vocabulary [0, {})", decoder_start_token_id, vocab_size));
}

BlockSpec t5_block_spec(const T5Config& c, bool decoder) {
  const T5StackConfig& st = decoder ? c.decoder : c.encoder;
  const std::string stack = decoder ? "decoder" : "encoder";
  BlockSpec s;
  s.hidden_size = st.hidden_size;
  s.ffn_hidden_size = st.ffn_hidden_size;
  s.num_attention_heads = st.num_attention_heads;
  s.kv_channels = st.head_size();
  s.num_layers = st.num_layers;
  s.normalization = parse_normalization(st.normalization, "model." + stack + ".normalization");
  s.normalization_bias = s.normalization == Normalization::kLayerNorm;
  s.normalization_epsilon = st.layernorm_epsilon;
  const auto [act, gated] = parse_activation(st.activation, "model." + stack + ".activation");
  s.activation = act;
  // The fused bias-GeLU (and GeGLU) kernels and openai_gelu use the tanh form, F.gelu erf.
  if (act == ops::Activation::kGeluTanh && !st.bias_activation_fusion && !st.openai_gelu)
    s.activation = ops::Activation::kGeluErf;
  s.gated_linear_unit = gated;
  s.bias = st.bias;
  s.self_attention_mask = decoder ? SelfAttentionMask::kCausal : SelfAttentionMask::kBidirectional;
  s.cross_attention = decoder;
  s.position_bias = st.relative() ? PositionBias::kRelative : PositionBias::kNone;
  s.softmax_scale = st.normalize_attention_scores ? 0.0f : 1.0f;
  s.apply_query_key_layer_scaling = st.apply_query_key_layer_scaling;
  s.init_method_std = st.init_method_std;
  s.use_scaled_init_method = st.use_scaled_init_method;
  s.hidden_dropout = st.hidden_dropout;
  s.attention_dropout = st.attention_dropout;
  s.naming = decoder ? BlockNaming::t5_decoder() : BlockNaming::t5_encoder();
  return s;
}

void to_json(nlohmann::json& j, const T5Config& c) {
  j = nlohmann::json{
      {"vocab_size", c.vocab_size},
      {"make_vocab_size_divisible_by", c.make_vocab_size_divisible_by},
      {"padded_vocab_size", c.padded_vocab_size()},
      {"seq_length", c.encoder_seq_length},
      {"seq_length_dec", c.decoder_seq_length},
      {"max_position_embeddings", c.positions()},
      {"encoder", stack_json(c.encoder)},
      {"decoder", stack_json(c.decoder)},
      {"embedding_init_method_std", c.embedding_init_method_std},
      {"embedding_dropout", c.embedding_dropout},
      {"share_token_embeddings", c.share_token_embeddings},
      {"share_decoder_tokens_head_embeddings", c.share_decoder_tokens_head_embeddings},
      {"tokens_head_bias", c.tokens_head_bias},
      {"pipeline_model_parallel_split_rank", c.pipeline_model_parallel_split_rank},
      {"precision", precision_name(c.precision)},
      {"tensor_model_parallel_size", c.tensor_model_parallel_size},
      {"decoder_start_token_id", c.decoder_start_token_id},
  };
}

void from_json(const nlohmann::json& j, T5Config& c) {
  c = T5Config{};
  c.vocab_size = j.at("vocab_size").get<std::int64_t>();
  c.make_vocab_size_divisible_by = j.value("make_vocab_size_divisible_by", c.make_vocab_size_divisible_by);
  c.encoder_seq_length = j.at("seq_length").get<std::int64_t>();
  c.decoder_seq_length = j.value("seq_length_dec", std::int64_t{0});
  c.max_position_embeddings = j.value("max_position_embeddings", std::int64_t{0});
  c.encoder = stack_from_json(j.at("encoder"));
  c.decoder = stack_from_json(j.at("decoder"));
  c.embedding_init_method_std = j.value("embedding_init_method_std", c.encoder.init_method_std);
  c.embedding_dropout = j.value("embedding_dropout", c.encoder.hidden_dropout);
  c.share_token_embeddings = j.value("share_token_embeddings", true);
  c.share_decoder_tokens_head_embeddings = j.value("share_decoder_tokens_head_embeddings", true);
  c.tokens_head_bias = j.value("tokens_head_bias", true);
  c.pipeline_model_parallel_split_rank = j.value("pipeline_model_parallel_split_rank", 0);
  c.precision = parse_precision(j.value("precision", std::string("32")));
  c.tensor_model_parallel_size = j.value("tensor_model_parallel_size", 1);
  c.decoder_start_token_id = j.value("decoder_start_token_id", std::int64_t{-1});
}

sizing::T5Shape t5_shape(const T5Config& c) {
  sizing::T5Shape s;
  s.encoder_num_layers = c.encoder.num_layers;
  s.decoder_num_layers = c.decoder.num_layers;
  s.hidden_size = c.encoder.hidden_size;
  s.ffn_hidden_size = c.encoder.ffn_hidden_size;
  s.num_attention_heads = c.encoder.num_attention_heads;
  s.kv_channels = c.encoder.num_attention_heads > 0 ? c.encoder.head_size() : 0;
  s.vocab_size = c.vocab_size;
  s.padded_vocab_size = c.padded_vocab_size();
  s.max_position_embeddings = c.positions();
  s.encoder_seq_length = c.encoder_seq_length;
  s.decoder_seq_length = c.decoder_seq_length > 0 ? c.decoder_seq_length : c.encoder_seq_length;
  s.position_embedding =
      c.relative() ? sizing::T5PositionEmbedding::kRelative : sizing::T5PositionEmbedding::kLearnedAbsolute;
  s.relative_attention_num_buckets = c.encoder.relative_attention_num_buckets;
  s.relative_position_bias_self_attention_only = c.encoder.relative_position_bias_self_attention_only;
  bool gated = false;
  try {
    gated = parse_activation(c.encoder.activation, "model.encoder.activation").second;
  } catch (const ConfigError&) {
  }
  s.gated_mlp = gated;
  s.linear_bias = c.encoder.bias;
  s.norm_bias = c.encoder.normalization != "rmsnorm" && c.encoder.normalization != "RMSNorm";
  s.share_token_embeddings = c.share_token_embeddings;
  s.tied_output = c.share_decoder_tokens_head_embeddings;
  s.output_bias = c.share_decoder_tokens_head_embeddings && c.tokens_head_bias;
  return s;
}

}  // namespace bignlp::model
