// W&B offline runs: the .wandb record log read back by tests/python/wandb_reader.py (written from
// W&B's format description: block framing, CRCs, protobuf fields) gives the run, the config, every
// history row and the summary; records larger than a block are split; a flipped byte fails its CRC.
#include "bignlp/train/wandb.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;

bool python_available() { return std::system("/usr/bin/python3 -c 'import zlib, json' >/dev/null 2>&1") == 0; }

/// Runs the reader; the parsed JSON, or a null JSON when it exits non-zero.
nlohmann::json read_back(const fs::path& file, const fs::path& out) {
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/wandb_reader.py {} {}", BIGNLP_SOURCE_DIR,
                                      file.string(), out.string());
  if (std::system(cmd.c_str()) != 0) return nullptr;
  return nlohmann::json::parse(read_file(out));
}

TEST(WandbFormat, JsonNumbersAreWhatPythonsJsonWrites) {
  EXPECT_EQ(wandb_format::json_number(2.0), "2.0");
  EXPECT_EQ(wandb_format::json_number(0.1), "0.1");
  EXPECT_EQ(wandb_format::json_number(std::nan("")), "NaN");
  EXPECT_EQ(wandb_format::json_number(-INFINITY), "-Infinity");
  EXPECT_EQ(wandb_format::file_header(), std::string(":W&B\xe1\xbe\x00", 7));
  // zlib's CRC-32 of the type byte and the data: crc32(b"\x01abc").
  EXPECT_EQ(wandb_format::record_checksum(1, "abc"), 0x539d20a9u);
}

TEST(WandbFormat, RecordsSplitAtBlockBoundariesAndTrailersAreZero) {
  // A record that leaves 3 bytes of its block: the next one starts the next block.
  const std::string a = wandb_format::frame_record(7, std::string(wandb_format::kBlockSize - 7 - 7 - 3, 'x'));
  EXPECT_EQ(a.size(), wandb_format::kBlockSize - 7 - 3);
  const std::string b = wandb_format::frame_record(wandb_format::kBlockSize - 3, "yz");
  EXPECT_EQ(b.substr(0, 3), std::string(3, '\0'));
  EXPECT_EQ(b.size(), 3u + 7u + 2u);
  // 70000 bytes from offset 100: FIRST, MIDDLE, LAST.
  const std::string c = wandb_format::frame_record(100, std::string(70000, 'q'));
  EXPECT_EQ(static_cast<int>(c[6]), 2);
  EXPECT_EQ(static_cast<int>(c[wandb_format::kBlockSize - 100 + 6]), 3);
  EXPECT_EQ(static_cast<int>(c[2 * wandb_format::kBlockSize - 100 + 6]), 4);
  EXPECT_EQ(c.size(), 70000u + 3 * 7);
}

