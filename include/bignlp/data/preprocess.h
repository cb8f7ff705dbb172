// Tokenizing raw text into Megatron indexed datasets: the engine of `bignlp-preprocess`, with the
// document semantics of Megatron's preprocess_data.py (formats.md §1.4).
//
// Inputs are read in order, streaming: loose JSON (one object per line; .json/.jsonl, optionally
// .gz or .zst) or plain text (.txt, or any file with text_input), where a document is a line, a
// blank-line separated paragraph, or the whole file (text_mode). For each JSON key: optional
// sentence splitting, tokenization, empty sentences dropped, the EOD appended to the last sentence
// (append_eod), documents without tokens skipped. Output per key: <prefix>_<key>_<level>.bin/.idx
// with level "document" (or "sentence" with split_sentences).
//
// Parallelism: one reader thread cuts the input into ~1 MB chunks of whole records, `workers`
// threads parse and tokenize them (each with its own encoder), and the calling thread writes the
// results strictly in input order. At most 2 * workers + 2 chunks are in flight, so memory stays
// flat whatever the input size, and the output is identical for any number of workers.
// Bad input: a malformed JSON line, a missing key or a non-string value makes that record "bad";
// bad records are counted by kind, the first few reported with file:line, and the run fails when
// more than max_bad_fraction of the records are bad. Outputs are written under temporary names
// and renamed only when everything succeeded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/progress.h"
#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

enum class TextMode { kLine, kParagraph, kFile };

struct PreprocessOptions {
  std::vector<std::filesystem::path> inputs;       ///< files, or directories when preproc_folder
  bool preproc_folder = false;                     ///< every file under the input directories matching files_filter
  std::string files_filter = "**/*.json*";
  std::vector<std::string> json_keys = {"text"};
  bool text_input = false;                         ///< every input is plain text (otherwise by extension)
  TextMode text_mode = TextMode::kLine;
  bool split_sentences = false;
  bool keep_newlines = false;
  bool append_eod = false;
  std::filesystem::path output_prefix;
  int workers = 1;
  std::size_t chunk_bytes = 1u << 20;              ///< target size of a work item
  std::size_t chunk_records = 0;                   ///< also cut a chunk after this many records (0: bytes only)
  double max_bad_fraction = 0.01;                  ///< fail when more records than this fraction are bad
  std::size_t report_bad_records = 10;             ///< how many bad records are reported individually
  std::optional<TokenDType> dtype;                 ///< default: best fitting for the vocabulary
  ProgressMode progress = ProgressMode::kAuto;
  double log_seconds = 30.0;
  std::uint64_t log_interval_docs = 0;
};

struct PreprocessStats {
  std::uint64_t records = 0;        ///< non-blank input records
  std::uint64_t bad_records = 0;
  std::uint64_t blank_records = 0;
  std::uint64_t documents = 0;      ///< documents written (summed over keys)
  std::uint64_t empty_documents = 0;  ///< documents skipped because they gave no tokens
  std::uint64_t sentences = 0;
  std::uint64_t tokens = 0;
  std::uint64_t bytes = 0;          ///< uncompressed input bytes
  double seconds = 0.0;
  std::vector<std::filesystem::path> outputs;  ///< dataset prefixes written
};

/// The input files `options` names, in order (directories expanded when preproc_folder). Throws
/// IoError for a missing input and UsageError when nothing matches.
std::vector<std::filesystem::path> expand_preprocess_inputs(const PreprocessOptions& options);

/// The dataset prefix written for `key`: <output_prefix>_<key>_<document|sentence>.
std::filesystem::path preprocess_output_prefix(const PreprocessOptions& options, const std::string& key);

/// Runs the whole job. Throws DataError (bad input beyond the limit, truncated/corrupt files),
/// IoError, UsageError; on any error no output file is left behind.
PreprocessStats preprocess(const PreprocessOptions& options, const Tokenizer& tokenizer, const Logger& log);

/// True when `relative` (a '/'-separated path) matches `pattern` with '*', '?' and '**/' (any
/// number of directories).
bool glob_match(std::string_view pattern, std::string_view relative);

}  // namespace bignlp::data
