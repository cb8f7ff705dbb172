#include "bignlp/data/blended_dataset.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::data {
namespace {

double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

double numpy_sum(std::span<const double> values) { return pairwise_sum(values.data(), values.size()); }

BlendingIndices build_blending_indices(std::span<const double> weights, std::int64_t size) {
  BIGNLP_CHECK(!weights.empty() && weights.size() < 256, "blending needs 1 to 255 datasets, got {}", weights.size());
  BIGNLP_CHECK(size >= 0, "blend size must be non-negative, got {}", size);
  BlendingIndices out;
  out.dataset_index.resize(static_cast<std::size_t>(size));
  out.dataset_sample_index.resize(static_cast<std::size_t>(size));
  std::vector<std::int64_t> counts(weights.size(), 0);
  for (std::int64_t i = 0; i < size; ++i) {
    const double x = std::max(static_cast<double>(i), 1.0);
    std::size_t best = 0;
    double best_error = weights[0] * x - static_cast<double>(counts[0]);
    for (std::size_t k = 1; k < weights.size(); ++k) {
      const double error = weights[k] * x - static_cast<double>(counts[k]);
      if (error > best_error) {
        best_error = error;
        best = k;
      }
    }
    out.dataset_index[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(best);
    out.dataset_sample_index[static_cast<std::size_t>(i)] = counts[best];
    ++counts[best];
  }
  return out;
}

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets, std::vector<double> weights,
                               std::optional<std::int64_t> size)
    : datasets_(std::move(datasets)), weights_(std::move(weights)) {
  if (datasets_.empty() || datasets_.size() != weights_.size()) {
    throw ConfigError(fmt::format("blending needs one weight per dataset: {} datasets, {} weights", datasets_.size(),
                                  weights_.size()));
  }
  if (datasets_.size() > 255) throw ConfigError(fmt::format("at most 255 datasets can be blended, got {}", datasets_.size()));
  for (double w : weights_) {
    if (!(w > 0.0)) throw ConfigError(fmt::format("blending weights must be positive, got {}", w));
  }
  const double total = numpy_sum(weights_);
  for (double& w : weights_) w /= total;
  sample_length_ = datasets_.front()->sample_length();
  std::int64_t components = 0;
  for (const auto& d : datasets_) {
    BIGNLP_CHECK(d != nullptr, "null dataset in a blend");
    BIGNLP_CHECK(d->sample_length() == sample_length_, "blended datasets disagree on the sample length ({} vs {})",
                 d->sample_length(), sample_length_);
    components += d->size();
  }
  indices_ = build_blending_indices(weights_, size.value_or(components));
  // With an explicit size (NeMo) every index must exist in its dataset: fail now rather than
  // mid-training. Megatron-LM's size (the sum of the components) may point past a component near the
  // end, which only matters if training reads that far; read_sample checks it then.
  if (size.has_value()) {
    std::vector<std::int64_t> needed(datasets_.size(), 0);
    for (std::size_t i = 0; i < indices_.dataset_index.size(); ++i) {
      auto& n = needed[indices_.dataset_index[i]];
      n = std::max(n, indices_.dataset_sample_index[i] + 1);
    }
    for (std::size_t k = 0; k < datasets_.size(); ++k) {
      if (needed[k] > datasets_[k]->size()) {
        throw DataError(fmt::format("a blend of {} samples needs {} samples from dataset {}, which has only {}", *size,
                                    needed[k], k, datasets_[k]->size()));
      }
    }
  }
}

template <typename Out>
void BlendedDataset::read_impl(std::int64_t i, std::span<Out> out) const {
  BIGNLP_CHECK(i >= 0 && i < size(), "sample {} out of range ({} samples)", i, size());
  const auto k = indices_.dataset_index[static_cast<std::size_t>(i)];
  const std::int64_t j = indices_.dataset_sample_index[static_cast<std::size_t>(i)];
  BIGNLP_CHECK(j < datasets_[k]->size(), "blend sample {} maps to sample {} of dataset {}, which has only {}", i, j, k,
               datasets_[k]->size());
  datasets_[k]->read_sample(j, out);
}

void BlendedDataset::read_sample(std::int64_t i, std::span<std::int64_t> out) const { read_impl(i, out); }
void BlendedDataset::read_sample(std::int64_t i, std::span<std::int32_t> out) const { read_impl(i, out); }

}  // namespace bignlp::data
