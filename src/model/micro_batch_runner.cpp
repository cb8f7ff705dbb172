#include "bignlp/model/micro_batch_runner.h"

#include <map>
#include <memory>
#include <utility>

#include "bignlp/core/check.h"
#include "bignlp/parallel/pipeline_executor.h"

namespace bignlp::model {
namespace {

// The pipeline executor's view of the model: micro-batch k is read through the caller's function
// and run through forward_chunk / backward_chunk; activations wait in a map between the two.
class PipelineStage final : public parallel::PipelineModel {
 public:
  PipelineStage(Model& model, Shape boundary, const MicroBatchFn& batch, const MicroBatchRngFn* rng, float grad_scale,
                const GradReadyHook* last_hook)
      : model_(model), boundary_(std::move(boundary)), batch_(batch), rng_(rng), grad_scale_(grad_scale),
        last_hook_(last_hook) {}

  Shape boundary_shape() const override { return boundary_; }
  DType boundary_dtype() const override { return model_.compute_dtype(); }

  void forward(int mb, int chunk, const TensorView& input, const TensorView& output) override {
    const bool training = rng_ != nullptr;
    auto acts = model_.forward_chunk(chunk, batch_(mb), training ? (*rng_)(mb) : DropoutRng{}, training, input, output);
    if (model_.chunk_has_head(chunk)) loss_sum_ += acts->loss;
    if (training) acts_[{mb, chunk}] = std::move(acts);
  }

  void backward(int mb, int chunk, const TensorView& output_grad, const TensorView& input_grad,
                bool last_of_chunk) override {
    auto it = acts_.find({mb, chunk});
    BIGNLP_CHECK(it != acts_.end(), "no activations for micro-batch {} chunk {}", mb, chunk);
    if (last_of_chunk && last_hook_ != nullptr && *last_hook_) model_.set_grad_ready_hook(*last_hook_);
    model_.backward_chunk(*it->second, grad_scale_, output_grad, input_grad);
    model_.set_grad_ready_hook({});
    acts_.erase(it);
  }

  double loss_sum() const { return loss_sum_; }

 private:
  Model& model_;
  Shape boundary_;
  const MicroBatchFn& batch_;
  const MicroBatchRngFn* rng_;  // null: forward-only (evaluation)
  float grad_scale_;
  const GradReadyHook* last_hook_;
  std::map<std::pair<int, int>, std::unique_ptr<Activations>> acts_;
  double loss_sum_ = 0.0;
};

}  // namespace

MicroBatchRunner::MicroBatchRunner(Model& model, std::int64_t micro_batch_size, std::int64_t seq_length)
    : model_(model), micro_batch_size_(micro_batch_size), seq_length_(seq_length) {}

double MicroBatchRunner::train(std::int64_t count, const MicroBatchFn& batch, const MicroBatchRngFn& rng,
                               float grad_scale, const GradReadyHook& last_hook) {
  const parallel::ParallelContext& pc = model_.parallel_context();
  if (pc.pp_size() == 1 && model_.num_chunks() == 1) {
    double loss_sum = 0.0;
    for (std::int64_t k = 0; k < count; ++k) {
      if (k == count - 1 && last_hook) model_.set_grad_ready_hook(last_hook);
      loss_sum += model_.train_micro_batch(batch(k), rng(k), grad_scale);
    }
    model_.set_grad_ready_hook({});
    return loss_sum;
  }
  PipelineStage stage(model_, model_.boundary_shape(micro_batch_size_, seq_length_), batch, &rng, grad_scale,
                      &last_hook);
  BIGNLP_CHECK(model_.context().allocator != nullptr, "MicroBatchRunner needs a model context with an allocator");
  parallel::PipelineExecutor exec(pc.pp, pc.pp_backward, *model_.context().allocator);
  exec.run(parallel::pipeline_schedule(pc.pp_size(), pc.pp_rank(), static_cast<int>(count), model_.num_chunks()),
           model_.num_chunks(), stage);
  return stage.loss_sum();
}

double MicroBatchRunner::evaluate(std::int64_t count, const MicroBatchFn& batch) {
  const parallel::ParallelContext& pc = model_.parallel_context();
  if (pc.pp_size() == 1 && model_.num_chunks() == 1) {
    double loss_sum = 0.0;
    for (std::int64_t k = 0; k < count; ++k) loss_sum += model_.evaluate(batch(k));
    return loss_sum;
  }
  PipelineStage stage(model_, model_.boundary_shape(micro_batch_size_, seq_length_), batch, nullptr, 0.0f, nullptr);
  BIGNLP_CHECK(model_.context().allocator != nullptr, "MicroBatchRunner needs a model context with an allocator");
  parallel::PipelineExecutor exec(pc.pp, pc.pp_backward, *model_.context().allocator);
  exec.run(parallel::pipeline_schedule(pc.pp_size(), pc.pp_rank(), static_cast<int>(count), model_.num_chunks(),
                                       /*forward_only=*/true),
           model_.num_chunks(), stage);
  return stage.loss_sum();
}

}  // namespace bignlp::model
