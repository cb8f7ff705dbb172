// File I/O with the guarantees bignlp promises: every error names the path and the OS reason,
// and writes are atomic (a reader sees the old file or the complete new one, never a half-written
// one): write to a temporary file in the same directory, fsync, rename, fsync the directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace bignlp {

/// Whole file as bytes. Throws IoError("cannot read '<path>': <reason>").
std::string read_file(const std::filesystem::path& path);

/// Atomically replaces `path` with `content`, creating parent directories. `mode` is applied to
/// the new file (e.g. 0755 for scripts). Throws IoError naming the path; leaves no temp file behind.
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

/// fsync a file or directory by path. Throws IoError.
void fsync_path(const std::filesystem::path& path);

/// Atomically moves a fully written directory `tmp_dir` to `final_dir` (fsyncs both parents).
/// Fails if `final_dir` exists unless `replace`: then the old one is first renamed to a hidden
/// ".tmp-old-<name>-<random>" beside it and removed after the rename, so a reader never sees a
/// half-removed directory under a visible name, even when the process dies midway.
/// Removes a directory so that it disappears at once: renamed to a hidden ".tmp-removed-<name>-
/// <random>" beside it, then deleted. A process killed midway leaves only the hidden name behind
/// (for the next run's clean-up of ".tmp-*"). Missing directories are fine. Throws IoError.
void remove_directory_atomic(const std::filesystem::path& dir);

void rename_directory_atomic(const std::filesystem::path& tmp_dir, const std::filesystem::path& final_dir,
                             bool replace = false);

/// A directory assembled under a hidden name beside its target and moved into place at once: the
/// temp-directory-then-rename pattern of checkpoint saves and conversions.
///
///   StagedDirectory stage(out);               // creates "<parent>/.tmp-<name>-<random>"
///   write_file_atomic(stage.path() / "a", ...);
///   stage.commit();                           // fsync, rename over `out`; the directory now exists
///
/// Without commit() (an exception, an early return) the destructor removes the staging directory;
/// a killed process leaves only the hidden name, which readers skip and the next run may clear
/// (every staging name starts with kStagingPrefix). Several processes that assemble one directory
/// pass the same `shared_suffix`, so that all of them compute the same staging path; one of them
/// owns the StagedDirectory (and commits), the others write into staging_path(target, suffix).
class StagedDirectory {
 public:
  /// Every staging (and moved-aside) directory name starts with this: ".tmp-".
  static constexpr std::string_view kStagingPrefix = ".tmp-";
  /// "<parent of target>/.tmp-<target name>-<suffix>".
  static std::filesystem::path staging_path(const std::filesystem::path& target, std::string_view suffix);

  /// Creates the staging directory (and the target's parents) with a random suffix, or with
  /// `shared_suffix`, removing a leftover of that name first. Throws IoError.
  explicit StagedDirectory(std::filesystem::path target, std::optional<std::string> shared_suffix = std::nullopt);
  /// Removes the staging directory with everything in it unless committed.
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  /// Where to write (the staging directory).
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& target() const { return target_; }
  bool committed() const { return committed_; }
  /// fsyncs the staging directory and renames it to the target (rename_directory_atomic; an
  /// existing target is replaced when `replace`, else IoError). Files inside must already be
  /// synced (write_file_atomic and SafetensorsWriter do so).
  void commit(bool replace = true);

 private:
  std::filesystem::path target_, path_;
  bool committed_ = false;
};

/// A temporary directory removed with everything in it on destruction (tests, scratch work).
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "bignlp");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace bignlp
