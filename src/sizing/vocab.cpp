#include "bignlp/sizing/vocab.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::sizing {

std::int64_t padded_vocab_size(std::int64_t vocab_size, std::int64_t make_vocab_size_divisible_by,
                               std::int64_t tensor_model_parallel_size) {
  if (make_vocab_size_divisible_by <= 0) {
    throw ConfigError(fmt::format("make_vocab_size_divisible_by must be positive, got {}", make_vocab_size_divisible_by));
  }
  if (tensor_model_parallel_size <= 0) {
    throw ConfigError(fmt::format("tensor_model_parallel_size must be positive, got {}", tensor_model_parallel_size));
  }
  if (vocab_size < 0) throw ConfigError(fmt::format("vocabulary size must be non-negative, got {}", vocab_size));
  const std::int64_t multiple = make_vocab_size_divisible_by * tensor_model_parallel_size;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

}  // namespace bignlp::sizing
