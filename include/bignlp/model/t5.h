// T5Model: NeMo Megatron T5 / mT5 (MegatronT5Model, megatron-model.md §8) on one rank; the "t5"
// family of model::Model (mT5 and T5 v1.1 are the same family with another T5Config).
//
//   e0 = dropout(word[enc_ids] [+ pos[0..Te)])                      embedding_dropout
//   e_{l+1} = EncoderLayer_l(e_l)      bidirectional self-attention, key padding by encoder_lengths,
//                                      + the encoder's relative bias (relative positions)
//   enc = norm_enc(e_Le)
//   d0 = dropout(word'[dec_ids] [+ pos'[0..Td)])    word'/pos' = the encoder's tables when
//                                                   share_token_embeddings, else the decoder's
//   d_{l+1} = DecoderLayer_l(d_l, enc)  causal self-attention (+ the decoder's unidirectional
//                                       relative bias), cross-attention to enc (keys padded by
//                                       encoder_lengths), MLP
//   logits = norm_dec(d_Ld) W^T [+ b]   W = word' (share_decoder_tokens_head_embeddings; b the
//                                       (Vp) tokens_head bias when tokens_head_bias) or the
//                                       untied tokens_head weight (no bias)
//   loss = sum(CE(logits, labels) * loss_mask) / sum(loss_mask)
// Batch (host, batch-first): encoder_tokens (B, Te), tokens (B, Td) decoder input, labels,
// loss_mask (B, Td), encoder_lengths / decoder_lengths (B) (valid tokens, padding at the end;
// empty: none padded). Parameter names are NeMo's MegatronT5Model state-dict keys
// ("enc_dec_model.encoder_embedding.word_embeddings.weight", "enc_dec_model.enc_dec_model.encoder.
// model.layers.0.self_attention.query_key_value.weight", "enc_dec_model.tokens_head.bias", ...);
// a shared decoder embedding is held once, under the encoder's name.
// Dropout streams: the encoder uses offset_base (embedding: site 0, layer l: 1 + 3l + k), the
// decoder offset_base + 1 + 3 Le (embedding 0, layer l: 1 + 5l + k).
// Activation checkpointing: each stack follows its own activations_checkpoint_* keys as GPT does.
// Parallelism: tensor parallel (vocab-parallel embeddings, head and cross entropy; the relative
// bias tables replicated, each rank reading its heads and all-reducing their gradients over TP),
// data parallel and the distributed optimizer through the trainer. Not handled (refused with a
// ConfigError): pipeline parallelism, sequence parallelism (cross-attention under SP is not built).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "bignlp/model/model.h"
#include "bignlp/model/relative_position_bias.h"
#include "bignlp/model/t5_config.h"
#include "bignlp/model/transformer_layer.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::model {

/// What one stack's forward pass keeps.
struct T5StackActivations {
  LayerPass pass;
  std::vector<std::int32_t> lengths;         // (B) host key lengths (empty: all valid)
  Buffer ids, positions;                     // (N) int32 sequence-first
  std::vector<Buffer> inputs;                // L + 1 entries (N, C)
  std::vector<TransformerLayerActivations> layers;
  Buffer bias, bias_grad;                    // (NH/t, T, T) fp32 (relative positions)
  Buffer final_out, final_mean, final_rstd;  // the stack's final norm
};

struct T5Activations final : Activations {
  T5StackActivations enc, dec;
  Buffer enc_grad;                  // (Te*B, C): gradient of the encoder output (cross-attention)
  Buffer targets;                   // (N) int32
  std::vector<float> loss_mask;     // (N) host, sequence-first
  double mask_sum = 0.0;
  Buffer logits;                    // (Td, B, Vp/t)
  Buffer losses, lse;               // (N) fp32
  std::vector<float> token_losses;  // (N) host
};

class T5Model final : public Model {
 public:
  T5Model(const T5Config& config, const ops::OpContext& ctx, const parallel::ParallelContext& parallel = {},
          const ParameterPredicate& trainable = {});
  T5Model(const T5Model&) = delete;
  T5Model& operator=(const T5Model&) = delete;

