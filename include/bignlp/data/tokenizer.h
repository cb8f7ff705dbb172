// The tokenizer interface shared by GPT-2 BPE, BERT WordPiece and SentencePiece.
//
// A Tokenizer is immutable after loading and safe to share between threads. Encoding goes through
// a TokenEncoder, a per-thread object that may keep caches (GPT-2's word cache); make one per
// thread with make_encoder(). Tokenizer::encode() is a convenience that makes a throw-away encoder.
// Ids are int32; vocab_size() is the unpadded size (the padded model size is sizing/vocab.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bignlp::data {

/// Ids of the special tokens a tokenizer has (absent when it has none).
struct SpecialTokens {
  std::optional<std::int32_t> eod;   ///< appended by preprocessing's --append-eod
  std::optional<std::int32_t> bos;
  std::optional<std::int32_t> eos;
  std::optional<std::int32_t> pad;
  std::optional<std::int32_t> unk;
  std::optional<std::int32_t> cls;
  std::optional<std::int32_t> sep;
  std::optional<std::int32_t> mask;
};

/// Encodes text on one thread; may cache between calls. Not thread-safe.
class TokenEncoder {
 public:
  virtual ~TokenEncoder() = default;
  /// Appends the ids of `text` to `out`.
  virtual void encode(std::string_view text, std::vector<std::int32_t>& out) = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// "GPT2BPETokenizer", "BertWordPieceCase", "BertWordPieceLowerCase", "sentencepiece".
  virtual std::string_view type_name() const = 0;
  /// Number of ids (unpadded).
  virtual std::int64_t vocab_size() const = 0;
  virtual const SpecialTokens& special_tokens() const = 0;
  virtual std::unique_ptr<TokenEncoder> make_encoder() const = 0;
  /// The text of `ids`. Byte-level tokenizers return the raw bytes (which may end inside a UTF-8
  /// sequence); use sanitize_utf8() for Python's errors='replace' behaviour.
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  /// The vocabulary string of `id` ("" when out of range).
  virtual std::string id_to_token(std::int32_t id) const = 0;
  /// The id of a vocabulary string.
  virtual std::optional<std::int32_t> token_to_id(std::string_view token) const = 0;

  /// Encodes with a throw-away encoder (use make_encoder() in loops).
  std::vector<std::int32_t> encode(std::string_view text) const {
    std::vector<std::int32_t> out;
    make_encoder()->encode(text, out);
    return out;
  }
};

}  // namespace bignlp::data
