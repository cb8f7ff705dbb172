#include "bignlp/data/squad_preparation.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/download.h"

namespace bignlp::data {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSquadBase = "https://rajpurkar.github.io/SQuAD-explorer/dataset/";
constexpr const char* kXquadBase = "https://raw.githubusercontent.com/deepmind/xquad/master/";
constexpr const char* kXquadLanguages[] = {"en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi"};

/// Python's str.replace("\n", "\\n").
std::string escape_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

bool is_url(const std::string& s) { return s.find("://") != std::string::npos; }

/// The mirror's SHA256SUMS ("<hex>  <path>" per line; '*' before the path for binary mode), or empty.
std::map<std::string, std::string> mirror_pins(const std::string& mirror, const fs::path& squad_dir, const Logger& log) {
  std::map<std::string, std::string> pins;
  if (mirror.empty()) return pins;
  std::string text;
  if (is_url(mirror)) {
    const fs::path tmp = squad_dir / ".SHA256SUMS.mirror";
    std::error_code ec;
    fs::remove(tmp, ec);
    DownloadOptions o;
    o.max_attempts = 1;
    try {
      download_file(mirror + "/SHA256SUMS", tmp, o, log);
      text = read_file(tmp);
    } catch (const Error&) {
      log.info("the mirror {} has no SHA256SUMS: its files are not pinned", mirror);
    }
    fs::remove(tmp, ec);
  } else if (fs::exists(fs::path(mirror) / "SHA256SUMS")) {
    text = read_file(fs::path(mirror) / "SHA256SUMS");
  }
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t(trim(line));
    if (t.empty() || t[0] == '#') continue;
    const auto sp = t.find(' ');
    if (sp != 64) throw DataError(fmt::format("{}/SHA256SUMS:{}: expected '<64 hex digits>  <path>'", mirror, lineno));
    std::string path(trim(t.substr(sp)));
    if (!path.empty() && path[0] == '*') path.erase(0, 1);
    pins[path] = to_lower(t.substr(0, 64));
  }
  return pins;
}

/// Fetches one file into dest (download_file for URLs; a copy through a .part file for directories).
void fetch(const std::string& source, const fs::path& dest, const SquadDownloadOptions& options, const Logger& log) {
  if (is_url(source)) {
    DownloadOptions o;
    o.max_attempts = options.max_attempts;
    download_file(source, dest, o, log);
    return;
  }
  if (!fs::exists(source)) throw IoError(fmt::format("'{}' does not exist (SQuAD mirror)", source));
  write_file_atomic(dest, read_file(source));
  log.info("copied {} to '{}'", source, dest.string());
}

/// The string at `key` of a JSON object; DataError naming file and JSON path otherwise.
const std::string& text_at(const nlohmann::json& obj, const char* key, const fs::path& file, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    throw DataError(fmt::format("{}: {}.{} is missing or not a string (not a SQuAD v1.1 file?)", file.string(), where, key));
  return it->get_ref<const std::string&>();
}

const nlohmann::json& array_at(const nlohmann::json& obj, const char* key, const fs::path& file, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_array())
    throw DataError(fmt::format("{}: {}{}{} is missing or not a list (not a SQuAD v1.1 file?)", file.string(), where,
                                where.empty() ? "" : ".", key));
  return *it;
}

}  // namespace

std::vector<SquadFile> squad_files(const std::string& version) {
  std::vector<SquadFile> out;
  if (version == "v1.1") {
    for (const char* f : {"train-v1.1.json", "dev-v1.1.json"})
      out.push_back({std::string(kSquadBase) + f, std::string("v1.1/") + f});
  } else if (version == "xquad") {
    for (const char* lang : kXquadLanguages) {
      const std::string f = fmt::format("xquad.{}.json", lang);
      out.push_back({std::string(kXquadBase) + f, "xquad/" + f});
    }
  } else {
    throw ConfigError(fmt::format("SQuAD version '{}': only v1.1 and xquad are prepared", version));
  }
  return out;
}

