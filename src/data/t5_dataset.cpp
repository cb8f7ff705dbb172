#include "bignlp/data/t5_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/data/blended_dataset.h"
#include "bignlp/data/dataset_split.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/data/sentencepiece_tokenizer.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

constexpr std::int32_t kLongSentenceLen = 512;  // Megatron's LONG_SENTENCE_LEN
constexpr const char* kSplitNames[3] = {"train", "valid", "test"};

std::int32_t target_sample_len(std::int32_t short_seq_ratio, std::int32_t max_length, std::mt19937& gen) {
  if (short_seq_ratio == 0) return max_length;
  const std::uint32_t r = gen();
  if (r % static_cast<std::uint32_t>(short_seq_ratio) == 0)
    return static_cast<std::int32_t>(2 + r % static_cast<std::uint32_t>(max_length - 1));
  return max_length;
}

// numpy's legacy RandomState.choice(a, p=p) for a scalar draw: the index of the first cdf entry
// greater than a uniform double (cdf = cumsum(p) / its last entry).
std::size_t numpy_choice(std::span<const double> p, NumpyRandomState& rng) {
  std::vector<double> cdf(p.size());
  double acc = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) cdf[i] = acc += p[i];
  const double last = cdf.back();
  for (double& c : cdf) c /= last;
  const double u = rng.random_sample();
  return static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
}

}  // namespace

T5Vocabulary t5_vocabulary(const Tokenizer& tokenizer, int num_sentinel_tokens) {
  if (num_sentinel_tokens < 1)
    throw ConfigError(fmt::format("model.tokenizer.num_sentinel_tokens: {} (the T5 dataset needs at least one sentinel)",
                                  num_sentinel_tokens));
  T5Vocabulary v;
  v.base_size = tokenizer.vocab_size();
  std::int64_t next = v.base_size;
  const std::string type(tokenizer.type_name());
  if (type == "BertWordPieceCase" || type == "BertWordPieceLowerCase") {
    auto need = [&](const char* token) {
      const auto id = tokenizer.token_to_id(token);
      if (!id) throw ConfigError(fmt::format("the {} vocabulary has no {} token, which the T5 dataset needs", type, token));
      return *id;
    };
    v.cls = need("[CLS]");
    v.sep = need("[SEP]");
    v.mask = need("[MASK]");
    v.pad = need("[PAD]");
    v.bos = v.cls;  // NeMo's AutoTokenizer: BERT has no bos/eos
    v.eos = v.sep;
    for (int i = 0; i < num_sentinel_tokens; ++i) {
      const auto id = tokenizer.token_to_id(fmt::format("<extra_id_{}>", i));
      v.sentinels.push_back(id ? *id : static_cast<std::int32_t>(next++));
    }
    auto flags = std::make_shared<std::vector<bool>>(static_cast<std::size_t>(v.base_size));
    for (std::int64_t id = 0; id < v.base_size; ++id)
      (*flags)[static_cast<std::size_t>(id)] = tokenizer.id_to_token(static_cast<std::int32_t>(id)).rfind("##", 0) == 0;
    v.is_continuation = [flags](std::int32_t id) {
      return id >= 0 && static_cast<std::size_t>(id) < flags->size() && (*flags)[static_cast<std::size_t>(id)];
    };
  } else if (type == "sentencepiece") {
    const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer);
    BIGNLP_CHECK(sp != nullptr, "a sentencepiece tokenizer that is not a SentencePieceTokenizer");
    v.sentencepiece = true;
    // A piece the model has (not unk) keeps its id; others are appended.
    auto piece = [&](const std::string& token) -> std::int32_t {
      const auto id = tokenizer.token_to_id(token);  // none for pieces the model lacks (unk)
      return id ? *id : static_cast<std::int32_t>(next++);
    };
    v.cls = piece("<cls>");
    v.sep = piece("<sep>");
    v.mask = piece("<mask>");
    const auto& st = tokenizer.special_tokens();
    v.pad = st.pad && *st.pad > 0 ? *st.pad : piece("<pad>");
    v.bos = st.bos && *st.bos > 0 ? *st.bos : piece("<bos>");
    v.eos = st.eos && *st.eos > 0 ? *st.eos : piece("<eos>");
    for (int i = 0; i < num_sentinel_tokens; ++i) v.sentinels.push_back(piece(fmt::format("<extra_id_{}>", i)));
    v.is_continuation = [](std::int32_t) { return false; };
  } else {
    throw ConfigError(fmt::format("model.tokenizer: the T5 dataset needs a WordPiece (library megatron, type "
                                  "BertWordPieceCase or BertWordPieceLowerCase) or a sentencepiece tokenizer, got {}",
                                  type));
  }
  v.size = next;
  return v;
}

