// SentencePiece models through Debian's libsentencepiece: loading, encoding/decoding, and training
// (custom datasets, mT5-style tokenizers).
//
// vocab_size() is the model's piece count. Special ids come from the model (negative ids mean
// "none"); the EOD that --append-eod appends is the model's eos (NeMo's eos_id). A loaded model is
// shared read-only between threads (SentencePieceProcessor's encode is const).
// Not handled here: NeMo's "legacy" extra tokens (<cls>, <sep>, <mask>, sentinels) that the model
// code appends after the vocabulary; they do not change the preprocessed data.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "bignlp/data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bignlp::data {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  /// Loads a .model file; throws IoError/DataError naming it.
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;

  std::string_view type_name() const override { return "sentencepiece"; }
  std::int64_t vocab_size() const override;
  const SpecialTokens& special_tokens() const override { return special_; }
  std::unique_ptr<TokenEncoder> make_encoder() const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::string id_to_token(std::int32_t id) const override;
  std::optional<std::int32_t> token_to_id(std::string_view token) const override;

  /// Appends the ids of `text` (thread-safe).
  void encode_into(std::string_view text, std::vector<std::int32_t>& out) const;
  /// The pieces of `text` (for tests and inspection).
  std::vector<std::string> encode_pieces(std::string_view text) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::filesystem::path path_;
  SpecialTokens special_;
};

/// Trains a SentencePiece model with the trainer's own option names, e.g. {{"input", "a.txt"},
/// {"model_prefix", "dir/custom_sp_tokenizer"}, {"model_type", "bpe"}, {"vocab_size", "8000"}}.
/// Writes <model_prefix>.model and .vocab. Throws ConfigError on bad options, DataError on
/// training failures, both with the trainer's message.
void train_sentencepiece(const std::map<std::string, std::string>& options);

}  // namespace bignlp::data
