// GptModel: the Megatron GPT (NeMo MegatronGPTModel) forward and backward on one rank; the "gpt"
// family of model::Model (model_family.h). Its blocks come from gpt_block_spec(config); another
// decoder-only family can reuse the embeddings, stages and head with its own BlockSpec (the
// family-name constructor).
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
// Not handled: reset_attention_mask (causal attention only).
//
// Parallelism (a ParallelContext; the default is one rank and changes nothing):
// - tensor parallel: the word embedding is vocab-parallel (rows [r*Vp/t, (r+1)*Vp/t)), the logits
//   are column-parallel over the same shard and the loss is the vocab-parallel cross entropy; the
//   layers split heads and FFN columns (transformer_layer.h). With sequence parallelism the
//   embedding output is split along the sequence after its all-reduce, and the final LayerNorm
//   output is gathered again by the logits layer.
// - pipeline parallel: the model holds the layers of its stage only (parallel::StagePlan, with
//   virtual chunks for the interleaved schedule); stage 0 chunk 0 owns the embeddings, the last
//   chunk of the last stage the final LayerNorm, the output layer and the loss. The last stage
//   keeps its own copy of the tied word embedding ("model.word_embeddings.weight", zero-initialised
//   and made equal to the first stage's by an all-reduce over the embedding group, as Megatron
//   does); their gradients are all-reduced over that group every step (reduce_model_parallel_grads).
//   forward_chunk/backward_chunk run one chunk of one micro-batch, taking the activation from the
//   previous stage and giving the one for the next (model::MicroBatchRunner drives them through parallel::PipelineExecutor).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/model/gpt_config.h"
#include "bignlp/model/model.h"
#include "bignlp/model/parameters.h"
#include "bignlp/model/transformer_layer.h"
#include "bignlp/parallel/column_parallel_linear.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/parallel/vocab_parallel_cross_entropy.h"
#include "bignlp/parallel/vocab_parallel_embedding.h"
#include "bignlp/parallel/stage_plan.h"

namespace bignlp::model {

/// Everything one micro-batch's forward pass keeps for its backward pass.
struct GptActivations final : Activations {
  LayerPass pass;
  Buffer ids, positions, targets;  // (N) int32, sequence-first
  std::vector<float> loss_mask;    // (N) host, sequence-first
  double mask_sum = 0.0;
  std::vector<Buffer> inputs;      // L+1 entries (L: the chunk's layers), (N, C) or (N/t, C) under
                                   // sequence parallelism: layer inputs, inputs[L] = last output
  std::vector<TransformerLayerActivations> layers;
  Buffer final_out, final_mean, final_rstd;
  Buffer logits;                   // (T, B, Vp/t) compute dtype
  Buffer losses, lse;              // (N) fp32
  std::vector<float> token_losses; // (N) host, sequence-first
  bool embedded_input = false;     // the embedding chunk was given its input (see forward_chunk)
};

class GptModel final : public Model {
 public:
  /// Builds the layers and allocates the parameters on ctx.device (ctx.allocator required; the
  /// model keeps a copy of ctx and uses its allocator for activations). `parallel` says which
  /// shard of the model this rank holds (see the file comment); its communicators must outlive
  /// the model. `trainable`, when given, freezes the parameters it returns false for
  /// (ParameterStore::set_trainable); freeze the last stage's tied copy
  /// "model.word_embeddings.weight" together with the word embedding.
  GptModel(const GptConfig& config, const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {},
           const ParameterPredicate& trainable = {});
  /// A decoder-only model of another family: GPT's embeddings, stages and head around the blocks
  /// of `block` (its sizes must equal config's; the final norm follows block's normalization).
  GptModel(std::string family, const GptConfig& config, const BlockSpec& block, const ops::OpContext& ctx,
           const parallel::ParallelContext& parallel = {}, const ParameterPredicate& trainable = {});
  GptModel(const GptModel&) = delete;
  GptModel& operator=(const GptModel&) = delete;

  const GptConfig& config() const { return config_; }
  const parallel::StagePlan& stage_plan() const { return plan_; }

  // model::Model
  std::string_view family() const override { return family_; }
  const BlockSpec& block_spec() const { return spec_; }
  nlohmann::json config_json() const override;
  ParameterStore& parameters() override { return store_; }
  const ops::OpContext& context() const override { return ctx_; }
  const parallel::ParallelContext& parallel_context() const override { return parallel_; }
  DType compute_dtype() const override { return config_.compute_dtype(); }
  std::int64_t vocab_size() const override { return config_.vocab_size; }
  std::int64_t max_sequence_length() const override { return config_.positions(); }
  std::int64_t num_parameters() const override { return config_.num_parameters(); }
  double flops_per_sample() const override { return model_flops_per_sequence(config_); }

  /// Megatron initialisation (normal init_method_std, scaled output projections, LN 1/0, biases 0)
  /// from the Philox streams of `seed` (see ParameterStore::initialize). Shards hold exactly their
  /// part of the one-rank weights. With pipeline stages this is a collective of the embedding group.
  void initialize(std::uint64_t seed) override;

