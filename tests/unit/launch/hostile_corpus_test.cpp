// A corpus of hostile config values (shell metacharacters, quotes, newlines, #SBATCH text, a very
// long string, bytes that are not UTF-8, a NUL) rendered through every stage and every cluster
// type. Each value goes into an exported environment variable (every job exports env_vars), the
// results folder's name and, for Slurm, the partition. The launcher either refuses it with a
// bignlp error (nothing is run), or every script it writes passes `bash -n`; the local scripts are
// then run (stand-in workers) and must never run the injected text: a canary file that the text
// would create must not appear.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/launch/process.h"
#include "compose_support.h"
#include "test_support.h"

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> corpus(const std::string& canary) {
  const std::string t = "touch " + canary;
  std::string nul = "before";
  nul.push_back('\0');
  nul += "$(" + t + ")";
  return {
      "plain value",  // the baseline: every stage and cluster renders it (so refusals below are the values')
      "$(" + t + ")",
      "`" + t + "`",
      "'; " + t + "; '",
      "\"; " + t + "; \"",
      "x\n" + t + "\n",
      "p\n#SBATCH --output=" + canary + "\n" + t,
      "a && " + t + " || " + t + " | " + t + " > " + canary,
      "${IFS}$(" + t + ")${PATH:0:1}",
      "\\'\\\"\\$(" + t + ")\\",
      std::string(20000, 'x') + "$(" + t + ")",
      "\xff\xfe\xc3\x28 $(" + t + ")",
      nul,
  };
}

struct StageCase {
  std::string stage;
  std::vector<std::string> overrides;
};

const std::vector<StageCase>& stage_cases() {
  static const std::vector<StageCase> cases = {
      {"data_preparation", {"data_preparation=gpt3/demo"}},
      {"training", {"training=gpt3/tiny"}},
      {"conversion", {"conversion=gpt3/convert_gpt3"}},
      {"fine_tuning", {"fine_tuning=t5/squad"}},
      {"prompt_learning", {"prompt_learning=gpt3/squad"}},
      {"evaluation", {"evaluation=gpt3/evaluate_lambada"}},
      {"export", {"export=gpt3/export_gpt3"}},
      {"search_config", {"search_config=gpt3/tiny-search"}},
  };
  return cases;
}

const char* const kWorkers[] = {"bignlp-preprocess", "bignlp-train", "bignlp-convert", "bignlp-evaluate",
                                "bignlp-export",     "bignlp-hp",    "bignlp-bind"};

TEST(HostileCorpus, EveryStageAndClusterRefusesOrRendersInertScripts) {
  TempDir tmp("bignlp-hostile");
  const fs::path bin = tmp.path() / "bin";
  for (const char* w : kWorkers) testing::worker_as(bin, w);
  const fs::path stubs = tmp.path() / "stubs";
  fs::create_directories(stubs);
  write_file_atomic(stubs / "srun", "#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec \"$@\"\n", 0755);
  const fs::path canary = tmp.path() / "CANARY";
  int rendered = 0, refused = 0, executed = 0;
  int case_no = 0;
  for (const std::string& value : corpus(canary.string())) {
    ++case_no;
    for (const StageCase& sc : stage_cases()) {
      for (const std::string cluster : {"bcm", "bcp", "local"}) {
        SCOPED_TRACE(fmt::format("value #{}, stage {}, cluster {}", case_no, sc.stage, cluster));
        // The results folder's name carries the value too (a path cannot hold a NUL or '/').
        std::string dir_name = "res ";
        for (char c : value.substr(0, 200))
          if (c != '/' && c != '\0') dir_name.push_back(c);
        const fs::path results = tmp.path() / fmt::format("{}", case_no) / dir_name;
        std::vector<std::string> o = {"stages=[" + sc.stage + "]", "cluster_type=" + cluster, "dry_run=true",
                                      "numa_mapping.enable=false", "bin_dir=" + bin.string(),
                                      "base_results_dir=" + testing::hydra_quoted(results.string()),
                                      "+env_vars.BIGNLP_TEST_EVIL=" + testing::hydra_quoted(value)};
        if (cluster == "bcm") o.push_back("cluster.partition=" + testing::hydra_quoted(value));
        o.insert(o.end(), sc.overrides.begin(), sc.overrides.end());
        StageSequenceResult r;
        try {
          const auto composed = testing::compose_conf(o);
          StageSequenceOptions opts;
          opts.exists = [](const fs::path&) { return true; };
          std::ostringstream out;
          r = run_stage_sequence(composed.request(), opts, Logger::capturing(), out);
        } catch (const Error& e) {
          ++refused;  // refused with a bignlp error: nothing runs
          EXPECT_NE(e.exit_code(), 0);
          if (case_no == 1) ADD_FAILURE() << "the baseline value was refused: " << e.what();
          continue;
        }
        ASSERT_FALSE(r.jobs.empty());
        ++rendered;
        for (const auto& job : r.jobs) {
          const CapturedRun syntax = run_captured({"bash", "-n", job.script.string()}, tmp.path());
          EXPECT_EQ(syntax.exit_code, 0) << job.script << "\n" << syntax.err;
          if (cluster != "local") continue;
          const std::string path = stubs.string() + ":/usr/bin:/bin";
          const CapturedRun run = run_captured({"env", "PATH=" + path, "bash", job.script.string()}, tmp.path());
          EXPECT_EQ(run.exit_code, 0) << job.script << "\n" << run.out << run.err;
          ++executed;
        }
        EXPECT_FALSE(fs::exists(canary)) << "a config value was run as a command";
        fs::remove(canary);
      }
    }
  }
  // The corpus must exercise both outcomes and actually run local scripts.
  EXPECT_GT(rendered, 0);
  EXPECT_GT(refused, 0);
  EXPECT_GT(executed, 0);
  RecordProperty("rendered", rendered);
  RecordProperty("refused", refused);
  RecordProperty("executed", executed);
}

}  // namespace
}  // namespace bignlp::launch
