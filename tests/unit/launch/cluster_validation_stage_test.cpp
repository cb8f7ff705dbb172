// The cluster_validation stage: bad settings are refused at bignlp time, naming the keys; the
// job's task runs bignlp-validate once with every setting passed on (the goldens show the scripts).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "compose_support.h"

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

StageSequenceResult plan(std::vector<std::string> overrides, const fs::path& results = "/nonexistent/bignlp-cv") {
  overrides.insert(overrides.end(), {"stages=[cluster_validation]", "dry_run=true", "cluster.partition=hpc"});
  auto c = testing::compose_conf(overrides);
  c.config.set_path("base_results_dir", config::ConfigNode::string(results.string()));
  StageSequenceOptions opt;
  opt.exists = [](const fs::path&) { return true; };
  DryRunSubmitter ids;
  opt.submitter = &ids;
  std::ostringstream out;
  return run_stage_sequence(c.request(), opt, Logger::capturing(), out);
}

std::string plan_error(std::vector<std::string> overrides) {
  try {
    plan(std::move(overrides));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ClusterValidationStage, RefusesBadSettingsNamingTheKeys) {
  EXPECT_THAT(plan_error({"cluster_validation.nodes=8", "cluster_validation.nodelist=\"hpc-pg0-[1-8,10]\""}),
              HasSubstr("cluster_validation.nodes=8 but cluster_validation.nodelist=hpc-pg0-[1-8,10] names 9 node(s)"));
  EXPECT_THAT(plan_error({"cluster_validation.nodes=2", "cluster_validation.nodelist=\"n[2-1]\""}),
              HasSubstr("cluster_validation.nodelist: '2-1' in 'n[2-1]' is a reversed range"));
  EXPECT_THAT(plan_error({"cluster_validation.nodes=2"}), HasSubstr("cluster_validation.nodelist is required"));
  EXPECT_THAT(plan_error({"cluster_validation.nodelist=\"n[1-2]\""}), HasSubstr("cluster_validation.nodes is required"));
  EXPECT_THAT(plan_error({"cluster_validation.nodes=2", "cluster_validation.nodelist=\"n[1-2]\"",
                          "cluster_validation.dcgm_level=5"}),
              HasSubstr("cluster_validation.dcgm_level=5"));
  EXPECT_THAT(plan_error({"cluster_validation.nodes=2", "cluster_validation.nodelist=\"n[1-2]\"",
                          "cluster_validation.backend=mpi"}),
              HasSubstr("cluster_validation.backend=mpi: use nccl"));
  EXPECT_THAT(plan_error({"cluster_validation.dcgm=false", "cluster_validation.nccl=false"}), HasSubstr("nothing to do"));
  EXPECT_THAT(plan_error({"cluster_type=bcp", "cluster_validation.nodes=2", "cluster_validation.nodelist=\"n[1-2]\""}),
              HasSubstr("cluster_type=bcp"));
}

TEST(ClusterValidationStage, OneTaskRunsTheChecksOnAllNodesOfTheList) {
  TempDir tmp("bignlp-cv");
  const auto r = plan({"cluster_type=bcm", "cluster_validation.nodes=3", "cluster_validation.nodelist=\"n[01-03]\"",
                       "cluster_validation.nccl=false", "cluster_validation.dcgm_level=3"},
                      tmp.path());
  ASSERT_EQ(r.jobs.size(), 1u);
  const std::string script = read_file(r.jobs[0].script);
  EXPECT_THAT(script, HasSubstr("#SBATCH --nodes=3\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --nodelist='n[01-03]'\n"));
  EXPECT_THAT(script, HasSubstr("\nsrun --nodes=1 --ntasks=1 --ntasks-per-node=1 "));
  for (const char* want : {" --nodes=3 ", " '--nodelist=n[01-03]' ", " --partition=hpc ", " --dcgm ", " --runner=srun ",
                           " --dcgm-level=3"}) {
    EXPECT_THAT(script, HasSubstr(want));
  }
  EXPECT_EQ(script.find("--backend"), std::string::npos);  // no bandwidth test
}

}  // namespace
}  // namespace bignlp::launch
