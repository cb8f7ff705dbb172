// Seq2SeqBatchSource: the micro-batches of a text-to-text dataset (data::SequenceToSequenceDataset)
// for the trainer and for validation.
//
// Sample k of a training run: epoch e = k / S, i = k % S with S = floor(N / global_batch) * global_batch
// (drop_last: the incomplete last global batch of an epoch is not used); the example is i, or
// perm_e[i] with shuffle, perm_e a Fisher-Yates shuffle of [0, N) drawn by std::mt19937_64 seeded
// with seed + e (a function of k only, so resumed runs continue with the same data; the order is
// not PyTorch's DistributedSampler's).
// Collate (NeMo's): a micro-batch is padded to its longest encoder and decoder sequence:
//   encoder_tokens  (B, Te) int32  src, pad after
//   tokens          (B, Td) int32  tgt[:-1], pad after
//   labels          (B, Td) int32  tgt[1:], pad after
//   loss_mask       (B, Td) fp32   1 over each label length
//   encoder_lengths (B), decoder_lengths (B) int32
// Host memory owned by the source, valid until the next call.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "bignlp/data/sequence_to_sequence_dataset.h"
#include "bignlp/train/batch_source.h"

namespace bignlp::finetune {

class Seq2SeqBatchSource final : public train::BatchSource {
 public:
  /// `epochs` bounds size() (samples of that many epochs). Throws ConfigError when the dataset has
  /// fewer examples than one global batch.
  Seq2SeqBatchSource(std::shared_ptr<const data::SequenceToSequenceDataset> dataset, std::int64_t micro_batch_size,
                     std::int64_t global_batch_size, std::int32_t pad_id, bool shuffle, std::uint64_t seed,
                     std::int64_t epochs);
  /// The micro-batch of run samples [first, first + B).
  model::Batch batch(std::int64_t first) override;
  std::int64_t size() const override { return samples_per_epoch_ * epochs_; }
  /// Global batches (optimizer steps) of one epoch.
  std::int64_t steps_per_epoch() const { return samples_per_epoch_ / global_batch_size_; }
  /// The dataset example of run sample k.
  std::int64_t example_of(std::int64_t k);
  /// A micro-batch of the given dataset examples (any count; validation's last batch is short).
  model::Batch collate(std::span<const std::int64_t> examples);

 private:
  std::shared_ptr<const data::SequenceToSequenceDataset> dataset_;
  std::int64_t b_, global_batch_size_, samples_per_epoch_, epochs_;
  std::int32_t pad_;
  bool shuffle_;
  std::uint64_t seed_;
  std::int64_t perm_epoch_ = -1;
  std::vector<std::int64_t> perm_;
  std::vector<std::int32_t> tokens_, labels_, encoder_, encoder_lengths_, decoder_lengths_;
  std::vector<float> loss_mask_;
};

}  // namespace bignlp::finetune
