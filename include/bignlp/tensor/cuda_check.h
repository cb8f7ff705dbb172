// Error checks for CUDA and its libraries: CUDA_CHECK, CUBLAS_CHECK, CUDNN_CHECK, NCCL_CHECK.
//
// Each wraps one call, and on failure throws bignlp::RuntimeError (exit code 8) whose message names
// the library, the status code and its name, the failed statement, the function, file and line:
//   "CUDA error 2 (out of memory) in `cudaMalloc(&ptr, bytes)` at allocate (src/tensor/cuda_allocator.cpp:31)"
// The macros expand to calls of the library's own status-to-string function, so they are usable
// only where that library's header is included; this header itself needs no CUDA and compiles in
// every build. Device code never uses them (kernels use assert only).
#pragma once

#include <string_view>

namespace bignlp::detail {

/// Throws RuntimeError describing a failed library call (see the file comment for the format).
[[noreturn]] void throw_cuda_library_error(std::string_view library, long long code, std::string_view code_name,
                                           const char* expr, const char* func, const char* file, int line);

}  // namespace bignlp::detail

/// Checks a cudaError_t-returning call.
#define CUDA_CHECK(expr)                                                                                     \
  do {                                                                                                       \
    const cudaError_t bignlp_status_ = (expr);                                                               \
    if (bignlp_status_ != cudaSuccess) [[unlikely]] {                                                        \
      ::bignlp::detail::throw_cuda_library_error("CUDA", static_cast<long long>(bignlp_status_),             \
                                                 cudaGetErrorString(bignlp_status_), #expr, __func__,        \
                                                 __FILE__, __LINE__);                                        \
    }                                                                                                        \
  } while (0)

/// Checks a cublasStatus_t-returning call (cuBLAS or cuBLASLt; names the status through cuBLASLt,
/// so only libcublasLt is needed).
#define CUBLAS_CHECK(expr)                                                                                   \
  do {                                                                                                       \
    const cublasStatus_t bignlp_status_ = (expr);                                                            \
    if (bignlp_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                                              \
      ::bignlp::detail::throw_cuda_library_error("cuBLAS", static_cast<long long>(bignlp_status_),           \
                                                 cublasLtGetStatusName(bignlp_status_), #expr, __func__,     \
                                                 __FILE__, __LINE__);                                        \
    }                                                                                                        \
  } while (0)

/// Checks a cudnnStatus_t-returning call.
#define CUDNN_CHECK(expr)                                                                                    \
  do {                                                                                                       \
    const cudnnStatus_t bignlp_status_ = (expr);                                                             \
    if (bignlp_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]] {                                               \
      ::bignlp::detail::throw_cuda_library_error("cuDNN", static_cast<long long>(bignlp_status_),            \
                                                 cudnnGetErrorString(bignlp_status_), #expr, __func__,       \
                                                 __FILE__, __LINE__);                                        \
    }                                                                                                        \
  } while (0)

/// Checks an ncclResult_t-returning call.
#define NCCL_CHECK(expr)                                                                                     \
  do {                                                                                                       \
    const ncclResult_t bignlp_status_ = (expr);                                                              \
    if (bignlp_status_ != ncclSuccess) [[unlikely]] {                                                        \
      ::bignlp::detail::throw_cuda_library_error("NCCL", static_cast<long long>(bignlp_status_),             \
                                                 ncclGetErrorString(bignlp_status_), #expr, __func__,        \
                                                 __FILE__, __LINE__);                                        \
    }                                                                                                        \
  } while (0)
