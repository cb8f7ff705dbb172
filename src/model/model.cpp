#include "bignlp/model/model.h"

#include "bignlp/core/check.h"

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

float Model::evaluate(const Batch& batch) { return forward(batch, DropoutRng{}, /*training=*/false)->loss; }

}  // namespace bignlp::model
