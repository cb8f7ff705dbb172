// Downloading large files over HTTP(S) (or file://) with libcurl, the way a multi-hour data job
// needs it: resume, retries with exponential backoff, size checks and an atomic rename.
//
// The data goes to "<dest>.part"; an existing .part is resumed with a Range request (a server that
// answers 200 instead of 206 restarts it from zero). A dropped connection, a stall (below 1 kB/s
// for stall_seconds), HTTP 5xx/408/429 and network errors are retried after 1, 2, 4, ... seconds
// (capped); other HTTP errors (404, 403, ...) fail at once. The transfer is complete when the
// .part has the size the server announced (Content-Length / Content-Range) and, when given, the
// expected size; it is then synced and renamed to <dest>. An existing <dest> is kept when its size
// matches the server's (HEAD) or the expected size. Errors are IoError naming the URL and the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "bignlp/core/logging.h"

namespace bignlp::data {

struct DownloadOptions {
  int max_attempts = 6;                      ///< attempts in total (1 = no retry)
  double initial_backoff_seconds = 1.0;      ///< wait before the 2nd attempt; doubles each time
  double max_backoff_seconds = 60.0;
  std::optional<std::uint64_t> expected_size;
  long connect_timeout_seconds = 30;
  long stall_seconds = 60;                   ///< abort an attempt that moves < 1 kB/s this long
  bool resume = true;                        ///< continue an existing .part
};

struct DownloadResult {
  std::uint64_t bytes = 0;       ///< size of the finished file
  int attempts = 0;              ///< transfers made (0 when the file was already there)
  bool resumed = false;          ///< some attempt continued a partial file
  bool skipped = false;          ///< the destination already existed with the right size
};

DownloadResult download_file(const std::string& url, const std::filesystem::path& dest, const DownloadOptions& options,
                             const Logger& log);

/// Hex sha256 of a file (the checksum of downloads). Throws IoError.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace bignlp::data
