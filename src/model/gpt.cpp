#include "bignlp/model/gpt.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bignlp/core/check.h"
#include "family_common.h"
#include "bignlp/parallel/column_parallel_linear.h"
#include "bignlp/parallel/grad_buckets.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/parallel/vocab_parallel_cross_entropy.h"
#include "bignlp/parallel/vocab_parallel_embedding.h"

namespace bignlp::model {
namespace {

using detail::to_sequence_first;

constexpr const char* kWordEmbeddings = "model.language_model.embedding.word_embeddings.weight";
constexpr const char* kPositionEmbeddings = "model.language_model.embedding.position_embeddings.weight";
constexpr const char* kFinalLayerNorm = "model.language_model.encoder.final_layernorm";
// The last pipeline stage's copy of the tied word embedding (NeMo's name for it).
constexpr const char* kOutputWordEmbeddings = "model.word_embeddings.weight";

/// Host copy of a (B, T) tensor transposed to sequence-first (N = T*B) order.
/// The GPT activations behind a Model::Activations (a programmer error otherwise).
GptActivations& gpt_activations(Activations& a) {
  auto* g = dynamic_cast<GptActivations*>(&a);
  BIGNLP_CHECK(g != nullptr, "GptModel given activations of another model family");
  return *g;
}

const GptActivations& gpt_activations(const Activations& a) {
  const auto* g = dynamic_cast<const GptActivations*>(&a);
  BIGNLP_CHECK(g != nullptr, "GptModel given activations of another model family");
  return *g;
}

}  // namespace

nlohmann::json GptModel::config_json() const { return nlohmann::json(config_); }

BlockSpec gpt_block_spec(const GptConfig& c) {
  BlockSpec s;
  s.hidden_size = c.hidden_size;
  s.ffn_hidden_size = c.ffn_size();
  s.num_attention_heads = c.num_attention_heads;
  s.kv_channels = c.head_size();
  s.num_layers = c.num_layers;
  s.normalization = Normalization::kLayerNorm;
  s.normalization_bias = true;
  s.normalization_epsilon = c.layernorm_epsilon;
  s.activation = c.activation == ops::GeluApprox::kTanh ? ops::Activation::kGeluTanh : ops::Activation::kGeluErf;
  s.gated_linear_unit = false;
  s.bias = true;
  s.self_attention_mask = SelfAttentionMask::kCausal;
  s.apply_query_key_layer_scaling = c.apply_query_key_layer_scaling;
  s.init_method_std = c.init_method_std;
  s.use_scaled_init_method = c.use_scaled_init_method;
  s.hidden_dropout = c.hidden_dropout;
  s.attention_dropout = c.attention_dropout;
  s.naming = BlockNaming::gpt();
  return s;
}

GptModel::GptModel(const GptConfig& config, const ops::OpContext& ctx, const parallel::ParallelContext& parallel,
                   const ParameterPredicate& trainable)
    : GptModel("gpt", config, gpt_block_spec(config), ctx, parallel, trainable) {}

GptModel::GptModel(std::string family, const GptConfig& config, const BlockSpec& block, const ops::OpContext& ctx,
                   const parallel::ParallelContext& parallel, const ParameterPredicate& trainable)
    : family_(std::move(family)),
      config_(config),
      spec_(block),
      ctx_(ctx),
      parallel_(parallel),
      plan_(config.num_layers, parallel.pp_size(), parallel.options.virtual_pipeline_size) {
  config_.validate();
  spec_.validate();
  BIGNLP_CHECK(spec_.hidden_size == config_.hidden_size && spec_.num_layers == config_.num_layers &&
                   spec_.num_attention_heads == config_.num_attention_heads &&
                   spec_.self_attention_mask == SelfAttentionMask::kCausal && !spec_.cross_attention,
               "{}: the block spec must be a causal decoder block of the config's sizes", family_);
  BIGNLP_CHECK(ctx_.allocator != nullptr, "GptModel needs an OpContext with an allocator");
  BIGNLP_CHECK(ctx_.allocator->device() == ctx_.device, "allocator device {} differs from the context device {}",
               ctx_.allocator->device().to_string(), ctx_.device.to_string());
  const int t = parallel_.tp != nullptr ? parallel_.tp->size() : 1;
  BIGNLP_CHECK(std::max(1, config_.tensor_model_parallel_size) == parallel_.tp_size(),
               "the model config pads the vocabulary for tensor_model_parallel_size {}, but the parallel context has {} "
               "tensor-parallel ranks",
               config_.tensor_model_parallel_size, parallel_.tp_size());
  const std::int64_t vocab_rows = config_.padded_vocab_size() / t;
  const int stage = parallel_.pp_rank();
  auto word_shard = [&](const char* name, ParamInit init) {
    Parameter w;
    w.name = name;
    w.shape = Shape{vocab_rows, config_.hidden_size};
    w.init = init;
    w.init_std = config_.init_method_std;
    w.partition_dim = 0;
    w.tp_rank = t > 1 ? parallel_.tp->rank() : 0;
    w.tp_size = t;
    return w;
  };
  if (plan_.has_embedding(stage, 0)) {
    word_embeddings_ = &store_.add(word_shard(kWordEmbeddings, ParamInit::kNormal));
    Parameter pos;
    pos.name = kPositionEmbeddings;
    pos.shape = Shape{config_.positions(), config_.hidden_size};
    pos.init = ParamInit::kNormal;
    pos.init_std = config_.init_method_std;
    position_embeddings_ = &store_.add(std::move(pos));
  }
  chunk_layers_.resize(static_cast<std::size_t>(plan_.num_chunks()));
  layers_.reserve(plan_.stage_layers(stage).size());
  for (int c = 0; c < plan_.num_chunks(); ++c) {
    const parallel::LayerRange range = plan_.layers(stage, c);
    for (int l = range.begin; l < range.end; ++l) {
      chunk_layers_[static_cast<std::size_t>(c)].push_back(static_cast<int>(layers_.size()));
      layers_.emplace_back(spec_, store_, l, parallel_);
    }
  }
  if (plan_.has_head(stage, plan_.num_chunks() - 1)) {
    final_layernorm_ = std::make_unique<Norm>(
        store_, NormSpec{kFinalLayerNorm, config_.hidden_size, spec_.normalization_epsilon, spec_.normalization,
                         spec_.normalization_bias, parallel_.sequence_parallel()});
    if (word_embeddings_ != nullptr) {
      output_weights_ = word_embeddings_;
    } else {
      Parameter copy = word_shard(kOutputWordEmbeddings, ParamInit::kZeros);
      copy.shared = true;
      output_weights_ = &store_.add(std::move(copy));
    }
  }
  if (trainable) store_.set_trainable(trainable);  // frozen parameters: laid out after the trainable ones
  // The distributed optimizer updates only this DP rank's shards of the gradient buckets: the
  // store keeps fp32 master weights for those elements only.
  std::optional<std::vector<parallel::FlatRange>> master_ranges;
  if (parallel_.options.distributed_optimizer_bucket_numel > 0 && parallel_.dp != nullptr &&
      parallel_.dp->size() > 1) {
    const std::vector<parallel::FlatRange> ranges = store_.trainable_ranges();
    master_ranges = parallel::GradBuckets::owned_ranges(ranges, parallel_.options.distributed_optimizer_bucket_numel,
                                                        parallel_.dp->size(), parallel_.dp->rank());
  }
  store_.allocate(*ctx_.allocator, config_.compute_dtype(), std::move(master_ranges));
}

void GptModel::initialize(std::uint64_t seed) {
  // The last stage's copy of the tied embedding starts at 0: summing over {first, last} copies
  // the first stage's weights into it (Megatron's initialize_word_embeddings).
  InitFixup tied;
  if (parallel_.pp_size() > 1 && parallel_.embedding != nullptr) {
    tied.param = word_embeddings_ != nullptr ? word_embeddings_ : output_weights_;
    tied.apply = [this](const TensorView& weights) { parallel_.embedding->all_reduce(weights, comm::ReduceOp::kSum); };
  }
  store_.initialize(ctx_, seed, tied);
}

Shape GptModel::boundary_shape(std::int64_t batch, std::int64_t seq) const {
  const std::int64_t t = parallel_.sequence_parallel() ? parallel_.tp_size() : 1;
  return Shape{seq / t, batch, config_.hidden_size};
}

// The parallel layers at one rank (no TP communicator) are the plain ops: one path for every TP size.
parallel::VocabParallelEmbedding GptModel::word_embedding() const {
  return parallel::VocabParallelEmbedding(parallel_.tp, config_.padded_vocab_size());
}

parallel::ColumnParallelLinear GptModel::output_layer() const {
  return parallel::ColumnParallelLinear(parallel_.tp, parallel_.sequence_parallel(), parallel_.options.async_tp_allreduce);
}

parallel::LinearWeights GptModel::output_layer_weights() const {
  return parallel::LinearWeights{output_weights_->value, {}, output_weights_->trainable ? output_weights_->grad : TensorView{},
                                 {}};
}

parallel::VocabParallelCrossEntropy GptModel::cross_entropy() const {
  const std::int64_t vl = output_weights_->shape[0];
  return parallel::VocabParallelCrossEntropy(parallel_.tp, parallel_.tp_size() > 1 ? parallel_.tp_rank() * vl : 0);
}

std::int64_t GptModel::local_rows(std::int64_t rows) const {
  return parallel_.sequence_parallel() ? rows / parallel_.tp_size() : rows;
}

std::uint64_t GptModel::local_first_element(std::int64_t rows) const {
  return parallel_.sequence_parallel()
             ? static_cast<std::uint64_t>(parallel::sp_row_offset(*parallel_.tp, rows) * config_.hidden_size)
             : 0;
}

// Activation checkpointing plan: family_common.h. l counts the layers of one model chunk (a
// pipeline stage's share) from 0.
bool GptModel::layer_fully_checkpointed(int l) const {
  return detail::fully_checkpointed(config_.activations_checkpoint, l);
}

int GptModel::chunk_start(int l) const { return detail::checkpoint_chunk_start(config_.activations_checkpoint, l); }

int GptModel::chunk_end(int l, int count) const {
  return detail::checkpoint_chunk_end(config_.activations_checkpoint, l, count);
}

bool GptModel::layer_selective(int l) const {
  return detail::selectively_checkpointed(config_.activations_checkpoint, l);
}

void GptModel::prepare_targets(GptActivations& a, const Batch& batch) {
  if (!batch.labels.defined()) return;
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows();
  std::vector<std::int32_t> targets = to_sequence_first<std::int32_t>(batch.labels, "labels");
  a.targets = Buffer(alloc, DType::kI32, Shape{n});
  ops::copy(ctx_, TensorView(targets.data(), DType::kI32, Shape{n}), a.targets);
  if (batch.loss_mask.defined()) {
    a.loss_mask = to_sequence_first<float>(batch.loss_mask, "loss_mask");
  } else {
    a.loss_mask.assign(static_cast<std::size_t>(n), 1.0f);
  }
  a.mask_sum = 0.0;
  for (float m : a.loss_mask) a.mask_sum += m;
}

void GptModel::embed(GptActivations& a, const Batch& batch, bool training) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.hidden_size;
  std::vector<std::int32_t> ids = to_sequence_first<std::int32_t>(batch.tokens, "tokens");
  for (std::int32_t id : ids)
    BIGNLP_CHECK(id >= 0 && id < config_.padded_vocab_size(), "token id {} outside the vocabulary [0, {})", id,
                 config_.padded_vocab_size());
  std::vector<std::int32_t> positions(static_cast<std::size_t>(n));
  if (batch.position_ids.defined()) {
    positions = to_sequence_first<std::int32_t>(batch.position_ids, "position_ids");
  } else {
    for (std::int64_t i = 0; i < n; ++i) positions[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i / a.pass.batch);
  }
  a.ids = Buffer(alloc, DType::kI32, Shape{n});
  a.positions = Buffer(alloc, DType::kI32, Shape{n});
  ops::copy(ctx_, TensorView(ids.data(), DType::kI32, Shape{n}), a.ids);
  ops::copy(ctx_, TensorView(positions.data(), DType::kI32, Shape{n}), a.positions);
  Buffer full(alloc, config_.compute_dtype(), Shape{n, c});
  // Vocab-parallel lookup (all-reduced over TP); exactly one rank contributes each row.
  word_embedding().forward(ctx_, a.ids, word_embeddings_->value, full);
  ops::embedding_forward(ctx_, a.positions, position_embeddings_->value, full, 0, /*accumulate=*/true);
  if (parallel_.sequence_parallel()) {
    a.inputs[0] = Buffer(alloc, config_.compute_dtype(), Shape{local_rows(n), c});
    parallel::scatter_to_sp_region_forward(ctx_, *parallel_.tp, full, a.inputs[0]);
  } else {
    a.inputs[0] = std::move(full);
  }
  if (training && config_.hidden_dropout > 0.0f)
    ops::dropout_forward(ctx_, a.inputs[0], a.inputs[0],
                         ops::DropoutParams{config_.hidden_dropout, a.pass.seed, a.pass.offset_base, local_first_element(n)});
}

