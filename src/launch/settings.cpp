#include "bignlp/launch/settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "bignlp/config/view.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/shell.h"

namespace bignlp::launch {

std::string LaunchSettings::program(const std::string& name) const {
  return bin_dir ? (*bin_dir / name).string() : name;
}

std::vector<std::string> LaunchSettings::pyxis_mounts() const {
  std::vector<std::string> out;
  auto add = [&](std::string m) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(std::move(m));
  };
  for (const auto& p : {bignlp_path, data_dir, base_results_dir}) add(p.string() + ":" + p.string());
  for (const auto& m : container_mounts) add(m.find(':') == std::string::npos ? m + ":" + m : m);
  return out;
}

std::string slurm_mem(const config::ConfigNode& mem) {
  if (mem.is_null()) return "0";
  if (mem.is_int()) return mem.as_int() == 0 ? "0" : fmt::format("{}GB", mem.as_int());
  if (mem.is_float()) {
    const double gb = mem.as_double();
    if (gb == 0) return "0";
    if (gb == std::floor(gb)) return fmt::format("{}GB", static_cast<long long>(gb));
    return fmt::format("{}MB", static_cast<long long>(std::floor(gb * 1024)));
  }
  return config::scalar_text(mem).value_or("0");
}

namespace {

// Resolves one top-level key (the rest of the tree may hold interpolations that are never read).
config::ConfigNode top(const config::ConfigNode& root, const config::ResolverRegistry& resolvers,
                       std::string_view key) {
  auto v = config::select(root, key, resolvers);
  return v ? *v : config::ConfigNode();
}

std::optional<std::string> text_of(const config::ConfigNode& n, std::string_view key) {
  if (n.is_null()) return std::nullopt;
  if (auto s = config::scalar_text(n)) return s;
  throw ConfigError(fmt::format("{}: expected a single value, got a {}", key, config::kind_name(n.kind())));
}

std::string required_path(const config::ConfigNode& n, std::string_view key) {
  auto s = text_of(n, key);
  if (!s || s->empty()) throw ConfigError(fmt::format("{}: is required (a directory path)", key));
  if (!is_single_line(*s)) throw ConfigError(fmt::format("{}: a path cannot contain a line break: {}", key, quote_for_message(*s)));
  return *s;
}

bool bool_of(const config::ConfigNode& n, std::string_view key, bool fallback) {
  if (n.is_null()) return fallback;
  if (n.is_bool()) return n.as_bool();
  throw ConfigError(fmt::format("{}: expected true or false, got '{}'", key,
                                config::scalar_text(n).value_or(n.to_python_str())));
}

std::optional<int> int_of(const config::ConfigNode& n, std::string_view key) {
  if (n.is_null()) return std::nullopt;
  if (n.is_int()) return static_cast<int>(n.as_int());
  throw ConfigError(fmt::format("{}: expected an integer, got '{}'", key,
                                config::scalar_text(n).value_or(n.to_python_str())));
}

std::vector<std::string> list_of(const config::ConfigNode& n, std::string_view key) {
  std::vector<std::string> out;
  if (n.is_null()) return out;
  if (!n.is_list()) throw ConfigError(fmt::format("{}: expected a list", key));
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (n[i].is_null()) continue;
    auto s = config::scalar_text(n[i]);
    if (!s) throw ConfigError(fmt::format("{}.{}: expected a single value", key, i));
    out.push_back(*s);
  }
  return out;
}

// Where a value was set, for messages: " (override #2 'cluster.partition=...')" or " (file:line:col)".
std::string where_set(const config::ConfigNode& n) {
  const auto& p = n.provenance();
  if (p.origin == config::Provenance::Origin::kFile || p.origin == config::Provenance::Origin::kOverride) {
    return " (set at " + p.location() + ")";
  }
  return "";
}

