#include "bignlp/sizing/memory.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/core/error.h"

namespace bignlp::sizing {

StateBytes state_bytes_per_parameter(Precision precision, bool distributed_optimizer, int dp_size) {
  if (dp_size < 1) throw ConfigError(fmt::format("the data-parallel size must be positive, got {}", dp_size));
  const double shards = distributed_optimizer ? static_cast<double>(dp_size) : 1.0;
  StateBytes b;
  b.gradients = 4.0;
  b.optimizer_state = 8.0 / shards;
  if (precision == Precision::kFp32) {
    b.weights = 4.0;  // the master weights themselves
  } else {
    b.weights = 2.0;
    b.master_weights = 4.0 / shards;
  }
  return b;
}

int activation_element_bytes(Precision precision) { return precision == Precision::kFp32 ? 4 : 2; }

namespace {

/// Sequence parallelism splits the replicated regions only with more than one TP rank.
bool sequence_parallel(const TrainingLayout& layout) { return layout.sequence_parallel && layout.tp_size > 1; }

/// The sbh-sized tensors a stage keeps outside its layers: divided by TP under sequence parallelism.
double hidden_bytes(std::int64_t seq, const TrainingLayout& layout, double element_bytes) {
  const double t = sequence_parallel(layout) ? layout.tp_size : 1;
  return element_bytes * static_cast<double>(seq) * static_cast<double>(layout.micro_batch_size) / t;
}

void check_layout(const TrainingLayout& layout) {
  if (layout.micro_batch_size < 1 || layout.num_micro_batches < 1)
    throw ConfigError(fmt::format("micro_batch_size ({}) and the number of micro-batches ({}) must be positive",
                                  layout.micro_batch_size, layout.num_micro_batches));
  if (layout.virtual_pipeline_size < 1)
    throw ConfigError(
        fmt::format("virtual_pipeline_model_parallel_size must be positive, got {}", layout.virtual_pipeline_size));
}

/// The static state of `parameters` under `layout`.
MemoryEstimate state_estimate(std::int64_t parameters, const TrainingLayout& layout) {
  const StateBytes b = state_bytes_per_parameter(layout.precision, layout.distributed_optimizer, layout.dp_size);
  const double n = static_cast<double>(parameters);
  MemoryEstimate m;
  m.parameters = parameters;
  m.weight_bytes = n * b.weights;
  m.gradient_bytes = n * b.gradients;
  m.master_weight_bytes = n * b.master_weights;
  m.optimizer_state_bytes = n * b.optimizer_state;
  return m;
}

/// The output layer on the last stage: the final norm's and the logits GEMM's inputs, and the fp32
/// logits of the loss (Korthikanti et al. §4.3).
double output_bytes(std::int64_t seq, std::int64_t hidden, std::int64_t padded_vocab, const TrainingLayout& layout) {
  const double e = activation_element_bytes(layout.precision);
  return 2.0 * hidden_bytes(seq, layout, e) * static_cast<double>(hidden) +
         4.0 * static_cast<double>(seq) * static_cast<double>(layout.micro_batch_size) *
             static_cast<double>(padded_vocab) / layout.tp_size;
}

}  // namespace

double layer_activation_bytes(const LayerShape& layer, std::int64_t seq, std::int64_t cross_seq,
                              const TrainingLayout& layout) {
  const double e = activation_element_bytes(layout.precision);
  const double s = static_cast<double>(seq), sk = static_cast<double>(cross_seq);
  const double b = static_cast<double>(layout.micro_batch_size), h = static_cast<double>(layer.hidden_size);
  const double p = static_cast<double>(layer.projection_size()), f = static_cast<double>(layer.ffn_hidden_size);
  const double a = layer.num_attention_heads, t = layout.tp_size;
  const double replicated_divisor = sequence_parallel(layout) ? t : 1.0;
  if (layout.recompute == Recompute::kFull) return e * s * b * h / replicated_divisor;
  // Per block: the norm's input and output (the projection input) and the dropout mask after it.
  const double blocks = layer.cross_attention ? 3.0 : 2.0;
  const double replicated = blocks * (2.0 * e + 1.0) * s * b * h;
  // The MLP keeps the activation's input and the output projection's input (gated: both branches
  // and their product).
  const double mlp_tensors = layer.gated_mlp ? 3.0 : 2.0;
  double split = 4.0 * e * s * b * p + mlp_tensors * e * s * b * f;
  double scores = (2.0 * e + 1.0) * a * s * s * b;
  if (layer.cross_attention) {
    split += 2.0 * e * s * b * p + 2.0 * e * sk * b * p;
    scores += (2.0 * e + 1.0) * a * s * sk * b;
  }
  if (layout.recompute == Recompute::kSelective) scores = 0.0;
  return replicated / replicated_divisor + (split + scores) / t;
}

MemoryEstimate memory_per_rank(const GptShape& shape, const TrainingLayout& layout, int pp_rank) {
  check_layout(layout);
  MemoryEstimate m = state_estimate(rank_parameter_count(shape, layout.rank(pp_rank)), layout);
  const int p = layout.pp_size, v = layout.virtual_pipeline_size, r = pp_rank;
  if (shape.num_layers % (p * v) != 0)
    throw ConfigError(fmt::format("num_layers {} is not divisible by pipeline_model_parallel_size {} x "
                                  "virtual_pipeline_model_parallel_size {}",
                                  shape.num_layers, p, v));
  // Model chunks (of L / (PP v) layers) whose activations the 1F1B schedule holds at its peak.
  const std::int64_t chunks =
      v == 1 ? std::min<std::int64_t>(p - r, layout.num_micro_batches)
             : std::min<std::int64_t>(2 * (p - r - 1) + static_cast<std::int64_t>(v - 1) * p + 1,
                                      layout.num_micro_batches * v);
  const std::int64_t micro_batches = std::min<std::int64_t>(p - r, layout.num_micro_batches);
  const std::int64_t chunk_layers = shape.num_layers / (p * v);
  const LayerShape layer = shape.layer();
  m.activation_bytes = static_cast<double>(chunks * chunk_layers) *
                       layer_activation_bytes(layer, shape.seq_length, 0, layout);
  if (layout.recompute == Recompute::kFull) {
    TrainingLayout whole = layout;
    whole.recompute = Recompute::kNone;
    m.activation_bytes += layer_activation_bytes(layer, shape.seq_length, 0, whole);
  }
  if (r == 0)  // the embedding's dropout mask
    m.activation_bytes +=
        static_cast<double>(micro_batches) * hidden_bytes(shape.seq_length, layout, 1.0) * shape.hidden_size;
  if (r == p - 1) m.activation_bytes += output_bytes(shape.seq_length, shape.hidden_size, shape.padded_vocab_size, layout);
  return m;
}

MemoryEstimate memory_per_rank(const T5Shape& shape, const TrainingLayout& layout, int pp_rank) {
  check_layout(layout);
  if (layout.virtual_pipeline_size != 1)
    throw ConfigError(fmt::format("virtual_pipeline_model_parallel_size {}: T5 has no interleaved pipeline schedule",
                                  layout.virtual_pipeline_size));
  MemoryEstimate m = state_estimate(rank_parameter_count(shape, layout.rank(pp_rank)), layout);
  const int p = layout.pp_size, r = pp_rank;
  const int k = p == 1 ? 1 : (layout.pipeline_split_rank > 0 ? layout.pipeline_split_rank : p / 2);
  const bool encoder_stage = p == 1 || r < k, decoder_stage = p == 1 || r >= k;
  const double micro_batches = static_cast<double>(std::min<std::int64_t>(p - r, layout.num_micro_batches));
  const double e = activation_element_bytes(layout.precision);
  const std::int64_t se = shape.encoder_seq_length, sd = shape.decoder_seq_length, c = shape.hidden_size;
  const LayerShape enc = shape.encoder_layer(), dec = shape.decoder_layer();
  TrainingLayout whole = layout;
  whole.recompute = Recompute::kNone;
  double per_micro_batch = 0.0, working_set = 0.0;
  if (encoder_stage) {
    const int layers = p == 1 ? shape.encoder_num_layers : shape.encoder_num_layers / k;
    per_micro_batch += layers * layer_activation_bytes(enc, se, 0, layout);
    if (r == 0) per_micro_batch += hidden_bytes(se, layout, 1.0) * c;  // embedding dropout mask
    working_set = std::max(working_set, layer_activation_bytes(enc, se, 0, whole));
  }
  if (decoder_stage) {
    const int layers = p == 1 ? shape.decoder_num_layers : shape.decoder_num_layers / (p - k);
    per_micro_batch += layers * layer_activation_bytes(dec, sd, se, layout);
    per_micro_batch += hidden_bytes(se, layout, e) * c;  // the encoder output cross-attention reads
    if (r == k || p == 1) per_micro_batch += hidden_bytes(sd, layout, 1.0) * c;  // embedding dropout mask
    working_set = std::max(working_set, layer_activation_bytes(dec, sd, se, whole));
  }
  m.activation_bytes = micro_batches * per_micro_batch;
  if (layout.recompute == Recompute::kFull) m.activation_bytes += working_set;
  if (r == p - 1) m.activation_bytes += output_bytes(sd, c, shape.padded_vocab_size, layout);
  return m;
}

}  // namespace bignlp::sizing
