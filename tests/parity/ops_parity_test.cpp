// Every CUDA op against its CPU reference on random inputs of the shapes the GPT presets use
// (hidden 768 / 2048, heads of 64 / 128, the padded GPT-2 vocabulary 50304), in fp32, bf16 and fp16,
// plus the cases that take the kernels' scalar paths (odd sizes, unaligned views).
#include <cstring>

#include "parity_util.h"

namespace bignlp::parity {
namespace {

using ops::GemmParams;

// ---- GEMM ---------------------------------------------------------------------------------------

class GemmParity : public CudaParity {
 protected:
  // TF32 (precision 32 on tensor cores): 10-bit mantissas in the products.
  static double gemm_eps(DType t) { return t == DType::kF32 ? 1.0 / 1024.0 : eps_of(t); }

  void check(DType dt, std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, float beta, bool bias,
             DType c_dtype) {
    std::mt19937 rng(static_cast<unsigned>(m * 31 + n * 7 + k + ta * 2 + tb));
    const float stddev = 1.0f / std::sqrt(static_cast<float>(k));  // keeps |c| ~ 1 like a real layer
    Pair a = random(dt, ta ? Shape{k, m} : Shape{m, k}, rng, stddev);
    Pair b = random(dt, tb ? Shape{n, k} : Shape{k, n}, rng);
    Pair c = beta != 0.0f ? random(c_dtype, Shape{m, n}, rng) : output(c_dtype, Shape{m, n});
    Pair bv = random(c_dtype, Shape{n}, rng);
    const GemmParams p{ta, tb, 1.0f, beta};
    ops::gemm(cpu_, a.h(), b.h(), c.h(), p, bias ? bv.h() : TensorView{});
    ops::gemm(gpu_, a.d(), b.d(), c.d(), p, bias ? bv.d() : TensorView{});
    // fp32 inputs run in TF32 (10-bit mantissas); 16-bit inputs multiply exactly and accumulate in
    // fp32, so an fp32 result differs by the summation order (about sqrt(K) fp32 roundings) and a
    // 16-bit result by one rounding of its dtype.
    double eps = eps_of(c_dtype), k_tol = 4.0;
    if (dt == DType::kF32) {
      eps = gemm_eps(dt);
    } else if (c_dtype == DType::kF32) {
      k_tol = 8.0 * std::sqrt(static_cast<double>(k));
    }
    EXPECT_TRUE(close(c, k_tol, "gemm", eps))
        << dtype_name(dt) << " m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb;
  }
};

TEST_F(GemmParity, LinearLayersOfThe126mShape) {
  for (DType dt : float_dtypes()) {
    check(dt, 512, 2304, 768, false, true, 0.0f, true, dt);    // qkv forward: y = x W^T + b
    check(dt, 512, 768, 3072, false, false, 0.0f, false, dt);  // fc2 input grad: dx = dy W
    check(dt, 768, 3072, 512, true, false, 1.0f, false, DType::kF32);  // weight grad: dW += dy^T x (fp32 main grad)
  }
}

TEST_F(GemmParity, LogitsOfThePaddedVocabulary) {
  check(DType::kBF16, 256, 50304, 768, false, true, 0.0f, false, DType::kBF16);
}

TEST_F(GemmParity, OddShapesFp32BiasAndSubViews) {
  check(DType::kBF16, 37, 101, 53, false, false, 0.0f, true, DType::kBF16);  // unaligned leading dimensions
  check(DType::kF32, 5, 3, 1, true, true, 0.5f, true, DType::kF32);
  // A column slice of c (leading dimension > N) and an fp32 bias with bf16 output.
  std::mt19937 rng(3);
  Pair a = random(DType::kBF16, Shape{64, 128}, rng, 0.1f), b = random(DType::kBF16, Shape{96, 128}, rng);
  Pair c = output(DType::kBF16, Shape{64, 160});
  Pair bias = random(DType::kF32, Shape{96}, rng);
  ops::fill(cpu_, c.h(), 0.0);
  ops::fill(gpu_, c.d(), 0.0);
  ops::gemm(cpu_, a.h(), b.h(), c.h().slice(1, 32, 96), GemmParams{false, true}, bias.h());
  ops::gemm(gpu_, a.d(), b.d(), c.d().slice(1, 32, 96), GemmParams{false, true}, bias.d());
  EXPECT_TRUE(close(c, 4.0, "gemm into a column slice"));
}

TEST_F(GemmParity, ZeroInnerDimensionAppliesBetaAndBias) {
  std::mt19937 rng(4);
  Pair a = random(DType::kF32, Shape{4, 0}, rng), b = random(DType::kF32, Shape{0, 6}, rng);
  Pair c = random(DType::kF32, Shape{4, 6}, rng), bias = random(DType::kF32, Shape{6}, rng);
  ops::gemm(cpu_, a.h(), b.h(), c.h(), GemmParams{false, false, 1.0f, 0.5f}, bias.h());
  ops::gemm(gpu_, a.d(), b.d(), c.d(), GemmParams{false, false, 1.0f, 0.5f}, bias.d());
  EXPECT_TRUE(close(c, 4.0, "k = 0"));
}

TEST_F(GemmParity, BiasBackwardAndFusedGeluEpilogues) {
  for (DType dt : float_dtypes()) {
    std::mt19937 rng(5);
    const std::int64_t n = 512, c = 768, f = 3072;
    Pair x = random(dt, Shape{n, c}, rng), w1 = random(dt, Shape{f, c}, rng, 0.03f), b1 = random(dt, Shape{f}, rng);
    Pair h = output(dt, Shape{n, f}), pre = output(dt, Shape{n, f});
    ops::gemm_bias_gelu(cpu_, x.h(), w1.h(), h.h(), pre.h(), GemmParams{false, true}, b1.h());
    ops::gemm_bias_gelu(gpu_, x.d(), w1.d(), h.d(), pre.d(), GemmParams{false, true}, b1.d());
    const double e = dt == DType::kF32 ? 1.0 / 1024.0 : 0.0;
    EXPECT_TRUE(close(pre, 8.0, std::string("gemm_bias_gelu pre ") + std::string(dtype_name(dt)), e));
    EXPECT_TRUE(close(h, 8.0, std::string("gemm_bias_gelu out ") + std::string(dtype_name(dt)), e));
    // Backward through fc2: d_act = dy W2, times gelu'(pre), with the fc1 bias gradient.
    Pair dy = random(dt, Shape{n, c}, rng), w2 = random(dt, Shape{c, f}, rng, 0.03f);
    Pair dact = output(dt, Shape{n, f}), db = output(DType::kF32, Shape{f}, false, 0.25);
    // Same pre on both sides: the GPU's pre may differ from the CPU's by a rounding.
    ops::copy(gpu_, pre.h(), pre.d());
    ops::gemm_dgelu(cpu_, dy.h(), w2.h(), dact.h(), pre.h(), GemmParams{}, db.h());
    ops::gemm_dgelu(gpu_, dy.d(), w2.d(), dact.d(), pre.d(), GemmParams{}, db.d());
    EXPECT_TRUE(close(dact, 8.0, std::string("gemm_dgelu ") + std::string(dtype_name(dt)), e));
    EXPECT_TRUE(close(db, 64.0, "gemm_dgelu dbias", dt == DType::kF32 ? 1.0 / 1024.0 : eps_of(dt)));
    Pair dbias = output(DType::kF32, Shape{f}, false, 1.0);
    ops::bias_backward(cpu_, dact.h(), dbias.h());
    ops::copy(gpu_, dact.h(), dact.d());
    ops::bias_backward(gpu_, dact.d(), dbias.d());
    EXPECT_TRUE(close(dbias, 1e4, "bias_backward"));  // fp32 sums of 512 rows in another order
  }
}

// ---- LayerNorm ----------------------------------------------------------------------------------

TEST_F(CudaParity, LayerNormForwardBackwardWithAliasAndAccumulate) {
  for (DType dt : float_dtypes()) {
    for (std::int64_t c : {768, 2048, 100}) {  // 100: the scalar path
      std::mt19937 rng(static_cast<unsigned>(c));
      const std::int64_t n = 300;
      Pair x = random(dt, Shape{n, c}, rng, 2.0f, 0.5f), w = random(dt, Shape{c}, rng, 0.2f, 1.0f),
           b = random(dt, Shape{c}, rng, 0.1f);
      Pair y = output(dt, Shape{n, c}), mean = output(DType::kF32, Shape{n}), rstd = output(DType::kF32, Shape{n});
      ops::layernorm_forward(cpu_, x.h(), w.h(), b.h(), y.h(), mean.h(), rstd.h(), 1e-5f);
      ops::layernorm_forward(gpu_, x.d(), w.d(), b.d(), y.d(), mean.d(), rstd.d(), 1e-5f);
      const std::string tag = std::string(dtype_name(dt)) + " C=" + std::to_string(c);
      EXPECT_TRUE(close(y, dt == DType::kF32 ? 256.0 : 2.0, "layernorm y " + tag));
      EXPECT_TRUE(close(mean, 4096.0, "layernorm mean " + tag));
      EXPECT_TRUE(close(rstd, 1024.0, "layernorm rstd " + tag));
      // Backward from the CPU statistics on both sides; dx accumulates into a residual gradient.
      ops::copy(gpu_, mean.h(), mean.d());
      ops::copy(gpu_, rstd.h(), rstd.d());
      Pair dy = random(dt, Shape{n, c}, rng), dx = random(dt, Shape{n, c}, rng);
      Pair dw = output(DType::kF32, Shape{c}, false, 0.5), db = output(DType::kF32, Shape{c}, false, -0.5);
      ops::layernorm_backward(cpu_, x.h(), w.h(), mean.h(), rstd.h(), dy.h(), dx.h(), dw.h(), db.h(), true);
      ops::layernorm_backward(gpu_, x.d(), w.d(), mean.d(), rstd.d(), dy.d(), dx.d(), dw.d(), db.d(), true);
      EXPECT_TRUE(close(dx, dt == DType::kF32 ? 2048.0 : 4.0, "layernorm dx " + tag));
      EXPECT_TRUE(close(dw, 1e4, "layernorm dweight " + tag));
      EXPECT_TRUE(close(db, 1e4, "layernorm dbias " + tag));
      // dx written over dy (the in-place form).
      Pair dy2 = random(dt, Shape{n, c}, rng);
      ops::layernorm_backward(cpu_, x.h(), w.h(), mean.h(), rstd.h(), dy2.h(), dy2.h(), dw.h(), db.h(), false);
      ops::layernorm_backward(gpu_, x.d(), w.d(), mean.d(), rstd.d(), dy2.d(), dy2.d(), dw.d(), db.d(), false);
      EXPECT_TRUE(close(dy2, dt == DType::kF32 ? 2048.0 : 4.0, "layernorm dx aliasing dy " + tag));
    }
  }
}

// A LayerNorm without bias (empty bias and dbias: the kernels' null-bias branches).
TEST_F(CudaParity, LayerNormWithoutBias) {
  for (DType dt : float_dtypes()) {
    for (std::int64_t c : {768, 100}) {
      std::mt19937 rng(static_cast<unsigned>(c + 1));
      const std::int64_t n = 64;
      Pair x = random(dt, Shape{n, c}, rng, 2.0f, 0.5f), w = random(dt, Shape{c}, rng, 0.2f, 1.0f);
      Pair y = output(dt, Shape{n, c}), mean = output(DType::kF32, Shape{n}), rstd = output(DType::kF32, Shape{n});
      ops::layernorm_forward(cpu_, x.h(), w.h(), {}, y.h(), mean.h(), rstd.h(), 1e-5f);
      ops::layernorm_forward(gpu_, x.d(), w.d(), {}, y.d(), mean.d(), rstd.d(), 1e-5f);
      const std::string tag = std::string(dtype_name(dt)) + " C=" + std::to_string(c);
      EXPECT_TRUE(close(y, dt == DType::kF32 ? 256.0 : 2.0, "layernorm without bias y " + tag));
      ops::copy(gpu_, mean.h(), mean.d());
      ops::copy(gpu_, rstd.h(), rstd.d());
      Pair dy = random(dt, Shape{n, c}, rng), dx = output(dt, Shape{n, c});
      Pair dw = output(DType::kF32, Shape{c}, false, 0.5);
      ops::layernorm_backward(cpu_, x.h(), w.h(), mean.h(), rstd.h(), dy.h(), dx.h(), dw.h(), {}, false);
      ops::layernorm_backward(gpu_, x.d(), w.d(), mean.d(), rstd.d(), dy.d(), dx.d(), dw.d(), {}, false);
      EXPECT_TRUE(close(dx, dt == DType::kF32 ? 2048.0 : 4.0, "layernorm without bias dx " + tag));
      EXPECT_TRUE(close(dw, 1e4, "layernorm without bias dweight " + tag));
    }
  }
}

// ---- GeLU, dropout ------------------------------------------------------------------------------

TEST_F(CudaParity, GeluBothFormsAllDtypesAndUnalignedViews) {
  for (DType dt : float_dtypes())
    for (auto approx : {ops::GeluApprox::kTanh, ops::GeluApprox::kErf}) {
      std::mt19937 rng(8);
      const std::int64_t n = 512 * 3072 + 5;
      Pair x = random(dt, Shape{n}, rng, 2.0f), y = output(dt, Shape{n});
      ops::gelu_forward(cpu_, x.h(), y.h(), approx);
      ops::gelu_forward(gpu_, x.d(), y.d(), approx);
      EXPECT_TRUE(close(y, 8.0, "gelu_forward"));
      Pair dy = random(dt, Shape{n}, rng), dx = output(dt, Shape{n});
      ops::gelu_backward(cpu_, x.h(), dy.h(), dx.h(), approx);
      ops::gelu_backward(gpu_, x.d(), dy.d(), dx.d(), approx);
      EXPECT_TRUE(close(dx, 16.0, "gelu_backward"));
      // Views starting one element in: the scalar path; in place (dx aliases dy).
      const TensorView xh = x.h().slice(0, 1, n - 1), xd = x.d().slice(0, 1, n - 1);
      ops::gelu_backward(cpu_, xh, dy.h().slice(0, 1, n - 1), dy.h().slice(0, 1, n - 1), approx);
      ops::gelu_backward(gpu_, xd, dy.d().slice(0, 1, n - 1), dy.d().slice(0, 1, n - 1), approx);
      EXPECT_TRUE(close(dy, 16.0, "gelu_backward unaligned, in place"));
    }
}

TEST_F(CudaParity, DropoutMasksMatchBitForBit) {
  // All-ones input in fp32: y is exactly 0 or 1/(1-p) on both sides, so masks compare exactly.
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{1} << 33}) {
    const std::int64_t n = 1'000'003;
    const ops::DropoutParams p{0.1f, 1234, 77, first};
    Pair x = from_values(DType::kF32, Shape{n}, std::vector<float>(static_cast<std::size_t>(n), 1.0f));
    Pair y = output(DType::kF32, Shape{n});
    ops::dropout_forward(cpu_, x.h(), y.h(), p);
    ops::dropout_forward(gpu_, x.d(), y.d(), p);
    const std::vector<float> g = values(y.d()), c = values(y.h());
    std::size_t kept = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(std::memcmp(&g[i], &c[i], sizeof(float)), 0) << "element " << i << " first_index " << first;
      kept += c[i] != 0.0f;
    }
    EXPECT_NEAR(static_cast<double>(kept) / n, 0.9, 0.002);
  }
  // Residual add, all dtypes, the backward with accumulate, in place.
  for (DType dt : float_dtypes()) {
    std::mt19937 rng(9);
    const std::int64_t n = 4097 * 5;
    const ops::DropoutParams p{0.25f, 99, 5, 2};
    Pair x = random(dt, Shape{n}, rng), r = random(dt, Shape{n}, rng), y = output(dt, Shape{n});
    ops::dropout_forward(cpu_, x.h(), y.h(), p, r.h());
    ops::dropout_forward(gpu_, x.d(), y.d(), p, r.d());
    EXPECT_TRUE(close(y, 1.0, "dropout_forward + residual"));
    Pair dx = random(dt, Shape{n}, rng);
    ops::dropout_backward(cpu_, x.h(), dx.h(), p, true);
    ops::dropout_backward(gpu_, x.d(), dx.d(), p, true);
    EXPECT_TRUE(close(dx, 1.0, "dropout_backward accumulate"));
    ops::dropout_backward(cpu_, x.h(), x.h(), p);
    ops::dropout_backward(gpu_, x.d(), x.d(), p);
    EXPECT_TRUE(close(x, 1.0, "dropout_backward in place"));
  }
}

