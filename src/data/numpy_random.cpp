#include "bignlp/data/numpy_random.h"

#include <cmath>

namespace bignlp::data {

std::uint64_t NumpyRandomState::random_interval(std::uint64_t max) {
  if (max == 0) return 0;
  std::uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  std::uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

double NumpyRandomState::random_sample() {
  const std::uint32_t a = next_uint32() >> 5;
  const std::uint32_t b = next_uint32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

std::int64_t NumpyRandomState::geometric(double p) {
  if (p >= 0.333333333333333333333333) {
    // Sequential search: the number of Bernoulli(p) trials until the first success.
    std::int64_t x = 1;
    double u = random_sample();
    double prod = p;
    double sum = prod;
    const double q = 1.0 - p;
    while (u > sum) {
      prod *= q;
      sum += prod;
      ++x;
    }
    return x;
  }
  // Inversion; numpy's legacy path computes ceil(log1p(-U) / log(1 - p)).
  return static_cast<std::int64_t>(std::ceil(std::log1p(-random_sample()) / std::log(1.0 - p)));
}

}  // namespace bignlp::data
