// ParallelGroups: the communicators of one rank's groups in the tp x pp x dp grid.
//
// Built once by the program from the world communicator and the ProcessGrid, then passed down
// (layers get the one of their axis). The pipeline group exists twice, one communicator per
// direction of travel, so activations and gradients between the same two stages (both directions
// connect stage 0 and stage 1 when p = 2 with interleaving) can never be matched with each other. Creation splits the world in a fixed order (tp, pp, dp,
// model-parallel, embedding) so that backends whose split is a collective among the members (NCCL)
// never deadlock: each phase forms disjoint groups.
#pragma once

#include <memory>

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/process_grid.h"

namespace bignlp::comm {

struct ParallelGroups {
  ProcessGrid grid;
  Communicator* world = nullptr;                   ///< not owned
  std::unique_ptr<Communicator> tp;                ///< tensor-parallel group
  std::unique_ptr<Communicator> pp;                ///< pipeline group: activations between stages
  std::unique_ptr<Communicator> pp_backward;       ///< pipeline group: gradients (null when pp == 1)
  std::unique_ptr<Communicator> dp;                ///< data-parallel group (gradient reduction)
  std::unique_ptr<Communicator> model_parallel;    ///< tp x pp of one replica (grad norm, found_inf)
  std::unique_ptr<Communicator> embedding;         ///< {first, last} stage; null on middle stages

  /// Splits `world` (whose rank and size must match the grid) into the grid's groups.
  static ParallelGroups create(Communicator& world, const ProcessGrid& grid);
};

}  // namespace bignlp::comm
