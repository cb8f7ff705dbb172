// The logging facade: a rank-aware, never-throwing wrapper over spdlog.
//
// A Logger is a small value (it shares one spdlog logger); programs create it in main() and pass
// it down: there is no global logger. Every line carries "[rank r | tp t pp p dp d]" once the
// parallel position is known. By default only rank 0 prints (RankInfo::print_all_ranks to change).
// Errors inside logging go to spdlog's error handler, never to the caller.
// Tests capture output with Logger::capturing() and read it back with captured().
#pragma once

#include <fmt/format.h>

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace bignlp {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

/// Parses "trace|debug|info|warn|error|off" (case-insensitive); throws UsageError otherwise.
LogLevel parse_log_level(std::string_view text);

/// Position of this process in the parallel job; all -1 when unknown (single process).
struct RankInfo {
  int rank = -1;
  int tp = -1;
  int pp = -1;
  int dp = -1;
  bool print_all_ranks = false;
};

class Logger {
 public:
  /// A logger writing to stderr (colour when it is a terminal) at `level`.
  explicit Logger(std::string name = "bignlp", LogLevel level = LogLevel::kInfo);
  /// A logger that keeps its output in memory (for tests); read it with captured().
  static Logger capturing(LogLevel level = LogLevel::kTrace);

  /// A copy with the rank prefix set; ranks other than 0 are silenced unless print_all_ranks.
  Logger with_rank(const RankInfo& rank) const;
  Logger with_level(LogLevel level) const;

  template <typename... Args>
  void trace(fmt::format_string<Args...> f, Args&&... args) const { log(LogLevel::kTrace, fmt::format(f, std::forward<Args>(args)...)); }
  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const { log(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...)); }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const { log(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...)); }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const { log(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...)); }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const { log(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...)); }

  /// Writes one already formatted line. Never throws.
  void log(LogLevel level, std::string_view message) const noexcept;
  bool enabled(LogLevel level) const noexcept;
  LogLevel level() const noexcept { return level_; }
  const RankInfo& rank() const noexcept { return rank_; }

  /// Everything written so far by a capturing() logger (and its copies); empty otherwise.
  std::string captured() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  RankInfo rank_;
  LogLevel level_ = LogLevel::kInfo;
  std::string prefix_;
};

}  // namespace bignlp
