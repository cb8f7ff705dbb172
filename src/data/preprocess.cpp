#include "bignlp/data/preprocess.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/decompressing_reader.h"
#include "bignlp/data/sentence_splitter.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

// ---------------------------------------------------------------------------------------------
// Work items

struct Record {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::uint64_t line = 0;  // 1-based line where the record starts
};

struct Chunk {
  std::uint64_t seq = 0;
  std::size_t file_index = 0;
  bool json = true;
  std::string buffer;
  std::vector<Record> records;
  std::uint64_t input_bytes = 0;
  std::uint64_t done_units = 0;  // compressed bytes consumed over all files when this chunk was cut
};

enum BadKind { kMalformed = 0, kNotObject, kMissingKey, kNotString, kBadKinds };
constexpr const char* kBadKindNames[kBadKinds] = {"malformed JSON", "not a JSON object", "missing key",
                                                  "value is not a string"};

struct KeyOutput {
  std::vector<std::int32_t> tokens;
  std::vector<std::int32_t> sentence_sizes;
  std::vector<std::int32_t> doc_sentences;  // sentences per written document
};

struct BadSample {
  std::size_t file_index = 0;
  std::uint64_t line = 0;
  std::string message;
};

struct ChunkResult {
  std::uint64_t seq = 0;
  std::vector<KeyOutput> keys;
  std::uint64_t records = 0;
  std::uint64_t blank = 0;
  std::uint64_t empty_documents = 0;
  std::array<std::uint64_t, kBadKinds> bad{};
  std::vector<BadSample> samples;
  std::uint64_t input_bytes = 0;
  std::uint64_t done_units = 0;
};

// ---------------------------------------------------------------------------------------------
// A bounded FIFO that can be cancelled.

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}
  bool push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return cancelled_ || items_.size() < capacity_; });
    if (cancelled_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  bool pop(T& out) {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return cancelled_ || closed_ || !items_.empty(); });
    if (cancelled_ || items_.empty()) return false;
    out = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  std::size_t capacity_;
  bool closed_ = false;
  bool cancelled_ = false;
};

// Limits the chunks in flight between the reader and the writer (bounded memory).
class Slots {
 public:
  explicit Slots(std::size_t n) : free_(n) {}
  bool acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || free_ > 0; });
    if (cancelled_) return false;
    --free_;
    return true;
  }
  void release() {
    std::lock_guard lock(mu_);
    ++free_;
    cv_.notify_one();
  }
  void cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t free_;
  bool cancelled_ = false;
};

// ---------------------------------------------------------------------------------------------
// JSON: a SAX handler that validates the line and keeps the top-level string values of the keys
// we need (no DOM is built).

class KeyExtractor : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit KeyExtractor(const std::vector<std::string>& keys) : keys_(keys), values_(keys.size()), kinds_(keys.size()) {}

  void reset() {
    depth_ = 0;
    current_ = -1;
    root_is_object_ = false;
    error_.clear();
    for (auto& v : values_) v.clear();
    std::fill(kinds_.begin(), kinds_.end(), 0);
  }

  // kinds_: 0 = absent, 1 = string, 2 = other type.
  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t& val) override {
    if (depth_ == 1 && current_ >= 0) {
      values_[static_cast<std::size_t>(current_)] = std::move(val);
      kinds_[static_cast<std::size_t>(current_)] = 1;
    }
    return true;
  }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) root_is_object_ = true;
    nested();
    ++depth_;
    return true;
  }
  bool key(string_t& val) override {
    if (depth_ == 1) {
      current_ = -1;
      for (std::size_t k = 0; k < keys_.size(); ++k) {
        if (keys_[k] == val) current_ = static_cast<int>(k);
      }
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    nested();
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    std::string msg = ex.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (const auto p = msg.find("] "); p != std::string::npos && msg.starts_with("[json.")) msg = msg.substr(p + 2);
    error_ = std::move(msg);
    return false;
  }

  const std::string& error() const { return error_; }
  bool root_is_object() const { return root_is_object_; }
  int kind(std::size_t k) const { return kinds_[k]; }
  std::string& value(std::size_t k) { return values_[k]; }

 private:
  bool scalar() {
    if (depth_ == 1 && current_ >= 0) kinds_[static_cast<std::size_t>(current_)] = 2;
    return true;
  }
  void nested() {
    if (depth_ == 1 && current_ >= 0) {
      kinds_[static_cast<std::size_t>(current_)] = 2;
      current_ = -1;
    }
  }
  const std::vector<std::string>& keys_;
  std::vector<std::string> values_;
  std::vector<int> kinds_;
  int depth_ = 0;
  int current_ = -1;
  bool root_is_object_ = false;
  std::string error_;
};

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

