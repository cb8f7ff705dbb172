#include "bignlp/data/tokenizer_factory.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/gpt2_bpe.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/wordpiece.h"

namespace bignlp::data {
namespace {

[[noreturn]] void unknown(std::string_view what, std::string_view value, const std::vector<std::string>& choices) {
  std::string msg = fmt::format("unknown {} '{}' (choices: {})", what, value, join(choices, ", "));
  const auto close = closest_matches(value, choices, 1);
  if (!close.empty()) msg += fmt::format("; did you mean '{}'?", close.front());
  throw ConfigError(msg);
}

void require(const std::filesystem::path& p, std::string_view what, std::string_view type) {
  if (p.empty()) throw ConfigError(fmt::format("tokenizer {} needs {}", type, what));
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const TokenizerSpec& spec) {
  if (spec.library == "sentencepiece") {
    require(spec.model_file, "a model file (--tokenizer-model)", "library sentencepiece");
    return std::make_unique<SentencePieceTokenizer>(spec.model_file);
  }
  if (spec.library != "megatron") unknown("tokenizer library", spec.library, {"megatron", "sentencepiece"});
  if (spec.type == "GPT2BPETokenizer") {
    require(spec.vocab_file, "a vocab file (--vocab-file)", spec.type);
    require(spec.merge_file, "a merges file (--merge-file)", spec.type);
    Gpt2BpeOptions o;
    o.split_special_tokens = spec.split_special_tokens;
    return std::make_unique<Gpt2BpeTokenizer>(spec.vocab_file, spec.merge_file, o);
  }
  if (spec.type == "BertWordPieceCase" || spec.type == "BertWordPieceLowerCase") {
    require(spec.vocab_file, "a vocab file (--vocab-file)", spec.type);
    WordPieceOptions o;
    o.lower_case = spec.type == "BertWordPieceLowerCase";
    o.keep_special_tokens = spec.split_special_tokens;
    return std::make_unique<WordPieceTokenizer>(spec.vocab_file, o);
  }
  unknown("tokenizer type", spec.type, {"GPT2BPETokenizer", "BertWordPieceCase", "BertWordPieceLowerCase"});
}

}  // namespace bignlp::data
