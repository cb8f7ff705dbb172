#include "bignlp/data/gpt_dataset.h"

#include <fmt/format.h>

#include <chrono>
#include <limits>
#include <numeric>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/data/numpy_random.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

std::vector<std::int32_t> build_doc_idx(std::int64_t doc_begin, std::int64_t doc_end, std::int64_t epochs,
                                        NumpyRandomState& rng) {
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>((doc_end - doc_begin) * epochs));
  for (std::int64_t e = 0; e < epochs; ++e) {
    for (std::int64_t d = doc_begin; d < doc_end; ++d) out.push_back(static_cast<std::int32_t>(d));
  }
  rng.shuffle(std::span<std::int32_t>(out));
  return out;
}

}  // namespace

GptIndexMaps build_gpt_index_maps(UnalignedArray<std::int32_t> sizes, std::int64_t doc_begin, std::int64_t doc_end,
                                  std::int64_t num_samples, std::int32_t seq_length, std::uint32_t seed,
                                  bool add_extra_token) {
  BIGNLP_CHECK(doc_begin >= 0 && doc_begin <= doc_end && doc_end <= static_cast<std::int64_t>(sizes.size()),
               "documents [{}, {}) outside the {} sequences", doc_begin, doc_end, sizes.size());
  BIGNLP_CHECK(seq_length > 0, "seq_length must be positive, got {}", seq_length);
  BIGNLP_CHECK(num_samples >= 0, "num_samples must be non-negative, got {}", num_samples);
  const std::int64_t extra = add_extra_token ? 1 : 0;
  GptIndexMaps maps;
  for (std::int64_t d = doc_begin; d < doc_end; ++d) maps.tokens_per_epoch += sizes[static_cast<std::size_t>(d)];
  const std::int64_t tpe = maps.tokens_per_epoch;
  // Like Megatron, a split with fewer tokens than one sample simply runs over several epochs; only an
  // empty one cannot produce samples.
  if (tpe == 0 && num_samples > 0) {
    throw DataError(fmt::format("documents [{}, {}) hold no tokens, so no sample of {} tokens can be built", doc_begin,
                                doc_end, seq_length + extra));
  }
  if (tpe == 0) {
    maps.num_epochs = 1;
    maps.sample_idx = {0, 0};
    return maps;
  }
  // num_epochs: the smallest e with (e * tpe - extra) // seq_length >= num_samples.
  std::int64_t epochs = 0;
  std::int64_t total = 0;
  do {
    ++epochs;
    total += tpe;
  } while ((total - extra) / seq_length < num_samples);
  maps.num_epochs = epochs;

  std::int64_t from_prev = 0;
  if (epochs > 1) {
    from_prev = ((epochs - 1) * tpe - extra) / seq_length;
    const std::int64_t last = num_samples - from_prev;
    const std::int64_t per_epoch = (tpe - extra) / seq_length;
    // Megatron asserts last < per_epoch + 1, which fails when a split holds less than one sample per
    // epoch; such splits are built without a separate last epoch instead of stopping.
    maps.separate_last_epoch = last < per_epoch + 1 &&
                               last < static_cast<std::int64_t>(0.80 * static_cast<double>(per_epoch));
  }

  NumpyRandomState rng(seed);
  if (!maps.separate_last_epoch) {
    maps.doc_idx = build_doc_idx(doc_begin, doc_end, epochs, rng);
  } else {
    maps.doc_idx = build_doc_idx(doc_begin, doc_end, epochs - 1, rng);
    const std::vector<std::int32_t> last = build_doc_idx(doc_begin, doc_end, 1, rng);
    maps.doc_idx.insert(maps.doc_idx.end(), last.begin(), last.end());
  }
  BIGNLP_CHECK(maps.doc_idx.size() < static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
               "doc_idx has {} entries, beyond the int32 range of Megatron's sample_idx", maps.doc_idx.size());

  // sample_idx, as Megatron's helpers.build_sample_idx.
  const std::int64_t n = (epochs * tpe - extra) / seq_length;
  maps.sample_idx.resize(static_cast<std::size_t>(2 * (n + 1)));
  std::int64_t d = 0;
  std::int64_t offset = 0;
  maps.sample_idx[0] = 0;
  maps.sample_idx[1] = 0;
  for (std::int64_t s = 1; s <= n; ++s) {
    std::int64_t remaining = seq_length + extra;
    while (remaining != 0) {
      BIGNLP_ASSERT(d < static_cast<std::int64_t>(maps.doc_idx.size()));
      const std::int64_t doc_length = sizes[static_cast<std::size_t>(maps.doc_idx[static_cast<std::size_t>(d)])] - offset;
      remaining -= doc_length;
      if (remaining <= 0) {
        offset += remaining + doc_length - extra;
        remaining = 0;
      } else {
        ++d;
        offset = 0;
      }
    }
    maps.sample_idx[static_cast<std::size_t>(2 * s)] = static_cast<std::int32_t>(d);
    maps.sample_idx[static_cast<std::size_t>(2 * s + 1)] = static_cast<std::int32_t>(offset);
  }

  // shuffle_idx: the samples of the first epochs, then (separately) those of the last.
  const std::int64_t first = maps.separate_last_epoch ? from_prev : n;
  maps.shuffle_idx.resize(static_cast<std::size_t>(n));
  std::iota(maps.shuffle_idx.begin(), maps.shuffle_idx.end(), std::int64_t{0});
  rng.shuffle(std::span<std::int64_t>(maps.shuffle_idx.data(), static_cast<std::size_t>(first)));
  if (first != n) {
    rng.shuffle(std::span<std::int64_t>(maps.shuffle_idx.data() + first, static_cast<std::size_t>(n - first)));
  }
  return maps;
}

