#include "bignlp/model/gpt.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/core/check.h"

namespace bignlp::model {
namespace {

constexpr const char* kWordEmbeddings = "model.language_model.embedding.word_embeddings.weight";
constexpr const char* kPositionEmbeddings = "model.language_model.embedding.position_embeddings.weight";
constexpr const char* kFinalLayerNorm = "model.language_model.encoder.final_layernorm";

/// Host copy of a (B, T) tensor transposed to sequence-first (N = T*B) order.
template <typename T>
std::vector<T> to_sequence_first(const TensorView& bt, const char* what) {
  BIGNLP_CHECK(bt.device().is_cpu(), "GptBatch.{} must be host memory, got {}", what, bt.to_string());
  BIGNLP_CHECK(bt.rank() == 2 && bt.is_contiguous(), "GptBatch.{} must be a contiguous (B, T) tensor, got {}", what,
               bt.to_string());
  const std::int64_t b = bt.size(0), t = bt.size(1);
  const T* src = bt.data<T>();
  std::vector<T> out(static_cast<std::size_t>(b * t));
  for (std::int64_t bi = 0; bi < b; ++bi)
    for (std::int64_t ti = 0; ti < t; ++ti) out[static_cast<std::size_t>(ti * b + bi)] = src[bi * t + ti];
  return out;
}

}  // namespace

std::uint64_t dropout_offset(std::int64_t step, std::int64_t micro, std::int64_t num_micro_batches) {
  return static_cast<std::uint64_t>(step * num_micro_batches + micro) << 20;
}

GptModel::GptModel(const GptConfig& config, const ops::OpContext& ctx) : config_(config), ctx_(ctx) {
  config_.validate();
  BIGNLP_CHECK(ctx_.allocator != nullptr, "GptModel needs an OpContext with an allocator");
  BIGNLP_CHECK(ctx_.allocator->device() == ctx_.device, "allocator device {} differs from the context device {}",
               ctx_.allocator->device().to_string(), ctx_.device.to_string());
  Parameter word;
  word.name = kWordEmbeddings;
  word.shape = Shape{config_.padded_vocab_size(), config_.hidden_size};
  word.init = ParamInit::kNormal;
  word.init_std = config_.init_method_std;
  word.partition_dim = 0;
  word_embeddings_ = &store_.add(std::move(word));
  Parameter pos;
  pos.name = kPositionEmbeddings;
  pos.shape = Shape{config_.positions(), config_.hidden_size};
  pos.init = ParamInit::kNormal;
  pos.init_std = config_.init_method_std;
  position_embeddings_ = &store_.add(std::move(pos));
  layers_.reserve(static_cast<std::size_t>(config_.num_layers));
  for (int l = 0; l < config_.num_layers; ++l) layers_.emplace_back(config_, store_, l);
  final_layernorm_ = std::make_unique<LayerNorm>(store_, kFinalLayerNorm, config_.hidden_size, config_.layernorm_epsilon);
  store_.allocate(*ctx_.allocator, config_.compute_dtype());
}

void GptModel::initialize(std::uint64_t seed) { store_.initialize(ctx_, seed); }

// Activation checkpointing plan (megatron-model.md §7.1): full+uniform recomputes chunks of k
// layers from each chunk's input; full+block recomputes each of the first k layers from its own
// input; selective keeps everything but the core attention (uniform: all layers, block: first k).
bool GptModel::layer_fully_checkpointed(int l) const {
  const auto& ac = config_.activations_checkpoint;
  if (ac.granularity != CheckpointGranularity::kFull || ac.num_layers <= 0) return false;
  return ac.method == CheckpointMethod::kUniform || l < ac.num_layers;
}

int GptModel::chunk_start(int l) const {
  const auto& ac = config_.activations_checkpoint;
  return ac.method == CheckpointMethod::kUniform ? l / ac.num_layers * ac.num_layers : l;
}

int GptModel::chunk_end(int l) const {
  const auto& ac = config_.activations_checkpoint;
  return ac.method == CheckpointMethod::kUniform ? std::min(config_.num_layers, chunk_start(l) + ac.num_layers) : l + 1;
}

bool GptModel::layer_selective(int l) const {
  const auto& ac = config_.activations_checkpoint;
  if (ac.granularity != CheckpointGranularity::kSelective) return false;
  return ac.method == CheckpointMethod::kUniform || l < ac.num_layers;
}

void GptModel::embed(GptActivations& a, const GptBatch& batch, bool training) {
  Allocator& alloc = *ctx_.allocator;
  BIGNLP_CHECK(batch.tokens.dtype() == DType::kI32, "GptBatch.tokens must be int32, got {}",
               dtype_name(batch.tokens.dtype()));
  a.pass.batch = batch.tokens.size(0);
  a.pass.seq = batch.tokens.size(1);
  BIGNLP_CHECK(a.pass.seq <= config_.positions(), "sequence length {} exceeds max_position_embeddings {}", a.pass.seq,
               config_.positions());
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
  if (batch.labels.defined()) {
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
  a.inputs.resize(static_cast<std::size_t>(config_.num_layers) + 1);
  a.inputs[0] = Buffer(alloc, config_.compute_dtype(), Shape{n, c});
  ops::embedding_forward(ctx_, a.ids, word_embeddings_->value, a.inputs[0]);
  ops::embedding_forward(ctx_, a.positions, position_embeddings_->value, a.inputs[0], 0, /*accumulate=*/true);
  if (training && config_.hidden_dropout > 0.0f)
    ops::dropout_forward(ctx_, a.inputs[0], a.inputs[0],
                         ops::DropoutParams{config_.hidden_dropout, a.pass.seed, a.pass.offset_base, 0});
}

void GptModel::head(GptActivations& a) {
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.hidden_size, vp = config_.padded_vocab_size();
  const DType dt = config_.compute_dtype();
  a.final_out = Buffer(alloc, dt, Shape{n, c});
  a.final_mean = Buffer(alloc, DType::kF32, Shape{n});
  a.final_rstd = Buffer(alloc, DType::kF32, Shape{n});
  final_layernorm_->forward(ctx_, a.inputs.back(), a.final_out, a.final_mean, a.final_rstd);
  a.logits = Buffer(alloc, dt, Shape{a.pass.seq, a.pass.batch, vp});
  ops::gemm(ctx_, a.final_out, word_embeddings_->value, a.logits.view().reshape(Shape{n, vp}),
            ops::GemmParams{false, true});
  if (!a.targets.defined()) return;
  a.losses = Buffer(alloc, DType::kF32, Shape{n});
  a.lse = Buffer(alloc, DType::kF32, Shape{n});
  ops::cross_entropy_forward(ctx_, a.logits.view().reshape(Shape{n, vp}), a.targets, a.losses, a.lse);
  a.token_losses.assign(static_cast<std::size_t>(n), 0.0f);
  ops::copy(ctx_, a.losses, TensorView(a.token_losses.data(), DType::kF32, Shape{n}));
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(a.token_losses[i]) * a.loss_mask[i];
  a.loss = a.mask_sum > 0.0 ? static_cast<float>(sum / a.mask_sum) : 0.0f;
}

std::unique_ptr<GptActivations> GptModel::forward(const GptBatch& batch, const DropoutRng& rng, bool training) {
  auto a = std::make_unique<GptActivations>();
  a->pass.training = training;
  a->pass.seed = rng.seed;
  a->pass.offset_base = rng.offset_base;
  embed(*a, batch, training);
  const std::int64_t n = a->pass.rows(), c = config_.hidden_size;
  a->layers.resize(layers_.size());
  for (int l = 0; l < config_.num_layers; ++l) {
    ActivationStorage storage = ActivationStorage::kAll;
    if (!training || layer_fully_checkpointed(l))
      storage = ActivationStorage::kNone;
    else if (layer_selective(l))
      storage = ActivationStorage::kNoCoreAttention;
    a->inputs[l + 1] = Buffer(*ctx_.allocator, config_.compute_dtype(), Shape{n, c});
    layers_[l].forward(ctx_, a->pass, a->inputs[l], a->inputs[l + 1], a->layers[l], storage);
    // Inputs that neither a backward pass nor a recomputation will read again are released now.
    if (!training || (layer_fully_checkpointed(l) && chunk_start(l) != l)) a->inputs[l] = Buffer();
  }
  head(*a);
  return a;
}

void GptModel::backward(GptActivations& a, float grad_scale) {
  BIGNLP_CHECK(a.pass.training && a.logits.defined() && a.targets.defined(),
               "backward() needs the activations of a training forward() with labels");
  Allocator& alloc = *ctx_.allocator;
  const std::int64_t n = a.pass.rows(), c = config_.hidden_size, vp = config_.padded_vocab_size();
  const DType dt = config_.compute_dtype();
  std::vector<float> dlosses(static_cast<std::size_t>(n), 0.0f);
  if (a.mask_sum > 0.0)
    for (std::int64_t i = 0; i < n; ++i)
      dlosses[i] = static_cast<float>(a.loss_mask[i] / a.mask_sum * static_cast<double>(grad_scale));
  {
    Buffer dl(alloc, DType::kF32, Shape{n});
    ops::copy(ctx_, TensorView(dlosses.data(), DType::kF32, Shape{n}), dl);
    const TensorView logits = a.logits.view().reshape(Shape{n, vp});
    ops::cross_entropy_backward(ctx_, logits, a.targets, a.lse, dl, logits);  // in place: dlogits
    Buffer d_final(alloc, dt, Shape{n, c});
    ops::gemm(ctx_, logits, word_embeddings_->value, d_final, ops::GemmParams{});
    ops::gemm(ctx_, logits, a.final_out, word_embeddings_->grad, ops::GemmParams{true, false, 1.0f, 1.0f});
    a.logits = Buffer();
    a.losses = Buffer();
    a.lse = Buffer();
    a.final_out = Buffer();
    Buffer dx(alloc, dt, Shape{n, c});
    final_layernorm_->backward(ctx_, a.inputs.back(), a.final_mean, a.final_rstd, d_final, dx, false);
    a.final_mean = Buffer();
    a.final_rstd = Buffer();
    a.inputs.back() = Buffer();
    for (int l = config_.num_layers - 1; l >= 0; --l) {
      if (layer_fully_checkpointed(l) && l == chunk_end(l) - 1) {
        // Recompute the chunk [start, l] from its saved input; the last output is not needed.
        const int start = chunk_start(l);
        for (int j = start; j <= l; ++j) {
          Buffer out(alloc, dt, Shape{n, c});
          layers_[j].forward(ctx_, a.pass, a.inputs[j], out, a.layers[j],
                             layer_selective(j) ? ActivationStorage::kNoCoreAttention : ActivationStorage::kAll);
          if (j < l) a.inputs[j + 1] = std::move(out);
        }
      }
      layers_[l].backward(ctx_, a.pass, a.inputs[l], a.layers[l], dx);
      a.inputs[l] = Buffer();
    }
    if (a.pass.training && config_.hidden_dropout > 0.0f)
      ops::dropout_backward(ctx_, dx, dx, ops::DropoutParams{config_.hidden_dropout, a.pass.seed, a.pass.offset_base, 0});
    ops::embedding_backward(ctx_, a.ids, dx, word_embeddings_->grad);
    ops::embedding_backward(ctx_, a.positions, dx, position_embeddings_->grad);
  }
  a.layers.clear();
}

float GptModel::train_micro_batch(const GptBatch& batch, const DropoutRng& rng, float grad_scale) {
  auto a = forward(batch, rng, /*training=*/true);
  const float loss = a->loss;
  backward(*a, grad_scale);
  return loss;
}

float GptModel::evaluate(const GptBatch& batch) { return forward(batch, DropoutRng{}, /*training=*/false)->loss; }

GptScores GptModel::score(const GptBatch& batch) {
  auto a = forward(batch, DropoutRng{}, /*training=*/false);
  BIGNLP_CHECK(a->targets.defined(), "score() needs labels");
  const std::int64_t n = a->pass.rows(), b = a->pass.batch, t = a->pass.seq, vp = config_.padded_vocab_size();
  Buffer argmax(*ctx_.allocator, DType::kI32, Shape{n});
  ops::argmax(ctx_, a->logits.view().reshape(Shape{n, vp}).slice(1, 0, config_.vocab_size), argmax);
  std::vector<std::int32_t> am(static_cast<std::size_t>(n));
  ops::copy(ctx_, argmax, TensorView(am.data(), DType::kI32, Shape{n}));
  GptScores s;
  s.logprob.resize(static_cast<std::size_t>(n));
  s.argmax.resize(static_cast<std::size_t>(n));
  for (std::int64_t ti = 0; ti < t; ++ti)
    for (std::int64_t bi = 0; bi < b; ++bi) {
      s.logprob[bi * t + ti] = -a->token_losses[ti * b + bi];
      s.argmax[bi * t + ti] = am[ti * b + bi];
    }
  return s;
}

std::vector<float> GptModel::logits_to_host(const GptActivations& a) const {
  BIGNLP_CHECK(a.logits.defined(), "no logits kept (backward() releases them)");
  const std::int64_t b = a.pass.batch, t = a.pass.seq, vp = config_.padded_vocab_size();
  std::vector<float> sf(static_cast<std::size_t>(b * t * vp)), out(sf.size());
  ops::copy(ctx_, a.logits, TensorView(sf.data(), DType::kF32, Shape{t, b, vp}));
  for (std::int64_t ti = 0; ti < t; ++ti)
    for (std::int64_t bi = 0; bi < b; ++bi)
      std::copy_n(&sf[(ti * b + bi) * vp], vp, &out[(bi * t + ti) * vp]);
  return out;
}

}  // namespace bignlp::model
