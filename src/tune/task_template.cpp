#include "bignlp/tune/task_template.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <numeric>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::tune {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + what.size())) ++n;
  return n;
}

/// The field's text with a leading space when the template has a space right before `{field}`.
std::string with_leading_space(const TaskTemplate& t, const std::string& field, const std::string& text) {
  const std::size_t pos = t.prompt_template.find("{" + field + "}");
  if (pos != std::string::npos && pos > 0 && t.prompt_template[pos - 1] == ' ') return " " + text;
  return text;
}

std::string doc_string(const nlohmann::json& doc, const std::string& key, const std::string& where) {
  const auto& v = doc.at(key);
  if (!v.is_string()) throw DataError(fmt::format("{}: \"{}\" must be a string, got {}", where, key, v.type_name()));
  return v.get<std::string>();
}

}  // namespace

std::vector<std::string> template_fields(const std::string& prompt_template) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = prompt_template.find('{', pos)) != std::string::npos) {
    const std::size_t end = prompt_template.find('}', pos + 1);
    if (end == std::string::npos) break;
    out.push_back(prompt_template.substr(pos + 1, end - pos - 1));
    pos = end + 1;
  }
  return out;
}

void validate_template(const TaskTemplate& t, std::int64_t max_seq_length, bool for_train, const std::string& where) {
  if (t.total_virtual_tokens <= 0 || t.total_virtual_tokens >= max_seq_length)
    throw ConfigError(fmt::format("{}.total_virtual_tokens: {} must be above 0 and below the sequence length {}", where,
                                  t.total_virtual_tokens, max_seq_length));
  const std::int64_t sum = std::accumulate(t.virtual_token_splits.begin(), t.virtual_token_splits.end(), std::int64_t{0});
  if (sum != t.total_virtual_tokens)
    throw ConfigError(fmt::format("{}.virtual_token_splits: they sum to {}, but total_virtual_tokens is {}", where, sum,
                                  t.total_virtual_tokens));
  for (std::int64_t s : t.virtual_token_splits)
    if (s <= 0) throw ConfigError(fmt::format("{}.virtual_token_splits: every split must be positive", where));
  const std::size_t markers = count_of(t.prompt_template, "<|VIRTUAL_PROMPT_");
  if (markers != t.virtual_token_splits.size())
    throw ConfigError(fmt::format("{}.prompt_template: {} <|VIRTUAL_PROMPT_i|> markers, but virtual_token_splits has {} "
                                  "entries (one marker per split)",
                                  where, markers, t.virtual_token_splits.size()));
  for (std::size_t i = 0; i < markers; ++i)
    if (t.prompt_template.find(fmt::format("<|VIRTUAL_PROMPT_{}|>", i)) == std::string::npos)
      throw ConfigError(fmt::format("{}.prompt_template: no <|VIRTUAL_PROMPT_{}|> marker", where, i));
  if (t.answer_only_loss && for_train) {
    if (t.answer_field.empty())
      throw ConfigError(fmt::format("{}.answer_field: answer_only_loss needs the answer field", where));
    if (t.answer_field == t.truncate_field)
      throw ConfigError(fmt::format("{}.truncate_field: must differ from answer_field '{}'", where, t.answer_field));
    const std::string tail = "{" + t.answer_field + "}";
    if (!t.prompt_template.ends_with(tail))
      throw ConfigError(fmt::format("{}.prompt_template: with answer_only_loss the template must end with {}", where, tail));
  }
}

PromptTokenizer::PromptTokenizer(std::shared_ptr<const data::Tokenizer> base, std::int64_t max_virtual_tokens)
    : base_(std::move(base)), start_(static_cast<std::int32_t>(base_->vocab_size())), n_(max_virtual_tokens) {}

std::string PromptTokenizer::pseudo_token(std::int64_t k) { return fmt::format("<prompt_{}>", k); }

std::int32_t PromptTokenizer::eos() const {
  const auto& s = base_->special_tokens();
  if (s.eos) return *s.eos;
  if (s.eod) return *s.eod;
  throw ConfigError(fmt::format("the {} tokenizer has no end-of-sequence token (add_eos)", base_->type_name()));
}

std::int32_t PromptTokenizer::pad() const {
  const auto& s = base_->special_tokens();
  if (s.pad) return *s.pad;
  if (s.unk) return *s.unk;
  return eos();
}

