// Model: the one interface every model family implements and everything above `model` uses.
//
// Pre-training, fine-tuning, prompt learning, evaluation, generation and export hold a `Model&`
// (built by a ModelFamilyRegistry, model_family.h), never a concrete family class. A model is this
// rank's share of the network: its parameters (named NeMo state-dict keys, with their TP split axes
// and trainable flags, in a ParameterStore), the forward and backward pass of one model chunk of
// one micro-batch (pipeline stages pass activations between chunks; the whole model on one stage
// is chunk 0), its loss on the head chunk, and per-token scores.
// Invariants: a family computes its micro-batch loss itself (Megatron's token mean under
// loss_mask); gradients accumulate in fp32 until ParameterStore::zero_grad; a forward with
// training=false keeps nothing for a backward. Not here: the optimizer, data order, checkpoints
// (train, checkpoint libraries) and the family's config binding (each family's config struct).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bignlp/model/parameters.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::model {

/// One micro-batch as a data loader gives it (host memory, batch-first). Each family reads the
/// fields it needs and rejects a batch that lacks them.
struct Batch {
  TensorView tokens{};           ///< (B, T) int32: the decoder's input (GPT: the tokens)
  TensorView labels{};           ///< (B, T) int32 targets (empty for passes without a loss)
  TensorView loss_mask{};        ///< (B, T) fp32, or empty for all ones
  TensorView position_ids{};     ///< (B, T) int32, or empty for 0..T-1
  TensorView encoder_tokens{};   ///< (B, Te) int32: the encoder's input (encoder-decoder families)
  TensorView encoder_lengths{};  ///< (B) int32 valid encoder tokens per row (key padding), or empty
  TensorView decoder_lengths{};  ///< (B) int32 valid decoder tokens per row, or empty
};

/// The random stream of one micro-batch.
struct DropoutRng {
  std::uint64_t seed = 0;
  std::uint64_t offset_base = 0;  ///< dropout_offset(step, micro_batch, num_micro_batches)
};

/// Philox offset of site 0 for micro-batch `micro` of optimizer step `step` (M micro-batches per
/// step): ((step * M + micro) << 20). Sites of one micro-batch stay below 2^20 (L < 349525).
std::uint64_t dropout_offset(std::int64_t step, std::int64_t micro, std::int64_t num_micro_batches);

/// What a forward pass of one chunk keeps for its backward pass; each family derives its own.
struct Activations {
  virtual ~Activations() = default;
  int chunk = 0;         ///< the model chunk these activations belong to
  float loss = 0.0f;     ///< the micro-batch loss (head chunk with labels; else 0)
};

/// Per-token results of a scoring pass, batch-first (index b*T + t).
struct TokenScores {
  std::vector<float> logprob;        ///< log p(labels[b][t] | inputs up to t)
  std::vector<std::int32_t> argmax;  ///< most likely next token over the real vocabulary [0, V)
};

/// Keys and values of past positions for incremental decoding (Model::decode). A slot holds one
/// sequence; per layer of this stage, keys[l] and values[l] are (slots, capacity, width) in the
/// compute dtype (width: this rank's heads times the head size), position t of slot s at row t.
/// Encoder-decoder families (Model::encode) also keep, per decoder layer, the cross-attention keys
/// and values of encoded inputs: cross_keys[l], cross_values[l] (slots, encoder_capacity, width),
/// computed once per input; encoder slot e holds encoder_lengths[e] valid positions, and decoder
/// slot s attends to encoder slot cross_source[s] (beams of one request share one encoded input).
struct KvCache {
  std::int64_t slots = 0;
  std::int64_t capacity = 0;  ///< positions per slot
  std::vector<Buffer> keys, values;
  std::int64_t encoder_capacity = 0;  ///< encoder positions per slot (0: no encoder side)
  std::vector<Buffer> cross_keys, cross_values;
  std::vector<std::int64_t> encoder_lengths;  ///< (slots) valid positions of each encoder slot
  std::vector<std::int64_t> cross_source;     ///< (slots) the encoder slot each decoder slot reads (-1: none)
  /// Copies positions [0, length) of slot `from` into slot `to` in every layer (beam reordering);
  /// the self-attention keys and values only (the encoder side is shared, see share_encoder).
  void copy_slot(const ops::OpContext& ctx, std::int64_t from, std::int64_t to, std::int64_t length) const;
  /// Decoder slot `to` reads the encoded input decoder slot `from` reads (no copy).
  void share_encoder(std::int64_t from, std::int64_t to);
};

/// One sequence of a decode step: `count` new tokens at positions [past, past + count) of the
/// sequence held in cache slot `slot` (positions [0, past) are already in the cache).
struct DecodeSegment {
  std::int64_t slot = 0;
  std::int64_t past = 0;
  std::int64_t count = 0;
};

/// Called with each parameter whose gradient a backward pass has just completed.
using GradReadyHook = std::function<void(Parameter&)>;

class Model {
 public:
  virtual ~Model() = default;

