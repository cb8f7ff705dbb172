#include "bignlp/ops/peak_throughput.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bignlp::ops {
namespace {

// NVIDIA datasheets, dense (the "with sparsity" figures halved), TFLOP/s per GPU.
// Hopper SXM (H100, H200, GH200, H800): 1979 bf16 sparse -> 989 (the MFU denominator everybody
// quotes for H100), 989 TF32 sparse -> 494.5, fp32 67. H100/H800 PCIe: 1513 -> 756.5, 756 -> 378,
// fp32 51. H100/H200 NVL: 1671 -> 835.5, 835 -> 417.5, fp32 60. Ampere A100/A800 (SXM and PCIe):
// bf16 312, TF32 156, fp32 19.5. A30: bf16 165, TF32 82, fp32 10.3.
constexpr std::array<PeakEntry, 13> kTable{{
    {"H100", "", "H100 SXM", 9, 0, 989.0, 494.5, 67.0},
    {"H100", "PCIE", "H100 PCIe", 9, 0, 756.5, 378.0, 51.0},
    {"H100", "NVL", "H100 NVL", 9, 0, 835.5, 417.5, 60.0},
    {"H200", "", "H200 SXM", 9, 0, 989.0, 494.5, 67.0},
    {"H200", "NVL", "H200 NVL", 9, 0, 835.5, 417.5, 60.0},
    {"GH200", "", "GH200", 9, 0, 989.0, 494.5, 67.0},
    {"H800", "", "H800 SXM", 9, 0, 989.0, 494.5, 67.0},
    {"H800", "PCIE", "H800 PCIe", 9, 0, 756.5, 378.0, 51.0},
    {"A100", "", "A100 SXM", 8, 0, 312.0, 156.0, 19.5},
    {"A100", "PCIE", "A100 PCIe", 8, 0, 312.0, 156.0, 19.5},
    {"A800", "", "A800 SXM", 8, 0, 312.0, 156.0, 19.5},
    {"A800", "PCIE", "A800 PCIe", 8, 0, 312.0, 156.0, 19.5},
    {"A30", "", "A30", 8, 0, 165.0, 82.0, 10.3},
}};

std::vector<std::string> tokens_of(std::string_view name) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      cur.push_back(static_cast<char>(std::toupper(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

PeakMath peak_math_for(DType compute_dtype, bool allow_tf32) {
  if (compute_dtype == DType::kBF16 || compute_dtype == DType::kF16) return PeakMath::k16Bit;
  return allow_tf32 ? PeakMath::kTf32 : PeakMath::kFp32;
}

const char* peak_math_name(PeakMath math) {
  switch (math) {
    case PeakMath::k16Bit: return "bf16/fp16";
    case PeakMath::kTf32: return "tf32";
    case PeakMath::kFp32: return "fp32";
  }
  return "?";
}

std::span<const PeakEntry> peak_table() { return kTable; }

std::optional<PeakThroughput> peak_throughput(const DeviceIdentity& device, PeakMath math) {
  const std::vector<std::string> tokens = tokens_of(device.name);
  const auto has = [&](std::string_view t) { return std::find(tokens.begin(), tokens.end(), t) != tokens.end(); };
  const std::string form = has("PCIE") ? "PCIE" : has("NVL") ? "NVL" : "";
  for (const PeakEntry& e : kTable) {
    if (!has(e.model) || form != e.form_factor || device.cc_major != e.cc_major || device.cc_minor != e.cc_minor)
      continue;
    const double tflops = math == PeakMath::k16Bit ? e.tflops_16bit
                          : math == PeakMath::kTf32 ? e.tflops_tf32
                                                    : e.tflops_fp32;
    return PeakThroughput{tflops, fmt::format("{}, {} dense", e.label, peak_math_name(math))};
  }
  return std::nullopt;
}

PeakThroughput cpu_peak(const CpuPeakInputs& in) {
  const double tflops = static_cast<double>(in.threads) * in.flops_per_cycle * in.ghz / 1000.0;
  return PeakThroughput{tflops, fmt::format("CPU estimate: {} thread(s) x {} fp32 FLOP/cycle ({}) x {:.2f} GHz",
                                            in.threads, in.flops_per_cycle, in.isa, in.ghz)};
}

std::optional<CpuPeakInputs> probe_cpu_peak_inputs(int threads) {
  CpuPeakInputs in;
  in.threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    in.flops_per_cycle = 64;
    in.isa = "avx512f";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    in.flops_per_cycle = 32;
    in.isa = "avx2+fma";
  }
#elif defined(__aarch64__)
  in.flops_per_cycle = 16;  // two 128-bit NEON FMA pipes
  in.isa = "neon";
#endif
  // The clock: cpufreq's maximum (kHz) where the kernel exposes it, else the first "cpu MHz".
  std::ifstream freq("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  double khz = 0.0;
  if (freq >> khz && khz > 0) {
    in.ghz = khz / 1e6;
    return in;
  }
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    try {
      const double mhz = std::stod(line.substr(colon + 1));
      if (mhz > 0) {
        in.ghz = mhz / 1000.0;
        return in;
      }
    } catch (const std::exception&) {
    }
    break;
  }
  return std::nullopt;
}

}  // namespace bignlp::ops
