#include "bignlp/model/t5.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bignlp/core/check.h"
#include "family_common.h"
#include "bignlp/core/error.h"
#include "bignlp/parallel/column_parallel_linear.h"
#include "bignlp/parallel/grad_buckets.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/parallel/vocab_parallel_cross_entropy.h"
#include "bignlp/parallel/vocab_parallel_embedding.h"
#include "bignlp/sizing/t5_shape.h"

namespace bignlp::model {
namespace {

constexpr const char* kEncWord = "enc_dec_model.encoder_embedding.word_embeddings.weight";
constexpr const char* kEncPos = "enc_dec_model.encoder_embedding.position_embeddings.weight";
constexpr const char* kDecWord = "enc_dec_model.decoder_embedding.word_embeddings.weight";
constexpr const char* kDecPos = "enc_dec_model.decoder_embedding.position_embeddings.weight";
constexpr const char* kEncRel = "enc_dec_model.encoder_relative_position_embedding.relative_position_embedding";
constexpr const char* kDecRel = "enc_dec_model.decoder_relative_position_embedding.relative_position_embedding";
constexpr const char* kEncFinal = "enc_dec_model.enc_dec_model.encoder.model.final_layernorm";
constexpr const char* kDecFinal = "enc_dec_model.enc_dec_model.decoder.model.final_layernorm";
constexpr const char* kHeadWeight = "enc_dec_model.tokens_head.weight";
constexpr const char* kHeadBias = "enc_dec_model.tokens_head.bias";

using detail::to_sequence_first;

std::vector<std::int32_t> lengths_from(const TensorView& v, std::int64_t b, std::int64_t t, const char* what) {
  if (!v.defined()) return {};
  BIGNLP_CHECK(v.device().is_cpu() && v.dtype() == DType::kI32 && v.rank() == 1 && v.size(0) == b,
               "Batch.{} must be a host ({}) int32 tensor, got {}", what, b, v.to_string());
  std::vector<std::int32_t> out(v.data<std::int32_t>(), v.data<std::int32_t>() + b);
  for (std::int32_t l : out) BIGNLP_CHECK(l >= 0 && l <= t, "Batch.{}: length {} outside [0, {}]", what, l, t);
  return out;
}

T5Activations& t5_activations(Activations& a) {
  auto* g = dynamic_cast<T5Activations*>(&a);
  BIGNLP_CHECK(g != nullptr, "T5Model given activations of another model family");
  return *g;
}

const T5Activations& t5_activations(const Activations& a) {
  const auto* g = dynamic_cast<const T5Activations*>(&a);
  BIGNLP_CHECK(g != nullptr, "T5Model given activations of another model family");
  return *g;
}

// Activation checkpointing of one stack, as GptModel applies it (family_common.h).
bool fully_checkpointed(const ActivationCheckpointing& ac, int l) { return detail::fully_checkpointed(ac, l); }
int chunk_start(const ActivationCheckpointing& ac, int l) { return detail::checkpoint_chunk_start(ac, l); }
int chunk_end(const ActivationCheckpointing& ac, int l, int count) { return detail::checkpoint_chunk_end(ac, l, count); }
bool selective(const ActivationCheckpointing& ac, int l) { return detail::selectively_checkpointed(ac, l); }

}  // namespace

nlohmann::json T5Model::config_json() const { return nlohmann::json(config_); }

double T5Model::flops_per_sample() const { return sizing::model_flops_per_sequence(t5_shape(config_)); }

T5Model::T5Model(const T5Config& config, const ops::OpContext& ctx, const parallel::ParallelContext& parallel,
                 const ParameterPredicate& trainable)
    : config_(config), ctx_(ctx), parallel_(parallel) {
  config_.validate();
  BIGNLP_CHECK(ctx_.allocator != nullptr, "T5Model needs an OpContext with an allocator");
  if (parallel_.pp_size() > 1)
    throw ConfigError(fmt::format("model.pipeline_model_parallel_size: {} pipeline stages are not supported for T5 "
                                  "(the encoder/decoder pipeline split is not built); use 1",
                                  parallel_.pp_size()));
  if (parallel_.sequence_parallel())
    throw ConfigError("model.sequence_parallel: not supported for T5 (cross-attention under sequence parallelism "
                      "is not built); set it False");
  if (std::max(1, config_.tensor_model_parallel_size) != parallel_.tp_size())
    throw ConfigError(fmt::format("model.tensor_model_parallel_size: the config pads the vocabulary for {} ranks, but "
                                  "the parallel context has {} tensor-parallel ranks",
                                  config_.tensor_model_parallel_size, parallel_.tp_size()));
  const int t = parallel_.tp_size();
  const int tp_rank = t > 1 ? parallel_.tp_rank() : 0;
  const std::int64_t c = config_.encoder.hidden_size, vocab_rows = config_.padded_vocab_size() / t;
  const auto word_table = [&](const char* name) {
    Parameter w;
    w.name = name;
    w.shape = Shape{vocab_rows, c};
    w.init = ParamInit::kNormal;
    w.init_std = config_.embedding_init_method_std;
    w.partition_dim = 0;
    w.tp_rank = tp_rank;
    w.tp_size = t;
    return &store_.add(std::move(w));
  };
  const auto position_table = [&](const char* name) {
    Parameter p;
    p.name = name;
    p.shape = Shape{config_.positions(), c};
    p.init = ParamInit::kNormal;
    p.init_std = config_.embedding_init_method_std;
    return &store_.add(std::move(p));
  };
  enc_.config = config_.encoder;
  dec_.config = config_.decoder;
  enc_.word = word_table(kEncWord);
  if (!config_.relative()) enc_.position = position_table(kEncPos);
  if (config_.share_token_embeddings) {
    dec_.word = enc_.word;
    dec_.position = enc_.position;
  } else {
    dec_.word = word_table(kDecWord);
    if (!config_.relative()) dec_.position = position_table(kDecPos);
  }
  const auto build_stack = [&](Stack& s, bool decoder) {
    const BlockSpec spec = t5_block_spec(config_, decoder);
    const T5StackConfig& sc = decoder ? config_.decoder : config_.encoder;
    if (sc.relative()) {
      RelativePositionBiasSpec rs;
      rs.name = decoder ? kDecRel : kEncRel;
      rs.num_buckets = sc.relative_attention_num_buckets;
      rs.max_distance = sc.relative_attention_max_distance;
      rs.num_heads = sc.num_attention_heads;
      rs.bidirectional = !decoder;
      rs.init_std = config_.embedding_init_method_std;
      const int local = sc.num_attention_heads / t;
      s.bias.emplace(store_, rs, tp_rank * local, local);
    }
    s.layers.reserve(static_cast<std::size_t>(sc.num_layers));
    for (int l = 0; l < sc.num_layers; ++l) s.layers.emplace_back(spec, store_, l, parallel_);
    s.final_norm = std::make_unique<Norm>(store_, NormSpec{decoder ? kDecFinal : kEncFinal, c,
                                                           spec.normalization_epsilon, spec.normalization,
                                                           spec.normalization_bias, false});
  };
  build_stack(enc_, false);
  build_stack(dec_, true);
  if (config_.share_decoder_tokens_head_embeddings) {
    head_weight_ = dec_.word;
    if (config_.tokens_head_bias) {
      Parameter b;
      b.name = kHeadBias;
      b.shape = Shape{vocab_rows};
      b.init = ParamInit::kZeros;
      b.weight_decay = false;
      b.partition_dim = 0;
      b.tp_rank = tp_rank;
      b.tp_size = t;
      head_bias_ = &store_.add(std::move(b));
    }
  } else {
    Parameter w;
    w.name = kHeadWeight;
    w.shape = Shape{vocab_rows, c};
    w.init = ParamInit::kNormal;
    w.init_std = config_.decoder.init_method_std;
    w.partition_dim = 0;
    w.tp_rank = tp_rank;
    w.tp_size = t;
    head_weight_ = &store_.add(std::move(w));
  }
  if (trainable) store_.set_trainable(trainable);
  std::optional<std::vector<parallel::FlatRange>> master_ranges;
  if (parallel_.options.distributed_optimizer_bucket_numel > 0 && parallel_.dp != nullptr && parallel_.dp->size() > 1) {
    const std::vector<parallel::FlatRange> ranges = store_.trainable_ranges();
    master_ranges = parallel::GradBuckets::owned_ranges(ranges, parallel_.options.distributed_optimizer_bucket_numel,
                                                        parallel_.dp->size(), parallel_.dp->rank());
  }
  store_.allocate(*ctx_.allocator, config_.compute_dtype(), std::move(master_ranges));
}

void T5Model::initialize(std::uint64_t seed) { store_.initialize(ctx_, seed); }

Shape T5Model::boundary_shape(std::int64_t batch, std::int64_t seq) const {
  return Shape{seq, batch, config_.encoder.hidden_size};
}

void T5Model::embed(Stack& s, T5StackActivations& a, const TensorView& tokens, bool training) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.encoder.hidden_size;
  std::vector<std::int32_t> ids = to_sequence_first<std::int32_t>(tokens, "tokens");
  for (std::int32_t id : ids)
    BIGNLP_CHECK(id >= 0 && id < config_.padded_vocab_size(), "token id {} outside the vocabulary [0, {})", id,
                 config_.padded_vocab_size());
  a.ids = Buffer(alloc, DType::kI32, Shape{n});
  ops::copy(ctx_, TensorView(ids.data(), DType::kI32, Shape{n}), a.ids);
  a.inputs[0] = Buffer(alloc, config_.compute_dtype(), Shape{n, c});
  parallel::VocabParallelEmbedding(parallel_.tp, config_.padded_vocab_size())
      .forward(ctx_, a.ids, s.word->value, a.inputs[0]);
  if (s.position != nullptr) {
    std::vector<std::int32_t> positions(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) positions[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i / a.pass.batch);
    a.positions = Buffer(alloc, DType::kI32, Shape{n});
    ops::copy(ctx_, TensorView(positions.data(), DType::kI32, Shape{n}), a.positions);
    ops::embedding_forward(ctx_, a.positions, s.position->value, a.inputs[0], 0, /*accumulate=*/true);
  }
  if (training && config_.embedding_dropout > 0.0f)
    ops::dropout_forward(ctx_, a.inputs[0], a.inputs[0],
                         ops::DropoutParams{config_.embedding_dropout, a.pass.seed, a.pass.offset_base, 0});
}

