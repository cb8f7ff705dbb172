#include "bignlp/ops/cuda_context.h"

#include <string_view>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "gemm_plans.h"

namespace bignlp::ops {

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

CudaContextOptions cuda_options_from_environment(const std::map<std::string, std::string>& env,
                                                 CudaContextOptions base) {
  if (auto it = env.find("BIGNLP_SYNC_CHECK"); it != env.end()) {
    const std::string_view s(it->second);
    if (s == "1" || s == "true" || s == "on") {
      base.sync_check = true;
    } else if (s == "0" || s == "false" || s == "off" || s.empty()) {
      base.sync_check = false;
    } else {
      throw UsageError("BIGNLP_SYNC_CHECK must be 1 or 0, got '" + std::string(s) + "'");
    }
  }
  return base;
}

CudaContext::CudaContext(const CudaContextOptions& options)
    : device(options.device), sync_check(options.sync_check), allow_tf32(options.allow_tf32) {
  const int count = cuda_device_count();
  BIGNLP_CHECK(options.device >= 0 && options.device < count, "CUDA device {} requested, {} available",
               options.device, count);
  CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  device_name = prop.name;
  sm_count = prop.multiProcessorCount;
  cc_major = prop.major;
  cc_minor = prop.minor;
  shared_memory_per_block_optin = prop.sharedMemPerBlockOptin;
  l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
  total_memory = prop.totalGlobalMem;
  BIGNLP_CHECK(cc_major >= 8, "{} has compute capability {}.{}; bignlp's kernels need 8.0 or newer", device_name,
               cc_major, cc_minor);
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasLtCreate(&cublaslt));
  gemm_workspace_bytes = options.gemm_workspace_bytes;
  if (gemm_workspace_bytes > 0) CUDA_CHECK(cudaMalloc(&gemm_workspace, gemm_workspace_bytes));
  gemm_plans = std::make_unique<GemmPlanCache>();
}

CudaContext::~CudaContext() {
  if (stream != nullptr) cudaStreamSynchronize(stream);
  gemm_plans.reset();
  if (cublaslt != nullptr) cublasLtDestroy(cublaslt);
  if (gemm_workspace != nullptr) cudaFree(gemm_workspace);
  if (stream != nullptr) cudaStreamDestroy(stream);
}

OpContext CudaContext::op_context(Allocator& allocator) {
  BIGNLP_CHECK(allocator.device() == Device::cuda(device), "allocator of {} given to a context of cuda:{}",
               allocator.device().to_string(), device);
  return OpContext{Device::cuda(device), &allocator, this, 0};
}

void CudaContext::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream)); }

void CudaContext::check_launch(const char* what, const char* func, const char* file, int line) const {
  cudaError_t status = cudaGetLastError();
  if (status == cudaSuccess && sync_check) status = cudaStreamSynchronize(stream);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    detail::throw_cuda_library_error("CUDA", static_cast<long long>(status), cudaGetErrorString(status), what, func,
                                     file, line);
  }
}

CudaEvent::CudaEvent() { CUDA_CHECK(cudaEventCreate(&event_)); }
CudaEvent::~CudaEvent() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}
void CudaEvent::record(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(event_, stream)); }
void CudaEvent::synchronize() const { CUDA_CHECK(cudaEventSynchronize(event_)); }
float CudaEvent::elapsed_ms_since(const CudaEvent& start) const {
  float ms = 0.0f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace bignlp::ops
