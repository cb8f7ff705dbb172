// Helpers for the op tests: host tensors from vectors, random data, finite-difference gradients.
#pragma once

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::ops::testing {

/// An fp32 host tensor backed by a vector.
struct HostTensor {
  std::vector<float> data;
  Shape shape;
  HostTensor() = default;
  explicit HostTensor(Shape s, float value = 0.0f) : data(static_cast<std::size_t>(s.numel()), value), shape(s) {}
  TensorView view() { return TensorView(data.data(), DType::kF32, shape); }
  float& operator[](std::size_t i) { return data[i]; }
};

inline HostTensor random_tensor(Shape shape, std::mt19937& rng, float stddev = 1.0f) {
  HostTensor t(shape);
  std::normal_distribution<float> dist(0.0f, stddev);
  for (auto& v : t.data) v = dist(rng);
  return t;
}

inline std::vector<std::int32_t> random_ids(std::size_t n, int vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(0, vocab - 1);
  std::vector<std::int32_t> ids(n);
  for (auto& v : ids) v = dist(rng);
  return ids;
}

inline TensorView ids_view(std::vector<std::int32_t>& ids) {
  return TensorView(ids.data(), DType::kI32, Shape{static_cast<std::int64_t>(ids.size())});
}

/// Central finite difference of a scalar function with respect to every element of `x`.
inline std::vector<double> numeric_grad(HostTensor& x, const std::function<double()>& f, float eps = 1e-2f) {
  std::vector<double> g(x.data.size());
  for (std::size_t i = 0; i < x.data.size(); ++i) {
    const float saved = x.data[i];
    x.data[i] = saved + eps;
    const double fp = f();
    x.data[i] = saved - eps;
    const double fm = f();
    x.data[i] = saved;
    g[i] = (fp - fm) / (2.0 * eps);
  }
  return g;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

/// |analytic - numeric| <= atol + rtol * |numeric| elementwise (gtest assertion helper).
inline ::testing::AssertionResult grads_close(const std::vector<float>& analytic, const std::vector<double>& numeric,
                                              double atol = 2e-3, double rtol = 2e-2) {
  if (analytic.size() != numeric.size()) return ::testing::AssertionFailure() << "size mismatch";
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    if (std::abs(analytic[i] - numeric[i]) > atol + rtol * std::abs(numeric[i]))
      return ::testing::AssertionFailure() << "element " << i << ": analytic " << analytic[i] << " vs numeric "
                                           << numeric[i];
  }
  return ::testing::AssertionSuccess();
}

}  // namespace bignlp::ops::testing
