// Config values that look like shell code -- spaces, quotes, $(...), backticks, `;` -- must reach
// the worker as data, through every renderer: the rendered Slurm, BCP and local scripts are run
// by bash (with stand-in srun and bcprun that run their command as the real ones would), and the
// local executor runs the job itself. The worker reports exactly what it received.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sstream>

#include "bignlp/core/file_io.h"
#include "bignlp/launch/process.h"
#include "bignlp/launch/shell.h"
#include "compose_support.h"
#include "test_support.h"

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;

struct Env {
  TempDir tmp{"bignlp-inject"};
  fs::path bin = tmp.path() / "bin";
  fs::path stubs = tmp.path() / "stubs";
  fs::path pwned = tmp.path() / "pwned";
  // A results folder whose name is itself hostile.
  fs::path results = tmp.path() / "res it's $(touch pwned) `touch pwned` ; x";
  std::string evil = "$(touch " + pwned.string() + ") `touch " + pwned.string() + "` 'single' \"double\" ; touch " +
                     pwned.string() + " && echo \\";
  fs::path key_file = tmp.path() / "w&b key's file";

  Env() {
    testing::worker_as(bin, "bignlp-train");
    fs::create_directories(stubs);
    // srun: drop its own options, run the command (what srun does on each node).
    write_file_atomic(stubs / "srun", "#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec \"$@\"\n", 0755);
    // bcprun: run the --cmd string with bash, as bcprun does on each node.
    write_file_atomic(stubs / "bcprun",
                      "#!/bin/bash\ncmd=\nwhile [ $# -gt 0 ]; do case $1 in --cmd) cmd=$2; shift 2;; --env) export \"$2\"; "
                      "shift 2;; *) shift;; esac; done\nexec bash -c \"$cmd\"\n",
                      0755);
    write_file_atomic(key_file, "the-secret-key\nsecond line\n");
  }

  testing::Composed compose(const std::string& cluster, bool dry) const {
    return testing::compose_conf({"stages=[training]", "training=gpt3/tiny", "cluster_type=" + cluster,
                                  std::string("dry_run=") + (dry ? "true" : "false"), "numa_mapping.enable=false",
                                  "bin_dir=" + bin.string(),
                                  "base_results_dir=" + testing::hydra_quoted(results.string()),
                                  "wandb_api_key_file=" + testing::hydra_quoted(key_file.string()),
                                  "+env_vars.BIGNLP_TEST_EVIL=" + testing::hydra_quoted(evil),
                                  "+env_vars.BIGNLP_TEST_ARGV=" + (tmp.path() / "argv").string(),
                                  "+env_vars.BIGNLP_TEST_ENV=" + (tmp.path() / "env").string()});
  }

  fs::path render(const std::string& cluster) const {
    std::ostringstream out;
    StageSequenceOptions o;
    o.exists = [](const fs::path&) { return true; };
    const auto r = run_stage_sequence(compose(cluster, true).request(), o, Logger::capturing(), out);
    return r.jobs.at(0).script;
  }

  void check_received(const std::string& how) const {
    const auto argv = testing::read_argv(tmp.path() / "argv");
    const auto dir = results / "gpt3_tiny";
    // The job reads its own copy of the config (submissions/<n>), n = 1 for the first launch.
    ASSERT_EQ(argv.size(), 4u) << how;
    EXPECT_EQ(argv[0], "--config-path") << how;
    EXPECT_EQ(fs::path(argv[1]).parent_path(), dir / "submissions") << how;
    EXPECT_EQ(argv[3], "gpt3_tiny_hydra.yaml") << how;
    EXPECT_TRUE(fs::exists(fs::path(argv[1]) / argv[3])) << how;
    const auto env = testing::read_argv(tmp.path() / "env");
    EXPECT_NE(std::find(env.begin(), env.end(), "BIGNLP_TEST_EVIL=" + evil), env.end()) << how;
    EXPECT_NE(std::find(env.begin(), env.end(), std::string("WANDB_API_KEY=the-secret-key")), env.end()) << how;
    EXPECT_FALSE(fs::exists(pwned)) << how << ": a config value was run as a command";
    EXPECT_FALSE(fs::exists(dir / "pwned")) << how << ": a config value was run as a command";
    fs::remove(tmp.path() / "argv");
    fs::remove(tmp.path() / "env");
  }
};

int run_script(const Env& e, const fs::path& script) {
  const std::string path = e.stubs.string() + ":/usr/bin:/bin";
  const CapturedRun r = run_captured({"env", "PATH=" + path, "bash", script.string()}, script.parent_path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return r.exit_code;
}

TEST(Injection, SlurmScriptPassesValuesAsData) {
  Env e;
  const fs::path script = e.render("bcm");
  EXPECT_EQ(read_file(script).find("the-secret-key"), std::string::npos) << "the W&B key was written into the script";
  run_script(e, script);
  e.check_received("slurm script");
}

TEST(Injection, BcpScriptPassesValuesAsData) {
  Env e;
  const fs::path script = e.render("bcp");
  EXPECT_EQ(read_file(script).find("the-secret-key"), std::string::npos);
  run_script(e, script);
  e.check_received("bcp script");
}

TEST(Injection, LocalScriptAndLocalExecutorPassValuesAsData) {
  Env e;
  const fs::path script = e.render("local");
  EXPECT_EQ(read_file(script).find("the-secret-key"), std::string::npos);
  run_script(e, script);
  e.check_received("local script");

  StageSequenceOptions o;
  o.exists = [](const fs::path&) { return true; };
  o.local.out_fd = o.local.err_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::ostringstream out;
  run_stage_sequence(e.compose("local", false).request(), o, Logger::capturing(), out);
  ::close(o.local.out_fd);
  e.check_received("local executor");
  for (const auto& entry : fs::recursive_directory_iterator(e.results)) {
    if (entry.is_regular_file()) {
      EXPECT_EQ(read_file(entry.path()).find("the-secret-key"), std::string::npos)
          << "the W&B key was written to " << entry.path();
    }
  }
}

}  // namespace
}  // namespace bignlp::launch
