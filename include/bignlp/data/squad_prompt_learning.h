// SQuAD (v1.1 format, also XQuAD) -> the prompt-learning jsonl files (tuning.md §2.2).
//
// What NeMo's prompt_learning_squad_preprocessing.py writes, byte for byte, from a train and a dev
// file in SQuAD's JSON layout ({"data": [{"title", "paragraphs": [{"context", "qas": [{"question",
// "answers": [{"text", ...}]}]}]}]}), walked article -> paragraph -> question in file order:
//   <base>_train.jsonl               train: taskname, context, question, answer (the first answer)
//   <base>_val.jsonl                 dev:   the same
//   <base>_test_ground_truth.jsonl   dev:   the same keys, answer = a list of every answer text
//   <base>_test.jsonl                dev:   taskname, context, question
// One JSON object per line, "\n"-terminated, serialised as Python's json.dumps with its defaults
// (", " and ": " separators; ensure_ascii: every character outside ' '..'~' escaped, \" \\ \n \r
// \t \b \f short, others \uXXXX in lower-case hex, surrogate pairs above the BMP). Questions with
// no answers are skipped. The outputs are written atomically and replaced on every run (as NeMo's
// script does); the random seed of the original script is unused there, so there is none here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace bignlp::data {

struct SquadPromptCounts {
  std::int64_t train = 0;    ///< lines of <base>_train.jsonl
  std::int64_t dev = 0;      ///< lines of each of the three dev files
  std::int64_t skipped = 0;  ///< questions without answers (both files)
};

/// Python json.dumps(text) (ensure_ascii=True) of a UTF-8 string, quotes included.
std::string python_json_string(std::string_view utf8);

/// Converts `train_json` and `dev_json` into the four files above in `output_dir` (created when
/// missing). Throws DataError naming the file and the key path (e.g. data[2].paragraphs[0].qas[5]
/// .question) for malformed input, IoError for unreadable/unwritable files.
SquadPromptCounts convert_squad_for_prompt_learning(const std::filesystem::path& train_json,
                                                    const std::filesystem::path& dev_json,
                                                    const std::filesystem::path& output_dir,
                                                    const std::string& base_name = "squad",
                                                    const std::string& taskname = "squad");

}  // namespace bignlp::data
