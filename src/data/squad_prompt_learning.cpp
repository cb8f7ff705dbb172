#include "bignlp/data/squad_prompt_learning.h"

#include <fmt/format.h>

#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/unicode.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

void append_u_escape(std::string& out, unsigned v) { out += fmt::format("\\u{:04x}", v); }

struct Question {
  std::string context, question;
  std::vector<std::string> answers;
};

const nlohmann::json& member(const nlohmann::json& obj, const char* key, const std::string& path, const fs::path& file,
                             nlohmann::json::value_t type) {
  if (!obj.is_object()) throw DataError(fmt::format("{}: {}: expected an object", file.string(), path));
  const auto it = obj.find(key);
  if (it == obj.end()) throw DataError(fmt::format("{}: {}.{}: missing", file.string(), path, key));
  if (it->type() != type)
    throw DataError(fmt::format("{}: {}.{}: expected {}, got {}", file.string(), path, key,
                                type == nlohmann::json::value_t::string ? "a string" : "a list", it->type_name()));
  return *it;
}

/// Questions of a SQuAD-format file in walk order (questions without answers counted in skipped).
std::vector<Question> read_squad(const fs::path& file, std::int64_t& skipped) {
  const std::string text = read_file(file);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(fmt::format("{}: not valid JSON (byte {}): {}", file.string(), e.byte, e.what()));
  }
  using vt = nlohmann::json::value_t;
  std::vector<Question> out;
  const nlohmann::json& data = member(doc, "data", "", file, vt::array);
  for (std::size_t a = 0; a < data.size(); ++a) {
    const std::string ap = fmt::format("data[{}]", a);
    const nlohmann::json& paragraphs = member(data[a], "paragraphs", ap, file, vt::array);
    for (std::size_t p = 0; p < paragraphs.size(); ++p) {
      const std::string pp = fmt::format("{}.paragraphs[{}]", ap, p);
      const std::string& context = member(paragraphs[p], "context", pp, file, vt::string).get_ref<const std::string&>();
      const nlohmann::json& qas = member(paragraphs[p], "qas", pp, file, vt::array);
      for (std::size_t q = 0; q < qas.size(); ++q) {
        const std::string qp = fmt::format("{}.qas[{}]", pp, q);
        Question item;
        item.context = context;
        item.question = member(qas[q], "question", qp, file, vt::string).get<std::string>();
        const nlohmann::json& answers = member(qas[q], "answers", qp, file, vt::array);
        for (std::size_t k = 0; k < answers.size(); ++k)
          item.answers.push_back(
              member(answers[k], "text", fmt::format("{}.answers[{}]", qp, k), file, vt::string).get<std::string>());
        if (item.answers.empty()) {
          ++skipped;
          continue;
        }
        out.push_back(std::move(item));
      }
    }
  }
  return out;
}

enum class AnswerForm { kFirst, kAll, kNone };

std::string render(const std::vector<Question>& questions, const std::string& taskname, AnswerForm form) {
  std::string out;
  const std::string task = python_json_string(taskname);
  for (const Question& q : questions) {
    out += "{\"taskname\": " + task + ", \"context\": " + python_json_string(q.context) +
           ", \"question\": " + python_json_string(q.question);
    if (form == AnswerForm::kFirst) {
      out += ", \"answer\": " + python_json_string(q.answers.front());
    } else if (form == AnswerForm::kAll) {
      out += ", \"answer\": [";
      for (std::size_t i = 0; i < q.answers.size(); ++i) {
        if (i > 0) out += ", ";
        out += python_json_string(q.answers[i]);
      }
      out += "]";
    }
    out += "}\n";
  }
  return out;
}

}  // namespace

std::string python_json_string(std::string_view utf8) {
  std::string out = "\"";
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    const Utf8Char ch = decode_utf8(utf8, pos);
    if (!ch.valid) throw DataError(fmt::format("invalid UTF-8 at byte {} of a string", pos));
    pos += ch.length;
    const char32_t cp = ch.cp;
    switch (cp) {
      case U'"': out += "\\\""; continue;
      case U'\\': out += "\\\\"; continue;
      case U'\n': out += "\\n"; continue;
      case U'\r': out += "\\r"; continue;
      case U'\t': out += "\\t"; continue;
      case U'\b': out += "\\b"; continue;
      case U'\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      append_u_escape(out, static_cast<unsigned>(cp));
    } else {
      const unsigned v = static_cast<unsigned>(cp) - 0x10000;
      append_u_escape(out, 0xd800 + (v >> 10));
      append_u_escape(out, 0xdc00 + (v & 0x3ff));
    }
  }
  out += '"';
  return out;
}

SquadPromptCounts convert_squad_for_prompt_learning(const fs::path& train_json, const fs::path& dev_json,
                                                    const fs::path& output_dir, const std::string& base_name,
                                                    const std::string& taskname) {
  SquadPromptCounts counts;
  for (const fs::path& f : {train_json, dev_json})
    if (!fs::is_regular_file(f))
      throw IoError(fmt::format("{}: no such SQuAD file (download SQuAD v1.1 train-v1.1.json and dev-v1.1.json there)",
                                f.string()));
  const std::vector<Question> train = read_squad(train_json, counts.skipped);
  const std::vector<Question> dev = read_squad(dev_json, counts.skipped);
  counts.train = static_cast<std::int64_t>(train.size());
  counts.dev = static_cast<std::int64_t>(dev.size());
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create the directory: {}", output_dir.string(), ec.message()));
  const auto path = [&](const char* suffix) { return output_dir / (base_name + suffix); };
  write_file_atomic(path("_train.jsonl"), render(train, taskname, AnswerForm::kFirst));
  write_file_atomic(path("_val.jsonl"), render(dev, taskname, AnswerForm::kFirst));
  write_file_atomic(path("_test_ground_truth.jsonl"), render(dev, taskname, AnswerForm::kAll));
  write_file_atomic(path("_test.jsonl"), render(dev, taskname, AnswerForm::kNone));
  return counts;
}

}  // namespace bignlp::data
