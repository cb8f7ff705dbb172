// attention_general_forward/backward without PyTorch: bit-equality with the fused attention op on
// causal self-attention, strided views, decoding against a cache equal to the full causal pass,
// finite differences with every feature on, fully masked rows, thread-count invariance, and the
// argument checks. (The PyTorch comparison is attention_torch_test.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "bignlp/tensor/half.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::grads_close;
using testing::HostTensor;
using testing::numeric_grad;
using testing::random_tensor;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// q, k, v as (T, B, NH, HS) views of Megatron's head-interleaved fused qkv (T, B, NH*3*HS).
struct FusedViews {
  TensorView q, k, v;
};

FusedViews fused_views(void* qkv, DType dt, std::int64_t t, std::int64_t b, std::int64_t nh, std::int64_t hs) {
  const std::int64_t w = nh * 3 * hs;
  const Shape shape{t, b, nh, hs}, st{b * w, w, 3 * hs, 1};
  char* base = static_cast<char*>(qkv);
  const std::size_t es = dtype_size(dt);
  return {TensorView(base, dt, shape, st, Device::cpu()), TensorView(base + hs * es, dt, shape, st, Device::cpu()),
          TensorView(base + 2 * hs * es, dt, shape, st, Device::cpu())};
}

struct FusedCase {
  DType dtype;
  float p;
};

void PrintTo(const FusedCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << " p=" << c.p; }

class AttentionGeneralFusedTest : public ::testing::TestWithParam<FusedCase> {};

// Causal self-attention, q/k/v as views of the fused qkv: out, lse and dqkv are bit-identical to
// attention_forward/backward (same operations in the same order; see cpu/attention_general.cpp).
TEST_P(AttentionGeneralFusedTest, EqualsFusedAttentionBitForBit) {
  const auto [dt, p] = GetParam();
  std::mt19937 rng(21);
  const std::int64_t t = 7, b = 2, nh = 3, hs = 4, c = nh * hs;
  HostTensor qkv32 = random_tensor(Shape{t, b, 3 * c}, rng), dout32 = random_tensor(Shape{t, b, c}, rng);
  const std::size_t es = dtype_size(dt);
  // Storage in the tested dtype (bf16 bits or fp32 values).
  auto stored = [&](const std::vector<float>& x) {
    std::vector<char> bytes(x.size() * es);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (dt == DType::kBF16) {
        const BFloat16 v = bf16_from_float(x[i]);
        std::memcpy(&bytes[i * es], &v, es);
      } else {
        std::memcpy(&bytes[i * es], &x[i], es);
      }
    }
    return bytes;
  };
  std::vector<char> qkv = stored(qkv32.data), dout = stored(dout32.data);
  std::vector<char> out_f(dout.size()), out_g(dout.size()), dqkv_f(qkv.size()), dqkv_g(qkv.size(), 0x7f);
  HostTensor lse_f(Shape{b, nh, t}), lse_g(Shape{b, nh, t});
  AttentionParams fp;
  fp.num_heads = static_cast<int>(nh);
  fp.causal = true;
  fp.dropout = DropoutParams{p, 5, 6, 0};
  fp.head_offset = 1;
  fp.total_heads = 5;
  GeneralAttentionParams gp;
  gp.num_heads = fp.num_heads;
  gp.causal = true;
  gp.dropout = fp.dropout;
  gp.head_offset = fp.head_offset;
  gp.total_heads = fp.total_heads;
  const OpContext ctx = OpContext::cpu();
  const Shape qkv_shape{t, b, 3 * c}, out_shape{t, b, c};
  attention_forward(ctx, TensorView(qkv.data(), dt, qkv_shape), TensorView(out_f.data(), dt, out_shape), lse_f.view(),
                    fp);
  attention_backward(ctx, TensorView(qkv.data(), dt, qkv_shape), TensorView(out_f.data(), dt, out_shape), lse_f.view(),
                     TensorView(dout.data(), dt, out_shape), TensorView(dqkv_f.data(), dt, qkv_shape), fp);
  const FusedViews in = fused_views(qkv.data(), dt, t, b, nh, hs), grad = fused_views(dqkv_g.data(), dt, t, b, nh, hs);
  const TensorView out(out_g.data(), dt, out_shape);
  attention_general_forward(ctx, in.q, in.k, in.v, {}, {}, out, lse_g.view(), gp);
  attention_general_backward(ctx, in.q, in.k, in.v, {}, {}, out, lse_g.view(), TensorView(dout.data(), dt, out_shape),
                             grad.q, grad.k, grad.v, {}, gp);
  EXPECT_EQ(lse_g.data, lse_f.data);
  EXPECT_TRUE(out_g == out_f) << "out differs";
  EXPECT_TRUE(dqkv_g == dqkv_f) << "dqkv differs";  // also: every byte of dqkv_g was written
}