void GptModel::head(GptActivations& a) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), nl = local_rows(n), c = config_.hidden_size,
                     vl = output_weights_->shape[0];
  const DType dt = config_.compute_dtype();
  a.final_out = Buffer(alloc, dt, Shape{nl, c});
  a.final_mean = Buffer(alloc, DType::kF32, Shape{nl});
  a.final_rstd = Buffer(alloc, DType::kF32, Shape{nl});
  final_layernorm_->forward(ctx_, a.inputs.back(), a.final_out, a.final_mean, a.final_rstd);
  a.logits = Buffer(alloc, dt, Shape{a.pass.seq, a.pass.batch, vl});
  output_layer().forward(ctx_, output_layer_weights(), a.final_out, a.logits.view().reshape(Shape{n, vl}));
  if (!a.targets.defined()) return;
  a.losses = Buffer(alloc, DType::kF32, Shape{n});
  a.lse = Buffer(alloc, DType::kF32, Shape{n});
  cross_entropy().forward(ctx_, a.logits.view().reshape(Shape{n, vl}), a.targets, a.losses, a.lse);
  a.token_losses.assign(static_cast<std::size_t>(n), 0.0f);
  ops::copy(ctx_, a.losses, TensorView(a.token_losses.data(), DType::kF32, Shape{n}));
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(a.token_losses[i]) * a.loss_mask[i];
  a.loss = a.mask_sum > 0.0 ? static_cast<float>(sum / a.mask_sum) : 0.0f;
}

