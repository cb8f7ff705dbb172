// The stage sequence on the shipped configs: validation before anything is written, the files and
// scripts it writes, dependencies, and the local executor end to end.
#include "bignlp/launch/stage_sequence.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "compose_support.h"
#include "test_support.h"

namespace bignlp::launch {
namespace {

using testing::compose_conf;

bool always(const std::filesystem::path&) { return true; }

StageSequenceResult run(const testing::Composed& c, std::ostream& out, Submitter* submitter = nullptr,
                   std::function<bool(const std::filesystem::path&)> exists = always) {
  StageSequenceOptions o;
  o.exists = std::move(exists);
  o.submitter = submitter;
  return run_stage_sequence(c.request({"bignlp", "stages=[training]"}), o, Logger::capturing(), out);
}

TEST(StageSequence, DryRunWritesConfigScriptAndCommandLine) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true",
                               "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  const StageSequenceResult r = run(c, out);
  ASSERT_EQ(r.jobs.size(), 1u);
  const auto dir = tmp.path() / "gpt3_5b";
  EXPECT_EQ(r.jobs[0].script, dir / "bignlp-gpt3_5b_submission.sh");
  EXPECT_EQ(r.jobs[0].config_file, dir / "gpt3_5b_hydra.yaml");
  EXPECT_NE(out.str().find("training: config written to " + (dir / "gpt3_5b_hydra.yaml").string()), std::string::npos);
  EXPECT_NE(out.str().find("training: script written to " + (dir / "bignlp-gpt3_5b_submission.sh").string()),
            std::string::npos);
  const std::string yaml = read_file(dir / "gpt3_5b_hydra.yaml");
  EXPECT_EQ(yaml.find("${"), std::string::npos) << "unresolved interpolation left";
  EXPECT_NE(yaml.find("ffn_hidden_size: 16384"), std::string::npos);
  EXPECT_NE(yaml.find("explicit_log_dir: " + (dir / "results").string()), std::string::npos);
  const std::string script = read_file(dir / "bignlp-gpt3_5b_submission.sh");
  EXPECT_NE(script.find("#SBATCH --nodes=20\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --dependency=singleton\n"), std::string::npos);
  EXPECT_NE(script.find("export CUDA_DEVICE_MAX_CONNECTIONS=1\n"), std::string::npos);
  EXPECT_NE(script.find("bignlp-train --config-path " + (dir / "submissions" / "1").string() +
                        " --config-name gpt3_5b_hydra.yaml"),
            std::string::npos);
  EXPECT_EQ(read_file(dir / "launcher_cmd.log"), "bignlp \\\n  'stages=[training]'\n");
  EXPECT_TRUE(std::filesystem::is_directory(dir / "results"));
  EXPECT_FALSE(std::filesystem::exists(dir / "launcher.log"));
}

TEST(StageSequence, OtherClusterKeysBecomeSbatchOptions) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[training]", "dry_run=true", "+cluster.qos=high", "+cluster.requeue=true",
                               "+cluster.comment=null", "+cluster.exclude_nodes=false",
                               "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  const auto r = run(c, out);
  const std::string script = read_file(r.jobs.at(0).script);
  EXPECT_NE(script.find("#SBATCH --qos=high\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --requeue\n"), std::string::npos);
  EXPECT_EQ(script.find("comment"), std::string::npos);
  EXPECT_EQ(script.find("exclude"), std::string::npos);
}

TEST(StageSequence, InvalidConfigWritesNothing) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[data_preparation,training]", "training=gpt3/5b", "dry_run=true",
                               "training.model.global_batch_size=1000", "training.model.tensor_model_parallel_size=3",
                               "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  try {
    run(c, out);
    FAIL() << "accepted an impossible layout";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("training: 2 problems:"), std::string::npos) << m;
    EXPECT_NE(m.find("training.model.tensor_model_parallel_size=3 x training.model.pipeline_model_parallel_size=1 = 3 "
                     "GPUs per model replica does not divide the job's training.trainer.num_nodes=20 x "
                     "training.trainer.devices=8 = 160 GPUs"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("training.model.num_attention_heads=32 is not divisible by "
                     "training.model.tensor_model_parallel_size=3"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("Nothing was written or submitted."), std::string::npos);
  }
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "files were written for an invalid stage sequence";
}

