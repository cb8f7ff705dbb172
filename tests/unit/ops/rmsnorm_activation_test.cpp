// RMSNorm and the plain and gated activations against straightforward double-precision formulas
// and central finite differences; bf16 inputs with a bf16 tolerance; strided gate/up halves;
// thread-count invariance; CUDA tensors throw until a CUDA implementation exists.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "bignlp/tensor/half.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::grads_close;
using testing::HostTensor;
using testing::numeric_grad;
using testing::random_tensor;

std::vector<BFloat16> to_bf16(const std::vector<float>& x) {
  std::vector<BFloat16> r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = bf16_from_float(x[i]);
  return r;
}

std::vector<float> widened(const std::vector<BFloat16>& x) {
  std::vector<float> r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = float_from_bf16(x[i]);
  return r;
}

TensorView bf16_view(std::vector<BFloat16>& x, Shape shape) { return TensorView(x.data(), DType::kBF16, shape); }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

/// y = x / sqrt(mean(x^2) + eps) * w per row, in double; also the rstd of each row.
std::vector<double> rmsnorm_reference(const std::vector<float>& x, const std::vector<float>& w, std::int64_t n,
                                      std::int64_t c, double eps, std::vector<double>* rstd) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < n; ++r) {
    double ms = 0.0;
    for (std::int64_t j = 0; j < c; ++j) ms += static_cast<double>(x[r * c + j]) * x[r * c + j];
    const double s = 1.0 / std::sqrt(ms / static_cast<double>(c) + eps);
    for (std::int64_t j = 0; j < c; ++j) y[r * c + j] = x[r * c + j] * s * w[j];
    if (rstd) rstd->push_back(s);
  }
  return y;
}

TEST(RmsNormTest, ForwardMatchesDoubleReferenceAndMayRunInPlace) {
  std::mt19937 rng(31);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 5, c = 12;
  HostTensor x = random_tensor(Shape{n, c}, rng, 2.0f), w = random_tensor(Shape{c}, rng), y(Shape{n, c}),
             rstd(Shape{n});
  rmsnorm_forward(ctx, x.view(), w.view(), y.view(), rstd.view(), 1e-6f);
  std::vector<double> s;
  const auto expected = rmsnorm_reference(x.data, w.data, n, c, 1e-6, &s);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-6 * (1 + std::abs(expected[i])));
  for (std::int64_t r = 0; r < n; ++r) EXPECT_NEAR(rstd[r], s[r], 1e-6 * s[r]);
  HostTensor inplace = x;
  rmsnorm_forward(ctx, inplace.view(), w.view(), inplace.view(), {}, 1e-6f);
  EXPECT_EQ(inplace.data, y.data);
}

TEST(RmsNormTest, BackwardMatchesFiniteDifferencesAndAccumulates) {
  std::mt19937 rng(32);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 3, c = 8;
  HostTensor x = random_tensor(Shape{n, c}, rng), w = random_tensor(Shape{c}, rng), r = random_tensor(Shape{n, c}, rng);
  auto loss = [&] {
    HostTensor y(Shape{n, c});
    rmsnorm_forward(ctx, x.view(), w.view(), y.view(), {}, 1e-5f);
    return testing::dot(y.data, r.data);
  };
  HostTensor y(Shape{n, c}), rstd(Shape{n});
  rmsnorm_forward(ctx, x.view(), w.view(), y.view(), rstd.view(), 1e-5f);
  HostTensor dx(Shape{n, c}, 100.0f), dw(Shape{c}, 1.0f);
  rmsnorm_backward(ctx, x.view(), w.view(), rstd.view(), r.view(), dx.view(), dw.view(), /*accumulate_dx=*/true);
  for (auto& v : dx.data) v -= 100.0f;
  for (auto& v : dw.data) v -= 1.0f;
  EXPECT_TRUE(grads_close(dx.data, numeric_grad(x, loss)));
  EXPECT_TRUE(grads_close(dw.data, numeric_grad(w, loss)));
}

