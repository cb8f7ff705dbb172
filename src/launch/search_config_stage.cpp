// The search_config stage: one job (one task, no GPU) running bignlp-hp on the search preset
// (docs/hp_tool.md). bignlp-hp launches the candidates back through `bignlp` with this
// invocation's cluster settings, which the stage writes into the config's `launcher:` section.
#include <fmt/format.h>

#include "bignlp/hp/search.h"
#include "stage_common.h"
#include "stages.h"

namespace bignlp::launch::detail {
namespace {

// The training config the base config starts from (unless train_settings.custom_config is set).
std::string default_template(const std::string& family) {
  if (family == "t5") return "t5/220m.yaml";
  if (family == "mt5") return "mt5/3b.yaml";
  return "gpt3/5b.yaml";
}

class SearchConfigStage final : public Stage {
 public:
  StageJobs plan(const config::ConfigView& c, const std::string& family, const StageContext& ctx) const override {
    Problems p(c.prefix());
    const LaunchSettings& s = ctx.settings;
    StageJobs plan;
    plan.stage = c.prefix();
    plan.family = family;
    hp::TrainSettings ts;
    try {
      ts = hp::read_train_settings(c, family);
    } catch (const ConfigError& e) {
      p.add(e.what());
      p.throw_if_any();
    }
    if (c.get_or<bool>("run_inference_hp_search", false)) {
      p.add(fmt::format("{}: the inference search is not built yet (it needs bignlp's inference engine). Fix: {}=false",
                        c.as_override("run_inference_hp_search"), c.full_path("run_inference_hp_search")));
    }
    if (!c.get_or<bool>("run_training_hp_search", true)) {
      p.add(fmt::format("{}: with the inference search not built, the stage has nothing to do",
                        c.as_override("run_training_hp_search")));
    }
    (void)c.find<config::ConfigNode>("inference_settings");  // the inference search's (not built)
    p.throw_if_any();

    plan.run_name = fmt::format("search_config_{}_{}b", family, ts.size_label.empty() ? "auto" : ts.size_label);
    plan.results_dir = ts.logs;
    plan.config_file = plan.results_dir / (plan.run_name + "_hydra.yaml");
    plan.config = c.node();
    config::ConfigNode launcher = config::ConfigNode::dict();
    auto text = [](std::string v) { return config::ConfigNode::string(std::move(v)); };
    launcher.set("family", text(family));
    launcher.set("template", text((s.bignlp_path / "conf" / "training" / default_template(family)).string()));
    launcher.set("program", text(s.program("bignlp")));
    launcher.set("hp_program", text(s.program("bignlp-hp")));
    launcher.set("cluster_type", text(std::string(to_string(s.cluster_type))));
    launcher.set("job_name_prefix", text(s.cluster.job_name_prefix));
    if (s.cluster.partition) launcher.set("partition", text(*s.cluster.partition));
    if (s.cluster.account) launcher.set("account", text(*s.cluster.account));
    config::ConfigNode overrides = config::ConfigNode::list();
    auto add = [&](const std::string& o) { overrides.push_back(text(o)); };
    add(fmt::format("cluster_type={}", to_string(s.cluster_type)));
    add("bignlp_path=" + s.bignlp_path.string());
    add("data_dir=" + s.data_dir.string());
    if (s.bin_dir) add("bin_dir=" + s.bin_dir->string());
    if (s.container) add("container=" + *s.container);
    if (s.cluster.partition) add("cluster.partition=" + *s.cluster.partition);
    if (s.cluster.account) add("cluster.account=" + *s.cluster.account);
    add(fmt::format("numa_mapping.enable={}", s.numa.enable ? "true" : "false"));
    launcher.set("overrides", std::move(overrides));
    plan.config.set("launcher", std::move(launcher));

    JobSpec job = base_job(c, plan, ctx, /*uses_gpus=*/false);
    job.nodes = 1;
    job.ntasks_per_node = 1;
    job.groups = {CommandGroup{{Command{s.program("bignlp-hp"), "--config-path", plan.results_dir.string(),
                                        "--config-name", plan.config_file.filename().string()}}}};
    plan.jobs.push_back(std::move(job));
    return plan;
  }
};

}  // namespace

std::unique_ptr<Stage> make_search_config_stage() { return std::make_unique<SearchConfigStage>(); }

}  // namespace bignlp::launch::detail