// ---- embedding ----------------------------------------------------------------------------------

TEST_F(CudaParity, EmbeddingForwardBackwardWithShardsAndRepeats) {
  for (DType dt : float_dtypes()) {
    std::mt19937 rng(10);
    const std::int64_t n = 4096, c = 768, v = 1000;
    Pair ids = this->ids(Shape{n}, 0, 64, rng);  // many repeats: long runs per id
    Pair table = random(dt, Shape{v, c}, rng);
    Pair out = output(dt, Shape{n, c});
    ops::embedding_forward(cpu_, ids.h(), table.h(), out.h());
    ops::embedding_forward(gpu_, ids.d(), table.d(), out.d());
    EXPECT_TRUE(close(out, 0.0, "embedding_forward (a copy: exact)"));
    Pair pos = this->ids(Shape{n}, 0, 2048, rng);
    Pair ptable = random(dt, Shape{2048, c}, rng);
    ops::embedding_forward(cpu_, pos.h(), ptable.h(), out.h(), 0, true);
    ops::embedding_forward(gpu_, pos.d(), ptable.d(), out.d(), 0, true);
    EXPECT_TRUE(close(out, 1.0, "embedding_forward accumulate"));
    Pair dout = random(dt, Shape{n, c}, rng);
    Pair dtable = output(DType::kF32, Shape{v, c}, false, 0.125);
    ops::embedding_backward(cpu_, ids.h(), dout.h(), dtable.h());
    ops::embedding_backward(gpu_, ids.d(), dout.d(), dtable.d());
    EXPECT_TRUE(close(dtable, 256.0, "embedding_backward"));
    // A vocabulary shard [300, 800): ids outside give zero rows and no gradient.
    Pair sids = this->ids(Shape{n}, 0, v, rng);
    Pair shard = random(dt, Shape{500, c}, rng), sout = output(dt, Shape{n, c});
    ops::embedding_forward(cpu_, sids.h(), shard.h(), sout.h(), 300);
    ops::embedding_forward(gpu_, sids.d(), shard.d(), sout.d(), 300);
    EXPECT_TRUE(close(sout, 0.0, "embedding_forward shard"));
    Pair sgrad = output(DType::kF32, Shape{500, c}, false, 0.0);
    ops::embedding_backward(cpu_, sids.h(), dout.h(), sgrad.h(), 300);
    ops::embedding_backward(gpu_, sids.d(), dout.d(), sgrad.d(), 300);
    EXPECT_TRUE(close(sgrad, 256.0, "embedding_backward shard"));
  }
}