// Values the scripts cannot hold are refused before anything is written, naming the key and the
// override that set it, with exit status 1 (config) or 4 (render) and an empty results folder.
struct Refusal {
  std::string message;
  int exit_code = 0;
};
Refusal refusal(const std::vector<std::string>& overrides, const std::filesystem::path& results) {
  std::vector<std::string> all = {"stages=[training]", "training=gpt3/5b", "dry_run=true",
                                  "base_results_dir=" + results.string()};
  all.insert(all.end(), overrides.begin(), overrides.end());
  std::ostringstream out;
  try {
    run(compose_conf(all), out);
  } catch (const Error& e) {
    return {e.what(), e.exit_code()};
  }
  ADD_FAILURE() << "accepted: " << overrides.back();
  return {};
}

TEST(StageSequence, SbatchInjectionIsRefusedBeforeWritingAndNamesTheKeyAndOverride) {
  TempDir tmp;
  for (const char* key : {"cluster.partition", "cluster.account", "cluster.job_name_prefix", "+cluster.reservation"}) {
    const std::string o = std::string(key) + "='p\n#SBATCH --uid=0'";
    const Refusal r = refusal({o}, tmp.path());
    const std::string bare = key[0] == '+' ? key + 1 : key;
    EXPECT_EQ(r.exit_code, 1) << r.message;
    EXPECT_EQ(r.message.rfind(bare + ": ", 0), 0u) << r.message;
    EXPECT_NE(r.message.find("line break"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("override #"), std::string::npos) << r.message;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << key << ": files were written";
  }
}

TEST(StageSequence, ARefusedRenderWritesNothing) {
  // run.dependency reaches only the renderer, which refuses the line break: still nothing written.
  TempDir tmp;
  const Refusal r = refusal({"training.run.dependency='afterok:1\n#SBATCH --uid=0'"}, tmp.path());
  EXPECT_EQ(r.exit_code, 4) << r.message;
  EXPECT_NE(r.message.find("line break"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("Nothing was written or submitted."), std::string::npos) << r.message;
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "files were written for a refused render";
}

// The keys bignlp-train reads are typed and range-checked at launch with the worker's schema
// (config/worker_keys.h): a bad value fails here, before the queue wait, and nothing is written.
TEST(StageSequence, BadWorkerKeysAreRefusedAtLaunchNamingTheKeyAndOverride) {
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"training.trainer.max_steps=abc", "training.trainer.max_steps=abc (override #"},
      {"training.trainer.max_steps=-5", "training.trainer.max_steps=-5 (override #"},
      {"training.trainer.max_steps=2.5", "training.trainer.max_steps=2.5 (override #"},
      {"training.model.micro_batch_size=0", "training.model.micro_batch_size=0 (override #"},
      {"training.model.optim.lr=-1e-4", "training.model.optim.lr=-0.0001 (override #"},
      {"training.model.hidden_dropout=1.5", "training.model.hidden_dropout=1.5 (override #"},
      {"training.model.optim.sched.warmup_steps=oops", "training.model.optim.sched.warmup_steps=oops (override #"},
  };
  for (const auto& [override_text, expected] : cases) {
    const Refusal r = refusal({override_text}, tmp.path());
    EXPECT_EQ(r.exit_code, 1) << r.message;
    EXPECT_NE(r.message.find(expected), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("must be"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("Nothing was written or submitted."), std::string::npos) << r.message;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << override_text << ": files were written";
  }
  // Warm-up plus constant steps beyond max_steps: the cross-key rule names all three.
  const Refusal r = refusal({"training.trainer.max_steps=100", "training.model.optim.sched.warmup_steps=80",
                             "training.model.optim.sched.constant_steps=30"},
                            tmp.path());
  EXPECT_EQ(r.exit_code, 1) << r.message;
  for (const char* part : {"training.model.optim.sched.warmup_steps=80 (override #",
                           "training.model.optim.sched.constant_steps=30 (override #", "= 110 warm-up + constant steps "
                           "exceed training.trainer.max_steps=100 (override #"})
    EXPECT_NE(r.message.find(part), std::string::npos) << part << "\n" << r.message;
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(StageSequence, BackslashesInSlurmPathsAreRefused) {
  TempDir tmp;
  for (const std::vector<std::string>& o : std::vector<std::vector<std::string>>{
           {"base_results_dir=" + (tmp.path() / "a\\b").string()},
           {"training.run.results_dir=" + (tmp.path() / "x\\y").string()},
           {"cluster.partition=a\\b"}}) {
    const Refusal r = refusal(o, tmp.path());
    EXPECT_EQ(r.exit_code, 1) << r.message;
    EXPECT_NE(r.message.find("backslash"), std::string::npos) << r.message;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << o.front();
  }
  // The local executor reads no #SBATCH line: a backslash is fine there.
  std::ostringstream out;
  const auto c = compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true", "cluster_type=local",
                               "training.trainer.num_nodes=1", "training.trainer.devices=1",
                               "training.model.tensor_model_parallel_size=1", "training.model.pipeline_model_parallel_size=1",
                               "base_results_dir=" + (tmp.path() / "a\\b").string()});
  EXPECT_NO_THROW(run(c, out));
}