fs::path gpt_index_cache_prefix(const fs::path& data_prefix, const GptDatasetOptions& options) {
  const std::string suffix = fmt::format("_{}_indexmap_{}ns_{}sl_{}s", options.name, options.num_samples,
                                         options.seq_length, options.seed);
  if (options.index_mapping_dir.empty()) return fs::path(data_prefix.string() + suffix);
  return options.index_mapping_dir / (data_prefix.filename().string() + suffix);
}

GptDataset::GptDataset(std::shared_ptr<const IndexedDataset> data, std::int64_t doc_begin, std::int64_t doc_end,
                       const GptDatasetOptions& options, const Logger* log)
    : data_(std::move(data)),
      sample_length_(options.seq_length + (options.add_extra_token ? 1 : 0)),
      add_extra_token_(options.add_extra_token) {
  BIGNLP_CHECK(data_ != nullptr, "GptDataset needs an indexed dataset");
  const fs::path cache = gpt_index_cache_prefix(data_->prefix(), options);
  const fs::path doc_path = cache.string() + "_doc_idx.npy";
  const fs::path sample_path = cache.string() + "_sample_idx.npy";
  const fs::path shuffle_path = cache.string() + "_shuffle_idx.npy";
  std::error_code ec;
  const bool cached = options.use_cache && fs::exists(doc_path, ec) && fs::exists(sample_path, ec) &&
                      fs::exists(shuffle_path, ec);
  const auto start = std::chrono::steady_clock::now();
  std::string stale;
  if (cached) {
    try {
      doc_npy_.emplace(doc_path);
      sample_npy_.emplace(sample_path);
      shuffle_npy_.emplace(shuffle_path);
      stale = check_cache(doc_begin, doc_end, options);
    } catch (const DataError& e) {
      stale = e.what();
    }
    if (stale.empty()) {
      loaded_from_cache_ = true;
    } else {
      if (log != nullptr) {
        log->warn("the cached index maps '{}_*.npy' do not match '{}' ({}); rebuilding them", cache.string(),
                  data_->prefix().string(), stale);
      }
      doc_npy_.reset();
      sample_npy_.reset();
      shuffle_npy_.reset();
      doc_idx_ = {};
      sample_idx_ = {};
      shuffle32_ = {};
      shuffle64_ = {};
    }
  }
  if (!loaded_from_cache_) {
    built_ = build_gpt_index_maps(data_->sizes(), doc_begin, doc_end, options.num_samples, options.seq_length,
                                  options.seed, options.add_extra_token);
    const auto n = static_cast<std::int64_t>(built_.shuffle_idx.size());
    if (options.use_cache) {
      write_npy<std::int32_t>(doc_path, built_.doc_idx);
      write_npy<std::int32_t>(sample_path, built_.sample_idx, {n + 1, 2});
      if (n >= static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()) - 1) {
        write_npy<std::int64_t>(shuffle_path, built_.shuffle_idx);
      } else {
        std::vector<std::uint32_t> narrow(built_.shuffle_idx.begin(), built_.shuffle_idx.end());
        write_npy<std::uint32_t>(shuffle_path, narrow);
      }
    }
    doc_idx_ = built_.doc_idx;
    sample_idx_ = built_.sample_idx;
    shuffle64_ = built_.shuffle_idx;
  }
  num_samples_ = static_cast<std::int64_t>(shuffle32_.size() + shuffle64_.size());
  if (log != nullptr) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (loaded_from_cache_) {
      log->info("{} dataset '{}': {} samples from cached index maps '{}_*.npy'", options.name,
                data_->prefix().string(), num_samples_, cache.string());
    } else {
      log->info("{} dataset '{}': built index maps in {:.3f}s: documents [{}, {}), {} tokens per epoch, {} epoch(s){}, "
                "{} samples (requested {}){}",
                options.name, data_->prefix().string(), secs, doc_begin, doc_end, built_.tokens_per_epoch,
                built_.num_epochs, built_.separate_last_epoch ? " with a separately shuffled last epoch" : "",
                num_samples_, options.num_samples, options.use_cache ? fmt::format(", cached as '{}_*.npy'", cache.string()) : "");
    }
  }
}

