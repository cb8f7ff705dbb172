// The NCCL backend: collectives of CUDA tensors, one ncclComm_t per process group.
//
// Compiled only in builds with BIGNLP_WITH_NCCL. Operations are enqueued on the communicator's
// stream (NcclOptions::stream: the compute stream, so a collective is ordered after the kernels
// that produced its input, as Megatron runs them; with CUDA_DEVICE_MAX_CONNECTIONS=1 the GPU also
// starts them in issue order, which the overlap of the TP input-gradient all-reduce with the
// weight-gradient GEMM relies on). Work::wait() blocks the host until the work finished, polling
// the CUDA event and ncclCommGetAsyncError: an asynchronous NCCL error aborts the communicator
// and throws; the timeout throws naming the collective and the group (the FasterTransformer
// ftNcclStreamSynchronize pattern). Sync variants therefore block the host too; code that only
// needs stream order uses the async variant and drops the Work.
//
// Tensors live on the communicator's device, except for all_reduce and broadcast, which also take
// small host tensors (the loss, stop flags and gradient-norm parts a training step reduces on the
// host): those are staged through pinned and device buffers in stream order, and the call (async
// or not) returns when the result is back in host memory.
//
// Communicator ids are exchanged through the Store: group rank 0 of each group creates the
// ncclUniqueId and publishes it under "nccl/<group name>"; split() is a collective of the members.
#pragma once

#include <chrono>
#include <memory>

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/store.h"

namespace bignlp::comm {

struct NcclOptions {
  int device = 0;            ///< CUDA ordinal of this rank
  void* stream = nullptr;    ///< cudaStream_t to enqueue on; null: a stream of the communicator's own
  std::chrono::milliseconds timeout = kDefaultCommTimeout;
};

/// The world NCCL communicator of `rank` among `size` processes (collective). `store` must outlive
/// it and every communicator split from it.
std::unique_ptr<Communicator> make_nccl_communicator(Store& store, int rank, int size, const NcclOptions& options);

/// Number of CUDA devices visible (0 without a driver or GPU); never throws.
int cuda_device_count();

}  // namespace bignlp::comm
