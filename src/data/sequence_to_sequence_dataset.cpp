#include "bignlp/data/sequence_to_sequence_dataset.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::data {

std::vector<std::string> read_text_lines(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  std::vector<std::string> lines;
  std::string cur;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) lines.push_back(std::move(cur));
  return lines;
}

namespace {

std::string strip_ascii(const std::string& s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
                                         (c >= 0x1c && c <= 0x1f); };
  std::size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::vector<std::int32_t> seq2seq_sequence(const std::vector<std::int32_t>& ids, std::int32_t bos, std::int32_t eos,
                                           std::int64_t max_length) {
  std::vector<std::int32_t> seq;
  seq.reserve(ids.size() + 2);
  seq.push_back(bos);
  seq.insert(seq.end(), ids.begin(), ids.end());
  seq.push_back(eos);
  if (static_cast<std::int64_t>(seq.size()) > max_length)
    seq.erase(seq.begin(), seq.end() - static_cast<std::ptrdiff_t>(max_length - 1));
  return seq;
}

SequenceToSequenceDataset::SequenceToSequenceDataset(const std::filesystem::path& src_file,
                                                     const std::filesystem::path& tgt_file, const Tokenizer& tokenizer,
                                                     const SequenceToSequenceOptions& o)
    : src_file_(src_file) {
  if (o.max_src_seq_length < 2 || o.max_tgt_seq_length < 2)
    throw ConfigError(fmt::format("max_src_seq_length / max_tgt_seq_length: must be at least 2 (BOS and EOS), got {} / {}",
                                  o.max_src_seq_length, o.max_tgt_seq_length));
  if (o.bos < 0 || o.eos < 0) throw ConfigError("the tokenizer has no BOS/EOS for a sequence-to-sequence dataset");
  const std::vector<std::string> src = read_text_lines(src_file), tgt = read_text_lines(tgt_file);
  const std::size_t n = std::min(src.size(), tgt.size());
  if (n == 0)
    throw DataError(fmt::format("'{}' / '{}': no source/target line pair", src_file.string(), tgt_file.string()));
  const std::unique_ptr<TokenEncoder> enc = tokenizer.make_encoder();
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i < n; ++i) {
    src_text_.push_back(strip_ascii(src[i]));
    tgt_text_.push_back(strip_ascii(tgt[i]));
    ids.clear();
    enc->encode(src_text_.back(), ids);
    src_.push_back(seq2seq_sequence(ids, o.bos, o.eos, o.max_src_seq_length));
    ids.clear();
    enc->encode(tgt_text_.back(), ids);
    tgt_.push_back(seq2seq_sequence(ids, o.bos, o.eos, o.max_tgt_seq_length));
  }
}

}  // namespace bignlp::data