TEST(WandbRun, ReaderFromTheFormatDescriptionGetsRunConfigHistoryAndSummary) {
  if (!python_available()) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  TempDir dir("wandb");
  WandbOptions o;
  o.project = "nemo_gpt3";
  o.name = "126m";
  o.entity = "team";
  o.group = "g1";
  o.tags = {"a", "b"};
  o.save_dir = dir.path();
  o.config = {{"trainer", {{"max_steps", 2000}, {"precision", "bf16"}}},
              {"model", {{"hidden_size", 768}, {"notes", std::string(100000, 'n')}}}};  // > 3 blocks
  fs::path file, run_dir;
  std::string id;
  std::vector<std::vector<std::pair<std::string, double>>> logged;
  {
    WandbOfflineRun run(o);
    file = run.file();
    run_dir = run.run_dir();
    id = run.run_id();
    EXPECT_EQ(run.sync_command(), "wandb sync " + run_dir.string());
    for (int step = 1; step <= 1500; ++step) {
      logged.push_back({{"reduced_train_loss", 10.0 / step + 1e-3 * (step % 7)}, {"lr", 6e-4 * step / 1500.0}});
      if (step % 100 == 0) logged.back().emplace_back("val_loss", 3.0 + 1.0 / step);
      run.log(step, logged.back());
    }
    run.finish(0);
  }
  EXPECT_EQ(id.size(), 8u);
  EXPECT_EQ(run_dir.parent_path(), dir.path() / "wandb");
  EXPECT_EQ(run_dir.filename().string().rfind("offline-run-", 0), 0u);
  EXPECT_EQ(run_dir.filename().string().substr(run_dir.filename().string().size() - 9), "-" + id);
  EXPECT_EQ(file.filename().string(), "run-" + id + ".wandb");
  EXPECT_GT(fs::file_size(file), 3 * wandb_format::kBlockSize);

  const nlohmann::json j = read_back(file, dir.path() / "out.json");
  ASSERT_FALSE(j.is_null());
  EXPECT_TRUE(j["header"].get<bool>());
  EXPECT_TRUE(j["final"].get<bool>());
  EXPECT_GE(j["fragments"]["3"].get<int>(), 2) << "the config record spans blocks";
  EXPECT_GE(j["fragments"]["2"].get<int>(), 2);
  EXPECT_EQ(j["fragments"]["2"], j["fragments"]["4"]);
  EXPECT_EQ(j["run"]["run_id"], id);
  EXPECT_EQ(j["run"]["project"], "nemo_gpt3");
  EXPECT_EQ(j["run"]["display_name"], "126m");
  EXPECT_EQ(j["run"]["entity"], "team");
  EXPECT_EQ(j["run"]["group"], "g1");
  EXPECT_EQ(j["run"]["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(j["run"]["config"], o.config);
  EXPECT_EQ(j["config"], o.config);
  ASSERT_EQ(j["history"].size(), 1500u);
  for (int step = 1; step <= 1500; ++step) {
    const nlohmann::json& row = j["history"][step - 1];
    EXPECT_EQ(j["history_steps"][step - 1], step);
    EXPECT_EQ(row["_step"], step);
    for (const auto& [key, value] : logged[step - 1]) ASSERT_EQ(row.at(key).get<double>(), value) << key << " " << step;
    ASSERT_EQ(row.size(), logged[step - 1].size() + 3) << "plus _step, _runtime, _timestamp";
  }
  EXPECT_EQ(j["summary"]["reduced_train_loss"].get<double>(), logged.back()[0].second);
  EXPECT_EQ(j["summary"]["val_loss"].get<double>(), 3.0 + 1.0 / 1500);
  EXPECT_EQ(j["summary"]["_step"], 1500);
  EXPECT_EQ(j["exit"]["exit_code"], 0);
  EXPECT_EQ(j["records"].back(), "final");

  // One flipped byte inside a record: its CRC fails.
  std::string bytes = read_file(file);
  bytes[bytes.size() / 2] ^= 0x10;
  write_file_atomic(dir.path() / "bad.wandb", bytes);
  EXPECT_TRUE(read_back(dir.path() / "bad.wandb", dir.path() / "bad.json").is_null());
}

TEST(WandbRun, ARunLeftUnfinishedRecordsExitCodeOne) {
  if (!python_available()) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  TempDir dir("wandb-abort");
  WandbOptions o;
  o.save_dir = dir.path();
  o.id = "fixedid1";
  fs::path file;
  {
    WandbOfflineRun run(o);
    file = run.file();
    run.log(1, {{"reduced_train_loss", 5.5}});
  }  // destroyed without finish(): an exception ended training
  const nlohmann::json j = read_back(file, dir.path() / "out.json");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["run"]["run_id"], "fixedid1");
  EXPECT_EQ(j["exit"]["exit_code"], 1);
  EXPECT_EQ(j["summary"]["reduced_train_loss"].get<double>(), 5.5);
  // An id that is not a plain name is refused (it names the directory).
  o.id = "bad/id";
  EXPECT_THROW(WandbOfflineRun{o}, ConfigError);
}

}  // namespace
}  // namespace bignlp::train
