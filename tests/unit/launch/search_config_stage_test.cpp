// The search_config stage: every search preset plans (dry run) on every cluster type into one
// bignlp-hp job whose config carries the launcher section; bad settings are refused at bignlp time.
#include <gtest/gtest.h>

#include <sstream>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "compose_support.h"

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;

StageSequenceResult plan_search(std::vector<std::string> overrides, const fs::path& results) {
  overrides.insert(overrides.end(), {"stages=[search_config]", "dry_run=true"});
  auto c = testing::compose_conf(overrides);
  c.config.set_path("base_results_dir", config::ConfigNode::string(results.string()));
  StageSequenceOptions opt;
  opt.exists = [](const fs::path&) { return true; };
  DryRunSubmitter ids;
  opt.submitter = &ids;
  std::ostringstream out;
  return run_stage_sequence(c.request(), opt, Logger::capturing(), out);
}

TEST(SearchConfigStage, EveryPresetPlansOnEveryClusterType) {
  const fs::path conf = fs::path(BIGNLP_SOURCE_DIR) / "conf" / "search_config";
  int planned = 0;
  for (const auto& entry : fs::recursive_directory_iterator(conf)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string option = fs::relative(entry.path(), conf).replace_extension().string();
    for (const char* cluster : {"bcm", "bcp", "local"}) {
      TempDir tmp;
      SCOPED_TRACE(option + " on " + cluster);
      const auto r = plan_search({"search_config=" + option, std::string("cluster_type=") + cluster}, tmp.path());
      ASSERT_EQ(r.jobs.size(), 1u);
      const std::string script = read_file(r.jobs[0].script);
      EXPECT_NE(script.find("bignlp-hp"), std::string::npos);
      EXPECT_NE(script.find("--config-name"), std::string::npos);
      const auto cfg = config::load_yaml_file(r.jobs[0].config_file);
      EXPECT_EQ(cfg.at("launcher.family").as_string(), option.substr(0, option.find('/')));
      EXPECT_EQ(cfg.at("launcher.cluster_type").as_string(), cluster);
      EXPECT_NE(cfg.at("launcher.program").as_string().find("bignlp"), std::string::npos);
      EXPECT_TRUE(cfg.at("train_settings").is_dict());
      // The job sits in the search's logs folder.
      EXPECT_TRUE(r.jobs[0].config_file.string().starts_with(tmp.path().string())) << r.jobs[0].config_file;
      ++planned;
    }
  }
  EXPECT_GE(planned, 3 * 19);
}

std::string plan_error(std::vector<std::string> overrides) {
  TempDir tmp;
  try {
    plan_search(std::move(overrides), tmp.path());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(SearchConfigStage, RefusesBadSettingsNamingTheKey) {
  EXPECT_NE(plan_error({"search_config=gpt3/5b", "search_config.train_settings.num_nodes=0"})
                .find("search_config.train_settings.num_nodes=0 must be at least 1"),
            std::string::npos);
  EXPECT_NE(plan_error({"search_config=gpt3/5b", "search_config.train_settings.gpu_memory_gb=24"})
                .find("search_config.train_settings.gpu_memory_gb=24"),
            std::string::npos);
  EXPECT_NE(plan_error({"search_config=gpt3/5b", "search_config.train_settings.micro_batch_sizes=4"})
                .find("search_config.train_settings.micro_batch_sizes=4: expected 'auto', null or a list"),
            std::string::npos);
  EXPECT_NE(plan_error({"search_config=gpt3/5b", "+search_config.train_settings.tensor_parallel=[1]"})
                .find("tensor_parallel"),
            std::string::npos);
  EXPECT_NE(plan_error({"search_config=gpt3/5b", "+search_config.run_inference_hp_search=true"})
                .find("the inference search is not built yet"),
            std::string::npos);
}

std::string training_error(std::vector<std::string> o) {
  o.insert(o.end(), {"stages=[training]", "dry_run=true", "base_results_dir=/nonexistent"});
  const auto c = testing::compose_conf(o);
  StageSequenceOptions opt;
  opt.exists = [](const fs::path&) { return true; };
  DryRunSubmitter ids;
  opt.submitter = &ids;
  std::ostringstream out;
  try {
    run_stage_sequence(c.request(), opt, Logger::capturing(), out);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(MemoryPreflight, RefusesAnOversizeTrainingConfigWithTheBreakdownAndFixes) {
  const std::vector<std::string> big = {"training=gpt3/5b", "training.model.tensor_model_parallel_size=1",
                                        "training.model.micro_batch_size=16", "training.model.global_batch_size=2560"};
  auto o = big;
  o.push_back("gpu_memory_gb=80");
  const std::string m = training_error(o);
  EXPECT_NE(m.find("the estimated memory per GPU is"), std::string::npos) << m;
  EXPECT_NE(m.find("more than gpu_memory_gb=80"), std::string::npos) << m;
  EXPECT_NE(m.find("activations"), std::string::npos) << m;
  EXPECT_NE(m.find("Nearest configs that fit:"), std::string::npos) << m;
  EXPECT_NE(m.find("training.model.micro_batch_size=8"), std::string::npos) << m;
  // No limit: no check; the shipped presets fit in 80 GB.
  EXPECT_EQ(training_error(big), "");
  for (const char* preset : {"gpt3/126m", "gpt3/5b", "gpt3/20b", "gpt3/40b", "gpt3/175b"}) {
    EXPECT_EQ(training_error({std::string("training=") + preset, "gpu_memory_gb=80"}), "") << preset;
  }
  EXPECT_NE(training_error({"training=gpt3/5b", "gpu_memory_gb=0"}).find("gpu_memory_gb=0"), std::string::npos);
}

}  // namespace
}  // namespace bignlp::launch
