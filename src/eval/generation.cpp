#include "bignlp/eval/generation.h"

#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::eval {
namespace {

/// Python's str.split() separators (Py_UNICODE_ISSPACE): bidirectional class WS, B or S, or
/// general category Zs (the ASCII ones: \t \n \v \f \r, 0x1c-0x1f and space).
bool is_python_space(UChar32 c) {
  if (c < 128) return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  const UCharDirection d = u_charDirection(c);
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR ||
         u_charType(c) == U_SPACE_SEPARATOR;
}

/// A word character of Python's `\b` on str patterns: alphabetic, a digit, numeric, or '_'.
bool is_python_word(UChar32 c) {
  if (c == '_') return true;
  return u_isalpha(c) || u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}

bool is_ascii_punctuation(UChar32 c) {
  static constexpr std::string_view kPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  return c < 128 && kPunct.find(static_cast<char>(c)) != std::string_view::npos;
}

/// The normalized tokens of `text` (normalize_answer split on single spaces).
std::vector<std::string> normalized_tokens(std::string_view text) {
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  s.toLower(icu::Locale::getRoot());  // full case mapping (final sigma, U+0130) as str.lower()
  std::vector<UChar32> cps;
  for (int32_t i = 0; i < s.length(); i = s.moveIndex32(i, 1)) {
    const UChar32 c = s.char32At(i);
    if (!is_ascii_punctuation(c)) cps.push_back(c);
  }
  // \b(a|an|the)\b -> " ", left to right, the first alternative whose boundaries hold.
  std::vector<UChar32> out;
  const std::size_t n = cps.size();
  for (std::size_t i = 0; i < n;) {
    std::size_t matched = 0;
    if (i == 0 || !is_python_word(cps[i - 1])) {
      for (const std::u32string_view w : {std::u32string_view(U"a"), std::u32string_view(U"an"), std::u32string_view(U"the")}) {
        if (i + w.size() > n) continue;
        if (!std::equal(w.begin(), w.end(), cps.begin() + static_cast<std::ptrdiff_t>(i),
                        [](char32_t a, UChar32 b) { return static_cast<UChar32>(a) == b; }))
          continue;
        if (i + w.size() < n && is_python_word(cps[i + w.size()])) continue;
        matched = w.size();
        break;
      }
    }
    if (matched > 0) {
      out.push_back(' ');
      i += matched;
    } else {
      out.push_back(cps[i++]);
    }
  }
  std::vector<std::string> tokens;
  std::string cur;
  const auto flush = [&] {
    if (!cur.empty()) tokens.push_back(std::move(cur));
    cur.clear();
  };
  for (UChar32 c : out) {
    if (is_python_space(c)) {
      flush();
      continue;
    }
    icu::UnicodeString one(c);
    one.toUTF8String(cur);
  }
  flush();
  return tokens;
}

std::string join_tokens(const std::vector<std::string>& tokens) {
  std::string s;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) s += ' ';
    s += tokens[i];
  }
  return s;
}

}  // namespace

std::string normalize_answer(std::string_view text) { return join_tokens(normalized_tokens(text)); }

double squad_exact_match(std::string_view prediction, std::string_view reference) {
  return normalize_answer(prediction) == normalize_answer(reference) ? 1.0 : 0.0;
}

double squad_f1(std::string_view prediction, std::string_view reference) {
  const std::vector<std::string> p = normalized_tokens(prediction), r = normalized_tokens(reference);
  std::map<std::string, std::int64_t> counts;
  for (const auto& t : r) ++counts[t];
  std::int64_t same = 0;
  for (const auto& t : p) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / static_cast<double>(p.size());
  const double recall = static_cast<double>(same) / static_cast<double>(r.size());
  return 2.0 * precision * recall / (precision + recall);
}

double exact_string_match(std::string_view prediction, std::string_view reference) {
  return prediction == reference ? 1.0 : 0.0;
}

double max_over_references(double (*metric)(std::string_view, std::string_view), std::string_view prediction,
                           const std::vector<std::string>& references) {
  double best = 0.0;
  for (const auto& r : references) best = std::max(best, metric(prediction, r));
  return best;
}

GenerationPrediction score_prediction(std::string text, const std::vector<std::string>& answers) {
  GenerationPrediction p;
  p.exact_match = max_over_references(squad_exact_match, text, answers);
  p.f1 = max_over_references(squad_f1, text, answers);
  p.exact_string_match = max_over_references(exact_string_match, text, answers);
  p.text = std::move(text);
  return p;
}

GenerationScores aggregate(const std::vector<GenerationPrediction>& predictions) {
  GenerationScores s;
  s.total = static_cast<std::int64_t>(predictions.size());
  if (predictions.empty()) return s;
  for (const auto& p : predictions) {
    s.exact_match += p.exact_match;
    s.f1 += p.f1;
    s.exact_string_match += p.exact_string_match;
  }
  const double n = static_cast<double>(predictions.size());
  s.exact_match = 100.0 * s.exact_match / n;
  s.f1 = 100.0 * s.f1 / n;
  s.exact_string_match /= n;
  return s;
}

