#include "bignlp/launch/stage_sequence.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include <memory>
#include <ostream>
#include <set>

#include "bignlp/config/repository.h"
#include "bignlp/config/view.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/process.h"
#include "bignlp/launch/settings.h"
#include "bignlp/launch/shell.h"
#include "bignlp/launch/stage_registry.h"
#include "stages.h"
#include "stage_common.h"

namespace bignlp::launch {

namespace fs = std::filesystem;

std::string format_command_line(const std::vector<std::string>& argv) {
  std::vector<std::string> words;
  for (const auto& a : argv) words.push_back(shell_quote(a));
  return join(words, " \\\n  ") + "\n";
}

void register_launch_resolvers(config::ResolverRegistry& resolvers, const fs::path& root, const fs::path& bin_dir) {
  auto constant = [&](const std::string& name, const std::string& value) {
    resolvers.add(
        name,
        [name, value](const std::vector<config::ConfigNode>& args, config::ResolverContext&) {
          if (!args.empty()) throw ConfigError(fmt::format("{} takes no arguments: write ${{{}:}}", name, name));
          return config::ConfigNode::string(value);
        },
        true);
  };
  constant("bignlp_root", root.string());
  constant("bignlp_bin_dir", (bin_dir.empty() ? root / "build" / "bin" : bin_dir).string());
}

StageSequenceResult run_composed(const config::ComposeResult& composed, const std::vector<std::string>& command_line,
                                 const fs::path& tree_root, const fs::path& bin_dir,
                                 const StageSequenceOptions& options, const Logger& logger, std::ostream& out) {
  config::ResolverRegistry resolvers = composed.resolvers();
  register_launch_resolvers(resolvers, tree_root, bin_dir);
  std::map<std::string, std::string> choices;
  for (const auto& c : composed.choices) {
    if (c.option) choices[c.key] = *c.option;
  }
  std::vector<fs::path> dirs;
  for (const auto& e : composed.search_path) {
    if (!e.dir.empty()) dirs.push_back(e.dir);
  }
  auto list_options = [dirs](const std::string& group) -> std::vector<std::string> {
    if (dirs.empty()) return {};
    try {
      const config::ConfigRepository repo(dirs.front(), {dirs.begin() + 1, dirs.end()});
      return repo.group_options_recursive(group);
    } catch (const ConfigError&) {
      return {};
    }
  };
  const StageSequenceRequest request{composed.config, resolvers, std::move(choices), command_line, list_options};
  return run_stage_sequence(request, options, logger, out);
}

fs::path bignlp_tree_root(const fs::path& program) {
  const fs::path bin = program.parent_path();
  const fs::path build = bin.parent_path();
  if (std::error_code ec; fs::exists(build.parent_path() / "conf" / "config.yaml", ec)) return build.parent_path();
  return build;
}

namespace {

// Strings that still hold "${" after resolution came from escapes ("\${"); keep them literal for
// the worker that loads the saved config.
void escape_literal_interpolations(config::ConfigNode& node) {
  if (node.is_string() && node.as_string().find("${") != std::string::npos) {
    node = config::ConfigNode::string(replace_all(node.as_string(), "${", "\\${")).with_provenance(node.provenance());
    return;
  }
  for (auto& child : node.children()) escape_literal_interpolations(child);
}

std::unique_ptr<Submitter> make_submitter(const LaunchSettings& s, const StageSequenceOptions& o,
                                          const Logger& logger) {
  if (s.dry_run) return std::make_unique<DryRunSubmitter>();
  switch (s.cluster_type) {
    case ClusterType::kBcm: return std::make_unique<SlurmSubmitter>(logger, o.sbatch);
    case ClusterType::kBcp: return std::make_unique<BcpSubmitter>(logger);
    case ClusterType::kLocal: return std::make_unique<LocalSubmitter>(logger, o.first_local_id, o.local);
  }
  throw ConfigError("unknown cluster type");
}

// "training", or "data_preparation/download" for a step of a stage with several jobs.
std::string job_label(const std::string& stage, const std::string& step) {
  return step.empty() ? stage : stage + "/" + step;
}

std::string submitted_summary(const std::vector<LaunchedJob>& jobs) {
  std::vector<std::string> ids;
  std::vector<std::string> lines;
  for (const auto& j : jobs) {
    if (j.job_id.empty()) continue;
    ids.push_back(j.job_id);
    lines.push_back(fmt::format("{} (job {})", job_label(j.stage, j.step), j.job_id));
  }
  if (ids.empty()) return "";
  return fmt::format("\nAlready submitted: {}. Cancel them with: scancel {}", join(lines, ", "), join(ids, " "));
}

// The local executor starts every task on this machine: a cluster-sized job is a mistake.
void check_local_size(const StageJobs& plan) {
  for (const JobSpec& job : plan.jobs) {
    for (const CommandGroup& g : job.groups) {
      const int tasks = job.group_tasks(g);
      if (tasks > kMaxLocalTasks) {
        throw ConfigError(fmt::format(
            "{}: cluster_type=local runs every task on this machine, and this job has {} tasks ({} nodes x {} per "
            "node; at most {} run locally). Use a small layout (e.g. training=gpt3/tiny, or fewer nodes and "
            "devices), or a cluster (cluster_type=bcm)",
            plan.stage, tasks, g.nodes > 0 ? g.nodes : job.nodes,
            g.ntasks_per_node > 0 ? g.ntasks_per_node : job.ntasks_per_node, kMaxLocalTasks));
      }
    }
  }
}

// The `stages` list as a whole: each stage once, and one stage per invocation on BCP.
void check_stage_list(const LaunchSettings& settings) {
  std::set<std::string> seen;
  for (const auto& s : settings.stages) {
    if (!seen.insert(s).second) {
      throw ConfigError(fmt::format("stages: '{}' is listed twice; list each stage once", s));
    }
  }
  if (settings.cluster_type == ClusterType::kBcp && settings.stages.size() > 1) {
    throw ConfigError(fmt::format(
        "cluster_type=bcp runs one stage per bignlp invocation (each Base Command Platform job runs bignlp once, "
        "inside the job), but stages=[{}] lists {}. Run one BCP job per stage, e.g. stages=[{}]",
        join(settings.stages, ","), settings.stages.size(), settings.stages.front()));
  }
}

// A stage listed in `stages` whose config group chose nothing: an unknown stage, or the fix.
[[noreturn]] void throw_unchosen_stage(const StageSequenceRequest& request, const std::string& name) {
  std::string options_text;
  if (request.list_options) {
    const auto opts = request.list_options(name);
    if (!opts.empty()) options_text = fmt::format(" Options: {}.", join(opts, ", "));
  }
  if (std::find(known_stages().begin(), known_stages().end(), name) == known_stages().end()) {
    make_stage(name, "");  // throws: unknown stage, with suggestions
  }
  throw ConfigError(fmt::format("stages lists '{}', but no {} config is chosen ({}: null). Choose one, e.g. "
                                "{}=<family>/<name>.{}",
                                name, name, name, name, options_text));
}

// Stage `index` of the list: its config resolved (all of it, so a bad interpolation anywhere in it
// fails here), checked and turned into jobs. Writes nothing.
StageJobs plan_stage(const StageSequenceRequest& request, const LaunchSettings& settings, std::size_t index,
                     const std::function<bool(const fs::path&)>& exists) {
  const std::string& name = settings.stages[index];
  const config::ConfigNode* node = request.config.find(name);
  if (!node || node->is_null()) throw_unchosen_stage(request, name);
  const auto choice = request.choices.count(name) ? request.choices.at(name) : std::string();
  const config::ConfigView stage_config = config::ConfigView(request.config, &request.resolvers).sub(name);
  const std::string family = model_family(name, choice, stage_config.node());
  const auto stage = make_stage(name, family);
  const auto earlier = settings.stages.begin() + static_cast<long>(index);
  const StageContext ctx{settings, {settings.stages.begin(), earlier}, exists};
  StageJobs plan = stage->plan(stage_config, family, ctx);
  if (settings.cluster_type == ClusterType::kLocal) check_local_size(plan);
  if (settings.cluster_type == ClusterType::kBcm && plan.results_dir.string().find('\\') != std::string::npos) {
    throw ConfigError(fmt::format("{}{}: the results folder holds a backslash, which Slurm's #SBATCH parser reads as "
                                  "an escape (the job's --output/--error would name another folder and its logs be "
                                  "lost); choose a path and run.name without '\\'. Nothing was written or submitted.",
                                  stage_config.as_override("run.results_dir"),
                                  detail::origin_note(stage_config, "run.results_dir")));
  }
  escape_literal_interpolations(plan.config);
  return plan;
}

// What job `k` of a stage waits for: the previous stage's last job (`stage_dependency`), else the
// job before it in the stage (aftercorr between arrays over the same indices, afterok otherwise).
void chain_to_previous(JobSpec& job, const StageJobs& plan, std::size_t k, const std::string& prev_id,
                       const LaunchSettings& settings) {
  if (prev_id.empty()) return;
  if (k == 0) {
    job.dependency = settings.stage_dependency + ":" + prev_id;
    return;
  }
  const JobSpec& prev_job = plan.jobs[k - 1];
  const bool same_array = job.array && prev_job.array && job.array->indices == prev_job.array->indices;
  job.dependency = (same_array ? "aftercorr:" : "afterok:") + prev_id;
}

// An exclusive lock on a results folder that a local run writes (<results_dir>/.bignlp.lock,
// flock). The descriptor is deliberately inherited by the jobs' processes: a worker that outlives
// its launcher keeps the folder locked, so a relaunch cannot train beside it.
class FolderLocks {
 public:
  FolderLocks() = default;
  FolderLocks(const FolderLocks&) = delete;
  FolderLocks& operator=(const FolderLocks&) = delete;
  ~FolderLocks() {
    for (int fd : fds_) ::close(fd);
  }
  void lock(const fs::path& dir, const std::string& stage) {
    if (!locked_.insert(fs::absolute(dir).lexically_normal().string()).second) return;  // two stages, one folder
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IoError(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
    const fs::path path = dir / ".bignlp.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);  // no O_CLOEXEC: see above
    if (fd < 0) throw IoError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      std::string holder;
      char buf[256] = {};
      if (::pread(fd, buf, sizeof buf - 1, 0) > 0) holder = std::string(trim(buf));
      ::close(fd);
      throw ConfigError(fmt::format(
          "{}: the results folder {} is in use by another local run ({}); two runs in one folder would write the "
          "same checkpoints and logs. Wait for it to end or stop it (its workers keep the folder locked), or "
          "choose another run.name. Nothing was written.",
          stage, dir.string(), holder.empty() ? "lock held" : holder));
    }
    const std::string who = fmt::format("bignlp pid {}", ::getpid());
    if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, who.data(), who.size(), 0) < 0) {
      // the holder's name is only for the message
    }
    fds_.push_back(fd);
  }

