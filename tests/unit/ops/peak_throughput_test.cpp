// The MFU denominator (ops/peak_throughput.h): the names the CUDA runtime reports for the GPUs
// bignlp runs on map to their datasheet peaks; anything else has none.
#include <gtest/gtest.h>

#include <set>

#include "bignlp/ops/peak_throughput.h"

namespace bignlp::ops {
namespace {

double peak(const std::string& name, int major, int minor, PeakMath math) {
  const auto p = peak_throughput(DeviceIdentity{name, major, minor}, math);
  return p ? p->tflops : -1.0;
}

TEST(PeakThroughputTest, HopperSxmIs989Bf16Dense) {
  EXPECT_EQ(peak("NVIDIA H100 80GB HBM3", 9, 0, PeakMath::k16Bit), 989.0);
  EXPECT_EQ(peak("NVIDIA H100 80GB HBM3", 9, 0, PeakMath::kTf32), 494.5);
  EXPECT_EQ(peak("NVIDIA H100 80GB HBM3", 9, 0, PeakMath::kFp32), 67.0);
  EXPECT_EQ(peak("NVIDIA H200", 9, 0, PeakMath::k16Bit), 989.0);
  EXPECT_EQ(peak("NVIDIA H200 141GB HBM3e", 9, 0, PeakMath::k16Bit), 989.0);
  EXPECT_EQ(peak("NVIDIA GH200 480GB", 9, 0, PeakMath::k16Bit), 989.0);
  const auto p = peak_throughput(DeviceIdentity{"NVIDIA H100 80GB HBM3", 9, 0}, PeakMath::k16Bit);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->description, "H100 SXM, bf16/fp16 dense");
}

TEST(PeakThroughputTest, FormFactorsDiffer) {
  EXPECT_EQ(peak("NVIDIA H100 PCIe", 9, 0, PeakMath::k16Bit), 756.5);
  EXPECT_EQ(peak("NVIDIA H100 NVL", 9, 0, PeakMath::k16Bit), 835.5);
  EXPECT_EQ(peak("NVIDIA H200 NVL", 9, 0, PeakMath::kTf32), 417.5);
  EXPECT_EQ(peak("NVIDIA H800 PCIe", 9, 0, PeakMath::kFp32), 51.0);
}

TEST(PeakThroughputTest, AmpereIs312Bf16) {
  EXPECT_EQ(peak("NVIDIA A100-SXM4-80GB", 8, 0, PeakMath::k16Bit), 312.0);
  EXPECT_EQ(peak("NVIDIA A100-SXM4-40GB", 8, 0, PeakMath::kTf32), 156.0);
  EXPECT_EQ(peak("NVIDIA A100 80GB PCIe", 8, 0, PeakMath::k16Bit), 312.0);
  EXPECT_EQ(peak("NVIDIA A100-PCIE-40GB", 8, 0, PeakMath::kFp32), 19.5);
  EXPECT_EQ(peak("NVIDIA A30", 8, 0, PeakMath::k16Bit), 165.0);
}

TEST(PeakThroughputTest, UnknownDevicesHaveNoPeak) {
  EXPECT_EQ(peak("NVIDIA GeForce RTX 4090", 8, 9, PeakMath::k16Bit), -1.0);
  EXPECT_EQ(peak("NVIDIA B200", 10, 0, PeakMath::k16Bit), -1.0);
  EXPECT_EQ(peak("cpu", 0, 0, PeakMath::kFp32), -1.0);
  // A name that matches but a compute capability that does not: not the device the table means.
  EXPECT_EQ(peak("NVIDIA H100 80GB HBM3", 8, 0, PeakMath::k16Bit), -1.0);
  // Whole tokens only: "H1000" is not an H100, "GH200" is not an H200 (it has its own entry).
  EXPECT_EQ(peak("NVIDIA H1000", 9, 0, PeakMath::k16Bit), -1.0);
}

TEST(PeakThroughputTest, PrecisionSelectsTheMath) {
  EXPECT_EQ(peak_math_for(DType::kBF16, true), PeakMath::k16Bit);
  EXPECT_EQ(peak_math_for(DType::kF16, false), PeakMath::k16Bit);
  EXPECT_EQ(peak_math_for(DType::kF32, true), PeakMath::kTf32);
  EXPECT_EQ(peak_math_for(DType::kF32, false), PeakMath::kFp32);
}

TEST(PeakThroughputTest, TableIsConsistent) {
  std::set<std::pair<std::string, std::string>> keys;
  for (const PeakEntry& e : peak_table()) {
    EXPECT_TRUE(keys.insert({e.model, e.form_factor}).second) << e.label << " listed twice";
    // Dense tensor-core math: TF32 is half of 16-bit (within the datasheets' rounding); fp32 is far below.
    EXPECT_NEAR(e.tflops_tf32 * 2.0, e.tflops_16bit, 1.0 + 0.01 * e.tflops_16bit) << e.label;
    EXPECT_LT(e.tflops_fp32, e.tflops_tf32) << e.label;
    EXPECT_GE(e.cc_major, 8) << e.label << ": bignlp's kernels need compute capability 8.0";
  }
}

TEST(CpuPeak, ThreadsTimesFlopsPerCycleTimesClock) {
  CpuPeakInputs in;
  in.threads = 16;
  in.flops_per_cycle = 32;
  in.ghz = 2.5;
  in.isa = "avx2+fma";
  const PeakThroughput p = cpu_peak(in);
  EXPECT_DOUBLE_EQ(p.tflops, 1.28);  // 16 x 32 x 2.5 GFLOP/s
  EXPECT_EQ(p.description, "CPU estimate: 16 thread(s) x 32 fp32 FLOP/cycle (avx2+fma) x 2.50 GHz");
}

TEST(CpuPeak, ThisMachineHasAPlausibleEstimate) {
  const auto in = probe_cpu_peak_inputs(3);
  if (!in) GTEST_SKIP() << "no clock in cpufreq or /proc/cpuinfo";
  EXPECT_EQ(in->threads, 3);
  EXPECT_TRUE(in->flops_per_cycle == 8 || in->flops_per_cycle == 16 || in->flops_per_cycle == 32 ||
              in->flops_per_cycle == 64);
  EXPECT_GT(in->ghz, 0.2);
  EXPECT_LT(in->ghz, 10.0);
  EXPECT_GE(probe_cpu_peak_inputs(0)->threads, 1);
}

}  // namespace
}  // namespace bignlp::ops
