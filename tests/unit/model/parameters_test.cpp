// ParameterStore: the flat layout, and where the fp32 master weights live (every element, the
// compute copy itself at fp32, or only given ranges under mixed precision); frozen parameters
// (after the trainable ones, with no gradient or master memory).
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

TEST(ParameterStore, FrozenParametersGoLastWithoutGradientOrMasterMemory) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  // a (6) frozen, b (4) trainable, c (10) frozen: b at [0, 4), then a [4, 10), c [10, 20).
  const auto frozen_ac = [](const Parameter& p) { return p.name == "b"; };
  ParameterStore s;
  add_params(s);
  s.set_trainable(frozen_ac);
  EXPECT_EQ(s.numel(), 20);
  EXPECT_EQ(s.trainable_numel(), 4);
  EXPECT_EQ(s.params()[1].offset, 0);
  EXPECT_EQ(s.params()[0].offset, 4);
  EXPECT_EQ(s.params()[2].offset, 10);
  EXPECT_EQ(s.trainable_ranges(), (std::vector<FlatRange>{{0, 4}}));
  s.allocate(alloc, DType::kBF16);
  // value 20 x bf16, grad 4 x fp32, master 4 x fp32, scratch 10 x fp32 (the larger frozen one).
  EXPECT_EQ(s.flat_grad().nbytes(), 4u * 4);
  EXPECT_EQ(s.flat_master().nbytes(), 4u * 4);
  EXPECT_EQ(s.bytes(), 20u * 2 + 4u * 4 + 4u * 4 + 10u * 4);
  EXPECT_EQ(s.master_ranges(), (std::vector<FlatRange>{{0, 4}}));
  EXPECT_FALSE(s.params()[0].master.defined());
  EXPECT_TRUE(s.params()[1].master.defined());
  EXPECT_EQ(s.params()[0].grad.raw(), s.params()[2].grad.raw());  // one write-only scratch
  EXPECT_THROW(s.set_trainable(frozen_ac), RuntimeError);

  // Initialisation and assign() give a frozen parameter the same compute copy as a trainable one.
  ParameterStore all;
  add_params(all);
  all.allocate(alloc, DType::kBF16);
  all.initialize(ctx, 7);
  s.initialize(ctx, 7);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(host(s.params()[i].value), host(all.params()[i].value)) << s.params()[i].name;
  EXPECT_EQ(host(s.flat_master()), host(all.params()[1].master.reshape(Shape{4})));
  std::vector<float> c(10, 1.0f / 3.0f);
  s.assign(ctx, s.params()[2], TensorView(c.data(), DType::kF32, Shape{5, 2}));
  EXPECT_EQ(host(s.params()[2].value)[0], float_from_bf16(bf16_from_float(1.0f / 3.0f)));

  // Master ranges must lie among the trainable elements.
  ParameterStore t;
  add_params(t);
  t.set_trainable(frozen_ac);
  EXPECT_THROW(t.allocate(alloc, DType::kBF16, std::vector<FlatRange>{{2, 6}}), RuntimeError);

  // At fp32 the master weights are the trainable prefix of the compute copy; a frozen parameter
  // registered as such keeps its place after the trainable ones.
  ParameterStore f;
  add_params(f);
  Parameter late;
  late.name = "d";
  late.shape = Shape{3};
  late.trainable = false;
  f.add(late);
  Parameter last;
  last.name = "e";
  last.shape = Shape{2};
  f.add(last);
  EXPECT_EQ(f.trainable_numel(), 22);
  EXPECT_EQ(f.find("e")->offset, 20);
  EXPECT_EQ(f.find("d")->offset, 22);
  f.allocate(alloc, DType::kF32);
  EXPECT_EQ(f.flat_master().numel(), 22);
  EXPECT_EQ(f.flat_master().raw(), f.flat_value().raw());
  EXPECT_EQ(f.bytes(), 25u * 4 + 22u * 4 + 3u * 4);
}

}  // namespace
}  // namespace bignlp::model