  const T5Config& config() const { return config_; }

  std::string_view family() const override { return "t5"; }
  nlohmann::json config_json() const override;
  ParameterStore& parameters() override { return store_; }
  const ops::OpContext& context() const override { return ctx_; }
  const parallel::ParallelContext& parallel_context() const override { return parallel_; }
  DType compute_dtype() const override { return config_.compute_dtype(); }
  std::int64_t vocab_size() const override { return config_.vocab_size; }
  std::int64_t max_sequence_length() const override { return config_.positions(); }
  std::int64_t num_parameters() const override { return config_.num_parameters(); }
  /// sizing::model_flops_per_sequence of t5_shape(config) (NeMo's HP-tool T5 formula).
  double flops_per_sample() const override;
  void initialize(std::uint64_t seed) override;
  int num_chunks() const override { return 1; }
  bool chunk_has_head(int) const override { return true; }
  Shape boundary_shape(std::int64_t batch, std::int64_t seq) const override;
  std::unique_ptr<Activations> forward_chunk(int chunk, const Batch& batch, const DropoutRng& rng, bool training,
                                             const TensorView& input, const TensorView& output) override;
  void backward_chunk(Activations& acts, float grad_scale, const TensorView& output_grad,
                      const TensorView& input_grad) override;
  /// All-reduces over TP the gradients of the relative bias tables (each rank read its heads).
  void reduce_model_parallel_grads() override;
  bool needs_model_parallel_reduction(const Parameter& p) const override { return p.sequence_parallel; }
  void set_grad_ready_hook(GradReadyHook hook) override { grad_ready_ = std::move(hook); }
  /// log p(labels[b][t] | encoder_tokens, tokens[..t]) and the greedy decoder token.
  TokenScores score(const Batch& batch) override;
  TokenScores scores_of(const Activations& head) override;
  bool is_encoder_decoder() const override { return true; }
  /// config.decoder_start_token_id (HF T5: pad = 0; NeMo T5: the tokenizer's bos), when recorded.
  std::optional<std::int32_t> decoder_start_token() const override {
    if (config_.decoder_start_token_id < 0) return std::nullopt;
    return static_cast<std::int32_t>(config_.decoder_start_token_id);
  }

  // Incremental decoding (one rank): the encoder runs once per input (encode: cross-attention keys
  // and values of every decoder layer cached), the decoder one step at a time against its
  // self-attention cache (decode: positions are decoder positions, the relative bias or learned
  // positions of the decoder at those positions).
  KvCache make_kv_cache(std::int64_t slots, std::int64_t capacity) override;
  void encode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments) override;
  void decode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments,
              std::span<float> logits) override;

  /// Logits of a forward pass (not yet consumed by backward), host fp32, batch-first (B, Td, Vp).
  std::vector<float> logits_to_host(const Activations& acts) const;

 private:
  struct Stack {
    T5StackConfig config;
    std::vector<TransformerLayer> layers;
    std::unique_ptr<Norm> final_norm;
    std::optional<RelativePositionBias> bias;
    Parameter* word = nullptr;      // the table this stack embeds with
    Parameter* position = nullptr;  // learned positions, or null
  };
  void embed(Stack& s, T5StackActivations& a, const TensorView& tokens, bool training);
  void run_stack(Stack& s, T5StackActivations& a, bool training);
  void stack_backward(Stack& s, T5StackActivations& a, Buffer& dx);
  void head(T5Activations& a);
  Buffer gather_logits(const T5Activations& a) const;
  void notify(Parameter* p) {
    if (grad_ready_ && p != nullptr) grad_ready_(*p);
  }

  T5Config config_;
  ops::OpContext ctx_;
  parallel::ParallelContext parallel_;
  ParameterStore store_;
  Stack enc_, dec_;
  Parameter* head_weight_ = nullptr;  // the tied word table or the untied tokens_head weight
  Parameter* head_bias_ = nullptr;
  GradReadyHook grad_ready_;
};

}  // namespace bignlp::model
