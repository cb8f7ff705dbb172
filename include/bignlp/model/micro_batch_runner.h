// MicroBatchRunner: runs a step's micro-batches through a Model on this rank, pipelined or not.
//
// On one pipeline stage the micro-batches run one after another (forward, then backward when
// training); with pipeline stages they run through this stage's schedule (1F1B or interleaved,
// parallel::pipeline_schedule; forward-only for evaluation) on a parallel::PipelineExecutor, which
// moves the boundary activations and gradients between stages. Micro-batch k's batch and dropout
// stream come from the caller's functions, so data order and masks stay the caller's business.
// Used by the trainer (training and validation), evaluation and inference: none of them knows the
// pipeline executor. Not thread-safe; one runner per step is cheap.
#pragma once

#include <cstdint>
#include <functional>

#include "bignlp/model/model.h"

namespace bignlp::model {

/// Micro-batch k of the step (host memory valid until the next call).
using MicroBatchFn = std::function<Batch(std::int64_t k)>;
/// Dropout stream of micro-batch k.
using MicroBatchRngFn = std::function<DropoutRng(std::int64_t k)>;

class MicroBatchRunner {
 public:
  /// micro_batch_size x seq_length: the shape of every micro-batch (the pipeline boundary).
  MicroBatchRunner(Model& model, std::int64_t micro_batch_size, std::int64_t seq_length);

  /// Forward and backward of micro-batches 0..count-1 (gradients += d(loss * grad_scale)).
  /// `last_hook`, when set, is installed while the last backward pass of each model chunk runs
  /// (its parameters' gradients are then complete: data-parallel reduction may start).
  /// Returns the sum of the micro-batch losses computed on this rank (0 off the last stage).
  double train(std::int64_t count, const MicroBatchFn& batch, const MicroBatchRngFn& rng, float grad_scale,
               const GradReadyHook& last_hook = {});
  /// Forward passes without dropout of micro-batches 0..count-1; returns the sum of their losses
  /// on this rank (0 off the last stage).
  double evaluate(std::int64_t count, const MicroBatchFn& batch);

 private:
  Model& model_;
  std::int64_t micro_batch_size_, seq_length_;
};

}  // namespace bignlp::model
