// bignlp-preprocess: tokenize raw text into Megatron indexed datasets (data preparation stage).
//
// Two forms:
//   bignlp-preprocess --input FILE --output-prefix P --tokenizer-type GPT2BPETokenizer
//                     --vocab-file vocab.json --merge-file merges.txt --append-eod --workers 8
//     Megatron's tools/preprocess_data.py / NeMo's preprocess_data_for_megatron.py flags.
//   bignlp-preprocess --merge-inputs P1 P2 ... --output-prefix OUT
//     concatenates datasets (Megatron's merge_datasets).
// Index: include/bignlp/data/preprocess.h (the pipeline), tokenizer_factory.h (tokenizers),
// indexed_dataset.h (the output format). Exit codes: include/bignlp/core/error.h.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/preprocess.h"
#include "bignlp/data/tokenizer_factory.h"

namespace {

using bignlp::data::PreprocessOptions;

struct Flags {
  std::vector<std::string> inputs;
  std::vector<std::string> json_keys{"text"};
  bool split_sentences = false;
  bool keep_newlines = false;
  std::string tokenizer_library = "megatron";
  std::string tokenizer_type;
  std::string tokenizer_model;
  std::string vocab_file;
  std::string merge_file;
  bool append_eod = false;
  std::string lang = "english";
  std::string output_prefix;
  std::string dataset_impl = "mmap";
  int workers = 0;
  int chunk_size = 0;
  std::int64_t log_interval = 0;
  bool preproc_folder = false;
  std::string files_filter = "**/*.json*";
  bool text_file = false;
  std::string text_mode = "line";
  bool apply_ftfy = false;
  bool need_pad_id = false;
  double max_bad_fraction = 0.01;
  bool split_special_tokens = false;
  std::string progress = "auto";
  std::string log_level = "info";
  std::vector<std::string> merge_inputs;
};

int run(int argc, char** argv) {
  Flags f;
  CLI::App app{"bignlp-preprocess: tokenize text into Megatron .bin/.idx datasets", "bignlp-preprocess"};
  app.option_defaults()->always_capture_default();
  app.add_option("--input", f.inputs, "input file(s): .json/.jsonl (one JSON object per line), .txt; optionally .gz or .zst; "
                                      "a folder with --preproc-folder")->delimiter(',');
  app.add_option("--json-keys", f.json_keys, "keys to extract from each JSON line (one dataset per key)")->delimiter(',');
  app.add_flag("--split-sentences", f.split_sentences, "one sequence per sentence (output level 'sentence')");
  app.add_flag("--keep-newlines", f.keep_newlines, "keep the newlines after sentences when splitting");
  app.add_option("--tokenizer-library", f.tokenizer_library, "megatron or sentencepiece")
      ->check(CLI::IsMember({"megatron", "sentencepiece"}));
  app.add_option("--tokenizer-type", f.tokenizer_type, "GPT2BPETokenizer, BertWordPieceCase or BertWordPieceLowerCase")
      ->check(CLI::IsMember({"GPT2BPETokenizer", "BertWordPieceCase", "BertWordPieceLowerCase"}));
  app.add_option("--tokenizer-model", f.tokenizer_model, "SentencePiece .model file");
  app.add_option("--vocab-file,--vocab", f.vocab_file, "vocab.json (GPT-2) or vocab.txt (BERT)");
  app.add_option("--merge-file", f.merge_file, "merges.txt (GPT-2)");
  app.add_flag("--append-eod", f.append_eod, "append the end-of-document token to every document");
  app.add_option("--lang", f.lang, "language of the sentence splitter (english only)");
  app.add_option("--output-prefix", f.output_prefix, "writes <prefix>_<key>_<document|sentence>.bin/.idx");
  app.add_option("--dataset-impl", f.dataset_impl, "mmap (the only format written)");
  app.add_option("--workers", f.workers, "tokenizing threads (default: all cores)");
  app.add_option("--chunk-size", f.chunk_size, "documents per work item (default: ~1 MB of text)");
  app.add_option("--log-interval", f.log_interval, "also log progress every N documents (non-terminal output)");
  app.add_flag("--preproc-folder", f.preproc_folder, "--input is a folder: every file matching --files-filter");
  app.add_option("--files-filter", f.files_filter, "glob under the input folder ('**/' = any sub-folders)");
  app.add_flag("--text_file,--text-file", f.text_file, "inputs are plain text, not JSON");
  app.add_option("--text-mode", f.text_mode, "plain text documents: line, paragraph (blank-line separated) or file")
      ->check(CLI::IsMember({"line", "paragraph", "file"}));
  app.add_flag("--apply-ftfy", f.apply_ftfy, "accepted for compatibility; text is not changed (see README)");
  app.add_flag("--need-pad-id", f.need_pad_id, "accepted for compatibility (SentencePiece pad id)");
  app.add_option("--max-bad-fraction", f.max_bad_fraction, "fail when more than this fraction of records are malformed");
  app.add_flag("--split-special-tokens", f.split_special_tokens,
               "special tokens written in the text (e.g. <|endoftext|>) become their ids (Hugging Face behaviour)");
  app.add_option("--progress", f.progress, "auto (live line on a terminal, log lines otherwise), terminal, log or off")
      ->check(CLI::IsMember({"auto", "terminal", "log", "off"}));
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error or off");
  app.add_option("--merge-inputs", f.merge_inputs, "merge these dataset prefixes into --output-prefix instead of tokenizing")
      ->delimiter(',');
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and succeeds; every other flag error is a usage error (exit code 2).
    return app.exit(e) == 0 ? 0 : static_cast<int>(bignlp::ExitCode::kUsage);
  }
  const bignlp::Logger log("preprocess", bignlp::parse_log_level(f.log_level));