TEST(StageSequence, RunNameIsLettersDigitsDashUnderscoreDotOnly) {
  TempDir tmp;
  for (const char* name : {"..", ".", "a b", "a\\b", "a;b", "a$b", "n\xc3\xa9"}) {
    const Refusal r = refusal({std::string("training.run.name='") + name + "'"}, tmp.path());
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.message;
    EXPECT_NE(r.message.find("training.run.name="), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("letters, digits, '-', '_' and '.'"), std::string::npos) << r.message;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << name;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path().parent_path() / tmp.path().filename())) << name;
  }
  std::ostringstream out;
  const auto ok = compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true", "training.run.name=v1.2-a_b",
                                "base_results_dir=" + tmp.path().string()});
  EXPECT_NO_THROW(run(ok, out));
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "v1.2-a_b" / "v1.2-a_b_hydra.yaml"));
}

TEST(StageSequence, BatchSizeMessageSuggestsValues) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true",
                               "training.model.global_batch_size=1000", "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  try {
    run(c, out);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "training.model.global_batch_size=1000 is not a multiple of training.model.micro_batch_size=2 x the "
                  "data-parallel size 80 (160 GPUs / (2 x 1)) = 160. Fix: set training.model.global_batch_size=1120 or "
                  "960"),
              std::string::npos)
        << e.what();
  }
}

TEST(StageSequence, MissingInputsFailARealRunAndWarnInADryRun) {
  TempDir tmp;
  auto nothing = [](const std::filesystem::path&) { return false; };
  std::ostringstream out;
  auto c = compose_conf({"stages=[conversion]", "cluster_type=local", "base_results_dir=" + tmp.path().string()});
  try {
    run(c, out, nullptr, nothing);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conversion.model.checkpoint_folder: '" + tmp.path().string() +
                                         "/gpt3_5b/results/checkpoints' does not exist "
                                         "(conf/conversion/gpt3/convert_gpt3.yaml:17:22)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Add training before conversion in stages"), std::string::npos) << e.what();
  }
  c = compose_conf({"stages=[conversion]", "dry_run=true", "base_results_dir=" + tmp.path().string()});
  const StageSequenceResult r = run(c, out, nullptr, nothing);
  EXPECT_EQ(r.jobs.size(), 1u);
  ASSERT_FALSE(r.warnings.empty());
  // Produced by an earlier stage of the same sequence: no complaint.
  c = compose_conf({"stages=[training,conversion]", "dry_run=true", "base_results_dir=" + tmp.path().string()});
  const StageSequenceResult r2 = run(c, out, nullptr, [](const std::filesystem::path& p) {
    return p.string().find("checkpoints") == std::string::npos && p.string().find("hparams") == std::string::npos;
  });
  EXPECT_TRUE(r2.warnings.empty()) << r2.warnings.front();
}

TEST(StageSequence, StagesChainWithDependencies) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[data_preparation,training,conversion]", "dry_run=true",
                               "data_preparation.file_numbers='0,3,5-7'", "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  DryRunSubmitter ids(500);
  const StageSequenceResult r = run(c, out, &ids);
  ASSERT_EQ(r.jobs.size(), 5u);  // download, extract, preprocess, training, conversion
  const auto script = [&](std::size_t i) { return read_file(r.jobs[i].script); };
  EXPECT_EQ(r.jobs[0].step, "download");
  EXPECT_NE(script(0).find("#SBATCH --dependency=singleton\n"), std::string::npos);
  EXPECT_NE(script(0).find("#SBATCH --array=0,3,5-7%30\n"), std::string::npos);
  EXPECT_EQ(r.jobs[0].job_id, "500");
  EXPECT_NE(script(1).find("#SBATCH --dependency=aftercorr:500\n"), std::string::npos);
  EXPECT_EQ(r.jobs[1].job_id, "505");  // an array takes one id per element
  EXPECT_NE(script(2).find("#SBATCH --dependency=aftercorr:505\n"), std::string::npos);
  EXPECT_NE(script(2).find("bignlp-preprocess --config-path " +
                           (tmp.path() / "download_gpt3_pile" / "submissions" / "1").string() +
                           " --config-name download_gpt3_pile_hydra.yaml --step preprocess"),
            std::string::npos);
  EXPECT_NE(script(3).find("#SBATCH --dependency=afterok:510\n"), std::string::npos);
  EXPECT_NE(script(3).find("#SBATCH --kill-on-invalid-dep=yes\n"), std::string::npos);
  EXPECT_NE(script(4).find("#SBATCH --dependency=afterok:515\n"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "download_gpt3_pile" / "extract" /
                                      "bignlp-download_gpt3_pile_submission.sh"));
}