void T5DatasetOptions::validate(const T5Vocabulary* vocab) const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError(fmt::format("model.data.{}: {}", key, why));
  };
  if (seq_length < 3) bad("seq_length", fmt::format("{} is too short (the samples hold seq_length - 2 tokens)", seq_length));
  if (seq_length_dec < 2) bad("seq_length_dec", fmt::format("{} is too short", seq_length_dec));
  if (!(masked_lm_prob >= 0.0 && masked_lm_prob <= 1.0)) bad("masked_lm_prob", fmt::format("{} is not in [0, 1]", masked_lm_prob));
  if (!(short_seq_prob >= 0.0 && short_seq_prob <= 1.0)) bad("short_seq_prob", fmt::format("{} is not in [0, 1]", short_seq_prob));
  if (max_ngram_size < 1) bad("max_ngram_size", fmt::format("{} must be at least 1", max_ngram_size));
  if (mean_ngram_size && !(*mean_ngram_size >= 1.0))
    bad("mean_ngram_size", fmt::format("{} must be null or at least 1 (geometric p = 1 / mean)", *mean_ngram_size));
  if (permutation)
    bad("permutation", "True is not supported: NeMo draws the permuted n-grams from numpy's global, unseeded random "
                       "state (and needs geometric_dist False), so no two runs agree; use False");
  if (!respect_document_boundaries)
    bad("respect_document_boundaries", "False (samples cut across documents) is not supported; use True");
  // NeMo: seq_length_dec must hold the masked tokens.
  if (static_cast<double>(seq_length_dec) < static_cast<double>(seq_length) * masked_lm_prob)
    bad("seq_length_dec", fmt::format("{} is shorter than seq_length * masked_lm_prob = {} * {}", seq_length_dec,
                                      seq_length, masked_lm_prob));
  if (vocab != nullptr && vocab->sentencepiece && whole_word_masking)
    bad("whole_word_masking", "True needs a WordPiece tokenizer; with sentencepiece it must be False (as NeMo requires)");
}

std::vector<std::uint64_t> build_t5_samples_mapping(std::span<const std::int64_t> doc_idx,
                                                    UnalignedArray<std::int32_t> sizes, std::int64_t max_num_samples,
                                                    std::int32_t max_seq_length, double short_seq_prob,
                                                    std::uint32_t seed, std::int32_t min_num_sent) {
  BIGNLP_CHECK(max_seq_length > 1, "max_seq_length must exceed 1, got {}", max_seq_length);
  BIGNLP_CHECK(short_seq_prob >= 0.0 && short_seq_prob <= 1.0, "short_seq_prob {} outside [0, 1]", short_seq_prob);
  BIGNLP_CHECK(!doc_idx.empty(), "doc_idx is empty");
  std::int32_t short_seq_ratio = 0;
  if (short_seq_prob > 0) short_seq_ratio = static_cast<std::int32_t>(std::round(1.0 / short_seq_prob));
  std::vector<std::uint64_t> rows;
  // One pass (Megatron makes two with identical draws: count, then fill).
  std::mt19937 gen(seed);
  const auto max_samples = static_cast<std::uint64_t>(std::max<std::int64_t>(max_num_samples, 0));
  std::uint64_t map_index = 0;
  const std::int64_t num_epochs = std::numeric_limits<std::int32_t>::max() - 1;
  for (std::int64_t epoch = 0; epoch < num_epochs; ++epoch) {
    if (map_index >= max_samples) break;
    const std::uint64_t before = map_index;
    for (std::size_t doc = 0; doc + 1 < doc_idx.size(); ++doc) {
      const std::int64_t first = doc_idx[doc];
      const std::int64_t last = doc_idx[doc + 1];
      std::int64_t prev_start = first;
      std::int64_t remain = last - first;
      bool long_sentence = false;
      if (remain > 1) {
        for (std::int64_t s = first; s < last; ++s) {
          if (sizes[static_cast<std::size_t>(s)] > kLongSentenceLen) {
            long_sentence = true;
            break;
          }
        }
      }
      if (remain < min_num_sent || long_sentence) continue;
      std::int64_t seq_len = 0;
      std::int32_t num_sent = 0;
      std::int32_t target = target_sample_len(short_seq_ratio, max_seq_length, gen);
      for (std::int64_t s = first; s < last; ++s) {
        seq_len += sizes[static_cast<std::size_t>(s)];
        ++num_sent;
        --remain;
        if ((seq_len >= target && remain > 1 && num_sent >= min_num_sent) || remain == 0) {
          rows.push_back(static_cast<std::uint64_t>(prev_start));
          rows.push_back(static_cast<std::uint64_t>(s + 1));
          rows.push_back(static_cast<std::uint64_t>(target));
          ++map_index;
          prev_start = s + 1;
          target = target_sample_len(short_seq_ratio, max_seq_length, gen);
          seq_len = 0;
          num_sent = 0;
        }
      }
    }
    if (map_index == before) {
      throw DataError(fmt::format("no document of the {} gives a T5 sample (every document is empty or has a sentence "
                                  "longer than {} tokens), but {} samples are requested",
                                  doc_idx.size() - 1, kLongSentenceLen, max_num_samples));
    }
  }
  // Shuffle the rows with mt19937_64(seed + 1).
  std::mt19937_64 gen64(static_cast<std::uint64_t>(seed) + 1);
  const auto n = static_cast<std::int64_t>(map_index);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(gen64() % static_cast<std::uint64_t>(i + 1));
    for (int k = 0; k < 3; ++k) std::swap(rows[static_cast<std::size_t>(3 * i + k)], rows[static_cast<std::size_t>(3 * j + k)]);
  }
  return rows;
}

