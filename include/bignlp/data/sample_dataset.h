// The interface training reads samples through: a fixed number of fixed-length token samples.
//
// GptDataset (one indexed dataset, one split) and BlendedDataset (several, mixed by weight)
// implement it. Reads are const and thread-safe; sample i is the same on every call, every rank
// and for every thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace bignlp::data {

class SampleDataset {
 public:
  virtual ~SampleDataset() = default;
  /// Number of samples.
  virtual std::int64_t size() const = 0;
  /// Tokens per sample (seq_length + 1 for GPT: inputs are [:-1], labels [1:]).
  virtual std::int64_t sample_length() const = 0;
  /// Writes sample `i` (0 <= i < size()) into `out`, which must hold sample_length() tokens.
  virtual void read_sample(std::int64_t i, std::span<std::int64_t> out) const = 0;
  virtual void read_sample(std::int64_t i, std::span<std::int32_t> out) const = 0;

  /// Sample `i` as a new vector.
  std::vector<std::int64_t> sample(std::int64_t i) const {
    std::vector<std::int64_t> out(static_cast<std::size_t>(sample_length()));
    read_sample(i, std::span<std::int64_t>(out));
    return out;
  }
};

}  // namespace bignlp::data
