// bignlp-validate: cluster validation (docs/cluster_tools.md). For the nodes of --nodelist: GPU
// diagnostics on every node (`dcgmi diag -r <level>`) and node-to-node bus bandwidth (bench_comm's
// all_reduce over NCCL, or gloo on CPU nodes) on a ring of node pairs, so that a slow node makes
// both of its pairs slow and stands out. Logs go to <results-dir>/{dcgm,bandwidth}/, the summary to
// <results-dir>/summary.txt; the failing nodes are listed at the end and the exit status is 1 when
// any node fails.
//
//   bignlp-validate --nodes=8 --nodelist=hpc-pg0-[1-8] --partition=hpc [--dcgm | --nccl]
//   bignlp-validate --write-topology /opt/microsoft/ndv4-topo.xml      (the NCCL topology file)
//
// --runner srun (default) runs each node's check as a Slurm step on that node (`srun --overlap
// -N1 -w NODE`, inside the cluster_validation job's allocation or, from a login node, as its own
// allocation on --partition); --runner local runs them on this machine (tests, a one-node check).
// Every check sees BIGNLP_VALIDATE_NODE (or BIGNLP_VALIDATE_NODES for a pair) in its environment.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>

#include "bignlp/cluster/nodelist.h"
#include "bignlp/cluster/topology.h"
#include "bignlp/cluster/validation.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/process.h"

namespace {

namespace fs = std::filesystem;
using namespace bignlp;

struct Args {
  int nodes = 0;
  std::string nodelist;
  std::string partition;
  bool dcgm_only = false;
  bool nccl_only = false;
  int dcgm_level = 1;
  std::string results_dir = "results/cluster_validation";
  std::string runner = "srun";
  std::string backend = "nccl";
  int tasks_per_node = 0;
  std::int64_t message_bytes = 0;
  int iters = 0;
  double min_busbw = 0;
  double slow_fraction = 0.8;
  std::string bench_comm;
  std::string dcgmi = "dcgmi";
  std::string write_topology;
  std::string sysfs_root = "/";
};

std::string next_to_us(const std::string& program) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path p = exe.parent_path() / program;
    if (fs::exists(p)) return p.string();
  }
  return program;
}

// The argv that runs `cmd` on `nodes` (one node, or a pair) with `tasks` tasks per node.
// `env` adds variables for the check (srun passes our environment on to the tasks).
std::vector<std::string> on_nodes(const Args& a, const std::vector<std::string>& nodes, int tasks,
                                  const std::vector<std::string>& cmd, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {"env", (nodes.size() == 1 ? "BIGNLP_VALIDATE_NODE=" : "BIGNLP_VALIDATE_NODES=") +
                                              join(nodes, ",")};
  argv.insert(argv.end(), env.begin(), env.end());
  if (a.runner == "srun") {
    argv.insert(argv.end(), {"srun", "--overlap", fmt::format("--nodes={}", nodes.size()),
                             fmt::format("--ntasks={}", tasks * static_cast<int>(nodes.size())),
                             fmt::format("--ntasks-per-node={}", tasks), "--nodelist=" + join(nodes, ",")});
    // Inside an allocation (the cluster_validation job) the steps use it; from a login node each
    // check is its own allocation on the partition.
    if (std::getenv("SLURM_JOB_ID") == nullptr && !a.partition.empty()) argv.push_back("--partition=" + a.partition);
  }
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

// A node name as a file name (host names are [A-Za-z0-9.-], but be safe).
std::string file_name(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '_';
  }
  return s;
}

void save_log(const fs::path& path, const std::vector<std::string>& argv, const launch::CapturedRun& r) {
  write_file_atomic(path, fmt::format("$ {}\n# exit status {}\n--- stdout\n{}--- stderr\n{}", join(argv, " "),
                                      r.exit_code, r.out, r.err));
}