std::unique_ptr<Activations> GptModel::forward_chunk(int chunk, const Batch& batch, const DropoutRng& rng,
                                                     bool training, const TensorView& input, const TensorView& output) {
  BIGNLP_CHECK(chunk >= 0 && chunk < plan_.num_chunks(), "model chunk {} outside [0, {})", chunk, plan_.num_chunks());
  auto a = std::make_unique<GptActivations>();
  a->chunk = chunk;
  a->pass.training = training;
  a->pass.seed = rng.seed;
  a->pass.offset_base = rng.offset_base;
  BIGNLP_CHECK(batch.tokens.defined() && batch.tokens.dtype() == DType::kI32, "Batch.tokens must be int32, got {}",
               batch.tokens.defined() ? dtype_name(batch.tokens.dtype()) : "nothing");
  a->pass.batch = batch.tokens.size(0);
  a->pass.seq = batch.tokens.size(1);
  BIGNLP_CHECK(a->pass.seq <= config_.positions(), "sequence length {} exceeds max_position_embeddings {}", a->pass.seq,
               config_.positions());
  const std::int64_t n = a->pass.rows(), nl = local_rows(n), c = config_.hidden_size;
  const auto& chunk_layers = chunk_layers_[static_cast<std::size_t>(chunk)];
  const int count = static_cast<int>(chunk_layers.size());
  if (has_head(chunk)) prepare_targets(*a, batch);
  a->inputs.resize(static_cast<std::size_t>(count) + 1);
  if (has_embedding(chunk) && !input.defined()) {
    embed(*a, batch, training);
  } else if (has_embedding(chunk)) {
    // Embeddings computed by the caller (prompt learning: virtual token rows; NeMo's
    // encoder_input): the embedding module and its dropout are bypassed.
    BIGNLP_CHECK(input.numel() == nl * c, "the input embeddings of stage {} must be {} x {}, got {}",
                 parallel_.pp_rank(), nl, c, input.to_string());
    a->embedded_input = true;
    a->inputs[0] = Buffer(*ctx_.allocator, config_.compute_dtype(), Shape{nl, c});
    ops::copy(ctx_, input.reshape(Shape{nl, c}), a->inputs[0]);
  } else {
    BIGNLP_CHECK(input.defined() && input.numel() == nl * c, "chunk {} of stage {} needs the previous stage's activation "
                 "({} x {}), got {}", chunk, parallel_.pp_rank(), nl, c, input.defined() ? input.to_string() : "nothing");
    a->inputs[0] = Buffer(*ctx_.allocator, config_.compute_dtype(), Shape{nl, c});
    ops::copy(ctx_, input.reshape(Shape{nl, c}), a->inputs[0]);
  }
  a->layers.resize(static_cast<std::size_t>(count));
  for (int l = 0; l < count; ++l) {
    ActivationStorage storage = ActivationStorage::kAll;
    if (!training || layer_fully_checkpointed(l))
      storage = ActivationStorage::kNone;
    else if (layer_selective(l))
      storage = ActivationStorage::kNoCoreAttention;
    a->inputs[l + 1] = Buffer(*ctx_.allocator, config_.compute_dtype(), Shape{nl, c});
    layers_[chunk_layers[l]].forward(ctx_, a->pass, a->inputs[l], a->inputs[l + 1], a->layers[l], storage);
    // Inputs that neither a backward pass nor a recomputation will read again are released now.
    if (!training || (layer_fully_checkpointed(l) && chunk_start(l) != l)) a->inputs[l] = Buffer();
  }
  if (has_head(chunk)) {
    head(*a);
  } else {
    BIGNLP_CHECK(output.defined() && output.numel() == nl * c, "chunk {} of stage {} needs an output of {} x {}", chunk,
                 parallel_.pp_rank(), nl, c);
    ops::copy(ctx_, a->inputs.back(), output.reshape(Shape{nl, c}));
    a->inputs.back() = Buffer();  // not read by any backward
  }
  return a;
}

