#include "bignlp/data/gpt_dataset_splits.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/blended_dataset.h"
#include "bignlp/data/dataset_split.h"
#include "bignlp/data/gpt_dataset.h"
#include "bignlp/data/indexed_dataset.h"

namespace bignlp::data {
namespace {

constexpr const char* kSplitNames[3] = {"train", "valid", "test"};

bool parse_weight(const std::string& text, double& out) {
  const std::string t(trim(text));
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return !t.empty() && end == t.c_str() + t.size() && std::isfinite(out);
}

// One prefix split three ways, each split asked for `requests[k]` samples.
std::array<std::shared_ptr<const SampleDataset>, 3> build_for_prefix(const std::filesystem::path& prefix,
                                                                      const GptDatasetSplitsConfig& config,
                                                                      const std::array<std::int64_t, 3>& requests,
                                                                      const Logger* log) {
  auto data = std::make_shared<const IndexedDataset>(prefix);
  if (config.vocab_size > 0) check_token_ids(*data, config.vocab_size);
  const auto bounds = train_valid_test_split(config.splits_string, static_cast<std::int64_t>(data->num_sequences()));
  std::array<std::shared_ptr<const SampleDataset>, 3> out;
  for (int k = 0; k < 3; ++k) {
    if (bounds[k + 1] <= bounds[k]) continue;
    GptDatasetOptions options;
    options.name = kSplitNames[k];
    options.num_samples = requests[k];
    options.seq_length = config.seq_length;
    options.seed = config.seed;
    options.add_extra_token = config.add_extra_token;
    options.index_mapping_dir = config.index_mapping_dir;
    options.use_cache = config.use_cache;
    out[k] = std::make_shared<const GptDataset>(data, bounds[k], bounds[k + 1], options, log);
  }
  return out;
}

}  // namespace

void check_token_ids(const IndexedDataset& data, std::int64_t vocab_size) {
  const bool is_signed = data.dtype() == TokenDType::kInt8 || data.dtype() == TokenDType::kInt16 ||
                         data.dtype() == TokenDType::kInt32 || data.dtype() == TokenDType::kInt64;
  const int bits = static_cast<int>(data.itemsize()) * 8 - (is_signed ? 1 : 0);
  if (!is_signed && bits < 63 && (std::int64_t{1} << bits) <= vocab_size) return;  // cannot exceed it
  const auto sizes = data.sizes();
  const auto docs = data.doc_idx();
  std::vector<std::int64_t> tokens;
  std::size_t doc = 0;
  for (std::size_t i = 0; i < data.num_sequences(); ++i) {
    while (doc + 1 < docs.size() && static_cast<std::size_t>(docs[doc + 1]) <= i) ++doc;
    tokens.resize(static_cast<std::size_t>(sizes[i]));
    data.read(i, 0, std::span<std::int64_t>(tokens));
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      if (tokens[k] < 0 || tokens[k] >= vocab_size) {
        throw DataError(fmt::format(
            "'{}.bin': document {} (sequence {}), token {}: id {} is outside the tokenizer's vocabulary [0, {}); "
            "was the dataset preprocessed with another tokenizer than model.tokenizer?",
            data.prefix().string(), doc, i, k, tokens[k], vocab_size));
      }
    }
  }
}

std::vector<WeightedPrefix> parse_data_prefix(const std::vector<std::string>& items) {
  if (items.empty()) throw ConfigError("data_prefix is empty: give a dataset prefix or a list [weight, prefix, ...]");
  if (items.size() == 1) return {WeightedPrefix{1.0, items[0]}};
  if (items.size() % 2 != 0) {
    throw ConfigError(fmt::format("data_prefix has {} entries; a blend needs pairs [weight, prefix, weight, prefix, ...]",
                                  items.size()));
  }
  std::vector<WeightedPrefix> out;
  for (std::size_t i = 0; i < items.size(); i += 2) {
    double w = 0.0;
    if (!parse_weight(items[i], w)) {
      throw ConfigError(fmt::format("data_prefix[{}] = '{}' is not a weight (a blend is [weight, prefix, ...])", i,
                                    items[i]));
    }
    if (!(w > 0.0)) throw ConfigError(fmt::format("data_prefix[{}] = '{}': weights must be positive", i, items[i]));
    out.push_back(WeightedPrefix{w, items[i + 1]});
  }
  return out;
}

GptDatasetSplits build_gpt_dataset_splits(const GptDatasetSplitsConfig& config, const Logger* log) {
  if (config.data_prefix.empty()) throw ConfigError("data_prefix is empty");
  GptDatasetSplits result;
  std::array<std::shared_ptr<const SampleDataset>*, 3> slots{&result.train, &result.valid, &result.test};
  if (config.data_prefix.size() == 1) {
    const auto built = build_for_prefix(config.data_prefix[0].prefix, config, config.num_samples, log);
    for (int k = 0; k < 3; ++k) *slots[k] = built[k];
    return result;
  }
  // Weights normalised like Python's sum() (left to right), then per-dataset requests with 0.5% slack.
  double total = 0.0;
  for (const auto& p : config.data_prefix) total += p.weight;
  std::vector<double> weights;
  std::vector<std::array<std::int64_t, 3>> requests;
  for (const auto& p : config.data_prefix) {
    const double w = p.weight / total;
    weights.push_back(w);
    std::array<std::int64_t, 3> r{};
    for (int k = 0; k < 3; ++k) r[k] = static_cast<std::int64_t>(std::ceil(static_cast<double>(config.num_samples[k]) * w * 1.005));
    requests.push_back(r);
  }
  std::array<std::vector<std::shared_ptr<const SampleDataset>>, 3> parts;
  std::array<std::vector<double>, 3> part_weights;
  std::array<std::int64_t, 3> request_sum{0, 0, 0};
  for (std::size_t i = 0; i < config.data_prefix.size(); ++i) {
    const auto built = build_for_prefix(config.data_prefix[i].prefix, config, requests[i], log);
    for (int k = 0; k < 3; ++k) {
      request_sum[k] += requests[i][k];
      if (built[k]) {
        parts[k].push_back(built[k]);
        part_weights[k].push_back(weights[i]);
      } else if (log != nullptr && config.num_samples[k] > 0) {
        log->warn("'{}' has no documents in the {} split ('{}'); it is left out of the {} blend",
                  config.data_prefix[i].prefix.string(), kSplitNames[k], config.splits_string, kSplitNames[k]);
      }
    }
  }
  for (int k = 0; k < 3; ++k) {
    if (parts[k].empty()) continue;
    std::optional<std::int64_t> size;
    if (config.blend_size == BlendSizeRule::kSumOfRequests) size = request_sum[k];
    *slots[k] = std::make_shared<const BlendedDataset>(parts[k], part_weights[k], size);
  }
  return result;
}

std::array<std::int64_t, 3> nemo_gpt_num_samples(std::int64_t max_steps, std::int64_t global_batch_size,
                                                 std::int64_t val_check_interval, double limit_val_batches,
                                                 bool limit_val_batches_is_float, std::int64_t limit_test_batches) {
  std::array<std::int64_t, 3> out{};
  out[0] = max_steps * global_batch_size;
  const std::int64_t evals = max_steps / std::max<std::int64_t>(val_check_interval, 1) + 1;
  out[1] = static_cast<std::int64_t>(static_cast<double>(evals) * limit_val_batches) * global_batch_size;
  if (limit_val_batches_is_float && limit_val_batches <= 1.0) out[1] = 1;
  out[2] = limit_test_batches * global_batch_size;
  return out;
}

}  // namespace bignlp::data
