#include "bignlp/eval/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace bignlp::eval {
namespace fs = std::filesystem;

namespace {

const char* const kDownloadHint = "fetch the task files with `bignlp-evaluate --download --tasks ... --data-dir DIR` "
                                  "(docs/evaluation.md, \"Task files\")";

// Python's str.strip() for the whitespace the task files hold (ASCII).
std::string py_strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// Python's str.replace(old, new) (non-overlapping, left to right).
std::string replace(std::string_view s, std::string_view from, std::string_view to) { return replace_all(s, from, to); }

// Code points of UTF-8 text (Python's len of a str).
std::int64_t code_points(std::string_view s) {
  std::int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Python's str.capitalize() for ASCII letters (other characters are kept).
std::string capitalize(std::string_view s) {
  std::string out(s);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(out[i]);
    if (c >= 0x80) continue;
    out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return out;
}

struct JsonLine {
  nlohmann::json value;
  int line = 0;
};

std::vector<JsonLine> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("cannot read '{}': {}", path.string(), kDownloadHint));
  std::vector<JsonLine> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (py_strip(line).empty()) continue;
    try {
      out.push_back({nlohmann::json::parse(line), lineno});
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}:{}: not a JSON object: {}", path.string(), lineno, e.what()));
    }
  }
  return out;
}

template <typename T>
T field(const JsonLine& j, const fs::path& path, const char* key) {
  if (!j.value.is_object() || !j.value.contains(key))
    throw DataError(fmt::format("{}:{}: the record has no \"{}\"", path.string(), j.line, key));
  try {
    return j.value.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}:{}: \"{}\" has the wrong type: {}", path.string(), j.line, key, e.what()));
  }
}

fs::path require_file(const fs::path& data_dir, const std::string& rel) {
  const fs::path p = data_dir / rel;
  if (!fs::exists(p))
    throw IoError(fmt::format("task file '{}' does not exist (--data-dir {} must hold the tasks' files under their "
                              "published names); {}",
                              p.string(), data_dir.string(), kDownloadHint));
  return p;
}

void take_limit(std::vector<TaskDoc>& docs, std::optional<std::int64_t> limit) {
  if (limit && static_cast<std::int64_t>(docs.size()) > *limit) docs.resize(static_cast<std::size_t>(*limit));
}

// Multiple-choice doc: one request per choice, " " + choice after ctx.
TaskDoc choice_doc(const std::string& ctx, const std::vector<std::string>& choices, int gold) {
  TaskDoc d;
  d.gold = gold;
  for (const auto& c : choices) {
    d.requests.push_back({ctx, " " + c});
    d.choice_chars.push_back(code_points(c));
  }
  return d;
}

Task load_lambada(const fs::path& dir, TaskStyle style) {
  const fs::path path = require_file(dir, "lambada_test.jsonl");
  Task t{.name = "lambada", .version = 0, .kind = TaskKind::kLambada};
  for (const auto& j : read_jsonl(path)) {
    std::string text = field<std::string>(j, path, "text");
    if (style == TaskStyle::kLauncher) {
      for (const char* q : {"\u201c", "\u201d"}) text = replace(text, q, "\"");
      for (const char* q : {"\u2018", "\u2019"}) text = replace(text, q, "'");
    }
    const auto space = text.rfind(' ');
    if (space == std::string::npos)
      throw DataError(fmt::format("{}:{}: \"text\" has no space before its last word", path.string(), j.line));
    const std::string prefix = text.substr(0, space), word = text.substr(space + 1);
    TaskDoc d;
    d.requests.push_back({style == TaskStyle::kLauncher ? "\n" + py_strip(prefix) : prefix, " " + word});
    t.docs.push_back(std::move(d));
  }
  return t;
}