void GptModel::backward_chunk(Activations& acts, float grad_scale, const TensorView& output_grad,
                              const TensorView& input_grad) {
  GptActivations& a = gpt_activations(acts);
  const int chunk = a.chunk;
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), nl = local_rows(n), c = config_.hidden_size;
  const DType dt = config_.compute_dtype();
  const auto& chunk_layers = chunk_layers_[static_cast<std::size_t>(chunk)];
  const int count = static_cast<int>(chunk_layers.size());
  Buffer dx(alloc, dt, Shape{nl, c});
  if (has_head(chunk)) {
    BIGNLP_CHECK(a.pass.training && a.logits.defined() && a.targets.defined(),
                 "backward() needs the activations of a training forward() with labels");
    const std::int64_t vl = output_weights_->shape[0];
    std::vector<float> dlosses(static_cast<std::size_t>(n), 0.0f);
    if (a.mask_sum > 0.0)
      for (std::int64_t i = 0; i < n; ++i)
        dlosses[i] = static_cast<float>(a.loss_mask[i] / a.mask_sum * static_cast<double>(grad_scale));
    Buffer dl(alloc, DType::kF32, Shape{n});
    ops::copy(ctx_, TensorView(dlosses.data(), DType::kF32, Shape{n}), dl);
    const TensorView logits = a.logits.view().reshape(Shape{n, vl});
    Buffer d_final(alloc, dt, Shape{nl, c});
    cross_entropy().backward(ctx_, logits, a.targets, a.lse, dl, logits);  // in place: dlogits
    output_layer().backward(ctx_, output_layer_weights(), a.final_out, logits, d_final);
    a.logits = Buffer();
    a.losses = Buffer();
    a.lse = Buffer();
    a.final_out = Buffer();
    final_layernorm_->backward(ctx_, a.inputs.back(), a.final_mean, a.final_rstd, d_final, dx, false);
    a.final_mean = Buffer();
    a.final_rstd = Buffer();
    a.inputs.back() = Buffer();
    notify(&final_layernorm_->weight());
    notify(final_layernorm_->bias());
    if (output_weights_ != word_embeddings_) notify(output_weights_);
  } else {
    BIGNLP_CHECK(output_grad.defined() && output_grad.numel() == nl * c,
                 "chunk {} of stage {} needs the next stage's gradient ({} x {})", chunk, parallel_.pp_rank(), nl, c);
    ops::copy(ctx_, output_grad.reshape(Shape{nl, c}), dx);
  }
  for (int l = count - 1; l >= 0; --l) {
    if (layer_fully_checkpointed(l) && l == chunk_end(l, count) - 1) {
      // Recompute the chunk [start, l] from its saved input; the last output is not needed.
      const int start = chunk_start(l);
      for (int j = start; j <= l; ++j) {
        Buffer out(alloc, dt, Shape{nl, c});
        layers_[chunk_layers[j]].forward(ctx_, a.pass, a.inputs[j], out, a.layers[j],
                                         layer_selective(j) ? ActivationStorage::kNoCoreAttention : ActivationStorage::kAll);
        if (j < l) a.inputs[j + 1] = std::move(out);
      }
    }
    const TransformerLayer& layer = layers_[chunk_layers[l]];
    layer.backward(ctx_, a.pass, a.inputs[l], a.layers[l], dx);
    a.inputs[l] = Buffer();
    for (Parameter* p : layer.parameters()) notify(p);
  }
  if (has_embedding(chunk) && a.embedded_input) {
    // The caller's embeddings get their gradient; the frozen or bypassed tables get none.
    BIGNLP_CHECK(input_grad.defined() && input_grad.numel() == nl * c,
                 "a forward given input embeddings needs an input gradient of {} x {}", nl, c);
    ops::copy(ctx_, dx, input_grad.reshape(Shape{nl, c}));
  } else if (has_embedding(chunk)) {
    if (a.pass.training && config_.hidden_dropout > 0.0f)
      ops::dropout_backward(ctx_, dx, dx,
                            ops::DropoutParams{config_.hidden_dropout, a.pass.seed, a.pass.offset_base,
                                               local_first_element(n)});
    Buffer full;
    TensorView d_embed = dx;
    if (parallel_.sequence_parallel()) {
      full = Buffer(alloc, dt, Shape{n, c});
      parallel::scatter_to_sp_region_backward(*parallel_.tp, dx, full);
      d_embed = full.view();
    }
    // Frozen tables (prompt learning's base model) get no gradient.
    if (word_embeddings_->trainable) word_embedding().backward(ctx_, a.ids, d_embed, word_embeddings_->grad);
    if (position_embeddings_->trainable) ops::embedding_backward(ctx_, a.positions, d_embed, position_embeddings_->grad);
    notify(word_embeddings_);
    notify(position_embeddings_);
  } else {
    BIGNLP_CHECK(input_grad.defined() && input_grad.numel() == nl * c, "chunk {} of stage {} needs an input gradient",
                 chunk, parallel_.pp_rank());
    ops::copy(ctx_, dx, input_grad.reshape(Shape{nl, c}));
  }
  a.layers.clear();
}

