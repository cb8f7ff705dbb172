#include "bignlp/finetune/seq2seq_batches.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "bignlp/core/error.h"

namespace bignlp::finetune {

Seq2SeqBatchSource::Seq2SeqBatchSource(std::shared_ptr<const data::SequenceToSequenceDataset> dataset,
                                       std::int64_t micro_batch_size, std::int64_t global_batch_size,
                                       std::int32_t pad_id, bool shuffle, std::uint64_t seed, std::int64_t epochs)
    : dataset_(std::move(dataset)),
      b_(micro_batch_size),
      global_batch_size_(global_batch_size),
      epochs_(std::max<std::int64_t>(1, epochs)),
      pad_(pad_id),
      shuffle_(shuffle),
      seed_(seed) {
  if (b_ <= 0 || global_batch_size_ <= 0)
    throw ConfigError(fmt::format("model.data.train_ds: micro_batch_size {} and global_batch_size {} must be positive",
                                  b_, global_batch_size_));
  samples_per_epoch_ = dataset_->size() / global_batch_size_ * global_batch_size_;
  if (samples_per_epoch_ == 0)
    throw ConfigError(fmt::format("model.data.train_ds.global_batch_size: {} is more than the {} examples of '{}' "
                                  "(drop_last leaves no batch)",
                                  global_batch_size_, dataset_->size(), dataset_->src_file().string()));
}

std::int64_t Seq2SeqBatchSource::example_of(std::int64_t k) {
  const std::int64_t epoch = k / samples_per_epoch_, i = k % samples_per_epoch_;
  if (!shuffle_) return i;
  if (epoch != perm_epoch_) {
    perm_.resize(static_cast<std::size_t>(dataset_->size()));
    std::iota(perm_.begin(), perm_.end(), std::int64_t{0});
    std::mt19937_64 rng(seed_ + static_cast<std::uint64_t>(epoch));
    for (std::size_t j = perm_.size(); j > 1; --j) {
      const std::size_t r = static_cast<std::size_t>(rng() % j);
      std::swap(perm_[j - 1], perm_[r]);
    }
    perm_epoch_ = epoch;
  }
  return perm_[static_cast<std::size_t>(i)];
}

model::Batch Seq2SeqBatchSource::batch(std::int64_t first) {
  if (first < 0 || first + b_ > size())
    throw DataError(fmt::format("fine-tuning samples [{}, {}) requested from a run of {} samples", first, first + b_,
                                size()));
  std::vector<std::int64_t> ex(static_cast<std::size_t>(b_));
  for (std::int64_t i = 0; i < b_; ++i) ex[static_cast<std::size_t>(i)] = example_of(first + i);
  return collate(ex);
}

model::Batch Seq2SeqBatchSource::collate(std::span<const std::int64_t> examples) {
  const auto b = static_cast<std::int64_t>(examples.size());
  std::int64_t te = 1, td = 1;
  for (std::int64_t e : examples) {
    te = std::max<std::int64_t>(te, static_cast<std::int64_t>(dataset_->src(e).size()));
    td = std::max<std::int64_t>(td, static_cast<std::int64_t>(dataset_->tgt(e).size()) - 1);
  }
  tokens_.assign(static_cast<std::size_t>(b * td), pad_);
  labels_.assign(tokens_.size(), pad_);
  loss_mask_.assign(tokens_.size(), 0.0f);
  encoder_.assign(static_cast<std::size_t>(b * te), pad_);
  encoder_lengths_.assign(static_cast<std::size_t>(b), 0);
  decoder_lengths_.assign(static_cast<std::size_t>(b), 0);
  for (std::int64_t r = 0; r < b; ++r) {
    const auto& src = dataset_->src(examples[static_cast<std::size_t>(r)]);
    const auto& tgt = dataset_->tgt(examples[static_cast<std::size_t>(r)]);
    std::copy(src.begin(), src.end(), encoder_.begin() + r * te);
    const auto n = static_cast<std::int64_t>(tgt.size()) - 1;
    for (std::int64_t t = 0; t < n; ++t) {
      const auto k = static_cast<std::size_t>(r * td + t);
      tokens_[k] = tgt[static_cast<std::size_t>(t)];
      labels_[k] = tgt[static_cast<std::size_t>(t + 1)];
      loss_mask_[k] = 1.0f;
    }
    encoder_lengths_[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(src.size());
    decoder_lengths_[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(n);
  }
  return model::Batch{.tokens = TensorView(tokens_.data(), DType::kI32, Shape{b, td}),
                      .labels = TensorView(labels_.data(), DType::kI32, Shape{b, td}),
                      .loss_mask = TensorView(loss_mask_.data(), DType::kF32, Shape{b, td}),
                      .position_ids = {},
                      .encoder_tokens = TensorView(encoder_.data(), DType::kI32, Shape{b, te}),
                      .encoder_lengths = TensorView(encoder_lengths_.data(), DType::kI32, Shape{b}),
                      .decoder_lengths = TensorView(decoder_lengths_.data(), DType::kI32, Shape{b})};
}

}  // namespace bignlp::finetune
