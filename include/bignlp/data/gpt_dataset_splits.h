// The train / validation / test GPT datasets of a training run, built from `model.data`
// (data_prefix, splits_string, seq_length, seed) and the requested sample counts, as NeMo's
// build_train_valid_test_datasets (formats.md §2.1, §2.2, §2.5).
//
// One prefix: each split is a GptDataset over its documents, asked for exactly the requested
// samples. Several weighted prefixes: each prefix is split and indexed on its own, asked for
// ceil(request * w_k * 1.005) samples (weights normalised left to right like Python's sum), and the
// splits are blended (BlendedDataset) to the sum of those requests (NeMo) or to the sum of the
// component sizes (Megatron-LM). A split with no documents gives no dataset (nullptr).
// Not handled: NeMo's dict form of data_prefix ({train: [...], validation: [...], test: [...]}).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/sample_dataset.h"

namespace bignlp::data {

struct WeightedPrefix {
  double weight = 1.0;
  std::filesystem::path prefix;  ///< dataset path without .bin/.idx
};

/// Parses `data_prefix`: a single path, or a flat list [w1, p1, w2, p2, ...] with positive numeric
/// weights. Throws ConfigError naming the offending entry.
std::vector<WeightedPrefix> parse_data_prefix(const std::vector<std::string>& items);

enum class BlendSizeRule {
  kSumOfRequests,    ///< NeMo: blend size = sum of the per-dataset requests
  kSumOfComponents,  ///< Megatron-LM: blend size = sum of the component dataset sizes
};

/// What build_gpt_dataset_splits() reads: the keys of `model.data` and the sample requests.
struct GptDatasetSplitsConfig {
  std::vector<WeightedPrefix> data_prefix;
  std::string splits_string = "969, 30, 1";
  std::array<std::int64_t, 3> num_samples{0, 0, 0};  ///< train, valid, test requests
  std::int32_t seq_length = 2048;
  std::uint32_t seed = 1234;
  bool add_extra_token = true;
  std::filesystem::path index_mapping_dir;  ///< empty: caches next to the data
  bool use_cache = true;
  BlendSizeRule blend_size = BlendSizeRule::kSumOfRequests;
  /// The tokenizer's vocabulary size: every token id of every dataset is checked against it at
  /// start (check_token_ids); 0 skips the check.
  std::int64_t vocab_size = 0;
};

/// The datasets of the three splits; a split with no documents has none (nullptr).
struct GptDatasetSplits {
  std::shared_ptr<const SampleDataset> train;
  std::shared_ptr<const SampleDataset> valid;
  std::shared_ptr<const SampleDataset> test;
};

/// Throws DataError naming the .bin file, the document, the sequence and the position of the first
/// token id outside [0, vocab_size) (ids between the tokenizer's vocabulary and the padded one
/// would otherwise train silently). Reads every token once; nothing when the dtype cannot hold an
/// id >= vocab_size.
void check_token_ids(const IndexedDataset& data, std::int64_t vocab_size);

/// Builds (or loads from the caches) the three datasets. `log` may be null.
GptDatasetSplits build_gpt_dataset_splits(const GptDatasetSplitsConfig& config, const Logger* log = nullptr);

/// NeMo's requested sample counts: train = max_steps * gbs; valid = (max_steps // val_check_interval
/// + 1) * limit_val_batches * gbs, or 1 when limit_val_batches is a fraction (a float <= 1.0);
/// test = limit_test_batches * gbs.
std::array<std::int64_t, 3> nemo_gpt_num_samples(std::int64_t max_steps, std::int64_t global_batch_size,
                                                 std::int64_t val_check_interval, double limit_val_batches,
                                                 bool limit_val_batches_is_float, std::int64_t limit_test_batches);

}  // namespace bignlp::data
