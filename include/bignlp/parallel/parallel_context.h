// ParallelContext: what a model layer needs to know about parallelism, passed in at construction.
//
// A small value: the rank's grid position, non-owning pointers to the communicators of its groups
// (owned by comm::ParallelGroups, which must outlive the context), and the switches that change the
// data flow (sequence parallelism, async TP all-reduce). The default context is one rank: every
// communicator is null and every mapping is skipped, so single-rank code paths are exactly the
// code paths without parallelism.
#pragma once

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/comm/process_grid.h"

namespace bignlp::parallel {

struct ParallelOptions {
  /// model.sequence_parallel: LayerNorm/dropout regions split along the sequence (needs TP > 1).
  bool sequence_parallel = false;
  /// Overlap the input-gradient all-reduce of column-parallel layers with their weight-gradient
  /// GEMM (Megatron async_tensor_model_parallel_allreduce; off under SP, as in Megatron). On the
  /// NCCL path the ordering it relies on needs CUDA_DEVICE_MAX_CONNECTIONS=1 (the program checks).
  bool async_tp_allreduce = true;
  /// model.virtual_pipeline_model_parallel_size (1: the plain 1F1B schedule).
  int virtual_pipeline_size = 1;
};

struct ParallelContext {
  comm::ProcessGrid grid;
  comm::Communicator* world = nullptr;           ///< null when the world is one rank
  comm::Communicator* tp = nullptr;              ///< null when tp_size == 1
  comm::Communicator* pp = nullptr;              ///< null when pp_size == 1 (activations)
  comm::Communicator* pp_backward = nullptr;     ///< null when pp_size == 1 (gradients)
  comm::Communicator* dp = nullptr;              ///< null when dp_size == 1
  comm::Communicator* model_parallel = nullptr;  ///< null when tp_size * pp_size == 1
  comm::Communicator* embedding = nullptr;       ///< null unless pp > 1 and first/last stage
  ParallelOptions options;

  /// The context of `groups` (communicators of size 1 are left null).
  static ParallelContext from(const comm::ParallelGroups& groups, const ParallelOptions& options);

  int tp_size() const { return grid.tp_size(); }
  int tp_rank() const { return grid.tp_rank(); }
  int pp_size() const { return grid.pp_size(); }
  int pp_rank() const { return grid.pp_rank(); }
  int dp_size() const { return grid.dp_size(); }
  int dp_rank() const { return grid.dp_rank(); }
  bool sequence_parallel() const { return options.sequence_parallel && tp_size() > 1; }
  bool is_first_stage() const { return grid.is_first_stage(); }
  bool is_last_stage() const { return grid.is_last_stage(); }
  /// True when this rank's parameters that are replicated over TP count in the grad norm (TP rank 0).
  bool counts_replicated_params() const { return tp_rank() == 0; }
};

}  // namespace bignlp::parallel
