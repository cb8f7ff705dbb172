// PipelineExecutor: runs a stage's action list (pipeline_schedule.h) against a PipelineModel,
// moving activations and gradients between stages.
//
// The executor owns the boundary tensors: a received input stays alive until the backward of its
// (micro-batch, chunk) has run (the model may keep views into it), an output until its send
// completed, a received output gradient until its backward ran, an input gradient until sent.
// Consecutive communication actions are posted as one batch on the two pipeline communicators
// (activations forward, gradients backward; see comm::ParallelGroups) and waited for together.
// Peers: activations go to stage r+1 and come from r-1, gradients the other way, both wrapping
// around the ring of stages (the interleaved schedule's chunk hand-over).
#pragma once

#include <vector>

#include "bignlp/comm/communicator.h"
#include "bignlp/parallel/pipeline_schedule.h"
#include "bignlp/tensor/allocator.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::parallel {

/// A pipeline stage as the executor sees it (implemented by the model/trainer).
class PipelineModel {
 public:
  virtual ~PipelineModel() = default;
  /// Shape and dtype of every tensor exchanged between stages: the activation (T, B, C), or
  /// (T/t, B, C) with sequence parallelism, in the compute dtype; gradients have the same.
  virtual Shape boundary_shape() const = 0;
  virtual DType boundary_dtype() const = 0;
  /// Forward of (micro-batch, chunk). `input` is empty on the first chunk of the first stage (the
  /// model reads its micro-batch); `output` is empty on the last chunk of the last stage (the
  /// model computes the loss).
  virtual void forward(int microbatch, int chunk, const TensorView& input, const TensorView& output) = 0;
  /// Backward of (micro-batch, chunk). `output_grad` is empty on the last chunk of the last stage
  /// (the loss starts it); `input_grad` is empty on the first chunk of the first stage.
  /// `last_of_chunk` is true for the chunk's final backward of the step: its parameter gradients
  /// are complete when it returns (data-parallel reduction may start).
  virtual void backward(int microbatch, int chunk, const TensorView& output_grad, const TensorView& input_grad,
                        bool last_of_chunk) = 0;
};

class PipelineExecutor {
 public:
  /// forward_channel / backward_channel: the pipeline communicators (null when pp == 1).
  PipelineExecutor(comm::Communicator* forward_channel, comm::Communicator* backward_channel, Allocator& allocator);

  /// Runs `actions` (this stage's schedule with `num_chunks` chunks per stage).
  void run(const std::vector<Action>& actions, int num_chunks, PipelineModel& model);

 private:
  comm::Communicator* fwd_;
  comm::Communicator* bwd_;
  Allocator& allocator_;
};

}  // namespace bignlp::parallel