void GptModel::reduce_model_parallel_grads() {
  if (parallel_.sequence_parallel()) {
    // LayerNorm gradients of a sequence slice are partial: one coalesced all-reduce over TP.
    std::int64_t total = 0;
    for (const auto& p : store_.params())
      if (p.sequence_parallel) total += p.numel();
    if (total > 0) {
      Buffer flat(*ctx_.allocator, DType::kF32, Shape{total});
      std::int64_t off = 0;
      for (const auto& p : store_.params()) {
        if (!p.sequence_parallel) continue;
        ops::copy(ctx_, p.grad.reshape(Shape{p.numel()}), flat.view().slice(0, off, p.numel()));
        off += p.numel();
      }
      parallel_.tp->all_reduce(flat, comm::ReduceOp::kSum);
      off = 0;
      for (auto& p : store_.params()) {
        if (!p.sequence_parallel) continue;
        ops::copy(ctx_, flat.view().slice(0, off, p.numel()), p.grad.reshape(Shape{p.numel()}));
        off += p.numel();
      }
    }
  }
  if (parallel_.pp_size() > 1 && parallel_.embedding != nullptr) {
    Parameter* w = word_embeddings_ != nullptr ? word_embeddings_ : output_weights_;
    parallel_.embedding->all_reduce(w->grad, comm::ReduceOp::kSum);
  }
}