std::vector<std::int32_t> PromptTokenizer::encode(const std::string& text) const {
  // Split on the earliest pseudo token; strip whitespace next to it; encode the text between.
  std::vector<std::string> pieces;
  std::vector<std::int32_t> specials;  // specials[i] follows pieces[i]
  std::size_t pos = 0;
  std::string rest = text;
  while (true) {
    std::size_t best = std::string::npos;
    std::int64_t best_k = -1;
    std::size_t best_len = 0;
    for (std::size_t p = rest.find("<prompt_"); p != std::string::npos; p = rest.find("<prompt_", p + 1)) {
      const std::size_t close = rest.find('>', p);
      if (close == std::string::npos) break;
      const std::string digits = rest.substr(p + 8, close - p - 8);
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          digits.size() > 9 || (digits.size() > 1 && digits[0] == '0'))
        continue;
      const std::int64_t k = std::stoll(digits);
      if (k >= n_) continue;
      best = p;
      best_k = k;
      best_len = close - p + 1;
      break;
    }
    if (best == std::string::npos) {
      pieces.push_back(rest);
      break;
    }
    pieces.push_back(rest.substr(0, best));
    specials.push_back(static_cast<std::int32_t>(start_ + best_k));
    rest = rest.substr(best + best_len);
  }
  (void)pos;
  std::vector<std::int32_t> out;
  auto encoder = base_->make_encoder();
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    std::string piece = pieces[i];
    // Whitespace next to a special token is stripped (right of the piece before it, left of the one after).
    if (i < specials.size())
      while (!piece.empty() && is_space(piece.back())) piece.pop_back();
    if (i > 0) {
      std::size_t b = 0;
      while (b < piece.size() && is_space(piece[b])) ++b;
      piece = piece.substr(b);
    }
    if (!piece.empty()) encoder->encode(piece, out);
    if (i < specials.size()) out.push_back(specials[i]);
  }
  return out;
}

std::string fill_template(const TaskTemplate& t, const nlohmann::json& doc) {
  std::string text = t.prompt_template;
  for (const std::string& field : t.fields) {
    if (doc.contains(field) && doc.at(field).is_string()) {
      replace_all(text, "{" + field + "}", doc.at(field).get<std::string>());
    } else {
      replace_all(text, "{" + field + "}", "");
      text = strip(text);
    }
  }
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < t.virtual_token_splits.size(); ++i) {
    std::string pseudo;
    for (std::int64_t k = offset; k < offset + t.virtual_token_splits[i]; ++k) pseudo += PromptTokenizer::pseudo_token(k);
    replace_all(text, fmt::format("<|VIRTUAL_PROMPT_{}|>", i), pseudo);
    offset += t.virtual_token_splits[i];
  }
  return text;
}

std::optional<PromptExample> build_example(const TaskTemplate& t, const nlohmann::json& doc, const PromptTokenizer& tok,
                                           const PromptDatasetOptions& o, const std::string& where) {
  if (!doc.is_object()) throw DataError(fmt::format("{}: expected a JSON object", where));
  for (const auto& [key, value] : doc.items()) {
    if (key == "taskname") continue;
    if (std::find(t.fields.begin(), t.fields.end(), key) == t.fields.end())
      throw DataError(fmt::format("{}: key \"{}\" is not a field of task '{}''s prompt_template (fields: {})", where, key,
                                  t.taskname, fmt::join(t.fields, ", ")));
    if (!value.is_string())
      throw DataError(fmt::format("{}: \"{}\" must be a string, got {}", where, key, value.type_name()));
  }
  const bool answer_loss = t.answer_only_loss && o.for_train;
  if (answer_loss && !doc.contains(t.answer_field))
    throw DataError(fmt::format("{}: answer_only_loss needs the answer field \"{}\"", where, t.answer_field));
  PromptExample ex;
  ex.task_id = t.task_id;
  ex.ids = tok.encode(fill_template(t, doc));
  if (o.add_bos) {
    const auto bos = tok.base().special_tokens().bos;
    if (!bos) throw ConfigError(fmt::format("add_bos: the {} tokenizer has no BOS token", tok.base().type_name()));
    ex.ids.insert(ex.ids.begin(), *bos);
  }
  if (o.add_eos) ex.ids.push_back(tok.eos());
  const auto len = static_cast<std::int64_t>(ex.ids.size());
  if (len > o.max_seq_length && !t.truncate_field.empty() && doc.contains(t.truncate_field)) {
    const std::int64_t n = len - o.max_seq_length;
    const std::vector<std::int32_t> field =
        tok.encode(with_leading_space(t, t.truncate_field, doc_string(doc, t.truncate_field, where)));
    const auto it = std::search(ex.ids.begin(), ex.ids.end(), field.begin(), field.end());
    if (field.empty() || it == ex.ids.end())
      throw DataError(fmt::format("{}: the tokens of field \"{}\" are not a subsequence of the prompt's tokens (a token "
                                  "boundary differs), so it cannot be truncated to max_seq_length {}",
                                  where, t.truncate_field, o.max_seq_length));
    const std::int64_t keep = static_cast<std::int64_t>(field.size()) - std::min<std::int64_t>(n, field.size());
    const auto at = it - ex.ids.begin();
    ex.ids.erase(ex.ids.begin() + at + keep, ex.ids.begin() + at + static_cast<std::int64_t>(field.size()));
  }
  const auto final_len = static_cast<std::int64_t>(ex.ids.size());
  if (final_len < o.min_seq_length || final_len > o.max_seq_length) return std::nullopt;
  if (answer_loss) {
    const std::vector<std::int32_t> answer =
        tok.encode(with_leading_space(t, t.answer_field, doc_string(doc, t.answer_field, where)));
    ex.answer_start = final_len - (static_cast<std::int64_t>(answer.size()) + (o.add_eos ? 1 : 0));
  }
  return ex;
}

