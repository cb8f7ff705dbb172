#include "bignlp/launch/submitter.h"

#include <gtest/gtest.h>

#include "bignlp/core/file_io.h"

namespace bignlp::launch {
namespace {

JobSpec job_in(const std::filesystem::path& dir) {
  JobSpec j;
  j.stage = "training";
  j.name = "bignlp-t";
  j.dir = dir;
  j.groups = {CommandGroup{{{"true"}}}};
  write_file_atomic(j.script_path(), "#!/bin/bash\ntrue\n", 0755);
  return j;
}

TEST(SbatchId, ParsesParsableOutput) {
  EXPECT_EQ(parse_sbatch_job_id("123\n"), "123");
  EXPECT_EQ(parse_sbatch_job_id("456;cluster\n"), "456");
  EXPECT_THROW(parse_sbatch_job_id("Submitted batch job 1"), SubmitError);
  EXPECT_THROW(parse_sbatch_job_id(""), SubmitError);
}

TEST(DryRun, CountsIdsPerArrayElement) {
  TempDir tmp;
  DryRunSubmitter s(10);
  JobSpec j = job_in(tmp.path());
  EXPECT_EQ(s.submit(j), "10");
  j.array = ArraySpec{{0, 1, 2}, 0};
  EXPECT_EQ(s.planned_id(j), "11");
  EXPECT_EQ(s.submit(j), "11");
  EXPECT_EQ(s.submit(j), "14");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "launcher.log"));
}

TEST(SlurmSubmitter, RecordsTheJobId) {
  TempDir tmp;
  const auto sbatch = tmp.path() / "sbatch";
  // A stand-in sbatch that checks its arguments and working directory.
  write_file_atomic(sbatch,
                    "#!/bin/bash\n[ \"$1\" = --parsable ] || exit 9\n[ -f \"$2\" ] || exit 9\n"
                    "[ \"$PWD\" = \"" + (tmp.path() / "job").string() + "\" ] || exit 9\necho '4242;local'\n",
                    0755);
  SlurmSubmitter s(Logger::capturing(), sbatch.string());
  const JobSpec j = job_in(tmp.path() / "job");
  EXPECT_EQ(s.submit(j), "4242");
  EXPECT_EQ(read_file(j.dir / "launcher.log"), "Submitted batch job 4242\n");
}

TEST(SlurmSubmitter, RefusalQuotesSbatch) {
  TempDir tmp;
  const auto sbatch = tmp.path() / "sbatch";
  write_file_atomic(sbatch, "#!/bin/bash\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n", 0755);
  SlurmSubmitter s(Logger::capturing(), sbatch.string());
  try {
    s.submit(job_in(tmp.path()));
    FAIL();
  } catch (const SubmitError& e) {
    EXPECT_NE(std::string(e.what()).find("invalid partition specified: nope"), std::string::npos) << e.what();
    EXPECT_EQ(e.exit_code(), 5);
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "launcher.log"));
}

TEST(SlurmSubmitter, MissingSbatchExplainsTheAlternatives) {
  TempDir tmp;
  SlurmSubmitter s(Logger::capturing(), (tmp.path() / "no-sbatch").string());
  try {
    s.submit(job_in(tmp.path()));
    FAIL();
  } catch (const SubmitError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster_type=local"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dry_run=true"), std::string::npos) << e.what();
  }
}

TEST(BcpSubmitter, RunsTheScriptAndReportsFailure) {
  TempDir tmp;
  JobSpec j = job_in(tmp.path());
  write_file_atomic(j.script_path(), "#!/bin/bash\ntouch ran\nexit 4\n", 0755);
  BcpSubmitter s(Logger::capturing());
  try {
    s.submit(j);
    FAIL();
  } catch (const JobFailedError& e) {
    EXPECT_EQ(e.exit_code(), 4);
  }
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "ran"));  // ran in the job's folder
}

}  // namespace
}  // namespace bignlp::launch