int run(const Args& a) {
  if (!a.write_topology.empty()) {
    const auto topo = cluster::read_pci_topology(a.sysfs_root);
    write_file_atomic(a.write_topology, cluster::topology_xml(topo));
    std::cout << fmt::format("bignlp-validate: wrote {} ({} GPUs, {} NICs on {} NUMA nodes)\n", a.write_topology,
                             topo.gpu_count(), topo.nic_count(), topo.cpus.size());
    if (a.nodelist.empty()) return 0;
  }
  if (a.nodelist.empty()) throw UsageError("--nodelist is required (e.g. --nodelist=hpc-pg0-[1-8])");
  if (a.nodes < 1) throw UsageError("--nodes is required and must be at least 1");
  const auto nodes = cluster::expand_nodelist(a.nodelist, "--nodelist");
  if (static_cast<int>(nodes.size()) != a.nodes) {
    throw UsageError(fmt::format("--nodes={} but --nodelist={} names {} node(s) ({}); give the same count",
                                 a.nodes, a.nodelist, nodes.size(), join(nodes, ", ")));
  }
  if (a.runner == "srun" && a.partition.empty() && std::getenv("SLURM_JOB_ID") == nullptr) {
    throw UsageError("--partition is required outside a Slurm job (the partition the nodes are in, as sinfo shows)");
  }
  if (a.dcgm_level < 1 || a.dcgm_level > 4) {
    throw UsageError(fmt::format("--dcgm-level={}: dcgmi diag runs levels 1 (quick) to 4 (longest)", a.dcgm_level));
  }
  const bool do_dcgm = a.dcgm_only || !a.nccl_only;
  const bool do_nccl = a.nccl_only || !a.dcgm_only;
  const bool gloo = a.backend == "gloo";
  const int tasks = a.tasks_per_node > 0 ? a.tasks_per_node : (gloo ? 1 : 8);
  const std::int64_t bytes = a.message_bytes > 0 ? a.message_bytes : (gloo ? (16 << 20) : (std::int64_t{1} << 30));
  const int iters = a.iters > 0 ? a.iters : (gloo ? 5 : 20);
  const fs::path out = a.results_dir;
  fs::create_directories(out);

  std::vector<cluster::NodeVerdict> verdicts;
  for (const auto& n : nodes) verdicts.push_back({n, {}});
  std::string summary = fmt::format("cluster validation of {} node(s): {}\n", nodes.size(), join(nodes, ", "));

  if (do_dcgm) {
    fs::create_directories(out / "dcgm");
    std::vector<std::future<launch::CapturedRun>> runs;
    std::vector<std::vector<std::string>> argvs;
    for (const auto& n : nodes) {
      argvs.push_back(on_nodes(a, {n}, 1, {a.dcgmi, "diag", "-r", fmt::format("{}", a.dcgm_level)}));
      runs.push_back(std::async(std::launch::async, [argv = argvs.back()] { return launch::run_captured(argv); }));
    }
    summary += fmt::format("\nGPU diagnostics (dcgmi diag -r {}):\n", a.dcgm_level);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto r = runs[i].get();
      save_log(out / "dcgm" / (file_name(nodes[i]) + ".log"), argvs[i], r);
      auto d = cluster::parse_dcgm_diag(r.out, r.exit_code);
      if (r.exit_code == 127) d.errors.push_back(fmt::format("could not start: {}", trim(r.err)));
      summary += fmt::format("  {:<24} {} ({} tests)\n", nodes[i], d.passed() ? "PASS" : "FAIL", d.tests.size());
      for (const auto& e : d.errors) {
        summary += "      " + e + "\n";
        verdicts[i].reasons.push_back("GPU diagnostics: " + e);
      }
    }
  }

  if (do_nccl) {
    fs::create_directories(out / "bandwidth");
    const std::vector<std::string> bench = {
        a.bench_comm.empty() ? next_to_us("bench_comm") : a.bench_comm, "--backend", a.backend, "--ops",
        "all_reduce", "--min-bytes", fmt::format("{}", bytes), "--max-bytes", fmt::format("{}", bytes), "--iters",
        fmt::format("{}", iters), "--warmup", "2", "--no-peer"};
    // A step's SLURM_JOB_NODELIST is the whole job's, so the rendezvous would pick the job's
    // first node: name the pair's first node, and a port of its own for each pair of a round.
    auto measure = [&](const std::vector<std::string>& pair, int slot) {
      std::vector<std::string> cmd = bench;
      // One node alone: its tasks measure it among themselves (2 ranks at least).
      const int per_node = pair.size() == 1 ? std::max(2, tasks) : tasks;
      if (a.runner == "local" && gloo) {  // the ranks of every "node" are processes here
        cmd.insert(cmd.end(), {"--spawn", fmt::format("{}", per_node * static_cast<int>(pair.size()))});
      }
      auto argv = on_nodes(a, pair, per_node, cmd,
                           {"MASTER_ADDR=" + pair.front(), fmt::format("MASTER_PORT={}", 29500 + slot)});
      return std::make_pair(argv, launch::run_captured(argv));
    };
    std::vector<cluster::PairMeasurement> pairs;
    auto record = [&](const std::vector<std::string>& pair, const std::vector<std::string>& argv,
                      const launch::CapturedRun& r) {
      save_log(out / "bandwidth" / (file_name(join(pair, "__")) + ".log"), argv, r);
      auto b = cluster::parse_bench_comm(r.out, r.exit_code);
      if (r.exit_code == 127) b.error = fmt::format("could not start: {}", trim(r.err));
      pairs.push_back({pair.front(), pair.back(), b});
    };
    if (nodes.size() == 1) {
      auto [argv, r] = measure({nodes[0]}, 0);
      record({nodes[0]}, argv, r);
    }
    for (const auto& round : cluster::ring_pair_rounds(static_cast<int>(nodes.size()))) {
      // The pairs of a round share no node: on Slurm they run at once; locally one after another.
      std::vector<std::future<std::pair<std::vector<std::string>, launch::CapturedRun>>> runs;
      for (const auto& [i, j] : round) {
        const std::vector<std::string> pair = {nodes[i], nodes[j]};
        const int slot = static_cast<int>(runs.size());
        runs.push_back(std::async(a.runner == "srun" ? std::launch::async : std::launch::deferred,
                                  [&measure, pair, slot] { return measure(pair, slot); }));
      }
      for (std::size_t k = 0; k < round.size(); ++k) {
        auto [argv, r] = runs[k].get();
        record({nodes[round[k].first], nodes[round[k].second]}, argv, r);
      }
    }
    const double median = cluster::median_busbw(pairs);
    summary += fmt::format("\nBus bandwidth (bench_comm all_reduce over {}, {} bytes, {} task(s) per node; median "
                           "{:.2f} GB/s):\n",
                           a.backend, bytes, tasks, median);
    for (const auto& p : pairs) {
      const std::string who = p.a == p.b ? p.a : p.a + " + " + p.b;
      summary += p.result.busbw_gbps ? fmt::format("  {:<40} {:>10.2f} GB/s\n", who, *p.result.busbw_gbps)
                                     : fmt::format("  {:<40} {}\n", who, p.result.error);
    }
    cluster::judge_bandwidth(pairs, a.min_busbw > 0 ? std::optional<double>(a.min_busbw) : std::nullopt,
                             a.slow_fraction, verdicts);
  }

  std::vector<std::string> failing;
  for (const auto& v : verdicts) {
    if (!v.reasons.empty()) failing.push_back(v.node);
  }
  if (failing.empty()) {
    summary += fmt::format("\nAll {} node(s) passed.\n", nodes.size());
  } else {
    summary += fmt::format("\nFailing nodes ({} of {}): {}\n", failing.size(), nodes.size(), join(failing, ","));
    for (const auto& v : verdicts) {
      for (const auto& r : v.reasons) summary += fmt::format("  {}: {}\n", v.node, r);
    }
    summary += "Replace or restart these nodes (or drain them: scontrol update nodename=NODE state=drain reason=...).\n";
  }
  write_file_atomic(out / "summary.txt", summary);
  std::cout << summary << fmt::format("(logs and summary in {})\n", out.string());
  return failing.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"bignlp-validate: GPU diagnostics and node-pair bus bandwidth of Slurm nodes"};
  app.add_option("--nodes", a.nodes, "number of nodes (as sinfo shows them)");
  app.add_option("--nodelist", a.nodelist, "the nodes, in Slurm syntax (e.g. hpc-pg0-[1-8,10])");
  app.add_option("--partition", a.partition, "the Slurm partition of the nodes");
  app.add_flag("--dcgm", a.dcgm_only, "run the GPU diagnostics only");
  app.add_flag("--nccl", a.nccl_only, "run the bandwidth test only");
  app.add_option("--dcgm-level", a.dcgm_level, "dcgmi diag -r level: 1 (seconds) to 4 (hours)");
  app.add_option("--results-dir", a.results_dir, "where the logs and summary.txt go");
  app.add_option("--runner", a.runner, "srun (a Slurm step per node) or local (this machine)")
      ->check(CLI::IsMember({"srun", "local"}));
  app.add_option("--backend", a.backend, "bench_comm backend: nccl (GPUs) or gloo (CPU)")
      ->check(CLI::IsMember({"nccl", "gloo"}));
  app.add_option("--tasks-per-node", a.tasks_per_node, "bench_comm ranks per node (default: 8 for nccl, 1 for gloo)");
  app.add_option("--message-bytes", a.message_bytes, "all_reduce size (default: 1 GiB for nccl, 16 MiB for gloo)");
  app.add_option("--iters", a.iters, "timed all_reduce calls (default: 20 for nccl, 5 for gloo)");
  app.add_option("--min-busbw", a.min_busbw, "GB/s: a pair below this is slow (default: only the relative rule)");
  app.add_option("--slow-fraction", a.slow_fraction, "a pair below this fraction of the median (3+ pairs) is slow")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--bench-comm", a.bench_comm, "bench_comm program (default: next to bignlp-validate)");
  app.add_option("--dcgmi", a.dcgmi, "dcgmi program (default: dcgmi on PATH)");
  app.add_option("--write-topology", a.write_topology, "write this node's NCCL topology file here");
  app.add_option("--sysfs-root", a.sysfs_root, "root of /sys and /proc for --write-topology (tests)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const Error& e) {
    std::cerr << "bignlp-validate: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-validate: " << e.what() << "\n";
    return 1;
  }
}