TEST(RmsNormTest, WorkedExampleFromTheReferenceComment) {
  const OpContext ctx = OpContext::cpu();
  HostTensor x(Shape{1, 2}), w(Shape{2}, 1.0f), y(Shape{1, 2}), rstd(Shape{1}), dy(Shape{1, 2}), dx(Shape{1, 2}),
      dw(Shape{2});
  x.data = {3.0f, 4.0f};
  dy.data = {1.0f, 0.0f};
  rmsnorm_forward(ctx, x.view(), w.view(), y.view(), rstd.view(), 1e-12f);
  rmsnorm_backward(ctx, x.view(), w.view(), rstd.view(), dy.view(), dx.view(), dw.view());
  const double s = 1.0 / std::sqrt(12.5);
  EXPECT_NEAR(y[0], 3 * s, 1e-6);
  EXPECT_NEAR(dx[0], 0.64 * s, 1e-6);
  EXPECT_NEAR(dx[1], -0.48 * s, 1e-6);
  EXPECT_NEAR(dw[0], 3 * s, 1e-6);  // dy * xhat
  EXPECT_EQ(dw[1], 0.0f);
}

TEST(RmsNormTest, Bf16MatchesDoubleReferenceWithinBf16Rounding) {
  std::mt19937 rng(33);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 4, c = 64;
  HostTensor x32 = random_tensor(Shape{n, c}, rng), w32 = random_tensor(Shape{c}, rng),
             dy32 = random_tensor(Shape{n, c}, rng);
  std::vector<BFloat16> x = to_bf16(x32.data), w = to_bf16(w32.data), dy = to_bf16(dy32.data), y(x.size()),
                        dx(x.size());
  HostTensor rstd(Shape{n}), dw(Shape{c});
  rmsnorm_forward(ctx, bf16_view(x, Shape{n, c}), bf16_view(w, Shape{c}), bf16_view(y, Shape{n, c}), rstd.view(),
                  1e-6f);
  rmsnorm_backward(ctx, bf16_view(x, Shape{n, c}), bf16_view(w, Shape{c}), rstd.view(), bf16_view(dy, Shape{n, c}),
                   bf16_view(dx, Shape{n, c}), dw.view());
  const std::vector<float> xf = widened(x), wf = widened(w), gf = widened(dy), yf = widened(y), dxf = widened(dx);
  std::vector<double> s;
  const auto expected = rmsnorm_reference(xf, wf, n, c, 1e-6, &s);
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(yf[i], expected[i], std::abs(expected[i]) / 256 + 1e-6) << i;  // one bf16 rounding
  // Backward in double: dx = s (g - xhat mean(g xhat)), g = dy w; dw = sum_rows dy xhat.
  std::vector<double> dw_ref(c, 0.0);
  for (std::int64_t r = 0; r < n; ++r) {
    double mgx = 0.0;
    for (std::int64_t j = 0; j < c; ++j) mgx += static_cast<double>(gf[r * c + j]) * wf[j] * xf[r * c + j] * s[r];
    mgx /= static_cast<double>(c);
    for (std::int64_t j = 0; j < c; ++j) {
      const double xhat = xf[r * c + j] * s[r];
      const double ref = s[r] * (gf[r * c + j] * wf[j] - xhat * mgx);
      EXPECT_NEAR(dxf[r * c + j], ref, std::abs(ref) / 128 + 1e-4) << r << "," << j;
      dw_ref[j] += gf[r * c + j] * xhat;
    }
  }
  for (std::int64_t j = 0; j < c; ++j) EXPECT_NEAR(dw[j], dw_ref[j], 1e-5 * (1 + std::abs(dw_ref[j])));
}

TEST(RmsNormTest, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(34);
  const std::int64_t n = 256, c = 384;
  HostTensor x = random_tensor(Shape{n, c}, rng), w = random_tensor(Shape{c}, rng), dy = random_tensor(Shape{n, c}, rng);
  std::vector<float> results[2];
  for (int threads : {1, 2}) {
    const OpContext ctx = OpContext::cpu(threads);
    HostTensor y(Shape{n, c}), rstd(Shape{n}), dx(Shape{n, c}), dw(Shape{c});
    rmsnorm_forward(ctx, x.view(), w.view(), y.view(), rstd.view(), 1e-5f);
    rmsnorm_backward(ctx, x.view(), w.view(), rstd.view(), dy.view(), dx.view(), dw.view());
    for (const HostTensor* t : {&y, &rstd, &dx, &dw})
      results[threads - 1].insert(results[threads - 1].end(), t->data.begin(), t->data.end());
  }
  EXPECT_TRUE(results[0] == results[1]);
}

// ---------------------------------------------------------------------------------------------
// Activations

constexpr Activation kActivations[] = {Activation::kGeluTanh, Activation::kGeluErf, Activation::kRelu,
                                       Activation::kSilu};