 private:
  std::vector<int> fds_;
  std::set<std::string> locked_;
};

// Slurm: a job of the same name submitted from the same folder (sbatch runs in the job folder, so
// squeue's %Z is it) that is still queued or running would share the folder, its checkpoints and
// logs with the new one: refused unless --force. When squeue cannot run, a warning says so.
void check_queued_jobs(const std::vector<StageJobs>& plans, const StageSequenceOptions& options,
                       StageSequenceResult& result, const Logger& logger) {
  for (const StageJobs& plan : plans) {
    for (const JobSpec& job : plan.jobs) {
      const CapturedRun q = run_captured({options.squeue, "-h", "-n", job.name, "-o", "%i|%T|%Z"});
      if (q.exit_code != 0) {
        result.warnings.push_back(fmt::format("{}: could not ask squeue whether a job '{}' is still queued in {} ({})",
                                              plan.stage, job.name, job.dir.string(), trim(q.err)));
        logger.warn("{}", result.warnings.back());
        return;
      }
      for (const auto& line : split(q.out, '\n')) {
        const auto f = split(trim(line), '|');
        if (f.size() < 3 || fs::path(f[2]).lexically_normal() != job.dir.lexically_normal()) continue;
        throw ConfigError(fmt::format(
            "{}: job {} ('{}', {}) was submitted from {} and has not finished; a second job there would write the "
            "same checkpoints and logs. Wait for it, cancel it (scancel {}), choose another run.name, or pass "
            "--force to submit anyway. Nothing was written or submitted.",
            plan.stage, f[0], job.name, f[1], job.dir.string(), f[0]));
      }
    }
  }
}