INSTANTIATE_TEST_SUITE_P(DtypeDropout, AttentionGeneralFusedTest,
                         ::testing::Values(FusedCase{DType::kF32, 0.0f}, FusedCase{DType::kF32, 0.25f},
                                           FusedCase{DType::kBF16, 0.25f}),
                         [](const auto& info) {
                           return std::string(info.param.dtype == DType::kF32 ? "f32" : "bf16") +
                                  (info.param.p > 0 ? "_dropout" : "");
                         });

/// The elements of a strided fp32 (T, B, C) view, in row-major order.
std::vector<float> packed(const TensorView& x) {
  std::vector<float> r;
  for (std::int64_t t = 0; t < x.size(0); ++t)
    for (std::int64_t b = 0; b < x.size(1); ++b)
      for (std::int64_t e = 0; e < x.size(2); ++e)
        r.push_back(static_cast<const float*>(x.raw())[t * x.stride(0) + b * x.stride(1) + e]);
  return r;
}

// k and v as the column halves of one (Tk, B, 2C) projection, dk and dv written into the halves
// of one (Tk, B, 2C) gradient: the same results as packed tensors.
TEST(AttentionGeneralTest, ColumnSlicesOfAFusedProjectionEqualPackedTensors) {
  std::mt19937 rng(22);
  const std::int64_t tq = 3, tk = 5, b = 2, nh = 2, hs = 4, c = nh * hs;
  HostTensor q = random_tensor(Shape{tq, b, c}, rng), kv = random_tensor(Shape{tk, b, 2 * c}, rng);
  HostTensor dout = random_tensor(Shape{tq, b, c}, rng), bias = random_tensor(Shape{nh, tq, tk}, rng);
  const Shape ks{tk, b, c}, st{b * 2 * c, 2 * c, 1};
  const TensorView k(kv.data.data(), DType::kF32, ks, st, Device::cpu());
  const TensorView v(kv.data.data() + c, DType::kF32, ks, st, Device::cpu());
  HostTensor kp(ks), vp(ks);
  kp.data = packed(k);
  vp.data = packed(v);
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  p.dropout = DropoutParams{0.2f, 1, 2, 0};
  const std::vector<std::int32_t> lengths{5, 3};
  const OpContext ctx = OpContext::cpu();
  HostTensor out1(q.shape), out2(q.shape), lse1(Shape{b, nh, tq}), lse2(lse1.shape), dq1(q.shape), dq2(q.shape),
      dkp(ks), dvp(ks), dkv(kv.shape, kNaN), db1(bias.shape), db2(bias.shape);
  attention_general_forward(ctx, q.view(), kp.view(), vp.view(), bias.view(), lengths, out1.view(), lse1.view(), p);
  attention_general_backward(ctx, q.view(), kp.view(), vp.view(), bias.view(), lengths, out1.view(), lse1.view(),
                             dout.view(), dq1.view(), dkp.view(), dvp.view(), db1.view(), p);
  attention_general_forward(ctx, q.view(), k, v, bias.view(), lengths, out2.view(), lse2.view(), p);
  const TensorView dk(dkv.data.data(), DType::kF32, ks, st, Device::cpu());
  const TensorView dv(dkv.data.data() + c, DType::kF32, ks, st, Device::cpu());
  attention_general_backward(ctx, q.view(), k, v, bias.view(), lengths, out2.view(), lse2.view(), dout.view(),
                             dq2.view(), dk, dv, db2.view(), p);
  EXPECT_EQ(out2.data, out1.data);
  EXPECT_EQ(lse2.data, lse1.data);
  EXPECT_EQ(dq2.data, dq1.data);
  EXPECT_EQ(packed(dk), dkp.data);
  EXPECT_EQ(packed(dv), dvp.data);
  EXPECT_EQ(db2.data, db1.data);
}

