// CUDA device memory: a MemorySource over cudaMalloc/cudaFree and the caching allocator built on it.
//
// Only in builds with BIGNLP_WITH_CUDA (src/tensor/cuda_allocator.cpp is compiled there alone).
// Ops allocate their temporaries and the model its activations through the returned allocator, so
// after the first training step no cudaMalloc runs (AllocatorStats::system_allocations stays flat);
// peak_in_use / peak_reserved give the peak memory a benchmark reports.
#pragma once

#include <memory>

#include "bignlp/tensor/caching_allocator.h"

namespace bignlp {

/// Raw cudaMalloc/cudaFree memory of CUDA device `device` (cudaErrorMemoryAllocation gives nullptr,
/// other errors throw RuntimeError via CUDA_CHECK).
std::unique_ptr<MemorySource> make_cuda_memory_source(int device);

/// A CachingAllocator over make_cuda_memory_source(device).
std::unique_ptr<CachingAllocator> make_cuda_allocator(int device);

}  // namespace bignlp
