// The T5 / mT5 span-corruption dataset, exactly as NeMo's T5Dataset (Megatron-LM's t5_dataset) builds
// it (reference formats.md §3), over one split of a Megatron indexed dataset.
//
// Samples mapping (document-respecting mode, Megatron's helpers.build_mapping): over the split's
// documents (sentence ranges from doc_idx), epoch after epoch until at least max_num_samples rows
// exist (checked only when an epoch starts), each document is cut into samples of whole sentences:
// a sample closes when its tokens reach the target length while more than one sentence remains, or
// when the document ends. Documents with no sentences, and multi-sentence documents holding a
// sentence longer than 512 tokens, are skipped. The target is max_seq_length (= seq_length - 2),
// or with short_seq_prob > 0 and ratio = round(1/short_seq_prob): r = mt19937(seed)() and, when
// r % ratio == 0, 2 + r % (max_seq_length - 1). Rows (first sentence, end sentence, target) are
// then shuffled with mt19937_64(seed + 1) (j = rand64 % (i + 1), i = n-1..1). Data prepared without
// --split-sentences has one sentence per document: one sample per document (per epoch).
// Cache: <prefix>_<name>_indexmap_<M>mns_<msl>msl_<ssp:.2f>ssp_<seed>s.npy (uint32 [n,3]; uint64 when
// the dataset has 2^32 or more sentences), next to the data or in index_mapping_dir.
//
// Sample idx: the tokens of its sentences, truncated to the target; masking with
// numpy RandomState(seed + idx): candidate units (tokens; with whole_word_masking a "##" piece joins
// the previous unit; cls/sep ids are never candidates), n-gram lists per unit, the unit order
// shuffled, span lengths n = min(geometric(p), max_ngram_size) with p = 1/mean_ngram_size or 0.2
// (geometric_dist), or drawn by RandomState.choice over n = 1..max_ngram_size with weights 1/n
// (reversed with favor_longer_ngrams) otherwise; the budget is min(masked_lm_prob * target,
// max(1, round(masked_lm_prob * len))) tokens; an n-gram that does not fit is shortened, and skipped
// when it still does not fit or overlaps covered tokens. Spans sorted by their first token.
// Sequences: encoder = unmasked tokens with one sentinel (<extra_id_0>, <extra_id_1>, ...) per span,
// padded with pad to seq_length; decoder input = bos, then sentinel + span tokens per span, padded to
// seq_length_dec; labels = sentinel + span tokens per span, then eos, padded with -1; loss_mask 1 on
// the decoder's tokens. A sample whose encoder or decoder side does not fit is a DataError (NeMo
// asserts).
//
// Not handled (refused by T5DatasetOptions::validate with the key name): respect_document_boundaries
// False (the GPT-style mapping), and permutation True (NeMo draws it from numpy's global, unseeded
// random state, so no run reproduces another).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/npy.h"
#include "bignlp/data/numpy_random.h"
#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

/// The ids the T5 dataset and model use, laid out as NeMo extends the tokenizer (formats.md §3.5).
/// WordPiece (library megatron, BertWordPiece*): cls [CLS], sep [SEP], mask [MASK], pad [PAD],
/// bos = [CLS], eos = [SEP], sentinels <extra_id_0..N-1> appended after the vocabulary (an existing
/// vocabulary entry of that name keeps its id). SentencePiece (NeMo legacy mode): <cls>, <sep>,
/// <mask> appended unless the model has the piece; pad = the model's pad when its id > 0, else the
/// piece <pad> (appended when missing); bos = the model's bos when its id > 0, else <bos>; eos = the
/// model's eos when its id > 0, else <eos>; then the sentinels, each appended unless the model has
/// it as one piece. Appended tokens take ids vocab_size(), vocab_size()+1, ... in that order.
struct T5Vocabulary {
  std::int32_t cls = -1, sep = -1, mask = -1, pad = -1, bos = -1, eos = -1;
  std::vector<std::int32_t> sentinels;  ///< <extra_id_0>, <extra_id_1>, ...
  std::int64_t base_size = 0;           ///< the tokenizer's own ids
  std::int64_t size = 0;                ///< base_size + appended tokens (the model's unpadded vocabulary)
  bool sentencepiece = false;
  /// True when token `id` continues a word (a WordPiece "##" piece); filled for WordPiece.
  std::function<bool(std::int32_t)> is_continuation;
};

