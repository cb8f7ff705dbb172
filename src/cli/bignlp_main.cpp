// bignlp: compose the layered YAML in conf/ (Hydra-style) and run the stages it selects.
//
// Index (which header provides what):
//   bignlp/config/compose.h         compose(), compose_multirun(): --config-path/-name/-dir + overrides
//   bignlp/config/interpolate.h     resolve_in_place(), select(): ${...} with resolvers
//   bignlp/config/yaml.h            to_yaml(): what --cfg prints
//   bignlp/config/defaults_list.h   format_defaults_tree()/format_defaults_list() for --info
//   bignlp/launch/stage_sequence.h  run_composed(): stages -> jobs -> scripts -> submission
//                                   (docs/launcher.md)
//   bignlp/core/error.h             typed errors and exit codes; the one catch is in main()
//
// Flags follow Hydra's (--cfg job|hydra|all, --resolve, -p/--package, --info, -m/--multirun,
// -cp/-cn/-cd); --explain KEY is ours. Everything that is not a flag is an override.
// Without --cfg/--info/--help/--explain the composed config goes to run_stages() below.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "bignlp/config/compose.h"
#include "bignlp/config/interpolate.h"
#include "bignlp/config/override_parser.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/core/logging.h"
#include "bignlp/core/version.h"
#include "bignlp/launch/stage_sequence.h"

namespace cfg = bignlp::config;

namespace {

struct Args {
  std::vector<std::string> command_line;  // argv as given (launcher_cmd.log)
  std::filesystem::path tree_root;        // the bignlp tree this program belongs to
  bool config_path_given = false;
  std::string config_path = "conf";
  std::string config_name = "config";
  std::vector<std::string> config_dirs;
  std::string cfg_type;  // job | hydra | all
  bool resolve = false;
  std::string package;
  bool package_given = false;
  std::string info;  // "" = not requested
  bool help = false;
  bool version = false;
  bool multirun = false;
  bool explain_memory = false;  // print the stages' memory estimates instead of running them
  bool force = false;  // submit beside a job of the same name still queued in the folder
  std::string explain;
  std::vector<std::string> overrides;
};

// The bignlp tree of this program: <root>/build*/bin/bignlp -> <root> when <root>/conf/config.yaml
// exists, else the folder above bin/.
std::filesystem::path tree_root_of(const char* argv0) {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) exe = std::filesystem::absolute(argv0, ec);
  const std::filesystem::path above_bin = exe.parent_path().parent_path();
  const std::filesystem::path root = above_bin.parent_path();
  if (std::filesystem::exists(root / "conf" / "config.yaml", ec)) return root;
  return above_bin;
}

// The folder of this program: the workers it launches are its neighbours (bin_dir's default).
std::filesystem::path program_dir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

// Resolvers for printing: the composition's (built-ins, hydra:, now:) plus the launcher's
// `${bignlp_root:}`, as the stages use them.
cfg::ResolverRegistry resolvers_for(const cfg::ComposeResult& r, const Args& a) {
  cfg::ResolverRegistry reg = r.resolvers();
  bignlp::launch::register_launch_resolvers(reg, a.tree_root, program_dir());
  return reg;
}

// ---- Stage sequence hook --------------------------------------------------------------------------
// Receives each composed config (one per --multirun job) when no --cfg/--info/--help/--explain is
// given, and returns the process exit code. The launcher plugs in here.
int run_stages(const cfg::ComposeResult& composed, const Args& args) {
  bignlp::launch::StageSequenceOptions options;
  // Local job ids name the logs: start from the process id so runs do not share log files.
  options.first_local_id = static_cast<std::uint64_t>(::getpid()) * 100;
  options.force = args.force;
  options.explain_memory = args.explain_memory;
  bignlp::launch::run_composed(composed, args.command_line, args.tree_root, program_dir(), options,
                               bignlp::Logger("bignlp"), std::cout);
  return 0;
}

constexpr const char* kInfoWhat[] = {"all", "config", "defaults", "defaults-tree", "searchpath", "sources"};