TEST_F(CudaParity, EmbeddingBackwardIsDeterministic) {
  std::mt19937 rng(11);
  Pair ids = this->ids(Shape{8192}, 0, 50, rng);
  Pair dout = random(DType::kBF16, Shape{8192, 768}, rng);
  Pair g1 = output(DType::kF32, Shape{50304, 768}, false), g2 = output(DType::kF32, Shape{50304, 768}, false);
  ops::embedding_backward(gpu_, ids.d(), dout.d(), g1.d());
  ops::embedding_backward(gpu_, ids.d(), dout.d(), g2.d());
  const std::vector<float> a = values(g1.d()), b = values(g2.d());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

// ---- cross entropy, argmax ----------------------------------------------------------------------

TEST_F(CudaParity, CrossEntropyOverThePaddedVocabularyInPlace) {
  for (DType dt : {DType::kBF16, DType::kF32, DType::kF16}) {
    std::mt19937 rng(12);
    const std::int64_t n = 96, v = 50304;
    Pair logits = random(dt, Shape{n, v}, rng, 3.0f);
    Pair targets = ids(Shape{n}, 0, 50257, rng);
    Pair losses = output(DType::kF32, Shape{n}), lse = output(DType::kF32, Shape{n});
    ops::cross_entropy_forward(cpu_, logits.h(), targets.h(), losses.h(), lse.h());
    ops::cross_entropy_forward(gpu_, logits.d(), targets.d(), losses.d(), lse.d());
    EXPECT_TRUE(close(lse, 2048.0, "cross_entropy lse", 1.0 / 16777216.0));
    EXPECT_TRUE(close(losses, 2048.0, "cross_entropy losses", 1.0 / 16777216.0));
    Pair dl = random(DType::kF32, Shape{n}, rng, 0.01f);
    ops::copy(gpu_, lse.h(), lse.d());
    ops::cross_entropy_backward(cpu_, logits.h(), targets.h(), lse.h(), dl.h(), logits.h());
    ops::cross_entropy_backward(gpu_, logits.d(), targets.d(), lse.d(), dl.d(), logits.d());
    EXPECT_TRUE(close(logits, 8.0, "cross_entropy dlogits (in place)"));
  }
  // A vocabulary shard with a strided (column-slice) view and fp32 dlogits from bf16 logits.
  std::mt19937 rng(13);
  Pair full = random(DType::kBF16, Shape{33, 1000}, rng);
  Pair targets = ids(Shape{33}, 0, 1000, rng);
  Pair losses = output(DType::kF32, Shape{33}), lse = output(DType::kF32, Shape{33});
  ops::cross_entropy_forward(cpu_, full.h().slice(1, 500, 500), targets.h(), losses.h(), lse.h(), 500);
  ops::cross_entropy_forward(gpu_, full.d().slice(1, 500, 500), targets.d(), losses.d(), lse.d(), 500);
  EXPECT_TRUE(close(losses, 1024.0, "cross_entropy shard losses", 1.0 / 16777216.0));
  Pair dl = random(DType::kF32, Shape{33}, rng), d = output(DType::kF32, Shape{33, 500});
  ops::copy(gpu_, lse.h(), lse.d());
  ops::cross_entropy_backward(cpu_, full.h().slice(1, 500, 500), targets.h(), lse.h(), dl.h(), d.h(), 500);
  ops::cross_entropy_backward(gpu_, full.d().slice(1, 500, 500), targets.d(), lse.d(), dl.d(), d.d(), 500);
  EXPECT_TRUE(close(d, 64.0, "cross_entropy shard dlogits"));
}

TEST_F(CudaParity, ArgmaxTiesNanAndInfinities) {
  std::vector<float> v(6 * 50304);
  std::mt19937 rng(14);
  std::normal_distribution<float> dist;
  for (auto& x : v) x = dist(rng);
  v[1 * 50304 + 10] = 9.0f;  // a tie: the lower index wins
  v[1 * 50304 + 20000] = 9.0f;
  v[2 * 50304 + 0] = std::nanf("");  // NaN in column 0: the reference returns 0
  v[3 * 50304 + 7] = std::nanf("");  // NaN elsewhere is ignored
  for (int j = 0; j < 50304; ++j) v[4 * 50304 + j] = -INFINITY;
  v[5 * 50304 + 50303] = INFINITY;
  for (DType dt : float_dtypes()) {
    Pair x = from_values(dt, Shape{6, 50304}, v);
    Pair out = output(DType::kI32, Shape{6});
    ops::argmax(cpu_, x.h().slice(1, 0, 50257), out.h());
    ops::argmax(gpu_, x.d().slice(1, 0, 50257), out.d());
    EXPECT_EQ(int_values(out.d()), int_values(out.h())) << dtype_name(dt);
    ops::argmax(cpu_, x.h(), out.h());
    ops::argmax(gpu_, x.d(), out.d());
    EXPECT_EQ(int_values(out.d()), int_values(out.h())) << dtype_name(dt);
  }
}

// ---- optimizer ----------------------------------------------------------------------------------

TEST_F(CudaParity, AdamWSingleAndMultiTensor) {
  std::mt19937 rng(15);
  const std::vector<std::int64_t> sizes{768 * 2304, 2304, 1, 4097, 768 * 3072 + 3};
  std::vector<Pair> param, grad, m, v, model;
  std::vector<ops::AdamWTensors> gh, gd;
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    const Shape s{sizes[t]};
    param.push_back(random(DType::kF32, s, rng, 0.02f));
    grad.push_back(random(DType::kF32, s, rng, 1e-3f));
    m.push_back(random(DType::kF32, s, rng, 1e-3f));
    std::vector<float> vv(static_cast<std::size_t>(sizes[t]));
    std::normal_distribution<float> dist;
    for (auto& x : vv) x = std::abs(dist(rng)) * 1e-6f;
    v.push_back(from_values(DType::kF32, s, vv));
    model.push_back(output(DType::kBF16, s));
  }
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    const float wd = t % 2 == 0 ? 0.1f : 0.0f;
    gh.push_back({param[t].h(), grad[t].h(), m[t].h(), v[t].h(), model[t].h(), wd});
    gd.push_back({param[t].d(), grad[t].d(), m[t].d(), v[t].d(), model[t].d(), wd});
  }
  ops::AdamWParams p;
  p.lr = 6e-4f;
  p.beta2 = 0.95f;
  p.step = 7;
  p.grad_scale = 0.8f;
  for (int step = 0; step < 3; ++step) {
    ops::adamw_step_multi(cpu_, gh, p);
    ops::adamw_step_multi(gpu_, gd, p);
  }
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    EXPECT_TRUE(close(param[t], 64.0, "adamw param"));
    EXPECT_TRUE(close(m[t], 64.0, "adamw exp_avg"));
    EXPECT_TRUE(close(v[t], 64.0, "adamw exp_avg_sq"));
    EXPECT_TRUE(close(model[t], 1.0, "adamw bf16 model copy"));
  }
  // The single-tensor op is the same kernel with one entry; without a model copy, Adam (L2) mode.
  p.decoupled_weight_decay = false;
  p.weight_decay = 0.01f;
  ops::adamw_step(cpu_, param[3].h(), grad[3].h(), m[3].h(), v[3].h(), p);
  ops::adamw_step(gpu_, param[3].d(), grad[3].d(), m[3].d(), v[3].d(), p);
  EXPECT_TRUE(close(param[3], 64.0, "adam (L2) param"));
}