void T5Model::run_stack(Stack& s, T5StackActivations& a, bool training) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.encoder.hidden_size;
  const int count = static_cast<int>(s.layers.size());
  const auto& ac = s.config.activations_checkpoint;
  if (s.bias) {
    const std::int64_t local_heads = s.config.num_attention_heads / parallel_.tp_size();
    a.bias = Buffer(alloc, DType::kF32, Shape{local_heads, a.pass.seq, a.pass.seq});
    s.bias->forward(ctx_, 0, a.bias);
    a.pass.position_bias = a.bias.view();
    if (training) {
      a.bias_grad = Buffer(alloc, DType::kF32, a.bias.shape());
      ops::fill(ctx_, a.bias_grad, 0.0);
      a.pass.position_bias_grad = a.bias_grad.view();
    }
  }
  a.layers.resize(static_cast<std::size_t>(count));
  for (int l = 0; l < count; ++l) {
    ActivationStorage storage = ActivationStorage::kAll;
    if (!training || fully_checkpointed(ac, l))
      storage = ActivationStorage::kNone;
    else if (selective(ac, l))
      storage = ActivationStorage::kNoCoreAttention;
    a.inputs[l + 1] = Buffer(alloc, config_.compute_dtype(), Shape{n, c});
    s.layers[l].forward(ctx_, a.pass, a.inputs[l], a.inputs[l + 1], a.layers[l], storage);
    if (!training || (fully_checkpointed(ac, l) && chunk_start(ac, l) != l)) a.inputs[l] = Buffer();
  }
  a.final_out = Buffer(alloc, config_.compute_dtype(), Shape{n, c});
  a.final_mean = Buffer(alloc, DType::kF32, Shape{n});
  a.final_rstd = Buffer(alloc, DType::kF32, Shape{n});
  s.final_norm->forward(ctx_, a.inputs.back(), a.final_out, a.final_mean, a.final_rstd);
}