const char* name_of(Activation a) {
  switch (a) {
    case Activation::kGeluTanh: return "gelu_tanh";
    case Activation::kGeluErf: return "gelu_erf";
    case Activation::kRelu: return "relu";
    case Activation::kSilu: return "silu";
  }
  return "?";
}

double act_ref(double x, Activation a) {
  constexpr double kPi = 3.14159265358979323846;
  switch (a) {
    case Activation::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x)));
    case Activation::kGeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::kRelu: return x > 0.0 ? x : 0.0;
    case Activation::kSilu: return x / (1.0 + std::exp(-x));
  }
  return 0.0;
}

/// The derivative by a central difference in double (h = 1e-5): independent of the op's formulas.
double act_derivative_ref(double x, Activation a) {
  if (a == Activation::kRelu) return x > 0.0 ? 1.0 : 0.0;
  const double h = 1e-5;
  return (act_ref(x + h, a) - act_ref(x - h, a)) / (2 * h);
}

TEST(ActivationTest, PlainMatchesDoubleFormulasAndGeluDelegates) {
  std::mt19937 rng(41);
  const OpContext ctx = OpContext::cpu();
  HostTensor x = random_tensor(Shape{4, 16}, rng, 2.5f), dy = random_tensor(Shape{4, 16}, rng);
  x[0] = 0.0f;  // relu'(0) = 0, as PyTorch
  for (Activation a : kActivations) {
    SCOPED_TRACE(name_of(a));
    HostTensor y(x.shape), dx(x.shape);
    activation_forward(ctx, x.view(), y.view(), a);
    activation_backward(ctx, x.view(), dy.view(), dx.view(), a);
    for (std::size_t i = 0; i < x.data.size(); ++i) {
      const double ry = act_ref(x[i], a), rdx = act_derivative_ref(x[i], a) * dy[i];
      EXPECT_NEAR(y[i], ry, 1e-6 * (1 + std::abs(ry))) << "x = " << x[i];
      EXPECT_NEAR(dx[i], rdx, 2e-5 * (1 + std::abs(rdx))) << "x = " << x[i];
    }
    if (a == Activation::kGeluTanh || a == Activation::kGeluErf) {
      const GeluApprox approx = a == Activation::kGeluTanh ? GeluApprox::kTanh : GeluApprox::kErf;
      HostTensor yg(x.shape), dxg(x.shape);
      gelu_forward(ctx, x.view(), yg.view(), approx);
      gelu_backward(ctx, x.view(), dy.view(), dxg.view(), approx);
      EXPECT_EQ(y.data, yg.data);
      EXPECT_EQ(dx.data, dxg.data);
    }
  }
  HostTensor zero(Shape{1}, 0.0f), one(Shape{1}, 1.0f), d(Shape{1});
  activation_backward(ctx, zero.view(), one.view(), d.view(), Activation::kRelu);
  EXPECT_EQ(d[0], 0.0f);
}

// gate and up are the column halves of one (N, 2F) projection, dgate and dup the halves of one
// (N, 2F) gradient (Megatron's fused GLU layout).
TEST(ActivationTest, GatedOnFusedHalvesMatchesDoubleFormulasAndFiniteDifferences) {
  std::mt19937 rng(42);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 3, f = 5;
  for (Activation a : kActivations) {
    SCOPED_TRACE(name_of(a));
    HostTensor fused = random_tensor(Shape{n, 2 * f}, rng, 1.5f), r = random_tensor(Shape{n, f}, rng);
    if (a == Activation::kRelu)  // keep gates away from the kink for the finite differences
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < f; ++j)
          if (std::abs(fused[i * 2 * f + j]) < 0.05f) fused[i * 2 * f + j] = 0.5f;
    const Shape half{n, f}, st{2 * f, 1};
    const TensorView gate(fused.data.data(), DType::kF32, half, st, Device::cpu());
    const TensorView up(fused.data.data() + f, DType::kF32, half, st, Device::cpu());
    HostTensor y(half), dfused(Shape{n, 2 * f}, NAN);
    gated_activation_forward(ctx, gate, up, y.view(), a);
    const TensorView dgate(dfused.data.data(), DType::kF32, half, st, Device::cpu());
    const TensorView dup(dfused.data.data() + f, DType::kF32, half, st, Device::cpu());
    gated_activation_backward(ctx, gate, up, r.view(), dgate, dup, a);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < f; ++j) {
        const double g = fused[i * 2 * f + j], u = fused[i * 2 * f + f + j], dy = r[i * f + j];
        EXPECT_NEAR(y[i * f + j], act_ref(g, a) * u, 1e-5 * (1 + std::abs(act_ref(g, a) * u)));
        EXPECT_NEAR(dfused[i * 2 * f + j], act_derivative_ref(g, a) * u * dy, 5e-5);
        EXPECT_NEAR(dfused[i * 2 * f + f + j], act_ref(g, a) * dy, 1e-5);
      }
    auto loss = [&] {
      HostTensor out(half);
      gated_activation_forward(ctx, gate, up, out.view(), a);
      return testing::dot(out.data, r.data);
    };
    EXPECT_TRUE(grads_close(dfused.data, numeric_grad(fused, loss, 1e-3f)));
  }
}

