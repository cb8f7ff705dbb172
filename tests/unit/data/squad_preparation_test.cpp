// The SQuAD/XQuAD preparation of the fine_tuning stage (tuning.md §2.1, §2.3, §11): conversions of
// fixture files in the real formats compared byte for byte with the launcher's expected output,
// and the download (file://, a directory, HTTP with a dropped connection) with its sha256 pins.
#include "bignlp/data/squad_preparation.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

class SquadPreparationTest : public ::testing::Test {
 protected:
  fs::path copy_fixture(const std::string& rel) {
    const fs::path dest = dir_.path() / rel;
    write_file_atomic(dest, read_file(testing::source_path("tests/data/squad_fixture/" + rel)));
    return dest;
  }
  TempDir dir_;
  Logger log_ = Logger::capturing();
};

TEST_F(SquadPreparationTest, TrainModeWritesOnePairPerAnswerWithNewlinesEscaped) {
  const fs::path json = copy_fixture("v1.1/train-v1.1.json");
  const SquadConversionStats s = convert_squad_for_fine_tuning(json, SquadSplitMode::kTrain, log_);
  EXPECT_EQ(s.examples, 4u);
  const std::string q1 = "Title: Harbour_Lights Paragraph: The harbour lights were lit in 1887.\\nThey guided ships "
                         "past the reef. Question: ";
  EXPECT_EQ(read_file(dir_.path() / "v1.1/train-v1.1_src.txt"),
            q1 + "When were the harbour lights lit?\n" + q1 + "What did they guide ships past?\\n\n" + q1 +
                "What did they guide ships past?\\n\n"
                "Title: Caf\xc3\xa9_\xc3\x91" "and\xc3\xba Paragraph: Caf\xc3\xa9 \xc3\x91" "and\xc3\xba serves \xe8\x8c\xb6 "
                "and coffee \xf0\x9f\x8d\xb5 daily. Question: Qu\xc3\xa9 sirve?\n");
  EXPECT_EQ(read_file(dir_.path() / "v1.1/train-v1.1_tgt.txt"), "1887\nthe reef\npast the reef\n\xe8\x8c\xb6\n");
}

TEST_F(SquadPreparationTest, DevModeKeepsTheFirstAnswerAndSkipsUnanswered) {
  const fs::path json = copy_fixture("v1.1/dev-v1.1.json");
  EXPECT_EQ(convert_squad_for_fine_tuning(json, SquadSplitMode::kDev, log_).examples, 2u);
  const std::string p = "Title: Harbour_Lights Paragraph: Ships\\nsailed \"home\" at dusk. Question: ";
  EXPECT_EQ(read_file(squad_src_path(json)), p + "Where did ships sail?\n" + p + "When?\n");
  EXPECT_EQ(read_file(squad_tgt_path(json)), "\"home\"\ndusk\n");
}

TEST_F(SquadPreparationTest, XquadEscapesAreWrittenAsRawUtf8) {
  const fs::path json = copy_fixture("xquad/xquad.es.json");
  convert_squad_for_fine_tuning(json, SquadSplitMode::kDev, log_);
  EXPECT_EQ(read_file(dir_.path() / "xquad/xquad.es_src.txt"),
            "Title: Agua Paragraph: El agua hierve a 100 \xc2\xb0" "C.\\nEl hielo flota. Question: \xc2\xbf" "A "
            "qu\xc3\xa9 temperatura hierve?\n");
  EXPECT_EQ(read_file(dir_.path() / "xquad/xquad.es_tgt.txt"), "100 \xc2\xb0" "C\n");
}

TEST_F(SquadPreparationTest, ExistingOutputsAreNotRewritten) {
  const fs::path json = copy_fixture("v1.1/dev-v1.1.json");
  write_file_atomic(squad_src_path(json), "kept\n");
  write_file_atomic(squad_tgt_path(json), "kept\n");
  EXPECT_TRUE(convert_squad_for_fine_tuning(json, SquadSplitMode::kDev, log_).skipped);
  EXPECT_EQ(read_file(squad_src_path(json)), "kept\n");
}

TEST_F(SquadPreparationTest, MalformedEntryNamesFileAndJsonPath) {
  const fs::path json = dir_.path() / "bad.json";
  write_file_atomic(json, R"({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"question": "q",
      "answers": [{"answer_start": 0}]}]}]}]})");
  try {
    convert_squad_for_fine_tuning(json, SquadSplitMode::kTrain, log_);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: data[0].paragraphs[0].qas[0].answers[0].text"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "bad_src.txt"));
}

