#include "bignlp/data/pile_preparation.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/decompressing_reader.h"
#include "bignlp/data/indexed_dataset.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

bool is_gpt2(const PileConfig& c) { return c.tokenizer_type == "GPT2BPETokenizer"; }

fs::path zst_path(const PileConfig& c, int n) { return c.data_dir / (pile_shard_name(n) + ".jsonl.zst"); }
fs::path jsonl_path(const PileConfig& c, int n) { return c.data_dir / (pile_shard_name(n) + ".jsonl"); }

void remove_file(const fs::path& p, const Logger& log) {
  std::error_code ec;
  if (fs::remove(p, ec)) log.info("removed '{}'", p.string());
}

}  // namespace

std::string pile_shard_name(int file_number) { return fmt::format("{:02d}", file_number); }

TokenizerSpec pile_tokenizer_spec(const PileConfig& c) {
  TokenizerSpec spec;
  spec.library = "megatron";
  spec.type = c.tokenizer_type;
  spec.vocab_file = c.vocab_save_dir / (is_gpt2(c) ? "vocab.json" : "vocab.txt");
  if (is_gpt2(c)) spec.merge_file = c.merges_save_dir / "merges.txt";
  return spec;
}

fs::path pile_dataset_prefix(const PileConfig& c, int n) {
  return c.data_dir / fmt::format("{}_{}_text_document", c.output_prefix, pile_shard_name(n));
}

void fetch_tokenizer_file(const std::string& url, const fs::path& dest, const DownloadOptions& options, const Logger& log) {
  std::error_code ec;
  if (fs::is_regular_file(dest, ec)) return;
  if (url.empty()) {
    throw ConfigError(fmt::format("tokenizer file '{}' does not exist and no download URL is configured", dest.string()));
  }
  DownloadOptions o = options;
  o.expected_size.reset();
  download_file(url, dest, o, log);
}

void pile_download(const PileConfig& c, int n, const Logger& log) {
  const TokenizerSpec spec = pile_tokenizer_spec(c);
  fetch_tokenizer_file(c.download_vocab_url, spec.vocab_file, c.download, log);
  if (is_gpt2(c)) fetch_tokenizer_file(c.download_merges_url, spec.merge_file, c.download, log);
  std::error_code ec;
  if (indexed_dataset_exists(pile_dataset_prefix(c, n))) {
    log.info("shard {}: '{}' is already preprocessed; nothing to download", pile_shard_name(n),
             pile_dataset_prefix(c, n).string());
    return;
  }
  if (fs::is_regular_file(jsonl_path(c, n), ec)) {
    log.info("shard {}: '{}' is already extracted; nothing to download", pile_shard_name(n), jsonl_path(c, n).string());
    return;
  }
  if (c.the_pile_url.empty()) throw ConfigError("the_pile_url is empty");
  std::string base = c.the_pile_url;
  if (!base.ends_with('/')) base += '/';
  download_file(base + pile_shard_name(n) + ".jsonl.zst", zst_path(c, n), c.download, log);
}

void pile_extract(const PileConfig& c, int n, const Logger& log) {
  std::error_code ec;
  const fs::path src = zst_path(c, n);
  const fs::path dst = jsonl_path(c, n);
  if (indexed_dataset_exists(pile_dataset_prefix(c, n)) || (fs::is_regular_file(dst, ec) && !fs::exists(src, ec))) {
    log.info("shard {}: already extracted", pile_shard_name(n));
    return;
  }
  if (!fs::is_regular_file(src, ec)) {
    throw IoError(fmt::format("shard {}: '{}' does not exist; run the download step first", pile_shard_name(n),
                              src.string()));
  }
  log.info("shard {}: extracting '{}'", pile_shard_name(n), src.string());
  const std::uint64_t bytes = decompress_file(src, dst);
  log.info("shard {}: wrote '{}' ({})", pile_shard_name(n), dst.string(), format_bytes(bytes));
  if (c.rm_downloaded) remove_file(src, log);
}

void pile_preprocess(const PileConfig& c, int n, const Logger& log) {
  const fs::path out = pile_dataset_prefix(c, n);
  if (indexed_dataset_exists(out)) {
    log.info("shard {}: '{}' already exists", pile_shard_name(n), out.string());
    return;
  }
  std::error_code ec;
  fs::path input = jsonl_path(c, n);
  if (!fs::is_regular_file(input, ec)) {
    input = zst_path(c, n);  // not extracted: read the compressed shard directly
    if (!fs::is_regular_file(input, ec)) {
      throw IoError(fmt::format("shard {}: neither '{}' nor '{}' exists; run the download (and extract) steps first",
                                pile_shard_name(n), jsonl_path(c, n).string(), input.string()));
    }
  }
  const auto tokenizer = load_tokenizer(pile_tokenizer_spec(c));
  PreprocessOptions o;
  o.inputs = {input};
  o.output_prefix = c.data_dir / fmt::format("{}_{}", c.output_prefix, pile_shard_name(n));
  o.append_eod = c.append_eod;
  o.workers = std::max(1, c.workers);
  o.progress = c.progress;
  log.info("shard {}: tokenizing '{}' with {} ({} workers)", pile_shard_name(n), input.string(), tokenizer->type_name(),
           o.workers);
  const auto stats = preprocess(o, *tokenizer, log);
  log.info("shard {}: wrote '{}' ({} documents, {} tokens)", pile_shard_name(n), out.string(), stats.documents,
           stats.tokens);
  if (c.rm_extracted && input == jsonl_path(c, n)) remove_file(input, log);
}

}  // namespace bignlp::data