  int num_chunks() const override { return plan_.num_chunks(); }
  bool chunk_has_head(int chunk) const override { return has_head(chunk); }
  /// (T, B, C), or (T/t, B, C) under sequence parallelism.
  Shape boundary_shape(std::int64_t batch, std::int64_t seq) const override;

  /// Forward of model chunk `chunk` of this stage (returns GptActivations). `input` (T, B, C) (or
  /// (T/t, B, C) under sequence parallelism) is the previous stage's activation, empty when the
  /// chunk holds the embedding (the batch's tokens are read instead). On the embedding chunk a
  /// given `input` replaces the embedding output (word + position rows; NeMo's encoder_input,
  /// so no embedding dropout: prompt learning) and backward_chunk returns its gradient in
  /// `input_grad` (batch.tokens still gives the shape); `output` receives the
  /// activation for the next stage, empty when the chunk holds the head (the loss is computed;
  /// labels required when training).
  std::unique_ptr<Activations> forward_chunk(int chunk, const Batch& batch, const DropoutRng& rng, bool training,
                                             const TensorView& input, const TensorView& output) override;
  /// Backward of a chunk: `output_grad` is the next stage's gradient (empty on the head chunk,
  /// where the loss scaled by grad_scale starts it); `input_grad` receives the gradient for the
  /// previous stage (empty on the embedding chunk). grad_scale = loss scale / M.
  void backward_chunk(Activations& acts, float grad_scale, const TensorView& output_grad,
                      const TensorView& input_grad) override;

  /// Sums the sequence-parallel (LayerNorm) gradients over TP ranks and the tied word-embedding
  /// gradients over the embedding group (first and last stage).
  void reduce_model_parallel_grads() override;
  /// The hook lets the trainer start data-parallel reductions of the last micro-batch early.
  void set_grad_ready_hook(GradReadyHook hook) override { grad_ready_ = std::move(hook); }
  /// Sequence-parallel LayerNorms, and the tied word embedding when there are pipeline stages.
  bool needs_model_parallel_reduction(const Parameter& p) const override {
    return p.sequence_parallel ||
           (parallel_.pp_size() > 1 && (&p == word_embeddings_ || &p == output_weights_));
  }

  /// Log-likelihood scoring: log p(labels) and the greedy token over the real vocabulary.
  TokenScores score(const Batch& batch) override;
  TokenScores scores_of(const Activations& head) override;

  /// Incremental decoding through TransformerLayer::forward_cached (one rank: no tensor or
  /// pipeline parallelism; the cache is per layer (slots, capacity, hidden_size)).
  KvCache make_kv_cache(std::int64_t slots, std::int64_t capacity) override;
  void decode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments,
              std::span<float> logits) override;

  /// Logits of a forward pass (GptActivations, not yet consumed by backward) as a host fp32 copy,
  /// batch-first (B, T, Vp) (tests, export).
  std::vector<float> logits_to_host(const Activations& acts) const;

 private:
  // Activation checkpointing decisions take the layer's index within its chunk (Megatron applies
  // the plan per stage and per virtual chunk) and the chunk's layer count.
  bool layer_fully_checkpointed(int l) const;
  int chunk_start(int l) const;
  int chunk_end(int l, int count) const;
  bool layer_selective(int l) const;
  void embed(GptActivations& a, const Batch& batch, bool training);
  void prepare_targets(GptActivations& a, const Batch& batch);
  /// The full-vocabulary logits (N, Vp) gathered over TP ranks; empty on one rank.
  Buffer gather_logits(const GptActivations& a) const;
  void head(GptActivations& a);
  void notify(Parameter* p) {
    if (grad_ready_ && p != nullptr) grad_ready_(*p);
  }
  bool has_embedding(int chunk) const { return plan_.has_embedding(parallel_.pp_rank(), chunk); }
  bool has_head(int chunk) const { return plan_.has_head(parallel_.pp_rank(), chunk); }
  parallel::VocabParallelEmbedding word_embedding() const;
  parallel::ColumnParallelLinear output_layer() const;
  parallel::LinearWeights output_layer_weights() const;
  parallel::VocabParallelCrossEntropy cross_entropy() const;
  std::int64_t local_rows(std::int64_t rows) const;
  std::uint64_t local_first_element(std::int64_t rows) const;

  std::string family_;
  GptConfig config_;
  BlockSpec spec_;
  ops::OpContext ctx_;
  parallel::ParallelContext parallel_;
  parallel::StagePlan plan_;
  ParameterStore store_;
  Parameter* word_embeddings_ = nullptr;      // (Vp/t, C), stage 0
  Parameter* position_embeddings_ = nullptr;  // (P, C), stage 0
  Parameter* output_weights_ = nullptr;       // (Vp/t, C): word_embeddings_, or the last stage's tied copy
  std::vector<TransformerLayer> layers_;      // this stage's layers, chunk by chunk
  std::vector<std::vector<int>> chunk_layers_;  // chunk -> indices into layers_
  std::unique_ptr<Norm> final_layernorm_;
  GradReadyHook grad_ready_;
};

/// The block of a Megatron GPT with `config`: pre-LN LayerNorm with bias, GeLU (config.activation),
/// biases, causal self-attention, GPT's parameter names.
BlockSpec gpt_block_spec(const GptConfig& config);

}  // namespace bignlp::model
