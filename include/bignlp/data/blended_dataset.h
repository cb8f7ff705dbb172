// Mixing several sample datasets by weight, as Megatron's BlendableDataset (formats.md §2.5).
//
// Weights are normalised with numpy's summation order (pairwise, so 30 weights give the same
// doubles as np.sum). The blending indices are the greedy error-feedback sequence: for output i
// (x = max(i, 1)) pick the first dataset k with the largest w_k * x - count_k, record
// (k, count_k), then count_k += 1. Example: weights [.5,.3,.2] give datasets 0,1,2,0,1,0,2,0,1,0
// with sample indices 0,0,0,1,1,2,1,3,2,4. At most 255 datasets (the index is uint8).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "bignlp/data/sample_dataset.h"

namespace bignlp::data {

/// numpy's np.sum(float64 array): pairwise summation with 8 accumulators, blocks of 128.
double numpy_sum(std::span<const double> values);

struct BlendingIndices {
  std::vector<std::uint8_t> dataset_index;         ///< which dataset serves output sample i
  std::vector<std::int64_t> dataset_sample_index;  ///< which of its samples
};

/// Megatron's helpers.build_blending_indices for normalised `weights` and `size` outputs.
BlendingIndices build_blending_indices(std::span<const double> weights, std::int64_t size);

class BlendedDataset final : public SampleDataset {
 public:
  /// Blends `datasets` (same sample_length) by `weights` (any positive numbers). `size` is the
  /// number of output samples: NeMo passes the sum of the per-dataset requests; without it the
  /// size is the sum of the component sizes (Megatron-LM).
  BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets, std::vector<double> weights,
                 std::optional<std::int64_t> size = std::nullopt);

  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.dataset_index.size()); }
  std::int64_t sample_length() const override { return sample_length_; }
  void read_sample(std::int64_t i, std::span<std::int64_t> out) const override;
  void read_sample(std::int64_t i, std::span<std::int32_t> out) const override;

  const std::vector<double>& weights() const { return weights_; }
  const BlendingIndices& indices() const { return indices_; }
  const std::vector<std::shared_ptr<const SampleDataset>>& datasets() const { return datasets_; }

 private:
  template <typename Out>
  void read_impl(std::int64_t i, std::span<Out> out) const;

  std::vector<std::shared_ptr<const SampleDataset>> datasets_;
  std::vector<double> weights_;
  BlendingIndices indices_;
  std::int64_t sample_length_ = 0;
};

}  // namespace bignlp::data
