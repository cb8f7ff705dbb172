#include "bignlp/data/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "bignlp/core/strings.h"

namespace bignlp::data {
namespace {

std::string human(double v) {
  if (v >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

}  // namespace

ProgressReporter::ProgressReporter(const Logger& log, std::string label, std::uint64_t total_units, ProgressMode mode,
                                   double log_seconds, std::uint64_t log_interval_docs)
    : log_(log),
      label_(std::move(label)),
      total_units_(total_units),
      log_seconds_(log_seconds),
      log_interval_docs_(log_interval_docs),
      next_docs_log_(log_interval_docs) {
  if (mode == ProgressMode::kAuto) mode = ::isatty(STDERR_FILENO) ? ProgressMode::kTerminal : ProgressMode::kLog;
  terminal_ = mode == ProgressMode::kTerminal;
  off_ = mode == ProgressMode::kOff;
  start_ = last_draw_ = last_log_ = std::chrono::steady_clock::now();
}

ProgressReporter::~ProgressReporter() { clear_line(); }

std::string ProgressReporter::format(const ProgressCounters& c, double elapsed) const {
  const double secs = std::max(elapsed, 1e-9);
  std::string s = fmt::format("{}: {} docs | {} ({:.1f} MB/s) | {} tokens ({} tok/s)", label_, human(static_cast<double>(c.docs)),
                              format_bytes(c.bytes), static_cast<double>(c.bytes) / secs / 1e6,
                              human(static_cast<double>(c.tokens)), human(static_cast<double>(c.tokens) / secs));
  if (total_units_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(c.done_units) / static_cast<double>(total_units_));
    s += fmt::format(" | {:.0f}%", frac * 100.0);
    if (frac > 0.0 && frac < 1.0) s += " ETA " + format_duration(elapsed / frac - elapsed);
  }
  return s;
}

void ProgressReporter::update(const ProgressCounters& c) {
  if (off_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (terminal_) {
    if (now - last_draw_ < std::chrono::milliseconds(250)) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r%s\033[K", format(c, elapsed).c_str());
    std::fflush(stderr);
    line_shown_ = true;
    return;
  }
  const bool by_time = std::chrono::duration<double>(now - last_log_).count() >= log_seconds_;
  const bool by_docs = log_interval_docs_ > 0 && c.docs >= next_docs_log_;
  if (by_time || by_docs) {
    last_log_ = now;
    if (log_interval_docs_ > 0) {
      while (next_docs_log_ <= c.docs) next_docs_log_ += log_interval_docs_;
    }
    log_.info("{}", format(c, elapsed));
  }
}

void ProgressReporter::clear_line() {
  if (terminal_ && line_shown_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    line_shown_ = false;
  }
}

void ProgressReporter::finish(const ProgressCounters& c) {
  clear_line();
  if (off_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  log_.info("{} in {}", format(c, elapsed), format_duration(elapsed));
}

}  // namespace bignlp::data
