#include "bignlp/ops/device_runtime.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

#if defined(BIGNLP_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "bignlp/ops/cuda_context.h"
#include "bignlp/tensor/cuda_allocator.h"
#endif

namespace bignlp::ops {
namespace {

std::string visible_text(const DeviceInventory& inv) {
  return inv.cuda_visible_devices ? fmt::format("CUDA_VISIBLE_DEVICES='{}'", *inv.cuda_visible_devices)
                                  : std::string("CUDA_VISIBLE_DEVICES unset");
}

/// CUDA_VISIBLE_DEVICES names exactly one device: the scheduler gave this task its own GPU.
bool one_device_per_task(const DeviceInventory& inv) {
  return inv.cuda_visible_devices && !inv.cuda_visible_devices->empty() &&
         inv.cuda_visible_devices->find(',') == std::string::npos;
}

}  // namespace

DeviceKind parse_device_kind(std::string_view text, std::string_view origin) {
  if (text == "cpu") return DeviceKind::kCpu;
  if (text == "gpu" || text == "cuda") return DeviceKind::kCuda;
  if (text == "auto") return DeviceKind::kAuto;
  throw ConfigError(fmt::format("{}: '{}' is not a device; expected cpu, gpu (or cuda) or auto", origin, text));
}

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "gpu";
    case DeviceKind::kAuto: return "auto";
  }
  return "?";
}

DeviceInventory probe_devices(const std::map<std::string, std::string>& env) {
  DeviceInventory inv;
  if (auto it = env.find("CUDA_VISIBLE_DEVICES"); it != env.end()) inv.cuda_visible_devices = it->second;
#if defined(BIGNLP_WITH_CUDA)
  inv.cuda_built = true;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    inv.cuda_devices = 0;
    inv.cuda_status = fmt::format("cudaGetDeviceCount: {}", cudaGetErrorString(status));
  } else {
    inv.cuda_devices = count;
    if (count == 0) inv.cuda_status = "cudaGetDeviceCount: 0 devices";
  }
#endif
  return inv;
}

Device select_device(const DeviceRequest& request, const DeviceInventory& inv, int local_rank) {
  if (request.kind == DeviceKind::kCpu) return Device::cpu();
  const bool usable = inv.cuda_built && inv.cuda_devices > 0;
  if (request.kind == DeviceKind::kAuto && !usable) return Device::cpu();
  if (!inv.cuda_built)
    throw ConfigError(fmt::format(
        "{}: '{}' asks for a GPU, but this program was built without CUDA. Fix: build bignlp with CUDA "
        "(cmake --preset cuda; needs nvcc), or run on the CPU: {}",
        request.origin, request.text, request.cpu_fix));
  if (inv.cuda_devices == 0)
    throw ConfigError(fmt::format(
        "{}: '{}' asks for a GPU, but no CUDA device is visible to this process ({}; {}). Fix: run on a machine "
        "with a GPU (nvidia-smi lists it) and request GPUs for the job, or run on the CPU: {}",
        request.origin, request.text, inv.cuda_status.empty() ? "no device" : inv.cuda_status, visible_text(inv),
        request.cpu_fix));
  BIGNLP_CHECK(local_rank >= 0, "local rank {} is negative", local_rank);
  if (local_rank < inv.cuda_devices) return Device::cuda(local_rank);
  if (inv.cuda_devices == 1 && one_device_per_task(inv)) return Device::cuda(0);
  throw ConfigError(fmt::format(
      "{}: '{}': local rank {} (SLURM_LOCALID / LOCAL_RANK) needs CUDA device {}, but {} {} visible ({}). Fix: "
      "start at most {} ranks per node (trainer.devices), or give each task its own GPU (srun --gpus-per-task=1)",
      request.origin, request.text, local_rank, local_rank, inv.cuda_devices, inv.cuda_devices == 1 ? "is" : "are",
      visible_text(inv), inv.cuda_devices));
}

#if defined(BIGNLP_WITH_CUDA)
struct DeviceRuntime::Cuda {
  std::unique_ptr<CudaContext> context;
  std::unique_ptr<CachingAllocator> allocator;
};
#else
struct DeviceRuntime::Cuda {};
#endif

DeviceRuntime::DeviceRuntime(Device device, const std::map<std::string, std::string>& env,
                             const DeviceRuntimeOptions& options) {
  if (device.is_cpu()) {
    cpu_allocator_ = std::make_unique<CpuAllocator>();
    ctx_ = OpContext::cpu(options.cpu_threads);
    ctx_.allocator = cpu_allocator_.get();
    return;
  }
#if defined(BIGNLP_WITH_CUDA)
  CudaContextOptions o = cuda_options_from_environment(env);
  o.device = device.index;
  o.allow_tf32 = options.allow_tf32;
  cuda_ = std::make_unique<Cuda>();
  cuda_->context = std::make_unique<CudaContext>(o);
  cuda_->allocator = make_cuda_allocator(device.index);
  ctx_ = cuda_->context->op_context(*cuda_->allocator);
  ctx_.cpu_threads = options.cpu_threads;
  identity_ = DeviceIdentity{cuda_->context->device_name, cuda_->context->cc_major, cuda_->context->cc_minor};
#else
  (void)env;
  throw ConfigError(fmt::format("{} requested, but this program was built without CUDA (cmake --preset cuda)",
                                device.to_string()));
#endif
}

DeviceRuntime::~DeviceRuntime() {
#if defined(BIGNLP_WITH_CUDA)
  if (cuda_) {
    try {
      cuda_->context->synchronize();
    } catch (...) {
      // A pending asynchronous error was (or will be) reported by the call that met it; a
      // destructor must not throw.
    }
    cuda_->allocator.reset();  // before the context: its memory goes back while the device is current
  }
#endif
}

void DeviceRuntime::synchronize() const { ops::synchronize(ctx_); }

void* DeviceRuntime::cuda_stream() const {
#if defined(BIGNLP_WITH_CUDA)
  if (cuda_) return static_cast<void*>(cuda_->context->stream);
#endif
  return nullptr;
}

bool DeviceRuntime::allow_tf32() const {
#if defined(BIGNLP_WITH_CUDA)
  if (cuda_) return cuda_->context->allow_tf32;
#endif
  return false;
}

std::optional<PeakThroughput> DeviceRuntime::peak(DType compute_dtype) const {
  if (ctx_.device.is_cpu()) {
    const std::optional<CpuPeakInputs> in = probe_cpu_peak_inputs(ctx_.cpu_threads);
    if (!in) return std::nullopt;
    return cpu_peak(*in);
  }
  return peak_throughput(identity_, peak_math_for(compute_dtype, allow_tf32()));
}

std::string DeviceRuntime::describe() const {
#if defined(BIGNLP_WITH_CUDA)
  if (cuda_) {
    const CudaContext& c = *cuda_->context;
    return fmt::format("{} ({}, compute capability {}.{}, {:.1f} GiB)", ctx_.device.to_string(), c.device_name,
                       c.cc_major, c.cc_minor, static_cast<double>(c.total_memory) / (1ull << 30));
  }
#endif
  return ctx_.device.to_string();
}

void synchronize(const OpContext& ctx) {
  if (!ctx.device.is_cuda()) return;
#if defined(BIGNLP_WITH_CUDA)
  BIGNLP_CHECK(ctx.cuda != nullptr, "a CUDA OpContext without its CudaContext");
  ctx.cuda->synchronize();
#endif
}

}  // namespace bignlp::ops