// Hydra's multi-letter short flags (-cp, -cn, -cd) and --info's optional value, normalized so that
// CLI11 sees plain long options.
std::vector<std::string> normalize_argv(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-cp") a = "--config-path";
    else if (a == "-cn") a = "--config-name";
    else if (a == "-cd") a = "--config-dir";
    else if (a.rfind("-cp=", 0) == 0) a = "--config-path=" + a.substr(4);
    else if (a.rfind("-cn=", 0) == 0) a = "--config-name=" + a.substr(4);
    else if (a.rfind("-cd=", 0) == 0) a = "--config-dir=" + a.substr(4);
    if (a == "--info" || a == "-i") {
      std::string what = "all";
      if (i + 1 < argc) {
        for (const char* w : kInfoWhat) {
          if (std::string(argv[i + 1]) == w) {
            what = w;
            ++i;
            break;
          }
        }
      }
      a = "--info=" + what;
    }
    out.push_back(a);
  }
  return out;
}

std::string usage() {
  return "Usage: bignlp [--config-path DIR] [--config-name NAME] [--config-dir DIR]... [--cfg job|hydra|all] "
         "[--resolve]\n              [-p KEY] [--info [WHAT]] [--explain KEY] [-m] [--help] [OVERRIDE ...]\n";
}

std::string flags_help() {
  return R"(Flags:
  --config-path, -cp DIR   primary config directory (default: conf)
  --config-name, -cn NAME  primary config, without .yaml (default: config)
  --config-dir, -cd DIR    add DIR to the config search path (after the primary directory)
  --cfg, -c job|hydra|all  print the composed config instead of running (job: without `hydra`)
  --resolve                with --cfg: resolve ${...} interpolations before printing
  --package, -p KEY        with --cfg: print only KEY (a scalar is printed resolved)
  --info, -i [WHAT]        diagnostics: all, config, defaults, defaults-tree, searchpath, sources
  --explain KEY            where KEY's value comes from (file:line or override), and what it resolves to
  --multirun, -m           sweep: one run per combination of a=1,2 / choice() / range() / glob()
  --explain-memory         print the per-GPU memory estimate of each training, fine-tuning or prompt-learning
                           stage in `stages` (and, with gpu_memory_gb, whether it fits); run nothing
  --force                  Slurm: submit even when a job of the same name from the same results folder is queued
  --help, -h               this help: flags, config groups and the composed config
  --version                print the version

Overrides (Hydra's grammar):
  key=value                change a value (the key must exist)      training.trainer.num_nodes=2
  +key=value  ++key=value  add a new key / add or change            +training.model.foo=1
  ~key  ~key=value         delete a key (value must match)          ~training.exp_manager
  group=option             choose a config group option             training=gpt3/5b
  +group=option            add a group to the defaults list         +experiment=fast
  values: null true 1 1.5 'quoted' [a,b] {a:1,b:[2]} ${interp}; sweeps (with -m): a=1,2 choice() range()
)";
}

std::string groups_help(const cfg::ConfigRepository& repo) {
  std::string out =
      "== Configuration groups ==\nCompose your configuration from those groups (group=option)\n\n";
  for (const auto& g : repo.subgroups("")) {
    if (g == "hydra") continue;
    const auto options = repo.group_options_recursive(g);
    if (options.empty()) continue;
    out += g + ": " + bignlp::join(options, ", ") + "\n";
  }
  return out;
}

cfg::ComposeOptions compose_options(const Args& a) {
  cfg::ComposeOptions o;
  o.config_path = a.config_path;
  o.config_name = a.config_name;
  for (const auto& d : a.config_dirs) o.config_dirs.emplace_back(d);
  o.overrides = a.overrides;
  return o;
}

int print_help(const Args& a) {
  std::string out = "bignlp " + std::string(bignlp::kVersion) +
                    ": composes the configuration in conf/ and runs the pipeline stages it selects.\n\n" + usage() +
                    "\n" + flags_help() + "\n";
  try {
    cfg::ConfigRepository repo(a.config_path, [&] {
      std::vector<std::filesystem::path> d;
      for (const auto& x : a.config_dirs) d.emplace_back(x);
      return d;
    }());
    out += groups_help(repo);
    cfg::ComposeOptions o = compose_options(a);
    o.skip_missing = true;
    try {
      const auto r = cfg::compose(o);
      out += "\n== Config ==\nOverride anything in the config (foo.bar=value)\n\n" + cfg::to_yaml(r.config);
    } catch (const bignlp::Error& e) {
      out += fmt::format("\n== Config ==\n(the config could not be composed: {})\n", e.what());
    }
  } catch (const bignlp::Error& e) {
    out += fmt::format("== Configuration groups ==\n(no config search path: {})\n", e.what());
  }
  std::cout << out;
  return 0;
}