// Decoding: each query alone (Tq = 1, kv_offset = i) and a block (Tq = 3, kv_offset = 3) against the
// keys so far give the rows of the full causal pass over T = 6.
TEST(AttentionGeneralTest, DecodingAgainstACacheEqualsTheFullCausalPass) {
  std::mt19937 rng(23);
  const std::int64_t t = 6, b = 2, nh = 2, hs = 4, c = nh * hs;
  HostTensor q = random_tensor(Shape{t, b, c}, rng), k = random_tensor(Shape{t, b, c}, rng),
             v = random_tensor(Shape{t, b, c}, rng);
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  p.causal = true;
  const OpContext ctx = OpContext::cpu();
  HostTensor full(q.shape), full_lse(Shape{b, nh, t});
  attention_general_forward(ctx, q.view(), k.view(), v.view(), {}, {}, full.view(), full_lse.view(), p);
  auto rows = [&](HostTensor& x, std::int64_t start, std::int64_t len) { return x.view().slice(0, start, len); };
  auto check_block = [&](std::int64_t start, std::int64_t len) {
    SCOPED_TRACE(fmt::format("queries [{}, {})", start, start + len));
    GeneralAttentionParams pd = p;
    pd.kv_offset = start;
    HostTensor out(Shape{len, b, c}), lse(Shape{b, nh, len});
    attention_general_forward(ctx, rows(q, start, len), rows(k, 0, start + len), rows(v, 0, start + len), {}, {},
                              out.view(), lse.view(), pd);
    for (std::int64_t i = 0; i < len * b * c; ++i) EXPECT_NEAR(out[i], full[start * b * c + i], 1e-6) << i;
    for (std::int64_t bh = 0; bh < b * nh; ++bh)
      for (std::int64_t i = 0; i < len; ++i) EXPECT_NEAR(lse[bh * len + i], full_lse[bh * t + start + i], 1e-6);
  };
  for (std::int64_t i = 0; i < t; ++i) check_block(i, 1);
  check_block(3, 3);
}

// Every feature at once (bias, key padding, causal with an offset, dropout on a head shard):
// gradients of q, k, v and bias against central differences; dbias accumulates onto its old value.
TEST(AttentionGeneralTest, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(24);
  const std::int64_t tq = 3, tk = 5, b = 2, nh = 2, hs = 3, c = nh * hs;
  HostTensor q = random_tensor(Shape{tq, b, c}, rng), k = random_tensor(Shape{tk, b, c}, rng),
             v = random_tensor(Shape{tk, b, c}, rng), bias = random_tensor(Shape{nh, tq, tk}, rng),
             r = random_tensor(Shape{tq, b, c}, rng);
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  p.causal = true;
  p.kv_offset = 2;
  p.scale = 0.7f;
  p.dropout = DropoutParams{0.3f, 8, 9, 0};
  p.head_offset = 1;
  p.total_heads = 4;
  const std::vector<std::int32_t> lengths{5, 3};
  const OpContext ctx = OpContext::cpu();
  auto loss = [&] {
    HostTensor out(q.shape), lse(Shape{b, nh, tq});
    attention_general_forward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(), p);
    return testing::dot(out.data, r.data);
  };
  HostTensor out(q.shape), lse(Shape{b, nh, tq}), dq(q.shape, 9.0f), dk(k.shape, 9.0f), dv(v.shape, 9.0f),
      dbias(bias.shape, 0.5f);
  attention_general_forward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(), p);
  attention_general_backward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(),
                             r.view(), dq.view(), dk.view(), dv.view(), dbias.view(), p);
  for (auto& x : dbias.data) x -= 0.5f;
  EXPECT_TRUE(grads_close(dq.data, numeric_grad(q, loss, 1e-3f)));
  EXPECT_TRUE(grads_close(dk.data, numeric_grad(k, loss, 1e-3f)));
  EXPECT_TRUE(grads_close(dv.data, numeric_grad(v, loss, 1e-3f)));
  EXPECT_TRUE(grads_close(dbias.data, numeric_grad(bias, loss, 1e-3f)));
}