/// The T5 layout of `tokenizer` with `num_sentinel_tokens` sentinels. Throws ConfigError when the
/// tokenizer is neither WordPiece nor SentencePiece, or (WordPiece) lacks [CLS]/[SEP]/[MASK]/[PAD].
T5Vocabulary t5_vocabulary(const Tokenizer& tokenizer, int num_sentinel_tokens);

/// The model.data keys of a T5 dataset (NeMo names and defaults of the launcher presets).
struct T5DatasetOptions {
  std::string name = "train";                  ///< train / valid / test (part of the cache name)
  std::int64_t num_samples = 0;                ///< max_num_samples requested
  std::int32_t seq_length = 512;               ///< encoder length (model.data.seq_length)
  std::int32_t seq_length_dec = 128;           ///< model.data.seq_length_dec
  std::uint32_t seed = 1234;
  double masked_lm_prob = 0.15;
  double short_seq_prob = 0.0;
  int max_ngram_size = 10;
  std::optional<double> mean_ngram_size;       ///< null: geometric p = 0.2
  bool geometric_dist = true;
  bool permutation = false;                    ///< only false (see the file comment)
  bool whole_word_masking = true;
  bool favor_longer_ngrams = false;
  bool respect_document_boundaries = true;     ///< only true (see the file comment)
  std::filesystem::path index_mapping_dir;     ///< empty: caches next to the data
  bool use_cache = true;
  /// Throws ConfigError naming the model.data key that is out of range or unsupported; `vocab`
  /// (may be null) adds NeMo's check that whole-word masking needs a WordPiece tokenizer.
  void validate(const T5Vocabulary* vocab = nullptr) const;
};

/// Megatron's build_mapping over documents `doc_idx` (sentence boundaries, doc_idx[k]..doc_idx[k+1])
/// and sentence lengths `sizes`: rows of (first sentence, end sentence, target length), row-major.
/// Throws DataError when max_num_samples > 0 but no document yields a sample (Megatron loops forever).
std::vector<std::uint64_t> build_t5_samples_mapping(std::span<const std::int64_t> doc_idx,
                                                    UnalignedArray<std::int32_t> sizes, std::int64_t max_num_samples,
                                                    std::int32_t max_seq_length, double short_seq_prob,
                                                    std::uint32_t seed, std::int32_t min_num_sent = 1);

/// The samples-mapping cache file of `data_prefix`.
std::filesystem::path t5_samples_mapping_path(const std::filesystem::path& data_prefix, const T5DatasetOptions& options);

/// One masked span: the token positions (ascending) and their original ids.
struct T5Span {
  std::vector<std::int32_t> positions;
  std::vector<std::int32_t> labels;
};

/// create_masked_lm_predictions (masking_style "t5") on `tokens` with `rng`; `max_predictions` is
/// masked_lm_prob * target length. Returns the spans sorted by first position.
std::vector<T5Span> t5_mask_spans(std::span<const std::int32_t> tokens, const T5DatasetOptions& options,
                                  const T5Vocabulary& vocab, double max_predictions, NumpyRandomState& rng);

/// One training sample; Megatron's int64 arrays, kept as int32 here.
struct T5Sample {
  std::vector<std::int32_t> encoder;      ///< text_enc, seq_length (pad-padded)
  std::vector<std::int32_t> decoder;      ///< text_dec, seq_length_dec (pad-padded)
  std::vector<std::int32_t> labels;       ///< seq_length_dec (-1 past the decoder's tokens)
  std::vector<std::int32_t> loss_mask;    ///< seq_length_dec (1 on the decoder's tokens)
  std::int32_t encoder_length = 0;        ///< tokens before the encoder padding
  std::int32_t decoder_length = 0;        ///< tokens before the decoder padding
};

/// What reading T5 samples needs: a fixed count and sample(i).
class T5SampleSource {
 public:
  virtual ~T5SampleSource() = default;
  virtual std::int64_t size() const = 0;
  virtual std::int32_t seq_length() const = 0;
  virtual std::int32_t seq_length_dec() const = 0;
  /// Sample i (0 <= i < size()); thread-safe and deterministic.
  virtual T5Sample sample(std::int64_t i) const = 0;
};