  /// The family's registry name ("gpt", "t5", ...).
  virtual std::string_view family() const = 0;
  /// The family's typed config as JSON with NeMo's key names: what checkpoints record and the
  /// family's builder reads back.
  virtual nlohmann::json config_json() const = 0;
  virtual ParameterStore& parameters() = 0;
  virtual const ops::OpContext& context() const = 0;
  virtual const parallel::ParallelContext& parallel_context() const = 0;
  /// The dtype of activations and of the compute copy of the weights.
  virtual DType compute_dtype() const = 0;
  /// The tokenizer's vocabulary V (token ids the model accepts and scores: [0, V)).
  virtual std::int64_t vocab_size() const = 0;
  /// The longest token sequence the model takes (max_position_embeddings).
  virtual std::int64_t max_sequence_length() const = 0;
  /// Parameters of the whole model (every rank's shards, tied weights once).
  virtual std::int64_t num_parameters() const = 0;
  /// Model FLOPs of one training sample, forward + backward (recomputation not counted).
  virtual double flops_per_sample() const = 0;

  /// Draws the initial weights from `seed` (collective over the groups that share weights).
  virtual void initialize(std::uint64_t seed) = 0;

  /// Model chunks on this pipeline stage (the virtual pipeline size; 1 without interleaving).
  virtual int num_chunks() const = 0;
  /// True when chunk `chunk` of this stage computes the loss (the last chunk of the last stage).
  virtual bool chunk_has_head(int chunk) const = 0;
  /// Shape of the activation passed between stages for micro-batches of (batch, seq) tokens.
  virtual Shape boundary_shape(std::int64_t batch, std::int64_t seq) const = 0;

  /// Forward of model chunk `chunk` of this stage. `input` is the previous stage's activation,
  /// empty on the chunk that embeds the batch; `output` receives the activation for the next
  /// stage, empty on the head chunk (labels required there when training).
  virtual std::unique_ptr<Activations> forward_chunk(int chunk, const Batch& batch, const DropoutRng& rng,
                                                     bool training, const TensorView& input,
                                                     const TensorView& output) = 0;
  /// Backward of a chunk: parameter gradients += d(loss * grad_scale)/dparams. `output_grad` is
  /// the next stage's gradient (empty on the head chunk); `input_grad` receives the gradient for
  /// the previous stage (empty on the embedding chunk). Consumes the activations.
  virtual void backward_chunk(Activations& acts, float grad_scale, const TensorView& output_grad,
                              const TensorView& input_grad) = 0;

  /// Completes gradients inside one model replica before data-parallel reduction (TP sums of
  /// sequence-parallel parameters, tied copies over pipeline stages). Collective; no-op on one rank.
  virtual void reduce_model_parallel_grads() = 0;
  /// True for the parameters reduce_model_parallel_grads() completes (data-parallel reduction
  /// of those must wait for it).
  virtual bool needs_model_parallel_reduction(const Parameter& p) const = 0;
  /// Reports each parameter whose gradient a backward pass completes, as it completes (while set).
  virtual void set_grad_ready_hook(GradReadyHook hook) = 0;

  /// Per-token log-probabilities of labels and greedy tokens (one pipeline stage).
  virtual TokenScores score(const Batch& batch) = 0;
  /// What score() returns, from the activations of a head chunk's forward_chunk (training=false,
  /// labels given): the scoring end of a pipelined forward pass (eval::score_tokens). Collective
  /// over the tensor-parallel group.
  virtual TokenScores scores_of(const Activations& head) = 0;

  /// True for encoder-decoder families (T5): score() then reads Batch::encoder_tokens too.
  virtual bool is_encoder_decoder() const { return false; }
  /// The token an encoder-decoder model's decoder starts from (its input before the first target),
  /// when the model's config records it; nullopt otherwise (and for decoder-only families).
  virtual std::optional<std::int32_t> decoder_start_token() const { return std::nullopt; }
  // Incremental decoding (generation). Families that support it override both; the defaults
  // throw an error naming the family.

  /// A zeroed cache for `slots` sequences of up to `capacity` positions (encoder-decoder families:
  /// decoder positions; the encoder side holds max_sequence_length() positions per slot).
  virtual KvCache make_kv_cache(std::int64_t slots, std::int64_t capacity);
  /// Encoder-decoder families: runs the encoder once over each segment's tokens (`tokens`: the
  /// segments' tokens in order; each segment a whole input, past = 0), stores the cross-attention
  /// keys and values of every decoder layer in encoder slot `slot` and points decoder slot `slot`
  /// at it (cross_source). decode() then runs the decoder: its tokens are decoder tokens (the
  /// first one decoder_start_token()) at decoder positions. Others: an error naming the family.
  virtual void encode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments);
  /// Runs the new tokens of every segment (`tokens`: the segments' tokens in order, sum of counts)
  /// through the model without dropout, writes their keys and values into `cache` and returns in
  /// `logits` (segments.size() x vocab_size(), host fp32, row-major) the next-token logits after
  /// each segment's last token, over the real vocabulary. A prompt is a segment with past = 0
  /// (context phase); a generated token one with count = 1 (decode phase); one call may mix them.
  virtual void decode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments,
                      std::span<float> logits);

  // Whole-model conveniences for one pipeline stage holding one chunk.

  /// forward_chunk(0, ...) of a model that is not pipelined.
  std::unique_ptr<Activations> forward(const Batch& batch, const DropoutRng& rng, bool training);
  /// backward_chunk of a forward() result.
  void backward(Activations& acts, float grad_scale);
  /// forward + backward; returns the micro-batch loss.
  float train_micro_batch(const Batch& batch, const DropoutRng& rng, float grad_scale);
  /// Loss without dropout and without keeping activations (validation).
  float evaluate(const Batch& batch);
};

}  // namespace bignlp::model