bool looks_like_text(const fs::path& path) {
  std::string name = to_lower(path.filename().string());
  for (const char* ext : {".gz", ".zst", ".zstd"}) {
    if (ends_with(name, ext)) name.resize(name.size() - std::string_view(ext).size());
  }
  return ends_with(name, ".txt") || ends_with(name, ".text");
}

// ---------------------------------------------------------------------------------------------
// The job

class Job {
 public:
  Job(const PreprocessOptions& o, const Tokenizer& t, const Logger& log, std::vector<fs::path> files)
      : o_(o), tok_(t), log_(log), files_(std::move(files)), queue_(static_cast<std::size_t>(o.workers) + 1),
        slots_(2 * static_cast<std::size_t>(o.workers) + 2) {}

  PreprocessStats run();

 private:
  void reader();
  void worker();
  void process(Chunk& chunk, ChunkResult& result, TokenEncoder& enc, KeyExtractor& json);
  void add_document(std::string_view text, std::size_t key, ChunkResult& result, TokenEncoder& enc);
  void fail(std::exception_ptr e) {
    {
      std::lock_guard lock(mu_);
      if (!error_) error_ = e;
    }
    queue_.cancel();
    slots_.cancel();
    results_cv_.notify_all();
  }
  bool emit(Chunk& chunk) {
    if (!slots_.acquire()) return false;
    chunk.seq = next_seq_++;
    return queue_.push(std::move(chunk));
  }

  const PreprocessOptions& o_;
  const Tokenizer& tok_;
  const Logger& log_;
  std::vector<fs::path> files_;
  BoundedQueue<Chunk> queue_;
  Slots slots_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t total_seqs_ = ~0ULL;  // set by the reader when done
  std::mutex mu_;
  std::condition_variable results_cv_;
  std::map<std::uint64_t, ChunkResult> results_;
  std::exception_ptr error_;
  std::uint64_t total_units_ = 0;
};

void Job::reader() {
  try {
    std::uint64_t units_before = 0;
    for (std::size_t f = 0; f < files_.size(); ++f) {
      const fs::path& path = files_[f];
      DecompressingReader in(path);
      const bool json = !(o_.text_input || looks_like_text(path));
      const TextMode mode = json ? TextMode::kLine : o_.text_mode;
      Chunk chunk;
      chunk.file_index = f;
      chunk.json = json;
      std::string pending;     // bytes read but not yet cut into lines
      std::size_t pending_pos = 0;
      std::uint64_t line = 1;  // line number of pending[pending_pos]
      bool eof = false;
      // Paragraph being assembled (paragraph/file modes).
      std::string para;
      std::uint64_t para_line = 0;
      const auto flush_chunk = [&](bool force) -> bool {
        if (chunk.records.empty() && !force) return true;
        const bool full = chunk.buffer.size() >= o_.chunk_bytes ||
                          (o_.chunk_records > 0 && chunk.records.size() >= o_.chunk_records);
        if (!full && !force) return true;
        if (chunk.records.empty()) return true;
        chunk.done_units = units_before + in.compressed_position();
        Chunk next;
        next.file_index = f;
        next.json = json;
        std::swap(chunk, next);
        return emit(next);
      };
      const auto add_record = [&](std::string_view text, std::uint64_t at_line) {
        Record r;
        r.offset = chunk.buffer.size();
        r.length = text.size();
        r.line = at_line;
        chunk.buffer.append(text);
        chunk.records.push_back(r);
      };
      const auto end_paragraph = [&]() {
        if (!para.empty() && !is_blank(para)) add_record(para, para_line);
        para.clear();
      };
      while (true) {
        // Cut complete lines out of `pending`.
        for (;;) {
          const std::size_t nl = pending.find('\n', pending_pos);
          if (nl == std::string::npos && !eof) break;
          if (nl == std::string::npos && pending_pos >= pending.size()) break;
          const std::size_t end = nl == std::string::npos ? pending.size() : nl;
          std::string_view text(pending.data() + pending_pos, end - pending_pos);
          const std::uint64_t at = line;
          chunk.input_bytes += text.size() + (nl == std::string::npos ? 0 : 1);
          pending_pos = nl == std::string::npos ? pending.size() : nl + 1;
          ++line;
          if (mode == TextMode::kLine) {
            if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
            add_record(text, at);
          } else if (mode == TextMode::kParagraph) {
            if (is_blank(text)) {
              end_paragraph();
            } else {
              if (para.empty()) para_line = at;
              else para.push_back('\n');
              if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
              para.append(text);
            }
          } else {
            if (para_line == 0) para_line = at;
            para.append(text);
            if (nl != std::string::npos) para.push_back('\n');
          }
          if (!flush_chunk(false)) return;
        }
        if (eof) break;
        pending.erase(0, pending_pos);
        pending_pos = 0;
        if (in.read_append(pending, 1u << 20) == 0) eof = true;
      }
      end_paragraph();
      if (!flush_chunk(true)) return;
      units_before += in.compressed_size();
    }
    {
      std::lock_guard lock(mu_);
      total_seqs_ = next_seq_;
    }
    results_cv_.notify_all();
    queue_.close();
  } catch (...) {
    fail(std::current_exception());
  }
}

