// Helpers of the parity tests: a CUDA fixture that skips without a device, tensor pairs with the
// same contents on the host and the device, and the dtype-aware comparison
//   |gpu - cpu| <= k * eps(dtype) * (|cpu| + rms(cpu))
// (eps: fp32 2^-24, bf16 2^-8, fp16 2^-11 -- one rounding of the stored dtype; the rms term keeps
// elements near zero after cancellation from failing on absolute noise). NaN never passes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bignlp/core/environment.h"
#include "bignlp/ops/cuda_context.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"
#include "bignlp/tensor/cuda_allocator.h"

namespace bignlp::parity {

inline double eps_of(DType t) {
  switch (t) {
    case DType::kBF16: return 1.0 / 256.0;
    case DType::kF16: return 1.0 / 2048.0;
    default: return 1.0 / 16777216.0;
  }
}

/// Host and device copies of the same values.
struct Pair {
  Buffer host, dev;
  TensorView h() const { return host.view(); }
  TensorView d() const { return dev.view(); }
};

class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ops::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cuda_ = std::make_unique<ops::CudaContext>(ops::cuda_options_from_environment(process_environment()));
    dev_alloc_ = make_cuda_allocator(cuda_->device);
    gpu_ = cuda_->op_context(*dev_alloc_);
    cpu_ = ops::OpContext::cpu();
    cpu_.allocator = &host_alloc_;
  }
  void TearDown() override {
    if (cuda_) cuda_->synchronize();
  }

  /// Normal(0, stddev) values rounded to `dtype`, on both sides.
  Pair random(DType dtype, Shape shape, std::mt19937& rng, float stddev = 1.0f, float mean = 0.0f) {
    std::vector<float> v(static_cast<std::size_t>(shape.numel()));
    std::normal_distribution<float> dist(mean, stddev);
    for (auto& x : v) x = dist(rng);
    return from_values(dtype, shape, v);
  }
  Pair from_values(DType dtype, Shape shape, const std::vector<float>& v) {
    Pair p{Buffer(host_alloc_, dtype, shape), Buffer(*dev_alloc_, dtype, shape)};
    ops::copy(cpu_, TensorView(const_cast<float*>(v.data()), DType::kF32, shape), p.host);
    ops::copy(gpu_, p.host, p.dev);
    return p;
  }
  Pair ids(Shape shape, int low, int high, std::mt19937& rng) {
    std::vector<std::int32_t> v(static_cast<std::size_t>(shape.numel()));
    std::uniform_int_distribution<int> dist(low, high - 1);
    for (auto& x : v) x = dist(rng);
    Pair p{Buffer(host_alloc_, DType::kI32, shape), Buffer(*dev_alloc_, DType::kI32, shape)};
    ops::copy(cpu_, TensorView(v.data(), DType::kI32, shape), p.host);
    ops::copy(gpu_, p.host, p.dev);
    return p;
  }
  /// An output pair: the host side zeroed, the device side poisoned with NaN (so an element the
  /// kernel never writes fails the comparison), or both set to `value` for accumulating outputs.
  Pair output(DType dtype, Shape shape, bool poison = true, double value = 0.0) {
    Pair p{Buffer(host_alloc_, dtype, shape), Buffer(*dev_alloc_, dtype, shape)};
    ops::fill(cpu_, p.host, value);
    ops::fill(gpu_, p.dev, poison && is_floating(dtype) ? std::nan("") : value);
    return p;
  }
  /// Any tensor as host fp32 values.
  std::vector<float> values(const TensorView& t) {
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    const TensorView dst(out.data(), DType::kF32, t.shape());
    ops::copy(t.device().is_cuda() ? gpu_ : cpu_, t, dst);
    return out;
  }
  std::vector<std::int32_t> int_values(const TensorView& t) {
    std::vector<std::int32_t> out(static_cast<std::size_t>(t.numel()));
    ops::copy(t.device().is_cuda() ? gpu_ : cpu_, t, TensorView(out.data(), DType::kI32, t.shape()));
    return out;
  }

  /// The dtype-aware comparison of the file comment; `k` scales the tolerance (rounding steps the
  /// op may differ by), `eps` overrides eps(dtype) (e.g. TF32 GEMMs).
  ::testing::AssertionResult close(const Pair& p, double k, const std::string& what, double eps = 0.0) {
    return close(values(p.d()), values(p.h()), eps > 0.0 ? eps : eps_of(p.dev.dtype()), k, what);
  }
  static ::testing::AssertionResult close(const std::vector<float>& gpu, const std::vector<float>& cpu, double eps,
                                          double k, const std::string& what) {
    if (gpu.size() != cpu.size()) return ::testing::AssertionFailure() << what << ": size mismatch";
    double rms = 0.0;
    for (float c : cpu) rms += static_cast<double>(c) * c;
    rms = std::sqrt(rms / static_cast<double>(cpu.empty() ? 1 : cpu.size()));
    std::size_t bad = 0, first = 0;
    double worst = 0.0;
    for (std::size_t i = 0; i < gpu.size(); ++i) {
      const double err = std::abs(static_cast<double>(gpu[i]) - cpu[i]);
      const double tol = k * eps * (std::abs(static_cast<double>(cpu[i])) + rms) + 1e-30;
      if (!(err <= tol) || std::isnan(gpu[i]) != std::isnan(cpu[i])) {
        if (bad++ == 0) first = i;
      }
      if (std::isfinite(err)) worst = std::max(worst, err / (eps * (std::abs(static_cast<double>(cpu[i])) + rms) + 1e-30));
    }
    if (bad == 0) return ::testing::AssertionSuccess() << what << ": worst error " << worst << " eps units";
    return ::testing::AssertionFailure() << what << ": " << bad << " of " << gpu.size()
                                         << " elements outside tolerance (k=" << k << ", eps=" << eps << "); first at "
                                         << first << ": gpu " << gpu[first] << " cpu " << cpu[first] << " (rms " << rms
                                         << "); worst finite error " << worst << " eps units";
  }

  std::unique_ptr<ops::CudaContext> cuda_;
  std::unique_ptr<CachingAllocator> dev_alloc_;
  CpuAllocator host_alloc_;
  ops::OpContext gpu_, cpu_;
};

/// The floating dtypes every op is checked in.
inline const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> all{DType::kF32, DType::kBF16, DType::kF16};
  return all;
}

}  // namespace bignlp::parity