TEST(StageSequence, BcpRunsOneStagePerInvocation) {
  TempDir tmp;
  const auto c = compose_conf({"stages=[training,conversion]", "cluster_type=bcp", "dry_run=true",
                               "base_results_dir=" + tmp.path().string()});
  std::ostringstream out;
  try {
    run(c, out);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster_type=bcp runs one stage per bignlp invocation"), std::string::npos);
  }
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(StageSequence, UnknownAndUnchosenStagesAreExplained) {
  TempDir tmp;
  std::ostringstream out;
  try {
    run(compose_conf({"stages=[trainig]", "dry_run=true"}), out);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'trainig' is not a stage (did you mean 'training'?)"), std::string::npos)
        << e.what();
  }
  try {
    run(compose_conf({"stages=[fine_tuning]", "dry_run=true"}), out);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no fine_tuning config is chosen"), std::string::npos) << e.what();
  }
  try {
    run(compose_conf({"stages=[fine_tuning]", "fine_tuning=t5/squad", "dry_run=true", "base_results_dir=/x",
                      "fine_tuning.model.restore_from_path=/m.nemo"}),
        out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(StageSequence, FailedSubmissionLeavesNoScriptAndNamesEarlierJobs) {
  TempDir tmp;
  const auto sbatch = tmp.path() / "sbatch";
  // Accepts the first job, refuses the second.
  write_file_atomic(sbatch,
                    "#!/bin/bash\nif [ -e \"" + (tmp.path() / "once").string() + "\" ]; then echo 'sbatch: error: "
                    "Batch job submission failed: Invalid account' >&2; exit 1; fi\ntouch \"" +
                        (tmp.path() / "once").string() + "\"\necho 77\n",
                    0755);
  const auto c = compose_conf({"stages=[training,conversion]", "base_results_dir=" + (tmp.path() / "r").string()});
  StageSequenceOptions o;
  o.exists = always;
  o.sbatch = sbatch.string();
  std::ostringstream out;
  try {
    run_stage_sequence(c.request(), o, Logger::capturing(), out);
    FAIL();
  } catch (const SubmitError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conversion: sbatch refused"), std::string::npos) << m;
    EXPECT_NE(m.find("Invalid account"), std::string::npos) << m;
    EXPECT_NE(m.find("Already submitted: training (job 77). Cancel them with: scancel 77"), std::string::npos) << m;
  }
  EXPECT_EQ(read_file(tmp.path() / "r" / "gpt3_5b" / "launcher.log"), "Submitted batch job 77\n");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "r" / "gpt3_5b" / "convert_nemo" /
                                       "bignlp-convert_gpt3_5b_submission.sh"));
}

}  // namespace
}  // namespace bignlp::launch

namespace bignlp::launch {
namespace {

// The local executor through the whole stage sequence, with the stand-in worker installed under the
// workers' names: data preparation (three array steps) then training on 2 ranks.
struct LocalStageSequence {
  TempDir tmp{"bignlp-stage-sequence"};
  std::filesystem::path bin = tmp.path() / "bin";
  std::filesystem::path record = tmp.path() / "record.txt";

  LocalStageSequence() {
    testing::worker_as(bin, "bignlp-preprocess");
    testing::worker_as(bin, "bignlp-train");
    std::filesystem::create_symlink(std::filesystem::path(BIGNLP_BIN_DIR) / "bignlp-bind", bin / "bignlp-bind");
  }