class T5Dataset final : public T5SampleSource {
 public:
  /// Samples over documents [doc_begin, doc_end) of `data`. Loads the cached samples mapping when it
  /// fits the data, or builds (and caches) it; `log` (may be null) gets one line saying which.
  T5Dataset(std::shared_ptr<const IndexedDataset> data, std::int64_t doc_begin, std::int64_t doc_end,
            const T5DatasetOptions& options, std::shared_ptr<const T5Vocabulary> vocab, const Logger* log = nullptr);

  std::int64_t size() const override { return num_rows_; }
  std::int32_t seq_length() const override { return options_.seq_length; }
  std::int32_t seq_length_dec() const override { return options_.seq_length_dec; }
  T5Sample sample(std::int64_t i) const override;

  /// Row i of the samples mapping: (first sentence, end sentence, target length).
  std::array<std::uint64_t, 3> mapping_row(std::int64_t i) const;
  bool loaded_from_cache() const { return loaded_from_cache_; }
  const T5DatasetOptions& options() const { return options_; }

 private:
  std::string check_cache(std::int64_t first_sentence, std::int64_t end_sentence);

  std::shared_ptr<const IndexedDataset> data_;
  T5DatasetOptions options_;
  std::shared_ptr<const T5Vocabulary> vocab_;
  std::vector<std::uint64_t> built_;
  std::optional<NpyArray> npy_;
  std::span<const std::uint32_t> rows32_;
  std::span<const std::uint64_t> rows64_;
  std::int64_t num_rows_ = 0;
  bool loaded_from_cache_ = false;
};

/// T5 samples mixed by weight (Megatron's BlendableDataset: error-feedback blending indices).
class T5BlendedDataset final : public T5SampleSource {
 public:
  T5BlendedDataset(std::vector<std::shared_ptr<const T5SampleSource>> datasets, std::vector<double> weights,
                   std::int64_t size);
  std::int64_t size() const override { return static_cast<std::int64_t>(dataset_index_.size()); }
  std::int32_t seq_length() const override { return datasets_.front()->seq_length(); }
  std::int32_t seq_length_dec() const override { return datasets_.front()->seq_length_dec(); }
  T5Sample sample(std::int64_t i) const override;

 private:
  std::vector<std::shared_ptr<const T5SampleSource>> datasets_;
  std::vector<std::uint8_t> dataset_index_;
  std::vector<std::int64_t> dataset_sample_index_;
};

/// The datasets of a T5 run's three splits (nullptr: the split has no documents).
struct T5DatasetSplits {
  std::shared_ptr<const T5SampleSource> train, valid, test;
};

struct WeightedPrefix;

/// NeMo's build_train_valid_test_datasets for dataset_type t5: each prefix split by documents
/// (splits_string), each split a T5Dataset asked for its request (one prefix) or for
/// ceil(request * w * 1.005) (a blend, mixed to the sum of those requests). `options.name` and
/// `num_samples` are set per split. Differences where NeMo fails: a prefix with no documents in a
/// split is left out of that split's blend (the others share its weight), and a component with
/// fewer samples than the blend takes from it is built again for that many (with a warning).
T5DatasetSplits build_t5_dataset_splits(const std::vector<WeightedPrefix>& data_prefix,
                                        const std::string& splits_string,
                                        const std::array<std::int64_t, 3>& num_samples,
                                        const T5DatasetOptions& options, std::shared_ptr<const T5Vocabulary> vocab,
                                        const Logger* log = nullptr);

/// The launcher's mT5 auto-blend (nemo_launcher auto_blend.py): every <lang>_*.bin dataset in
/// `preprocessed_dir`, grouped by the file name before its first '_'; language weight =
/// (language bytes / all bytes)^alpha, normalised; file weight = file bytes / language bytes x
/// language weight, rounded to 6 decimals. Returns [w1, prefix1, w2, prefix2, ...] in file-name
/// order. Throws IoError when the folder is missing, DataError when it holds no .bin/.idx pair.
std::vector<std::string> mt5_auto_blend(const std::filesystem::path& preprocessed_dir, double alpha);

}  // namespace bignlp::data
