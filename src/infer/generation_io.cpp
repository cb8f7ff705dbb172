#include "bignlp/infer/generation_io.h"

#include <fmt/format.h>

#include <fstream>

#include "bignlp/checkpoint/metadata.h"
#include "bignlp/core/error.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/data/unicode.h"

namespace bignlp::infer {

std::unique_ptr<data::Tokenizer> load_checkpoint_tokenizer(const std::filesystem::path& checkpoint) {
  const checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(checkpoint);
  const auto& t = meta.tokenizer;
  if (t.empty() || !t.contains("library")) return nullptr;
  data::TokenizerSpec spec;
  spec.library = t.at("library");
  if (auto it = t.find("type"); it != t.end()) spec.type = it->second;
  if (auto it = t.find("vocab_file"); it != t.end()) spec.vocab_file = it->second;
  if (auto it = t.find("merge_file"); it != t.end()) spec.merge_file = it->second;
  if (auto it = t.find("model"); it != t.end()) spec.model_file = it->second;
  if (auto it = t.find("model_file"); it != t.end()) spec.model_file = it->second;
  if (spec.library == "megatron" && spec.type == "GPT2BPETokenizer" &&
      (spec.vocab_file.empty() || spec.merge_file.empty()))
    return nullptr;
  try {
    return data::load_tokenizer(spec);
  } catch (const Error& e) {
    throw ConfigError(fmt::format("{}: the checkpoint's tokenizer (metadata.json tokenizer) cannot be loaded: {}",
                                  (checkpoint / "metadata.json").string(), e.what()));
  }
}

std::vector<GenerationRequest> read_generation_requests(const std::filesystem::path& path,
                                                        const SamplingParams& defaults,
                                                        const data::Tokenizer* tokenizer, std::int64_t vocab) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("{}: cannot open the prompt file", path.string()));
  std::vector<GenerationRequest> out;
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = [&] { return fmt::format("{}:{}", path.string(), n); };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: not a JSON object: {}", where(), e.what()));
    }
    if (!j.is_object()) throw DataError(fmt::format("{}: expected a JSON object with \"ids\" or \"text\"", where()));
    GenerationRequest r;
    r.params = defaults;
    if (j.contains("ids")) {
      if (!j["ids"].is_array()) throw DataError(fmt::format("{}: ids: expected an array of token ids", where()));
      for (const auto& v : j["ids"]) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab)
          throw DataError(fmt::format("{}: ids: {} is not a token id in [0, {})", where(), v.dump(), vocab));
        r.prompt.push_back(v.get<std::int32_t>());
      }
    } else if (j.contains("text")) {
      if (!j["text"].is_string()) throw DataError(fmt::format("{}: text: expected a string", where()));
      if (tokenizer == nullptr)
        throw DataError(fmt::format("{}: text: the checkpoint records no tokenizer; give \"ids\" instead", where()));
      r.prompt = tokenizer->encode(j["text"].get<std::string>());
    } else {
      throw DataError(fmt::format("{}: expected \"ids\" or \"text\"", where()));
    }
    if (r.prompt.empty()) throw DataError(fmt::format("{}: the prompt is empty", where()));
    if (j.contains("seed")) {
      if (!j["seed"].is_number_unsigned() && !(j["seed"].is_number_integer() && j["seed"].get<std::int64_t>() >= 0))
        throw DataError(fmt::format("{}: seed: expected a non-negative integer", where()));
      r.params.random_seed = j["seed"].get<std::uint64_t>();
    }
    for (const auto& [key, _] : j.items())
      if (key != "ids" && key != "text" && key != "seed")
        throw DataError(fmt::format("{}: unknown key \"{}\" (expected ids, text, seed)", where(), key));
    out.push_back(std::move(r));
  }
  return out;
}

std::string detokenize(const data::Tokenizer& tokenizer, const std::vector<std::int32_t>& ids) {
  return data::sanitize_utf8(tokenizer.decode(ids));
}

namespace {

nlohmann::json beam_json(const SequenceOutput& s, const data::Tokenizer* tokenizer, bool log_probs) {
  nlohmann::json j;
  j["ids"] = s.tokens;
  if (tokenizer != nullptr) j["text"] = detokenize(*tokenizer, s.tokens);
  if (log_probs) j["logprobs"] = s.log_probs;
  j["cum_logprob"] = s.cum_log_prob;
  j["finish_reason"] = s.finish_reason;
  return j;
}

}  // namespace

nlohmann::json result_json(const GenerationResult& result, const data::Tokenizer* tokenizer, bool log_probs) {
  nlohmann::json j = beam_json(result.beams.at(0), tokenizer, log_probs);
  if (result.beams.size() > 1) {
    j["beams"] = nlohmann::json::array();
    for (const auto& b : result.beams) j["beams"].push_back(beam_json(b, tokenizer, log_probs));
  }
  return j;
}

}  // namespace bignlp::infer