Buffer GptModel::gather_logits(const GptActivations& a) const {
  return detail::gather_vocab_logits(ctx_, parallel_, a.logits.view(), a.pass.rows(), output_weights_->shape[0]);
}

TokenScores GptModel::score(const Batch& batch) {
  auto owned = forward(batch, DropoutRng{}, /*training=*/false);
  return scores_of(*owned);
}

TokenScores GptModel::scores_of(const Activations& head) {
  const GptActivations& a = gpt_activations(head);
  BIGNLP_CHECK(a.logits.defined() && a.targets.defined(), "scoring needs the head chunk's forward with labels");
  const std::int64_t n = a.pass.rows(), vp = config_.padded_vocab_size();
  const Buffer gathered = gather_logits(a);
  return detail::token_scores(ctx_, gathered.defined() ? gathered.view() : a.logits.view().reshape(Shape{n, vp}),
                              config_.vocab_size, a.token_losses, a.pass.batch, a.pass.seq);
}

std::vector<float> GptModel::logits_to_host(const Activations& acts) const {
  const GptActivations& a = gpt_activations(acts);
  BIGNLP_CHECK(a.logits.defined(), "no logits kept (backward() releases them)");
  const Buffer gathered = gather_logits(a);
  return detail::logits_batch_first(ctx_, gathered.defined() ? gathered.view() : a.logits.view(), a.pass.batch,
                                    a.pass.seq, config_.padded_vocab_size());
}

