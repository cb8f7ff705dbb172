// WandbOfflineRun: a Weights & Biases run written as W&B's offline run directory, the form
// `wandb sync` uploads later (compute nodes often have no internet):
//   <save_dir>/wandb/offline-run-<YYYYmmdd_HHMMSS>-<run id>/run-<run id>.wandb
// The .wandb file is W&B's record log (the leveldb log layout, W&B client datastore):
//   file header (7 bytes): ":W&B", u16 LE magic 0xBEE1, u8 version 0
//   then 32768-byte blocks of records: u32 LE checksum, u16 LE length, u8 type, data; the
//   checksum is zlib's CRC-32 of the type byte followed by the data; a record that does not fit
//   the block is split FIRST (2) / MIDDLE (3) / LAST (4), else FULL (1); fewer than 7 bytes left in
//   a block are zero-filled. The file header counts as the first 7 bytes of block 0.
// Each logical record is one serialized wandb_internal.Record protobuf (wandb_internal.proto):
//   num = 1; history = 2; summary = 3; config = 5; run = 17; exit = 18; final = 20; header = 21
//   RunRecord: run_id 1, entity 2, project 3, config 4, run_group 6, job_type 7, display_name 8,
//              notes 9, tags 10, host 13, start_time 17 (Timestamp: seconds 1, nanos 2)
//   ConfigRecord / SummaryRecord: update 1 (ConfigItem / SummaryItem: key 1, value_json 16)
//   HistoryRecord: item 1 (HistoryItem: key 1, value_json 16), step 2 (HistoryStep: num 1)
//   RunExitRecord: exit_code 1, runtime 2
// Written here: header, run (with the config), config, one history record per logged step (the
// scalars plus _step, _runtime, _timestamp), then at finish a summary of the last values, exit and
// final. Values are JSON (non-finite floats as NaN / Infinity, as Python's json writes them).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace bignlp::train {

/// exp_manager.wandb_logger_kwargs (the subset with a meaning offline).
struct WandbOptions {
  std::string project, name, entity, group, job_type, notes, id;
  std::vector<std::string> tags;
  std::filesystem::path save_dir;  ///< the folder that receives wandb/
  nlohmann::json config = nlohmann::json::object();  ///< logged as the run's config (top-level keys)
};

/// The protobuf and record-log encodings (exposed for tests).
namespace wandb_format {
inline constexpr std::size_t kBlockSize = 32768;
inline constexpr std::size_t kHeaderSize = 7;
/// zlib CRC-32 of the type byte followed by `data`.
std::uint32_t record_checksum(std::uint8_t type, std::string_view data);
/// The bytes of one logical record written at file offset `offset` (the 7-byte file header
/// included): zero fill of a block tail, then the fragments.
std::string frame_record(std::uint64_t offset, std::string_view payload);
/// The 7-byte file header.
std::string file_header();
/// A JSON number the way Python's json.dumps writes a float (NaN, Infinity, -Infinity).
std::string json_number(double v);
}  // namespace wandb_format

class WandbOfflineRun {
 public:
  /// Creates the run directory and writes the header, run and config records. Throws IoError.
  explicit WandbOfflineRun(const WandbOptions& options);
  /// Finishes with exit code 1 when finish() was not called (an exception ended training).
  ~WandbOfflineRun();
  WandbOfflineRun(const WandbOfflineRun&) = delete;
  WandbOfflineRun& operator=(const WandbOfflineRun&) = delete;

  /// One history row at `step`.
  void log(std::int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  /// Writes the summary (last value of every key), exit and final records and closes the file.
  void finish(int exit_code);

  const std::string& run_id() const { return id_; }
  const std::filesystem::path& run_dir() const { return dir_; }
  const std::filesystem::path& file() const { return file_path_; }
  /// "wandb sync <run dir>".
  std::string sync_command() const;

 private:
  void write_record(const std::string& record);
  std::string id_;
  std::filesystem::path dir_, file_path_;
  std::FILE* file_ = nullptr;
  std::uint64_t offset_ = 0;  // bytes written to the file so far
  std::int64_t num_ = 0;
  double start_time_ = 0.0;
  std::map<std::string, std::string> summary_;  // key -> value_json
  bool finished_ = false;
};

}  // namespace bignlp::train
