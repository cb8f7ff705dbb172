// Peak dense matrix throughput of the GPUs bignlp's kernels run on: the denominator of MFU.
//
// One table (src/ops/peak_throughput.cpp), keyed by the device name the CUDA runtime reports and
// its compute capability. Figures are NVIDIA's datasheet numbers for dense math (the sparse
// figures halved), TFLOP/s per GPU: the 16-bit tensor-core peak (bf16 = fp16), TF32 tensor cores,
// and plain fp32 (CUDA cores). H100 SXM bf16 is 989 TFLOP/s, the figure the MFU tables of
// Megatron-LM, nanoGPT and llm.c use (docs/performance.md). A device that is not in the table, or
// whose compute capability disagrees with its entry, has no peak, so no MFU is printed.
//
// Matching: the name is upper-cased and split at every character that is not a letter or digit;
// an entry matches when its model token is one of the name's tokens and its form factor is the
// name's (a PCIE or NVL token, or neither: the SXM module, or the card's only form). "NVIDIA GH200
// 480GB" therefore never matches the H200 entry, and "NVIDIA A100-SXM4-80GB" matches A100 SXM.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bignlp/tensor/dtype.h"

namespace bignlp::ops {

/// What the CUDA runtime says a device is.
struct DeviceIdentity {
  std::string name = "cpu";  ///< cudaDeviceProp::name ("NVIDIA H100 80GB HBM3")
  int cc_major = 0;          ///< compute capability (0 on the CPU)
  int cc_minor = 0;
};

/// Which peak applies to a run's GEMMs.
enum class PeakMath {
  k16Bit,  ///< bf16/fp16 inputs, fp32 accumulation (tensor cores)
  kTf32,   ///< fp32 inputs on TF32 tensor cores
  kFp32,   ///< exact fp32 (CUDA cores)
};

/// bf16/fp16 -> k16Bit; fp32 -> kTf32 when allow_tf32, else kFp32.
PeakMath peak_math_for(DType compute_dtype, bool allow_tf32);

/// "bf16/fp16", "tf32" or "fp32".
const char* peak_math_name(PeakMath math);

/// One row of the table.
struct PeakEntry {
  const char* model;        ///< the model token: "H100", "A100", ...
  const char* form_factor;  ///< "PCIE", "NVL" or "" (neither token in the name)
  const char* label;        ///< "H100 SXM", "H100 PCIe", ...
  int cc_major, cc_minor;
  double tflops_16bit, tflops_tf32, tflops_fp32;  ///< dense, per GPU
};

/// The whole table (for documentation and tests).
std::span<const PeakEntry> peak_table();

/// A peak and what it is.
struct PeakThroughput {
  double tflops = 0.0;
  std::string description;  ///< "H100 SXM, bf16/fp16 dense"
};

/// The peak of `device` for `math`, or nullopt when the device is not in the table.
std::optional<PeakThroughput> peak_throughput(const DeviceIdentity& device, PeakMath math);

/// A CPU's fp32 peak: threads x FLOP per cycle and core (from the widest FMA unit the CPU reports)
/// x clock. The CPU ops compute in fp32 whatever the model's dtype, so this is the peak of every
/// dtype there. An estimate (two FMA pipes assumed, no turbo), printed as such.
struct CpuPeakInputs {
  int threads = 1;
  int flops_per_cycle = 8;  ///< per core: 64 (AVX-512 FMA), 32 (AVX2 FMA), 8 (SSE)
  double ghz = 0.0;
  std::string isa = "sse";  ///< "avx512f", "avx2+fma" or "sse"
};

/// threads x flops_per_cycle x ghz, with a description of the inputs.
PeakThroughput cpu_peak(const CpuPeakInputs& in);

/// This machine's inputs for `threads` threads (0: every hardware thread): the instruction set
/// from cpuid, the clock from cpufreq's maximum or /proc/cpuinfo; nullopt when no clock is known.
std::optional<CpuPeakInputs> probe_cpu_peak_inputs(int threads);

}  // namespace bignlp::ops
