#include "bignlp/train/t5_data_loader.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/data/tokenizer_factory.h"

namespace bignlp::train {

T5DataLoader::T5DataLoader(std::shared_ptr<const data::T5SampleSource> dataset, std::int64_t micro_batch_size,
                           std::int32_t pad_id)
    : dataset_(std::move(dataset)),
      b_(micro_batch_size),
      te_(dataset_->seq_length()),
      td_(dataset_->seq_length_dec()),
      pad_(pad_id) {
  if (b_ <= 0) throw ConfigError(fmt::format("model.micro_batch_size: must be positive, got {}", b_));
  tokens_.resize(static_cast<std::size_t>(b_ * td_));
  labels_.resize(tokens_.size());
  loss_mask_.resize(tokens_.size());
  encoder_.resize(static_cast<std::size_t>(b_ * te_));
  encoder_lengths_.resize(static_cast<std::size_t>(b_));
  decoder_lengths_.resize(static_cast<std::size_t>(b_));
}

model::Batch T5DataLoader::batch(std::int64_t first) {
  if (first < 0 || first + b_ > dataset_->size())
    throw DataError(fmt::format("T5 samples [{}, {}) requested from a dataset of {} samples", first, first + b_,
                                dataset_->size()));
  for (std::int64_t bi = 0; bi < b_; ++bi) {
    const data::T5Sample s = dataset_->sample(first + bi);
    const auto d0 = static_cast<std::size_t>(bi * td_);
    for (std::int64_t t = 0; t < td_; ++t) {
      const auto k = static_cast<std::size_t>(t);
      tokens_[d0 + k] = s.decoder[k];
      labels_[d0 + k] = s.labels[k] < 0 ? pad_ : s.labels[k];
      loss_mask_[d0 + k] = static_cast<float>(s.loss_mask[k]);
    }
    std::copy(s.encoder.begin(), s.encoder.end(), encoder_.begin() + bi * te_);
    encoder_lengths_[static_cast<std::size_t>(bi)] = s.encoder_length;
    decoder_lengths_[static_cast<std::size_t>(bi)] = s.decoder_length;
  }
  return model::Batch{.tokens = TensorView(tokens_.data(), DType::kI32, Shape{b_, td_}),
                      .labels = TensorView(labels_.data(), DType::kI32, Shape{b_, td_}),
                      .loss_mask = TensorView(loss_mask_.data(), DType::kF32, Shape{b_, td_}),
                      .position_ids = {},
                      .encoder_tokens = TensorView(encoder_.data(), DType::kI32, Shape{b_, te_}),
                      .encoder_lengths = TensorView(encoder_lengths_.data(), DType::kI32, Shape{b_}),
                      .decoder_lengths = TensorView(decoder_lengths_.data(), DType::kI32, Shape{b_})};
}

std::shared_ptr<const data::T5Vocabulary> t5_vocabulary_of(const TrainingConfig& config) {
  data::TokenizerSpec spec;
  auto get = [&](const char* key) -> std::string {
    const auto it = config.tokenizer.find(key);
    return it == config.tokenizer.end() ? std::string() : it->second;
  };
  spec.library = get("library").empty() ? "megatron" : get("library");
  spec.type = get("type");
  spec.vocab_file = get("vocab_file");
  spec.merge_file = get("merge_file");
  spec.model_file = get("model");
  // The vocabulary keeps what it needs of the tokenizer (continuation flags), not the tokenizer.
  const std::unique_ptr<data::Tokenizer> tokenizer = data::load_tokenizer(spec);
  return std::make_shared<const data::T5Vocabulary>(
      data::t5_vocabulary(*tokenizer, config.data.t5.num_sentinel_tokens));
}

data::T5DatasetOptions t5_dataset_options(const TrainingConfig& config) {
  const T5DataConfig& t = config.data.t5;
  data::T5DatasetOptions o;
  o.seq_length = static_cast<std::int32_t>(t.seq_length);
  o.seq_length_dec = static_cast<std::int32_t>(t.seq_length_dec);
  o.seed = static_cast<std::uint32_t>(config.seed);
  o.masked_lm_prob = t.masked_lm_prob;
  o.short_seq_prob = t.short_seq_prob;
  o.max_ngram_size = t.max_ngram_size;
  o.mean_ngram_size = t.mean_ngram_size;
  o.geometric_dist = t.geometric_dist;
  o.permutation = t.permutation;
  o.whole_word_masking = t.whole_word_masking;
  o.favor_longer_ngrams = t.favor_longer_ngrams;
  o.respect_document_boundaries = t.respect_document_boundaries;
  o.index_mapping_dir = config.data.index_mapping_dir;
  return o;
}

T5BatchSources build_t5_batch_sources(const TrainingConfig& config, const Logger* log) {
  T5BatchSources out;
  out.vocabulary = t5_vocabulary_of(config);
  const data::T5DatasetOptions options = t5_dataset_options(config);
  options.validate(out.vocabulary.get());
  std::vector<std::string> prefix = config.data.data_prefix;
  if (prefix.empty()) {
    if (config.data.t5.preprocessed_dir.empty())
      throw ConfigError("model.data.data_prefix: no training data given; set it to a dataset prefix, a list [weight, "
                        "prefix, ...], or null with run.preprocessed_dir (the mT5 auto-blend)");
    prefix = data::mt5_auto_blend(config.data.t5.preprocessed_dir, config.data.t5.blending_alpha);
    if (log != nullptr)
      log->info("model.data.data_prefix: blended {} datasets of '{}' by language size ^ {}", prefix.size() / 2,
                config.data.t5.preprocessed_dir.string(), config.data.t5.blending_alpha);
  }
  const auto num_samples = data::nemo_gpt_num_samples(
      config.max_steps, config.global_batch_size,
      config.val_check_interval > 0 ? config.val_check_interval : config.max_steps, config.limit_val_batches,
      config.limit_val_batches_is_fraction, config.limit_test_batches);
  out.datasets = data::build_t5_dataset_splits(data::parse_data_prefix(prefix), config.data.splits_string, num_samples,
                                               options, out.vocabulary, log);
  if (!out.datasets.train) throw ConfigError("model.data.splits_string: the training split holds no documents");
  out.train = std::make_shared<T5DataLoader>(out.datasets.train, config.micro_batch_size, out.vocabulary->pad);
  if (out.datasets.valid)
    out.valid = std::make_shared<T5DataLoader>(out.datasets.valid, config.micro_batch_size, out.vocabulary->pad);
  return out;
}

}  // namespace bignlp::train
