// GptModel: the Megatron GPT (NeMo MegatronGPTModel) forward and backward on one rank.
//
//   h0 = dropout(word[ids] + pos[positions])                 (hidden_dropout, stream site 0)
//   h_{l+1} = TransformerLayer_l(h_l)                        l = 0..L-1
//   logits = LN_final(h_L) word^T                            (T, B, Vp), tied output, no bias
//   loss = sum(CE(logits, labels) * loss_mask) / sum(loss_mask)     (per micro-batch token mean)
//
// Activations are sequence-first (rows t*B + b); batches come in batch-first on the host. The
// compute dtype follows GptConfig::precision; parameter gradients are fp32 and accumulate across
// micro-batches until ParameterStore::zero_grad. Activation checkpointing follows
// config.activations_checkpoint (full: uniform chunks or the first k layers recomputed from their
// input; selective: core attention recomputed). Dropout masks are functions of (seed, offset
// stream, element), the stream of micro-batch k of step s being dropout_offset(s, k, M) + site.
// Not handled: reset_attention_mask (causal attention only), pipeline stages (one model = all layers).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bignlp/model/gpt_config.h"
#include "bignlp/model/parameters.h"
#include "bignlp/model/transformer_layer.h"

namespace bignlp::model {

/// One micro-batch as the data loader gives it (host memory, batch-first).
struct GptBatch {
  TensorView tokens;        ///< (B, T) int32
  TensorView labels;        ///< (B, T) int32 (targets; ignored for scoring-only passes)
  TensorView loss_mask;     ///< (B, T) fp32, or empty for all ones
  TensorView position_ids;  ///< (B, T) int32, or empty for 0..T-1
};

/// The random stream of one micro-batch.
struct DropoutRng {
  std::uint64_t seed = 0;
  std::uint64_t offset_base = 0;  ///< dropout_offset(step, micro_batch, num_micro_batches)
};

/// Philox offset of site 0 for micro-batch `micro` of optimizer step `step` (M micro-batches per
/// step): ((step * M + micro) << 20). Sites of one micro-batch stay below 2^20 (L < 349525).
std::uint64_t dropout_offset(std::int64_t step, std::int64_t micro, std::int64_t num_micro_batches);

/// Everything one micro-batch's forward pass keeps for its backward pass.
struct GptActivations {
  LayerPass pass;
  Buffer ids, positions, targets;  // (N) int32, sequence-first
  std::vector<float> loss_mask;    // (N) host, sequence-first
  double mask_sum = 0.0;
  std::vector<Buffer> inputs;      // L+1 entries, (N, C): layer inputs, inputs[L] = last output
  std::vector<TransformerLayerActivations> layers;
  Buffer final_out, final_mean, final_rstd;
  Buffer logits;                   // (T, B, Vp) compute dtype
  Buffer losses, lse;              // (N) fp32
  std::vector<float> token_losses; // (N) host, sequence-first
  float loss = 0.0f;               ///< the micro-batch loss (token mean under loss_mask)
};

/// Per-token results of a scoring pass, batch-first (index b*T + t).
struct GptScores {
  std::vector<float> logprob;        ///< log p(labels[b][t] | tokens[b][..t])
  std::vector<std::int32_t> argmax;  ///< most likely next token over the real vocabulary [0, V)
};

class GptModel {
 public:
  /// Builds the layers and allocates the parameters on ctx.device (ctx.allocator required; the
  /// model keeps a copy of ctx and uses its allocator for activations).
  GptModel(const GptConfig& config, const ops::OpContext& ctx);
  GptModel(const GptModel&) = delete;
  GptModel& operator=(const GptModel&) = delete;

  const GptConfig& config() const { return config_; }
  ParameterStore& parameters() { return store_; }
  const ops::OpContext& context() const { return ctx_; }

  /// Megatron initialisation (normal init_method_std, scaled output projections, LN 1/0, biases 0)
  /// from the Philox streams of `seed` (see ParameterStore::initialize).
  void initialize(std::uint64_t seed);

  /// Forward pass of one micro-batch. training: dropout on and activations kept for backward().
  std::unique_ptr<GptActivations> forward(const GptBatch& batch, const DropoutRng& rng, bool training);
  /// Backward pass: parameter gradients += d(loss * grad_scale)/dparams (grad_scale = loss scale / M).
  /// Consumes (releases) the activations.
  void backward(GptActivations& acts, float grad_scale);
  /// forward + backward; returns the micro-batch loss.
  float train_micro_batch(const GptBatch& batch, const DropoutRng& rng, float grad_scale);
  /// Loss without dropout and without keeping activations (validation).
  float evaluate(const GptBatch& batch);
  /// Per-token log-probabilities of labels and greedy tokens (log-likelihood scoring).
  GptScores score(const GptBatch& batch);

  /// Logits of the last forward pass as a host fp32 copy, batch-first (B, T, Vp) (tests, export).
  std::vector<float> logits_to_host(const GptActivations& acts) const;

 private:
  bool layer_fully_checkpointed(int l) const;
  int chunk_start(int l) const;
  int chunk_end(int l) const;
  bool layer_selective(int l) const;
  void embed(GptActivations& a, const GptBatch& batch, bool training);
  void head(GptActivations& a);

  GptConfig config_;
  ops::OpContext ctx_;
  ParameterStore store_;
  Parameter* word_embeddings_ = nullptr;      // (Vp, C)
  Parameter* position_embeddings_ = nullptr;  // (P, C)
  std::vector<TransformerLayer> layers_;
  std::unique_ptr<LayerNorm> final_layernorm_;
};

}  // namespace bignlp::model