// Batch row 1 has no valid key, and head 0's query 0 has a -inf bias everywhere: those rows give
// out 0, lse +inf and zero gradients; nothing is NaN.
TEST(AttentionGeneralTest, FullyMaskedRowsGiveZerosNotNaN) {
  std::mt19937 rng(25);
  const std::int64_t tq = 2, tk = 3, b = 2, nh = 2, hs = 2, c = nh * hs;
  HostTensor q = random_tensor(Shape{tq, b, c}, rng), k = random_tensor(Shape{tk, b, c}, rng),
             v = random_tensor(Shape{tk, b, c}, rng), bias = random_tensor(Shape{nh, tq, tk}, rng),
             dout = random_tensor(Shape{tq, b, c}, rng);
  for (std::int64_t j = 0; j < tk; ++j) bias[j] = -kInf;  // head 0, query 0
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  p.dropout = DropoutParams{0.1f, 3, 4, 0};
  const std::vector<std::int32_t> lengths{3, 0};
  const OpContext ctx = OpContext::cpu();
  HostTensor out(q.shape), lse(Shape{b, nh, tq}), dq(q.shape), dk(k.shape), dv(v.shape), dbias(bias.shape);
  attention_general_forward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(), p);
  attention_general_backward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(),
                             dout.view(), dq.view(), dk.view(), dv.view(), dbias.view(), p);
  for (const HostTensor* x : {&out, &dq, &dk, &dv, &dbias})
    for (float e : x->data) ASSERT_TRUE(std::isfinite(e));
  auto at = [&](HostTensor& x, std::int64_t t, std::int64_t bi, std::int64_t h, std::int64_t e) -> float& {
    return x[(t * b + bi) * c + h * hs + e];
  };
  for (std::int64_t h = 0; h < nh; ++h)
    for (std::int64_t i = 0; i < tq; ++i) {
      EXPECT_EQ(lse[(1 * nh + h) * tq + i], kInf);
      for (std::int64_t e = 0; e < hs; ++e) {
        EXPECT_EQ(at(out, i, 1, h, e), 0.0f);
        EXPECT_EQ(at(dq, i, 1, h, e), 0.0f);
      }
    }
  for (std::int64_t j = 0; j < tk; ++j)
    for (std::int64_t e = 0; e < c; ++e) {
      EXPECT_EQ(dk[(j * b + 1) * c + e], 0.0f);
      EXPECT_EQ(dv[(j * b + 1) * c + e], 0.0f);
    }
  EXPECT_EQ(lse[0], kInf);  // batch 0, head 0, query 0: masked by the bias
  EXPECT_TRUE(std::isfinite(lse[1]));
  for (std::int64_t e = 0; e < hs; ++e) {
    EXPECT_EQ(at(out, 0, 0, 0, e), 0.0f);
    EXPECT_EQ(at(dq, 0, 0, 0, e), 0.0f);
  }
  for (std::int64_t j = 0; j < tk; ++j) EXPECT_EQ(dbias[j], 0.0f);
}

