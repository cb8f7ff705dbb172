#include "bignlp/sizing/gpt_shape.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::sizing {

LayerShape GptShape::layer() const {
  LayerShape l;
  l.hidden_size = hidden_size;
  l.ffn_hidden_size = ffn_hidden_size;
  l.num_attention_heads = num_attention_heads;
  l.head_size = head_size;
  l.gated_mlp = gated_mlp;
  l.linear_bias = linear_bias;
  l.norm_bias = norm_bias;
  return l;
}

std::int64_t parameter_count(const GptShape& shape) {
  const std::int64_t c = shape.hidden_size;
  const std::int64_t embedding = shape.padded_vocab_size * c;
  const std::int64_t positions = shape.learned_position_embeddings ? shape.max_position_embeddings * c : 0;
  const std::int64_t final_norm = shape.norm_bias ? 2 * c : c;
  const std::int64_t output = shape.tied_output ? 0 : shape.padded_vocab_size * c;
  return shape.num_layers * layer_parameter_count(shape.layer()) + embedding + positions + final_norm + output;
}

std::int64_t rank_parameter_count(const GptShape& shape, const ModelParallelRank& rank) {
  if (rank.tp_size < 1 || rank.pp_size < 1)
    throw ConfigError(fmt::format("parallel sizes must be positive, got tensor_model_parallel_size {} and "
                                  "pipeline_model_parallel_size {}",
                                  rank.tp_size, rank.pp_size));
  if (rank.pp_rank < 0 || rank.pp_rank >= rank.pp_size)
    throw ConfigError(fmt::format("pipeline rank {} is outside the {} stages", rank.pp_rank, rank.pp_size));
  if (shape.num_layers % rank.pp_size != 0)
    throw ConfigError(fmt::format("num_layers {} is not divisible by pipeline_model_parallel_size {}", shape.num_layers,
                                  rank.pp_size));
  if (shape.padded_vocab_size % rank.tp_size != 0)
    throw ConfigError(fmt::format("the padded vocabulary {} is not divisible by tensor_model_parallel_size {}",
                                  shape.padded_vocab_size, rank.tp_size));
  const std::int64_t c = shape.hidden_size;
  const std::int64_t vocab_shard = shape.padded_vocab_size / rank.tp_size * c;
  const bool first = rank.pp_rank == 0, last = rank.pp_rank == rank.pp_size - 1;
  std::int64_t n = shape.num_layers / rank.pp_size * layer_parameter_count(shape.layer(), rank.tp_size);
  if (first) n += vocab_shard + (shape.learned_position_embeddings ? shape.max_position_embeddings * c : 0);
  if (last) {
    n += shape.norm_bias ? 2 * c : c;
    // Tied: the first stage's embedding serves; a separate last stage keeps its own copy.
    if (!shape.tied_output || !first) n += vocab_shard;
  }
  return n;
}

namespace {

/// 2 FLOPs per multiply-add; forward + backward = 3 forwards. The expression order is the one
/// model::model_flops_per_sequence always had, so results stay bit-identical.
double benchmark_flops(const GptShape& shape) {
  const double l = shape.num_layers, h = static_cast<double>(shape.hidden_size),
               s = static_cast<double>(shape.seq_length);
  const double f = static_cast<double>(shape.ffn_hidden_size), v = static_cast<double>(shape.padded_vocab_size);
  const double m = shape.layer().mlp_matrices();
  const double attention = 24.0 * l * h * h + 12.0 * l * h * s;
  const double mlp = 6.0 * m * l * h * f;  // 48 L h^2 at the usual F = 4h, ungated
  const double embedding = 6.0 * v * h;
  return s * (attention + mlp + embedding);
}

}  // namespace

double model_flops_per_sequence(const GptShape& shape) { return benchmark_flops(shape); }

double hardware_flops_per_sequence(const GptShape& shape, Recompute recompute) {
  const double l = shape.num_layers, h = static_cast<double>(shape.hidden_size),
               s = static_cast<double>(shape.seq_length), f = static_cast<double>(shape.ffn_hidden_size);
  const double m = shape.layer().mlp_matrices();
  double extra = 0.0;
  if (recompute == Recompute::kFull) extra = s * l * (8.0 * h * h + 4.0 * h * s + 2.0 * m * h * f);
  if (recompute == Recompute::kSelective) extra = 4.0 * l * h * s * s;
  return benchmark_flops(shape) + extra;
}

}  // namespace bignlp::sizing
