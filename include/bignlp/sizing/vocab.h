// The padded vocabulary size of a Megatron model, in one place (formats.md §4.4).
//
// The embedding (and the checkpoint's word_embeddings rows, FasterTransformer's model.wte.bin) has
// the smallest multiple of make_vocab_size_divisible_by * tensor_model_parallel_size that is >= the
// tokenizer's vocabulary. GPT-2 (50257) with the default 128 gives 50304 at TP=1, 50432 at TP=2,
// 50688 at TP=4 and 51200 at TP=8. The model configs (model::GptConfig) and the model shapes of
// this library (gpt_shape.h, t5_shape.h) take Vp from here.
#pragma once

#include <cstdint>

namespace bignlp::sizing {

/// Vp for a tokenizer of `vocab_size` ids. Throws ConfigError when a factor is not positive or the
/// vocabulary is negative.
std::int64_t padded_vocab_size(std::int64_t vocab_size, std::int64_t make_vocab_size_divisible_by,
                               std::int64_t tensor_model_parallel_size);

}  // namespace bignlp::sizing
