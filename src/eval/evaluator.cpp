#include "bignlp/eval/evaluator.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <unordered_map>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::eval {
namespace fs = std::filesystem;

namespace {

// Requests done / total with the rate: redrawn in place on a terminal, logged every 30 s otherwise.
class RequestProgress {
 public:
  RequestProgress(const Logger& log, std::string label, std::int64_t total, bool enabled)
      : log_(log), label_(std::move(label)), total_(total), enabled_(enabled), terminal_(::isatty(STDERR_FILENO) != 0) {
    start_ = last_ = std::chrono::steady_clock::now();
  }
  void update(std::int64_t done, bool final = false) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!final && since < (terminal_ ? 0.25 : 30.0)) return;
    last_ = now;
    const double secs = std::max(1e-9, std::chrono::duration<double>(now - start_).count());
    const double rate = static_cast<double>(done) / secs;
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::string line = fmt::format("{}: [{}{}] {}/{} requests | {:.1f} req/s", label_, std::string(filled, '#'),
                                   std::string(width - filled, '.'), done, total_, rate);
    if (!final && rate > 0 && done < total_)
      line += " | ETA " + format_duration(static_cast<double>(total_ - done) / rate);
    if (terminal_) {
      std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
      std::fflush(stderr);
    } else {
      log_.info("{}", line);
    }
  }

 private:
  const Logger& log_;
  std::string label_;
  std::int64_t total_;
  bool enabled_, terminal_;
  std::chrono::steady_clock::time_point start_, last_;
};

std::size_t code_point_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::uint64_t request_hash(const LoglikelihoodRequest& r) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::uint32_t v) {
    for (int b = 0; b < 4; ++b) {
      h ^= (v >> (8 * b)) & 0xFFu;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<std::uint32_t>(r.context.size()));
  for (auto t : r.context) mix(static_cast<std::uint32_t>(t));
  mix(0xFFFFFFFFu);
  for (auto t : r.continuation) mix(static_cast<std::uint32_t>(t));
  return h;
}

TokenizedTask tokenize_task(const Task& task, const data::Tokenizer& tokenizer, std::int64_t max_length) {
  const std::optional<std::int32_t> eot = tokenizer.special_tokens().eod;
  if (!eot)
    throw ConfigError(fmt::format("the {} tokenizer has no end-of-text token; the tasks score from it",
                                  tokenizer.type_name()));
  TokenizedTask out;
  auto encoder = tokenizer.make_encoder();
  auto enc = [&](std::string_view text) {
    std::vector<std::int32_t> ids;
    encoder->encode(text, ids);
    return ids;
  };
  for (const TaskDoc& doc : task.docs) {
    std::vector<std::vector<std::size_t>> per_request;
    if (task.kind == TaskKind::kWikitext) {
      // lm-eval's get_rolling_token_windows(tokens, EOT, L, 1) + make_disjoint_window.
      const std::vector<std::int32_t> t = enc(doc.rolling_text);
      std::vector<std::size_t> windows;
      const std::int64_t n = static_cast<std::int64_t>(t.size()), L = max_length;
      auto add = [&](std::vector<std::int32_t> input, std::vector<std::int32_t> targets) {
        input.resize(input.size() - (targets.size() - 1));  // make_disjoint_window
        windows.push_back(out.requests.size());
        out.requests.push_back({std::move(input), std::move(targets)});
      };
      if (n > 0) {
        const std::int64_t first = std::min(L, n);
        std::vector<std::int32_t> in{*eot};
        in.insert(in.end(), t.begin(), t.begin() + (first - 1));
        add(in, std::vector<std::int32_t>(t.begin(), t.begin() + first));
        std::int64_t predicted = first;
        while (predicted < n) {
          const std::int64_t len = std::min(n - predicted, L), end = predicted + len;
          add(std::vector<std::int32_t>(t.begin() + (end - L - 1), t.begin() + (end - 1)),
              std::vector<std::int32_t>(t.begin() + (end - len), t.begin() + end));
          predicted += len;
        }
      }
      per_request.push_back(std::move(windows));
    } else {
      for (const TextRequest& r : doc.requests) {
        LoglikelihoodRequest q;
        q.context = r.context.empty() ? std::vector<std::int32_t>{*eot} : enc(r.context);
        q.continuation = enc(r.continuation);
        if (q.continuation.empty())
          throw DataError(fmt::format("{}: a continuation tokenizes to nothing ('{}')", task.name, r.continuation));
        per_request.push_back({out.requests.size()});
        out.requests.push_back(std::move(q));
      }
    }
    out.doc_requests.push_back(std::move(per_request));
  }
  return out;
}

