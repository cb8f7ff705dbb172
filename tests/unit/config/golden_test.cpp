// Golden tests of `bignlp`'s messages and outputs: each folder of tests/golden/config/ holds `args`
// (one command-line argument per line), a `conf/` tree, and the expected stdout, stderr and exit
// status (expected_output.txt, expected_error.txt, expected_exit_code). The program runs with the
// case folder as working directory; its absolute path is written as <CASE> in the expectations.
// BIGNLP_UPDATE_GOLDEN=1 rewrites the expectations instead (scripts/update_golden.sh config).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::config {
namespace {

const fs::path kCases = "tests/golden/config";

std::vector<std::string> case_names() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kCases, ec))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string quote(const std::string& s) { return "'" + replace_all(s, "'", "'\\''") + "'"; }

std::string slurp(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec) ? read_file(p) : std::string();
}

void expect_file(const fs::path& path, const std::string& actual, bool update) {
  if (update) {
    if (actual.empty()) {
      fs::remove(path);
    } else {
      write_file_atomic(path, actual);
    }
    return;
  }
  EXPECT_EQ(slurp(path), actual) << "differs from " << path.string()
                                 << " (after an intended change: scripts/update_golden.sh config)";
}

class ConfigGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigGolden, MatchesTheExpectedOutput) {
  const fs::path dir = fs::absolute(kCases / GetParam());
  std::string cmd = "cd " + quote(dir.string()) + " && env BIGNLP_GOLDEN_USER=alice " + quote(BIGNLP_BIGNLP_EXE);
  for (const auto& arg : split(slurp(dir / "args"), '\n'))
    if (!arg.empty()) cmd += " " + quote(arg);
  TempDir tmp("bignlp-golden");
  cmd += " > " + quote((tmp.path() / "out").string()) + " 2> " + quote((tmp.path() / "err").string());
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << cmd;
  const int code = WEXITSTATUS(status);
  const auto scrub = [&](std::string s) { return replace_all(s, dir.string(), "<CASE>"); };
  const bool update = std::getenv("BIGNLP_UPDATE_GOLDEN") != nullptr;
  expect_file(dir / "expected_output.txt", scrub(slurp(tmp.path() / "out")), update);
  expect_file(dir / "expected_error.txt", scrub(slurp(tmp.path() / "err")), update);
  expect_file(dir / "expected_exit_code", std::to_string(code) + "\n", update);
}

INSTANTIATE_TEST_SUITE_P(Cases, ConfigGolden, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace bignlp::config
