// Progress of a long data job: a live line on a terminal, periodic log lines otherwise.
//
// On a terminal the line "<label>: 12.3k docs | 45.1 MiB (12.3 MB/s) | 10.2M tokens (2.8M tok/s) |
// 35% ETA 1m02s" is redrawn in place on stderr at most every 0.25 s; when stderr is not a terminal
// (Slurm logs, CI) the same text goes to the logger every `log_seconds` (and every
// `log_interval_docs` documents when set). clear_line() wipes the live line before other output.
// Single-threaded: the caller serialises update() calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "bignlp/core/logging.h"

namespace bignlp::data {

enum class ProgressMode { kAuto, kTerminal, kLog, kOff };

struct ProgressCounters {
  std::uint64_t docs = 0;
  std::uint64_t bytes = 0;        ///< input bytes processed (uncompressed)
  std::uint64_t tokens = 0;
  std::uint64_t done_units = 0;   ///< progress towards total_units (e.g. compressed bytes read)
};

class ProgressReporter {
 public:
  ProgressReporter(const Logger& log, std::string label, std::uint64_t total_units, ProgressMode mode = ProgressMode::kAuto,
                   double log_seconds = 30.0, std::uint64_t log_interval_docs = 0);
  ~ProgressReporter();
  void update(const ProgressCounters& counters);
  /// Erases the live line (terminal mode) so a log line can be printed cleanly.
  void clear_line();
  /// Final line (always logged) and newline after the live line.
  void finish(const ProgressCounters& counters);
  /// The progress text for `counters` at `elapsed` seconds (exposed for tests).
  std::string format(const ProgressCounters& counters, double elapsed) const;
  bool terminal() const { return terminal_; }

 private:
  const Logger& log_;
  std::string label_;
  std::uint64_t total_units_;
  bool terminal_ = false;
  bool off_ = false;
  bool line_shown_ = false;
  double log_seconds_;
  std::uint64_t log_interval_docs_;
  std::uint64_t next_docs_log_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::chrono::steady_clock::time_point last_log_;
};

}  // namespace bignlp::data