void T5Model::head(T5Activations& a) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.dec.pass.rows(), vl = head_weight_->shape[0];
  a.logits = Buffer(alloc, config_.compute_dtype(), Shape{a.dec.pass.seq, a.dec.pass.batch, vl});
  const parallel::LinearWeights w{head_weight_->value, head_bias_ != nullptr ? head_bias_->value : TensorView{}, {}, {}};
  parallel::ColumnParallelLinear(parallel_.tp, false, false)
      .forward(ctx_, w, a.dec.final_out, a.logits.view().reshape(Shape{n, vl}));
  if (!a.targets.defined()) return;
  a.losses = Buffer(alloc, DType::kF32, Shape{n});
  a.lse = Buffer(alloc, DType::kF32, Shape{n});
  parallel::VocabParallelCrossEntropy(parallel_.tp, parallel_.tp_size() > 1 ? parallel_.tp_rank() * vl : 0)
      .forward(ctx_, a.logits.view().reshape(Shape{n, vl}), a.targets, a.losses, a.lse);
  a.token_losses.assign(static_cast<std::size_t>(n), 0.0f);
  ops::copy(ctx_, a.losses, TensorView(a.token_losses.data(), DType::kF32, Shape{n}));
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(a.token_losses[i]) * a.loss_mask[i];
  a.loss = a.mask_sum > 0.0 ? static_cast<float>(sum / a.mask_sum) : 0.0f;
}

