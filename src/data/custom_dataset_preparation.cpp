#include "bignlp/data/custom_dataset_preparation.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/mc4_preparation.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/worker_position.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

// "a/b/web.part1.jsonl.gz" -> "web.part1"
std::string file_stem(const fs::path& p) {
  std::string name = p.filename().string();
  for (const char* ext : {".gz", ".zst", ".zstd", ".jsonl", ".json", ".txt", ".text"}) {
    if (ends_with(to_lower(name), ext) && name.size() > std::string_view(ext).size()) {
      name.resize(name.size() - std::string_view(ext).size());
    }
  }
  return name;
}

int slot_count(const CustomDatasetConfig& c) { return std::max(1, c.node_array_size) * std::max(1, c.workers_per_node); }

}  // namespace

void custom_train_tokenizer(const CustomDatasetConfig& c, const Logger& log) {
  auto args = c.train_tokenizer_args;
  if (!args.contains("input") || args["input"].empty() || args["input"] == "null") {
    throw ConfigError("train_tokenizer_args.input is not set: give the text file to train the tokenizer on");
  }
  std::error_code ec;
  // SentencePiece takes a comma-separated list of files.
  for (const auto& part : split(args["input"], ',')) {
    if (!fs::is_regular_file(std::string(trim(part)), ec))
      throw IoError(fmt::format("train_tokenizer_args.input: '{}' does not exist", std::string(trim(part))));
  }
  fs::path prefix = args.contains("model_prefix") ? fs::path(args["model_prefix"]) : fs::path("custom_sp_tokenizer");
  if (prefix.is_relative()) prefix = c.bpe_save_dir / prefix;
  fs::create_directories(prefix.parent_path(), ec);
  args["model_prefix"] = prefix.string();
  log.info("training a SentencePiece {} model (vocab {}) on '{}' -> '{}.model'", args.contains("model_type") ? args["model_type"] : "unigram",
           args.contains("vocab_size") ? args["vocab_size"] : "8000", args["input"], prefix.string());
  train_sentencepiece(args);
}

std::vector<std::vector<fs::path>> custom_assign_files(const CustomDatasetConfig& c) {
  if (c.raw_dataset_files.empty()) throw ConfigError("raw_dataset_files lists no file");
  std::vector<std::uint64_t> sizes;
  for (const auto& f : c.raw_dataset_files) {
    std::error_code ec;
    const auto s = fs::file_size(f, ec);
    if (ec) throw IoError(fmt::format("raw_dataset_files: cannot read '{}': {}", f.string(), ec.message()));
    sizes.push_back(static_cast<std::uint64_t>(s));
  }
  const auto bins = balance_by_size(sizes, slot_count(c));
  std::vector<std::vector<fs::path>> out;
  for (const auto& bin : bins) {
    std::vector<fs::path> files;
    for (std::size_t i : bin) files.push_back(c.raw_dataset_files[i]);
    out.push_back(std::move(files));
  }
  return out;
}

std::vector<fs::path> custom_output_prefixes(const CustomDatasetConfig& c, int slot) {
  const auto assignment = custom_assign_files(c);
  const auto& files = assignment.at(static_cast<std::size_t>(slot));
  if (files.empty()) return {};
  if (c.output_prefix) {
    if (slot_count(c) == 1) return {c.preprocessed_dir / *c.output_prefix};
    return {c.preprocessed_dir / fmt::format("{}_{:02d}", *c.output_prefix, slot)};
  }
  std::vector<fs::path> out;
  for (const auto& f : files) out.push_back(c.preprocessed_dir / file_stem(f));
  return out;
}

void custom_preprocess(const CustomDatasetConfig& c, int slot, const Logger& log) {
  const auto assignment = custom_assign_files(c);
  if (slot < 0 || static_cast<std::size_t>(slot) >= assignment.size()) {
    throw ConfigError(fmt::format("preprocessing slot {} is outside the {} slots", slot, assignment.size()));
  }
  if (slot == 0 && !c.preprocess_worker_mapping.empty()) {
    std::vector<std::vector<std::string>> lines;
    for (const auto& files : assignment) {
      std::vector<std::string> l;
      for (const auto& f : files) l.push_back(f.string());
      lines.push_back(std::move(l));
    }
    write_worker_mapping(c.preprocess_worker_mapping, lines);
  }
  const auto& files = assignment[static_cast<std::size_t>(slot)];
  if (files.empty()) {
    log.info("preprocessing slot {}: nothing to do", slot);
    return;
  }
  const auto tokenizer = load_tokenizer(c.tokenizer);
  const auto prefixes = custom_output_prefixes(c, slot);
  const auto run = [&](const std::vector<fs::path>& inputs, const fs::path& prefix) {
    PreprocessOptions o;
    o.inputs = inputs;
    o.output_prefix = prefix;
    o.json_keys = c.json_keys;
    o.append_eod = c.append_eod;
    o.text_mode = c.text_mode;
    o.split_sentences = c.split_sentences;
    o.workers = std::max(1, c.workers);
    o.progress = c.progress;
    bool done = true;
    for (const auto& key : c.json_keys) done = done && indexed_dataset_exists(preprocess_output_prefix(o, key));
    if (done) {
      log.info("slot {}: '{}' already exists", slot, prefix.string());
      return;
    }
    log.info("slot {}: tokenizing {} file(s) with {} -> '{}'", slot, inputs.size(), tokenizer->type_name(), prefix.string());
    const auto stats = preprocess(o, *tokenizer, log);
    log.info("slot {}: {} documents, {} tokens", slot, stats.documents, stats.tokens);
  };
  if (c.output_prefix) {
    run(files, prefixes.front());
  } else {
    for (std::size_t i = 0; i < files.size(); ++i) run({files[i]}, prefixes[i]);
  }
}

}  // namespace bignlp::data