  StageSequenceResult run(std::vector<std::string> extra, std::ostream& out) {
    std::vector<std::string> o = {"stages=[data_preparation,training]", "cluster_type=local",
                                  "training=gpt3/tiny", "training.trainer.devices=2",
                                  "data_preparation.file_numbers='0-1'", "bin_dir=" + bin.string(),
                                  "base_results_dir=" + (tmp.path() / "results").string(),
                                  "+env_vars.BIGNLP_TEST_RECORD=" + record.string()};
    o.insert(o.end(), extra.begin(), extra.end());
    const auto c = compose_conf(o);
    StageSequenceOptions opt;
    opt.exists = always;
    opt.first_local_id = 900;
    opt.local.out_fd = opt.local.err_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    auto r = run_stage_sequence(c.request(), opt, Logger::capturing(), out);
    ::close(opt.local.out_fd);
    return r;
  }
};

TEST(StageSequenceLocal, DataPreparationThenTrainingRunHereInOrder) {
  LocalStageSequence lp;
  std::ostringstream out;
  const StageSequenceResult r = lp.run({}, out);
  ASSERT_EQ(r.jobs.size(), 4u);
  std::vector<std::string> seen;
  for (const auto& rec : testing::read_records(lp.record)) {
    if (rec.event != "end") continue;
    const std::string step = rec.f.at("step").empty() ? "train" : rec.f.at("step");
    seen.push_back(step + ":" + (rec.f.at("array_task").empty() ? "r" + rec.f.at("procid") : rec.f.at("array_task")));
  }
  ASSERT_EQ(seen.size(), 8u) << out.str();
  EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 6),
            (std::vector<std::string>{"download:0", "download:1", "extract:0", "extract:1", "preprocess:0",
                                      "preprocess:1"}));
  std::vector<std::string> ranks(seen.begin() + 6, seen.end());
  std::sort(ranks.begin(), ranks.end());
  EXPECT_EQ(ranks, (std::vector<std::string>{"train:r0", "train:r1"}));
  // Job ids: each array takes one per element; training comes last.
  EXPECT_EQ(r.jobs[0].job_id, "900");
  EXPECT_EQ(r.jobs[3].job_id, "906");
  const auto dp = lp.tmp.path() / "results" / "download_gpt3_pile";
  EXPECT_TRUE(std::filesystem::exists(dp / "extract" / "log-download_gpt3_pile_902_1.out"));
  EXPECT_NE(read_file(lp.tmp.path() / "results" / "gpt3_tiny" / "log-gpt3_tiny_906.out").find("hello from bignlp-train rank 1"),
            std::string::npos);
  EXPECT_NE(out.str().find("training: ran "), std::string::npos);
}

TEST(StageSequenceLocal, AFailedStepStopsTheStages) {
  LocalStageSequence lp;
  std::ostringstream out;
  try {
    lp.run({"+env_vars.BIGNLP_TEST_FAIL=bignlp-preprocess:extract:1"}, out);
    FAIL() << "the stage sequence went on after a failed step";
  } catch (const JobFailedError& e) {
    EXPECT_EQ(e.exit_code(), 7);
    EXPECT_NE(std::string(e.what()).find("data_preparation/extract"), std::string::npos) << e.what();
  }
  for (const auto& rec : testing::read_records(lp.record)) {
    EXPECT_NE(rec.f.at("step"), "preprocess");
    EXPECT_NE(rec.f.at("prog"), "bignlp-train");
  }
}

}  // namespace
}  // namespace bignlp::launch

