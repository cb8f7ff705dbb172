// Data-parallel gradient buckets: layout from the end of the buffer, reductions started as
// parameters complete, averaged results (all-reduce), owned shards (reduce-scatter) and the
// parameter all-gather of the distributed optimizer.
#include <gtest/gtest.h>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/core/error.h"
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
  // The layout without a communicator, and the shards of d ranks (ceil(L/d) each, possibly empty).
  EXPECT_EQ(GradBuckets::layout(layout({4, 3, 10, 2, 2}), 5), g.buckets());
  EXPECT_EQ(GradBuckets::layout(layout({4, 0, 3}), 100), (std::vector<FlatRange>{{0, 7}}));
  EXPECT_EQ(GradBuckets::shard_of({7, 17}, 2, 0), (FlatRange{7, 12}));
  EXPECT_EQ(GradBuckets::shard_of({7, 17}, 2, 1), (FlatRange{12, 17}));
  EXPECT_EQ(GradBuckets::shard_of({17, 21}, 3, 2), (FlatRange{21, 21}));  // shards of 2: [17,19) [19,21) empty
  EXPECT_EQ(GradBuckets::owned_ranges(layout({4, 3, 10, 2, 2}), 5, 3, 2),
            (std::vector<FlatRange>{{15, 17}, {6, 7}}));  // [0, 4) in shards of 2: rank 2 gets none
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

// Checkpoint assembly: compact shards (each rank's owned ranges back to back) become the whole
// buffer on the ranks that receive it (host memory), bucket by bucket; a sender passes no output.
TEST(GradBuckets, GatherShardsAssemblesTheWholeBufferFromCompactShards) {
  const std::vector<std::int64_t> sizes{5, 7, 3, 9, 1};
  const std::int64_t total = 25;
  comm::LocalWorld world(3, 20s);
  world.run([&](comm::Communicator& dp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    GradBuckets g(&dp, ctx, layout(sizes), 11, GradBuckets::Mode::kReduceScatter);
    EXPECT_EQ(g.owned_ranges(), GradBuckets::owned_ranges(layout(sizes), 11, 3, dp.rank()));
    std::vector<float> local;
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) local.push_back(static_cast<float>(i) + 0.5f);
    std::vector<float> full(total, -1.0f);
    const TensorView local_view(local.data(), DType::kF32, Shape{static_cast<std::int64_t>(local.size())});
    g.gather_shards(local_view, dp.rank() == 1 ? TensorView{} : TensorView(full.data(), DType::kF32, Shape{total}));
    for (std::int64_t i = 0; i < total; ++i)
      ASSERT_EQ(full[i], dp.rank() == 1 ? -1.0f : static_cast<float>(i) + 0.5f) << i;
    EXPECT_THROW(g.gather_shards(TensorView(local.data(), DType::kF32, Shape{1}), TensorView{}), RuntimeError);
  });
}

// Staging stays bounded however many buckets there are: 20 buckets of 10 elements over 3 ranks
// (shards of 4, padded copies of 12) never hold more than kMaxStagedBuckets buckets' buffers.
TEST(GradBuckets, StagingIsBoundedToAFewBuckets) {
  const std::vector<std::int64_t> sizes(20, 10);
  comm::LocalWorld world(3, 20s);
  world.run([&](comm::Communicator& dp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    GradBuckets g(&dp, ctx, layout(sizes), 10, GradBuckets::Mode::kReduceScatter);
    ASSERT_EQ(g.buckets().size(), 20u);
    std::vector<float> grad(200, static_cast<float>(dp.rank()));
    g.set_buffer(TensorView(grad.data(), DType::kF32, Shape{200}));
    const auto params = layout(sizes);
    for (auto it = params.rbegin(); it != params.rend(); ++it) g.mark_ready(it->begin);
    g.finish();
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) ASSERT_FLOAT_EQ(grad[i], 1.0f) << i;  // mean of 0, 1, 2
    // Per bucket: a padded copy (12 floats) and the shard (4): 64-byte blocks each.
    const std::size_t per_bucket = 2 * 64;
    EXPECT_LE(alloc.stats().peak_in_use, GradBuckets::kMaxStagedBuckets * per_bucket);
    EXPECT_EQ(alloc.stats().in_use, 0u);
    alloc.reset_peak();
    std::vector<float> params_flat(200, -1.0f);
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) params_flat[i] = static_cast<float>(i);
    g.all_gather_shards(TensorView(params_flat.data(), DType::kF32, Shape{200}));
    for (std::int64_t i = 0; i < 200; ++i) ASSERT_EQ(params_flat[i], static_cast<float>(i)) << i;
    EXPECT_LE(alloc.stats().peak_in_use, GradBuckets::kMaxStagedBuckets * per_bucket);
  });
}

// Buckets whose length is a multiple of d need no staging at all: reduce-scatter and all-gather
// run in place in the flat buffers.
TEST(GradBuckets, DivisibleBucketsReduceAndGatherInPlace) {
  const std::vector<std::int64_t> sizes{4, 8, 4};
  comm::LocalWorld world(2, 20s);
  world.run([&](comm::Communicator& dp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    GradBuckets g(&dp, ctx, layout(sizes), 8, GradBuckets::Mode::kReduceScatter);
    ASSERT_EQ(g.buckets(), (std::vector<FlatRange>{{12, 16}, {4, 12}, {0, 4}}));
    std::vector<float> grad(16);
    for (std::int64_t i = 0; i < 16; ++i) grad[i] = static_cast<float>(dp.rank() * 10 + i);
    g.set_buffer(TensorView(grad.data(), DType::kF32, Shape{16}));
    for (std::int64_t off : {12, 4, 0}) g.mark_ready(off);
    g.finish();
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) ASSERT_FLOAT_EQ(grad[i], 5.0f + i) << i;
    std::vector<float> params(16, -1.0f);
    for (const auto& r : g.owned_ranges())
      for (std::int64_t i = r.begin; i < r.end; ++i) params[i] = static_cast<float>(3 * i);
    g.all_gather_shards(TensorView(params.data(), DType::kF32, Shape{16}));
    for (std::int64_t i = 0; i < 16; ++i) ASSERT_EQ(params[i], static_cast<float>(3 * i)) << i;
    EXPECT_EQ(alloc.stats().peak_in_use, 0u);
  });
}

}  // namespace
}  // namespace bignlp::parallel
