// Renderers: directive order and content, srun with and without pyxis, BCP and local scripts,
// and refusal of values that cannot be put in a script safely.
#include "bignlp/launch/renderer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace bignlp::launch {
namespace {

JobSpec training_job() {
  JobSpec j;
  j.stage = "training";
  j.name = "bignlp-gpt3_5b";
  j.dir = "/r/gpt3_5b";
  j.config_file = "/r/gpt3_5b/gpt3_5b_hydra.yaml";
  j.nodes = 20;
  j.ntasks_per_node = 8;
  j.time_limit = "7-00:00:00";
  j.dependency = "singleton";
  j.env = {{"TRANSFORMERS_OFFLINE", "1"}, {"CUDA_DEVICE_MAX_CONNECTIONS", "1"}};
  j.groups = {CommandGroup{{{"/b/bignlp-train", "--config-path", "/r/gpt3_5b", "--config-name", "gpt3_5b_hydra.yaml"}}}};
  j.slurm.exclusive = true;
  j.slurm.gpus_per_node = 8;
  j.slurm.mem = "0";
  return j;
}

TEST(SlurmDirectives, SortedWithBareFlags) {
  EXPECT_EQ(slurm_directives(training_job()),
            (std::vector<std::string>{"--dependency=singleton", "--error=/r/gpt3_5b/log-bignlp-gpt3_5b_%j.err",
                                      "--exclusive", "--gpus-per-node=8", "--job-name=bignlp-gpt3_5b", "--mem=0",
                                      "--nodes=20", "--ntasks-per-node=8",
                                      "--output=/r/gpt3_5b/log-bignlp-gpt3_5b_%j.out", "--time=7-00:00:00"}));
}

TEST(SlurmDirectives, ArraysDependenciesAndOptionalKeys) {
  JobSpec j = training_job();
  j.array = ArraySpec{{0, 3, 5, 6, 7}, 30};
  j.dependency = "aftercorr:41";
  j.slurm.partition = "batch";
  j.slurm.account = "my account";
  j.slurm.overcommit = true;
  j.slurm.extra_directives = {{"qos", "high"}, {"requeue", "true"}};
  const auto d = slurm_directives(j);
  const std::string all = join(d, "\n");
  EXPECT_NE(all.find("--array=0,3,5-7%30"), std::string::npos);
  EXPECT_NE(all.find("--output=/r/gpt3_5b/log-bignlp-gpt3_5b_%A_%a.out"), std::string::npos);
  EXPECT_NE(all.find("--dependency=aftercorr:41\n--error"), std::string::npos);
  EXPECT_NE(all.find("--kill-on-invalid-dep=yes"), std::string::npos);
  EXPECT_NE(all.find("--account='my account'"), std::string::npos);
  EXPECT_NE(all.find("--partition=batch"), std::string::npos);
  EXPECT_NE(all.find("--overcommit\n"), std::string::npos);
  EXPECT_NE(all.find("--requeue\n"), std::string::npos);
  EXPECT_NE(all.find("--qos=high"), std::string::npos);
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
}

TEST(SlurmSrun, PlainWithoutContainer) {
  const JobSpec j = training_job();
  EXPECT_EQ(slurm_srun_line(j, j.groups[0]),
            "srun --kill-on-bad-exit=1 /b/bignlp-train --config-path /r/gpt3_5b --config-name gpt3_5b_hydra.yaml");
}

TEST(SlurmSrun, PyxisFlagsWithContainer) {
  JobSpec j = training_job();
  j.container = ContainerSpec{"nvcr.io/x/bignlp:1", {"/b:/b", "/d:/d", "/r:/r", "/scratch:/mnt/scratch:ro"}};
  j.slurm.srun_args = {"--mpi=pmix"};
  EXPECT_EQ(slurm_srun_line(j, j.groups[0]),
            "srun --kill-on-bad-exit=1 --container-image=nvcr.io/x/bignlp:1 "
            "--container-mounts=/b:/b,/d:/d,/r:/r,/scratch:/mnt/scratch:ro --no-container-mount-home --mpi=pmix "
            "/b/bignlp-train --config-path /r/gpt3_5b --config-name gpt3_5b_hydra.yaml");
  j.container->mounts.push_back("/a,b:/c");
  EXPECT_THROW(slurm_srun_line(j, j.groups[0]), RenderError);
}

TEST(SlurmSrun, SeveralCommandsRunInBashWithSetE) {
  JobSpec j = training_job();
  j.ntasks_per_node = 1;
  j.nodes = 1;
  j.groups[0].commands.push_back({"echo", "done it's"});
  EXPECT_EQ(slurm_srun_line(j, j.groups[0]),
            "srun bash -c 'set -e\n/b/bignlp-train --config-path /r/gpt3_5b --config-name gpt3_5b_hydra.yaml\n"
            "echo '\"'\"'done it'\"'\"'\"'\"'\"'\"'\"'\"'s'\"'\"''");
}

TEST(SlurmScript, WholeScript) {
  JobSpec j = training_job();
  j.wandb_api_key_file = "/home/u/wandb key";
  EXPECT_EQ(render_slurm_script(j, TemplateSet::builtin()),
            "#!/bin/bash\n"
            "# bignlp training job 'bignlp-gpt3_5b', rendered from /r/gpt3_5b/gpt3_5b_hydra.yaml.\n"
            "# Change the config and run bignlp again rather than editing this file.\n"
            "\n"
            "# Parameters\n"
            "#SBATCH --dependency=singleton\n"
            "#SBATCH --error=/r/gpt3_5b/log-bignlp-gpt3_5b_%j.err\n"
            "#SBATCH --exclusive\n"
            "#SBATCH --gpus-per-node=8\n"
            "#SBATCH --job-name=bignlp-gpt3_5b\n"
            "#SBATCH --mem=0\n"
            "#SBATCH --nodes=20\n"
            "#SBATCH --ntasks-per-node=8\n"
            "#SBATCH --output=/r/gpt3_5b/log-bignlp-gpt3_5b_%j.out\n"
            "#SBATCH --time=7-00:00:00\n"
            "\n"
            "set -e\n"
            "# the rendezvous store's secret: a fresh random token for this job, in every task's environment\n"
            "export BIGNLP_STORE_SECRET=\"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\"\n"
            "\n"
            "# setup\n"
            "export TRANSFORMERS_OFFLINE=1\n"
            "export CUDA_DEVICE_MAX_CONNECTIONS=1\n"
            "WANDB_API_KEY=\"$(head -n 1 -- '/home/u/wandb key')\"  # read at run time, never stored here\n"
            "export WANDB_API_KEY\n"
            "\n"
            "# command 1\n"
            "srun --kill-on-bad-exit=1 /b/bignlp-train --config-path /r/gpt3_5b --config-name gpt3_5b_hydra.yaml\n");
}

TEST(SlurmScript, RefusesLineBreaksAndPercentWhereSlurmReadsThem) {
  JobSpec j = training_job();
  j.name = "a\nb";
  EXPECT_THROW(render_slurm_script(j, TemplateSet::builtin()), RenderError);
  j = training_job();
  j.dir = "/r/50%";
  EXPECT_THROW(render_slurm_script(j, TemplateSet::builtin()), RenderError);
  j = training_job();
  j.time_limit = "1:00\n#SBATCH --x";
  EXPECT_THROW(render_slurm_script(j, TemplateSet::builtin()), RenderError);
  j = training_job();
  j.env.emplace_back("BAD NAME", "1");
  EXPECT_THROW(render_slurm_script(j, TemplateSet::builtin()), RenderError);
  j = training_job();
  j.slurm.account = "acct\n#SBATCH --evil";
  EXPECT_THROW(render_slurm_script(j, TemplateSet::builtin()), RenderError);
}

TEST(BcpScript, BcprunPerGroupWithRankPreludeAndLog) {
  JobSpec j = training_job();
  j.nodes = 2;
  const std::string s = render_bcp_script(j, TemplateSet::builtin());
  EXPECT_NE(s.find("set -eo pipefail\n"), std::string::npos);
  EXPECT_NE(s.find("bcprun --nnodes 2 --npernode 8 --env TRANSFORMERS_OFFLINE=1 --env CUDA_DEVICE_MAX_CONNECTIONS=1 "
                   "--env \"BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}\" --cmd 'export SLURM_PROCID=\"${RANK:-${OMPI_COMM_WORLD_RANK:-0}}\""),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("SLURM_NTASKS_PER_NODE=8 "), std::string::npos);
  EXPECT_NE(s.find("; exec /b/bignlp-train --config-path /r/gpt3_5b --config-name gpt3_5b_hydra.yaml' 2>&1 | tee -a "
                   "/r/gpt3_5b/log-bignlp-gpt3_5b_\"${NGC_JOB_ID:-0}\".out\n"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("#SBATCH"), std::string::npos);
}

TEST(LocalEnv, SlurmAndTorchrunVariables) {
  JobSpec j = training_job();
  j.nodes = 2;
  j.ntasks_per_node = 2;
  const auto env = local_task_env(j, j.groups[0], 0, 3, "500", "", -1);
  std::map<std::string, std::string> m(env.begin(), env.end());
  EXPECT_EQ(m["SLURM_PROCID"], "3");
  EXPECT_EQ(m["SLURM_LOCALID"], "1");
  EXPECT_EQ(m["SLURM_NODEID"], "1");
  EXPECT_EQ(m["SLURM_NTASKS"], "4");
  EXPECT_EQ(m["SLURM_NNODES"], "2");
  EXPECT_EQ(m["SLURM_NTASKS_PER_NODE"], "2");
  EXPECT_EQ(m["SLURM_JOB_ID"], "500");
  EXPECT_EQ(m["SLURM_JOB_NAME"], "bignlp-gpt3_5b");
  EXPECT_EQ(m["RANK"], "3");
  EXPECT_EQ(m["LOCAL_RANK"], "1");
  EXPECT_EQ(m["WORLD_SIZE"], "4");
  EXPECT_EQ(m["MASTER_ADDR"], "127.0.0.1");
  EXPECT_EQ(m["MASTER_PORT"], std::to_string(local_master_port("500")));
  EXPECT_EQ(m.count("SLURM_ARRAY_TASK_ID"), 0u);
  j.array = ArraySpec{{3, 5}, 2};
  const auto arr = local_task_env(j, j.groups[0], 0, 0, "601", "600", 5);
  std::map<std::string, std::string> a(arr.begin(), arr.end());
  EXPECT_EQ(a["SLURM_ARRAY_TASK_ID"], "5");
  EXPECT_EQ(a["SLURM_ARRAY_JOB_ID"], "600");
  EXPECT_EQ(a["SLURM_ARRAY_TASK_COUNT"], "2");
  EXPECT_EQ(a["SLURM_ARRAY_TASK_MIN"], "3");
  EXPECT_EQ(a["SLURM_ARRAY_TASK_MAX"], "5");
  EXPECT_EQ(a["SLURM_JOB_ID"], "601");
}

TEST(LocalScript, OneProcessPerTaskWithLogsPerElement) {
  JobSpec j = training_job();
  j.nodes = 1;
  j.ntasks_per_node = 2;
  j.array = ArraySpec{{0, 3}, 1};
  const std::string s = render_local_script(j, TemplateSet::builtin(), "77");
  EXPECT_NE(s.find("# command 1: 2 tasks, array element 3\n"), std::string::npos);
  EXPECT_NE(s.find(">>/r/gpt3_5b/log-bignlp-gpt3_5b_77_3.out 2>>/r/gpt3_5b/log-bignlp-gpt3_5b_77_3.err &\n"),
            std::string::npos);
  EXPECT_NE(s.find("SLURM_ARRAY_TASK_ID=3"), std::string::npos);
  EXPECT_NE(s.find("SLURM_JOB_ID=78 "), std::string::npos);
  EXPECT_NE(s.find("wait_all \"$pid_0\" \"$pid_1\"\n"), std::string::npos);
  EXPECT_THROW(render_local_script(j, TemplateSet::builtin(), "x1"), RenderError);
}

TEST(ClusterType, ParsesAndNamesChoices) {
  EXPECT_EQ(parse_cluster_type("bcm"), ClusterType::kBcm);
  EXPECT_EQ(parse_cluster_type("local"), ClusterType::kLocal);
  try {
    parse_cluster_type("slurm");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("choose bcm (Slurm), bcp (Base Command Platform) or local"), std::string::npos);
  }
}

}  // namespace
}  // namespace bignlp::launch

