// GptConfig: every number and switch that shapes a Megatron GPT, as plain data.
//
// Field names follow the NeMo `model.*` keys they come from (binding: train/config_binding). The
// struct knows its derived sizes (padded vocabulary, head size) and validates itself; it knows
// nothing about YAML. Not handled (rejected by validate): post-LN / normformer blocks, rope,
// untied output layers, fp32 residual connections, GLU activations.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bignlp/ops/ops.h"
#include "bignlp/sizing/gpt_shape.h"
#include "bignlp/tensor/dtype.h"

namespace bignlp::model {

/// trainer.precision: 32, bf16 (compute in bf16, fp32 master weights/grads/optimizer state, NeMo
/// megatron_amp_O2 semantics), 16 (the same scheme in fp16, with dynamic loss scaling).
enum class Precision { kFp32, kBf16, kFp16 };

/// activations_checkpoint_granularity: null | selective | full.
enum class CheckpointGranularity { kNone, kSelective, kFull };
/// activations_checkpoint_method: uniform | block.
enum class CheckpointMethod { kUniform, kBlock };

struct ActivationCheckpointing {
  CheckpointGranularity granularity = CheckpointGranularity::kNone;
  CheckpointMethod method = CheckpointMethod::kUniform;
  int num_layers = 1;  ///< chunk size (full+uniform) or count of leading layers (block)
};

struct GptConfig {
  std::int64_t vocab_size = 0;                    ///< V: tokenizer vocabulary
  std::int64_t make_vocab_size_divisible_by = 128;
  std::int64_t seq_length = 0;                    ///< T: encoder_seq_length
  std::int64_t max_position_embeddings = 0;       ///< P (0: seq_length)
  int num_layers = 0;                             ///< L
  std::int64_t hidden_size = 0;                   ///< C
  std::int64_t ffn_hidden_size = 0;               ///< F (0: 4C)
  int num_attention_heads = 0;                    ///< NH
  std::int64_t kv_channels = 0;                   ///< HS (0: C / NH)
  float init_method_std = 0.02f;
  bool use_scaled_init_method = true;             ///< output projections use std / sqrt(2L)
  float hidden_dropout = 0.1f;
  float attention_dropout = 0.1f;
  bool apply_query_key_layer_scaling = true;      ///< accepted; numerically neutral (scores are fp32)
  float layernorm_epsilon = 1e-5f;
  ops::GeluApprox activation = ops::GeluApprox::kTanh;
  Precision precision = Precision::kFp32;
  ActivationCheckpointing activations_checkpoint;
  /// model.tensor_model_parallel_size: pads the vocabulary; the model checks its parallel context
  /// has this many TP ranks (the training config reads it from here).
  int tensor_model_parallel_size = 1;

  /// Vp: the smallest multiple of make_vocab_size_divisible_by * TP >= V (50257 -> 50304 at TP 1).
  std::int64_t padded_vocab_size() const;
  std::int64_t head_size() const { return kv_channels > 0 ? kv_channels : hidden_size / num_attention_heads; }
  std::int64_t ffn_size() const { return ffn_hidden_size > 0 ? ffn_hidden_size : 4 * hidden_size; }
  std::int64_t positions() const { return max_position_embeddings > 0 ? max_position_embeddings : seq_length; }
  /// NH * HS: width of the attention projections.
  std::int64_t projection_size() const { return head_size() * num_attention_heads; }
  /// The dtype activations and the compute copy of the weights use.
  DType compute_dtype() const;
  /// Total parameters (tied output layer counted once): sizing::parameter_count of gpt_shape().
  std::int64_t num_parameters() const;

  /// Throws ConfigError naming the model.* key for inconsistent values.
  void validate() const;
};

/// "32", "bf16", "16" (as trainer.precision spells them); parse accepts 32/fp32, bf16, 16/fp16.
std::string precision_name(Precision p);
Precision parse_precision(const std::string& text);

/// JSON form (checkpoint metadata) with the NeMo key names.
void to_json(nlohmann::json& j, const GptConfig& c);
void from_json(const nlohmann::json& j, GptConfig& c);

/// The model's shape for the arithmetic of bignlp::sizing (parameter counts, FLOPs, memory): every
/// default resolved (F, HS, P, Vp at tensor_model_parallel_size); biases, learned positions and a
/// tied output, ungated MLP, as GptModel builds it.
sizing::GptShape gpt_shape(const GptConfig& c);

/// Model FLOPs of one sequence of `seq_length` tokens, forward + backward (recompute not counted):
/// T * (24 L C^2 + 12 L C T + 48 L C^2 + 6 Vp C) with C = hidden, the formula of the GPT-3 benchmark
/// recipe (attention 24LC^2 + 12LCT, MLP 48LC^2, embedding 6VC). Example 175B: 2.20e15.
/// sizing::model_flops_per_sequence of gpt_shape(c).
double model_flops_per_sequence(const GptConfig& c);

}  // namespace bignlp::model