TEST_F(SquadPreparationTest, PublicFilesInTheLaunchersOrder) {
  const auto v11 = squad_files("v1.1");
  ASSERT_EQ(v11.size(), 2u);
  EXPECT_EQ(v11[0].url, "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json");
  EXPECT_EQ(v11[1].relative_path, "v1.1/dev-v1.1.json");
  const auto xq = squad_files("xquad");
  ASSERT_EQ(xq.size(), 11u);
  EXPECT_EQ(xq[0].url, "https://raw.githubusercontent.com/deepmind/xquad/master/xquad.en.json");
  EXPECT_EQ(xq[10].relative_path, "xquad/xquad.hi.json");
  EXPECT_THROW(squad_files("v2.0"), ConfigError);
}

// The demo mirror (tests/data/squad_demo) pins its files in SHA256SUMS.
TEST_F(SquadPreparationTest, DownloadFromAFileUrlMirrorChecksThePins) {
  SquadDownloadOptions o;
  o.mirror = "file://" + testing::source_path("tests/data/squad_demo").string();
  prepare_squad_for_fine_tuning(dir_.path() / "squad", "squad", o, log_);
  EXPECT_EQ(read_file(dir_.path() / "squad/v1.1/dev-v1.1.json"),
            read_file(testing::source_path("tests/data/squad_demo/v1.1/dev-v1.1.json")));
  EXPECT_NE(log_.captured().find("(matches)"), std::string::npos) << log_.captured();
  // 144 train questions (one answer each), 32 dev questions.
  EXPECT_EQ(testing::run_command("wc -l < " + (dir_.path() / "squad/v1.1/train-v1.1_tgt.txt").string()), "144\n");
  EXPECT_EQ(testing::run_command("wc -l < " + (dir_.path() / "squad/v1.1/dev-v1.1_src.txt").string()), "32\n");
}

TEST_F(SquadPreparationTest, ChecksumMismatchRemovesTheFileAndFails) {
  TempDir mirror;
  write_file_atomic(mirror.path() / "v1.1/train-v1.1.json", read_file(testing::source_path("tests/data/squad_fixture/v1.1/train-v1.1.json")));
  write_file_atomic(mirror.path() / "v1.1/dev-v1.1.json", read_file(testing::source_path("tests/data/squad_fixture/v1.1/dev-v1.1.json")));
  const std::string good = sha256_file(mirror.path() / "v1.1/train-v1.1.json");
  write_file_atomic(mirror.path() / "SHA256SUMS", good + "  v1.1/train-v1.1.json\n" + std::string(64, '0') +
                                                      "  v1.1/dev-v1.1.json\n");
  SquadDownloadOptions o;
  o.mirror = mirror.path().string();  // a plain directory
  try {
    download_squad(dir_.path(), "v1.1", o, log_);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("dev-v1.1.json: sha256"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(dir_.path() / "v1.1/train-v1.1.json"));
  EXPECT_FALSE(fs::exists(dir_.path() / "v1.1/dev-v1.1.json"));
  // A present file that no longer matches its pin is fetched again.
  write_file_atomic(mirror.path() / "SHA256SUMS", good + "  v1.1/train-v1.1.json\n");
  write_file_atomic(dir_.path() / "v1.1/train-v1.1.json", "tampered");
  download_squad(dir_.path(), "v1.1", o, log_);
  EXPECT_EQ(sha256_file(dir_.path() / "v1.1/train-v1.1.json"), good);
}

TEST_F(SquadPreparationTest, HttpDownloadResumesAfterADroppedConnection) {
  if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
  TempDir mirror;
  std::string big = read_file(testing::source_path("tests/data/squad_demo/v1.1/train-v1.1.json"));
  while (big.size() < (3u << 20)) big += " ";  // large enough for the server to drop it midway
  write_file_atomic(mirror.path() / "v1.1/train-v1.1.json", big);
  write_file_atomic(mirror.path() / "v1.1/dev-v1.1.json", "{\"data\": []}");
  testing::TestHttpServer server(mirror.path());
  ASSERT_TRUE(server.ok());
  SquadDownloadOptions o;
  o.mirror = server.url("drop");
  if (!o.mirror.empty() && o.mirror.back() == '/') o.mirror.pop_back();
  download_squad(dir_.path(), "v1.1", o, log_);
  EXPECT_EQ(read_file(dir_.path() / "v1.1/train-v1.1.json"), big);
  EXPECT_NE(log_.captured().find("attempt"), std::string::npos) << log_.captured();
  EXPECT_NE(log_.captured().find("not pinned"), std::string::npos) << log_.captured();
}

TEST_F(SquadPreparationTest, CustomTasksHaveNoPreparation) {
  EXPECT_THROW(prepare_squad_for_fine_tuning(dir_.path(), "custom_task", {}, log_), ConfigError);
}

}  // namespace
}  // namespace bignlp::data
