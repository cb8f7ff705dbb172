// numpy.random.RandomState(seed), bit-exact for the calls Megatron's data pipeline makes.
//
// RandomState is MT19937 seeded with the standard init_genrand(seed) (the same state as
// std::mt19937(seed)). Implemented here:
//   - random_interval(max): numpy's legacy bounded integer; mask = smallest all-ones >= max, draw
//     32-bit outputs (64-bit, high word first, when max > 0xFFFFFFFF) & mask until <= max.
//   - shuffle(span): legacy Fisher-Yates from the end: for i = n-1..1, j = random_interval(i),
//     swap(a[i], a[j]). Also what RandomState.shuffle does to a Python list.
//   - random_sample(): the 53-bit double ((a >> 5) * 2^26 + (b >> 6)) / 2^53.
//   - geometric(p): legacy search (p >= 1/3) / inversion (p < 1/3), for T5 span lengths.
// Not thread-safe (one generator per user); deterministic by construction.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>

namespace bignlp::data {

class NumpyRandomState {
 public:
  /// numpy.random.RandomState(seed) for an integer seed in [0, 2^32).
  explicit NumpyRandomState(std::uint32_t seed) : mt_(seed) {}

  /// The next raw 32-bit output of MT19937.
  std::uint32_t next_uint32() { return static_cast<std::uint32_t>(mt_()); }
  /// Two 32-bit outputs, high word first.
  std::uint64_t next_uint64() {
    const std::uint64_t hi = next_uint32();
    return (hi << 32) | next_uint32();
  }
  /// Uniform integer in [0, max] by numpy's masked rejection.
  std::uint64_t random_interval(std::uint64_t max);
  /// A double in [0, 1) with 53 random bits (numpy random_sample / random_standard_uniform).
  double random_sample();
  /// numpy's legacy RandomState.geometric(p).
  std::int64_t geometric(double p);

  /// In-place shuffle, identical to RandomState.shuffle on a 1-D array or a list.
  template <typename T>
  void shuffle(std::span<T> values) {
    if (values.size() < 2) return;
    for (std::size_t i = values.size() - 1; i >= 1; --i) {
      const auto j = static_cast<std::size_t>(random_interval(i));
      using std::swap;
      swap(values[i], values[j]);
    }
  }

 private:
  std::mt19937 mt_;
};

}  // namespace bignlp::data
