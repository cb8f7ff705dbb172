// bignlp-hp: the HP tool's training search (docs/hp_tool.md). Reads a search_config file (the
// search_config stage writes one, with a `launcher:` section saying how to start training jobs),
// recommends the model size, writes the base config and the candidates, launches every candidate
// that fits in memory as a short training run through `bignlp`, and collects the step times into
// final_result/ (inline for local runs; on Slurm in a job that waits for the runs).
//
//   bignlp-hp --config-path DIR --config-name FILE [--model gpt3] [--template FILE] [--plan-only | --collect]
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "bignlp/config/view.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/hp/memory_check.h"
#include "bignlp/hp/pipeline.h"
#include "bignlp/launch/process.h"
#include "bignlp/launch/shell.h"

namespace {

namespace fs = std::filesystem;
using bignlp::config::ConfigNode;
using bignlp::config::ConfigView;

struct Args {
  bignlp::config::WorkerConfigArgs config;
  std::string model;
  std::string template_file;
  bool plan_only = false;
  bool collect = false;
  bool explain_memory = false;
  double gpu_memory_gb = 0;
};

// How to launch: the launcher section the search_config stage adds.
struct Launcher {
  std::string program;              // bignlp
  std::string hp_program;           // bignlp-hp (for the collect job)
  std::string cluster_type = "local";
  std::vector<std::string> overrides;
  std::string job_name_prefix;
  std::optional<std::string> partition, account;
};

std::string family_of(const ConfigView& cfg, const Args& a) {
  if (!a.model.empty()) return a.model;
  if (auto f = cfg.find<std::string>("launcher.family")) return *f;
  throw bignlp::UsageError("--model is required (gpt3, t5 or mt5) when the config has no launcher.family");
}

std::string print_table(const std::vector<bignlp::hp::ResultRow>& rows, int top_n) {
  std::string s = fmt::format("{:>4} {:>4} {:>4} {:>8} {:>8} {:>8} {:>12} {:>14} {:>10}\n", "TP", "PP", "MBS", "act",
                              "num_mbs", "per_pipe", "s/step", "samples/s", "TFLOPS/GPU");
  auto o = [](const std::optional<int>& v) { return v ? fmt::format("{}", *v) : std::string("-"); };
  for (int i = 0; i < std::min<int>(top_n, int(rows.size())); ++i) {
    const auto& r = rows[i];
    s += fmt::format("{:>4} {:>4} {:>4} {:>8} {:>8} {:>8} {:>12} {:>14} {:>10}\n", r.tp, r.pp, r.mbs,
                     o(r.act_ckpt_layers), o(r.act_ckpt_micro_batches), o(r.act_ckpt_layers_per_pipeline),
                     r.time_per_step, r.samples_per_second, r.tflops_per_gpu);
  }
  return s;
}

int collect(const bignlp::hp::SearchPlan& plan) {
  const auto c = bignlp::hp::collect_results(plan);
  std::cout << fmt::format("bignlp-hp: {} run(s) measured, {} failed or not launched\n", c.summary.size(),
                           c.failed.size());
  std::cout << print_table(c.summary, plan.settings.output_top_n);
  std::cout << fmt::format("bignlp-hp: wrote {} and {}\n", c.summary_csv.string(), c.failed_csv.string());
  if (!c.best) {
    std::cerr << "bignlp-hp: no candidate produced step times; see " << c.failed_csv.string() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
  std::cout << fmt::format("bignlp-hp: the fastest configuration is {}; ready training config: {}\n", *c.best,
                           c.optimal_config.string());
  return 0;
}

int run(const Args& a, const ConfigNode& root) {
  const ConfigView cfg(root);
  const std::string family = family_of(cfg, a);
  if (family == "bert") {
    throw bignlp::ConfigError("search_config: bert has no model in bignlp to train; the search covers gpt3, t5 and mt5");
  }
  const bignlp::hp::TrainSettings s = bignlp::hp::read_train_settings(cfg, family);
  if (cfg.get_or<bool>("run_inference_hp_search", false)) {
    throw bignlp::ConfigError(
        "search_config.run_inference_hp_search=true: the inference search is not built yet (it needs bignlp's "
        "inference engine); set it to false");
  }
  (void)cfg.find<ConfigNode>("inference_settings");  // read only by the inference search
  (void)cfg.find<ConfigNode>("run_training_hp_search");
  (void)cfg.find<ConfigNode>("run");

  std::string templ = a.template_file;
  if (templ.empty()) templ = s.custom_config.value_or(cfg.get_or<std::string>("launcher.template", ""));
  if (templ.empty()) {
    throw bignlp::UsageError("--template (a training config of the family, e.g. conf/training/gpt3/5b.yaml) is "
                             "required without launcher.template or train_settings.custom_config");
  }
  const ConfigNode templ_node = bignlp::config::load_yaml_file(templ);
  const bignlp::hp::SearchPlan plan = bignlp::hp::plan_search(s, templ_node);
  std::cout << "bignlp-hp: " << plan.base.summary << "\n";

  Launcher l;
  if (const auto launcher = cfg.find<ConfigNode>("launcher")) {
    l.program = cfg.get<std::string>("launcher.program");
    l.hp_program = cfg.get<std::string>("launcher.hp_program");
    l.cluster_type = cfg.get<std::string>("launcher.cluster_type");
    l.overrides = cfg.get_or<std::vector<std::string>>("launcher.overrides", {});
    l.job_name_prefix = cfg.get_or<std::string>("launcher.job_name_prefix", "");
    l.partition = cfg.find<std::string>("launcher.partition");
    l.account = cfg.find<std::string>("launcher.account");
    (void)cfg.find<std::string>("launcher.template");
    (void)cfg.find<std::string>("launcher.family");
  }
  cfg.check_all_used("search_config");

  if (a.collect) return collect(plan);

  bignlp::hp::write_plan(plan);
  const fs::path logs = s.logs;
  const std::size_t fitting = std::count_if(plan.candidates.begin(), plan.candidates.end(),
                                            [](const auto& c) { return c.fits; });
  std::cout << fmt::format(
      "bignlp-hp: base config {}; {} candidates ({} pruned: estimated over {} GiB per GPU); grid TP {} PP {} MBS {}; "
      "search nodes {}\n",
      (logs / fmt::format("base_cfg_{}b.yaml", plan.base.size_label)).string(), fitting,
      plan.candidates.size() - fitting, plan.memory_limit_gb, fmt::join(plan.grid.tp, ","),
      fmt::join(plan.grid.pp, ","), fmt::join(plan.grid.mbs, ","), plan.search_nodes);
  if (a.plan_only) return 0;
  if (l.program.empty()) {
    throw bignlp::UsageError("launching needs the launcher section the search_config stage writes; run it through "
                             "`bignlp stages=[search_config]`, or use --plan-only");
  }

  // Launch each candidate that fits (at most limit_search_runs) through the launcher.
  const fs::path launch_dir = logs / "candidate_configs" / ".launch";
  const fs::path group_dir = launch_dir / "training" / family;
  fs::create_directories(group_dir);
  std::vector<std::string> job_ids;
  int launched = 0;
  for (const auto& c : plan.candidates) {
    if (!c.fits) continue;
    if (launched >= s.limit_search_runs) break;
    bignlp::config::write_yaml_file(group_dir / (c.name + ".yaml"), c.config);
    std::vector<std::string> argv = {l.program, "--config-dir", fs::absolute(launch_dir).string(), "stages=[training]",
                                     fmt::format("training={}/{}", family, c.name),
                                     "base_results_dir=" + fs::absolute(logs / "training_logs").string()};
    argv.insert(argv.end(), l.overrides.begin(), l.overrides.end());
    std::cout << "bignlp-hp: launching " << c.name << "\n" << std::flush;
    if (l.cluster_type == "local") {
      const int rc = bignlp::launch::run_inherited(argv);
      if (rc != 0) std::cout << fmt::format("bignlp-hp: {} ended with exit code {}\n", c.name, rc);
      ++launched;
    } else {
      const auto r = bignlp::launch::run_captured(argv);
      std::cout << r.out;
      std::cerr << r.err;
      const auto at = r.out.rfind(" as job ");
      if (r.exit_code == 0 && at != std::string::npos) {
        std::string id = r.out.substr(at + 8);
        id = id.substr(0, id.find_first_of(" \n"));
        job_ids.push_back(id);
        ++launched;
      } else {
        std::cout << fmt::format("bignlp-hp: {} was not submitted (exit code {})\n", c.name, r.exit_code);
      }
    }
    fs::remove(group_dir / (c.name + ".yaml"));
  }
  std::cout << fmt::format("bignlp-hp: {} candidate run(s) launched\n", launched);
  if (l.cluster_type == "local") return collect(plan);

  const std::string collect_cmd = bignlp::launch::shell_join(
      {l.hp_program, "--config-path", fs::absolute(a.config.config_path).string(), "--config-name",
       a.config.config_name, "--collect"});
  if (l.cluster_type == "bcm") {
    if (job_ids.empty()) throw bignlp::SubmitError("no candidate run was submitted; nothing to collect");
    const fs::path final_dir = fs::absolute(logs / "final_result");
    std::vector<std::string> sb = {"sbatch", "--parsable", "--dependency=afterany:" + fmt::format("{}", fmt::join(job_ids, ":")),
                                   "--job-name=" + l.job_name_prefix + "hp_collect", "--nodes=1", "--ntasks-per-node=1",
                                   "--time=10:00",
                                   "--output=" + (final_dir / fmt::format("compare_throughput_{}b_{}nodes-%j.log",
                                                                          plan.base.size_label, plan.search_nodes))
                                                     .string(),
                                   "--error=" + (final_dir / fmt::format("compare_throughput_{}b_{}nodes-%j.error",
                                                                         plan.base.size_label, plan.search_nodes))
                                                    .string()};
    if (l.partition) sb.push_back("--partition=" + *l.partition);
    if (l.account) sb.push_back("--account=" + *l.account);
    sb.push_back("--wrap=" + collect_cmd);
    const auto r = bignlp::launch::run_captured(sb);
    if (r.exit_code != 0) {
      throw bignlp::SubmitError(fmt::format("sbatch of the collect job failed ({}): {}", r.exit_code, r.err));
    }
    std::cout << fmt::format("bignlp-hp: the results are collected by job {} when the runs end\n",
                             r.out.substr(0, r.out.find('\n')));
    return 0;
  }
  std::cout << "bignlp-hp: when the runs have ended, collect the results with:\n  " << collect_cmd << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    std::vector<std::string> args(argv + 1, argv + argc);
    a.config = bignlp::config::extract_worker_config_args(args);
    CLI::App app{"bignlp-hp: the HP tool's training search (docs/hp_tool.md)"};
    app.add_option("--model", a.model, "gpt3, t5 or mt5 (default: launcher.family of the config)");
    app.add_option("--template", a.template_file, "training config to build the base config from");
    app.add_flag("--plan-only", a.plan_only, "write the base config and the candidates, launch nothing");
    app.add_flag("--collect", a.collect, "collect the launched runs' step times into final_result/");
    app.add_flag("--explain-memory", a.explain_memory,
                 "the config is a training config: print its per-GPU memory estimate, component by component");
    app.add_option("--gpu-memory-gb", a.gpu_memory_gb, "with --explain-memory: also list the nearest layouts that fit");
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const ConfigNode root = bignlp::config::load_worker_config(a.config);
    if (a.explain_memory) {
      const std::int64_t vocab = bignlp::hp::assumed_vocab_size(root);
      const auto m = bignlp::hp::estimate_training_memory(root, vocab);
      std::cout << fmt::format("memory estimate (vocabulary assumed {}):\n{}", vocab, m.explain());
      if (a.gpu_memory_gb > 0) {
        const double gib = m.total_bytes() / (1024.0 * 1024.0 * 1024.0);
        std::cout << fmt::format("{} {} GiB\n", gib <= a.gpu_memory_gb ? "fits in" : "does not fit in", a.gpu_memory_gb);
        if (gib > a.gpu_memory_gb)
        for (const auto& f : bignlp::hp::nearest_fitting(root, vocab, a.gpu_memory_gb)) {
          std::cout << fmt::format("  fits with: {} ({:.1f} GiB)\n", f.text(), f.total_gb);
        }
      }
      return 0;
    }
    return run(a, root);
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-hp: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-hp: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
