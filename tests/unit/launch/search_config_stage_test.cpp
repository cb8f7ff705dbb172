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

}  // namespace
}  // namespace bignlp::launch