fs::path t5_samples_mapping_path(const fs::path& data_prefix, const T5DatasetOptions& options) {
  const std::string suffix = fmt::format("_{}_indexmap_{}mns_{}msl_{:.2f}ssp_{}s.npy", options.name, options.num_samples,
                                         options.seq_length - 2, options.short_seq_prob, options.seed);
  if (options.index_mapping_dir.empty()) return fs::path(data_prefix.string() + suffix);
  return options.index_mapping_dir / (data_prefix.filename().string() + suffix);
}

std::vector<T5Span> t5_mask_spans(std::span<const std::int32_t> tokens, const T5DatasetOptions& options,
                                  const T5Vocabulary& vocab, double max_predictions, NumpyRandomState& rng) {
  std::vector<T5Span> spans;
  // Candidate units.
  std::vector<std::vector<std::int32_t>> units;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::int32_t t = tokens[i];
    if (t == vocab.cls || t == vocab.sep) continue;
    if (options.whole_word_masking && !units.empty() && vocab.is_continuation && vocab.is_continuation(t)) {
      units.back().push_back(static_cast<std::int32_t>(i));
    } else {
      units.push_back({static_cast<std::int32_t>(i)});
    }
  }
  if (options.masked_lm_prob == 0.0) return spans;
  const double rounded = std::nearbyint(static_cast<double>(tokens.size()) * options.masked_lm_prob);  // half-even
  const double num_to_predict = std::min(max_predictions, std::max(1.0, rounded));
  const int max_n = options.max_ngram_size;
  std::vector<double> pvals;
  if (!options.geometric_dist) {
    pvals.resize(static_cast<std::size_t>(max_n));
    for (int n = 1; n <= max_n; ++n) pvals[static_cast<std::size_t>(n - 1)] = 1.0 / static_cast<double>(n);
    const double sum = numpy_sum(pvals);
    for (double& p : pvals) p /= sum;
    if (options.favor_longer_ngrams) std::reverse(pvals.begin(), pvals.end());
    // Every candidate list holds max_n n-grams, so choice() always sees all of pvals, renormalised.
    const double sum2 = numpy_sum(pvals);
    for (double& p : pvals) p /= sum2;
  }
  const double geometric_p = options.mean_ngram_size ? 1.0 / *options.mean_ngram_size : 0.2;
  // The order in which unit positions are tried.
  std::vector<std::int32_t> order(units.size());
  for (std::size_t u = 0; u < units.size(); ++u) order[u] = static_cast<std::int32_t>(u);
  rng.shuffle(std::span<std::int32_t>(order));
  // The tokens of n-gram (u, n): units[u : u + n] flattened.
  auto ngram = [&](std::size_t u, int n) {
    std::vector<std::int32_t> out;
    for (std::size_t k = u; k < std::min(units.size(), u + static_cast<std::size_t>(n)); ++k)
      out.insert(out.end(), units[k].begin(), units[k].end());
    return out;
  };
  std::vector<bool> covered(tokens.size(), false);
  std::size_t masked = 0;
  for (const std::int32_t u32 : order) {
    const auto u = static_cast<std::size_t>(u32);
    if (static_cast<double>(masked) >= num_to_predict) break;
    int n = 0;
    if (!options.geometric_dist) {
      n = static_cast<int>(numpy_choice(pvals, rng)) + 1;
    } else {
      n = static_cast<int>(std::min<std::int64_t>(rng.geometric(geometric_p), max_n));
    }
    std::vector<std::int32_t> index_set = ngram(u, n);
    --n;
    while (static_cast<double>(masked + index_set.size()) > num_to_predict) {
      if (n == 0) break;
      index_set = ngram(u, n);
      --n;
    }
    if (static_cast<double>(masked + index_set.size()) > num_to_predict) continue;
    bool any_covered = false;
    for (const auto i : index_set) any_covered = any_covered || covered[static_cast<std::size_t>(i)];
    if (any_covered) continue;
    T5Span span;
    for (const auto i : index_set) {
      covered[static_cast<std::size_t>(i)] = true;
      span.positions.push_back(i);
      span.labels.push_back(tokens[static_cast<std::size_t>(i)]);
    }
    masked += index_set.size();
    spans.push_back(std::move(span));
  }
  // Python's stable sort by the first index (spans never share a first index).
  std::stable_sort(spans.begin(), spans.end(),
                   [](const T5Span& a, const T5Span& b) { return a.positions.front() < b.positions.front(); });
  return spans;
}

