// SQuAD -> prompt-learning jsonl (tuning.md §2.2, §11): fixtures in SQuAD's format, the files
// compared byte for byte with hand-written expectations and with Python's json.dumps.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/squad_prompt_learning.h"

namespace fs = std::filesystem;
using namespace bignlp;

namespace {

const fs::path kFixtures = fs::path(BIGNLP_SOURCE_DIR) / "tests/data/squad";

TEST(SquadPromptLearning, PythonJsonStringEscapes) {
  EXPECT_EQ(data::python_json_string("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(data::python_json_string("\n\r\t\b\f\x01\x7f"), "\"\\n\\r\\t\\b\\f\\u0001\\u007f\"");
  EXPECT_EQ(data::python_json_string("caf\xc3\xa9 \xe6\x9d\xb1"), "\"caf\\u00e9 \\u6771\"");
  EXPECT_EQ(data::python_json_string("\xf0\x9f\x98\x80"), "\"\\ud83d\\ude00\"");  // U+1F600: a surrogate pair
  EXPECT_THROW(data::python_json_string("\xff"), DataError);
}

TEST(SquadPromptLearning, FixtureFilesByteForByte) {
  TempDir out("squad-prompt");
  const data::SquadPromptCounts n = data::convert_squad_for_prompt_learning(
      kFixtures / "train-v1.1.json", kFixtures / "dev-v1.1.json", out.path());
  EXPECT_EQ(n.train, 2);
  EXPECT_EQ(n.dev, 3);
  EXPECT_EQ(n.skipped, 1);  // the question without answers
  EXPECT_EQ(read_file(out.path() / "squad_train.jsonl"),
            "{\"taskname\": \"squad\", \"context\": \"Super Bowl 50 was an American football game.\\nThe Denver Broncos "
            "won.\", \"question\": \"Who won \\\"Super Bowl 50\\\"?\", \"answer\": \"Denver Broncos\"}\n"
            "{\"taskname\": \"squad\", \"context\": \"The caf\\u00e9 serves cr\\u00e8me br\\u00fbl\\u00e9e "
            "\\ud83d\\ude00 and tea\\\\coffee.\", \"question\": \"What does the caf\\u00e9 serve?\", \"answer\": "
            "\"cr\\u00e8me br\\u00fbl\\u00e9e\"}\n");
  const std::string normans = "{\"taskname\": \"squad\", \"context\": \"The Normans were in Normandy, a region in France.\", "
                              "\"question\": \"In what country is Normandy located?\"";
  const std::string who = "{\"taskname\": \"squad\", \"context\": \"The Normans were in Normandy, a region in France.\", "
                          "\"question\": \"Who was in Normandy?\"";
  const std::string tokyo = "{\"taskname\": \"squad\", \"context\": \"\\u6771\\u4eac is Tokyo.\\tIt is large.\", "
                            "\"question\": \"What is the name in kanji?\"";
  EXPECT_EQ(read_file(out.path() / "squad_val.jsonl"),
            normans + ", \"answer\": \"France\"}\n" + who + ", \"answer\": \"Normans\"}\n" + tokyo +
                ", \"answer\": \"\\u6771\\u4eac\"}\n");
  EXPECT_EQ(read_file(out.path() / "squad_test_ground_truth.jsonl"),
            normans + ", \"answer\": [\"France\", \"France\", \"a region in France\"]}\n" + who +
                ", \"answer\": [\"Normans\"]}\n" + tokyo + ", \"answer\": [\"\\u6771\\u4eac\"]}\n");
  EXPECT_EQ(read_file(out.path() / "squad_test.jsonl"), normans + "}\n" + who + "}\n" + tokyo + "}\n");
}

TEST(SquadPromptLearning, EqualsPythonJsonDumps) {
  if (std::system("/usr/bin/python3 -c 'import json' 2>/dev/null") != 0) GTEST_SKIP() << "no /usr/bin/python3";
  TempDir ours("squad-prompt-ours"), theirs("squad-prompt-py");
  data::convert_squad_for_prompt_learning(kFixtures / "train-v1.1.json", kFixtures / "dev-v1.1.json", ours.path());
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/squad_prompt_reference.py {} {} {}",
                                      BIGNLP_SOURCE_DIR, (kFixtures / "train-v1.1.json").string(),
                                      (kFixtures / "dev-v1.1.json").string(), theirs.path().string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const char* f : {"squad_train.jsonl", "squad_val.jsonl", "squad_test_ground_truth.jsonl", "squad_test.jsonl"})
    EXPECT_EQ(read_file(ours.path() / f), read_file(theirs.path() / f)) << f;
}

TEST(SquadPromptLearning, MalformedInputNamesFileAndKeyPath) {
  TempDir dir("squad-bad");
  write_file_atomic(dir.path() / "train.json",
                    R"({"data": [{"title": "x", "paragraphs": [{"context": "c", "qas": [{"answers": [{"text": 5}], "question": "q"}]}]}]})");
  write_file_atomic(dir.path() / "dev.json", R"({"data": []})");
  try {
    data::convert_squad_for_prompt_learning(dir.path() / "train.json", dir.path() / "dev.json", dir.path() / "out");
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("train.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("data[0].paragraphs[0].qas[0].answers[0].text"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "squad_train.jsonl"));  // nothing half-written
  EXPECT_THROW(data::convert_squad_for_prompt_learning(dir.path() / "missing.json", dir.path() / "dev.json",
                                                       dir.path() / "out"),
               IoError);
}

}  // namespace
