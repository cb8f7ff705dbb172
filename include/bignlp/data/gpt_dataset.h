// GPT pre-training samples from one indexed dataset, exactly as Megatron builds them
// (reference formats.md §2.3-2.4).
//
// For the documents [doc_begin, doc_end) of a split, num_samples requested, seq_length and seed:
//   tokens_per_epoch = sum(sizes[documents]); num_epochs = smallest e >= 1 with
//   (e * tokens_per_epoch - add_extra_token) // seq_length >= num_samples.
//   rng = numpy RandomState(seed), used for the doc_idx shuffle(s), then the shuffle_idx shuffle(s).
//   separate_last_epoch: with more than one epoch, when the last epoch contributes fewer than
//   int(0.80 * per-epoch samples), it is shuffled on its own (doc_idx and shuffle_idx) and kept last.
//   doc_idx (int32): the documents repeated per epoch, shuffled.
//   sample_idx (int32, [n+1, 2]): (index into doc_idx, token offset) where each sample starts;
//   every sample spans seq_length + add_extra_token tokens, so neighbours overlap by one token.
//   shuffle_idx (uint32, int64 from 2^32-1 samples): a permutation of the n samples.
// Worked example: sizes [5,3,4], one epoch, seq_length 4 -> sample_idx (0,0),(0,4),(2,0);
// sample 0 = doc0[0:5], sample 1 = doc0[4:5] + doc1 + doc2[0:1].
//
// The three arrays are cached as .npy files named
//   <prefix>_<name>_indexmap_<num_samples>ns_<seq_length>sl_<seed>s_{doc,sample,shuffle}_idx.npy
// next to the data (or in index_mapping_dir, under the data file's base name), byte-compatible with
// Megatron's, and memory-mapped when present. Building is single-threaded and deterministic; cache
// writes are atomic, so ranks racing to build the same files is harmless. Cached files that do not
// fit the data (the dataset was re-preprocessed: other documents or token counts) are rebuilt with
// a warning, where Megatron would silently use them.
// Deliberate difference: a split holding less than one sample per epoch runs over as many epochs as
// needed (no separate last epoch) where Megatron stops on an assertion.
// Not handled: NeMo's drop_last=False (a final short sample padded with -1).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/npy.h"
#include "bignlp/data/sample_dataset.h"

namespace bignlp::data {

/// What a GptDataset is asked for.
struct GptDatasetOptions {
  std::string name = "train";          ///< "train", "valid" or "test" (part of the cache names)
  std::int64_t num_samples = 0;        ///< samples requested (the dataset has at least this many)
  std::int32_t seq_length = 2048;
  std::uint32_t seed = 1234;
  bool add_extra_token = true;         ///< seq_length + 1 tokens per sample (NeMo: !no_seqlen_plus_one_input_tokens)
  std::filesystem::path index_mapping_dir;  ///< empty: cache next to the data
  bool use_cache = true;               ///< read/write the .npy caches (false: build in memory only)
};

/// The three index arrays and how they were derived.
struct GptIndexMaps {
  std::vector<std::int32_t> doc_idx;
  std::vector<std::int32_t> sample_idx;   ///< (n + 1) * 2, row-major
  std::vector<std::int64_t> shuffle_idx;  ///< n
  std::int64_t num_epochs = 0;
  std::int64_t tokens_per_epoch = 0;
  bool separate_last_epoch = false;
};

/// Builds the index maps for documents [doc_begin, doc_end) with token counts `sizes`.
/// Throws DataError when samples are requested from documents that hold no tokens.
GptIndexMaps build_gpt_index_maps(UnalignedArray<std::int32_t> sizes, std::int64_t doc_begin, std::int64_t doc_end,
                                  std::int64_t num_samples, std::int32_t seq_length, std::uint32_t seed,
                                  bool add_extra_token = true);

/// The cache file prefix for `data_prefix` and `options` (without "_doc_idx.npy").
std::filesystem::path gpt_index_cache_prefix(const std::filesystem::path& data_prefix, const GptDatasetOptions& options);

class GptDataset final : public SampleDataset {
 public:
  /// Samples over documents [doc_begin, doc_end) of `data`. Loads the cached index arrays or builds
  /// (and caches) them; `log` (may be null) gets one line saying which.
  GptDataset(std::shared_ptr<const IndexedDataset> data, std::int64_t doc_begin, std::int64_t doc_end,
             const GptDatasetOptions& options, const Logger* log = nullptr);

  std::int64_t size() const override { return num_samples_; }
  std::int64_t sample_length() const override { return sample_length_; }
  void read_sample(std::int64_t i, std::span<std::int64_t> out) const override;
  void read_sample(std::int64_t i, std::span<std::int32_t> out) const override;

  const IndexedDataset& indexed_dataset() const { return *data_; }
  /// The arrays in use (mapped from the cache or built): doc_idx, sample_idx (n+1 rows of 2).
  std::span<const std::int32_t> doc_idx() const { return doc_idx_; }
  std::span<const std::int32_t> sample_idx() const { return sample_idx_; }
  /// shuffle_idx[i].
  std::int64_t shuffle(std::int64_t i) const;
  /// True when the arrays were loaded from existing cache files.
  bool loaded_from_cache() const { return loaded_from_cache_; }

 private:
  template <typename Out>
  void read_impl(std::int64_t i, std::span<Out> out) const;
  // Maps the opened cache files; returns why they do not fit the data ("" when they do).
  std::string check_cache(std::int64_t doc_begin, std::int64_t doc_end, const GptDatasetOptions& options);

  std::shared_ptr<const IndexedDataset> data_;
  std::int64_t sample_length_ = 0;
  bool add_extra_token_ = true;
  std::int64_t num_samples_ = 0;
  bool loaded_from_cache_ = false;
  GptIndexMaps built_;                       // owns the arrays when built in memory
  std::optional<NpyArray> doc_npy_, sample_npy_, shuffle_npy_;  // own them when mapped
  std::span<const std::int32_t> doc_idx_;
  std::span<const std::int32_t> sample_idx_;
  std::span<const std::uint32_t> shuffle32_;
  std::span<const std::int64_t> shuffle64_;
};

}  // namespace bignlp::data
