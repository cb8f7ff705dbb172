// Loading a tokenizer from the names the configs and Megatron's flags use.
//
//   library megatron:       type GPT2BPETokenizer (vocab_file + merge_file),
//                           BertWordPieceCase / BertWordPieceLowerCase (vocab_file)
//   library sentencepiece:  model_file
// Unknown names are a ConfigError listing the choices (with a "did you mean").
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

struct TokenizerSpec {
  std::string library = "megatron";
  std::string type;                     ///< megatron: GPT2BPETokenizer, BertWordPieceCase, BertWordPieceLowerCase
  std::filesystem::path vocab_file;
  std::filesystem::path merge_file;
  std::filesystem::path model_file;     ///< sentencepiece
  bool split_special_tokens = false;    ///< special tokens in text become their ids (Hugging Face behaviour)
};

std::unique_ptr<Tokenizer> load_tokenizer(const TokenizerSpec& spec);

}  // namespace bignlp::data