// ---- elementwise and reductions -----------------------------------------------------------------

TEST_F(CudaParity, FillCopyAddScaleAcrossDtypesAndDevices) {
  std::mt19937 rng(16);
  const std::vector<DType> all{DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kU16};
  for (DType src : all)
    for (DType dst : all) {
      // Integers stay small and non-negative so every conversion is defined.
      std::vector<float> vals(1000 * 3);
      std::uniform_int_distribution<int> small(0, 300);
      for (auto& x : vals)
        x = is_floating(src) ? std::abs(std::normal_distribution<float>(0, 50)(rng)) : static_cast<float>(small(rng));
      Pair s = from_values(src, Shape{1000, 3}, vals);
      Pair d = output(dst, Shape{3, 1000}, false);
      // A transposed (strided) source: the strided conversion kernel.
      ops::copy(cpu_, s.h().transpose(0, 1), d.h());
      ops::copy(gpu_, s.d().transpose(0, 1), d.d());
      EXPECT_EQ(values(d.d()), values(d.h())) << dtype_name(src) << " -> " << dtype_name(dst);
      // Host -> device and device -> host with conversion.
      Pair e = output(dst, Shape{1000, 3}, false);
      ops::copy(gpu_, s.h(), e.d());
      ops::copy(cpu_, s.h(), e.h());
      EXPECT_EQ(values(e.d()), values(e.h())) << "host -> device " << dtype_name(src) << " -> " << dtype_name(dst);
      Buffer back(host_alloc_, dst, Shape{1000, 3});
      ops::copy(gpu_, s.d(), back);
      EXPECT_EQ(values(back), values(e.h())) << "device -> host " << dtype_name(src) << " -> " << dtype_name(dst);
    }
  for (DType dt : all) {
    Pair x = output(dt, Shape{12345}, false);
    ops::fill(cpu_, x.h(), 3.0);
    ops::fill(gpu_, x.d(), 3.0);
    EXPECT_EQ(values(x.d()), values(x.h())) << "fill " << dtype_name(dt);
    ops::fill(gpu_, x.d().slice(0, 1, 12343), 7.0);  // unaligned: the scalar fill
    ops::fill(cpu_, x.h().slice(0, 1, 12343), 7.0);
    EXPECT_EQ(values(x.d()), values(x.h())) << "fill slice " << dtype_name(dt);
  }
  for (DType dt : float_dtypes()) {
    Pair a = random(dt, Shape{100003}, rng), b = random(dt, Shape{100003}, rng), o = output(dt, Shape{100003});
    ops::add(cpu_, a.h(), b.h(), o.h());
    ops::add(gpu_, a.d(), b.d(), o.d());
    EXPECT_TRUE(close(o, 0.0, "add (exact)"));
    ops::scale(cpu_, a.h(), 0.37f);
    ops::scale(gpu_, a.d(), 0.37f);
    EXPECT_TRUE(close(a, 0.0, "scale (exact)"));
  }
}

