// Golden files of rendered jobs: every case of tests/golden/launch/<case>/overrides.txt is run as a
// dry run for each cluster type (bcm, bcm with a container, bcp, local) and what it writes is
// compared byte for byte with tests/golden/launch/<case>/expected/<variant>/ (all files for bcm;
// the job scripts for the other variants; error.txt when the launcher refuses the case).
// The results directory is written as /results. To accept intended changes, run
// scripts/update_golden.sh (it sets BIGNLP_UPDATE_GOLDEN=1 for this test).
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "compose_support.h"

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(BIGNLP_SOURCE_DIR) / "tests" / "golden" / "launch";

struct Variant {
  std::string name;
  std::vector<std::string> overrides;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"bcm", {"cluster_type=bcm"}},
      {"bcm_container", {"cluster_type=bcm", "container=nvcr.io/nvidia/bignlp:24.01"}},
      {"bcp", {"cluster_type=bcp"}},
      {"local", {"cluster_type=local"}},
  };
  return v;
}

std::vector<std::string> read_overrides(const fs::path& file) {
  std::vector<std::string> out;
  for (const auto& line : split(read_file(file), '\n')) {
    if (!trim(line).empty() && !line.starts_with("#")) out.push_back(line);
  }
  return out;
}

// What one case writes for one variant: relative path -> content (or "error.txt" -> message).
std::map<std::string, std::string> render_case(const fs::path& case_dir, const Variant& v) {
  TempDir tmp("bignlp-golden");
  const fs::path results = tmp.path() / "results";
  std::vector<std::string> o = read_overrides(case_dir / "overrides.txt");
  o.insert(o.end(), v.overrides.begin(), v.overrides.end());
  o.insert(o.end(), {"dry_run=true", "bignlp_path=/opt/bignlp", "bin_dir=/opt/bignlp/build/bin",
                     "base_results_dir=" + results.string()});
  std::vector<std::string> argv = {"bignlp"};
  for (const auto& x : o) argv.push_back(replace_all(x, results.string(), "/results"));
  std::map<std::string, std::string> out;
  try {
    const auto c = testing::compose_conf(o);
    StageSequenceOptions opt;
    opt.exists = [](const fs::path&) { return true; };
    std::ostringstream text;
    run_stage_sequence(c.request(argv), opt, Logger::capturing(), text);
  } catch (const Error& e) {
    out["error.txt"] = replace_all(e.what(), results.string(), "/results") + "\n";
    return out;
  }
  for (const auto& entry : fs::recursive_directory_iterator(results)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), results).string();
    if (v.name != "bcm" && !rel.ends_with("_submission.sh")) continue;
    out[rel] = replace_all(read_file(entry.path()), results.string(), "/results");
  }
  return out;
}

std::map<std::string, std::string> read_expected(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out[fs::relative(entry.path(), dir).string()] = read_file(entry.path());
  }
  return out;
}

std::vector<fs::path> cases() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(kGolden)) {
    if (fs::exists(entry.path() / "overrides.txt")) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Golden, RenderedJobsMatchTheGoldenFiles) {
  const char* update_env = std::getenv("BIGNLP_UPDATE_GOLDEN");
  const bool update = update_env && std::string(update_env) == "1";
  const auto all = cases();
  ASSERT_GE(all.size(), 20u) << "golden cases are missing from " << kGolden;
  for (const fs::path& c : all) {
    for (const Variant& v : variants()) {
      const fs::path expected_dir = c / "expected" / v.name;
      const auto got = render_case(c, v);
      if (update) {
        fs::remove_all(expected_dir);
        for (const auto& [rel, content] : got) {
          write_file_atomic(expected_dir / rel, content, rel.ends_with(".sh") ? 0755 : 0644);
        }
        continue;
      }
      const auto want = read_expected(expected_dir);
      std::vector<std::string> got_names, want_names;
      for (const auto& [k, _] : got) got_names.push_back(k);
      for (const auto& [k, _] : want) want_names.push_back(k);
      EXPECT_EQ(got_names, want_names) << c.filename() << "/" << v.name << ": different files";
      for (const auto& [rel, content] : got) {
        auto it = want.find(rel);
        if (it != want.end()) {
          EXPECT_EQ(content, it->second) << c.filename().string() << "/expected/" << v.name << "/" << rel
                                         << " differs (scripts/update_golden.sh regenerates it when intended)";
        }
      }
    }
  }
}

// The cases meant to fail do fail, and the others produce scripts.
TEST(Golden, CoverEveryStageAndRefuseMultiStageBcp) {
  std::set<std::string> stages_seen;
  for (const fs::path& c : cases()) {
    const auto bcp = read_expected(c / "expected" / "bcp");
    const auto bcm = read_expected(c / "expected" / "bcm");
    const bool multi = read_file(c / "overrides.txt").find(",") < read_file(c / "overrides.txt").find("]") &&
                       read_file(c / "overrides.txt").starts_with("stages=[") &&
                       split(read_file(c / "overrides.txt").substr(8, read_file(c / "overrides.txt").find(']') - 8), ',').size() > 1;
    if (multi) {
      ASSERT_TRUE(bcp.count("error.txt")) << c.filename();
      EXPECT_NE(bcp.at("error.txt").find("cluster_type=bcp runs one stage per bignlp invocation"), std::string::npos);
    }
    EXPECT_FALSE(bcm.count("error.txt")) << c.filename() << ": " << (bcm.count("error.txt") ? bcm.at("error.txt") : "");
    for (const auto& [rel, content] : bcm) {
      if (rel.ends_with("_hydra.yaml")) {
        EXPECT_EQ(content.find("${"), std::string::npos) << c.filename() << "/" << rel << " has an unresolved interpolation";
      }
      const auto pos = content.find("# bignlp ");
      if (rel.ends_with("_submission.sh") && pos != std::string::npos) {
        stages_seen.insert(split(content.substr(pos + 9), ' ').front());
      }
    }
  }
  EXPECT_EQ(stages_seen, (std::set<std::string>{"data_preparation", "training", "conversion", "fine_tuning",
                                                "prompt_learning", "evaluation", "export", "cluster_validation"}));
}

}  // namespace
}  // namespace bignlp::launch
