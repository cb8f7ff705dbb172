// DeviceRuntime: the device a program computes on, chosen once in main() and owned there.
//
// Choosing: a request (trainer.accelerator or a --device flag: cpu, gpu/cuda or auto) plus what
// this process can use (a DeviceInventory: was it built with CUDA, how many devices are visible)
// plus the rank's place on its node (SLURM_LOCALID / LOCAL_RANK) give one Device:
//   cpu  -> the CPU;
//   gpu  -> CUDA device local_rank, or device 0 when the scheduler bound one GPU per task
//           (CUDA_VISIBLE_DEVICES names exactly one device); impossible requests (no CUDA in the
//           build, no visible device, more ranks on the node than devices) are ConfigErrors that
//           name where the request came from and the fix;
//   auto -> gpu when the build has CUDA and a device is visible, else cpu.
// select_device() is pure (tests call it with made-up inventories); probe_devices() asks the
// CUDA runtime.
//
// Owning: DeviceRuntime holds what an OpContext points to: a CpuAllocator on the CPU; on CUDA a
// CudaContext (stream, cuBLASLt, device properties; options from cuda_options_from_environment)
// and the caching allocator. Not copyable; everything built on its context must go first.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bignlp/ops/context.h"
#include "bignlp/ops/peak_throughput.h"
#include "bignlp/tensor/allocator.h"

namespace bignlp::ops {

/// What a configuration asks for.
enum class DeviceKind { kCpu, kCuda, kAuto };

/// "cpu" -> kCpu; "gpu" or "cuda" -> kCuda; "auto" -> kAuto (case-sensitive, as Lightning).
/// Anything else is a ConfigError "<origin>: '<text>' is not a device; expected cpu, gpu or auto".
DeviceKind parse_device_kind(std::string_view text, std::string_view origin);

/// "cpu", "gpu" or "auto".
const char* device_kind_name(DeviceKind kind);

/// A device request and where it came from (for error messages).
struct DeviceRequest {
  DeviceKind kind = DeviceKind::kAuto;
  /// The text as written ("gpu", "cuda", ...).
  std::string text = "auto";
  /// Where it was written: "conf.yaml:12:16: trainer.accelerator" or "--device".
  std::string origin = "--device";
  /// How to ask for the CPU instead, e.g. "trainer.accelerator=cpu (or --device cpu)".
  std::string cpu_fix = "--device cpu";
};

/// What this process can compute on.
struct DeviceInventory {
  bool cuda_built = false;  ///< compiled with BIGNLP_WITH_CUDA
  int cuda_devices = 0;     ///< devices the CUDA runtime reports
  std::string cuda_status;  ///< the runtime's answer when it reports none ("no CUDA-capable device is detected")
  std::optional<std::string> cuda_visible_devices;  ///< CUDA_VISIBLE_DEVICES, when set
};

/// This process's inventory (asks the CUDA runtime in CUDA builds; `env` gives CUDA_VISIBLE_DEVICES).
DeviceInventory probe_devices(const std::map<std::string, std::string>& env);

/// The device for a rank that is `local_rank` on its node (see the file comment). Throws ConfigError
/// naming request.origin and the fix when the request cannot be met.
Device select_device(const DeviceRequest& request, const DeviceInventory& inventory, int local_rank);

struct DeviceRuntimeOptions {
  int cpu_threads = 0;     ///< OpenMP threads of the CPU ops (0: the OpenMP default)
  bool allow_tf32 = true;  ///< CUDA: fp32 GEMMs on tensor cores in TF32 (false: exact fp32)
};

class DeviceRuntime {
 public:
  /// A runtime on `device` (from select_device). CUDA: makes the device current and creates its
  /// context from cuda_options_from_environment(env) (BIGNLP_SYNC_CHECK) and `options`; throws
  /// RuntimeError when the device cannot be used, ConfigError when the build has no CUDA.
  DeviceRuntime(Device device, const std::map<std::string, std::string>& env, const DeviceRuntimeOptions& options = {});
  ~DeviceRuntime();
  DeviceRuntime(const DeviceRuntime&) = delete;
  DeviceRuntime& operator=(const DeviceRuntime&) = delete;

  /// The context every op of the program takes (device, allocator, CUDA state).
  const OpContext& context() const { return ctx_; }
  Device device() const { return ctx_.device; }
  Allocator& allocator() const { return *ctx_.allocator; }
  /// Waits for the work queued so far (CUDA: the stream); returns at once on the CPU.
  void synchronize() const;
  /// The stream every op runs on, as a cudaStream_t (the NCCL backend enqueues there); null on the CPU.
  void* cuda_stream() const;
  /// Name and compute capability ("cpu" on the CPU).
  const DeviceIdentity& identity() const { return identity_; }
  /// CUDA: fp32 GEMMs use TF32 (the peak that applies to precision 32). False on the CPU.
  bool allow_tf32() const;
  /// The device peak for a compute dtype (fp32 follows allow_tf32()); nullopt on the CPU and for
  /// devices not in the table (peak_throughput.h).
  std::optional<PeakThroughput> peak(DType compute_dtype) const;
  /// "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3, compute capability 9.0, 79.6 GiB)".
  std::string describe() const;

 private:
  struct Cuda;
  std::unique_ptr<Cuda> cuda_;
  std::unique_ptr<CpuAllocator> cpu_allocator_;
  OpContext ctx_;
  DeviceIdentity identity_;
};

/// Waits for the work queued on ctx (CUDA: its stream); nothing on the CPU. Step timers call it so a
/// step's time includes its kernels.
void synchronize(const OpContext& ctx);

}  // namespace bignlp::ops