T5Dataset::T5Dataset(std::shared_ptr<const IndexedDataset> data, std::int64_t doc_begin, std::int64_t doc_end,
                     const T5DatasetOptions& options, std::shared_ptr<const T5Vocabulary> vocab, const Logger* log)
    : data_(std::move(data)), options_(options), vocab_(std::move(vocab)) {
  BIGNLP_CHECK(data_ != nullptr && vocab_ != nullptr, "T5Dataset needs an indexed dataset and a vocabulary");
  options_.validate(vocab_.get());
  BIGNLP_CHECK(doc_begin >= 0 && doc_begin < doc_end && doc_end <= static_cast<std::int64_t>(data_->num_documents()),
               "documents [{}, {}) outside the {} documents of '{}'", doc_begin, doc_end, data_->num_documents(),
               data_->prefix().string());
  if (static_cast<std::int64_t>(vocab_->sentinels.size()) < 1) throw ConfigError("the T5 vocabulary has no sentinels");
  std::vector<std::int64_t> doc_idx;
  for (std::int64_t d = doc_begin; d <= doc_end; ++d) doc_idx.push_back(data_->doc_idx()[static_cast<std::size_t>(d)]);
  const fs::path cache = t5_samples_mapping_path(data_->prefix(), options_);
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (options_.use_cache && fs::exists(cache, ec)) {
    std::string stale;
    try {
      npy_.emplace(cache);
      stale = check_cache(doc_idx.front(), doc_idx.back());
    } catch (const DataError& e) {
      stale = e.what();
    }
    if (stale.empty()) {
      loaded_from_cache_ = true;
    } else {
      if (log != nullptr) log->warn("'{}' does not match '{}' ({}); rebuilding it", cache.string(), data_->prefix().string(), stale);
      npy_.reset();
      rows32_ = {};
      rows64_ = {};
    }
  }
  if (!loaded_from_cache_) {
    built_ = build_t5_samples_mapping(doc_idx, data_->sizes(), options_.num_samples, options_.seq_length - 2,
                                      options_.short_seq_prob, options_.seed);
    const auto n = static_cast<std::int64_t>(built_.size() / 3);
    if (options_.use_cache) {
      if (options_.index_mapping_dir.empty() == false) fs::create_directories(options_.index_mapping_dir);
      if (data_->num_sequences() >= static_cast<std::size_t>(std::numeric_limits<std::uint32_t>::max())) {
        write_npy<std::uint64_t>(cache, built_, {n, 3});
      } else {
        std::vector<std::uint32_t> narrow(built_.begin(), built_.end());
        write_npy<std::uint32_t>(cache, narrow, {n, 3});
      }
    }
    rows64_ = built_;
  }
  num_rows_ = static_cast<std::int64_t>((rows32_.size() + rows64_.size()) / 3);
  if (log != nullptr) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log->info("{} T5 dataset '{}': {} samples ({} requested) {} '{}' in {:.3f}s", options_.name,
              data_->prefix().string(), num_rows_, options_.num_samples,
              loaded_from_cache_ ? "from the cached samples mapping" : options_.use_cache ? "built and cached as" : "built for",
              cache.string(), secs);
  }
}

