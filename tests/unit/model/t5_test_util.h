// Shared helpers of the T5 tests: a small T5 config and padded encoder-decoder batches.
#pragma once

#include <random>
#include <vector>

#include "bignlp/model/t5.h"

namespace bignlp::model::testing {

inline T5Config tiny_t5_config() {
  T5Config c;
  c.vocab_size = 100;  // padded to 128
  c.make_vocab_size_divisible_by = 64;
  c.encoder_seq_length = 9;
  c.decoder_seq_length = 6;
  c.max_position_embeddings = 10;
  for (T5StackConfig* s : {&c.encoder, &c.decoder}) {
    s->num_layers = 2;
    s->hidden_size = 32;
    s->ffn_hidden_size = 40;
    s->num_attention_heads = 4;
    s->kv_channels = 6;  // projection 24 != hidden 32
    s->init_method_std = 0.05f;
    s->hidden_dropout = 0.0f;
    s->attention_dropout = 0.0f;
    s->activation = "gelu";
  }
  c.decoder.num_layers = 3;
  c.embedding_init_method_std = 0.05f;
  c.embedding_dropout = 0.0f;
  return c;
}

/// Host tensors of an encoder-decoder batch; views point into the vectors.
struct T5HostBatch {
  std::vector<std::int32_t> enc, dec, labels, enc_len, dec_len;
  std::vector<float> loss_mask;
  std::int64_t b = 0, te = 0, td = 0;
  Batch view() {
    return Batch{.tokens = TensorView(dec.data(), DType::kI32, Shape{b, td}),
                 .labels = TensorView(labels.data(), DType::kI32, Shape{b, td}),
                 .loss_mask = TensorView(loss_mask.data(), DType::kF32, Shape{b, td}),
                 .encoder_tokens = TensorView(enc.data(), DType::kI32, Shape{b, te}),
                 .encoder_lengths = TensorView(enc_len.data(), DType::kI32, Shape{b}),
                 .decoder_lengths = TensorView(dec_len.data(), DType::kI32, Shape{b})};
  }
};

/// Row i has encoder length te - 2i and decoder length td - i (at least 1); padding is token 0,
/// loss_mask 1 over the decoder length.
inline T5HostBatch random_t5_batch(std::int64_t b, std::int64_t te, std::int64_t td, int vocab, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(1, vocab - 1);
  T5HostBatch hb;
  hb.b = b;
  hb.te = te;
  hb.td = td;
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t le = std::max<std::int64_t>(1, te - 2 * i), ld = std::max<std::int64_t>(1, td - i);
    hb.enc_len.push_back(static_cast<std::int32_t>(le));
    hb.dec_len.push_back(static_cast<std::int32_t>(ld));
    for (std::int64_t t = 0; t < te; ++t) hb.enc.push_back(t < le ? tok(rng) : 0);
    for (std::int64_t t = 0; t < td; ++t) {
      hb.dec.push_back(t < ld ? tok(rng) : 0);
      hb.labels.push_back(t < ld ? tok(rng) : 0);
      hb.loss_mask.push_back(t < ld ? 1.0f : 0.0f);
    }
  }
  return hb;
}

}  // namespace bignlp::model::testing
