// SequenceToSequenceDataset: the text-to-text examples of T5/mT5 fine-tuning (tuning.md §6.3,
// NeMo's SequenceToSequenceDataset), read from a source and a target text file aligned by line.
//
// Both files are UTF-8; lines end at "\n", "\r\n" or "\r" (Python's universal newlines) and the
// pairs are zipped (the shorter file wins). Each line is stripped of leading and trailing ASCII
// whitespace (Python's str.strip() also strips Unicode spaces such as U+00A0; those are kept
// here). Then
//   src = [bos] + tokens(src line) + [eos],   tgt = [bos] + tokens(tgt line) + [eos]
// and a sequence longer than its maximum keeps its tail: seq = seq[-(max - 1):] (the BOS and the
// beginning are dropped, the EOS stays; the result has max - 1 tokens, a quirk kept from NeMo).
// An example feeds the model as encoder = src, decoder input = tgt[:-1], labels = tgt[1:].
// All examples are tokenized when the dataset is built (held in memory).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

struct SequenceToSequenceOptions {
  std::int64_t max_src_seq_length = 512;  ///< data.*.max_src_seq_length
  std::int64_t max_tgt_seq_length = 128;  ///< data.*.max_tgt_seq_length
  std::int32_t bos = -1;                  ///< the T5 vocabulary's BOS (data::T5Vocabulary::bos)
  std::int32_t eos = -1;
};

class SequenceToSequenceDataset {
 public:
  /// Reads and tokenizes the two files. Throws IoError for an unreadable file, ConfigError for
  /// maximum lengths below 2 or a missing bos/eos, DataError when the files hold no pair.
  SequenceToSequenceDataset(const std::filesystem::path& src_file, const std::filesystem::path& tgt_file,
                            const Tokenizer& tokenizer, const SequenceToSequenceOptions& options);

  std::int64_t size() const { return static_cast<std::int64_t>(src_.size()); }
  /// Encoder tokens of example i (BOS, text, EOS after truncation).
  const std::vector<std::int32_t>& src(std::int64_t i) const { return src_[static_cast<std::size_t>(i)]; }
  /// Target tokens of example i (BOS, text, EOS after truncation): decoder input tgt[:-1], labels tgt[1:].
  const std::vector<std::int32_t>& tgt(std::int64_t i) const { return tgt_[static_cast<std::size_t>(i)]; }
  /// The stripped text lines (predictions files, metrics).
  const std::string& src_text(std::int64_t i) const { return src_text_[static_cast<std::size_t>(i)]; }
  const std::string& tgt_text(std::int64_t i) const { return tgt_text_[static_cast<std::size_t>(i)]; }
  const std::filesystem::path& src_file() const { return src_file_; }

 private:
  std::filesystem::path src_file_;
  std::vector<std::vector<std::int32_t>> src_, tgt_;
  std::vector<std::string> src_text_, tgt_text_;
};

/// The lines of a text file as Python's universal-newline reading gives them (without the line
/// ends). Throws IoError.
std::vector<std::string> read_text_lines(const std::filesystem::path& path);

/// [bos] + ids + [eos], truncated to its last max - 1 tokens when longer than max (see above).
std::vector<std::int32_t> seq2seq_sequence(const std::vector<std::int32_t>& ids, std::int32_t bos, std::int32_t eos,
                                           std::int64_t max_length);

}  // namespace bignlp::data