// Hydra's show_cfg: --cfg job|hydra|all with -p and --resolve.
void print_cfg(const cfg::ComposeResult& r, const Args& a) {
  cfg::ConfigNode root;
  if (a.cfg_type == "job") {
    root = r.config;
  } else {
    cfg::ConfigNode hydra = r.hydra;
    if (a.cfg_type == "hydra") {
      hydra.erase("help");
      hydra.erase("hydra_help");
    }
    root = cfg::ConfigNode::dict();
    root.set("hydra", hydra);
    if (a.cfg_type == "all") {
      for (std::size_t i = 0; i < r.config.size(); ++i) root.set(r.config.key_at(i), r.config.child_at(i));
    }
  }
  const auto resolvers = resolvers_for(r, a);
  const std::string package = a.package == "_global_" ? std::string() : a.package;
  if (!a.package_given || a.package == "_global_") {
    if (a.resolve) cfg::resolve_in_place(root, resolvers);
    std::cout << cfg::to_yaml(root);
    return;
  }
  const cfg::ConfigNode* node = root.find_path(package);
  if (node && node->is_container()) {
    if (a.resolve) {
      cfg::ResolveOptions opt;
      opt.subtree = package;
      cfg::resolve_in_place(root, resolvers, opt);
      node = root.find_path(package);
    }
    std::cout << "# @package " << package << "\n" << cfg::to_yaml(*node);
    return;
  }
  // A scalar is printed resolved (select resolves it); a container reached through an
  // interpolation is printed as select returns it, resolved only with --resolve.
  const auto value = cfg::select(root, package, resolvers, /*missing_as_absent=*/true, /*resolve_containers=*/a.resolve);
  if (!value || value->is_null()) throw bignlp::ConfigError(fmt::format("package '{}' not found in config", package));
  if (value->is_container()) {
    std::cout << "# @package " << package << "\n" << cfg::to_yaml(*value);
  } else {
    std::cout << value->to_python_str() << "\n";
  }
}

void sources(const cfg::ConfigNode& n, const std::string& path, std::string& out) {
  if (n.is_container() && !n.empty()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      sources(n.child_at(i), cfg::child_key_path(path, n.is_dict() ? n.key_at(i) : std::to_string(i)), out);
    return;
  }
  out += fmt::format("{}: {}\n", path.empty() ? "<root>" : path, n.provenance().location());
}

void print_info(const cfg::ComposeResult& r, const std::string& what) {
  const bool all = what == "all";
  std::string out;
  auto section = [&](const std::string& title) {
    if (!out.empty()) out += "\n";
    out += title + "\n" + std::string(title.size(), '*') + "\n";
  };
  if (all) out += fmt::format("bignlp {}\n", bignlp::kVersion);
  if (all || what == "searchpath") {
    section("Config search path");
    std::size_t w = 8;
    for (const auto& s : r.search_path) w = std::max(w, s.provider.size());
    for (const auto& s : r.search_path) out += fmt::format("| {:<{}} | {} |\n", s.provider, w, s.path);
  }
  if (all || what == "defaults-tree") {
    section("Defaults Tree");
    out += cfg::format_defaults_tree(r.defaults_tree);
  }
  if (all || what == "defaults") {
    section("Defaults List");
    out += cfg::format_defaults_list(r.defaults);
  }
  if (all || what == "config") {
    section("Config");
    out += cfg::to_yaml(r.config);
  }
  if (all || what == "sources") {
    section("Sources of values");
    sources(r.config, "", out);
  }
  std::cout << out;
}