std::vector<PromptExample> load_prompt_examples(const std::vector<std::filesystem::path>& files,
                                                const std::vector<TaskTemplate>& templates, const PromptTokenizer& tok,
                                                const PromptDatasetOptions& o, std::int64_t* skipped) {
  std::vector<PromptExample> out;
  std::int64_t skip = 0;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) throw IoError(fmt::format("{}: cannot open the prompt-learning data file", file.string()));
    std::string line;
    std::int64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (strip(line).empty()) continue;
      const std::string where = fmt::format("{}:{}", file.string(), number);
      nlohmann::json doc;
      try {
        doc = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw DataError(fmt::format("{}: not a JSON object: {}", where, e.what()));
      }
      if (!doc.is_object() || !doc.contains("taskname") || !doc["taskname"].is_string())
        throw DataError(fmt::format("{}: every line needs a string \"taskname\"", where));
      const std::string name = doc["taskname"].get<std::string>();
      const auto t = std::find_if(templates.begin(), templates.end(), [&](const TaskTemplate& x) { return x.taskname == name; });
      if (t == templates.end())
        throw DataError(fmt::format("{}: taskname '{}' has no entry in model.task_templates", where, name));
      if (auto ex = build_example(*t, doc, tok, o, where)) {
        out.push_back(std::move(*ex));
      } else {
        ++skip;
      }
    }
  }
  if (skipped != nullptr) *skipped = skip;
  return out;
}

PromptBatch collate_prompt_batch(const std::vector<const PromptExample*>& rows, const std::vector<TaskTemplate>& templates,
                                 const PromptTokenizer& tok) {
  PromptBatch b;
  b.batch = static_cast<std::int64_t>(rows.size());
  std::int64_t longest = 0;
  for (const PromptExample* r : rows) longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(r->ids.size()));
  BIGNLP_CHECK(longest >= 2, "a prompt-learning batch needs rows of at least 2 tokens");
  b.seq = longest - 1;
  const std::int32_t pad = tok.pad();
  b.tokens.assign(static_cast<std::size_t>(b.batch * b.seq), pad);
  b.labels.assign(b.tokens.size(), pad);
  b.loss_mask.assign(b.tokens.size(), 0.0f);
  for (std::int64_t i = 0; i < b.batch; ++i) {
    const PromptExample& r = *rows[static_cast<std::size_t>(i)];
    const TaskTemplate& t = templates.at(static_cast<std::size_t>(r.task_id));
    b.task_ids.push_back(r.task_id);
    const auto len = static_cast<std::int64_t>(r.ids.size());
    for (std::int64_t p = 0; p < len; ++p) {
      const std::int32_t id = r.ids[static_cast<std::size_t>(p)];
      float mask;
      if (t.answer_only_loss && r.answer_start >= 0) {
        mask = p >= r.answer_start ? 1.0f : 0.0f;
      } else {
        mask = id < tok.pseudo_start() ? 1.0f : 0.0f;
      }
      if (p < b.seq) b.tokens[static_cast<std::size_t>(i * b.seq + p)] = id;
      if (p >= 1) {
        b.labels[static_cast<std::size_t>(i * b.seq + p - 1)] = id;
        b.loss_mask[static_cast<std::size_t>(i * b.seq + p - 1)] = mask;
      }
    }
  }
  return b;
}

}  // namespace bignlp::tune