std::string GptDataset::check_cache(std::int64_t doc_begin, std::int64_t doc_end, const GptDatasetOptions& options) {
  if (doc_npy_->descr() != npy_descr<std::int32_t>() || sample_npy_->descr() != npy_descr<std::int32_t>() ||
      (shuffle_npy_->descr() != npy_descr<std::int64_t>() && shuffle_npy_->descr() != npy_descr<std::uint32_t>())) {
    return "unexpected dtypes";
  }
  doc_idx_ = doc_npy_->values<std::int32_t>();
  sample_idx_ = sample_npy_->values<std::int32_t>();
  if (shuffle_npy_->descr() == npy_descr<std::int64_t>()) {
    shuffle64_ = shuffle_npy_->values<std::int64_t>();
  } else {
    shuffle32_ = shuffle_npy_->values<std::uint32_t>();
  }
  const auto& sshape = sample_npy_->shape();
  const auto n = static_cast<std::int64_t>(shuffle32_.size() + shuffle64_.size());
  if (sshape.size() != 2 || sshape[1] != 2 || sshape[0] != n + 1 || doc_npy_->shape().size() != 1) {
    return fmt::format("sample_idx shape [{}] and {} shuffle entries disagree", fmt::join(sshape, ", "), n);
  }
  // doc_idx must hold every document of the split the same number of times (the epochs), and the
  // sample count must follow from the documents' current token counts.
  const std::int64_t docs = doc_end - doc_begin;
  if (docs <= 0 || static_cast<std::int64_t>(doc_idx_.size()) % docs != 0) return "doc_idx does not cover the split";
  const std::int64_t epochs = static_cast<std::int64_t>(doc_idx_.size()) / docs;
  std::vector<std::int64_t> count(static_cast<std::size_t>(docs), 0);
  for (const std::int32_t d : doc_idx_) {
    if (d < doc_begin || d >= doc_end) return fmt::format("document {} is outside the split [{}, {})", d, doc_begin, doc_end);
    ++count[static_cast<std::size_t>(d - doc_begin)];
  }
  for (const auto c : count) {
    if (c != epochs) return "doc_idx is not a permutation of the split's documents";
  }
  std::int64_t tokens = 0;
  for (std::int64_t d = doc_begin; d < doc_end; ++d) tokens += data_->sizes()[static_cast<std::size_t>(d)];
  const std::int64_t extra = options.add_extra_token ? 1 : 0;
  const std::int64_t expected = tokens == 0 ? 0 : (epochs * tokens - extra) / options.seq_length;
  if (n != expected) return fmt::format("{} samples cached, the data now gives {}", n, expected);
  // Every index a read follows is checked here once, so that a damaged cache (flipped bits,
  // another program's file) is rebuilt instead of read out of bounds.
  const std::string sample_file = sample_npy_->path().filename().string();
  const std::string shuffle_file = shuffle_npy_->path().filename().string();
  const auto ndoc = static_cast<std::int64_t>(doc_idx_.size());
  const auto size_at = [&](std::int64_t pos) {
    return static_cast<std::int64_t>(data_->sizes()[static_cast<std::size_t>(doc_idx_[static_cast<std::size_t>(pos)])]);
  };
  for (std::int64_t k = 0; k <= n; ++k) {
    const std::int64_t d = sample_idx_[static_cast<std::size_t>(2 * k)];
    const std::int64_t o = sample_idx_[static_cast<std::size_t>(2 * k + 1)];
    if (d < 0 || d >= ndoc || o < 0 || o > size_at(d)) {
      return fmt::format("{}: entry {} (document position {}, offset {}) is outside doc_idx ({} positions) or its "
                         "document",
                         sample_file, k, d, o, ndoc);
    }
  }
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t d0 = sample_idx_[static_cast<std::size_t>(2 * k)];
    const std::int64_t o0 = sample_idx_[static_cast<std::size_t>(2 * k + 1)];
    const std::int64_t d1 = sample_idx_[static_cast<std::size_t>(2 * k + 2)];
    const std::int64_t o1 = sample_idx_[static_cast<std::size_t>(2 * k + 3)];
    // Tokens from (d0, o0) to (d1, o1) must be exactly one sequence, and the extra token must exist.
    std::int64_t span = -1;
    if (d1 == d0 && o1 >= o0) {
      span = o1 - o0;
    } else if (d1 > d0) {
      span = size_at(d0) - o0 + o1;
      for (std::int64_t p = d0 + 1; p < d1 && span <= options.seq_length; ++p) span += size_at(p);
    }
    if (span != options.seq_length || o1 + extra > size_at(d1)) {
      return fmt::format("{}: sample {} does not span {} tokens", sample_file, k, options.seq_length);
    }
  }
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t j = shuffle(k);
    if (j < 0 || j >= n) return fmt::format("{}: entry {} is {}, outside [0, {})", shuffle_file, k, j, n);
  }
  return {};
}

