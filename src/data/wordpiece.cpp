#include "bignlp/data/wordpiece.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/unicode.h"

namespace bignlp::data {
namespace {

constexpr std::array<std::string_view, 5> kSpecials = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"};

class WordPieceEncoder final : public TokenEncoder {
 public:
  explicit WordPieceEncoder(const WordPieceTokenizer& tok) : tok_(tok) {}
  void encode(std::string_view text, std::vector<std::int32_t>& out) override {
    for (const std::string& word : tok_.basic_tokenize(text)) tok_.wordpiece(word, out);
  }

 private:
  const WordPieceTokenizer& tok_;
};

// Splits on Python's str.isspace() characters (what whitespace_tokenize's str.split() does).
void split_py_whitespace(std::string_view text, std::vector<std::string>& out) {
  std::size_t i = 0;
  std::size_t start = std::string_view::npos;
  while (i < text.size()) {
    const Utf8Char c = decode_utf8(text, i);
    const bool space = c.valid && (unicode_flags(c.cp) & kUnicodePySpace);
    if (space) {
      if (start != std::string_view::npos) out.emplace_back(text.substr(start, i - start));
      start = std::string_view::npos;
    } else if (start == std::string_view::npos) {
      start = i;
    }
    i += c.length;
  }
  if (start != std::string_view::npos) out.emplace_back(text.substr(start));
}

std::string strip_accents(std::string_view text) {
  const std::string nfd = utf8_nfd(text);
  std::string out;
  out.reserve(nfd.size());
  for (std::size_t i = 0; i < nfd.size();) {
    const Utf8Char c = decode_utf8(nfd, i);
    if (!(c.valid && (unicode_flags(c.cp) & kUnicodeMarkNonspacing))) out.append(nfd, i, c.length);
    i += c.length;
  }
  return out;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(const std::filesystem::path& vocab_file, WordPieceOptions options)
    : options_(options) {
  const std::string text = read_file(vocab_file);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string token = text.substr(start, end - start);
    if (!token.empty() && token.back() == '\r') token.pop_back();
    // A repeated token keeps its last id, as BERT's vocab dict does.
    const auto id = static_cast<std::int32_t>(id_to_token_.size());
    token_to_id_.insert_or_assign(token, id);
    id_to_token_.push_back(std::move(token));
    start = end + 1;
  }
  if (id_to_token_.empty()) throw DataError(fmt::format("'{}': empty WordPiece vocabulary", vocab_file.string()));
  const auto find = [&](std::string_view t) -> std::optional<std::int32_t> { return token_to_id(t); };
  special_.unk = find("[UNK]");
  special_.cls = find("[CLS]");
  special_.sep = find("[SEP]");
  special_.pad = find("[PAD]");
  special_.mask = find("[MASK]");
  // NeMo's Hugging Face wrapper uses [CLS] as bos and [SEP] as eos; --append-eod appends eos.
  special_.bos = special_.cls;
  special_.eos = special_.sep;
  special_.eod = special_.sep;
  if (!special_.unk) throw DataError(fmt::format("'{}': the vocabulary has no [UNK] token", vocab_file.string()));
}

std::unique_ptr<TokenEncoder> WordPieceTokenizer::make_encoder() const { return std::make_unique<WordPieceEncoder>(*this); }

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  // Clean: drop NUL, U+FFFD and controls; whitespace becomes ' '; CJK ideographs get spaces around.
  std::string clean;
  clean.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8(text, i);
    const std::size_t len = c.length;
    if (!c.valid) {
      i += len;  // not decodable: dropped, as Python would fail to decode it
      continue;
    }
    const std::uint16_t f = unicode_flags(c.cp);
    if (c.cp == 0 || c.cp == 0xFFFD || (f & kUnicodeBertControl)) {
    } else if (f & kUnicodeBertSpace) {
      clean.push_back(' ');
    } else if (f & kUnicodeCjk) {
      clean.push_back(' ');
      clean.append(text.substr(i, len));
      clean.push_back(' ');
    } else {
      clean.append(text.substr(i, len));
    }
    i += len;
  }
  std::vector<std::string> words;
  split_py_whitespace(clean, words);
  std::vector<std::string> out;
  for (std::string& word : words) {
    if (options_.keep_special_tokens &&
        std::find(kSpecials.begin(), kSpecials.end(), std::string_view(word)) != kSpecials.end()) {
      out.push_back(std::move(word));
      continue;
    }
    if (options_.lower_case) word = strip_accents(utf8_to_lower(word));
    // Punctuation characters become tokens of their own.
    std::string current;
    for (std::size_t i = 0; i < word.size();) {
      const Utf8Char c = decode_utf8(word, i);
      if (c.valid && (unicode_flags(c.cp) & kUnicodeBertPunct)) {
        if (!current.empty()) out.push_back(std::move(current));
        current.clear();
        out.emplace_back(word.substr(i, c.length));
      } else {
        current.append(word, i, c.length);
      }
      i += c.length;
    }
    if (!current.empty()) out.push_back(std::move(current));
  }
  // whitespace_tokenize(" ".join(tokens)): accent stripping can leave tokens that split further.
  std::vector<std::string> final_tokens;
  for (const std::string& t : out) split_py_whitespace(t, final_tokens);
  return final_tokens;
}

void WordPieceTokenizer::wordpiece(std::string_view word, std::vector<std::int32_t>& out) const {
  // Code point boundaries of the word.
  std::vector<std::size_t> bounds;
  for (std::size_t i = 0; i < word.size();) {
    bounds.push_back(i);
    i += decode_utf8(word, i).length;
  }
  bounds.push_back(word.size());
  const std::size_t chars = bounds.size() - 1;
  if (chars > options_.max_input_chars_per_word) {
    out.push_back(*special_.unk);
    return;
  }
  const std::size_t mark = out.size();
  std::string candidate;
  std::size_t start = 0;
  while (start < chars) {
    std::size_t end = chars;
    std::optional<std::int32_t> found;
    while (start < end) {
      candidate.clear();
      if (start > 0) candidate = "##";
      candidate.append(word.substr(bounds[start], bounds[end] - bounds[start]));
      const auto it = token_to_id_.find(std::string_view(candidate));
      if (it != token_to_id_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (!found) {
      out.resize(mark);
      out.push_back(*special_.unk);
      return;
    }
    out.push_back(*found);
    start = end;
  }
}

std::string WordPieceTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) {
    const std::string t = id_to_token(id);
    if (t.starts_with("##")) {
      out.append(t, 2);
    } else {
      if (!out.empty()) out.push_back(' ');
      out += t;
    }
  }
  return out;
}

std::string WordPieceTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> WordPieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

}  // namespace bignlp::data
