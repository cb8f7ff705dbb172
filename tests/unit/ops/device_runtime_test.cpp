// Device choice of the programs (ops/device_runtime.h): the request grammar, select_device on
// made-up inventories (no GPU needed), the error messages, and the CPU runtime.
#include <gtest/gtest.h>

#include <string>

#include "bignlp/core/error.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::ops {
namespace {

DeviceRequest request(DeviceKind kind, std::string text) {
  DeviceRequest r;
  r.kind = kind;
  r.text = std::move(text);
  r.origin = "stage.yaml:14:16: trainer.accelerator";
  r.cpu_fix = "trainer.accelerator=cpu";
  return r;
}

DeviceInventory gpus(int n, std::optional<std::string> visible = std::nullopt) {
  DeviceInventory inv;
  inv.cuda_built = true;
  inv.cuda_devices = n;
  if (n == 0) inv.cuda_status = "cudaGetDeviceCount: no CUDA-capable device is detected";
  inv.cuda_visible_devices = std::move(visible);
  return inv;
}

DeviceInventory cpu_build() { return DeviceInventory{}; }

std::string error_of(const DeviceRequest& r, const DeviceInventory& inv, int local_rank) {
  try {
    select_device(r, inv, local_rank);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DeviceRuntimeTest, ParsesTheRequestWords) {
  EXPECT_EQ(parse_device_kind("cpu", "--device"), DeviceKind::kCpu);
  EXPECT_EQ(parse_device_kind("gpu", "--device"), DeviceKind::kCuda);
  EXPECT_EQ(parse_device_kind("cuda", "--device"), DeviceKind::kCuda);
  EXPECT_EQ(parse_device_kind("auto", "--device"), DeviceKind::kAuto);
  try {
    parse_device_kind("tpu", "x.yaml:3:5: trainer.accelerator");
    FAIL() << "tpu accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "x.yaml:3:5: trainer.accelerator: 'tpu' is not a device; expected cpu, gpu (or cuda) or auto");
  }
  EXPECT_THROW(parse_device_kind("GPU", "--device"), ConfigError) << "Lightning's names are lower case";
  EXPECT_STREQ(device_kind_name(DeviceKind::kCuda), "gpu");
}

TEST(DeviceRuntimeTest, CpuRequestsAlwaysGetTheCpu) {
  EXPECT_EQ(select_device(request(DeviceKind::kCpu, "cpu"), gpus(8), 3), Device::cpu());
  EXPECT_EQ(select_device(request(DeviceKind::kCpu, "cpu"), cpu_build(), 0), Device::cpu());
}

TEST(DeviceRuntimeTest, AutoTakesTheGpuOnlyWhenThereIsOne) {
  EXPECT_EQ(select_device(request(DeviceKind::kAuto, "auto"), cpu_build(), 0), Device::cpu());
  EXPECT_EQ(select_device(request(DeviceKind::kAuto, "auto"), gpus(0), 0), Device::cpu());
  EXPECT_EQ(select_device(request(DeviceKind::kAuto, "auto"), gpus(2), 1), Device::cuda(1));
}

TEST(DeviceRuntimeTest, LocalRankPicksTheDevice) {
  const DeviceRequest r = request(DeviceKind::kCuda, "gpu");
  for (int rank = 0; rank < 8; ++rank) EXPECT_EQ(select_device(r, gpus(8, "0,1,2,3,4,5,6,7"), rank), Device::cuda(rank));
  // srun --gpus-per-task=1: each task sees only its own GPU, as device 0.
  EXPECT_EQ(select_device(r, gpus(1, "5"), 5), Device::cuda(0));
}

TEST(DeviceRuntimeTest, GpuWithoutCudaInTheBuildNamesTheKeyAndTheFix) {
  const std::string msg = error_of(request(DeviceKind::kCuda, "gpu"), cpu_build(), 0);
  EXPECT_EQ(msg,
            "stage.yaml:14:16: trainer.accelerator: 'gpu' asks for a GPU, but this program was built without CUDA. "
            "Fix: build bignlp with CUDA (cmake --preset cuda; needs nvcc), or run on the CPU: trainer.accelerator=cpu");
}

TEST(DeviceRuntimeTest, GpuWithoutADeviceSaysWhatTheRuntimeSaw) {
  const std::string msg = error_of(request(DeviceKind::kCuda, "gpu"), gpus(0, ""), 0);
  EXPECT_EQ(msg,
            "stage.yaml:14:16: trainer.accelerator: 'gpu' asks for a GPU, but no CUDA device is visible to this "
            "process (cudaGetDeviceCount: no CUDA-capable device is detected; CUDA_VISIBLE_DEVICES=''). Fix: run on a "
            "machine with a GPU (nvidia-smi lists it) and request GPUs for the job, or run on the CPU: "
            "trainer.accelerator=cpu");
  EXPECT_NE(error_of(request(DeviceKind::kCuda, "cuda"), gpus(0), 0).find("CUDA_VISIBLE_DEVICES unset"),
            std::string::npos);
}

TEST(DeviceRuntimeTest, MoreRanksThanDevicesIsAnError) {
  // Two ranks on a one-GPU machine (no per-task binding): rank 1 has no device of its own.
  const std::string msg = error_of(request(DeviceKind::kCuda, "gpu"), gpus(1), 1);
  EXPECT_EQ(msg,
            "stage.yaml:14:16: trainer.accelerator: 'gpu': local rank 1 (SLURM_LOCALID / LOCAL_RANK) needs CUDA device "
            "1, but 1 is visible (CUDA_VISIBLE_DEVICES unset). Fix: start at most 1 ranks per node (trainer.devices), "
            "or give each task its own GPU (srun --gpus-per-task=1)");
  EXPECT_THROW(select_device(request(DeviceKind::kCuda, "gpu"), gpus(4, "0,1,2,3"), 4), ConfigError);
  EXPECT_THROW(select_device(request(DeviceKind::kAuto, "auto"), gpus(2, "0,1"), 2), ConfigError)
      << "auto with GPUs present does not fall back to the CPU for some ranks";
}

TEST(DeviceRuntimeTest, TheCpuRuntimeIsWhatProgramsUsedBefore) {
  DeviceRuntimeOptions o;
  o.cpu_threads = 2;
  const DeviceRuntime rt(Device::cpu(), {}, o);
  const OpContext& ctx = rt.context();
  EXPECT_EQ(ctx.device, Device::cpu());
  EXPECT_EQ(ctx.cpu_threads, 2);
  EXPECT_EQ(ctx.cuda, nullptr);
  ASSERT_NE(ctx.allocator, nullptr);
  EXPECT_EQ(ctx.allocator->device(), Device::cpu());
  EXPECT_EQ(rt.cuda_stream(), nullptr);
  EXPECT_FALSE(rt.allow_tf32());
  // The CPU's MFU denominator is an estimate for the runtime's 2 threads, the same for every dtype.
  if (const auto in = probe_cpu_peak_inputs(2)) {
    const auto p = rt.peak(DType::kBF16);
    ASSERT_TRUE(p);
    EXPECT_DOUBLE_EQ(p->tflops, cpu_peak(*in).tflops);
    EXPECT_DOUBLE_EQ(p->tflops, rt.peak(DType::kF32)->tflops);
    EXPECT_NE(p->description.find("CPU estimate: 2 thread(s)"), std::string::npos) << p->description;
  }
  EXPECT_EQ(rt.describe(), "cpu");
  // The context computes: a fill through it, then synchronize (a no-op here).
  Buffer b(rt.allocator(), DType::kF32, Shape{4});
  fill(ctx, b, 2.5);
  rt.synchronize();
  synchronize(ctx);
  EXPECT_EQ(b.data<float>()[3], 2.5f);
}

TEST(DeviceRuntimeTest, ProbeReadsCudaVisibleDevicesFromTheMap) {
  const DeviceInventory inv = probe_devices({{"CUDA_VISIBLE_DEVICES", "3"}});
  ASSERT_TRUE(inv.cuda_visible_devices);
  EXPECT_EQ(*inv.cuda_visible_devices, "3");
  EXPECT_FALSE(probe_devices({}).cuda_visible_devices);
#if defined(BIGNLP_WITH_CUDA)
  EXPECT_TRUE(inv.cuda_built);
  EXPECT_GE(inv.cuda_devices, 0);
#else
  EXPECT_FALSE(inv.cuda_built);
  EXPECT_EQ(inv.cuda_devices, 0);
  EXPECT_THROW(DeviceRuntime(Device::cuda(0), {}), ConfigError);
#endif
}

}  // namespace
}  // namespace bignlp::ops