TEST_F(CudaParity, SumSquaresSingleMultiAndDeterministic) {
  std::mt19937 rng(17);
  std::vector<Pair> xs;
  for (std::int64_t n : {1'000'000L, 1L, 4096L, 4097L, 123'457L}) xs.push_back(random(DType::kF32, Shape{n}, rng));
  xs.push_back(random(DType::kBF16, Shape{70000}, rng));
  Pair out = output(DType::kF32, Shape{1}, false, 2.0);
  ops::sum_squares(cpu_, xs[0].h(), out.h(), true);
  ops::sum_squares(gpu_, xs[0].d(), out.d(), true);
  EXPECT_TRUE(close(out, 64.0, "sum_squares"));
  std::vector<TensorView> hv, dv;
  for (auto& x : xs) {
    hv.push_back(x.h());
    dv.push_back(x.d());
  }
  ops::sum_squares_multi(cpu_, hv, out.h());
  ops::sum_squares_multi(gpu_, dv, out.d());
  EXPECT_TRUE(close(out, 64.0, "sum_squares_multi"));
  const float first = values(out.d())[0];
  ops::sum_squares_multi(gpu_, dv, out.d());
  EXPECT_EQ(values(out.d())[0], first) << "the same bits on every run";
  // Inf propagates (the fp16 overflow check relies on it).
  Pair inf = from_values(DType::kF32, Shape{3}, {1.0f, INFINITY, 2.0f});
  ops::sum_squares(gpu_, inf.d(), out.d());
  EXPECT_TRUE(std::isinf(values(out.d())[0]));
}

TEST_F(CudaParity, CachingAllocatorStopsAllocatingAfterTheFirstStep) {
  std::mt19937 rng(18);
  Pair x = random(DType::kBF16, Shape{1024, 768}, rng), w = random(DType::kBF16, Shape{768}, rng),
       b = random(DType::kBF16, Shape{768}, rng);
  auto step = [&] {
    Buffer y(*dev_alloc_, DType::kBF16, Shape{1024, 768}), mean(*dev_alloc_, DType::kF32, Shape{1024}),
        rstd(*dev_alloc_, DType::kF32, Shape{1024}), dw(*dev_alloc_, DType::kF32, Shape{768}),
        db(*dev_alloc_, DType::kF32, Shape{768}), out(*dev_alloc_, DType::kF32, Shape{1});
    ops::fill(gpu_, dw, 0.0);
    ops::fill(gpu_, db, 0.0);
    ops::layernorm_forward(gpu_, x.d(), w.d(), b.d(), y, mean, rstd, 1e-5f);
    ops::layernorm_backward(gpu_, x.d(), w.d(), mean, rstd, y, y, dw, db, false);  // uses a workspace
    ops::sum_squares(gpu_, dw, out);
  };
  step();
  cuda_->synchronize();
  const std::uint64_t after_first = dev_alloc_->stats().system_allocations;
  for (int i = 0; i < 5; ++i) step();
  cuda_->synchronize();
  EXPECT_EQ(dev_alloc_->stats().system_allocations, after_first);
  EXPECT_GT(dev_alloc_->stats().peak_in_use, 0u);
}

}  // namespace
}  // namespace bignlp::parity
