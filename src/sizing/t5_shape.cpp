#include "bignlp/sizing/t5_shape.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::sizing {

LayerShape T5Shape::encoder_layer() const {
  LayerShape l;
  l.hidden_size = hidden_size;
  l.ffn_hidden_size = ffn_hidden_size;
  l.num_attention_heads = num_attention_heads;
  l.head_size = kv_channels;
  l.gated_mlp = gated_mlp;
  l.linear_bias = linear_bias;
  l.norm_bias = norm_bias;
  return l;
}

LayerShape T5Shape::decoder_layer() const {
  LayerShape l = encoder_layer();
  l.cross_attention = true;
  return l;
}

namespace {

std::int64_t norm_params(const T5Shape& s) { return s.norm_bias ? 2 * s.hidden_size : s.hidden_size; }

std::int64_t position_params(const T5Shape& s) {
  return s.position_embedding == T5PositionEmbedding::kLearnedAbsolute ? s.max_position_embeddings * s.hidden_size
                                                                       : 0;
}

/// One relative-position table, (buckets, NH); zero without relative position bias.
std::int64_t relative_table(const T5Shape& s) {
  return s.position_embedding == T5PositionEmbedding::kRelative
             ? static_cast<std::int64_t>(s.relative_attention_num_buckets) * s.num_attention_heads
             : 0;
}

/// The decoder's tables: self-attention, and cross-attention unless self-attention only.
std::int64_t decoder_relative_tables(const T5Shape& s) {
  return relative_table(s) * (s.relative_position_bias_self_attention_only ? 1 : 2);
}

}  // namespace

std::int64_t parameter_count(const T5Shape& shape) {
  const std::int64_t c = shape.hidden_size, vp = shape.padded_vocab_size;
  const std::int64_t embedding_copies = shape.share_token_embeddings ? 1 : 2;
  const std::int64_t embeddings = embedding_copies * (vp * c + position_params(shape));
  const std::int64_t relative = relative_table(shape) + decoder_relative_tables(shape);
  const std::int64_t layers = shape.encoder_num_layers * layer_parameter_count(shape.encoder_layer()) +
                              shape.decoder_num_layers * layer_parameter_count(shape.decoder_layer());
  const std::int64_t head = (shape.tied_output ? 0 : vp * c) + (shape.output_bias ? vp : 0);
  return embeddings + relative + layers + 2 * norm_params(shape) + head;
}

std::int64_t rank_parameter_count(const T5Shape& shape, const ModelParallelRank& rank) {
  const int t = rank.tp_size, p = rank.pp_size, r = rank.pp_rank;
  if (t < 1 || p < 1)
    throw ConfigError(fmt::format("parallel sizes must be positive, got tensor_model_parallel_size {} and "
                                  "pipeline_model_parallel_size {}",
                                  t, p));
  if (r < 0 || r >= p) throw ConfigError(fmt::format("pipeline rank {} is outside the {} stages", r, p));
  if (shape.padded_vocab_size % t != 0)
    throw ConfigError(fmt::format("the padded vocabulary {} is not divisible by tensor_model_parallel_size {}",
                                  shape.padded_vocab_size, t));
  const std::int64_t c = shape.hidden_size;
  const std::int64_t vocab_rows = shape.padded_vocab_size / t;
  const std::int64_t word_shard = vocab_rows * c;
  const std::int64_t head_bias = shape.output_bias ? vocab_rows : 0;
  const std::int64_t enc_layer = layer_parameter_count(shape.encoder_layer(), t);
  const std::int64_t dec_layer = layer_parameter_count(shape.decoder_layer(), t);
  if (p == 1) {
    const std::int64_t copies = shape.share_token_embeddings ? 1 : 2;
    return copies * (word_shard + position_params(shape)) + relative_table(shape) + decoder_relative_tables(shape) +
           shape.encoder_num_layers * enc_layer + shape.decoder_num_layers * dec_layer + 2 * norm_params(shape) +
           (shape.tied_output ? 0 : word_shard) + head_bias;
  }
  const int k = rank.pipeline_split_rank > 0 ? rank.pipeline_split_rank : p / 2;
  if (k < 1 || k >= p)
    throw ConfigError(fmt::format("pipeline_model_parallel_split_rank {} must lie in [1, {}) for {} pipeline stages", k,
                                  p, p));
  if (shape.encoder_num_layers % k != 0)
    throw ConfigError(fmt::format("encoder num_layers {} is not divisible by the {} encoder pipeline stages",
                                  shape.encoder_num_layers, k));
  if (shape.decoder_num_layers % (p - k) != 0)
    throw ConfigError(fmt::format("decoder num_layers {} is not divisible by the {} decoder pipeline stages",
                                  shape.decoder_num_layers, p - k));
  std::int64_t n = 0;
  if (r < k) {
    n += shape.encoder_num_layers / k * enc_layer + relative_table(shape);
    if (r == 0) n += word_shard + position_params(shape);
    if (r == k - 1) n += norm_params(shape);
    return n;
  }
  n += shape.decoder_num_layers / (p - k) * dec_layer + decoder_relative_tables(shape);
  // The decoder's embedding: its own tables, or a copy of the encoder's kept equal by an all-reduce.
  if (r == k) n += word_shard + position_params(shape);
  if (r == p - 1) {
    n += norm_params(shape) + head_bias;
    // Tied: the decoder embedding serves when it is on this stage; otherwise this stage keeps a copy.
    if (!shape.tied_output || r != k) n += word_shard;
  }
  return n;
}

namespace {

struct T5ForwardFlops {
  double encoder_layer = 0, decoder_layer = 0, logits = 0;
  double encoder_core = 0, decoder_core = 0;  // the attention cores (QK^T and probs*V)
};

T5ForwardFlops forward_flops(const T5Shape& shape) {
  const double h = static_cast<double>(shape.hidden_size), f = static_cast<double>(shape.ffn_hidden_size);
  const double se = static_cast<double>(shape.encoder_seq_length), sd = static_cast<double>(shape.decoder_seq_length);
  const double v = static_cast<double>(shape.padded_vocab_size);
  const double m = shape.encoder_layer().mlp_matrices();
  T5ForwardFlops out;
  out.encoder_core = 4.0 * se * se * h;
  out.decoder_core = 4.0 * sd * sd * h + 4.0 * se * sd * h;
  out.encoder_layer = 8.0 * se * h * h + out.encoder_core + 2.0 * m * se * h * f;
  out.decoder_layer = 8.0 * sd * h * h + 4.0 * sd * h * h + 4.0 * se * h * h + out.decoder_core + 2.0 * m * sd * h * f;
  out.logits = 2.0 * sd * h * v;
  return out;
}

}  // namespace

double model_flops_per_sequence(const T5Shape& shape) {
  const T5ForwardFlops f = forward_flops(shape);
  return 3.0 * (shape.encoder_num_layers * f.encoder_layer + shape.decoder_num_layers * f.decoder_layer + f.logits);
}

double hardware_flops_per_sequence(const T5Shape& shape, Recompute recompute) {
  const T5ForwardFlops f = forward_flops(shape);
  double extra = 0.0;
  if (recompute == Recompute::kFull)
    extra = shape.encoder_num_layers * f.encoder_layer + shape.decoder_num_layers * f.decoder_layer;
  if (recompute == Recompute::kSelective)
    extra = shape.encoder_num_layers * f.encoder_core + shape.decoder_num_layers * f.decoder_core;
  return model_flops_per_sequence(shape) + extra;
}

}  // namespace bignlp::sizing
