#include "bignlp/hp/results.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <numeric>

namespace bignlp::hp {

std::vector<double> parse_step_times(std::string_view text) {
  static constexpr std::string_view kKey = "train_step_timing in s:";
  std::vector<double> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("global_step:") == std::string_view::npos) continue;
    const auto k = line.find(kKey);
    if (k == std::string_view::npos) continue;
    std::size_t v = k + kKey.size();
    while (v < line.size() && line[v] == ' ') ++v;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(line.data() + v, line.data() + line.size(), value);
    if (ec == std::errc() && ptr != line.data() + v) out.push_back(value);
  }
  return out;
}

std::optional<double> mean_step_time(const std::vector<double>& times) {
  if (times.size() <= 6) return std::nullopt;
  const double sum = std::accumulate(times.begin() + 5, times.end(), 0.0);
  return round_to(sum / double(times.size() - 5), 4);
}

double model_flops_per_step(const FlopsShape& x) {
  const double B = x.gbs, s = x.seq, h = x.hidden, L = x.layers, V = x.vocab, F = x.ffn;
  switch (x.family) {
    case Family::kGpt3:
      return (24 * B * s * h * h + 4 * B * s * s * h) * (3 * L) + 6 * B * s * h * V;
    case Family::kBert:
      return 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));
    case Family::kT5:
    case Family::kMt5: {
      const double se = x.seq, sd = x.seq_dec;
      const double enc = 8 * B * se * h * h + 4 * B * se * se * h + 6 * B * se * h * F;
      const double dec = 8 * B * sd * h * h + 4 * B * sd * sd * h + 4 * B * se * h * h + 4 * B * sd * h * h +
                         4 * B * se * sd * h + 6 * B * sd * h * F;
      return 3 * ((enc + dec) * (L / 2) + 2 * B * sd * h * V);
    }
  }
  return 0;
}

namespace {

std::string opt(const std::optional<int>& v) { return v ? fmt::format("{}", *v) : std::string(); }
std::string optd(const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v) : std::string(); }

// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c == '\n' || c == '\r' ? ' ' : c;
  }
  return out + "\"";
}

std::string first_columns(const ResultRow& r) {
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", field(r.model_name), field(r.model_size),
                     r.seq_length, r.tp, r.pp, r.mbs, opt(r.act_ckpt_layers), opt(r.act_ckpt_micro_batches),
                     opt(r.act_ckpt_layers_per_pipeline), r.num_layers, r.hidden_size, opt(r.ffn_hidden_size), r.gbs,
                     r.nodes, r.gpus_per_node);
}

constexpr const char* kFirstHeader =
    "Model Name,Model Size,Seq Length,TP,PP,MBS,Act Ckpt Layers,Act Ckpt Micro Bathes,Act Ckpt Layers per Pipeline,"
    "Num Layers,Hidden Size,FFN Hidden Size,GBS,Nodes,GPUs per Node";

}  // namespace

std::string summary_csv(const std::vector<ResultRow>& rows) {
  std::string out = std::string(kFirstHeader) +
                    ",Time per Step,Samples per Second,Model TFLOPS / GPU,Model TFLOPS Aggregate,Config Name,"
                    "Estimated Memory per GPU [GB]\n";
  for (const auto& r : rows) {
    out += fmt::format("{},{},{},{},{},{},{}\n", first_columns(r), r.time_per_step, r.samples_per_second,
                       r.tflops_per_gpu, r.tflops_aggregate, field(r.config_name), optd(r.estimated_memory_gb));
  }
  return out;
}

std::string failed_csv(const std::vector<ResultRow>& rows) {
  std::string out = std::string(kFirstHeader) + ",Error Message,Estimated Memory per GPU [GB]\n";
  for (const auto& r : rows) {
    out += fmt::format("{},{},{}\n", first_columns(r), field(r.error_message), optd(r.estimated_memory_gb));
  }
  return out;
}

void sort_by_time(std::vector<ResultRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(),
                   [](const ResultRow& a, const ResultRow& b) { return a.time_per_step < b.time_per_step; });
}

}  // namespace bignlp::hp