std::unique_ptr<Activations> T5Model::forward_chunk(int chunk, const Batch& batch, const DropoutRng& rng, bool training,
                                                    const TensorView&, const TensorView&) {
  BIGNLP_CHECK(chunk == 0, "T5Model has one model chunk, got chunk {}", chunk);
  BIGNLP_CHECK(batch.encoder_tokens.defined() && batch.encoder_tokens.dtype() == DType::kI32,
               "T5: Batch.encoder_tokens must be an int32 (B, Te) tensor, got {}",
               batch.encoder_tokens.defined() ? batch.encoder_tokens.to_string() : "nothing");
  BIGNLP_CHECK(batch.tokens.defined() && batch.tokens.dtype() == DType::kI32,
               "T5: Batch.tokens (the decoder input) must be an int32 (B, Td) tensor, got {}",
               batch.tokens.defined() ? batch.tokens.to_string() : "nothing");
  const std::int64_t b = batch.encoder_tokens.size(0), te = batch.encoder_tokens.size(1), td = batch.tokens.size(1);
  BIGNLP_CHECK(batch.tokens.size(0) == b, "T5: Batch.tokens has {} rows, encoder_tokens {}", batch.tokens.size(0), b);
  if (!config_.relative())
    BIGNLP_CHECK(te <= config_.positions() && td <= config_.positions(),
                 "T5: sequence lengths (encoder {}, decoder {}) exceed max_position_embeddings {}", te, td,
                 config_.positions());
  auto a = std::make_unique<T5Activations>();
  a->chunk = 0;
  const std::int64_t c = config_.encoder.hidden_size;
  const auto setup = [&](T5StackActivations& s, std::int64_t seq, std::uint64_t offset, const TensorView& lengths,
                         const char* what, int layers) {
    s.pass.batch = b;
    s.pass.seq = seq;
    s.pass.training = training;
    s.pass.seed = rng.seed;
    s.pass.offset_base = offset;
    s.lengths = lengths_from(lengths, b, seq, what);
    if (!s.lengths.empty()) s.pass.key_lengths = TensorView(s.lengths.data(), DType::kI32, Shape{b});
    s.inputs.resize(static_cast<std::size_t>(layers) + 1);
  };
  setup(a->enc, te, rng.offset_base, batch.encoder_lengths, "encoder_lengths", config_.encoder.num_layers);
  setup(a->dec, td, rng.offset_base + 1 + 3 * static_cast<std::uint64_t>(config_.encoder.num_layers),
        batch.decoder_lengths, "decoder_lengths", config_.decoder.num_layers);
  if (batch.labels.defined()) {
    const std::int64_t n = b * td;
    std::vector<std::int32_t> targets = to_sequence_first<std::int32_t>(batch.labels, "labels");
    BIGNLP_CHECK(static_cast<std::int64_t>(targets.size()) == n, "T5: Batch.labels must be (B, Td) = ({}, {})", b, td);
    a->loss_mask = batch.loss_mask.defined() ? to_sequence_first<float>(batch.loss_mask, "loss_mask")
                                             : std::vector<float>(static_cast<std::size_t>(n), 1.0f);
    for (float m : a->loss_mask) a->mask_sum += m;
    // Megatron's T5 samples pad the labels with -1 where loss_mask is 0: those positions are
    // scored against token 0 and weigh nothing; a -1 inside the mask is an error.
    for (std::int64_t i = 0; i < n; ++i) {
      if (targets[i] >= 0) continue;
      BIGNLP_CHECK(a->loss_mask[i] == 0.0f, "T5: Batch.labels has {} at a position the loss_mask counts", targets[i]);
      targets[i] = 0;
    }
    a->targets = Buffer(*ctx_.allocator, DType::kI32, Shape{n});
    ops::copy(ctx_, TensorView(targets.data(), DType::kI32, Shape{n}), a->targets);
  }
  embed(enc_, a->enc, batch.encoder_tokens, training);
  run_stack(enc_, a->enc, training);
  // The decoder's cross-attention reads the encoder's output and adds its gradient to enc_grad.
  a->dec.pass.encoder_output = a->enc.final_out.view().reshape(Shape{te, b, c});
  if (!a->enc.lengths.empty()) a->dec.pass.encoder_lengths = a->enc.pass.key_lengths;
  if (training) {
    a->enc_grad = Buffer(*ctx_.allocator, config_.compute_dtype(), Shape{te * b, c});
    ops::fill(ctx_, a->enc_grad, 0.0);
    a->dec.pass.encoder_output_grad = a->enc_grad.view().reshape(Shape{te, b, c});
  }
  embed(dec_, a->dec, batch.tokens, training);
  run_stack(dec_, a->dec, training);
  if (!training) {
    a->enc.final_mean = Buffer();
    a->enc.final_rstd = Buffer();
  }
  head(*a);
  return a;
}