std::string T5Dataset::check_cache(std::int64_t first_sentence, std::int64_t end_sentence) {
  auto& self = *this;
  const auto& shape = npy_->shape();
  if (shape.size() != 2 || shape[1] != 3) return "not an [n, 3] array";
  if (npy_->descr() == npy_descr<std::uint32_t>()) {
    self.rows32_ = npy_->values<std::uint32_t>();
  } else if (npy_->descr() == npy_descr<std::uint64_t>()) {
    self.rows64_ = npy_->values<std::uint64_t>();
  } else {
    return "dtype " + npy_->descr();
  }
  const std::int64_t n = shape[0];
  if (n < options_.num_samples) return fmt::format("{} rows for {} requested samples", n, options_.num_samples);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = mapping_row(i);
    if (static_cast<std::int64_t>(row[0]) < first_sentence || row[1] <= row[0] ||
        static_cast<std::int64_t>(row[1]) > end_sentence || row[2] < 1 ||
        static_cast<std::int64_t>(row[2]) > options_.seq_length - 2)
      return fmt::format("row {} ({}, {}, {}) is outside sentences [{}, {})", i, row[0], row[1], row[2], first_sentence,
                         end_sentence);
  }
  return {};
}

std::array<std::uint64_t, 3> T5Dataset::mapping_row(std::int64_t i) const {
  const auto k = static_cast<std::size_t>(3 * i);
  if (!rows32_.empty()) return {rows32_[k], rows32_[k + 1], rows32_[k + 2]};
  return {rows64_[k], rows64_[k + 1], rows64_[k + 2]};
}

T5Sample T5Dataset::sample(std::int64_t idx) const {
  BIGNLP_CHECK(idx >= 0 && idx < num_rows_, "T5 sample {} out of range ({} samples)", idx, num_rows_);
  NumpyRandomState rng(static_cast<std::uint32_t>(options_.seed + static_cast<std::uint64_t>(idx)));
  const auto row = mapping_row(idx);
  const auto target = static_cast<std::size_t>(row[2]);
  std::vector<std::int32_t> tokens;
  for (std::uint64_t s = row[0]; s < row[1] && tokens.size() < target; ++s) {
    const auto len = static_cast<std::size_t>(data_->sizes()[static_cast<std::size_t>(s)]);
    const std::size_t take = std::min(len, target - tokens.size());
    const std::size_t at = tokens.size();
    tokens.resize(at + take);
    data_->read(static_cast<std::size_t>(s), 0, std::span<std::int32_t>(tokens.data() + at, take));
  }
  const double max_predictions = options_.masked_lm_prob * static_cast<double>(target);
  const std::vector<T5Span> spans = t5_mask_spans(tokens, options_, *vocab_, max_predictions, rng);
  if (spans.size() > vocab_->sentinels.size())
    throw DataError(fmt::format("T5 sample {} of '{}' has {} masked spans but only {} sentinel tokens exist", idx,
                                data_->prefix().string(), spans.size(), vocab_->sentinels.size()));
  T5Sample out;
  std::vector<std::int32_t> labels;
  out.decoder.push_back(vocab_->bos);
  std::size_t start = 0;
  for (std::size_t k = 0; k < spans.size(); ++k) {
    const std::int32_t flag = vocab_->sentinels[k];
    const T5Span& span = spans[k];
    out.decoder.push_back(flag);
    out.decoder.insert(out.decoder.end(), span.labels.begin(), span.labels.end());
    labels.push_back(flag);
    labels.insert(labels.end(), span.labels.begin(), span.labels.end());
    // The encoder keeps the unmasked tokens up to the span and one sentinel for it.
    out.encoder.insert(out.encoder.end(), tokens.begin() + static_cast<std::ptrdiff_t>(start),
                       tokens.begin() + span.positions.front());
    out.encoder.push_back(flag);
    start = static_cast<std::size_t>(span.positions.back()) + 1;
  }
  labels.push_back(vocab_->eos);
  out.encoder.insert(out.encoder.end(), tokens.begin() + static_cast<std::ptrdiff_t>(std::min(start, tokens.size())),
                     tokens.end());
  const auto te = static_cast<std::size_t>(options_.seq_length);
  const auto td = static_cast<std::size_t>(options_.seq_length_dec);
  if (out.encoder.size() > te || out.decoder.size() > td)
    throw DataError(fmt::format("T5 sample {} of '{}' does not fit: encoder {} tokens (seq_length {}), decoder {} tokens "
                                "(seq_length_dec {}); raise model.data.seq_length_dec or lower masked_lm_prob",
                                idx, data_->prefix().string(), out.encoder.size(), te, out.decoder.size(), td));
  out.encoder_length = static_cast<std::int32_t>(out.encoder.size());
  out.decoder_length = static_cast<std::int32_t>(out.decoder.size());
  out.encoder.resize(te, vocab_->pad);
  out.decoder.resize(td, vocab_->pad);
  labels.resize(td, -1);
  out.labels = std::move(labels);
  out.loss_mask.assign(td, 0);
  std::fill(out.loss_mask.begin(), out.loss_mask.begin() + out.decoder_length, 1);
  return out;
}

