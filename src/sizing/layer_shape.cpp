#include "bignlp/sizing/layer_shape.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::sizing {

std::int64_t layer_parameter_count(const LayerShape& layer, int tp_size) {
  if (tp_size < 1) throw ConfigError(fmt::format("tensor_model_parallel_size must be positive, got {}", tp_size));
  if (layer.num_attention_heads % tp_size != 0)
    throw ConfigError(fmt::format("num_attention_heads {} is not divisible by tensor_model_parallel_size {}",
                                  layer.num_attention_heads, tp_size));
  if (layer.ffn_hidden_size % tp_size != 0)
    throw ConfigError(fmt::format("ffn_hidden_size {} is not divisible by tensor_model_parallel_size {}",
                                  layer.ffn_hidden_size, tp_size));
  const std::int64_t c = layer.hidden_size;
  const std::int64_t p = layer.projection_size() / tp_size;  // this rank's heads * HS
  const std::int64_t f = layer.ffn_hidden_size / tp_size;    // this rank's MLP columns
  const std::int64_t b = layer.linear_bias ? 1 : 0;
  // Replicated: the norms and the row-parallel biases (attention dense, MLP output).
  const std::int64_t norms = layer.norms() * c * (layer.norm_bias ? 2 : 1);
  const std::int64_t self_attention = 3 * p * c + b * 3 * p + p * c + b * c;
  const std::int64_t cross_attention =
      layer.cross_attention ? (p * c + b * p) + (2 * p * c + b * 2 * p) + (p * c + b * c) : 0;
  const int inputs = layer.gated_mlp ? 2 : 1;
  const std::int64_t mlp = inputs * (f * c + b * f) + f * c + b * c;
  return norms + self_attention + cross_attention + mlp;
}

}  // namespace bignlp::sizing
