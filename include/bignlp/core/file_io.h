// File I/O with the guarantees bignlp promises: every error names the path and the OS reason,
// and writes are atomic (a reader sees the old file or the complete new one, never a half-written
// one): write to a temporary file in the same directory, fsync, rename, fsync the directory.
#pragma once

#include <filesystem>
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
