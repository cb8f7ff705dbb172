// GPT-2 byte-level BPE (vocab.json + merges.txt), id-exact with OpenAI's encoder and Megatron's
// GPT2Tokenizer (reference formats.md §4).
//
// Encoding: the text is split by a hand-written scanner equivalent to the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (leftmost-first alternation; a whitespace run before a non-space gives its last character to the
// next piece), each piece's UTF-8 bytes start as byte tokens, and the lowest-ranked adjacent pair is
// merged (every occurrence, left to right) until none is ranked. Ids are vocab.json's (merge r
// yields id 256 + r with the GPT-2 files); <|endoftext|> = 50256 is the EOD.
// Speed: merges live in a flat open-addressing table keyed by the pair of ids; each encoder caches
// the ids of pieces it has seen; long pieces use a heap (O(n log n)) instead of rescans.
// A literal "<|endoftext|>" in text is ordinary text (Megatron) unless split_special_tokens is set
// (Hugging Face / NeMo `library: megatron`), which maps it to the EOD id.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

struct Gpt2BpeOptions {
  bool split_special_tokens = false;  ///< treat literal "<|endoftext|>" as the EOD token
  std::size_t cache_max_bytes = 64u << 20;  ///< per-encoder word cache budget (cleared when full)
};

class Gpt2BpeTokenizer final : public Tokenizer {
 public:
  /// Loads vocab.json and merges.txt; errors name the file (and line for merges).
  Gpt2BpeTokenizer(const std::filesystem::path& vocab_file, const std::filesystem::path& merges_file,
                   Gpt2BpeOptions options = {});
  ~Gpt2BpeTokenizer() override;

  std::string_view type_name() const override { return "GPT2BPETokenizer"; }
  std::int64_t vocab_size() const override { return static_cast<std::int64_t>(id_to_bytes_.size()); }
  const SpecialTokens& special_tokens() const override { return special_; }
  std::unique_ptr<TokenEncoder> make_encoder() const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::string id_to_token(std::int32_t id) const override;
  std::optional<std::int32_t> token_to_id(std::string_view token) const override;

  /// The byte ranges the pre-tokenizer cuts `text` into (for tests and debugging).
  static std::vector<std::string_view> pretokenize(std::string_view text);

  struct Impl;  // merge table and byte maps, shared by the encoders

 private:
  std::shared_ptr<const Impl> impl_;
  std::vector<std::string> id_to_bytes_;  // raw bytes of each id
  std::vector<std::string> id_to_token_;  // vocab.json strings
  std::unordered_map<std::string, std::int32_t> token_to_id_;
  SpecialTokens special_;
  Gpt2BpeOptions options_;
};

/// Byte -> the code point GPT-2 maps it to (printable bytes map to themselves, the 68 others to
/// U+0100... in order).
char32_t gpt2_byte_to_unicode(std::uint8_t byte);

}  // namespace bignlp::data