TEST(ActivationTest, GatedBf16WithinBf16Rounding) {
  std::mt19937 rng(43);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 8, f = 32;
  HostTensor g32 = random_tensor(Shape{n, f}, rng, 2.0f), u32 = random_tensor(Shape{n, f}, rng),
             d32 = random_tensor(Shape{n, f}, rng);
  std::vector<BFloat16> g = to_bf16(g32.data), u = to_bf16(u32.data), dy = to_bf16(d32.data), y(g.size()),
                        dg(g.size()), du(g.size());
  const Shape s{n, f};
  for (Activation a : kActivations) {
    SCOPED_TRACE(name_of(a));
    gated_activation_forward(ctx, bf16_view(g, s), bf16_view(u, s), bf16_view(y, s), a);
    gated_activation_backward(ctx, bf16_view(g, s), bf16_view(u, s), bf16_view(dy, s), bf16_view(dg, s),
                              bf16_view(du, s), a);
    const std::vector<float> gf = widened(g), uf = widened(u), df = widened(dy), yf = widened(y), dgf = widened(dg),
                             duf = widened(du);
    for (std::size_t i = 0; i < gf.size(); ++i) {
      const double ry = act_ref(gf[i], a) * uf[i], rdg = act_derivative_ref(gf[i], a) * uf[i] * df[i],
                   rdu = act_ref(gf[i], a) * df[i];
      EXPECT_NEAR(yf[i], ry, std::abs(ry) / 128 + 1e-6) << i;
      EXPECT_NEAR(dgf[i], rdg, std::abs(rdg) / 128 + 1e-4) << i;
      EXPECT_NEAR(duf[i], rdu, std::abs(rdu) / 128 + 1e-6) << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Argument checks

TEST(RmsNormActivationTest, CudaTensorsThrowNoCudaImplementationAndBadViewsAreRejected) {
  OpContext cuda_ctx;
  cuda_ctx.device = Device::cuda(0);
  HostTensor x(Shape{2, 4}), w(Shape{4}), y(Shape{2, 4}), rstd(Shape{2});
  auto on_cuda = [](HostTensor& t) {
    return TensorView(t.data.data(), DType::kF32, t.shape, t.shape.contiguous_strides(), Device::cuda(0));
  };
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  EXPECT_THAT(error_of([&] { rmsnorm_forward(cuda_ctx, on_cuda(x), on_cuda(w), on_cuda(y), on_cuda(rstd), 1e-5f); }),
              AllOf(HasSubstr("rmsnorm_forward"), HasSubstr("no CUDA implementation")));
  EXPECT_THAT(error_of([&] { activation_forward(cuda_ctx, on_cuda(x), on_cuda(y), Activation::kSilu); }),
              AllOf(HasSubstr("activation_forward"), HasSubstr("no CUDA implementation")));
  EXPECT_THAT(
      error_of([&] { gated_activation_forward(cuda_ctx, on_cuda(x), on_cuda(x), on_cuda(y), Activation::kSilu); }),
      AllOf(HasSubstr("gated_activation_forward"), HasSubstr("no CUDA implementation")));
  // Overlapping rows (leading stride < F) are not a valid gate.
  const OpContext ctx = OpContext::cpu();
  HostTensor buf(Shape{16});
  const TensorView overlapping(buf.data.data(), DType::kF32, Shape{2, 4}, Shape{2, 1}, Device::cpu());
  EXPECT_THAT(error_of([&] { gated_activation_forward(ctx, overlapping, x.view(), y.view(), Activation::kRelu); }),
              HasSubstr("tensor 'gate' needs unit stride in the last dimension and rows that do not overlap"));
  EXPECT_THAT(error_of([&] { rmsnorm_forward(ctx, x.view(), w.view(), y.view(), rstd.view(), 0.0f); }),
              HasSubstr("eps must be positive"));
}

}  // namespace
}  // namespace bignlp::ops
