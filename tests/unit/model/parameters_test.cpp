// ParameterStore: the flat layout, and where the fp32 master weights live (every element, the
// compute copy itself at fp32, or only given ranges under mixed precision).
#include "bignlp/model/parameters.h"

#include <gtest/gtest.h>

#include <cstring>

#include "bignlp/core/error.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/half.h"

namespace bignlp::model {
namespace {

using parallel::FlatRange;

/// Three parameters of 6, 4 and 10 elements: flat [0, 6), [6, 10), [10, 20).
void add_params(ParameterStore& s) {
  const auto param = [](const char* name, Shape shape, ParamInit init) {
    Parameter p;
    p.name = name;
    p.shape = shape;
    p.init = init;
    p.init_std = 0.5f;
    return p;
  };
  s.add(param("a", Shape{2, 3}, ParamInit::kNormal));
  s.add(param("b", Shape{4}, ParamInit::kOnes));
  s.add(param("c", Shape{5, 2}, ParamInit::kNormal));
}

std::vector<float> host(const TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  ops::copy(ops::OpContext::cpu(), t, TensorView(out.data(), DType::kF32, t.shape()));
  return out;
}

TEST(ParameterStore, MasterShardsKeepOnlyTheirRangesAndMatchTheCompleteStore) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  ParameterStore full, sharded;
  add_params(full);
  add_params(sharded);
  full.allocate(alloc, DType::kBF16);
  const std::vector<FlatRange> kept{{12, 20}, {3, 8}};  // across a and b; inside c
  sharded.allocate(alloc, DType::kBF16, kept);
  EXPECT_TRUE(full.master_complete());
  EXPECT_FALSE(sharded.master_complete());
  EXPECT_EQ(sharded.master_ranges(), kept);
  EXPECT_EQ(sharded.flat_master().numel(), 13);
  EXPECT_EQ(sharded.bytes(), 20u * 2 + 20u * 4 + 13u * 4);
  EXPECT_FALSE(sharded.params()[0].master.defined());
  full.initialize(ctx, 7);
  sharded.initialize(ctx, 7);
  // The compute copies are identical; each kept master element equals the complete store's.
  EXPECT_EQ(std::memcmp(full.flat_value().raw(), sharded.flat_value().raw(), full.flat_value().nbytes()), 0);
  const std::vector<float> all = host(full.flat_master());
  const std::vector<float> part = host(sharded.flat_master());
  EXPECT_EQ(std::vector<float>(part.begin(), part.begin() + 8), std::vector<float>(all.begin() + 12, all.end()));
  EXPECT_EQ(std::vector<float>(part.begin() + 8, part.end()), std::vector<float>(all.begin() + 3, all.begin() + 8));
  EXPECT_EQ(host(sharded.master_range({4, 6})), std::vector<float>(all.begin() + 4, all.begin() + 6));
  EXPECT_THROW(sharded.master_range({7, 9}), RuntimeError);  // 8 is not kept
  EXPECT_THROW(sharded.sync_values_from_master(ctx), RuntimeError);

  // assign(): the kept master elements and the rounded compute copy.
  std::vector<float> c(10);
  for (int i = 0; i < 10; ++i) c[static_cast<std::size_t>(i)] = 0.1f * static_cast<float>(i) + 1.0f / 3.0f;
  sharded.assign(ctx, sharded.params()[2], TensorView(c.data(), DType::kF32, Shape{5, 2}));
  EXPECT_EQ(host(sharded.master_range({12, 20})), std::vector<float>(c.begin() + 2, c.end()));
  const std::vector<float> value = host(sharded.params()[2].value);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(value[static_cast<std::size_t>(i)], float_from_bf16(bf16_from_float(c[static_cast<std::size_t>(i)])));
}

TEST(ParameterStore, AtFp32TheComputeCopyIsTheMasterWhateverTheRanges) {
  CpuAllocator alloc;
  ParameterStore s;
  add_params(s);
  s.allocate(alloc, DType::kF32, std::vector<FlatRange>{{0, 5}});
  EXPECT_TRUE(s.master_complete());
  EXPECT_EQ(s.master_ranges(), (std::vector<FlatRange>{{0, 20}}));
  EXPECT_EQ(s.flat_master().raw(), s.flat_value().raw());
  EXPECT_EQ(s.params()[1].master.raw(), s.params()[1].value.raw());
  EXPECT_EQ(s.bytes(), 20u * 4 * 2);
}

TEST(ParameterStore, OverlappingOrOutOfRangeMasterRangesAreRejected) {
  CpuAllocator alloc;
  ParameterStore a, b;
  add_params(a);
  add_params(b);
  EXPECT_THROW(a.allocate(alloc, DType::kBF16, std::vector<FlatRange>{{0, 5}, {4, 8}}), RuntimeError);
  EXPECT_THROW(b.allocate(alloc, DType::kBF16, std::vector<FlatRange>{{15, 21}}), RuntimeError);
}

}  // namespace
}  // namespace bignlp::model