namespace bignlp::launch {
namespace {

// The rendezvous store's secret: every script makes a fresh random token at run time (never a
// fixed one in the file, which others may read) and exports it before the tasks start.
TEST(StoreSecret, EveryScriptExportsAFreshTokenBeforeItsTasks) {
  const std::string line = "export BIGNLP_STORE_SECRET=\"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\"\n";
  JobSpec j = training_job();
  for (const std::string& s : {render_slurm_script(j, TemplateSet::builtin()), render_bcp_script(j, TemplateSet::builtin()),
                               render_local_script(j, TemplateSet::builtin(), "5")}) {
    const auto at = s.find(line);
    ASSERT_NE(at, std::string::npos) << s;
    EXPECT_LT(at, s.find("# command 1")) << s;
  }
}

TEST(StoreSecret, TasksOfOneLocalScriptShareATokenAndRunsDiffer) {
  TempDir tmp;
  JobSpec j = training_job();
  j.dir = tmp.path();
  j.nodes = 1;
  j.ntasks_per_node = 2;
  j.env.clear();
  j.groups = {CommandGroup{{{"bash", "-c", "printf '%s' \"$BIGNLP_STORE_SECRET\" > \"" + tmp.path().string() +
                                               "/secret.$SLURM_PROCID.$SLURM_JOB_ID\""}}}};
  for (const char* id : {"1", "2"}) {
    write_file_atomic(tmp.path() / "job.sh", render_local_script(j, TemplateSet::builtin(), id));
    ASSERT_EQ(std::system(("bash " + (tmp.path() / "job.sh").string()).c_str()), 0);
  }
  const std::string a0 = read_file(tmp.path() / "secret.0.1"), a1 = read_file(tmp.path() / "secret.1.1");
  const std::string b0 = read_file(tmp.path() / "secret.0.2");
  EXPECT_TRUE(std::regex_match(a0, std::regex("[0-9a-f]{32}"))) << a0;
  EXPECT_EQ(a0, a1);
  EXPECT_NE(a0, b0);
}

}  // namespace
}  // namespace bignlp::launch