  if (!f.merge_inputs.empty()) {
    if (f.output_prefix.empty()) throw bignlp::UsageError("--merge-inputs needs --output-prefix");
    std::vector<std::filesystem::path> prefixes(f.merge_inputs.begin(), f.merge_inputs.end());
    bignlp::data::merge_indexed_datasets(prefixes, f.output_prefix);
    log.info("merged {} datasets into '{}'", prefixes.size(), f.output_prefix);
    return 0;
  }
  if (f.dataset_impl != "mmap") {
    throw bignlp::UsageError(fmt::format("--dataset-impl {}: only 'mmap' (Megatron's MMIDIDX format) is written",
                                         f.dataset_impl));
  }
  if (f.lang != "english") log.warn("--lang {}: the built-in sentence splitter follows English rules", f.lang);
  if (f.apply_ftfy) log.warn("--apply-ftfy: text repair (ftfy) is not available; the text is tokenized as it is");
  if (f.tokenizer_library == "megatron" && f.tokenizer_type.empty()) {
    throw bignlp::UsageError("--tokenizer-type is required with --tokenizer-library megatron");
  }

  bignlp::data::TokenizerSpec spec;
  spec.library = f.tokenizer_library;
  spec.type = f.tokenizer_type;
  spec.vocab_file = f.vocab_file;
  spec.merge_file = f.merge_file;
  spec.model_file = f.tokenizer_model;
  spec.split_special_tokens = f.split_special_tokens;
  const auto tokenizer = bignlp::data::load_tokenizer(spec);

  PreprocessOptions o;
  o.inputs.assign(f.inputs.begin(), f.inputs.end());
  o.preproc_folder = f.preproc_folder;
  o.files_filter = f.files_filter;
  o.json_keys = f.json_keys;
  o.text_input = f.text_file;
  o.text_mode = f.text_mode == "paragraph" ? bignlp::data::TextMode::kParagraph
                : f.text_mode == "file"    ? bignlp::data::TextMode::kFile
                                           : bignlp::data::TextMode::kLine;
  o.split_sentences = f.split_sentences;
  o.keep_newlines = f.keep_newlines;
  o.append_eod = f.append_eod;
  o.output_prefix = f.output_prefix;
  o.workers = f.workers > 0 ? f.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.chunk_records = f.chunk_size > 0 ? static_cast<std::size_t>(f.chunk_size) : 0;
  o.max_bad_fraction = f.max_bad_fraction;
  o.log_interval_docs = static_cast<std::uint64_t>(std::max<std::int64_t>(f.log_interval, 0));
  o.progress = f.progress == "terminal" ? bignlp::data::ProgressMode::kTerminal
               : f.progress == "log"    ? bignlp::data::ProgressMode::kLog
               : f.progress == "off"    ? bignlp::data::ProgressMode::kOff
                                        : bignlp::data::ProgressMode::kAuto;
  log.info("tokenizer {} ({} ids), {} worker(s), output '{}'", tokenizer->type_name(), tokenizer->vocab_size(), o.workers,
           o.output_prefix.string());
  const auto stats = bignlp::data::preprocess(o, *tokenizer, log);
  for (const auto& p : stats.outputs) log.info("wrote '{}.bin' and '{}.idx'", p.string(), p.string());
  log.info("{} documents, {} sequences, {} tokens from {} ({} records{}{}) in {}", stats.documents, stats.sentences,
           stats.tokens, bignlp::format_bytes(stats.bytes), stats.records,
           stats.bad_records ? fmt::format(", {} bad", stats.bad_records) : "",
           stats.empty_documents ? fmt::format(", {} without tokens", stats.empty_documents) : "",
           bignlp::format_duration(stats.seconds));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-preprocess: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-preprocess: internal error: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
