// CudaContext: the CUDA backend state behind OpContext::cuda: the device, one stream every op
// launches on, the cuBLASLt handle and its workspace, GEMM plans, device properties, and the
// sync-check switch. Only for builds with BIGNLP_WITH_CUDA (it includes the CUDA headers).
//
// One context per device and thread of work, created by the program (or test) and passed down;
// never global. Ops on one context run in stream order, which is what makes the caching
// allocator's immediate reuse of freed blocks safe. Creating a context allocates the cuBLASLt
// workspace once (cudaMalloc); nothing else here allocates device memory.
//
// Sync check: when CudaContext::sync_check is set, every op synchronises the stream after each
// launch and reports the first failing kernel by name (slow; for debugging). It defaults to on in
// debug builds (NDEBUG undefined); programs turn it on with BIGNLP_SYNC_CHECK=1: main() passes
// its environment (core/environment.h) to cuda_options_from_environment(), the one reader.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "bignlp/ops/context.h"
#include "bignlp/tensor/cuda_check.h"

namespace bignlp::ops {

#ifdef NDEBUG
inline constexpr bool kSyncCheckDefault = false;
#else
inline constexpr bool kSyncCheckDefault = true;
#endif

struct CudaContextOptions {
  int device = 0;                                   ///< CUDA ordinal
  bool sync_check = kSyncCheckDefault;              ///< synchronise and check after every launch
  std::size_t gemm_workspace_bytes = 32ull << 20;   ///< cuBLASLt workspace (Hopper kernels want 32 MiB)
  bool allow_tf32 = true;  ///< fp32 GEMMs (precision 32) on tensor cores in TF32; false: full fp32
};

/// Number of CUDA devices this process can use; 0 without a driver or device (never throws).
int cuda_device_count();

/// `base` with the environment applied: BIGNLP_SYNC_CHECK=1|0 sets sync_check (anything else is a
/// UsageError). `env` is the process environment main() read (bignlp::process_environment()).
CudaContextOptions cuda_options_from_environment(const std::map<std::string, std::string>& env,
                                                 CudaContextOptions base = {});

/// GEMM descriptors and algorithm choices, keyed by problem (src/ops/cuda/gemm.cpp).
struct GemmPlanCache;

struct CudaContext {
  /// Makes `options.device` current, creates the stream, cuBLASLt handle and workspace, and reads
  /// the device properties. Throws RuntimeError (via CUDA_CHECK) when the device is unusable.
  explicit CudaContext(const CudaContextOptions& options = {});
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  /// An OpContext for this device with `allocator` for temporaries.
  OpContext op_context(Allocator& allocator);
  /// Waits for all work on the stream; throws on a pending asynchronous error.
  void synchronize() const;
  /// Called after each kernel launch with the kernel's name: reports launch errors and, with
  /// sync_check, synchronises and reports execution errors naming `what` and the call site.
  void check_launch(const char* what, const char* func, const char* file, int line) const;

  int device = 0;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  void* gemm_workspace = nullptr;
  std::size_t gemm_workspace_bytes = 0;
  bool sync_check = kSyncCheckDefault;
  bool allow_tf32 = true;
  // Device properties.
  std::string device_name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  std::size_t shared_memory_per_block_optin = 0;
  std::size_t l2_bytes = 0;
  std::size_t total_memory = 0;
  std::unique_ptr<GemmPlanCache> gemm_plans;
};

/// After a launch inside an op: BIGNLP_CUDA_LAUNCH_CHECK(*ctx.cuda, "layernorm_forward").
#define BIGNLP_CUDA_LAUNCH_CHECK(cuda_context, what) (cuda_context).check_launch((what), __func__, __FILE__, __LINE__)

/// A CUDA event for timing work on a stream (benchmarks) or ordering streams.
class CudaEvent {
 public:
  CudaEvent();
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(cudaStream_t stream);
  void synchronize() const;
  /// Milliseconds from `start` to this event (both recorded and complete).
  float elapsed_ms_since(const CudaEvent& start) const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace bignlp::ops