TaskReport evaluate_task(model::Model& model, const data::Tokenizer& tokenizer, const Task& task,
                         const EvalOptions& options, const Logger& log) {
  const auto start = std::chrono::steady_clock::now();
  TokenizedTask tt = tokenize_task(task, tokenizer, model.max_sequence_length());
  TaskReport report{.name = task.name, .version = task.version};
  report.docs = static_cast<std::int64_t>(task.docs.size());
  report.requests = static_cast<std::int64_t>(tt.requests.size());

  // The cache: results of earlier (interrupted) runs of this task on this model.
  std::unordered_map<std::uint64_t, LoglikelihoodResult> cached;
  fs::path cache_file;
  if (!options.cache_dir.empty()) {
    cache_file = options.cache_dir / fmt::format("{}-{}-{}.jsonl", task.name, task_style_name(options.style), options.model_key);
    std::ifstream in(cache_file);
    std::string line;
    while (std::getline(in, line)) {
      try {
        const auto j = nlohmann::json::parse(line);
        cached[std::stoull(j.at("k").get<std::string>(), nullptr, 16)] = {j.at("lp").get<double>(), j.at("g").get<bool>()};
      } catch (const std::exception&) {
        // a line torn by an interrupted run: scored again
      }
    }
  }
  if (options.after_cache_read) options.after_cache_read();

  std::vector<LoglikelihoodResult> results(tt.requests.size());
  std::vector<LoglikelihoodRequest> todo;
  std::vector<std::size_t> todo_index;
  for (std::size_t i = 0; i < tt.requests.size(); ++i) {
    auto it = cached.find(request_hash(tt.requests[i]));
    if (it != cached.end()) {
      results[i] = it->second;
      ++report.cached;
    } else {
      todo.push_back(tt.requests[i]);
      todo_index.push_back(i);
    }
  }
  if (report.cached > 0) log.info("{}: {} of {} requests from the cache {}", task.name, report.cached, report.requests,
                                  cache_file.string());
  std::unique_ptr<std::ofstream> cache_out;
  if (!cache_file.empty() && options.is_reporting_rank && !todo.empty()) {
    fs::create_directories(options.cache_dir);
    std::error_code ec;
    const bool torn = fs::exists(cache_file, ec) && fs::file_size(cache_file, ec) > 0 && [&] {
      std::ifstream in(cache_file, std::ios::binary);
      in.seekg(-1, std::ios::end);
      return in.get() != '\n';
    }();
    cache_out = std::make_unique<std::ofstream>(cache_file, std::ios::app);
    if (!*cache_out) throw IoError(fmt::format("cannot write the request cache '{}'", cache_file.string()));
    if (torn) *cache_out << "\n";  // end the line an interrupted run tore
  }
  RequestProgress progress(log, task.name, static_cast<std::int64_t>(todo.size()), options.is_reporting_rank);
  std::int64_t done = 0;
  const auto scored = score_loglikelihood(
      model, todo, options.batch_size,
      [&](const std::vector<std::size_t>& idx, const std::vector<LoglikelihoodResult>& res) {
        done += static_cast<std::int64_t>(idx.size());
        if (cache_out) {
          std::string lines;
          for (std::size_t k = 0; k < idx.size(); ++k)
            lines += nlohmann::json{{"k", fmt::format("{:016x}", request_hash(todo[idx[k]]))},
                                    {"lp", res[k].logprob},
                                    {"g", res[k].is_greedy}}
                         .dump() +
                     "\n";
          *cache_out << lines;
          cache_out->flush();
        }
        progress.update(done);
      });
  if (!todo.empty()) progress.update(done, /*final=*/true);
  for (std::size_t k = 0; k < todo.size(); ++k) results[todo_index[k]] = scored[k];

  std::vector<std::vector<RequestOutcome>> outcomes;
  for (const auto& doc : tt.doc_requests) {
    std::vector<RequestOutcome> o;
    for (const auto& idx : doc) {
      RequestOutcome r;
      r.is_greedy = true;
      for (std::size_t i : idx) {
        r.logprob += results[i].logprob;
        r.is_greedy = r.is_greedy && results[i].is_greedy;
        r.tokens += static_cast<std::int64_t>(tt.requests[i].continuation.size());
      }
      o.push_back(r);
    }
    outcomes.push_back(std::move(o));
  }
  report.metrics = compute_metrics(task, outcomes, options.style, options.bootstrap_iters);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

nlohmann::json results_json(const std::vector<TaskReport>& reports, const nlohmann::json& config) {
  nlohmann::json results = nlohmann::json::object(), versions = nlohmann::json::object();
  for (const auto& r : reports) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [name, value] : r.metrics) m[name] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    results[r.name] = m;
    versions[r.name] = r.version;
  }
  return {{"results", results}, {"versions", versions}, {"config", config}};
}

std::string results_table(const std::vector<TaskReport>& reports) {
  std::vector<std::vector<std::string>> rows{{"Task", "Version", "Metric", "Value", "", "Stderr"}};
  for (const auto& r : reports) {
    bool first = true;
    for (std::size_t i = 0; i < r.metrics.size(); ++i) {
      const auto& [name, value] = r.metrics[i];
      if (ends_with(name, "_stderr")) continue;
      std::string err;
      if (i + 1 < r.metrics.size() && r.metrics[i + 1].first == name + "_stderr" && r.metrics[i + 1].second)
        err = fmt::format("{:.4f}", *r.metrics[i + 1].second);
      rows.push_back({first ? r.name : "", first ? std::to_string(r.version) : "", name,
                      value ? fmt::format("{:.4f}", *value) : "n/a", err.empty() ? "" : "±", err});
      first = false;
    }
  }
  std::vector<std::size_t> width(6, 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < 6; ++c) width[c] = std::max(width[c], code_point_width(row[c]));
  std::string out;
  for (std::size_t ri = 0; ri < rows.size(); ++ri) {
    std::string line = "|";
    for (std::size_t c = 0; c < 6; ++c) {
      const std::string& cell = rows[ri][c];
      const std::size_t pad = width[c] - code_point_width(cell);
      line += (c == 3 || c == 5) ? std::string(pad, ' ') + cell : cell + std::string(pad, ' ');
      line += "|";
    }
    out += line + "\n";
    if (ri == 0) {
      std::string sep = "|";
      for (std::size_t c = 0; c < 6; ++c) sep += std::string(width[c], '-') + "|";
      out += sep + "\n";
    }
  }
  return out;
}

}  // namespace bignlp::eval
