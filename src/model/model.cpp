#include "bignlp/model/model.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/ops/ops.h"

namespace bignlp::model {

std::uint64_t dropout_offset(std::int64_t step, std::int64_t micro, std::int64_t num_micro_batches) {
  return static_cast<std::uint64_t>(step * num_micro_batches + micro) << 20;
}

std::unique_ptr<Activations> Model::forward(const Batch& batch, const DropoutRng& rng, bool training) {
  BIGNLP_CHECK(parallel_context().pp_size() == 1 && num_chunks() == 1,
               "Model::forward runs the whole model; with pipeline stages use forward_chunk");
  return forward_chunk(0, batch, rng, training, {}, {});
}

void Model::backward(Activations& acts, float grad_scale) { backward_chunk(acts, grad_scale, {}, {}); }

float Model::train_micro_batch(const Batch& batch, const DropoutRng& rng, float grad_scale) {
  auto a = forward(batch, rng, /*training=*/true);
  const float loss = a->loss;
  backward(*a, grad_scale);
  return loss;
}

KvCache Model::make_kv_cache(std::int64_t, std::int64_t) {
  throw ConfigError(fmt::format("model family '{}' does not support incremental decoding (generation)", family()));
}

void Model::decode(KvCache&, std::span<const std::int32_t>, std::span<const DecodeSegment>, std::span<float>) {
  throw ConfigError(fmt::format("model family '{}' does not support incremental decoding (generation)", family()));
}

void Model::encode(KvCache&, std::span<const std::int32_t>, std::span<const DecodeSegment>) {
  throw ConfigError(fmt::format("model family '{}' has no encoder (encode() is for encoder-decoder families)", family()));
}

void KvCache::share_encoder(std::int64_t from, std::int64_t to) {
  BIGNLP_CHECK(from >= 0 && from < slots && to >= 0 && to < slots &&
                   static_cast<std::int64_t>(cross_source.size()) == slots,
               "KV cache: sharing the encoder side of slot {} with slot {} outside {} slots (or a cache without an "
               "encoder side)",
               from, to, slots);
  cross_source[static_cast<std::size_t>(to)] = cross_source[static_cast<std::size_t>(from)];
}

void KvCache::copy_slot(const ops::OpContext& ctx, std::int64_t from, std::int64_t to, std::int64_t length) const {
  BIGNLP_CHECK(from >= 0 && from < slots && to >= 0 && to < slots && length >= 0 && length <= capacity,
               "KV cache copy of {} positions from slot {} to slot {} outside {} slots x {} positions", length, from, to,
               slots, capacity);
  if (from == to || length == 0) return;
  for (const auto* list : {&keys, &values})
    for (const Buffer& b : *list) {
      const TensorView v = b.view();
      ops::copy(ctx, v.slice(0, from, 1).slice(1, 0, length), v.slice(0, to, 1).slice(1, 0, length));
    }
}

float Model::evaluate(const Batch& batch) { return forward(batch, DropoutRng{}, /*training=*/false)->loss; }

}  // namespace bignlp::model
