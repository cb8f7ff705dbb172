#include "bignlp/train/metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::train {

std::string format_step_line(const StepMetrics& m) {
  std::string s = fmt::format(
      "global_step: {} | consumed_samples: {} | reduced_train_loss: {:.4f} | lr: {:.4e} | train_step_timing in s: "
      "{:.3f} | tokens/s: {:.1f} | TFLOP/s/device: {:.3f}",
      m.global_step, m.consumed_samples, m.reduced_train_loss, m.lr, m.train_step_timing, m.tokens_per_second,
      m.tflops_per_device);
  if (m.mfu) s += fmt::format(" | MFU: {:.2f}%", *m.mfu * 100.0);
  if (m.loss_scale) s += fmt::format(" | loss_scale: {:g}", *m.loss_scale);
  if (m.val_loss) s += fmt::format(" | val_loss: {:.4f}", *m.val_loss);
  return s;
}

CsvMetricsWriter::CsvMetricsWriter(const std::filesystem::path& path) : path_(path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const bool fresh = !std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0;
  file_ = std::fopen(path.c_str(), "ab");
  if (file_ == nullptr) throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  if (fresh) std::fprintf(file_, "%s\n", kCsvColumns);
  std::fflush(file_);
}

CsvMetricsWriter::~CsvMetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void CsvMetricsWriter::write(const StepMetrics& m) {
  auto opt = [](const std::optional<double>& v) { return v ? fmt::format("{:.8g}", *v) : std::string(); };
  const std::string row = fmt::format("{},{},{:.8g},{:.8g},{:.6g},{:.6g},{:.6g},{},{:.6g},{},{}\n", m.global_step,
                                      m.consumed_samples, m.reduced_train_loss, m.lr, m.train_step_timing,
                                      m.tokens_per_second, m.tflops_per_device, opt(m.mfu), m.grad_norm,
                                      opt(m.loss_scale), opt(m.val_loss));
  if (std::fputs(row.c_str(), file_) < 0 || std::fflush(file_) != 0)
    throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
}

ProgressBar::ProgressBar(std::FILE* stream, std::int64_t total_steps)
    : stream_(stream), total_(total_steps), active_(stream != nullptr && ::isatty(::fileno(stream)) == 1) {}

void ProgressBar::update(std::int64_t step, double loss, double step_seconds) {
  if (!active_) return;
  constexpr int kWidth = 30;
  const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 0.0;
  const int filled = static_cast<int>(frac * kWidth);
  const std::string bar = std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(kWidth - filled), '.');
  const double eta = step_seconds * static_cast<double>(total_ - step);
  std::fprintf(stream_, "\r\033[K[%s] %lld/%lld loss %.4f %.3fs/step ETA %s", bar.c_str(), static_cast<long long>(step),
               static_cast<long long>(total_), loss, step_seconds, format_duration(eta).c_str());
  std::fflush(stream_);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!active_ || !drawn_) return;
  std::fprintf(stream_, "\r\033[K");
  std::fflush(stream_);
  drawn_ = false;
}

void ProgressBar::finish() {
  if (!active_ || !drawn_) return;
  std::fprintf(stream_, "\n");
  std::fflush(stream_);
  drawn_ = false;
}

}  // namespace bignlp::train
