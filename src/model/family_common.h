// Pieces every model family's Model implementation shares (internal to the model library): batch
// layout, the activation-checkpointing plan, and the scoring end of the head (gathered logits,
// per-token scores, host logits).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bignlp/core/check.h"
#include "bignlp/model/gpt_config.h"
#include "bignlp/model/model.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::model::detail {

/// A (B, T) host batch field as a sequence-first (T*B) vector.
template <typename T>
std::vector<T> to_sequence_first(const TensorView& bt, const char* what) {
  BIGNLP_CHECK(bt.device().is_cpu(), "Batch.{} must be host memory, got {}", what, bt.to_string());
  BIGNLP_CHECK(bt.rank() == 2 && bt.is_contiguous(), "Batch.{} must be a contiguous (B, T) tensor, got {}", what,
               bt.to_string());
  const std::int64_t b = bt.size(0), t = bt.size(1);
  const T* src = bt.data<T>();
  std::vector<T> out(static_cast<std::size_t>(b * t));
  for (std::int64_t bi = 0; bi < b; ++bi)
    for (std::int64_t ti = 0; ti < t; ++ti) out[static_cast<std::size_t>(ti * b + bi)] = src[bi * t + ti];
  return out;
}

// Activation checkpointing plan (megatron-model.md §7.1): full+uniform recomputes chunks of k
// layers from each chunk's input; full+block recomputes each of the first k layers from its own
// input; selective keeps everything but the core attention (uniform: all layers, block: first k).
// l counts the layers of one stack of one model chunk from 0.
inline bool fully_checkpointed(const ActivationCheckpointing& ac, int l) {
  if (ac.granularity != CheckpointGranularity::kFull || ac.num_layers <= 0) return false;
  return ac.method == CheckpointMethod::kUniform || l < ac.num_layers;
}
inline int checkpoint_chunk_start(const ActivationCheckpointing& ac, int l) {
  return ac.method == CheckpointMethod::kUniform ? l / ac.num_layers * ac.num_layers : l;
}
inline int checkpoint_chunk_end(const ActivationCheckpointing& ac, int l, int count) {
  return ac.method == CheckpointMethod::kUniform ? std::min(count, checkpoint_chunk_start(ac, l) + ac.num_layers)
                                                 : l + 1;
}
inline bool selectively_checkpointed(const ActivationCheckpointing& ac, int l) {
  if (ac.granularity != CheckpointGranularity::kSelective) return false;
  return ac.method == CheckpointMethod::kUniform || l < ac.num_layers;
}

/// The full-vocabulary logits (n, vl * tp) gathered from the tensor-parallel ranks' (n, vl)
/// slices; an undefined Buffer without tensor parallelism (the local logits are complete).
inline Buffer gather_vocab_logits(const ops::OpContext& ctx, const parallel::ParallelContext& par,
                                  const TensorView& logits, std::int64_t n, std::int64_t vl) {
  if (par.tp == nullptr) return Buffer();
  Buffer full(*ctx.allocator, logits.dtype(), Shape{n, vl * par.tp->size()});
  parallel::gather_from_tp_region_forward(ctx, *par.tp, logits.reshape(Shape{n, vl}), full);
  return full;
}

/// Batch-first token scores from a head's sequence-first (t*b) token losses and its (t*b, vp)
/// full logits: log p(label) = -loss, argmax over the real vocabulary [0, vocab).
inline TokenScores token_scores(const ops::OpContext& ctx, const TensorView& logits, std::int64_t vocab,
                                const std::vector<float>& token_losses, std::int64_t b, std::int64_t t) {
  const std::int64_t n = b * t;
  Buffer argmax(*ctx.allocator, DType::kI32, Shape{n});
  ops::argmax(ctx, logits.slice(1, 0, vocab), argmax);
  std::vector<std::int32_t> am(static_cast<std::size_t>(n));
  ops::copy(ctx, argmax, TensorView(am.data(), DType::kI32, Shape{n}));
  TokenScores s;
  s.logprob.resize(static_cast<std::size_t>(n));
  s.argmax.resize(static_cast<std::size_t>(n));
  for (std::int64_t ti = 0; ti < t; ++ti)
    for (std::int64_t bi = 0; bi < b; ++bi) {
      s.logprob[bi * t + ti] = -token_losses[ti * b + bi];
      s.argmax[bi * t + ti] = am[ti * b + bi];
    }
  return s;
}

/// (t, b, vp) sequence-first logits (any device) as batch-first host fp32 (b, t, vp).
inline std::vector<float> logits_batch_first(const ops::OpContext& ctx, const TensorView& logits, std::int64_t b,
                                             std::int64_t t, std::int64_t vp) {
  std::vector<float> sf(static_cast<std::size_t>(b * t * vp)), out(sf.size());
  ops::copy(ctx, logits.reshape(Shape{t, b, vp}), TensorView(sf.data(), DType::kF32, Shape{t, b, vp}));
  for (std::int64_t ti = 0; ti < t; ++ti)
    for (std::int64_t bi = 0; bi < b; ++bi) std::copy_n(&sf[(ti * b + bi) * vp], vp, &out[(bi * t + ti) * vp]);
  return out;
}

}  // namespace bignlp::model::detail