KvCache GptModel::make_kv_cache(std::int64_t slots, std::int64_t capacity) {
  // Tensor parallelism: each rank caches its heads (the column-parallel QKV's share); the layers'
  // row-parallel projections and the vocab-parallel embedding all-reduce, the head's logits are
  // gathered over TP, so every rank sees the same logits. Pipeline parallelism: each stage caches
  // its own layers; decode() passes the hidden states stage to stage and the last stage
  // broadcasts the logits.
  BIGNLP_CHECK(plan_.num_chunks() == 1 && !parallel_.sequence_parallel(),
               "incremental decoding runs without virtual pipeline chunks and sequence parallelism (reshard the "
               "checkpoint: bignlp-convert --reshard)");
  BIGNLP_CHECK(slots >= 1 && capacity >= 1, "a KV cache needs at least one slot and one position, got {} x {}", slots,
               capacity);
  BIGNLP_CHECK(capacity <= config_.positions(), "KV cache capacity {} exceeds max_position_embeddings {}", capacity,
               config_.positions());
  KvCache cache;
  cache.slots = slots;
  cache.capacity = capacity;
  const Shape shape{slots, capacity, config_.projection_size() / parallel_.tp_size()};
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    cache.keys.emplace_back(*ctx_.allocator, config_.compute_dtype(), shape);
    cache.values.emplace_back(*ctx_.allocator, config_.compute_dtype(), shape);
    ops::fill(ctx_, cache.keys.back(), 0.0);
    ops::fill(ctx_, cache.values.back(), 0.0);
  }
  return cache;
}