void T5Model::stack_backward(Stack& s, T5StackActivations& a, Buffer& dx) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.encoder.hidden_size;
  const DType dt = config_.compute_dtype();
  const int count = static_cast<int>(s.layers.size());
  const auto& ac = s.config.activations_checkpoint;
  for (int l = count - 1; l >= 0; --l) {
    if (fully_checkpointed(ac, l) && l == chunk_end(ac, l, count) - 1) {
      const int start = chunk_start(ac, l);
      for (int j = start; j <= l; ++j) {
        Buffer out(alloc, dt, Shape{n, c});
        s.layers[j].forward(ctx_, a.pass, a.inputs[j], out, a.layers[j],
                            selective(ac, j) ? ActivationStorage::kNoCoreAttention : ActivationStorage::kAll);
        if (j < l) a.inputs[j + 1] = std::move(out);
      }
    }
    s.layers[l].backward(ctx_, a.pass, a.inputs[l], a.layers[l], dx);
    a.inputs[l] = Buffer();
    for (Parameter* p : s.layers[l].parameters()) notify(p);
  }
  if (s.bias) {
    s.bias->backward(ctx_, 0, a.bias_grad);
    notify(&s.bias->weight());
  }
  if (a.pass.training && config_.embedding_dropout > 0.0f)
    ops::dropout_backward(ctx_, dx, dx, ops::DropoutParams{config_.embedding_dropout, a.pass.seed, a.pass.offset_base, 0});
  if (s.word->trainable)
    parallel::VocabParallelEmbedding(parallel_.tp, config_.padded_vocab_size()).backward(ctx_, a.ids, dx, s.word->grad);
  if (s.position != nullptr && s.position->trainable) ops::embedding_backward(ctx_, a.positions, dx, s.position->grad);
  a.layers.clear();
}