// A value that goes on an #SBATCH line: one line, and no backslash (Slurm's #SBATCH parser reads
// it as an escape even inside quotes). Refused here, before anything is written.
std::optional<std::string> sbatch_text(const config::ConfigNode& n, std::string_view key, bool slurm) {
  auto text = text_of(n, key);
  if (!text || !slurm) return text;
  if (!is_single_line(*text)) {
    throw ConfigError(fmt::format("{}: {} cannot go on an #SBATCH line: it contains a line break{}; remove it",
                                  key, quote_for_message(*text), where_set(n)));
  }
  if (text->find('\\') != std::string::npos) {
    throw ConfigError(fmt::format("{}: {} cannot go on an #SBATCH line: Slurm reads '\\' as an escape there{}; "
                                  "remove the backslash",
                                  key, quote_for_message(*text), where_set(n)));
  }
  return text;
}

}  // namespace

LaunchSettings read_launch_settings(const config::ConfigNode& root, const config::ResolverRegistry& resolvers) {
  LaunchSettings s;
  s.stages = list_of(top(root, resolvers, "stages"), "stages");
  const auto cluster_type = text_of(top(root, resolvers, "cluster_type"), "cluster_type");
  s.cluster_type = parse_cluster_type(cluster_type.value_or("bcm"));
  s.stage_dependency = text_of(top(root, resolvers, "stage_dependency"), "stage_dependency").value_or("afterok");
  if (s.stage_dependency != "afterok" && s.stage_dependency != "afterany") {
    throw ConfigError(fmt::format("stage_dependency: '{}' is not afterok (a failed stage cancels the next) or "
                                  "afterany (the next stage runs anyway)",
                                  s.stage_dependency));
  }
  s.dry_run = bool_of(top(root, resolvers, "dry_run"), "dry_run", false);
  s.bignlp_path = required_path(top(root, resolvers, "bignlp_path"), "bignlp_path");
  if (auto b = text_of(top(root, resolvers, "bin_dir"), "bin_dir")) s.bin_dir = *b;
  s.data_dir = required_path(top(root, resolvers, "data_dir"), "data_dir");
  {
    const config::ConfigNode base = top(root, resolvers, "base_results_dir");
    s.base_results_dir = required_path(base, "base_results_dir");
    if (s.cluster_type == ClusterType::kBcm && s.base_results_dir.string().find('\\') != std::string::npos) {
      throw ConfigError(fmt::format("base_results_dir: {} holds a backslash, which Slurm's #SBATCH parser reads as an "
                                    "escape (the job's --output/--error would name another folder and its logs be "
                                    "lost){}; choose a path without '\\'",
                                    quote_for_message(s.base_results_dir.string()), where_set(base)));
    }
  }
  s.container = text_of(top(root, resolvers, "container"), "container");
  if (s.container && s.container->empty()) s.container.reset();
  s.container_mounts = list_of(top(root, resolvers, "container_mounts"), "container_mounts");
  if (auto w = text_of(top(root, resolvers, "wandb_api_key_file"), "wandb_api_key_file")) s.wandb_api_key_file = *w;
  if (auto g = int_of(top(root, resolvers, "gpu_memory_gb"), "gpu_memory_gb")) {
    if (*g < 1) throw ConfigError(fmt::format("gpu_memory_gb={}: must be at least 1 (or null: no memory check)", *g));
    s.gpu_memory_gb = static_cast<int>(*g);
  }

  const config::ConfigNode env = top(root, resolvers, "env_vars");
  if (!env.is_null()) {
    if (!env.is_dict()) throw ConfigError("env_vars: expected a mapping of variable names to values");
    for (std::size_t i = 0; i < env.size(); ++i) {
      const std::string& name = env.key_at(i);
      const config::ConfigNode& v = env.child_at(i);
      if (v.is_null()) continue;
      if (!is_env_name(name)) {
        throw ConfigError(fmt::format("env_vars.{}: not a valid environment variable name (letters, digits and '_', "
                                      "not starting with a digit)",
                                      name));
      }
      auto text = config::scalar_text(v);
      if (!text) throw ConfigError(fmt::format("env_vars.{}: expected a single value", name));
      s.env_vars.emplace_back(name, *text);
    }
  }

  const config::ConfigNode numa = top(root, resolvers, "numa_mapping");
  if (numa.is_dict()) {
    auto word = [&](std::string_view k) -> std::optional<std::string> {
      const config::ConfigNode* n = numa.find(k);
      return n ? text_of(*n, fmt::format("numa_mapping.{}", k)) : std::nullopt;
    };
    auto child = [&](std::string_view k) { const config::ConfigNode* n = numa.find(k); return n ? *n : config::ConfigNode(); };
    s.numa.enable = bool_of(child("enable"), "numa_mapping.enable", true);
    if (auto m = word("mode")) s.numa.mode = parse_numa_mode(*m);
    if (auto m = word("scope")) s.numa.scope = parse_numa_scope(*m);
    if (auto m = word("cores")) s.numa.cores = parse_numa_cores(*m);
    s.numa.balanced = bool_of(child("balanced"), "numa_mapping.balanced", true);
    s.numa.min_cores = int_of(child("min_cores"), "numa_mapping.min_cores").value_or(1);
    s.numa.max_cores = int_of(child("max_cores"), "numa_mapping.max_cores");
    if (s.numa.min_cores < 1 || (s.numa.max_cores && *s.numa.max_cores < s.numa.min_cores)) {
      throw ConfigError(fmt::format("numa_mapping: min_cores ({}) must be at least 1 and at most max_cores ({})",
                                    s.numa.min_cores, s.numa.max_cores ? fmt::format("{}", *s.numa.max_cores) : "null"));
    }
  } else {
    s.numa.enable = false;
  }

  const config::ConfigNode cluster = top(root, resolvers, "cluster");
  if (cluster.is_dict()) {
    auto child = [&](std::string_view k) { const config::ConfigNode* n = cluster.find(k); return n ? *n : config::ConfigNode(); };
    const bool slurm = s.cluster_type == ClusterType::kBcm;
    s.cluster.partition = sbatch_text(child("partition"), "cluster.partition", slurm);
    s.cluster.account = sbatch_text(child("account"), "cluster.account", slurm);
    s.cluster.exclusive = bool_of(child("exclusive"), "cluster.exclusive", true);
    s.cluster.gpus_per_task = int_of(child("gpus_per_task"), "cluster.gpus_per_task");
    s.cluster.gpus_per_node = int_of(child("gpus_per_node"), "cluster.gpus_per_node");
    s.cluster.mem = slurm_mem(child("mem"));
    if (slurm) sbatch_text(config::ConfigNode::string(s.cluster.mem).with_provenance(child("mem").provenance()),
                           "cluster.mem", true);
    s.cluster.overcommit = bool_of(child("overcommit"), "cluster.overcommit", false);
    s.cluster.job_name_prefix = sbatch_text(child("job_name_prefix"), "cluster.job_name_prefix", slurm).value_or("");
    s.cluster.srun_args = list_of(child("srun_args"), "cluster.srun_args");
    static const std::set<std::string> known = {"partition", "account", "exclusive", "gpus_per_task", "gpus_per_node",
                                                "mem", "overcommit", "job_name_prefix", "srun_args"};
    for (std::size_t i = 0; i < cluster.size(); ++i) {
      const std::string& key = cluster.key_at(i);
      if (known.count(key)) continue;
      const config::ConfigNode& v = cluster.child_at(i);
      if (v.is_null() || (v.is_bool() && !v.as_bool())) continue;
      auto text = config::scalar_text(v);
      if (!text) throw ConfigError(fmt::format("cluster.{}: an sbatch option needs a single value", key));
      sbatch_text(v, "cluster." + key, slurm);
      bool valid = !key.empty();
      for (char c : key) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
      if (!valid) throw ConfigError(fmt::format("cluster.{}: not an sbatch option name", key));
      s.cluster.extra_directives[replace_all(key, "_", "-")] = v.is_bool() ? "true" : *text;
    }
  }
  return s;
}

}  // namespace bignlp::launch
