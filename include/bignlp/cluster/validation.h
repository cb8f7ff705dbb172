// Cluster validation (bignlp-validate, docs/cluster_tools.md): what the per-node GPU diagnostics
// (`dcgmi diag -r <level>`) and the node-pair bus-bandwidth runs (bench_comm) printed, read into
// results, and which nodes fail.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bignlp::cluster {

/// One row of dcgmi's result table: "| PCIe | Fail - GPU: 3 |".
struct DcgmTest {
  std::string name;     ///< "PCIe", "GPU Memory", "Persistence Mode", ...
  std::string outcome;  ///< "Pass", "Fail", "Warn" or "Skip"
  std::string detail;   ///< the rest of the cell and its continuation rows ("GPU: 3", warnings)
};

struct DcgmResult {
  std::vector<DcgmTest> tests;
  std::vector<std::string> errors;  ///< why the node fails: failed tests, "Error:" lines, exit status
  bool passed() const { return errors.empty(); }
};

/// Reads the text `dcgmi diag -r N` printed (its result table, `Error: ...` lines) and its exit
/// status. A node fails on any Fail row, an Error line, a non-zero exit, or a table with no test.
DcgmResult parse_dcgm_diag(std::string_view output, int exit_code);

/// The bus bandwidth one bench_comm run measured: its largest all_reduce message.
struct BandwidthResult {
  std::optional<double> busbw_gbps;  ///< empty when the run failed or printed no all_reduce row
  std::int64_t bytes = 0;            ///< the message size of that row (count x 4)
  std::string error;                 ///< why there is no figure
};

/// Reads bench_comm's table (rank 0's stdout) and the run's exit status.
BandwidthResult parse_bench_comm(std::string_view output, int exit_code);

/// The node pairs of the bandwidth test, in rounds of disjoint pairs (one pair runs on a node at a
/// time). The pairs form a ring (i, i+1 mod n), so every node of three or more is measured with
/// two different partners: a slow node makes both its pairs slow, a slow link only one. Two
/// nodes: one pair. One node: none (the caller measures that node on its own).
std::vector<std::vector<std::pair<int, int>>> ring_pair_rounds(int nodes);

/// Per-node outcome of the whole validation.
struct NodeVerdict {
  std::string node;
  std::vector<std::string> reasons;  ///< empty: the node passed
};

struct PairMeasurement {
  std::string a, b;  ///< a == b: a one-node run
  BandwidthResult result;
};

/// The bandwidth verdict: a pair is slow when it failed, when its bus bandwidth is below
/// `min_busbw_gbps` (if set), or below `slow_fraction` x the median of all pairs (three pairs or
/// more). A node fails when every pair it was in is slow; a slow pair whose two nodes both have a
/// good pair elsewhere fails both nodes (the link between them, or either end of it, is suspect).
/// Adds the reasons to `verdicts` (one per node, in node order).
void judge_bandwidth(const std::vector<PairMeasurement>& pairs, std::optional<double> min_busbw_gbps,
                     double slow_fraction, std::vector<NodeVerdict>& verdicts);

/// The median of the measured bus bandwidths (0 when none).
double median_busbw(const std::vector<PairMeasurement>& pairs);

}  // namespace bignlp::cluster