void T5Model::backward_chunk(Activations& acts, float grad_scale, const TensorView&, const TensorView&) {
  T5Activations& a = t5_activations(acts);
  BIGNLP_CHECK(a.dec.pass.training && a.logits.defined() && a.targets.defined(),
               "backward() needs the activations of a training forward() with labels");
  Allocator& alloc = *ctx_.allocator;
  const DType dt = config_.compute_dtype();
  const std::int64_t n = a.dec.pass.rows(), c = config_.encoder.hidden_size, vl = head_weight_->shape[0];
  std::vector<float> dlosses(static_cast<std::size_t>(n), 0.0f);
  if (a.mask_sum > 0.0)
    for (std::int64_t i = 0; i < n; ++i)
      dlosses[i] = static_cast<float>(a.loss_mask[i] / a.mask_sum * static_cast<double>(grad_scale));
  Buffer dl(alloc, DType::kF32, Shape{n});
  ops::copy(ctx_, TensorView(dlosses.data(), DType::kF32, Shape{n}), dl);
  const TensorView logits = a.logits.view().reshape(Shape{n, vl});
  parallel::VocabParallelCrossEntropy(parallel_.tp, parallel_.tp_size() > 1 ? parallel_.tp_rank() * vl : 0)
      .backward(ctx_, logits, a.targets, a.lse, dl, logits);
  Buffer d_final(alloc, dt, Shape{n, c});
  const parallel::LinearWeights w{
      head_weight_->value, head_bias_ != nullptr ? head_bias_->value : TensorView{},
      head_weight_->trainable ? head_weight_->grad : TensorView{},
      head_bias_ != nullptr && head_bias_->trainable ? head_bias_->grad : TensorView{}};
  parallel::ColumnParallelLinear(parallel_.tp, false, false).backward(ctx_, w, a.dec.final_out, logits, d_final);
  a.logits = Buffer();
  a.losses = Buffer();
  a.lse = Buffer();
  notify(head_bias_);
  if (head_weight_ != dec_.word) notify(head_weight_);
  Buffer dx(alloc, dt, Shape{n, c});
  dec_.final_norm->backward(ctx_, a.dec.inputs.back(), a.dec.final_mean, a.dec.final_rstd, d_final, dx, false);
  notify(&dec_.final_norm->weight());
  notify(dec_.final_norm->bias());
  a.dec.final_out = Buffer();
  a.dec.inputs.back() = Buffer();
  stack_backward(dec_, a.dec, dx);
  // The encoder's output gradient: what every decoder layer's cross-attention left in enc_grad.
  const std::int64_t ne = a.enc.pass.rows();
  Buffer dxe(alloc, dt, Shape{ne, c});
  enc_.final_norm->backward(ctx_, a.enc.inputs.back(), a.enc.final_mean, a.enc.final_rstd, a.enc_grad, dxe, false);
  notify(&enc_.final_norm->weight());
  notify(enc_.final_norm->bias());
  a.enc_grad = Buffer();
  a.enc.final_out = Buffer();
  a.enc.inputs.back() = Buffer();
  stack_backward(enc_, a.enc, dxe);
  notify(enc_.word);
  if (enc_.position != nullptr) notify(enc_.position);
  if (dec_.word != enc_.word) notify(dec_.word);
  if (dec_.position != nullptr && dec_.position != enc_.position) notify(dec_.position);
}

void T5Model::reduce_model_parallel_grads() {
  if (parallel_.tp == nullptr) return;
  for (auto& p : store_.params())
    if (p.sequence_parallel && p.trainable) parallel_.tp->all_reduce(p.grad, comm::ReduceOp::kSum);
}

Buffer T5Model::gather_logits(const T5Activations& a) const {
  return detail::gather_vocab_logits(ctx_, parallel_, a.logits.view(), a.dec.pass.rows(), head_weight_->shape[0]);
}

TokenScores T5Model::score(const Batch& batch) {
  auto owned = forward(batch, DropoutRng{}, /*training=*/false);
  return scores_of(*owned);
}

TokenScores T5Model::scores_of(const Activations& head) {
  const T5Activations& a = t5_activations(head);
  BIGNLP_CHECK(a.targets.defined(), "scoring needs the head chunk's forward with labels");
  const std::int64_t n = a.dec.pass.rows(), vp = config_.padded_vocab_size();
  const Buffer gathered = gather_logits(a);
  return detail::token_scores(ctx_, gathered.defined() ? gathered.view() : a.logits.view().reshape(Shape{n, vp}),
                              config_.vocab_size, a.token_losses, a.dec.pass.batch, a.dec.pass.seq);
}

std::vector<float> T5Model::logits_to_host(const Activations& acts) const {
  const T5Activations& a = t5_activations(acts);
  BIGNLP_CHECK(a.logits.defined(), "no logits kept (backward() releases them)");
  const Buffer gathered = gather_logits(a);
  return detail::logits_batch_first(ctx_, gathered.defined() ? gathered.view() : a.logits.view(), a.dec.pass.batch,
                                    a.dec.pass.seq, config_.padded_vocab_size());
}

KvCache T5Model::make_kv_cache(std::int64_t slots, std::int64_t capacity) {
  BIGNLP_CHECK(parallel_.tp_size() == 1 && parallel_.pp_size() == 1,
               "incremental decoding runs on one rank; this model is split over {} tensor-parallel ranks (reshard the "
               "checkpoint to TP 1)",
               parallel_.tp_size());
  BIGNLP_CHECK(slots >= 1 && capacity >= 1, "a KV cache needs at least one slot and one position, got {} x {}", slots,
               capacity);
  BIGNLP_CHECK(capacity <= config_.positions(), "KV cache capacity {} exceeds max_position_embeddings {}", capacity,
               config_.positions());
  KvCache cache;
  cache.slots = slots;
  cache.capacity = capacity;
  cache.encoder_capacity = config_.positions();
  const std::int64_t width = config_.decoder.head_size() * config_.decoder.num_attention_heads;
  const auto zeros = [&](std::vector<Buffer>& list, std::int64_t positions) {
    for (std::size_t l = 0; l < dec_.layers.size(); ++l) {
      list.emplace_back(*ctx_.allocator, config_.compute_dtype(), Shape{slots, positions, width});
      ops::fill(ctx_, list.back(), 0.0);
    }
  };
  zeros(cache.keys, capacity);
  zeros(cache.values, capacity);
  zeros(cache.cross_keys, cache.encoder_capacity);
  zeros(cache.cross_values, cache.encoder_capacity);
  cache.encoder_lengths.assign(static_cast<std::size_t>(slots), 0);
  cache.cross_source.assign(static_cast<std::size_t>(slots), -1);
  return cache;
}

