// The arithmetic of bignlp::sizing against the model itself: what GptModel's parameter store holds
// on each rank of a TP x PP layout (thread ranks) is exactly sizing::rank_parameter_count of the
// config's shape, and on one rank GptConfig::num_parameters().
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/model/gpt.h"
#include "bignlp/sizing/gpt_shape.h"
#include "model_test_util.h"

namespace bignlp::model {
namespace {

struct RankCount {
  int pp_rank = 0;
  std::int64_t stored = 0;    ///< ParameterStore::numel()
  std::int64_t computed = 0;  ///< sizing::rank_parameter_count
};

std::vector<RankCount> count_on_ranks(GptConfig cfg, int tp, int pp) {
  cfg.tensor_model_parallel_size = tp;
  comm::LocalWorld world(tp * pp);
  std::mutex mu;
  std::vector<RankCount> out;
  world.run([&](comm::Communicator& comm) {
    const comm::ProcessGrid grid(tp * pp, comm.rank(), tp, pp);
    const comm::ParallelGroups groups = comm::ParallelGroups::create(comm, grid);
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu(1);
    ctx.allocator = &alloc;
    GptModel model(cfg, ctx, parallel::ParallelContext::from(groups, {}));
    RankCount c;
    c.pp_rank = grid.pp_rank();
    c.stored = model.parameters().numel();
    c.computed = sizing::rank_parameter_count(gpt_shape(cfg), {.tp_size = tp, .pp_size = pp, .pp_rank = grid.pp_rank()});
    std::lock_guard<std::mutex> lock(mu);
    out.push_back(c);
  });
  return out;
}

TEST(GptSizingTest, RankCountsMatchTheParameterStore) {
  // tiny_config: L 2, C 32, F 48, NH 4, P 10, V 100 -> Vp 128 at TP 1 and 2.
  const GptConfig cfg = testing::tiny_config();
  const std::vector<std::pair<int, int>> layouts = {{1, 1}, {2, 1}, {1, 2}, {2, 2}};
  for (const auto& [tp, pp] : layouts) {
    for (const RankCount& c : count_on_ranks(cfg, tp, pp))
      EXPECT_EQ(c.stored, c.computed) << "TP " << tp << " PP " << pp << " stage " << c.pp_rank;
  }
  // Worked out by hand: one rank holds 2 layers of 7,504 + 128 x 32 + 10 x 32 + 2 x 32 = 19,488;
  // at TP 2 a layer shard is 3,848 and the vocabulary shard 64 x 32 (10,128); at PP 2 the first
  // stage holds 7,504 + 4,096 + 320 = 11,920, the last 7,504 + 64 + 4,096 (its embedding copy).
  EXPECT_EQ(count_on_ranks(cfg, 1, 1).front().stored, 19'488);
  EXPECT_EQ(cfg.num_parameters(), 19'488);
  EXPECT_EQ(count_on_ranks(cfg, 2, 1).front().stored, 10'128);
  for (const RankCount& c : count_on_ranks(cfg, 1, 2)) EXPECT_EQ(c.stored, c.pp_rank == 0 ? 11'920 : 11'664);
}

}  // namespace
}  // namespace bignlp::model
