#include "bignlp/core/logging.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp {

struct Logger::Shared {
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<std::ostringstream> capture;  // only for capturing()
  std::shared_ptr<std::mutex> capture_mutex;
};

namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

void configure(spdlog::logger& logger) {
  logger.set_pattern("[%H:%M:%S] [%^%l%$] %v");
  logger.set_level(spdlog::level::trace);  // filtering happens in Logger::enabled
  logger.set_error_handler([](const std::string& msg) {
    // Logging must never throw into the caller; report once on stderr and carry on.
    std::fputs(("bignlp: logging error: " + msg + "\n").c_str(), stderr);
  });
}

}  // namespace

LogLevel parse_log_level(std::string_view text) {
  const std::string t = to_lower(text);
  if (t == "trace") return LogLevel::kTrace;
  if (t == "debug") return LogLevel::kDebug;
  if (t == "info") return LogLevel::kInfo;
  if (t == "warn" || t == "warning") return LogLevel::kWarn;
  if (t == "error") return LogLevel::kError;
  if (t == "off") return LogLevel::kOff;
  throw UsageError("unknown log level '" + std::string(text) + "' (expected trace, debug, info, warn, error or off)");
}

Logger::Logger(std::string name, LogLevel level) : shared_(std::make_shared<Shared>()), level_(level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  shared_->logger = std::make_shared<spdlog::logger>(std::move(name), std::move(sink));
  configure(*shared_->logger);
}

Logger Logger::capturing(LogLevel level) {
  Logger out("capture", level);
  out.shared_->capture = std::make_shared<std::ostringstream>();
  out.shared_->capture_mutex = std::make_shared<std::mutex>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out.shared_->capture);
  out.shared_->logger = std::make_shared<spdlog::logger>("capture", std::move(sink));
  configure(*out.shared_->logger);
  out.shared_->logger->set_pattern("[%l] %v");
  return out;
}

Logger Logger::with_rank(const RankInfo& rank) const {
  Logger out = *this;
  out.rank_ = rank;
  out.prefix_.clear();
  if (rank.rank >= 0) {
    out.prefix_ = fmt::format("[rank {}", rank.rank);
    if (rank.tp >= 0) out.prefix_ += fmt::format(" | tp {} pp {} dp {}", rank.tp, rank.pp, rank.dp);
    out.prefix_ += "] ";
  }
  return out;
}

Logger Logger::with_level(LogLevel level) const {
  Logger out = *this;
  out.level_ = level;
  return out;
}

bool Logger::enabled(LogLevel level) const noexcept {
  if (level_ == LogLevel::kOff || level < level_) return false;
  if (rank_.rank > 0 && !rank_.print_all_ranks) return false;
  return true;
}

void Logger::log(LogLevel level, std::string_view message) const noexcept {
  if (!enabled(level)) return;
  try {
    shared_->logger->log(to_spdlog(level), "{}{}", prefix_, message);
    shared_->logger->flush();
  } catch (...) {
    // Never throw from logging.
  }
}

std::string Logger::captured() const {
  if (!shared_->capture) return {};
  shared_->logger->flush();
  std::lock_guard<std::mutex> lock(*shared_->capture_mutex);
  return shared_->capture->str();
}

}  // namespace bignlp