// A new folder <results_dir>/submissions/<n> (n = 1, 2, ...), created atomically so that two
// launches at once get different ones.
fs::path new_submission_dir(const fs::path& results_dir) {
  const fs::path root = results_dir / "submissions";
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", root.string(), ec.message()));
  std::uint64_t n = 1;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos && name.size() < 18) {
      n = std::max<std::uint64_t>(n, std::stoull(name) + 1);
    }
  }
  for (;; ++n) {
    const fs::path dir = root / std::to_string(n);
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw IoError(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
  }
}

// Points the job's commands (`--config-path <results_dir>`) and script header at the copy.
void read_config_from(JobSpec& job, const fs::path& results_dir, const fs::path& copy_dir) {
  for (auto& group : job.groups) {
    for (auto& cmd : group.commands) {
      for (std::size_t i = 0; i + 1 < cmd.size(); ++i) {
        if (cmd[i] == "--config-path" && cmd[i + 1] == results_dir.string()) cmd[i + 1] = copy_dir.string();
      }
    }
  }
  job.config_file = copy_dir / job.config_file.filename();
}

// Writes one stage's config, command line and scripts, and submits its jobs in order, each after
// `prev_id` (the job before it); records them in `result` and returns the last job's id.
std::string submit_stage(const StageJobs& plan, std::string prev_id, const StageSequenceRequest& request,
                         const LaunchSettings& settings, const StageSequenceOptions& options, Submitter& submitter,
                         StageSequenceResult& result, std::ostream& out) {
  std::error_code ec;
  fs::create_directories(plan.results_dir / "results", ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", (plan.results_dir / "results").string(), ec.message()));
  const std::string yaml = config::to_yaml(plan.config);
  write_file_atomic(plan.config_file, yaml);
  // The jobs read a copy of their own: a later launch into this folder (or one refused after this
  // point) rewrites <run.name>_hydra.yaml, never the config a pending job will read.
  const fs::path copy_dir = new_submission_dir(plan.results_dir);
  write_file_atomic(copy_dir / plan.config_file.filename(), yaml);
  write_file_atomic(copy_dir / "launcher_cmd.log", format_command_line(request.command_line));
  write_file_atomic(plan.results_dir / "launcher_cmd.log", format_command_line(request.command_line));
  out << fmt::format("{}: config written to {}\n", plan.stage, plan.config_file.string()) << std::flush;

  for (std::size_t k = 0; k < plan.jobs.size(); ++k) {
    JobSpec job = plan.jobs[k];
    read_config_from(job, plan.results_dir, copy_dir);
    chain_to_previous(job, plan, k, prev_id, settings);
    const std::string label = job_label(plan.stage, job.step);
    if (submitter.synchronous() && !settings.dry_run) out << fmt::format("{}: running here\n", label) << std::flush;
    const std::string planned = submitter.planned_id(job);
    const std::string text =
        render_script(settings.cluster_type, job, options.templates, planned.empty() ? "0" : planned);
    const fs::path script = job.script_path();
    write_file_atomic(script, text, 0755);
    std::string id;
    try {
      id = submitter.submit(job);
    } catch (const SubmitError& e) {
      fs::remove(script, ec);  // no script is left that looks submitted
      throw SubmitError(fmt::format("{}: {}{}", label, e.what(), submitted_summary(result.jobs)));
    } catch (const JobFailedError& e) {
      throw JobFailedError(fmt::format("{}: {}", label, e.what()), e.exit_code());
    }
    if (settings.dry_run) {
      out << fmt::format("{}: script written to {}\n", label, script.string());
    } else if (submitter.synchronous()) {
      out << fmt::format("{}: ran {}{}\n", label, script.string(), id.empty() ? "" : " as job " + id);
    } else {
      out << fmt::format("{}: submitted {} as job {}\n", label, script.string(), id);
    }
    out << std::flush;
    result.jobs.push_back({plan.stage, job.step, id, script, plan.config_file});
    prev_id = id;
  }
  return prev_id;
}

}  // namespace