TEST(AttentionGeneralTest, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(26);
  // Tq * Tk above the CPU reference's parallel threshold, so rows really split across threads.
  const std::int64_t tq = 96, tk = 384, b = 2, nh = 2, hs = 8, c = nh * hs;
  HostTensor q = random_tensor(Shape{tq, b, c}, rng), k = random_tensor(Shape{tk, b, c}, rng),
             v = random_tensor(Shape{tk, b, c}, rng), bias = random_tensor(Shape{nh, tq, tk}, rng),
             dout = random_tensor(Shape{tq, b, c}, rng);
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  p.causal = true;
  p.kv_offset = tk - tq - 10;
  p.dropout = DropoutParams{0.1f, 1, 2, 0};
  const std::vector<std::int32_t> lengths{384, 200};
  std::vector<float> results[2];
  for (int threads : {1, 2}) {
    const OpContext ctx = OpContext::cpu(threads);
    HostTensor out(q.shape), lse(Shape{b, nh, tq}), dq(q.shape), dk(k.shape), dv(v.shape), dbias(bias.shape);
    attention_general_forward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(), p);
    attention_general_backward(ctx, q.view(), k.view(), v.view(), bias.view(), lengths, out.view(), lse.view(),
                               dout.view(), dq.view(), dk.view(), dv.view(), dbias.view(), p);
    for (const HostTensor* x : {&out, &lse, &dq, &dk, &dv, &dbias})
      results[threads - 1].insert(results[threads - 1].end(), x->data.begin(), x->data.end());
  }
  EXPECT_TRUE(results[0] == results[1]);
}

TEST(AttentionGeneralTest, ArgumentErrorsNameTheProblem) {
  const std::int64_t tq = 2, tk = 3, b = 2, nh = 2, hs = 2, c = nh * hs;
  HostTensor q(Shape{tq, b, c}), k(Shape{tk, b, c}), v(Shape{tk, b, c}), out(q.shape), lse(Shape{b, nh, tq});
  GeneralAttentionParams p;
  p.num_heads = static_cast<int>(nh);
  const OpContext ctx = OpContext::cpu();
  auto message = [&](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  };
  const std::vector<std::int32_t> too_long{3, 4};
  EXPECT_THAT(message([&] {
                attention_general_forward(ctx, q.view(), k.view(), v.view(), {}, too_long, out.view(), lse.view(), p);
              }),
              ::testing::HasSubstr("key_lengths[1] = 4 is outside [0, Tk = 3]"));
  HostTensor bias(Shape{nh, tk, tq});
  EXPECT_THAT(message([&] {
                attention_general_forward(ctx, q.view(), k.view(), v.view(), bias.view(), {}, out.view(), lse.view(),
                                          p);
              }),
              ::testing::HasSubstr("tensor 'bias' has shape"));
  const TensorView q_cols(q.data.data(), DType::kF32, q.shape, Shape{b * c, c, 2}, Device::cpu());
  EXPECT_THAT(message([&] {
                attention_general_forward(ctx, q_cols, k.view(), v.view(), {}, {}, out.view(), lse.view(), p);
              }),
              ::testing::HasSubstr("tensor 'q' needs unit stride in the last dimension"));
  GeneralAttentionParams neg = p;
  neg.kv_offset = -1;
  EXPECT_THAT(message([&] {
                attention_general_forward(ctx, q.view(), k.view(), v.view(), {}, {}, out.view(), lse.view(), neg);
              }),
              ::testing::HasSubstr("kv_offset must be >= 0"));
  // CUDA tensors: no CUDA implementation yet, a clear error naming the op.
  OpContext cuda_ctx;
  cuda_ctx.device = Device::cuda(0);
  auto on_cuda = [](HostTensor& x) {
    return TensorView(x.data.data(), DType::kF32, x.shape, x.view().strides(), Device::cuda(0));
  };
  EXPECT_THAT(message([&] {
                attention_general_forward(cuda_ctx, on_cuda(q), on_cuda(k), on_cuda(v), {}, {}, on_cuda(out),
                                          on_cuda(lse), p);
              }),
              ::testing::AllOf(::testing::HasSubstr("attention_general_forward"),
                               ::testing::HasSubstr("no CUDA implementation")));
  HostTensor dq(q.shape), dk(k.shape), dv(v.shape);
  EXPECT_THAT(message([&] {
                attention_general_backward(cuda_ctx, on_cuda(q), on_cuda(k), on_cuda(v), {}, {}, on_cuda(out),
                                           on_cuda(lse), on_cuda(out), on_cuda(dq), on_cuda(dk), on_cuda(dv), {}, p);
              }),
              ::testing::AllOf(::testing::HasSubstr("attention_general_backward"),
                               ::testing::HasSubstr("no CUDA implementation")));
}

}  // namespace
}  // namespace bignlp::ops
