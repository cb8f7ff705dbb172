// The custom dataset flow (generic/custom_dataset): your own files, two steps.
//
//   train_tokenizer  (when train_tokenizer) trains a SentencePiece model with train_tokenizer_args
//                    (the trainer's own option names); a relative model_prefix is placed in
//                    bpe_save_dir, so the model is <bpe_save_dir>/<model_prefix>.model.
//   preprocess       raw_dataset_files balanced by size over node_array_size x workers_per_node
//                    slots (the assignment is written to preprocess_worker_mapping); slot s
//                    tokenizes its files into preprocessed_dir/<file stem>_text_document, one
//                    dataset per file. With output_prefix set, a slot writes all its files into
//                    one dataset instead: preprocessed_dir/<output_prefix>_text_document when
//                    there is a single slot, <output_prefix>_<s:02d>_text_document otherwise.
//                    With split_sentences the datasets are ..._text_sentence, one sequence per
//                    sentence (what the T5 dataset reads as sentence boundaries).
// The tokenizer is the SentencePiece tokenizer_model unless `tokenizer` names a Megatron one
// (GPT2BPETokenizer etc., as the embedded demo does).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/preprocess.h"
#include "bignlp/data/tokenizer_factory.h"

namespace bignlp::data {

struct CustomDatasetConfig {
  std::map<std::string, std::string> train_tokenizer_args;
  std::filesystem::path bpe_save_dir;
  std::vector<std::filesystem::path> raw_dataset_files;
  TokenizerSpec tokenizer;                         ///< library sentencepiece + model_file by default
  std::filesystem::path preprocess_worker_mapping;
  std::filesystem::path preprocessed_dir;
  std::optional<std::string> output_prefix;
  std::vector<std::string> json_keys = {"text"};
  bool append_eod = false;
  TextMode text_mode = TextMode::kLine;            ///< for plain-text raw files
  bool split_sentences = false;                    ///< --split-sentences: <prefix>_text_sentence datasets (T5)
  int node_array_size = 1;
  int workers_per_node = 1;
  int workers = 1;                                 ///< tokenizing threads per slot
  ProgressMode progress = ProgressMode::kAuto;
};

void custom_train_tokenizer(const CustomDatasetConfig& config, const Logger& log);
/// The files of every slot (size-balanced, deterministic).
std::vector<std::vector<std::filesystem::path>> custom_assign_files(const CustomDatasetConfig& config);
/// The dataset prefixes (without _text_document) slot `slot` writes.
std::vector<std::filesystem::path> custom_output_prefixes(const CustomDatasetConfig& config, int slot);
void custom_preprocess(const CustomDatasetConfig& config, int slot, const Logger& log);

}  // namespace bignlp::data
