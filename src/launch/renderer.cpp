#include "bignlp/launch/renderer.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/shell.h"
#include "bignlp/launch/template.h"

namespace bignlp::launch {

ClusterType parse_cluster_type(std::string_view text) {
  if (text == "bcm") return ClusterType::kBcm;
  if (text == "bcp") return ClusterType::kBcp;
  if (text == "local") return ClusterType::kLocal;
  throw ConfigError(fmt::format("cluster_type: '{}' is not a cluster type; choose bcm (Slurm), bcp (Base Command "
                                "Platform) or local (this machine)",
                                text));
}

std::string_view to_string(ClusterType type) {
  switch (type) {
    case ClusterType::kBcm: return "bcm";
    case ClusterType::kBcp: return "bcp";
    case ClusterType::kLocal: return "local";
  }
  return "?";
}

namespace {

// Text that ends up on a line of its own in a script header or comment, or in a Slurm file
// pattern, must be one line (and, for Slurm patterns, free of '%').
void check_job_text(const JobSpec& job) {
  auto check = [&](std::string_view what, std::string_view value) {
    if (!is_single_line(value)) {
      throw RenderError(fmt::format("job '{}': the {} contains a line break, which a job script cannot hold: {}",
                                    job.name, what, quote_for_message(value)));
    }
  };
  check("job name", job.name);
  check("results directory", job.dir.string());
  check("config file path", job.config_file.string());
  check("time limit", job.time_limit);
  check("dependency", job.dependency);
  if (job.name.find('%') != std::string::npos || job.dir.string().find('%') != std::string::npos) {
    throw RenderError(fmt::format("job '{}' in '{}': '%' is not allowed in job names and results directories "
                                  "(Slurm expands %-patterns in log file names); rename it",
                                  job.name, job.dir.string()));
  }
  for (const auto& [key, value] : job.env) {
    if (!is_env_name(key)) {
      throw RenderError(fmt::format("job '{}': '{}' is not a valid environment variable name (letters, digits and "
                                    "'_', not starting with a digit); fix the key in env_vars",
                                    job.name, key));
    }
  }
  for (const auto& group : job.groups) {
    if (group.commands.empty()) throw RenderError(fmt::format("job '{}': a command group has no command", job.name));
    for (const auto& cmd : group.commands) {
      if (cmd.empty() || cmd.front().empty()) {
        throw RenderError(fmt::format("job '{}': a command has no program", job.name));
      }
    }
  }
}

std::string directive(std::string_view key, std::string_view value) {
  if (!is_single_line(value)) {
    throw RenderError(fmt::format("#SBATCH --{}: the value contains a line break: {}", key, quote_for_message(value)));
  }
  return fmt::format("--{}={}", key, shell_quote(value));
}

std::string env_assignment(const std::string& key, const std::string& value) {
  return key + "=" + shell_quote(value);
}

// Commands of one task: a single command as its words, several as `bash -c` with `set -e`.
std::string task_command(const CommandGroup& group) {
  if (group.commands.size() == 1) return shell_join(group.commands.front());
  std::string inner = "set -e";
  for (const auto& cmd : group.commands) inner += "\n" + shell_join(cmd);
  return "bash -c " + shell_quote(inner);
}

TemplateContext common_context(const JobSpec& job) {
  TemplateContext ctx;
  ctx.set("stage", job.stage);
  ctx.set("step", job.step);
  ctx.set("name", job.name);
  ctx.set("config_file", job.config_file.string());
  std::vector<TemplateContext> exports;
  for (const auto& [key, value] : job.env) {
    exports.push_back(TemplateContext().set("assignment", env_assignment(key, value)));
  }
  const bool has_setup = !exports.empty() || job.wandb_api_key_file.has_value();
  ctx.set("exports", std::move(exports));
  ctx.set("wandb_key_file", job.wandb_api_key_file ? shell_quote(job.wandb_api_key_file->string()) : std::string());
  ctx.set("has_setup", has_setup);
  return ctx;
}

}  // namespace

std::vector<std::string> slurm_directives(const JobSpec& job) {
  std::map<std::string, std::string> kv;  // key -> full directive text, sorted by key
  auto add = [&](const std::string& key, const std::string& value) { kv[key] = directive(key, value); };
  auto flag = [&](const std::string& key) { kv[key] = "--" + key; };

  add("job-name", job.name);
  add("nodes", fmt::format("{}", job.nodes));
  add("ntasks-per-node", fmt::format("{}", job.ntasks_per_node));
  if (!job.time_limit.empty()) add("time", job.time_limit);
  if (!job.dependency.empty()) {
    add("dependency", job.dependency);
    // A dependency that can never be satisfied (its job failed) cancels this job instead of
    // leaving it pending forever.
    if (job.dependency.starts_with("afterok") || job.dependency.starts_with("aftercorr")) {
      add("kill-on-invalid-dep", "yes");
    }
  }
  if (job.array) add("array", job.array->slurm_value());
  add("output", job.log_pattern(false));
  add("error", job.log_pattern(true));
  const SlurmOptions& s = job.slurm;
  if (s.partition) add("partition", *s.partition);
  if (s.account) add("account", *s.account);
  if (s.exclusive) flag("exclusive");
  if (s.overcommit) flag("overcommit");
  if (s.gpus_per_node) add("gpus-per-node", fmt::format("{}", *s.gpus_per_node));
  if (s.gpus_per_task) add("gpus-per-task", fmt::format("{}", *s.gpus_per_task));
  if (s.cpus_per_task) add("cpus-per-task", fmt::format("{}", *s.cpus_per_task));
  if (s.mem) add("mem", *s.mem);
  for (const auto& [key, value] : s.extra_directives) {
    if (key.empty() || !is_single_line(key) || key.find_first_of(" \t=") != std::string::npos) {
      throw RenderError(fmt::format("job '{}': '{}' is not a valid sbatch option name", job.name, key));
    }
    if (value == "true") {
      flag(key);
    } else {
      add(key, value);
    }
  }
  std::vector<std::string> out;
  for (auto& [key, text] : kv) out.push_back(std::move(text));
  return out;
}

std::string slurm_srun_line(const JobSpec& job, const CommandGroup& group) {
  std::vector<std::string> words = {"srun"};
  if (job.group_tasks(group) > 1) words.push_back("--kill-on-bad-exit=1");
  if (group.nodes > 0) words.push_back(fmt::format("--nodes={}", group.nodes));
  if (group.ntasks_per_node > 0) {
    const int nodes = group.nodes > 0 ? group.nodes : job.nodes;
    words.push_back(fmt::format("--ntasks={}", nodes * group.ntasks_per_node));
    words.push_back(fmt::format("--ntasks-per-node={}", group.ntasks_per_node));
  }
  if (job.container) {
    for (const auto& m : job.container->mounts) {
      if (m.find(',') != std::string::npos) {
        throw RenderError(fmt::format("container mount '{}' contains ',', which pyxis reads as a separator; "
                                      "choose a path without commas",
                                      m));
      }
    }
    words.push_back("--container-image=" + job.container->image);
    if (!job.container->mounts.empty()) words.push_back("--container-mounts=" + join(job.container->mounts, ","));
    words.push_back("--no-container-mount-home");
  }
  for (const auto& a : job.slurm.srun_args) words.push_back(a);
  return shell_join(words) + " " + task_command(group);
}

std::string render_slurm_script(const JobSpec& job, const TemplateSet& templates) {
  check_job_text(job);
  TemplateContext ctx = common_context(job);
  std::vector<TemplateContext> directives;
  for (auto& d : slurm_directives(job)) directives.push_back(TemplateContext().set("directive", std::move(d)));
  ctx.set("directives", std::move(directives));
  std::vector<TemplateContext> groups;
  for (std::size_t i = 0; i < job.groups.size(); ++i) {
    groups.push_back(TemplateContext()
                         .set("index", fmt::format("{}", i + 1))
                         .set("command", slurm_srun_line(job, job.groups[i])));
  }
  ctx.set("groups", std::move(groups));
  return render_template(templates.slurm, ctx, "slurm.sbatch.tmpl");
}

namespace {

// Exports Slurm's task variables from whatever launcher started the task on BCP (bcprun sets
// RANK/LOCAL_RANK/WORLD_SIZE; mpirun sets OMPI_COMM_WORLD_*), so workers read one set of names.
std::string bcp_rank_prelude(int nodes, int ntasks_per_node) {
  return fmt::format(
      "export SLURM_PROCID=\"${{RANK:-${{OMPI_COMM_WORLD_RANK:-0}}}}\" "
      "SLURM_LOCALID=\"${{LOCAL_RANK:-${{OMPI_COMM_WORLD_LOCAL_RANK:-0}}}}\" "
      "SLURM_NTASKS=\"${{WORLD_SIZE:-${{OMPI_COMM_WORLD_SIZE:-{}}}}}\" "
      "SLURM_NNODES={} SLURM_JOB_NUM_NODES={} SLURM_NTASKS_PER_NODE={} "
      "SLURM_NODEID=\"${{GROUP_RANK:-${{NGC_ARRAY_INDEX:-0}}}}\" SLURM_JOB_ID=\"${{NGC_JOB_ID:-0}}\"",
      nodes * ntasks_per_node, nodes, nodes, ntasks_per_node);
}

}  // namespace

std::string render_bcp_script(const JobSpec& job, const TemplateSet& templates) {
  check_job_text(job);
  TemplateContext ctx = common_context(job);
  const std::string log = shell_quote((job.dir / fmt::format("log-{}_", job.name)).string()) +
                          "\"${NGC_JOB_ID:-0}\".out";
  std::vector<TemplateContext> groups;
  for (std::size_t i = 0; i < job.groups.size(); ++i) {
    const CommandGroup& g = job.groups[i];
    const int nodes = g.nodes > 0 ? g.nodes : job.nodes;
    const int npernode = g.ntasks_per_node > 0 ? g.ntasks_per_node : job.ntasks_per_node;
    std::vector<std::string> words = {"bcprun", "--nnodes", fmt::format("{}", nodes), "--npernode",
                                      fmt::format("{}", npernode)};
    if (job.bcp.launcher) {
      words.push_back("--launcher");
      words.push_back(*job.bcp.launcher);
    }
    std::string line = shell_join(words);
    for (const auto& [key, value] : job.env) line += " --env " + shell_quote(key + "=" + value);
    if (job.wandb_api_key_file) line += " --env \"WANDB_API_KEY=${WANDB_API_KEY}\"";
    line += " --env \"BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}\"";
    std::string cmd = bcp_rank_prelude(nodes, npernode);
    if (g.commands.size() == 1) {
      cmd += "; exec " + shell_join(g.commands.front());
    } else {
      for (const auto& c : g.commands) cmd += " && " + shell_join(c);
    }
    line += " --cmd " + shell_quote(cmd);
    groups.push_back(TemplateContext().set("index", fmt::format("{}", i + 1)).set("command", line).set("log", log));
  }
  ctx.set("groups", std::move(groups));
  return render_template(templates.bcp, ctx, "bcp.sh.tmpl");
}

int local_master_port(const std::string& job_id) {
  std::uint64_t v = 0;
  for (char c : job_id) {
    if (c >= '0' && c <= '9') v = (v * 10 + static_cast<std::uint64_t>(c - '0')) % 1000000007ULL;
  }
  return 20000 + static_cast<int>(v % 30000);
}

std::vector<std::pair<std::string, std::string>> local_task_env(const JobSpec& job, const CommandGroup& group,
                                                                int step, int task, const std::string& job_id,
                                                                const std::string& array_job_id, int array_index) {
  const int nodes = group.nodes > 0 ? group.nodes : job.nodes;
  const int per_node = group.ntasks_per_node > 0 ? group.ntasks_per_node : job.ntasks_per_node;
  const int ntasks = nodes * per_node;
  const auto s = [](auto v) { return fmt::format("{}", v); };
  std::vector<std::pair<std::string, std::string>> env = {
      {"SLURM_JOB_ID", job_id},
      {"SLURM_JOBID", job_id},
      {"SLURM_JOB_NAME", job.name},
      {"SLURM_NNODES", s(nodes)},
      {"SLURM_JOB_NUM_NODES", s(nodes)},
      {"SLURM_NTASKS", s(ntasks)},
      {"SLURM_NPROCS", s(ntasks)},
      {"SLURM_NTASKS_PER_NODE", s(per_node)},
      {"SLURM_PROCID", s(task)},
      {"SLURM_LOCALID", s(task % per_node)},
      {"SLURM_NODEID", s(task / per_node)},
      {"SLURM_STEP_ID", s(step)},
      {"SLURM_JOB_NODELIST", "localhost"},
      {"SLURM_NODELIST", "localhost"},
      {"SLURMD_NODENAME", "localhost"},
      {"SLURM_SUBMIT_DIR", job.dir.string()},
  };
  if (array_index >= 0 && job.array) {
    const auto& idx = job.array->indices;
    env.insert(env.end(), {{"SLURM_ARRAY_JOB_ID", array_job_id},
                           {"SLURM_ARRAY_TASK_ID", s(array_index)},
                           {"SLURM_ARRAY_TASK_COUNT", s(idx.size())},
                           {"SLURM_ARRAY_TASK_MIN", s(idx.front())},
                           {"SLURM_ARRAY_TASK_MAX", s(idx.back())}});
  }
  env.insert(env.end(), {{"RANK", s(task)},
                         {"LOCAL_RANK", s(task % per_node)},
                         {"WORLD_SIZE", s(ntasks)},
                         {"LOCAL_WORLD_SIZE", s(per_node)},
                         {"GROUP_RANK", s(task / per_node)},
                         {"MASTER_ADDR", "127.0.0.1"},
                         {"MASTER_PORT", s(local_master_port(array_job_id.empty() ? job_id : array_job_id))}});
  return env;
}

std::string render_local_script(const JobSpec& job, const TemplateSet& templates, const std::string& job_id) {
  check_job_text(job);
  TemplateContext ctx = common_context(job);
  ctx.set("job_id", job_id);
  std::vector<int> elements = job.array ? job.array->indices : std::vector<int>{-1};
  std::vector<TemplateContext> runs;
  std::uint64_t base = 0;
  for (char c : job_id) {
    if (c < '0' || c > '9') throw RenderError(fmt::format("local job id '{}' is not a number", job_id));
    base = base * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (std::size_t e = 0; e < elements.size(); ++e) {
    const int index = elements[e];
    const std::string element_id = index >= 0 ? fmt::format("{}", base + e) : job_id;
    for (std::size_t g = 0; g < job.groups.size(); ++g) {
      const CommandGroup& group = job.groups[g];
      const int ntasks = job.group_tasks(group);
      std::vector<TemplateContext> tasks;
      for (int t = 0; t < ntasks; ++t) {
        std::string env;
        for (const auto& [k, v] : local_task_env(job, group, static_cast<int>(g), t, element_id, job_id, index)) {
          env += (env.empty() ? "" : " ") + env_assignment(k, v);
        }
        std::string body;
        if (group.commands.size() == 1) {
          body = "exec " + shell_join(group.commands.front());
        } else {
          for (const auto& c : group.commands) body += (body.empty() ? "" : "\n") + shell_join(c);
        }
        tasks.push_back(TemplateContext()
                            .set("task", fmt::format("{}", t))
                            .set("env", env)
                            .set("body", body)
                            .set("out", shell_quote(job.log_path(false, job_id, index).string()))
                            .set("err", shell_quote(job.log_path(true, job_id, index).string())));
      }
      std::string title = fmt::format("command {}: {} task{}", g + 1, ntasks, ntasks == 1 ? "" : "s");
      if (index >= 0) title += fmt::format(", array element {}", index);
      runs.push_back(TemplateContext().set("title", title).set("tasks", std::move(tasks)));
    }
  }
  ctx.set("runs", std::move(runs));
  return render_template(templates.local, ctx, "local.sh.tmpl");
}

std::string render_script(ClusterType type, const JobSpec& job, const TemplateSet& templates,
                          const std::string& job_id) {
  switch (type) {
    case ClusterType::kBcm: return render_slurm_script(job, templates);
    case ClusterType::kBcp: return render_bcp_script(job, templates);
    case ClusterType::kLocal: return render_local_script(job, templates, job_id);
  }
  throw RenderError("unknown cluster type");
}

}  // namespace bignlp::launch