void T5Model::encode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments) {
  BIGNLP_CHECK(cache.cross_keys.size() == dec_.layers.size() && cache.cross_values.size() == dec_.layers.size() &&
                   static_cast<std::int64_t>(cache.cross_source.size()) == cache.slots,
               "KV cache has no encoder side for the model's {} decoder layers (make it with make_kv_cache)",
               dec_.layers.size());
  const std::int64_t c = config_.encoder.hidden_size;
  std::size_t first = 0;
  for (const DecodeSegment& seg : segments) {
    BIGNLP_CHECK(seg.slot >= 0 && seg.slot < cache.slots && seg.past == 0 && seg.count >= 1 &&
                     seg.count <= cache.encoder_capacity && first + static_cast<std::size_t>(seg.count) <= tokens.size(),
                 "encode segment (slot {}, past {}, count {}) outside the cache ({} slots x {} encoder positions) or "
                 "the {} tokens (an input is encoded whole: past 0)",
                 seg.slot, seg.past, seg.count, cache.slots, cache.encoder_capacity, tokens.size());
    // One input at a time: no padding, and its encoding does not depend on the other inputs.
    std::vector<std::int32_t> ids(tokens.begin() + static_cast<std::ptrdiff_t>(first),
                                  tokens.begin() + static_cast<std::ptrdiff_t>(first + seg.count));
    first += static_cast<std::size_t>(seg.count);
    T5StackActivations a;
    a.pass.batch = 1;
    a.pass.seq = seg.count;
    a.inputs.resize(static_cast<std::size_t>(config_.encoder.num_layers) + 1);
    embed(enc_, a, TensorView(ids.data(), DType::kI32, Shape{1, seg.count}), /*training=*/false);
    run_stack(enc_, a, /*training=*/false);
    const std::int64_t cap = cache.encoder_capacity;
    for (std::size_t l = 0; l < dec_.layers.size(); ++l) {
      const auto rows = [&](const Buffer& b) {
        return b.view().slice(0, seg.slot, 1).reshape(Shape{cap, b.shape()[2]}).slice(0, 0, seg.count);
      };
      dec_.layers[l].cross_key_values(ctx_, a.final_out.view().reshape(Shape{seg.count, c}), rows(cache.cross_keys[l]),
                                      rows(cache.cross_values[l]));
    }
    cache.encoder_lengths[static_cast<std::size_t>(seg.slot)] = seg.count;
    cache.cross_source[static_cast<std::size_t>(seg.slot)] = seg.slot;
  }
  BIGNLP_CHECK(first == tokens.size(), "encode segments count {} tokens, {} given", first, tokens.size());
}