T5BlendedDataset::T5BlendedDataset(std::vector<std::shared_ptr<const T5SampleSource>> datasets,
                                   std::vector<double> weights, std::int64_t size)
    : datasets_(std::move(datasets)) {
  BIGNLP_CHECK(!datasets_.empty() && datasets_.size() == weights.size() && datasets_.size() < 255,
               "a T5 blend needs 1..254 datasets with one weight each");
  for (const auto& d : datasets_) {
    BIGNLP_CHECK(d->seq_length() == datasets_.front()->seq_length() &&
                     d->seq_length_dec() == datasets_.front()->seq_length_dec(),
                 "blended T5 datasets differ in sequence lengths");
  }
  const double total = numpy_sum(weights);
  for (double& w : weights) w /= total;
  BlendingIndices idx = build_blending_indices(weights, size);
  dataset_index_ = std::move(idx.dataset_index);
  dataset_sample_index_ = std::move(idx.dataset_sample_index);
  for (std::size_t i = 0; i < dataset_index_.size(); ++i) {
    if (dataset_sample_index_[i] >= datasets_[dataset_index_[i]]->size())
      throw DataError(fmt::format("the T5 blend needs sample {} of its dataset {}, which has {}", dataset_sample_index_[i],
                                  dataset_index_[i], datasets_[dataset_index_[i]]->size()));
  }
}

T5Sample T5BlendedDataset::sample(std::int64_t i) const {
  BIGNLP_CHECK(i >= 0 && i < size(), "T5 sample {} out of range ({} samples)", i, size());
  const auto k = static_cast<std::size_t>(i);
  return datasets_[dataset_index_[k]]->sample(dataset_sample_index_[k]);
}