void download_squad(const fs::path& squad_dir, const std::string& version, const SquadDownloadOptions& options,
                    const Logger& log) {
  const std::vector<SquadFile> files = squad_files(version);
  fs::create_directories(squad_dir / version);
  const std::map<std::string, std::string> pins = mirror_pins(options.mirror, squad_dir, log);
  for (const SquadFile& f : files) {
    const fs::path dest = squad_dir / f.relative_path;
    const auto pin = pins.find(f.relative_path);
    if (fs::exists(dest)) {
      if (pin == pins.end() || sha256_file(dest) == pin->second) {
        log.info("'{}' is already there, not downloading it again", dest.string());
        continue;
      }
      log.warn("'{}' differs from its pinned sha256: downloading it again", dest.string());
      fs::remove(dest);
    }
    const std::string source = options.mirror.empty() ? f.url
                               : is_url(options.mirror) ? options.mirror + "/" + f.relative_path
                                                        : (fs::path(options.mirror) / f.relative_path).string();
    log.info("SQuAD {}: {} -> {}", version, source, dest.string());
    fetch(source, dest, options, log);
    const std::string got = sha256_file(dest);
    if (pin != pins.end() && got != pin->second) {
      std::error_code ec;
      fs::remove(dest, ec);  // never left where the conversion would read it
      throw DataError(fmt::format("{}: sha256 {} differs from the {} pinned in {}/SHA256SUMS (a changed or corrupt "
                                  "file; it was removed)",
                                  dest.string(), got, pin->second, options.mirror));
    }
    log.info("{}: sha256 {} ({})", dest.string(), got, pin != pins.end() ? "matches" : "not pinned");
  }
}

fs::path squad_src_path(const fs::path& json_path) {
  fs::path p = json_path;
  return p.replace_extension().string() + "_src.txt";
}

fs::path squad_tgt_path(const fs::path& json_path) {
  fs::path p = json_path;
  return p.replace_extension().string() + "_tgt.txt";
}

SquadConversionStats convert_squad_for_fine_tuning(const fs::path& json_path, SquadSplitMode mode, const Logger& log) {
  SquadConversionStats stats;
  const fs::path src_path = squad_src_path(json_path), tgt_path = squad_tgt_path(json_path);
  if (fs::exists(src_path) && fs::exists(tgt_path)) {
    log.info("'{}' and '{}' exist: not converting '{}' again", src_path.string(), tgt_path.string(), json_path.string());
    stats.skipped = true;
    return stats;
  }
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(read_file(json_path));
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", json_path.string(), e.what()));
  }
  if (!root.is_object()) throw DataError(fmt::format("{}: the top level is not an object with 'data'", json_path.string()));
  std::string src, tgt;
  const nlohmann::json& data = array_at(root, "data", json_path, "");
  for (std::size_t a = 0; a < data.size(); ++a) {
    const std::string wa = fmt::format("data[{}]", a);
    const std::string title = escape_newlines(text_at(data[a], "title", json_path, wa));
    const nlohmann::json& paragraphs = array_at(data[a], "paragraphs", json_path, wa);
    for (std::size_t p = 0; p < paragraphs.size(); ++p) {
      const std::string wp = fmt::format("{}.paragraphs[{}]", wa, p);
      const std::string context = escape_newlines(text_at(paragraphs[p], "context", json_path, wp));
      const nlohmann::json& qas = array_at(paragraphs[p], "qas", json_path, wp);
      for (std::size_t q = 0; q < qas.size(); ++q) {
        const std::string wq = fmt::format("{}.qas[{}]", wp, q);
        const std::string question = escape_newlines(text_at(qas[q], "question", json_path, wq));
        const nlohmann::json& answers = array_at(qas[q], "answers", json_path, wq);
        const std::string line = "Title: " + title + " Paragraph: " + context + " Question: " + question + "\n";
        const std::size_t n = mode == SquadSplitMode::kTrain ? answers.size() : std::min<std::size_t>(1, answers.size());
        for (std::size_t k = 0; k < n; ++k) {
          src += line;
          tgt += escape_newlines(text_at(answers[k], "text", json_path, fmt::format("{}.answers[{}]", wq, k))) + "\n";
          ++stats.examples;
        }
      }
    }
  }
  write_file_atomic(src_path, src);
  write_file_atomic(tgt_path, tgt);
  log.info("converted '{}' ({} mode): {} examples into '{}' and '{}'", json_path.string(),
           mode == SquadSplitMode::kTrain ? "train" : "dev", stats.examples, src_path.string(), tgt_path.string());
  return stats;
}

void prepare_squad_for_fine_tuning(const fs::path& squad_dir, const std::string& task, const SquadDownloadOptions& options,
                                   const Logger& log) {
  if (task != "squad" && task != "xquad")
    throw ConfigError(fmt::format("run.task_name: '{}' has no data preparation (squad and xquad have; a custom_task "
                                  "reads the src/tgt files it names)",
                                  task));
  download_squad(squad_dir, "v1.1", options, log);
  convert_squad_for_fine_tuning(squad_dir / "v1.1" / "train-v1.1.json", SquadSplitMode::kTrain, log);
  convert_squad_for_fine_tuning(squad_dir / "v1.1" / "dev-v1.1.json", SquadSplitMode::kDev, log);
  if (task == "xquad") {
    download_squad(squad_dir, "xquad", options, log);
    for (const SquadFile& f : squad_files("xquad"))
      convert_squad_for_fine_tuning(squad_dir / f.relative_path, SquadSplitMode::kDev, log);
  }
}

}  // namespace bignlp::data