void Job::add_document(std::string_view text, std::size_t key, ChunkResult& result, TokenEncoder& enc) {
  KeyOutput& out = result.keys[key];
  std::int32_t sentences = 0;
  std::size_t last_size_index = 0;
  const auto add_sentence = [&](std::string_view s) {
    const std::size_t before = out.tokens.size();
    enc.encode(s, out.tokens);
    const std::size_t n = out.tokens.size() - before;
    if (n == 0) return;  // empty sentences are dropped
    out.sentence_sizes.push_back(static_cast<std::int32_t>(n));
    last_size_index = out.sentence_sizes.size() - 1;
    ++sentences;
  };
  if (o_.split_sentences) {
    for (std::string_view s : split_sentences(text, o_.keep_newlines)) add_sentence(s);
  } else {
    add_sentence(text);
  }
  if (sentences == 0) {
    ++result.empty_documents;
    return;
  }
  if (o_.append_eod) {
    out.tokens.push_back(*tok_.special_tokens().eod);
    ++out.sentence_sizes[last_size_index];
  }
  out.doc_sentences.push_back(sentences);
}

void Job::process(Chunk& chunk, ChunkResult& result, TokenEncoder& enc, KeyExtractor& json) {
  result.seq = chunk.seq;
  result.keys.assign(o_.json_keys.size(), KeyOutput{});
  result.input_bytes = chunk.input_bytes;
  result.done_units = chunk.done_units;
  for (const Record& r : chunk.records) {
    const std::string_view text(chunk.buffer.data() + r.offset, r.length);
    if (is_blank(text)) {
      ++result.blank;
      continue;
    }
    ++result.records;
    if (!chunk.json) {
      add_document(text, 0, result, enc);
      continue;
    }
    json.reset();
    const bool ok = nlohmann::json::sax_parse(text, &json, nlohmann::json::input_format_t::json, true);
    const auto bad = [&](BadKind kind, std::string msg) {
      ++result.bad[kind];
      if (result.samples.size() < o_.report_bad_records) result.samples.push_back({chunk.file_index, r.line, std::move(msg)});
    };
    if (!ok) {
      bad(kMalformed, fmt::format("malformed JSON: {}", json.error()));
      continue;
    }
    if (!json.root_is_object()) {
      bad(kNotObject, "not a JSON object");
      continue;
    }
    bool good = true;
    for (std::size_t k = 0; k < o_.json_keys.size() && good; ++k) {
      if (json.kind(k) == 0) {
        bad(kMissingKey, fmt::format("missing key '{}'", o_.json_keys[k]));
        good = false;
      } else if (json.kind(k) == 2) {
        bad(kNotString, fmt::format("the value of '{}' is not a string", o_.json_keys[k]));
        good = false;
      }
    }
    if (!good) continue;
    for (std::size_t k = 0; k < o_.json_keys.size(); ++k) add_document(json.value(k), k, result, enc);
  }
}

