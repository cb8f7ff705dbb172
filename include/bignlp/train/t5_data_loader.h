// T5DataLoader: micro-batches of T5 span-corruption samples (data/t5_dataset.h) for the trainer, and
// the factory that builds a T5 run's train/validation sources from its TrainingConfig.
//
// Batch contract (what the encoder-decoder families read; sample k of the run is dataset sample k,
// a micro-batch is B consecutive samples):
//   tokens          (B, Td) int32  decoder input: bos, then sentinel + span tokens per span, pad
//   labels          (B, Td) int32  sentinel + span tokens per span, then eos; past the decoder's
//                                  tokens pad_id (Megatron writes -1 there; loss_mask is 0)
//   loss_mask       (B, Td) fp32   1 on the first decoder_lengths[b] positions, else 0
//   encoder_tokens  (B, Te) int32  the corrupted text, one sentinel per span, then pad
//   encoder_lengths (B)     int32  non-pad encoder tokens (the padding is at the end)
//   decoder_lengths (B)     int32  non-pad decoder tokens (= the label tokens, eos included)
//   position_ids    empty (0..T-1)
// Te = model.data.seq_length, Td = model.data.seq_length_dec. Host memory owned by the loader,
// valid until the next call.
//
// The factory (build_t5_batch_sources): the tokenizer from model.tokenizer.* (TrainingConfig::
// tokenizer) extended as NeMo does for T5 (data::t5_vocabulary, num_sentinel_tokens), the datasets
// of data_prefix (a blend [w, prefix, ...] or one prefix; when empty, the mT5 auto-blend of
// run.preprocessed_dir with run.blending_alpha), splits_string, the masking keys of
// DataConfig::t5, index_mapping_dir and model.seed, asked for NeMo's sample counts (train =
// max_steps x global_batch_size, validation as for GPT). The trainer uses it when
// TrainingConfig::model_family is "t5" (and no batch sources are given in TrainerParts).
#pragma once

#include <memory>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/train/batch_source.h"
#include "bignlp/train/training_config.h"

namespace bignlp::train {

class T5DataLoader final : public BatchSource {
 public:
  /// `pad_id` fills the label positions past each row's decoder tokens.
  T5DataLoader(std::shared_ptr<const data::T5SampleSource> dataset, std::int64_t micro_batch_size, std::int32_t pad_id);
  /// The micro-batch of samples [first, first + B). Throws DataError past the end of the dataset.
  model::Batch batch(std::int64_t first) override;
  std::int64_t size() const override { return dataset_->size(); }

 private:
  std::shared_ptr<const data::T5SampleSource> dataset_;
  std::int64_t b_, te_, td_;
  std::int32_t pad_;
  std::vector<std::int32_t> tokens_, labels_, encoder_, encoder_lengths_, decoder_lengths_;
  std::vector<float> loss_mask_;
};

/// What a T5 run trains and validates on.
struct T5BatchSources {
  std::shared_ptr<BatchSource> train;
  std::shared_ptr<BatchSource> valid;  ///< null when the validation split holds no documents
  std::shared_ptr<const data::T5Vocabulary> vocabulary;  ///< special ids, sentinels, unpadded vocab size
  data::T5DatasetSplits datasets;
};

/// The T5 vocabulary of `config` (model.tokenizer.* and num_sentinel_tokens).
std::shared_ptr<const data::T5Vocabulary> t5_vocabulary_of(const TrainingConfig& config);

/// The dataset options of `config` (model.data.* of a T5 run) for a split.
data::T5DatasetOptions t5_dataset_options(const TrainingConfig& config);

/// Builds the train/validation sources of a T5 run (see the file comment). Throws ConfigError
/// naming the key for bad settings, IoError/DataError for missing or corrupt data. `log` may be null.
T5BatchSources build_t5_batch_sources(const TrainingConfig& config, const Logger* log = nullptr);

}  // namespace bignlp::train
