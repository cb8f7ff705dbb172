// Data-parallel gradient buckets: layout from the end of the buffer, reductions started as
// parameters complete, averaged results (all-reduce), owned shards (reduce-scatter) and the
// parameter all-gather of the distributed optimizer.
#include <gtest/gtest.h>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/parallel/grad_buckets.h"

namespace bignlp::parallel {
namespace {

using namespace std::chrono_literals;

std::vector<FlatRange> layout(const std::vector<std::int64_t>& sizes) {
  std::vector<FlatRange> out;
  std::int64_t off = 0;
  for (auto s : sizes) {
    out.push_back({off, off + s});
    off += s;
  }
  return out;
}

TEST(GradBuckets, BucketsFormFromTheEndWithoutSplittingParameters) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  GradBuckets g(nullptr, ctx, layout({4, 3, 10, 2, 2}), 5, GradBuckets::Mode::kAllReduce);
  // From the end: [2,2] fit (4), 10 alone, 3 alone (3+10 > 5), then 4 (4+3 > 5).
  EXPECT_EQ(g.buckets(), (std::vector<FlatRange>{{17, 21}, {7, 17}, {4, 7}, {0, 4}}));
  EXPECT_EQ(g.owned_ranges().size(), 4u);
}

TEST(GradBuckets, AllReduceAveragesAndOverlapsWithTheBackwardPass) {
  const std::vector<std::int64_t> sizes{5, 7, 3, 9};
  const std::int64_t total = 24;
  comm::LocalWorld world(3, 20s);
  world.run([&](comm::Communicator& dp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    GradBuckets g(&dp, ctx, layout(sizes), 10, GradBuckets::Mode::kAllReduce);
    for (int step = 0; step < 2; ++step) {
      std::vector<float> grad(total);
      for (std::int64_t i = 0; i < total; ++i) grad[i] = static_cast<float>((dp.rank() + 1) * (i + 1 + step));
      g.set_buffer(TensorView(grad.data(), DType::kF32, Shape{total}));
      const auto params = layout(sizes);
      for (auto it = params.rbegin(); it != params.rend(); ++it) g.mark_ready(it->begin);  // backward order
      g.finish();
      for (std::int64_t i = 0; i < total; ++i) ASSERT_FLOAT_EQ(grad[i], 2.0f * (i + 1 + step)) << i;  // mean of 1,2,3
      EXPECT_EQ(g.overlapped_last_step(), static_cast<int>(g.buckets().size()));
    }
  });
}

TEST(GradBuckets, ReduceScatterLeavesEachRankItsAveragedShardAndAllGatherRestoresAll) {
  const std::vector<std::int64_t> sizes{5, 7, 3, 9, 1};
  const std::int64_t total = 25;
  comm::LocalWorld world(4, 20s);
  world.run([&](comm::Communicator& dp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    GradBuckets g(&dp, ctx, layout(sizes), 11, GradBuckets::Mode::kReduceScatter);
    std::vector<float> grad(total);
    for (std::int64_t i = 0; i < total; ++i) grad[i] = static_cast<float>(dp.rank() * 100 + i);
    g.set_buffer(TensorView(grad.data(), DType::kF32, Shape{total}));
    g.mark_ready(5);  // one of the two parameters of bucket [5, 15): it waits for the other
    g.finish();
    EXPECT_EQ(g.overlapped_last_step(), 0);
    std::int64_t owned = 0;
    for (const auto& r : g.owned_ranges()) {
      for (std::int64_t i = r.begin; i < r.end; ++i) ASSERT_FLOAT_EQ(grad[i], 150.0f + i) << i;  // mean of 0..300
      owned += r.size();
    }
    // The shards of all ranks partition the buffer.
    std::vector<float> count(1, static_cast<float>(owned));
    dp.all_reduce(TensorView(count.data(), DType::kF32, Shape{1}));
    EXPECT_EQ(count[0], static_cast<float>(total));
    // Parameter sync: each rank writes its shard, the gather fills in the others'.
    std::vector<float> params(total, -1.0f);
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) params[i] = static_cast<float>(i * 2);
    g.all_gather_shards(TensorView(params.data(), DType::kF32, Shape{total}));
    for (std::int64_t i = 0; i < total; ++i) ASSERT_EQ(params[i], static_cast<float>(i * 2)) << i;
  });
}

}  // namespace
}  // namespace bignlp::parallel
