#include "bignlp/data/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

#include "bignlp/core/error.h"

namespace bignlp::data {
namespace {

class SentencePieceEncoder final : public TokenEncoder {
 public:
  explicit SentencePieceEncoder(const SentencePieceTokenizer& tok) : tok_(tok) {}
  void encode(std::string_view text, std::vector<std::int32_t>& out) override { tok_.encode_into(text, out); }

 private:
  const SentencePieceTokenizer& tok_;
};

std::optional<std::int32_t> id_or_none(int id) {
  if (id < 0) return std::nullopt;
  return id;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), path_(model_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_file, ec)) {
    throw IoError(fmt::format("cannot open '{}': no such SentencePiece model file", model_file.string()));
  }
  const auto status = sp_->Load(model_file.string());
  if (!status.ok()) {
    throw DataError(fmt::format("'{}': not a valid SentencePiece model: {}", model_file.string(), status.ToString()));
  }
  special_.unk = id_or_none(sp_->unk_id());
  special_.bos = id_or_none(sp_->bos_id());
  special_.eos = id_or_none(sp_->eos_id());
  special_.pad = id_or_none(sp_->pad_id());
  special_.eod = special_.eos;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::unique_ptr<TokenEncoder> SentencePieceTokenizer::make_encoder() const {
  return std::make_unique<SentencePieceEncoder>(*this);
}

void SentencePieceTokenizer::encode_into(std::string_view text, std::vector<std::int32_t>& out) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(std::string(text), &ids);
  if (!status.ok()) throw DataError(fmt::format("'{}': encoding failed: {}", path_.string(), status.ToString()));
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<std::string> SentencePieceTokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  const auto status = sp_->Encode(std::string(text), &pieces);
  if (!status.ok()) throw DataError(fmt::format("'{}': encoding failed: {}", path_.string(), status.ToString()));
  return pieces;
}

std::string SentencePieceTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  const std::vector<int> v(ids.begin(), ids.end());
  const auto status = sp_->Decode(v, &out);
  if (!status.ok()) throw DataError(fmt::format("'{}': decoding failed: {}", path_.string(), status.ToString()));
  return out;
}

std::string SentencePieceTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || id >= sp_->GetPieceSize()) return {};
  return sp_->IdToPiece(id);
}

std::optional<std::int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(std::string(token));
  if (id < 0 || (sp_->IsUnknown(id) && sp_->IdToPiece(id) != token)) return std::nullopt;
  return id;
}

void train_sentencepiece(const std::map<std::string, std::string>& options) {
  if (!options.contains("input")) throw ConfigError("SentencePiece training needs 'input' (a text file)");
  if (!options.contains("model_prefix")) throw ConfigError("SentencePiece training needs 'model_prefix'");
  const std::unordered_map<std::string, std::string> kwargs(options.begin(), options.end());
  const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
  if (!status.ok()) {
    const std::string msg = status.ToString();
    if (status.code() == sentencepiece::util::StatusCode::kInvalidArgument ||
        msg.find("unknown field name") != std::string::npos) {
      throw ConfigError(fmt::format("SentencePiece training options: {}", msg));
    }
    throw DataError(fmt::format("SentencePiece training on '{}' failed: {}", options.at("input"), msg));
  }
}

}  // namespace bignlp::data
