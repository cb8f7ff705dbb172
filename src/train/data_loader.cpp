#include "bignlp/train/data_loader.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::train {

GptDataLoader::GptDataLoader(std::shared_ptr<const data::SampleDataset> dataset, std::int64_t micro_batch_size,
                             std::int64_t seq_length, const DataConfig& config)
    : dataset_(std::move(dataset)), b_(micro_batch_size), t_(seq_length), config_(config) {
  if (dataset_->sample_length() != t_ + 1)
    throw DataError(fmt::format("dataset samples hold {} tokens; training with seq_length {} needs {}",
                                dataset_->sample_length(), t_, t_ + 1));
  sample_.resize(static_cast<std::size_t>(t_ + 1));
  tokens_.resize(static_cast<std::size_t>(b_ * t_));
  labels_.resize(tokens_.size());
  positions_.resize(tokens_.size());
  loss_mask_.resize(tokens_.size());
}

model::Batch GptDataLoader::batch(std::int64_t first) {
  if (first < 0 || first + b_ > dataset_->size())
    throw DataError(fmt::format("samples [{}, {}) requested from a dataset of {} samples", first, first + b_,
                                dataset_->size()));
  const std::int32_t eod = static_cast<std::int32_t>(config_.eod_token);
  for (std::int64_t bi = 0; bi < b_; ++bi) {
    dataset_->read_sample(first + bi, std::span<std::int32_t>(sample_));
    std::int32_t pos = 0;
    for (std::int64_t ti = 0; ti < t_; ++ti) {
      const std::size_t k = static_cast<std::size_t>(bi * t_ + ti);
      tokens_[k] = sample_[ti];
      labels_[k] = sample_[ti + 1];
      loss_mask_[k] = config_.eod_mask_loss && sample_[ti] == eod ? 0.0f : 1.0f;
      positions_[k] = config_.reset_position_ids ? pos : static_cast<std::int32_t>(ti);
      ++pos;
      if (config_.reset_position_ids && sample_[ti] == eod) pos = 0;
    }
  }
  const Shape bt{b_, t_};
  return model::Batch{.tokens = TensorView(tokens_.data(), DType::kI32, bt),
                      .labels = TensorView(labels_.data(), DType::kI32, bt),
                      .loss_mask = TensorView(loss_mask_.data(), DType::kF32, bt),
                      .position_ids = TensorView(positions_.data(), DType::kI32, bt)};
}

}  // namespace bignlp::train
