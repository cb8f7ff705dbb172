#include "bignlp/comm/parallel_groups.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"

namespace bignlp::comm {

ParallelGroups ParallelGroups::create(Communicator& world, const ProcessGrid& grid) {
  BIGNLP_CHECK(world.size() == grid.world_size() && world.rank() == grid.rank(),
               "the world communicator (rank {} of {}) does not match the grid (rank {} of {})", world.rank(),
               world.size(), grid.rank(), grid.world_size());
  ParallelGroups g;
  g.grid = grid;
  g.world = &world;
  // Group names carry the group's index so that every group has a distinct name.
  g.tp = world.split(grid.tp_group(), fmt::format("tp-pp{}-dp{}", grid.pp_rank(), grid.dp_rank()));
  g.pp = world.split(grid.pp_group(), fmt::format("pp-tp{}-dp{}", grid.tp_rank(), grid.dp_rank()));
  if (grid.pp_size() > 1) {
    g.pp_backward = world.split(grid.pp_group(), fmt::format("pp-bwd-tp{}-dp{}", grid.tp_rank(), grid.dp_rank()));
  }
  g.dp = world.split(grid.dp_group(), fmt::format("dp-tp{}-pp{}", grid.tp_rank(), grid.pp_rank()));
  g.model_parallel = world.split(grid.model_parallel_group(), fmt::format("mp-dp{}", grid.dp_rank()));
  if (grid.in_embedding_group()) {
    g.embedding = world.split(grid.embedding_group(), fmt::format("embedding-tp{}-dp{}", grid.tp_rank(), grid.dp_rank()));
  }
  return g;
}

}  // namespace bignlp::comm