std::int64_t GptDataset::shuffle(std::int64_t i) const {
  return shuffle64_.empty() ? static_cast<std::int64_t>(shuffle32_[static_cast<std::size_t>(i)])
                            : shuffle64_[static_cast<std::size_t>(i)];
}

template <typename Out>
void GptDataset::read_impl(std::int64_t i, std::span<Out> out) const {
  BIGNLP_CHECK(i >= 0 && i < num_samples_, "sample {} out of range ({} samples)", i, num_samples_);
  BIGNLP_CHECK(static_cast<std::int64_t>(out.size()) == sample_length_, "output holds {} tokens, a sample has {}",
               out.size(), sample_length_);
  const auto j = static_cast<std::size_t>(shuffle(i));
  const std::int64_t d0 = sample_idx_[2 * j];
  const std::int64_t o0 = sample_idx_[2 * j + 1];
  const std::int64_t d1 = sample_idx_[2 * j + 2];
  const std::int64_t o1 = sample_idx_[2 * j + 3];
  std::size_t filled = 0;
  const auto seq = [&](std::int64_t k) { return static_cast<std::size_t>(doc_idx_[static_cast<std::size_t>(k)]); };
  if (d0 == d1) {
    data_->read(seq(d0), static_cast<std::size_t>(o0), out);
    return;
  }
  {
    const std::size_t len = static_cast<std::size_t>(data_->sizes()[seq(d0)]) - static_cast<std::size_t>(o0);
    BIGNLP_CHECK(len <= out.size(), "sample {}: first piece of {} tokens exceeds the sample", i, len);
    data_->read(seq(d0), static_cast<std::size_t>(o0), out.subspan(0, len));
    filled = len;
  }
  for (std::int64_t k = d0 + 1; k < d1; ++k) {
    const auto len = static_cast<std::size_t>(data_->sizes()[seq(k)]);
    BIGNLP_CHECK(filled + len <= out.size(), "sample {} spans more than {} tokens", i, out.size());
    data_->read(seq(k), 0, out.subspan(filled, len));
    filled += len;
  }
  // The last piece is tokens [0, o1 + extra) of doc_idx[d1] (extra = 1 keeps the overlap token).
  BIGNLP_CHECK(static_cast<std::int64_t>(out.size() - filled) == o1 + (add_extra_token_ ? 1 : 0),
               "sample {}: index maps are inconsistent with the data ({} tokens left, end offset {})", i,
               out.size() - filled, o1);
  data_->read(seq(d1), 0, out.subspan(filled));
}

void GptDataset::read_sample(std::int64_t i, std::span<std::int64_t> out) const { read_impl(i, out); }
void GptDataset::read_sample(std::int64_t i, std::span<std::int32_t> out) const { read_impl(i, out); }

}  // namespace bignlp::data
