#include "bignlp/cluster/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "bignlp/core/strings.h"

namespace bignlp::cluster {
namespace {

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in{std::string(text)};
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::optional<double> number(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace

DcgmResult parse_dcgm_diag(std::string_view output, int exit_code) {
  DcgmResult r;
  bool in_table = false;
  for (const auto& raw : lines_of(output)) {
    const std::string line(trim(raw));
    if (line.starts_with("Error:") || line.starts_with("ERROR:")) {
      r.errors.push_back(std::string(trim(std::string_view(line).substr(6))));
      continue;
    }
    // Table rows are "| name | result |"; borders start with '+' and section rows with "|-----".
    if (!line.starts_with("|") || line.starts_with("|--") || line.size() < 3) continue;
    const auto cells = split(std::string_view(line).substr(1, line.size() - 2), '|');
    if (cells.size() != 2) continue;
    const std::string name(trim(cells[0]));
    const std::string cell(trim(cells[1]));
    if (name == "Diagnostic" && cell == "Result") {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (name.empty() || name == "Warning" || name == "Info") {
      // A continuation row: more text for the test above.
      if (!r.tests.empty() && !cell.empty()) {
        auto& d = r.tests.back().detail;
        d += (d.empty() ? "" : "; ") + (name.empty() ? cell : name + ": " + cell);
      }
      continue;
    }
    const auto dash = cell.find(" - ");
    const std::string head = dash == std::string::npos ? cell : cell.substr(0, dash);
    const std::string rest = dash == std::string::npos ? std::string() : cell.substr(dash + 3);
    if (head == "Pass" || head == "Fail" || head == "Warn" || head == "Skip") {
      r.tests.push_back({name, head, rest});
    }
    // Other rows (metadata: versions, device ids) are not tests.
  }
  for (const auto& t : r.tests) {
    if (t.outcome == "Fail") {
      r.errors.push_back(fmt::format("dcgmi test '{}' failed{}", t.name, t.detail.empty() ? "" : " (" + t.detail + ")"));
    }
  }
  if (r.tests.empty()) r.errors.push_back("dcgmi printed no test results");
  if (exit_code != 0) r.errors.push_back(fmt::format("dcgmi exited with status {}", exit_code));
  return r;
}

BandwidthResult parse_bench_comm(std::string_view output, int exit_code) {
  BandwidthResult r;
  for (const auto& line : lines_of(output)) {
    const auto w = words(line);
    // collective size... count time_us algbw busbw (bench_comm --no-peer).
    if (w.size() < 6 || w[0] != "all_reduce") continue;
    const auto count = number(w[w.size() - 4]);
    const auto busbw = number(w.back());
    if (!count || !busbw) continue;
    const auto bytes = static_cast<std::int64_t>(*count) * 4;
    if (bytes >= r.bytes) {
      r.bytes = bytes;
      r.busbw_gbps = *busbw;
    }
  }
  if (exit_code != 0) {
    r.busbw_gbps.reset();
    r.error = fmt::format("bench_comm exited with status {}", exit_code);
  } else if (!r.busbw_gbps) {
    r.error = "bench_comm printed no all_reduce result";
  }
  return r;
}

std::vector<std::vector<std::pair<int, int>>> ring_pair_rounds(int nodes) {
  std::vector<std::vector<std::pair<int, int>>> rounds;
  if (nodes < 2) return rounds;
  std::vector<std::pair<int, int>> edges;
  if (nodes == 2) {
    edges.push_back({0, 1});
  } else {
    for (int i = 0; i < nodes; ++i) edges.push_back({i, (i + 1) % nodes});
  }
  // Greedy: each edge goes to the first round where neither node is busy (2 rounds, 3 for odd n).
  std::vector<std::set<int>> busy;
  for (const auto& e : edges) {
    std::size_t k = 0;
    while (k < rounds.size() && (busy[k].count(e.first) || busy[k].count(e.second))) ++k;
    if (k == rounds.size()) {
      rounds.emplace_back();
      busy.emplace_back();
    }
    rounds[k].push_back(e);
    busy[k].insert(e.first);
    busy[k].insert(e.second);
  }
  return rounds;
}

double median_busbw(const std::vector<PairMeasurement>& pairs) {
  std::vector<double> v;
  for (const auto& p : pairs) {
    if (p.result.busbw_gbps) v.push_back(*p.result.busbw_gbps);
  }
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void judge_bandwidth(const std::vector<PairMeasurement>& pairs, std::optional<double> min_busbw_gbps,
                     double slow_fraction, std::vector<NodeVerdict>& verdicts) {
  const double median = median_busbw(pairs);
  std::vector<std::string> why(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& r = pairs[i].result;
    if (!r.busbw_gbps) {
      why[i] = r.error;
    } else if (min_busbw_gbps && *r.busbw_gbps < *min_busbw_gbps) {
      why[i] = fmt::format("bus bandwidth {:.2f} GB/s is below the minimum {:.2f} GB/s", *r.busbw_gbps, *min_busbw_gbps);
    } else if (pairs.size() >= 3 && *r.busbw_gbps < slow_fraction * median) {
      why[i] = fmt::format("bus bandwidth {:.2f} GB/s is below {:.2f} x the median {:.2f} GB/s", *r.busbw_gbps,
                           slow_fraction, median);
    }
  }
  std::map<std::string, int> total, slow;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    for (const auto* n : {&pairs[i].a, &pairs[i].b}) {
      if (n == &pairs[i].b && pairs[i].b == pairs[i].a) break;
      ++total[*n];
      if (!why[i].empty()) ++slow[*n];
    }
  }
  auto verdict = [&](const std::string& node) -> NodeVerdict& {
    for (auto& v : verdicts) {
      if (v.node == node) return v;
    }
    verdicts.push_back({node, {}});
    return verdicts.back();
  };
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (why[i].empty()) continue;
    const auto& p = pairs[i];
    const std::string label = p.a == p.b ? fmt::format("one-node run on {}", p.a) : fmt::format("pair {} + {}", p.a, p.b);
    const bool a_all = slow[p.a] == total[p.a];
    const bool b_all = slow[p.b] == total[p.b];
    if (a_all) verdict(p.a).reasons.push_back(fmt::format("{}: {}", label, why[i]));
    if (b_all && p.b != p.a) verdict(p.b).reasons.push_back(fmt::format("{}: {}", label, why[i]));
    if (!a_all && !b_all) {
      const std::string note = fmt::format("{}: {} (both nodes are fast with their other partner: the link between "
                                           "them, or either end of it, is suspect)",
                                           label, why[i]);
      verdict(p.a).reasons.push_back(note);
      verdict(p.b).reasons.push_back(note);
    }
  }
}

}  // namespace bignlp::cluster
