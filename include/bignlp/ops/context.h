// OpContext: the execution context every op takes as its first argument.
//
// It carries what an op needs beyond its tensors: the device it runs on, an allocator for
// temporaries, and (CUDA builds) the backend state: stream, cuBLASLt handle and workspace, held in
// CudaContext, which the CUDA backend defines (include/bignlp/ops/cuda_context.h) and CPU code only
// forward-declares. A context is created by the program (or test) and passed down; it is cheap to
// copy and never global. Ops check that their tensors live on ctx.device.
#pragma once

#include "bignlp/tensor/allocator.h"
#include "bignlp/tensor/device.h"

namespace bignlp::ops {

/// Backend state of the CUDA implementation (stream, library handles, workspace). Opaque here.
struct CudaContext;

struct OpContext {
  /// Where the op runs; every tensor argument must be on this device.
  Device device = Device::cpu();
  /// Memory for temporaries on `device`. May be null on the CPU (the reference uses the heap).
  Allocator* allocator = nullptr;
  /// CUDA backend state; required when device is CUDA, ignored on the CPU.
  CudaContext* cuda = nullptr;
  /// OpenMP threads for the CPU reference (0: the OpenMP default). Results never depend on it.
  int cpu_threads = 0;

  /// A CPU context.
  static OpContext cpu(int threads = 0) { return OpContext{Device::cpu(), nullptr, nullptr, threads}; }
};

}  // namespace bignlp::ops