void GptModel::decode(KvCache& cache, std::span<const std::int32_t> tokens, std::span<const DecodeSegment> segments,
                      std::span<float> logits) {
  BIGNLP_CHECK(cache.keys.size() == layers_.size() && cache.values.size() == layers_.size(),
               "KV cache has {} layers, the model {}", cache.keys.size(), layers_.size());
  const std::int64_t n = static_cast<std::int64_t>(tokens.size()), c = config_.hidden_size,
                     s = static_cast<std::int64_t>(segments.size()), v = config_.vocab_size;
  BIGNLP_CHECK(n >= 1 && s >= 1, "decode needs at least one segment with tokens");
  BIGNLP_CHECK(static_cast<std::int64_t>(logits.size()) == s * v, "decode logits hold {} values, need {} x {}",
               logits.size(), s, v);
  std::vector<std::int32_t> positions;
  positions.reserve(tokens.size());
  for (const DecodeSegment& seg : segments) {
    BIGNLP_CHECK(seg.past + seg.count <= config_.positions(), "positions up to {} exceed max_position_embeddings {}",
                 seg.past + seg.count, config_.positions());
    for (std::int64_t i = 0; i < seg.count; ++i) positions.push_back(static_cast<std::int32_t>(seg.past + i));
  }
  BIGNLP_CHECK(static_cast<std::int64_t>(positions.size()) == n, "decode segments count {} tokens, {} given",
               positions.size(), n);
  for (std::int32_t id : tokens)
    BIGNLP_CHECK(id >= 0 && id < config_.padded_vocab_size(), "token id {} outside the vocabulary [0, {})", id,
                 config_.padded_vocab_size());
  Allocator& alloc = *ctx_.allocator;
  const DType dt = config_.compute_dtype();
  Buffer ids(alloc, DType::kI32, Shape{n}), pos(alloc, DType::kI32, Shape{n});
  ops::copy(ctx_, TensorView(const_cast<std::int32_t*>(tokens.data()), DType::kI32, Shape{n}), ids);
  ops::copy(ctx_, TensorView(positions.data(), DType::kI32, Shape{n}), pos);
  Buffer x(alloc, dt, Shape{n, c}), y(alloc, dt, Shape{n, c});
  const int stage = parallel_.pp_rank(), stages = parallel_.pp_size();
  if (stage == 0) {
    word_embedding().forward(ctx_, ids, word_embeddings_->value, x);
    ops::embedding_forward(ctx_, pos, position_embeddings_->value, x, 0, /*accumulate=*/true);
  } else {
    parallel_.pp->recv(x.view(), stage - 1);
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].forward_cached(ctx_, segments, x, y, cache.keys[l], cache.values[l]);
    std::swap(x, y);
  }
  if (stage + 1 < stages) {
    // Host logits: the pipeline group's backend must take host memory (gloo; the engine runs on CPUs).
    parallel_.pp->send(x.view(), stage + 1);
    parallel_.pp->broadcast(TensorView(logits.data(), DType::kF32, Shape{s, v}), stages - 1);
    return;
  }
  // The head runs on each segment's last row only.
  Buffer last(alloc, dt, Shape{s, c});
  std::int64_t row = 0;
  for (std::int64_t i = 0; i < s; ++i) {
    row += segments[static_cast<std::size_t>(i)].count;
    ops::copy(ctx_, x.view().slice(0, row - 1, 1), last.view().slice(0, i, 1));
  }
  Buffer out(alloc, dt, Shape{s, c}), mean(alloc, DType::kF32, Shape{s}), rstd(alloc, DType::kF32, Shape{s});
  final_layernorm_->forward(ctx_, last, out, mean, rstd);
  const std::int64_t vl = output_weights_->shape[0];
  Buffer full(alloc, dt, Shape{s, vl});
  output_layer().forward(ctx_, output_layer_weights(), out, full);
  const Buffer gathered = detail::gather_vocab_logits(ctx_, parallel_, full, s, vl);
  ops::copy(ctx_, (gathered.defined() ? gathered.view() : full.view()).slice(1, 0, v),
            TensorView(logits.data(), DType::kF32, Shape{s, v}));
  if (stages > 1) parallel_.pp->broadcast(TensorView(logits.data(), DType::kF32, Shape{s, v}), stages - 1);
}

}  // namespace bignlp::model