Task load_boolq(const fs::path& dir, TaskStyle style) {
  const fs::path path = require_file(dir, "BoolQ/val.jsonl");
  Task t{.name = "boolq", .version = 1, .kind = TaskKind::kBoolq};
  for (const auto& j : read_jsonl(path)) {
    const auto passage = field<std::string>(j, path, "passage");
    const auto question = field<std::string>(j, path, "question");
    const bool label = field<bool>(j, path, "label");
    const std::string ctx = fmt::format("{}\nQuestion: {}{}\nAnswer:", passage, question,
                                        style == TaskStyle::kLmEval ? "?" : "");
    TaskDoc d = choice_doc(ctx, {"yes", "no"}, label ? 1 : 0);
    t.docs.push_back(std::move(d));
  }
  return t;
}

Task load_piqa(const fs::path& dir, TaskStyle style) {
  const fs::path path = require_file(dir, "piqa/valid.jsonl");
  const fs::path labels_path = require_file(dir, "piqa/valid-labels.lst");
  Task t{.name = "piqa", .version = 0, .kind = TaskKind::kMultipleChoice, .reports_acc_norm = true};
  const auto rows = read_jsonl(path);
  std::vector<int> labels;
  {
    std::ifstream in(labels_path);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      const std::string s = py_strip(line);
      if (s.empty()) continue;
      if (s != "0" && s != "1")
        throw DataError(fmt::format("{}:{}: a label is 0 or 1, got '{}'", labels_path.string(), lineno, s));
      labels.push_back(s == "1");
    }
  }
  if (labels.size() != rows.size())
    throw DataError(fmt::format("{} has {} labels for the {} records of {}", labels_path.string(), labels.size(),
                                rows.size(), path.string()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto goal = field<std::string>(rows[i], path, "goal");
    const std::string ctx = style == TaskStyle::kLmEval ? fmt::format("Question: {}\nAnswer:", goal) : goal;
    t.docs.push_back(
        choice_doc(ctx, {field<std::string>(rows[i], path, "sol1"), field<std::string>(rows[i], path, "sol2")}, labels[i]));
  }
  return t;
}

Task load_hellaswag(const fs::path& dir) {
  const fs::path path = require_file(dir, "hellaswag_val.jsonl");
  Task t{.name = "hellaswag", .version = 0, .kind = TaskKind::kMultipleChoice, .reports_acc_norm = true};
  for (const auto& j : read_jsonl(path)) {
    const std::string ctx = field<std::string>(j, path, "ctx_a") + " " + capitalize(field<std::string>(j, path, "ctx_b"));
    const std::string query = hellaswag_preprocess(field<std::string>(j, path, "activity_label") + ": " + ctx);
    std::vector<std::string> choices;
    for (const auto& e : field<std::vector<std::string>>(j, path, "endings")) choices.push_back(hellaswag_preprocess(e));
    int label = 0;
    const nlohmann::json& l = j.value.contains("label") ? j.value.at("label") : nlohmann::json();
    if (l.is_number_integer()) {
      label = l.get<int>();
    } else if (l.is_string()) {
      try {
        label = std::stoi(l.get<std::string>());
      } catch (const std::exception&) {
        throw DataError(fmt::format("{}:{}: \"label\" is not a number", path.string(), j.line));
      }
    } else {
      throw DataError(fmt::format("{}:{}: the record has no integer \"label\"", path.string(), j.line));
    }
    if (label < 0 || label >= static_cast<int>(choices.size()))
      throw DataError(fmt::format("{}:{}: \"label\" {} is not one of the {} endings", path.string(), j.line, label,
                                  choices.size()));
    t.docs.push_back(choice_doc(query, choices, label));
  }
  return t;
}

Task load_winogrande(const fs::path& dir) {
  const fs::path path = require_file(dir, "winogrande_1.1/dev.jsonl");
  Task t{.name = "winogrande", .version = 0, .kind = TaskKind::kWinogrande};
  for (const auto& j : read_jsonl(path)) {
    const auto sentence = field<std::string>(j, path, "sentence");
    const auto answer = field<std::string>(j, path, "answer");
    if (answer != "1" && answer != "2")
      throw DataError(fmt::format("{}:{}: \"answer\" is \"1\" or \"2\", got \"{}\"", path.string(), j.line, answer));
    const auto k = sentence.find('_');
    if (k == std::string::npos)
      throw DataError(fmt::format("{}:{}: \"sentence\" has no '_' blank", path.string(), j.line));
    const std::string cont = " " + py_strip(sentence.substr(k + 1));
    TaskDoc d;
    d.gold = answer == "1" ? 0 : 1;
    for (const char* key : {"option1", "option2"})
      d.requests.push_back({sentence.substr(0, k) + field<std::string>(j, path, key), cont});
    t.docs.push_back(std::move(d));
  }
  return t;
}

