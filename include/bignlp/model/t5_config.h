// T5Config: every number and switch that shapes a NeMo Megatron T5 / mT5 (MegatronT5Model), as
// plain data with NeMo's `model.*` key names: the top-level keys and one T5StackConfig per stack
// (`model.encoder`, `model.decoder`, megatron-model.md §8.1).
//
// mT5 and T5 v1.1 are the same family with another config (rmsnorm without bias, no linear biases,
// gated MLP, relative positions, untied head). The struct validates itself and gives each stack's
// BlockSpec; it knows nothing about YAML (binding: train/config_binding).
// Refused by validate (not implemented): transformer_block_type other than pre_ln, a relative
// position bias on cross-attention (relative_position_bias_self_attention_only false), encoder and
// decoder with different position_embedding_type or hidden_size, ffn_dropout > 0, label_smoothing.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bignlp/model/block_spec.h"
#include "bignlp/model/gpt_config.h"
#include "bignlp/sizing/t5_shape.h"

namespace bignlp::model {

/// model.encoder / model.decoder.
struct T5StackConfig {
  int num_layers = 12;
  std::int64_t hidden_size = 768;
  std::int64_t ffn_hidden_size = 3072;
  int num_attention_heads = 12;
  std::int64_t kv_channels = 0;            ///< 0 (null): hidden_size / num_attention_heads
  float init_method_std = 0.02f;
  bool use_scaled_init_method = true;
  float hidden_dropout = 0.1f;
  float attention_dropout = 0.1f;
  std::string position_embedding_type = "learned_absolute";  ///< learned_absolute | relative
  int relative_attention_num_buckets = 32;
  int relative_attention_max_distance = 128;
  bool relative_position_bias_self_attention_only = true;
  bool apply_query_key_layer_scaling = true;
  float layernorm_epsilon = 1e-5f;
  std::string activation = "gelu";          ///< gelu, relu, swish/silu, geglu, reglu, swiglu
  bool bias_activation_fusion = true;       ///< the GeLU form: tanh (fused kernel) or erf
  bool openai_gelu = false;                 ///< tanh GeLU
  bool bias = true;
  std::string normalization = "layernorm";  ///< layernorm | rmsnorm
  bool normalize_attention_scores = true;   ///< false: no 1/sqrt(HS) (HF T5)
  ActivationCheckpointing activations_checkpoint;

  std::int64_t head_size() const { return kv_channels > 0 ? kv_channels : hidden_size / num_attention_heads; }
  bool relative() const { return position_embedding_type == "relative"; }
};

struct T5Config {
  std::int64_t vocab_size = 0;                  ///< V: tokenizer vocabulary (with sentinels)
  std::int64_t make_vocab_size_divisible_by = 128;
  std::int64_t encoder_seq_length = 0;          ///< model.seq_length (Te)
  std::int64_t decoder_seq_length = 0;          ///< model.data.seq_length_dec (Td; 0: unknown)
  std::int64_t max_position_embeddings = 0;     ///< P (0: encoder_seq_length)
  T5StackConfig encoder, decoder;
  float embedding_init_method_std = 0.02f;
  float embedding_dropout = 0.1f;
  bool share_token_embeddings = true;
  bool share_decoder_tokens_head_embeddings = true;
  bool tokens_head_bias = true;                 ///< the tied head's (Vp) bias
  int pipeline_model_parallel_split_rank = 0;
  Precision precision = Precision::kFp32;
  int tensor_model_parallel_size = 1;
  /// The token the decoder starts from when scoring a continuation (NeMo: the tokenizer's BOS;
  /// HF T5: decoder_start_token_id = pad = 0). -1: unknown (scoring then needs it given).
  std::int64_t decoder_start_token_id = -1;

  std::int64_t padded_vocab_size() const;
  std::int64_t positions() const { return max_position_embeddings > 0 ? max_position_embeddings : encoder_seq_length; }
  bool relative() const { return encoder.relative(); }
  DType compute_dtype() const;
  std::int64_t num_parameters() const;
  /// Throws ConfigError naming the model.* key for inconsistent or unsupported values.
  void validate() const;
};

/// The block of stack `decoder` (false: the encoder) of `config`.
BlockSpec t5_block_spec(const T5Config& config, bool decoder);

void to_json(nlohmann::json& j, const T5Config& c);
void from_json(const nlohmann::json& j, T5Config& c);

/// The model's shape for bignlp::sizing (Td: decoder_seq_length, or encoder_seq_length when unknown).
sizing::T5Shape t5_shape(const T5Config& c);

}  // namespace bignlp::model
