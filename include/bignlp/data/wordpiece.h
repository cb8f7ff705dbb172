// BERT WordPiece (vocab.txt, one token per line, id = line number): the tokenizer of
// BertWordPieceCase (T5) and BertWordPieceLowerCase.
//
// Basic tokenization as BERT's: drop NUL, U+FFFD and control characters, turn whitespace into ' ',
// put spaces around CJK ideographs, split on whitespace (Python's str.split), lower-case and strip
// accents (NFD minus Mn) when uncased, split punctuation into single-character tokens. Then
// WordPiece: greedy longest-match-first with the "##" continuation prefix; a word with no match, or
// longer than max_input_chars_per_word code points, becomes [UNK].
// Encoding adds no [CLS]/[SEP] (as preprocessing needs); --append-eod appends [SEP] (NeMo's eos).
// By default a literal "[SEP]" in text is split like any text (Megatron's FullTokenizer);
// keep_special_tokens keeps [CLS] [SEP] [PAD] [MASK] [UNK] whole (Hugging Face's BertTokenizer).
#pragma once

#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

struct WordPieceOptions {
  bool lower_case = false;
  std::size_t max_input_chars_per_word = 100;  ///< Hugging Face/NeMo; Megatron-LM's own uses 200
  bool keep_special_tokens = false;
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  /// Loads vocab.txt; throws IoError/DataError naming the file.
  WordPieceTokenizer(const std::filesystem::path& vocab_file, WordPieceOptions options);

  std::string_view type_name() const override {
    return options_.lower_case ? "BertWordPieceLowerCase" : "BertWordPieceCase";
  }
  std::int64_t vocab_size() const override { return static_cast<std::int64_t>(id_to_token_.size()); }
  const SpecialTokens& special_tokens() const override { return special_; }
  std::unique_ptr<TokenEncoder> make_encoder() const override;
  /// Joins the tokens with spaces and glues "##" continuations (BERT's convert_tokens_to_string).
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::string id_to_token(std::int32_t id) const override;
  std::optional<std::int32_t> token_to_id(std::string_view token) const override;

  /// The basic tokenizer's output (words and punctuation) for `text`.
  std::vector<std::string> basic_tokenize(std::string_view text) const;
  /// WordPiece pieces of one basic token.
  void wordpiece(std::string_view word, std::vector<std::int32_t>& out) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  WordPieceOptions options_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>> token_to_id_;
  SpecialTokens special_;
};

}  // namespace bignlp::data