Task load_race(const fs::path& dir, TaskStyle style) {
  const fs::path root = require_file(dir, "RACE/test/high");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw IoError(fmt::format("{} holds no article files; {}", root.string(), kDownloadHint));
  struct Problem {
    std::string question;
    std::vector<std::string> options;
    int answer;
  };
  std::vector<std::string> articles;
  std::map<std::string, std::vector<Problem>> problems;
  for (const auto& f : files) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(f));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: not a RACE article (JSON): {}", f.string(), e.what()));
    }
    try {
      const auto article = j.at("article").get<std::string>();
      const auto questions = j.at("questions").get<std::vector<std::string>>();
      const auto options = j.at("options").get<std::vector<std::vector<std::string>>>();
      const auto answers = j.at("answers").get<std::vector<std::string>>();
      if (questions.size() != options.size() || questions.size() != answers.size() || questions.empty())
        throw DataError(fmt::format("{}: \"questions\", \"options\" and \"answers\" differ in length", f.string()));
      if (!problems.count(article)) articles.push_back(article);
      auto& list = problems[article];
      for (std::size_t q = 0; q < questions.size(); ++q) {
        const std::string& a = answers[q];
        if (a.size() != 1 || a[0] < 'A' || a[0] >= static_cast<char>('A' + options[q].size()))
          throw DataError(fmt::format("{}: answer {} (\"{}\") names no option", f.string(), q, a));
        list.push_back({questions[q], options[q], a[0] - 'A'});
      }
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: RACE article needs \"article\", \"questions\", \"options\", \"answers\": {}",
                                  f.string(), e.what()));
    }
  }
  Task t{.name = "race", .version = 1, .kind = TaskKind::kRace, .reports_acc_norm = style == TaskStyle::kLauncher};
  for (const auto& article : articles) {
    const auto& ps = problems.at(article);
    std::string ctx = "Article: " + article + "\n\n";
    for (std::size_t i = 0; i + 1 < ps.size(); ++i)
      ctx += "Question: " + ps[i].question + "\nAnswer: " + ps[i].options[static_cast<std::size_t>(ps[i].answer)] + "\n";
    ctx += "Question: " + ps.back().question + "\nAnswer:";
    TaskDoc d = choice_doc(ctx, ps.back().options, ps.back().answer);
    if (style == TaskStyle::kLauncher)
      for (const auto& o : ps.back().options) d.requests.push_back({"Answer:", " " + o});
    t.docs.push_back(std::move(d));
  }
  return t;
}

Task load_wikitext(const std::string& name, const fs::path& dir) {
  const fs::path path = require_file(dir, task_files(name).front());
  Task t{.name = name, .version = 1, .kind = TaskKind::kWikitext};
  for (const auto& article : wikitext_articles(read_file(path))) {
    TaskDoc d;
    d.rolling_text = wikitext_detokenize(article);
    d.words = count_words(article);
    d.bytes = static_cast<std::int64_t>(article.size());
    t.docs.push_back(std::move(d));
  }
  return t;
}

