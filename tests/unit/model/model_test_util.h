// Shared helpers of the model tests: a small GPT config and random batches.
#pragma once

#include <random>
#include <vector>

#include "bignlp/model/gpt.h"

namespace bignlp::model::testing {

inline GptConfig tiny_config() {
  GptConfig c;
  c.vocab_size = 100;  // padded to 128
  c.make_vocab_size_divisible_by = 64;
  c.seq_length = 8;
  c.max_position_embeddings = 10;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.ffn_hidden_size = 48;
  c.num_attention_heads = 4;
  c.init_method_std = 0.05f;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  return c;
}

/// Host tensors of a (B, T) batch; views point into the vectors.
struct HostBatch {
  std::vector<std::int32_t> tokens, labels;
  std::vector<float> loss_mask;
  std::int64_t b = 0, t = 0;
  Batch view() {
    return Batch{.tokens = TensorView(tokens.data(), DType::kI32, Shape{b, t}),
                 .labels = TensorView(labels.data(), DType::kI32, Shape{b, t}),
                 .loss_mask = TensorView(loss_mask.data(), DType::kF32, Shape{b, t})};
  }
};

inline HostBatch random_batch(std::int64_t b, std::int64_t t, int vocab, std::uint32_t seed, bool partial_mask = true) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  HostBatch hb;
  hb.b = b;
  hb.t = t;
  for (std::int64_t i = 0; i < b * t; ++i) {
    hb.tokens.push_back(tok(rng));
    hb.labels.push_back(tok(rng));
    hb.loss_mask.push_back(partial_mask && i % 5 == 3 ? 0.0f : 1.0f);
  }
  return hb;
}

}  // namespace bignlp::model::testing