GenerationReport run_generation_task(infer::Engine& engine, const std::vector<GenerationItem>& items,
                                     const GenerationOptions& options) {
  if (!options.detokenize) throw ConfigError("a generation task needs a detokenizer (the checkpoint's tokenizer)");
  if (options.max_new_tokens < 1)
    throw ConfigError(fmt::format("tokens to generate must be at least 1, got {}", options.max_new_tokens));
  std::vector<infer::GenerationRequest> requests;
  requests.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    infer::GenerationRequest r{items[i].input, {}};
    r.params.max_new_tokens = options.max_new_tokens;
    r.params.end_id = options.end_id;  // greedy: top_k 0, top_p 0, beam width 1
    try {
      engine.check(r);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("generation item {}: {}", i + 1, e.what()));
    }
    requests.push_back(std::move(r));
  }
  const std::vector<infer::GenerationResult> results = engine.generate(requests);
  GenerationReport report;
  report.predictions.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!results[i].error.empty())
      throw RuntimeError(fmt::format("generation item {}: {}", i + 1, results[i].error));
    std::vector<std::int32_t> ids = results[i].beams.at(0).tokens;
    if (options.end_id) {
      const auto end = std::find(ids.begin(), ids.end(), *options.end_id);
      ids.erase(end, ids.end());
    }
    std::vector<std::int32_t> kept;
    for (std::int32_t id : ids)
      if (std::find(options.drop_ids.begin(), options.drop_ids.end(), id) == options.drop_ids.end()) kept.push_back(id);
    GenerationPrediction p = score_prediction(options.detokenize(kept), items[i].answers);
    p.ids = std::move(ids);
    report.predictions.push_back(std::move(p));
  }
  report.scores = aggregate(report.predictions);
  return report;
}

std::vector<GenerationItem> read_generation_items(const std::filesystem::path& path, const data::Tokenizer* tokenizer,
                                                  std::int64_t vocab, bool wrap_bos_eos) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("{}: cannot open the generation task file", path.string()));
  std::vector<GenerationItem> out;
  std::unique_ptr<data::TokenEncoder> encoder = tokenizer != nullptr ? tokenizer->make_encoder() : nullptr;
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
    if (!j.is_object()) throw DataError(fmt::format("{}: expected a JSON object with \"ids\" or \"text\" and \"answers\"", where()));
    for (const auto& [key, value] : j.items())
      if (key != "ids" && key != "text" && key != "answers")
        throw DataError(fmt::format("{}: unknown key \"{}\" (expected \"ids\" or \"text\", and \"answers\")", where(), key));
    if (j.contains("ids") == j.contains("text"))
      throw DataError(fmt::format("{}: give exactly one of \"ids\" and \"text\"", where()));
    GenerationItem item;
    if (j.contains("ids")) {
      if (!j["ids"].is_array()) throw DataError(fmt::format("{}: ids: expected an array of token ids", where()));
      for (const auto& v : j["ids"]) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab)
          throw DataError(fmt::format("{}: ids: {} is not a token id in [0, {})", where(), v.dump(), vocab));
        item.input.push_back(v.get<std::int32_t>());
      }
    } else {
      if (!j["text"].is_string()) throw DataError(fmt::format("{}: text: expected a string", where()));
      if (encoder == nullptr) throw DataError(fmt::format("{}: text: the checkpoint records no tokenizer; give ids", where()));
      const data::SpecialTokens& sp = tokenizer->special_tokens();
      if (wrap_bos_eos && sp.bos) item.input.push_back(*sp.bos);
      encoder->encode(j["text"].get<std::string>(), item.input);
      if (wrap_bos_eos && sp.eos) item.input.push_back(*sp.eos);
    }
    if (item.input.empty()) throw DataError(fmt::format("{}: the input holds no tokens", where()));
    if (!j.contains("answers")) throw DataError(fmt::format("{}: answers: missing (a list of accepted answers)", where()));
    const nlohmann::json& a = j["answers"];
    if (a.is_string()) {
      item.answers.push_back(a.get<std::string>());
    } else if (a.is_array()) {
      for (const auto& v : a) {
        if (!v.is_string()) throw DataError(fmt::format("{}: answers: {} is not a string", where(), v.dump()));
        item.answers.push_back(v.get<std::string>());
      }
    } else {
      throw DataError(fmt::format("{}: answers: expected a string or a list of strings", where()));
    }
    out.push_back(std::move(item));
  }
  if (out.empty()) throw DataError(fmt::format("{}: no generation items", path.string()));
  return out;
}

void write_generation_predictions(const std::filesystem::path& path, const std::vector<GenerationItem>& items,
                                  const GenerationReport& report) {
  std::string text;
  for (std::size_t i = 0; i < report.predictions.size(); ++i) {
    const GenerationPrediction& p = report.predictions[i];
    nlohmann::json j{{"ids", p.ids},
                     {"text", p.text},
                     {"answers", i < items.size() ? items[i].answers : std::vector<std::string>{}},
                     {"exact_match", p.exact_match},
                     {"f1", p.f1},
                     {"exact_string_match", p.exact_string_match}};
    text += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, text);
}

nlohmann::json scores_json(const GenerationScores& s) {
  return {{"exact_match", s.exact_match}, {"f1", s.f1}, {"exact_string_match", s.exact_string_match}, {"total", s.total}};
}

}  // namespace bignlp::eval
