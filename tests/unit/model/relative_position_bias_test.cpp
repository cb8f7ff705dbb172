// T5's relative position bias provider: buckets against worked examples and against an
// independent PyTorch formulation of the same rule, the bias it builds from its table, and the
// gradient it scatters back.
#include "bignlp/model/relative_position_bias.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bignlp/tensor/allocator.h"

namespace bignlp::model {
namespace {

TEST(RelativePositionBias, BucketsOfWorkedExamples) {
  // 32 buckets, max distance 128, bidirectional: nb 16, max_exact 8.
  EXPECT_EQ(RelativePositionBias::bucket(0, true, 32, 128), 0);
  EXPECT_EQ(RelativePositionBias::bucket(3, true, 32, 128), 19);
  EXPECT_EQ(RelativePositionBias::bucket(-3, true, 32, 128), 3);
  EXPECT_EQ(RelativePositionBias::bucket(20, true, 32, 128), 26);    // 16 + 8 + trunc(ln 2.5 / ln 16 * 8)
  EXPECT_EQ(RelativePositionBias::bucket(-200, true, 32, 128), 15);  // capped at nb - 1
  // Unidirectional: nb 32, max_exact 16; keys after the query share bucket 0.
  EXPECT_EQ(RelativePositionBias::bucket(5, false, 32, 128), 0);
  EXPECT_EQ(RelativePositionBias::bucket(-5, false, 32, 128), 5);
  EXPECT_EQ(RelativePositionBias::bucket(-100, false, 32, 128), 30);  // 16 + trunc(ln 6.25 / ln 8 * 16)
}

TEST(RelativePositionBias, BucketsEqualPyTorchsFormulation) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  // The bucket rule written with torch ops in fp32, as NeMo's T5RelativePositionEmbedding does.
  const std::string script = R"PY(
import json, math, torch
def buckets(rel, bidirectional, nb, md):
    n = -rel
    ret = torch.zeros_like(n)
    if bidirectional:
        nb //= 2
        ret += (n < 0).to(torch.long) * nb
        n = torch.abs(n)
    else:
        n = torch.max(n, torch.zeros_like(n))
    max_exact = nb // 2
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(md / max_exact) * (nb - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, nb - 1))
    return (ret + torch.where(n < max_exact, n, large)).tolist()
rel = torch.arange(-400, 401)
out = {f"{b}-{nb}-{md}": buckets(rel, b, nb, md) for b in (True, False) for nb, md in ((32, 128), (16, 64), (64, 256))}
print(json.dumps(out))
)PY";
  const std::string cmd = "/usr/bin/python3 -c '" + script + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe.get()) != nullptr) text += buf;
  const nlohmann::json ref = nlohmann::json::parse(text);
  int compared = 0;
  for (const bool bidirectional : {true, false})
    for (const auto& [nb, md] : {std::pair{32, 128}, std::pair{16, 64}, std::pair{64, 256}}) {
      const auto& want = ref.at(fmt::format("{}-{}-{}", bidirectional ? "True" : "False", nb, md));
      for (int rel = -400; rel <= 400; ++rel, ++compared)
        ASSERT_EQ(RelativePositionBias::bucket(rel, bidirectional, nb, md), want.at(rel + 400).get<int>())
            << "rel " << rel << " bidirectional " << bidirectional << " buckets " << nb << " max distance " << md;
    }
  EXPECT_EQ(compared, 6 * 801);
}

TEST(RelativePositionBias, BiasReadsTheTableAndItsGradientSumsEachBucket) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  ParameterStore store;
  // TP rank 1 of 2: heads [2, 4) of 4; decoding 3 queries at positions 5..7 against 8 keys.
  RelativePositionBias rpb(store, RelativePositionBiasSpec{"rpb", 8, 16, 4, false, 0.5f}, 2, 2);
  store.allocate(alloc, DType::kF32);
  store.initialize(ctx, 3);
  EXPECT_TRUE(rpb.weight().sequence_parallel);  // partial over TP ranks
  const std::int64_t tq = 3, tk = 8, offset = 5;
  std::vector<float> bias(static_cast<std::size_t>(2 * tq * tk));
  rpb.forward(ctx, offset, TensorView(bias.data(), DType::kF32, Shape{2, tq, tk}));
  const float* table = rpb.weight().value.data<float>();
  for (int h = 0; h < 2; ++h)
    for (std::int64_t i = 0; i < tq; ++i)
      for (std::int64_t j = 0; j < tk; ++j) {
        const int b = RelativePositionBias::bucket(j - (offset + i), false, 8, 16);
        ASSERT_EQ(bias[static_cast<std::size_t>((h * tq + i) * tk + j)], table[b * 4 + 2 + h]) << h << " " << i << " " << j;
      }
  // dbias = 1 + h: the gradient of (bucket, head) is (1 + h) times the positions in that bucket;
  // heads 0 and 1 (another rank's) get nothing.
  std::vector<float> dbias(bias.size());
  for (std::size_t k = 0; k < dbias.size(); ++k) dbias[k] = 1.0f + static_cast<float>(k / (tq * tk));
  store.zero_grad(ctx);
  rpb.backward(ctx, offset, TensorView(dbias.data(), DType::kF32, Shape{2, tq, tk}));
  const float* grad = rpb.weight().grad.data<float>();
  for (int b = 0; b < 8; ++b) {
    int count = 0;
    for (std::int64_t i = 0; i < tq; ++i)
      for (std::int64_t j = 0; j < tk; ++j) count += RelativePositionBias::bucket(j - (offset + i), false, 8, 16) == b;
    EXPECT_EQ(grad[b * 4 + 0], 0.0f);
    EXPECT_EQ(grad[b * 4 + 1], 0.0f);
    EXPECT_EQ(grad[b * 4 + 2], 1.0f * static_cast<float>(count)) << "bucket " << b;
    EXPECT_EQ(grad[b * 4 + 3], 2.0f * static_cast<float>(count)) << "bucket " << b;
  }
}

}  // namespace
}  // namespace bignlp::model