StageSequenceResult run_stage_sequence(const StageSequenceRequest& request, const StageSequenceOptions& options,
                                       const Logger& logger, std::ostream& out) {
  const LaunchSettings settings = read_launch_settings(request.config, request.resolvers);
  StageSequenceResult result;
  result.dry_run = settings.dry_run;
  if (settings.stages.empty()) {
    out << "stages is empty: nothing to do\n";
    return result;
  }
  check_stage_list(settings);
  if (options.explain_memory) {
    for (const auto& name : settings.stages) {
      const config::ConfigNode* node = request.config.find(name);
      if (!node || node->is_null()) throw_unchosen_stage(request, name);
      out << detail::explain_stage_memory(config::ConfigView(request.config, &request.resolvers).sub(name), settings);
    }
    return result;
  }
  if (settings.container && settings.cluster_type == ClusterType::kLocal) {
    result.warnings.push_back(fmt::format("container={} is not used with cluster_type=local: the programs run "
                                          "directly on this machine",
                                          *settings.container));
  }

  // 1. Plan and validate every stage; nothing is written until all of them are valid.
  std::vector<StageJobs> plans;
  const auto exists = options.exists ? options.exists : [](const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec);
  };
  for (std::size_t i = 0; i < settings.stages.size(); ++i) {
    StageJobs plan = plan_stage(request, settings, i, exists);
    for (const auto& w : plan.warnings) result.warnings.push_back(fmt::format("{}: {}", plan.stage, w));
    plans.push_back(std::move(plan));
  }
  for (const auto& w : result.warnings) logger.warn("{}", w);

  // Every script is rendered once before anything is written: a value the renderer refuses stops
  // the launch with nothing on disk (rendering is pure; the real render below uses real ids).
  {
    const std::string trial_id = "1";
    std::string prev;
    for (const StageJobs& plan : plans) {
      for (std::size_t k = 0; k < plan.jobs.size(); ++k) {
        JobSpec job = plan.jobs[k];
        chain_to_previous(job, plan, k, prev, settings);
        try {
          render_script(settings.cluster_type, job, options.templates, trial_id);
        } catch (const RenderError& e) {
          throw RenderError(fmt::format("{}: {}\nNothing was written or submitted.", job_label(plan.stage, job.step),
                                        e.what()));
        }
        prev = trial_id;
      }
    }
  }

  if (settings.cluster_type == ClusterType::kBcm && !settings.dry_run && !options.force) {
    check_queued_jobs(plans, options, result, logger);
  }

  // A local run owns its results folders while it runs.
  FolderLocks locks;
  if (settings.cluster_type == ClusterType::kLocal && !settings.dry_run) {
    for (const StageJobs& plan : plans) locks.lock(plan.results_dir, plan.stage);
  }

  // 2. Write, render and submit, stage by stage.
  std::unique_ptr<Submitter> own = options.submitter ? nullptr : make_submitter(settings, options, logger);
  Submitter& submitter = options.submitter ? *options.submitter : *own;
  if (settings.dry_run) out << "Dry run: the scripts and configs are written, nothing is submitted.\n" << std::flush;
  std::string prev_id;
  for (const StageJobs& plan : plans) {
    prev_id = submit_stage(plan, prev_id, request, settings, options, submitter, result, out);
  }
  return result;
}

}  // namespace bignlp::launch
