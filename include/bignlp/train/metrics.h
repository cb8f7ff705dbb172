// Training metrics and where they go: the stdout line, the CSV file and the progress bar.
//
// Stdout line (ARCHITECTURE §4; parsed by tools, so the keys and order are stable):
//   global_step: 20 | consumed_samples: 160 | reduced_train_loss: 5.1234 | lr: 1.0000e-04 |
//   train_step_timing in s: 0.512 | tokens/s: 2000.0 | TFLOP/s/device: 0.123 [| MFU: 12.34%]
//   [| loss_scale: 65536] [| val_loss: 5.0123]
// "key: value" fields separated by " | ". MFU appears when the device peak is known; val_loss on
// steps that validate; loss_scale with fp16. MFU = global_batch * model_flops_per_sequence /
// step_time / devices / peak (the benchmark recipe's formula).
// CSV (metrics.csv): one row per logged step, columns as kCsvColumns, empty cells when absent.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

namespace bignlp::train {

struct StepMetrics {
  std::int64_t global_step = 0;
  std::int64_t consumed_samples = 0;
  double reduced_train_loss = 0.0;
  double lr = 0.0;
  double train_step_timing = 0.0;  ///< seconds per optimizer step
  double tokens_per_second = 0.0;
  double tflops_per_device = 0.0;  ///< model TFLOP/s per device
  std::optional<double> mfu;       ///< fraction (0.42 = 42%)
  std::optional<double> loss_scale;
  std::optional<double> val_loss;
  double grad_norm = 0.0;
};

/// The stdout line for `m` (no trailing newline).
std::string format_step_line(const StepMetrics& m);

/// Appends rows to <dir>/metrics.csv (header written when the file is new or empty).
class CsvMetricsWriter {
 public:
  static constexpr const char* kCsvColumns =
      "global_step,consumed_samples,reduced_train_loss,lr,train_step_timing,tokens_per_second,tflops_per_device,mfu,"
      "grad_norm,loss_scale,val_loss";
  explicit CsvMetricsWriter(const std::filesystem::path& path);
  ~CsvMetricsWriter();
  CsvMetricsWriter(const CsvMetricsWriter&) = delete;
  CsvMetricsWriter& operator=(const CsvMetricsWriter&) = delete;
  void write(const StepMetrics& m);

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

/// A one-line progress bar redrawn in place ("\r") on a terminal; inert when `stream` is not a TTY.
class ProgressBar {
 public:
  ProgressBar(std::FILE* stream, std::int64_t total_steps);
  /// Redraws: [#####.....] step/total, loss, s/step, ETA.
  void update(std::int64_t step, double loss, double step_seconds);
  /// Erases the bar so a log line can be printed cleanly (redraw with the next update()).
  void clear();
  void finish();
  bool active() const { return active_; }

 private:
  std::FILE* stream_;
  std::int64_t total_;
  bool active_ = false;
  bool drawn_ = false;
};

}  // namespace bignlp::train