// Python's random.Random: MT19937 seeded by init_by_array, random() from two draws.
class PyRandom {
 public:
  explicit PyRandom(std::uint32_t seed) {
    constexpr int n = 624;
    std::uint32_t mt[n];
    mt[0] = 19650218u;
    for (int i = 1; i < n; ++i) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
    const std::uint32_t key[1] = {seed};
    int i = 1, j = 0;
    for (int k = n; k > 0; --k) {
      mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<std::uint32_t>(j);
      ++i;
      ++j;
      if (i >= n) {
        mt[0] = mt[n - 1];
        i = 1;
      }
      if (j >= 1) j = 0;
    }
    for (int k = n - 1; k > 0; --k) {
      mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - static_cast<std::uint32_t>(i);
      ++i;
      if (i >= n) {
        mt[0] = mt[n - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000u;
    std::stringstream state;
    for (int k = 0; k < n; ++k) state << mt[k] << ' ';
    state >> engine_;  // the engine starts a fresh block, as CPython's mti = N
  }
  double random() {
    const std::uint32_t a = static_cast<std::uint32_t>(engine_()) >> 5, b = static_cast<std::uint32_t>(engine_()) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(std::floor(random() * static_cast<double>(n))); }

 private:
  std::mt19937 engine_;
};

double mean(const std::vector<double>& x) {
  double s = 0.0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

std::optional<double> sample_stddev(const std::vector<double>& x) {
  if (x.size() < 2) return std::nullopt;
  const double mu = mean(x);
  double s = 0.0;
  for (double v : x) s += (v - mu) * (v - mu);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

std::optional<double> mean_stderr(const std::vector<double>& x) {
  auto sd = sample_stddev(x);
  if (!sd) return std::nullopt;
  return *sd / std::sqrt(static_cast<double>(x.size()));
}

// np.argmax: the first index of the maximum.
std::size_t argmax(const std::vector<double>& v) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

void add_mean(Metrics& m, const std::string& name, const std::vector<double>& items) {
  m.emplace_back(name, mean(items));
  m.emplace_back(name + "_stderr", mean_stderr(items));
}

}  // namespace

TaskStyle parse_task_style(std::string_view text, std::string_view what) {
  if (text == "launcher") return TaskStyle::kLauncher;
  if (text == "lm-eval" || text == "lm_eval") return TaskStyle::kLmEval;
  throw ConfigError(fmt::format("{}: unknown task style '{}' (launcher: the NeMo launcher's lm-eval fork, the "
                                "default; lm-eval: upstream lm-evaluation-harness v0.3.0)",
                                what, text));
}

std::string_view task_style_name(TaskStyle style) { return style == TaskStyle::kLauncher ? "launcher" : "lm-eval"; }

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names{"lambada", "boolq",      "race",      "piqa",
                                              "hellaswag", "winogrande", "wikitext2", "wikitext103"};
  return names;
}

std::vector<std::string> parse_task_list(std::string_view text, std::string_view what) {
  std::string s(text);
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == '[' || c == ']' || c == ' ' || c == '\''; }),
          s.end());
  std::vector<std::string> out;
  for (const auto& name : split(s, ',')) {
    if (name.empty()) continue;
    if (name == "all_tasks") {
      for (const auto& n : task_names())
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      continue;
    }
    if (std::find(task_names().begin(), task_names().end(), name) == task_names().end()) {
      const auto close = closest_matches(name, task_names());
      throw ConfigError(fmt::format("{}: unknown task '{}'{} (tasks: {}, or all_tasks; generation tasks such as SQuAD "
                                    "are not part of this suite)",
                                    what, name, close.empty() ? "" : fmt::format(" (did you mean '{}'?)", close.front()),
                                    join(task_names(), ", ")));
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  if (out.empty()) throw ConfigError(fmt::format("{}: no task named (tasks: {}, or all_tasks)", what, join(task_names(), ", ")));
  return out;
}

std::vector<std::string> task_files(const std::string& task) {
  if (task == "lambada") return {"lambada_test.jsonl"};
  if (task == "boolq") return {"BoolQ/val.jsonl"};
  if (task == "race") return {"RACE/test/high"};
  if (task == "piqa") return {"piqa/valid.jsonl", "piqa/valid-labels.lst"};
  if (task == "hellaswag") return {"hellaswag_val.jsonl"};
  if (task == "winogrande") return {"winogrande_1.1/dev.jsonl"};
  if (task == "wikitext2") return {"wikitext-2-raw/wiki.test.raw"};
  if (task == "wikitext103") return {"wikitext-103-raw/wiki.test.raw"};
  throw ConfigError(fmt::format("unknown task '{}'", task));
}

Task load_task(const std::string& task, const fs::path& data_dir, TaskStyle style, std::optional<std::int64_t> limit) {
  Task t;
  if (task == "lambada") t = load_lambada(data_dir, style);
  else if (task == "boolq") t = load_boolq(data_dir, style);
  else if (task == "race") t = load_race(data_dir, style);
  else if (task == "piqa") t = load_piqa(data_dir, style);
  else if (task == "hellaswag") t = load_hellaswag(data_dir);
  else if (task == "winogrande") t = load_winogrande(data_dir);
  else if (task == "wikitext2" || task == "wikitext103") t = load_wikitext(task, data_dir);
  else parse_task_list(task);  // throws the error listing the tasks
  take_limit(t.docs, limit);
  return t;
}

Metrics compute_metrics(const Task& task, const std::vector<std::vector<RequestOutcome>>& outcomes, TaskStyle style,
                        int bootstrap_iters) {
  BIGNLP_CHECK(outcomes.size() == task.docs.size(), "{} outcomes for {} documents", outcomes.size(), task.docs.size());
  Metrics m;
  if (task.docs.empty()) return m;
  if (task.kind == TaskKind::kWikitext) {
    double ll = 0.0, words = 0.0, bytes = 0.0;
    for (std::size_t d = 0; d < outcomes.size(); ++d) {
      ll += outcomes[d].at(0).logprob;
      words += static_cast<double>(task.docs[d].words);
      bytes += static_cast<double>(task.docs[d].bytes);
    }
    m.emplace_back("word_perplexity", std::exp(-ll / words));
    m.emplace_back("byte_perplexity", std::exp(-ll / bytes));
    m.emplace_back("bits_per_byte", -ll / bytes / (style == TaskStyle::kLmEval ? std::log(2.0) : 1.0));
    return m;
  }
  if (task.kind == TaskKind::kLambada) {
    std::vector<double> ll, acc;
    for (const auto& o : outcomes) {
      ll.push_back(o.at(0).logprob);
      acc.push_back(o.at(0).is_greedy ? 1.0 : 0.0);
    }
    m.emplace_back("ppl", std::exp(-mean(ll)));
    m.emplace_back("ppl_stderr", bootstrap_perplexity_stderr(ll, bootstrap_iters));
    add_mean(m, "acc", acc);
    return m;
  }
  std::vector<double> acc, acc_norm;
  for (std::size_t d = 0; d < outcomes.size(); ++d) {
    const TaskDoc& doc = task.docs[d];
    const std::size_t n = doc.choice_chars.size();
    std::vector<double> ll(n), norm(n);
    for (std::size_t i = 0; i < n; ++i) ll[i] = outcomes[d].at(i).logprob;
    if (task.kind == TaskKind::kBoolq) {
      acc.push_back(((ll[0] > ll[1]) == (doc.gold == 1)) ? 1.0 : 0.0);
      continue;
    }
    acc.push_back(argmax(ll) == static_cast<std::size_t>(doc.gold) ? 1.0 : 0.0);
    if (!task.reports_acc_norm) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (task.kind == TaskKind::kRace) {
        norm[i] = ll[i] - outcomes[d].at(n + i).logprob;  // launcher: minus ll(" opt" | "Answer:")
      } else {
        const double len = style == TaskStyle::kLauncher ? static_cast<double>(outcomes[d].at(i).tokens)
                                                         : static_cast<double>(doc.choice_chars[i]);
        norm[i] = ll[i] / len;
      }
    }
    acc_norm.push_back(argmax(norm) == static_cast<std::size_t>(doc.gold) ? 1.0 : 0.0);
  }
  add_mean(m, "acc", acc);
  if (task.reports_acc_norm) add_mean(m, "acc_norm", acc_norm);
  return m;
}

std::string wikitext_detokenize(std::string s) {
  s = replace(s, "s '", "s'");
  s = std::regex_replace(s, std::regex("/' [0-9]/"), "/'[0-9]/");
  s = replace(s, " @-@ ", "-");
  s = replace(s, " @,@ ", ",");
  s = replace(s, " @.@ ", ".");
  for (const char* p : {":", ";", ".", "!", "?", ","}) s = replace(s, fmt::format(" {} ", p), fmt::format("{} ", p));
  s = std::regex_replace(s, std::regex(R"(\(\s*([^\)]*?)\s*\))"), "($1)");
  s = std::regex_replace(s, std::regex(R"(\[\s*([^\]]*?)\s*\])"), "[$1]");
  s = std::regex_replace(s, std::regex(R"(\{\s*([^}]*?)\s*\})"), "{$1}");
  s = std::regex_replace(s, std::regex(R"("\s*([^"]*?)\s*")"), "\"$1\"");
  s = std::regex_replace(s, std::regex(R"('\s*([^']*?)\s*')"), "'$1'");
  s = replace(s, "= = = =", "====");
  s = replace(s, "= = =", "===");
  s = replace(s, "= =", "==");
  s = replace(s, " \u00b0 ", "\u00b0");
  s = replace(s, " \n", "\n");
  s = replace(s, "\n ", "\n");
  s = replace(s, " N ", " 1 ");
  s = replace(s, " 's", "'s");
  return s;
}

std::vector<std::string> wikitext_articles(const std::string& raw) {
  std::vector<std::string> out, lines;
  auto flush = [&](bool always) {
    const std::string page = join(lines, "\n");
    if (always || !py_strip(page).empty()) out.push_back(page);
    lines.clear();
  };
  for (const auto& line : split(raw, '\n')) {
    const std::string r = py_strip(replace(replace(line, "= = =", "==="), "= =", "=="));
    if (starts_with(r, "= ") && ends_with(r, " =")) flush(false);
    lines.push_back(line);
  }
  flush(true);
  return out;
}

std::string hellaswag_preprocess(std::string_view text) {
  std::string s = py_strip(text);
  s = replace(s, " [title]", ". ");
  s = std::regex_replace(s, std::regex(R"(\[.*?\])"), "");
  s = replace(s, "  ", " ");
  return s;
}

std::int64_t count_words(std::string_view text) {
  // Python's \s over str: ASCII whitespace, \x1c-\x1f, and the Unicode spaces (UTF-8 encoded).
  auto space_len = [&](std::size_t i) -> std::size_t {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    auto at = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
    if (c == 0xC2 && (at(1) == 0x85 || at(1) == 0xA0)) return 2;
    if (c == 0xE1 && at(1) == 0x9A && at(2) == 0x80) return 3;
    if (c == 0xE2 && at(1) == 0x80 && ((at(2) >= 0x80 && at(2) <= 0x8A) || at(2) == 0xA8 || at(2) == 0xA9 || at(2) == 0xAF))
      return 3;
    if (c == 0xE2 && at(1) == 0x81 && at(2) == 0x9F) return 3;
    if (c == 0xE3 && at(1) == 0x80 && at(2) == 0x80) return 3;
    return 0;
  };
  std::int64_t n = 1;
  bool in_space = false;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t l = space_len(i);
    if (l > 0) {
      if (!in_space) ++n;
      in_space = true;
      i += l;
    } else {
      in_space = false;
      ++i;
    }
  }
  return n;
}

std::vector<std::int64_t> python_random_choices(std::uint32_t seed, std::int64_t n, std::int64_t k) {
  PyRandom r(seed);
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < k; ++i) out.push_back(r.below(n));
  return out;
}

double bootstrap_perplexity_stderr(const std::vector<double>& items, int iters) {
  // lm-eval: chunks of min(1000, iters) resamples; chunk i draws from random.Random(i).
  const int chunk = std::min(1000, iters);
  const std::int64_t n = static_cast<std::int64_t>(items.size());
  std::vector<double> res;
  std::vector<double> sample(static_cast<std::size_t>(n));
  for (int c = 0; c < iters / chunk; ++c) {
    PyRandom r(static_cast<std::uint32_t>(c));
    for (int it = 0; it < chunk; ++it) {
      for (std::int64_t i = 0; i < n; ++i) sample[static_cast<std::size_t>(i)] = items[static_cast<std::size_t>(r.below(n))];
      res.push_back(std::exp(-mean(sample)));
    }
  }
  return sample_stddev(res).value_or(std::nan(""));
}

}  // namespace bignlp::eval