void Job::worker() {
  try {
    auto enc = tok_.make_encoder();
    KeyExtractor json(o_.json_keys);
    Chunk chunk;
    while (queue_.pop(chunk)) {
      ChunkResult result;
      process(chunk, result, *enc, json);
      {
        std::lock_guard lock(mu_);
        results_.emplace(result.seq, std::move(result));
      }
      results_cv_.notify_all();
      chunk = Chunk{};
    }
  } catch (...) {
    fail(std::current_exception());
  }
}

PreprocessStats Job::run() {
  PreprocessStats stats;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& f : files_) {
    std::error_code ec;
    total_units_ += fs::file_size(f, ec);
  }
  const TokenDType dtype = o_.dtype.value_or(best_fitting_token_dtype(tok_.vocab_size()));
  std::vector<std::unique_ptr<IndexedDatasetBuilder>> builders;
  for (const auto& key : o_.json_keys) {
    const fs::path prefix = preprocess_output_prefix(o_, key);
    builders.push_back(std::make_unique<IndexedDatasetBuilder>(prefix, dtype));
    stats.outputs.push_back(prefix);
  }
  ProgressReporter progress(log_, "preprocess", total_units_, o_.progress, o_.log_seconds, o_.log_interval_docs);
  ProgressCounters counters;
  std::array<std::uint64_t, kBadKinds> bad{};
  std::size_t reported = 0;

  std::vector<std::thread> threads;
  threads.emplace_back([this] { reader(); });
  for (int w = 0; w < o_.workers; ++w) threads.emplace_back([this] { worker(); });
  const auto join_all = [&] {
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  };
  try {
    for (std::uint64_t seq = 0;; ++seq) {
      ChunkResult result;
      {
        std::unique_lock lock(mu_);
        results_cv_.wait(lock, [&] { return error_ || results_.contains(seq) || seq >= total_seqs_; });
        if (error_) std::rethrow_exception(error_);
        if (!results_.contains(seq)) break;  // seq == total: all done
        result = std::move(results_.at(seq));
        results_.erase(seq);
      }
      slots_.release();
      for (std::size_t k = 0; k < result.keys.size(); ++k) {
        const KeyOutput& out = result.keys[k];
        std::size_t s = 0;
        std::size_t offset = 0;
        for (const std::int32_t n : out.doc_sentences) {
          for (std::int32_t j = 0; j < n; ++j, ++s) {
            const auto size = static_cast<std::size_t>(out.sentence_sizes[s]);
            builders[k]->add_item(std::span<const std::int32_t>(out.tokens.data() + offset, size));
            offset += size;
            ++stats.sentences;
          }
          builders[k]->end_document();
          ++stats.documents;
          ++counters.docs;
        }
        counters.tokens += out.tokens.size();
        stats.tokens += out.tokens.size();
      }
      stats.records += result.records;
      stats.blank_records += result.blank;
      stats.empty_documents += result.empty_documents;
      for (int b = 0; b < kBadKinds; ++b) bad[b] += result.bad[b];
      for (const auto& sample : result.samples) {
        if (reported >= o_.report_bad_records) break;
        progress.clear_line();
        log_.warn("{}:{}: {}", files_[sample.file_index].string(), sample.line, sample.message);
        ++reported;
      }
      counters.bytes += result.input_bytes;
      counters.done_units = result.done_units;
      progress.update(counters);
      // Clearly the wrong input (e.g. wrong --json-keys): stop early instead of reading it all.
      std::uint64_t bad_now = 0;
      for (auto b : bad) bad_now += b;
      if (bad_now >= 1000 && bad_now * 2 > stats.records) {
        throw DataError(fmt::format("{} of the first {} records are bad; stopping (see the messages above)", bad_now,
                                    stats.records));
      }
    }
  } catch (...) {
    fail(std::current_exception());
    join_all();
    progress.clear_line();
    throw;
  }
  join_all();
  stats.bytes = counters.bytes;
  for (auto b : bad) stats.bad_records += b;
  if (stats.bad_records > 0) {
    std::vector<std::string> parts;
    for (int b = 0; b < kBadKinds; ++b) {
      if (bad[b]) parts.push_back(fmt::format("{} {}", bad[b], kBadKindNames[b]));
    }
    const double fraction = static_cast<double>(stats.bad_records) / static_cast<double>(std::max<std::uint64_t>(stats.records, 1));
    const std::string summary = fmt::format("{} of {} records were bad ({:.3f}%): {}", stats.bad_records, stats.records,
                                            100.0 * fraction, join(parts, ", "));
    if (fraction > o_.max_bad_fraction) {
      progress.clear_line();
      throw DataError(fmt::format("{}; more than the allowed {:.3f}% (--max-bad-fraction {}), no output written", summary,
                                  100.0 * o_.max_bad_fraction, o_.max_bad_fraction));
    }
    log_.warn("{} (skipped; allowed up to {:.3f}%)", summary, 100.0 * o_.max_bad_fraction);
  }
  for (auto& b : builders) b->finalize();
  counters.done_units = total_units_;
  progress.finish(counters);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