void print_explain(const cfg::ComposeResult& r, const Args& a, const std::string& key) {
  const cfg::ConfigNode* node = r.config.find_path(key);
  if (!node) {
    (void)r.config.at(key);  // throws with the closest keys
  }
  std::string out;
  if (node->is_container()) {
    out += fmt::format("{}: a {} with {} entr{}\n", key, cfg::kind_name(node->kind()), node->size(),
                       node->size() == 1 ? "y" : "ies");
  } else {
    out += fmt::format("{}: {}\n", key, cfg::scalar_to_yaml(*node));
  }
  const auto chain = [&](const cfg::Provenance& p) {
    std::string s = p.location();
    if (!p.key_path.empty() && p.key_path != key) s += fmt::format(" (as '{}')", p.key_path);
    return s;
  };
  out += "  set at:        " + chain(node->provenance()) + "\n";
  for (auto prev = node->provenance().previous; prev; prev = prev->previous) {
    out += "  which replaced: " + chain(*prev) + "\n";
  }
  if (node->has_interpolation()) {
    try {
      const auto v = cfg::select(r.config, key, resolvers_for(r, a), false);
      if (v) {
        out += "  resolves to:   " +
               (v->is_container() ? "\n    " + bignlp::replace_all(cfg::to_yaml(*v), "\n", "\n    ")
                                  : cfg::scalar_to_yaml(*v)) +
               "\n";
      }
    } catch (const bignlp::Error& e) {
      out += fmt::format("  resolves to:   <error> {}\n", e.what());
    }
  }
  if (node->is_container()) {
    out += "  entries:\n";
    for (std::size_t i = 0; i < node->size(); ++i) {
      const std::string k = node->is_dict() ? node->key_at(i) : std::to_string(i);
      out += fmt::format("    {}: {}\n", k, node->child_at(i).provenance().location());
    }
  }
  std::cout << out;
}

int run(const Args& a) {
  if (a.help) return print_help(a);
  if (a.version) {
    std::cout << "bignlp " << bignlp::kVersion << "\n";
    return 0;
  }
  const cfg::ComposeOptions options = compose_options(a);
  std::vector<cfg::SweepJob> jobs;
  if (a.multirun) {
    jobs = cfg::compose_multirun(options);
  } else {
    cfg::SweepJob job;
    job.overrides = a.overrides;
    job.result = cfg::compose(options);
    jobs.push_back(std::move(job));
  }
  std::set<std::string> warned;
  for (const auto& j : jobs)
    for (const auto& w : j.result.warnings)
      if (warned.insert(w).second) std::cerr << "Warning: " << w << "\n";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& job = jobs[i];
    if (a.multirun && (!a.cfg_type.empty() || !a.info.empty() || !a.explain.empty())) {
      std::cout << fmt::format("# job {}: {}\n", i, bignlp::join(job.overrides, " "));
    }
    if (!a.cfg_type.empty()) {
      print_cfg(job.result, a);
    } else if (!a.info.empty()) {
      print_info(job.result, a.info);
    } else if (!a.explain.empty()) {
      print_explain(job.result, a, a.explain);
    } else {
      const int rc = run_stages(job.result, a);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) a.command_line.emplace_back(argv[i]);
  a.tree_root = tree_root_of(argv[0]);
  CLI::App app{"bignlp"};
  app.set_help_flag();
  auto* config_path_opt = app.add_option("--config-path", a.config_path);
  app.add_option("--config-name", a.config_name);
  app.add_option("--config-dir", a.config_dirs)->allow_extra_args(false);
  app.add_option("-c,--cfg", a.cfg_type)->check(CLI::IsMember({"job", "hydra", "all"}));
  app.add_flag("--resolve", a.resolve);
  auto* package_opt = app.add_option("-p,--package", a.package);
  app.add_option("-i,--info", a.info)->check(CLI::IsMember({"all", "config", "defaults", "defaults-tree", "searchpath", "sources"}));
  app.add_flag("-h,--help", a.help);
  app.add_flag("--version", a.version);
  app.add_flag("-m,--multirun", a.multirun);
  app.add_flag("--force", a.force);
  app.add_flag("--explain-memory", a.explain_memory);
  bool run_flag = false;
  app.add_flag("-r,--run", run_flag);
  app.add_option("--explain", a.explain);
  app.add_option("overrides", a.overrides);
  try {
    auto args = normalize_argv(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the vector in reverse order
    app.parse(args);
    a.package_given = package_opt->count() > 0;
    // Without --config-path: conf/ here, else the conf/ of this program's tree.
    if (config_path_opt->count() == 0 && !std::filesystem::is_directory("conf") &&
        std::filesystem::is_directory(a.tree_root / "conf"))
      a.config_path = (a.tree_root / "conf").string();
  } catch (const CLI::ParseError& e) {
    std::cerr << "bignlp: " << e.what() << "\n" << usage() << "Run 'bignlp --help' for the flags and config groups.\n";
    return static_cast<int>(bignlp::ExitCode::kUsage);
  }
  try {
    return run(a);
  } catch (const bignlp::Error& e) {
    std::cerr << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp: internal error: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
