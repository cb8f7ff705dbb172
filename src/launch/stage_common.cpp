#include "stage_common.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/shell.h"

namespace bignlp::launch {

bool StageContext::runs_earlier(std::string_view stage) const {
  for (const auto& s : earlier_stages) {
    if (s == stage) return true;
  }
  return false;
}

void Problems::throw_if_any() const {
  if (items_.empty()) return;
  std::string msg = items_.size() == 1 ? fmt::format("{}: {}", stage_, items_.front())
                                       : fmt::format("{}: {} problems:", stage_, items_.size());
  if (items_.size() > 1) {
    for (const auto& p : items_) msg += "\n  - " + p;
  }
  msg += "\nNothing was written or submitted.";
  throw ConfigError(msg);
}

namespace detail {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool all_numbers(std::string_view s, std::size_t min_parts, std::size_t max_parts) {
  const auto parts = split(s, ':');
  if (parts.size() < min_parts || parts.size() > max_parts) return false;
  for (const auto& p : parts) {
    if (!all_digits(p)) return false;
  }
  return true;
}

}  // namespace

std::string origin_note(const config::ConfigView& c, std::string_view path) {
  const config::Provenance* p = c.provenance(path);
  if (p && (p->origin == config::Provenance::Origin::kFile || p->origin == config::Provenance::Origin::kOverride)) {
    return " (" + p->location() + ")";
  }
  return "";
}

bool is_slurm_time(std::string_view text) {
  const std::string lower = to_lower(text);
  if (lower == "unlimited" || lower == "infinite") return true;
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return all_numbers(text, 1, 3);
  return all_digits(text.substr(0, dash)) && all_numbers(text.substr(dash + 1), 1, 3);
}

void read_run_section(const config::ConfigView& c, Problems& problems, StageJobs& plan) {
  plan.run_name = c.get<std::string>("run.name");
  // Exactly what the message promises; "." and ".." would name the results folder or its parent.
  bool usable = !plan.run_name.empty() && plan.run_name != "." && plan.run_name != "..";
  for (char ch : plan.run_name) {
    usable = usable && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.');
  }
  if (!usable) {
    problems.add(fmt::format("{}{} is not usable as a job and file name: use letters, digits, '-', '_' and '.' "
                             "only (not '.' or '..' alone)",
                             c.as_override("run.name"), origin_note(c, "run.name")));
  }
  plan.results_dir = c.get<std::string>("run.results_dir");
  if (!is_single_line(plan.results_dir.string()) || plan.results_dir.string().find('%') != std::string::npos) {
    problems.add(fmt::format("{}: {} cannot hold line breaks or '%' (Slurm reads %-patterns in log names)",
                             c.full_path("run.results_dir"), quote_for_message(plan.results_dir.string())));
  }
  if (auto t = c.find<std::string>("run.time_limit"); t && !is_slurm_time(*t)) {
    problems.add(fmt::format("{} is not a Slurm time: use minutes, H:M:S or D-H:M:S (e.g. \"4:00:00\", "
                             "\"7-00:00:00\")",
                             c.as_override("run.time_limit")));
  }
  plan.config_file = plan.results_dir / (plan.run_name + "_hydra.yaml");
  plan.config = c.node();
}

StageJobs start_stage_jobs(const config::ConfigView& c, const std::string& family, Problems& problems) {
  StageJobs plan;
  plan.stage = c.prefix();
  plan.family = family;
  read_run_section(c, problems, plan);
  return plan;
}

JobSpec& add_worker_job(StageJobs& plan, const config::ConfigView& c, const StageContext& ctx, bool uses_gpus,
                        std::int64_t nodes, std::int64_t ntasks_per_node, const std::string& program,
                        const std::vector<std::string>& extra, bool bind) {
  JobSpec job = base_job(c, plan, ctx, uses_gpus);
  job.nodes = static_cast<int>(nodes);
  job.ntasks_per_node = static_cast<int>(ntasks_per_node);
  job.groups = {CommandGroup{{worker_command(plan, ctx, program, extra, bind)}}};
  plan.jobs.push_back(std::move(job));
  return plan.jobs.back();
}

JobSpec base_job(const config::ConfigView& c, const StageJobs& plan, const StageContext& ctx, bool uses_gpus) {
  const LaunchSettings& s = ctx.settings;
  JobSpec j;
  j.stage = plan.stage;
  j.name = (s.cluster_type == ClusterType::kBcm ? s.cluster.job_name_prefix : std::string()) + plan.run_name;
  j.dir = plan.results_dir;
  j.config_file = plan.config_file;
  j.time_limit = c.find<std::string>("run.time_limit").value_or("");
  j.dependency = c.find<std::string>("run.dependency").value_or("");
  j.env = s.env_vars;
  j.wandb_api_key_file = s.wandb_api_key_file;
  if (s.cluster_type == ClusterType::kBcm) {
    if (s.container) j.container = ContainerSpec{*s.container, s.pyxis_mounts()};
    j.slurm.partition = s.cluster.partition;
    j.slurm.account = s.cluster.account;
    j.slurm.exclusive = s.cluster.exclusive;
    j.slurm.mem = s.cluster.mem;
    j.slurm.overcommit = s.cluster.overcommit;
    j.slurm.srun_args = s.cluster.srun_args;
    j.slurm.extra_directives = s.cluster.extra_directives;
    if (uses_gpus) {
      j.slurm.gpus_per_node = s.cluster.gpus_per_node;
      j.slurm.gpus_per_task = s.cluster.gpus_per_task;
    }
  }
  return j;
}

Command worker_command(const StageJobs& plan, const StageContext& ctx, const std::string& program,
                       const std::vector<std::string>& extra, bool bind) {
  const LaunchSettings& s = ctx.settings;
  Command cmd;
  if (bind && s.numa.enable) {
    cmd = {s.program("bignlp-bind"),
           "--mode", std::string(to_string(s.numa.mode)),
           "--scope", std::string(to_string(s.numa.scope)),
           "--cores", std::string(to_string(s.numa.cores)),
           "--balanced", s.numa.balanced ? "true" : "false",
           "--min-cores", fmt::format("{}", s.numa.min_cores),
           "--max-cores", s.numa.max_cores ? fmt::format("{}", *s.numa.max_cores) : "null",
           "--"};
  }
  cmd.push_back(s.program(program));
  cmd.insert(cmd.end(), {"--config-path", plan.results_dir.string(), "--config-name", plan.config_file.filename().string()});
  cmd.insert(cmd.end(), extra.begin(), extra.end());
  return cmd;
}

std::string divisors_text(std::int64_t n) {
  std::vector<std::string> out;
  for (std::int64_t d = 1; d <= n && out.size() < 12; ++d) {
    if (n % d == 0) out.push_back(fmt::format("{}", d));
  }
  return join(out, ", ");
}

void check_parallel_layout(const config::ConfigView& c, const StageContext& ctx, const ParallelKeys& k,
                           Problems& problems) {
  const std::int64_t nodes = c.find<std::int64_t>(k.nodes).value_or(1);
  const std::int64_t devices = c.find<std::int64_t>(k.devices).value_or(1);
  const std::int64_t tp = c.find<std::int64_t>(k.tp).value_or(1);
  const std::int64_t pp = c.find<std::int64_t>(k.pp).value_or(1);
  if (nodes < 1) problems.add(fmt::format("{} must be at least 1", c.as_override(k.nodes)));
  if (devices < 1) problems.add(fmt::format("{} must be at least 1", c.as_override(k.devices)));
  if (tp < 1) problems.add(fmt::format("{} must be at least 1", c.as_override(k.tp)));
  if (pp < 1) problems.add(fmt::format("{} must be at least 1", c.as_override(k.pp)));
  if (nodes < 1 || devices < 1 || tp < 1 || pp < 1) return;

  const LaunchSettings& s = ctx.settings;
  if (s.cluster_type == ClusterType::kBcm && s.cluster.gpus_per_node && devices > *s.cluster.gpus_per_node) {
    problems.add(fmt::format("{} is more than the {} GPUs of a node (cluster.gpus_per_node={}). Fix: use at most {} "
                             "devices per node and more nodes, or correct cluster.gpus_per_node",
                             c.as_override(k.devices), *s.cluster.gpus_per_node, *s.cluster.gpus_per_node,
                             *s.cluster.gpus_per_node));
  }
  const std::int64_t gpus = nodes * devices;
  const std::int64_t mp = tp * pp;
  if (gpus % mp != 0) {
    problems.add(fmt::format(
        "{} x {} = {} GPUs per model replica does not divide the job's {} x {} = {} GPUs. Fix: use a multiple of "
        "{} GPUs (nodes x devices), or smaller parallel sizes",
        c.as_override(k.tp), c.as_override(k.pp), mp, c.as_override(k.nodes), c.as_override(k.devices), gpus, mp));
    return;
  }
  if (k.gbs.empty() || !c.has(k.gbs) || !c.has(k.mbs)) return;
  const std::int64_t dp = gpus / mp;
  const std::int64_t gbs = c.get<std::int64_t>(k.gbs);
  const std::int64_t mbs = c.get<std::int64_t>(k.mbs);
  if (mbs < 1 || gbs < 1) {
    problems.add(fmt::format("{} and {} must be at least 1", c.as_override(k.gbs), c.as_override(k.mbs)));
    return;
  }
  if (gbs % (mbs * dp) != 0) {
    const std::int64_t step = mbs * dp;
    const std::int64_t up = (gbs + step - 1) / step * step;
    problems.add(fmt::format(
        "{} is not a multiple of {} x the data-parallel size {} ({} GPUs / ({} x {})) = {}. Fix: set {}={}{}, or "
        "change the micro batch size or the number of GPUs",
        c.as_override(k.gbs), c.as_override(k.mbs), dp, gpus, tp, pp, step, c.full_path(k.gbs), up,
        gbs / step * step > 0 ? fmt::format(" or {}", gbs / step * step) : std::string()));
  }
}

void require_input(const config::ConfigView& c, const StageContext& ctx, StageJobs& plan, Problems& problems,
                   std::string_view key, const std::string& path, std::string_view produced_by, std::string_view hint) {
  if (!produced_by.empty() && ctx.runs_earlier(produced_by)) return;
  if (!ctx.exists || ctx.exists(path)) return;
  std::string msg = fmt::format("{}: '{}' does not exist{}", c.full_path(key), path, origin_note(c, key));
  if (!produced_by.empty()) msg += fmt::format(". Add {} before {} in stages, or ", produced_by, c.prefix());
  else msg += ". ";
  msg += std::string(hint);
  if (ctx.settings.dry_run) {
    plan.warnings.push_back(msg);
  } else {
    problems.add(msg + " (a dry run, dry_run=true, only warns)");
  }
}

}  // namespace detail
}  // namespace bignlp::launch