namespace bignlp::launch {
namespace {

// --- launching again into a folder ---------------------------------------------------------------

TEST(StageSequenceRelaunch, EachSubmissionReadsItsOwnConfigCopy) {
  TempDir tmp;
  auto launch = [&](const std::string& gbs) {
    std::ostringstream out;
    const auto c = compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true",
                                 "training.model.global_batch_size=" + gbs, "base_results_dir=" + tmp.path().string()});
    return run(c, out).jobs.at(0).script;
  };
  const auto dir = tmp.path() / "gpt3_5b";
  launch("1440");
  const std::string first_script = read_file(dir / "bignlp-gpt3_5b_submission.sh");
  launch("2880");  // a second launch rewrites <run.name>_hydra.yaml ...
  const std::string second_script = read_file(dir / "bignlp-gpt3_5b_submission.sh");
  // ... but the first job still reads the config it was submitted with.
  EXPECT_NE(first_script.find("--config-path " + (dir / "submissions" / "1").string() + " "), std::string::npos);
  EXPECT_NE(second_script.find("--config-path " + (dir / "submissions" / "2").string() + " "), std::string::npos);
  EXPECT_NE(read_file(dir / "submissions" / "1" / "gpt3_5b_hydra.yaml").find("global_batch_size: 1440"),
            std::string::npos);
  EXPECT_NE(read_file(dir / "submissions" / "2" / "gpt3_5b_hydra.yaml").find("global_batch_size: 2880"),
            std::string::npos);
  EXPECT_NE(read_file(dir / "gpt3_5b_hydra.yaml").find("global_batch_size: 2880"), std::string::npos);
  // A refused third launch changes neither copy.
  std::ostringstream out;
  EXPECT_THROW(run(compose_conf({"stages=[training]", "training=gpt3/5b", "dry_run=true",
                                 "training.model.tensor_model_parallel_size=3", "base_results_dir=" + tmp.path().string()}),
                   out),
               ConfigError);
  EXPECT_NE(read_file(dir / "submissions" / "1" / "gpt3_5b_hydra.yaml").find("global_batch_size: 1440"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "submissions" / "3"));
}

TEST(StageSequenceRelaunch, LauncherLogKeepsEveryLaunch) {
  LocalStageSequence lp;
  std::ostringstream out;
  lp.run({"stages=[training]"}, out);
  lp.run({"stages=[training]"}, out);
  const std::string log = read_file(lp.tmp.path() / "results" / "gpt3_tiny" / "launcher.log");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2) << log;
  EXPECT_NE(log.find("Ran local job 900: exit status 0\n"), std::string::npos) << log;
}

TEST(StageSequenceRelaunch, AFolderInUseByALocalRunIsRefused) {
  LocalStageSequence lp;
  const auto dir = lp.tmp.path() / "results" / "gpt3_tiny";
  std::filesystem::create_directories(dir);
  // Another run holds the folder (its lock file names it).
  const int fd = ::open((dir / ".bignlp.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "bignlp pid 4242", 15), 15);
  std::ostringstream out;
  try {
    lp.run({"stages=[training]"}, out);
    FAIL() << "a second local run into a folder in use was started";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(dir.string() + " is in use by another local run (bignlp pid 4242)"), std::string::npos) << m;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "gpt3_tiny_hydra.yaml")) << "the config was written anyway";
  EXPECT_FALSE(std::filesystem::exists(lp.record)) << "a worker ran";
  ::close(fd);
  EXPECT_NO_THROW(lp.run({"stages=[training]"}, out));  // free again
}

}  // namespace
}  // namespace bignlp::launch

namespace bignlp::launch {
namespace {

TEST(StageSequenceRelaunch, AQueuedSlurmJobInTheFolderIsRefusedUnlessForced) {
  TempDir tmp;
  const auto results = tmp.path() / "r";
  const auto dir = results / "gpt3_5b";
  // squeue lists job 4242 of this name, submitted from this folder, still pending (and another
  // job of the name elsewhere, which does not matter).
  const auto squeue = tmp.path() / "squeue";
  write_file_atomic(squeue,
                    "#!/bin/bash\necho \"$*\" > " + (tmp.path() / "squeue.args").string() +
                        "\necho '4100|RUNNING|/elsewhere/gpt3_5b'\necho '4242|PENDING|" + dir.string() + "'\n",
                    0755);
  const auto sbatch = tmp.path() / "sbatch";
  write_file_atomic(sbatch, "#!/bin/bash\necho 77\n", 0755);
  const auto c = compose_conf({"stages=[training]", "base_results_dir=" + results.string()});
  StageSequenceOptions o;
  o.exists = always;
  o.sbatch = sbatch.string();
  o.squeue = squeue.string();
  std::ostringstream out;
  try {
    run_stage_sequence(c.request(), o, Logger::capturing(), out);
    FAIL() << "submitted beside a pending job";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("training: job 4242 ('bignlp-gpt3_5b', PENDING) was submitted from " + dir.string()),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("--force"), std::string::npos) << m;
  }
  EXPECT_EQ(read_file(tmp.path() / "squeue.args"), "-h -n bignlp-gpt3_5b -o %i|%T|%Z\n");
  EXPECT_FALSE(std::filesystem::exists(dir)) << "files were written";
  o.force = true;
  EXPECT_EQ(run_stage_sequence(c.request(), o, Logger::capturing(), out).jobs.at(0).job_id, "77");
}

}  // namespace
}  // namespace bignlp::launch