void T5Model::decode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments,
                     std::span<float> logits) {
  BIGNLP_CHECK(cache.keys.size() == dec_.layers.size() && cache.values.size() == dec_.layers.size() &&
                   cache.cross_keys.size() == dec_.layers.size() &&
                   static_cast<std::int64_t>(cache.cross_source.size()) == cache.slots,
               "KV cache has {} layers, the model's decoder {}", cache.keys.size(), dec_.layers.size());
  const std::int64_t n = static_cast<std::int64_t>(tokens.size()), c = config_.decoder.hidden_size,
                     s = static_cast<std::int64_t>(segments.size()), v = config_.vocab_size;
  BIGNLP_CHECK(n >= 1 && s >= 1, "decode needs at least one segment with tokens");
  BIGNLP_CHECK(static_cast<std::int64_t>(logits.size()) == s * v, "decode logits hold {} values, need {} x {}",
               logits.size(), s, v);
  std::vector<std::int32_t> positions;
  positions.reserve(tokens.size());
  std::vector<std::int64_t> cross_slot, cross_length;
  for (const DecodeSegment& seg : segments) {
    BIGNLP_CHECK(seg.slot >= 0 && seg.slot < cache.slots, "decode segment slot {} outside the cache's {} slots",
                 seg.slot, cache.slots);
    BIGNLP_CHECK(seg.past + seg.count <= cache.capacity, "decoder positions up to {} exceed the cache's {}",
                 seg.past + seg.count, cache.capacity);
    const std::int64_t src = cache.cross_source[static_cast<std::size_t>(seg.slot)];
    BIGNLP_CHECK(src >= 0, "decode segment of slot {}: no encoded input (call encode first)", seg.slot);
    cross_slot.push_back(src);
    cross_length.push_back(cache.encoder_lengths[static_cast<std::size_t>(src)]);
    for (std::int64_t i = 0; i < seg.count; ++i) positions.push_back(static_cast<std::int32_t>(seg.past + i));
  }
  BIGNLP_CHECK(static_cast<std::int64_t>(positions.size()) == n, "decode segments count {} tokens, {} given",
               positions.size(), n);
  for (std::int32_t id : tokens)
    BIGNLP_CHECK(id >= 0 && id < config_.padded_vocab_size(), "token id {} outside the vocabulary [0, {})", id,
                 config_.padded_vocab_size());
  Allocator& alloc = *ctx_.allocator;
  const DType dt = config_.compute_dtype();
  Buffer ids(alloc, DType::kI32, Shape{n});
  ops::copy(ctx_, TensorView(const_cast<std::int32_t*>(tokens.data()), DType::kI32, Shape{n}), ids);
  Buffer x(alloc, dt, Shape{n, c}), y(alloc, dt, Shape{n, c});
  parallel::VocabParallelEmbedding(parallel_.tp, config_.padded_vocab_size()).forward(ctx_, ids, dec_.word->value, x);
  if (dec_.position != nullptr) {
    Buffer pos(alloc, DType::kI32, Shape{n});
    ops::copy(ctx_, TensorView(positions.data(), DType::kI32, Shape{n}), pos);
    ops::embedding_forward(ctx_, pos, dec_.position->value, x, 0, /*accumulate=*/true);
  }
  // The decoder's relative bias of each segment: its queries [past, past + count) against keys
  // [0, past + count).
  std::vector<Buffer> bias_store;
  std::vector<TensorView> biases;
  if (dec_.bias) {
    const std::int64_t heads = config_.decoder.num_attention_heads;
    for (const DecodeSegment& seg : segments) {
      bias_store.emplace_back(alloc, DType::kF32, Shape{heads, seg.count, seg.past + seg.count});
      dec_.bias->forward(ctx_, seg.past, bias_store.back());
      biases.push_back(bias_store.back().view());
    }
  }
  for (std::size_t l = 0; l < dec_.layers.size(); ++l) {
    CachedDecodeExtras extras;
    extras.position_bias = biases;
    extras.cross_keys = cache.cross_keys[l];
    extras.cross_values = cache.cross_values[l];
    extras.cross_slot = cross_slot;
    extras.cross_length = cross_length;
    dec_.layers[l].forward_cached(ctx_, segments, x, y, cache.keys[l], cache.values[l], extras);
    std::swap(x, y);
  }
  // The head runs on each segment's last row only.
  Buffer last(alloc, dt, Shape{s, c});
  std::int64_t row = 0;
  for (std::int64_t i = 0; i < s; ++i) {
    row += segments[static_cast<std::size_t>(i)].count;
    ops::copy(ctx_, x.view().slice(0, row - 1, 1), last.view().slice(0, i, 1));
  }
  Buffer out(alloc, dt, Shape{s, c}), mean(alloc, DType::kF32, Shape{s}), rstd(alloc, DType::kF32, Shape{s});
  dec_.final_norm->forward(ctx_, last, out, mean, rstd);
  const std::int64_t vl = head_weight_->shape[0];
  Buffer full(alloc, dt, Shape{s, vl});
  const parallel::LinearWeights w{head_weight_->value, head_bias_ != nullptr ? head_bias_->value : TensorView{}, {}, {}};
  parallel::ColumnParallelLinear(parallel_.tp, false, false).forward(ctx_, w, out, full);
  ops::copy(ctx_, full.view().slice(1, 0, v), TensorView(logits.data(), DType::kF32, Shape{s, v}));
}

}  // namespace bignlp::model