T5DatasetSplits build_t5_dataset_splits(const std::vector<WeightedPrefix>& data_prefix, const std::string& splits_string,
                                        const std::array<std::int64_t, 3>& num_samples, const T5DatasetOptions& options,
                                        std::shared_ptr<const T5Vocabulary> vocab, const Logger* log) {
  if (data_prefix.empty()) throw ConfigError("model.data.data_prefix is empty");
  std::vector<std::shared_ptr<const IndexedDataset>> data;
  std::vector<std::array<std::int64_t, 4>> bounds;
  for (const auto& p : data_prefix) {
    data.push_back(std::make_shared<const IndexedDataset>(p.prefix));
    bounds.push_back(train_valid_test_split(splits_string, static_cast<std::int64_t>(data.back()->num_documents())));
  }
  auto make = [&](std::size_t i, int k, std::int64_t request) {
    T5DatasetOptions o = options;
    o.name = kSplitNames[k];
    o.num_samples = request;
    return std::make_shared<const T5Dataset>(data[i], bounds[i][k], bounds[i][k + 1], o, vocab, log);
  };
  T5DatasetSplits result;
  std::array<std::shared_ptr<const T5SampleSource>*, 3> slots{&result.train, &result.valid, &result.test};
  for (int k = 0; k < 3; ++k) {
    std::vector<std::size_t> present;
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (bounds[i][k + 1] > bounds[i][k]) {
        present.push_back(i);
      } else if (log != nullptr && data.size() > 1 && num_samples[k] > 0) {
        log->warn("'{}' has no documents in the {} split ('{}'); it is left out of the {} blend",
                  data_prefix[i].prefix.string(), kSplitNames[k], splits_string, kSplitNames[k]);
      }
    }
    if (present.empty()) continue;
    if (data.size() == 1) {
      *slots[k] = make(0, k, num_samples[k]);
      continue;
    }
    // NeMo: weights normalised (Python's sum, left to right), requests ceil(n * w * 1.005), the blend
    // as large as their sum. A prefix without documents in this split leaves the blend (NeMo fails
    // there), and the others share its weight.
    double total = 0.0;
    for (const auto i : present) total += data_prefix[i].weight;
    std::vector<double> weights;
    std::vector<std::int64_t> requests;
    std::int64_t size = 0;
    for (const auto i : present) {
      weights.push_back(data_prefix[i].weight / total);
      requests.push_back(static_cast<std::int64_t>(std::ceil(static_cast<double>(num_samples[k]) * weights.back() * 1.005)));
      size += requests.back();
    }
    // A component asked for fewer samples than the blend takes from it (possible when prefixes are
    // left out, or by rounding) is built again for what the blend needs.
    std::vector<double> normalised = weights;
    const double sum = numpy_sum(normalised);
    for (double& w : normalised) w /= sum;
    const BlendingIndices idx = build_blending_indices(normalised, size);
    std::vector<std::int64_t> needed(present.size(), 0);
    for (std::size_t j = 0; j < idx.dataset_index.size(); ++j)
      needed[idx.dataset_index[j]] = std::max(needed[idx.dataset_index[j]], idx.dataset_sample_index[j] + 1);
    std::vector<std::shared_ptr<const T5SampleSource>> parts;
    for (std::size_t j = 0; j < present.size(); ++j) {
      std::shared_ptr<const T5SampleSource> ds = make(present[j], k, requests[j]);
      if (ds->size() < needed[j]) {
        if (log != nullptr)
          log->warn("'{}' {} split: the blend takes {} samples where {} were requested; building {}",
                    data_prefix[present[j]].prefix.string(), kSplitNames[k], needed[j], requests[j], needed[j]);
        ds = make(present[j], k, needed[j]);
      }
      parts.push_back(std::move(ds));
    }
    *slots[k] = std::make_shared<const T5BlendedDataset>(parts, weights, size);
  }
  return result;
}

std::vector<std::string> mt5_auto_blend(const fs::path& preprocessed_dir, double alpha) {
  std::error_code ec;
  if (!fs::is_directory(preprocessed_dir, ec))
    throw IoError(fmt::format("run.preprocessed_dir '{}' is not a directory", preprocessed_dir.string()));
  std::map<std::string, std::uint64_t> files;  // prefix path -> .bin bytes, in name order
  for (const auto& entry : fs::directory_iterator(preprocessed_dir)) {
    const fs::path p = entry.path();
    if (p.extension() != ".bin" || !entry.is_regular_file()) continue;
    fs::path prefix = p;
    prefix.replace_extension();
    if (!fs::exists(dataset_idx_path(prefix), ec)) continue;
    files[prefix.string()] = fs::file_size(p);
  }
  if (files.empty())
    throw DataError(fmt::format("run.preprocessed_dir '{}' holds no preprocessed dataset (.bin/.idx)", preprocessed_dir.string()));
  std::map<std::string, std::uint64_t> lang_bytes;
  auto lang_of = [](const std::string& prefix) {
    const std::string name = fs::path(prefix).filename().string();
    return name.substr(0, name.find('_'));
  };
  std::uint64_t all = 0;
  for (const auto& [prefix, bytes] : files) {
    lang_bytes[lang_of(prefix)] += bytes;
    all += bytes;
  }
  std::map<std::string, double> ratio;
  double total = 0.0;
  for (const auto& [lang, bytes] : lang_bytes) {
    const double r = std::pow(static_cast<double>(bytes) / static_cast<double>(all), alpha);
    ratio[lang] = r;
    total += r;
  }
  std::vector<std::string> out;
  for (const auto& [prefix, bytes] : files) {
    const std::string lang = lang_of(prefix);
    const double w = static_cast<double>(bytes) / static_cast<double>(lang_bytes[lang]) * (ratio[lang] / total);
    out.push_back(fmt::format("{}", std::round(w * 1e6) / 1e6));
    out.push_back(prefix);
  }
  return out;
}

}  // namespace bignlp::data
