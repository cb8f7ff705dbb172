// What bignlp-generate and bignlp-serve share: loading a checkpoint's model and tokenizer, and the
// JSONL request/result formats of bignlp-generate.
//
//   input lines   {"ids": [int, ...]} or {"text": "..."} (text needs the checkpoint's tokenizer),
//                 optionally "seed": n (this line's random_seed)
//   output lines  {"ids": [generated ids], "text": "...", "logprobs": [...], "cum_logprob": x,
//                  "finish_reason": "end"|"stop"|"length"} (+ "beams": [{...}, ...] when beam_width > 1)
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/data/tokenizer.h"
#include "bignlp/infer/engine.h"

namespace bignlp::infer {

/// The tokenizer a checkpoint records (metadata.json "tokenizer"), or null when it records none.
/// Throws ConfigError/IoError naming the checkpoint when the recorded files cannot be loaded.
std::unique_ptr<data::Tokenizer> load_checkpoint_tokenizer(const std::filesystem::path& checkpoint);

/// Reads prompts (one JSON object per line; blank lines skipped) into requests with `defaults`.
/// Throws DataError naming the file and line for malformed lines, text without a tokenizer, or
/// token ids outside [0, vocab).
std::vector<GenerationRequest> read_generation_requests(const std::filesystem::path& path,
                                                        const SamplingParams& defaults,
                                                        const data::Tokenizer* tokenizer, std::int64_t vocab);

/// The output line of one result.
nlohmann::json result_json(const GenerationResult& result, const data::Tokenizer* tokenizer, bool log_probs);

/// Text of generated ids (invalid UTF-8 replaced as Python's errors='replace').
std::string detokenize(const data::Tokenizer& tokenizer, const std::vector<std::int32_t>& ids);

}  // namespace bignlp::infer