// '*' and '?' within a path component; "**/" any number of directories.
bool glob_match_impl(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.starts_with("**/")) {
      const std::string_view rest = p.substr(3);
      if (glob_match_impl(rest, s)) return true;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '/' && glob_match_impl(rest, s.substr(i + 1))) return true;
      }
      return false;
    }
    if (p.front() == '*') {
      const std::string_view rest = p.substr(1);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (glob_match_impl(rest, s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p.front() == '?' ? s.front() == '/' : p.front() != s.front()) return false;
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view relative) { return glob_match_impl(pattern, relative); }

std::vector<fs::path> expand_preprocess_inputs(const PreprocessOptions& options) {
  if (options.inputs.empty()) throw UsageError("no input given (--input)");
  std::vector<fs::path> out;
  for (const fs::path& in : options.inputs) {
    std::error_code ec;
    if (options.preproc_folder) {
      if (!fs::is_directory(in, ec)) throw IoError(fmt::format("input folder '{}' does not exist", in.string()));
      std::vector<fs::path> found;
      for (const auto& entry : fs::recursive_directory_iterator(in, ec)) {
        if (!entry.is_regular_file()) continue;
        const std::string rel = fs::relative(entry.path(), in).generic_string();
        if (glob_match(options.files_filter, rel)) found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) {
        throw UsageError(fmt::format("no file under '{}' matches --files-filter '{}'", in.string(), options.files_filter));
      }
      out.insert(out.end(), found.begin(), found.end());
    } else {
      if (!fs::is_regular_file(in, ec)) {
        throw IoError(fmt::format("input '{}' does not exist{}", in.string(),
                                  fs::is_directory(in, ec) ? " as a file (it is a folder: add --preproc-folder)" : ""));
      }
      out.push_back(in);
    }
  }
  return out;
}

fs::path preprocess_output_prefix(const PreprocessOptions& options, const std::string& key) {
  return fs::path(fmt::format("{}_{}_{}", options.output_prefix.string(), key,
                              options.split_sentences ? "sentence" : "document"));
}

PreprocessStats preprocess(const PreprocessOptions& options, const Tokenizer& tokenizer, const Logger& log) {
  if (options.output_prefix.empty()) throw UsageError("no output prefix given (--output-prefix)");
  if (options.json_keys.empty()) throw UsageError("--json-keys is empty");
  if (options.workers < 1) throw UsageError(fmt::format("--workers must be at least 1, got {}", options.workers));
  if (options.append_eod && !tokenizer.special_tokens().eod) {
    throw UsageError(fmt::format("--append-eod: tokenizer {} has no end-of-document token", tokenizer.type_name()));
  }
  if (options.max_bad_fraction < 0.0 || options.max_bad_fraction > 1.0) {
    throw UsageError(fmt::format("--max-bad-fraction must be within [0, 1], got {}", options.max_bad_fraction));
  }
  const std::vector<fs::path> files = expand_preprocess_inputs(options);
  Job job(options, tokenizer, log, files);
  return job.run();
}

}  // namespace bignlp::data
