#include "bignlp/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "bignlp/core/check.h"

#define BIGNLP_NCCL_CHECK(expr)                                                                       \
  do {                                                                                                \
    const ncclResult_t bignlp_nccl_result_ = (expr);                                                  \
    BIGNLP_CHECK(bignlp_nccl_result_ == ncclSuccess, "NCCL error: {}", ncclGetErrorString(bignlp_nccl_result_)); \
  } while (0)

#define BIGNLP_CUDA_RT_CHECK(expr)                                                                    \
  do {                                                                                                \
    const cudaError_t bignlp_cuda_result_ = (expr);                                                   \
    BIGNLP_CHECK(bignlp_cuda_result_ == cudaSuccess, "CUDA error: {}", cudaGetErrorString(bignlp_cuda_result_)); \
  } while (0)

namespace bignlp::comm {

namespace {

ncclDataType_t nccl_dtype(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
    case DType::kU16: break;
  }
  BIGNLP_CHECK(false, "NCCL has no dtype for {}", dtype_name(t));
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

// A shared NCCL communicator handle (aborted or destroyed once).
struct NcclHandle {
  ncclComm_t comm = nullptr;
  bool aborted = false;
  ~NcclHandle() {
    if (comm && !aborted) ncclCommDestroy(comm);
  }
};

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclHandle> h, cudaEvent_t ev, std::string what)
      : h_(std::move(h)), ev_(ev), what_(std::move(what)) {}
  ~NcclWork() override { cudaEventDestroy(ev_); }

  void wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const cudaError_t q = cudaEventQuery(ev_);
      if (q == cudaSuccess) return;
      BIGNLP_CHECK(q == cudaErrorNotReady, "{}: CUDA error: {}", what_, cudaGetErrorString(q));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(h_->comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(h_->comm);
        h_->aborted = true;
        throw RuntimeError(fmt::format("{} failed: NCCL error: {} (the communicator was aborted)", what_,
                                       ncclGetErrorString(async)));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw RuntimeError(fmt::format("{} timed out after {:.1f}s", what_, timeout.count() / 1000.0));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  bool completed() override { return cudaEventQuery(ev_) != cudaErrorNotReady; }

 private:
  std::shared_ptr<NcclHandle> h_;
  cudaEvent_t ev_;
  std::string what_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Store& store, std::vector<int> members, int rank, std::string name, const NcclOptions& options)
      : store_(store), members_(std::move(members)), rank_(rank), name_(std::move(name)), options_(options) {
    BIGNLP_CUDA_RT_CHECK(cudaSetDevice(options_.device));
    if (options_.stream) {
      stream_ = static_cast<cudaStream_t>(options_.stream);
    } else {
      BIGNLP_CUDA_RT_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      own_stream_ = true;
    }
    ncclUniqueId id;
    const std::string key = fmt::format("nccl/{}", name_);
    if (rank_ == 0) {
      BIGNLP_NCCL_CHECK(ncclGetUniqueId(&id));
      store_.set(key, std::vector<char>(reinterpret_cast<char*>(&id), reinterpret_cast<char*>(&id) + sizeof id));
    } else {
      const auto bytes = store_.get(key, options_.timeout);
      BIGNLP_CHECK(bytes.size() == sizeof id, "NCCL id of group '{}' has {} bytes", name_, bytes.size());
      std::memcpy(&id, bytes.data(), sizeof id);
    }
    handle_ = std::make_shared<NcclHandle>();
    const ncclResult_t r = ncclCommInitRank(&handle_->comm, static_cast<int>(members_.size()), id, rank_);
    if (r != ncclSuccess) {
      throw RuntimeError(fmt::format("rank {} of {}: ncclCommInitRank failed: {}", rank_, describe(), ncclGetErrorString(r)));
    }
    set_timeout(options_.timeout);
  }
  ~NcclCommunicator() override {
    handle_.reset();
    if (barrier_buf_) cudaFree(barrier_buf_);
    if (staging_device_) cudaFree(staging_device_);
    if (staging_host_) cudaFreeHost(staging_host_);
    if (own_stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  const std::string& name() const override { return name_; }
  const std::vector<int>& global_ranks() const override { return members_; }
  Device device() const override { return Device::cuda(options_.device); }
  const char* backend() const override { return "nccl"; }

  WorkPtr all_reduce_async(const TensorView& t, ReduceOp op) override {
    if (t.device().is_cpu()) {
      check_reduce_dtype(*this, "all_reduce", t, op);
      return host_staged(t, "all_reduce", [&](void* dev) {
        BIGNLP_NCCL_CHECK(ncclAllReduce(dev, dev, static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), nccl_op(op),
                                        handle_->comm, stream_));
      });
    }
    check_collective_tensor(*this, "all_reduce", "tensor", t);
    check_reduce_dtype(*this, "all_reduce", t, op);
    BIGNLP_NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), nccl_op(op),
                                    handle_->comm, stream_));
    return record("all_reduce");
  }
  WorkPtr all_gather_async(const TensorView& in, const TensorView& out) override {
    check_collective_tensor(*this, "all_gather", "in", in);
    check_collective_tensor(*this, "all_gather", "out", out);
    BIGNLP_CHECK(out.numel() == in.numel() * size() && in.dtype() == out.dtype(), "all_gather on {}: in {} out {}",
                 describe(), in.to_string(), out.to_string());
    BIGNLP_NCCL_CHECK(ncclAllGather(in.raw(), out.raw(), static_cast<size_t>(in.numel()), nccl_dtype(in.dtype()),
                                    handle_->comm, stream_));
    return record("all_gather");
  }
  WorkPtr reduce_scatter_async(const TensorView& in, const TensorView& out, ReduceOp op) override {
    check_collective_tensor(*this, "reduce_scatter", "in", in);
    check_collective_tensor(*this, "reduce_scatter", "out", out);
    check_reduce_dtype(*this, "reduce_scatter", in, op);
    BIGNLP_CHECK(in.numel() == out.numel() * size() && in.dtype() == out.dtype(), "reduce_scatter on {}: in {} out {}",
                 describe(), in.to_string(), out.to_string());
    BIGNLP_NCCL_CHECK(ncclReduceScatter(in.raw(), out.raw(), static_cast<size_t>(out.numel()), nccl_dtype(in.dtype()),
                                        nccl_op(op), handle_->comm, stream_));
    return record("reduce_scatter");
  }
  WorkPtr broadcast_async(const TensorView& t, int root) override {
    if (t.device().is_cpu()) {
      return host_staged(t, "broadcast", [&](void* dev) {
        BIGNLP_NCCL_CHECK(ncclBroadcast(dev, dev, static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), root,
                                        handle_->comm, stream_));
      });
    }
    check_collective_tensor(*this, "broadcast", "tensor", t);
    BIGNLP_NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), root,
                                    handle_->comm, stream_));
    return record("broadcast");
  }
  WorkPtr send_async(const TensorView& t, int peer) override {
    check_collective_tensor(*this, "send", "tensor", t);
    BIGNLP_NCCL_CHECK(ncclSend(t.raw(), static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), peer, handle_->comm, stream_));
    return record("send");
  }
  WorkPtr recv_async(const TensorView& t, int peer) override {
    check_collective_tensor(*this, "recv", "tensor", t);
    BIGNLP_NCCL_CHECK(ncclRecv(t.raw(), static_cast<size_t>(t.numel()), nccl_dtype(t.dtype()), peer, handle_->comm, stream_));
    return record("recv");
  }
  WorkPtr batch_send_recv(const std::vector<P2pOp>& ops) override {
    BIGNLP_NCCL_CHECK(ncclGroupStart());
    for (const auto& op : ops) {
      check_collective_tensor(*this, "batch_send_recv", "tensor", op.tensor);
      const auto n = static_cast<size_t>(op.tensor.numel());
      if (op.kind == P2pOp::Kind::kSend) {
        BIGNLP_NCCL_CHECK(ncclSend(op.tensor.raw(), n, nccl_dtype(op.tensor.dtype()), op.peer, handle_->comm, stream_));
      } else {
        BIGNLP_NCCL_CHECK(ncclRecv(op.tensor.raw(), n, nccl_dtype(op.tensor.dtype()), op.peer, handle_->comm, stream_));
      }
    }
    BIGNLP_NCCL_CHECK(ncclGroupEnd());
    return record("batch_send_recv");
  }
  WorkPtr barrier_async() override {
    if (!barrier_buf_) BIGNLP_CUDA_RT_CHECK(cudaMalloc(&barrier_buf_, sizeof(float)));
    BIGNLP_NCCL_CHECK(ncclAllReduce(barrier_buf_, barrier_buf_, 1, ncclFloat32, ncclSum, handle_->comm, stream_));
    return record("barrier");
  }
  std::unique_ptr<Communicator> split(const std::vector<int>& members, const std::string& name) override {
    std::vector<int> world;
    int new_rank = -1;
    for (std::size_t i = 0; i < members.size(); ++i) {
      BIGNLP_CHECK(members[i] >= 0 && members[i] < size(), "split of {} into '{}': rank {} is not in the group",
                   describe(), name, members[i]);
      world.push_back(members_[static_cast<std::size_t>(members[i])]);
      if (members[i] == rank_) new_rank = static_cast<int>(i);
    }
    BIGNLP_CHECK(new_rank >= 0, "split into '{}': rank {} is not a member", name, rank_);
    NcclOptions o = options_;
    o.stream = stream_;
    auto c = std::make_unique<NcclCommunicator>(store_, std::move(world), new_rank, name, o);
    c->set_timeout(timeout());
    return c;
  }
 private:
  // A host tensor (the scalars a training step reduces on the host: the loss, stop flags, parts of
  // the gradient norm) goes host -> pinned -> device, through `collective` on the device copy, and
  // back, in stream order; the call waits for it (with the timeout and NCCL error checks of
  // Work::wait) because the caller reads the result next. The returned work is complete.
  template <typename Fn>
  WorkPtr host_staged(const TensorView& t, const char* op, Fn&& collective) {
    const std::size_t bytes = t.nbytes();
    ensure_staging(bytes);
    // The checks of a device tensor of the same shape (contiguity, dtype) apply to the host one.
    check_collective_tensor(*this, op, "tensor", TensorView(staging_device_, t.dtype(), t.shape(), device()));
    BIGNLP_CHECK(t.is_contiguous(), "{} on {}: host tensor must be contiguous, got {}", op, describe(), t.to_string());
    std::memcpy(staging_host_, t.raw(), bytes);
    BIGNLP_CUDA_RT_CHECK(cudaMemcpyAsync(staging_device_, staging_host_, bytes, cudaMemcpyHostToDevice, stream_));
    collective(staging_device_);
    BIGNLP_CUDA_RT_CHECK(cudaMemcpyAsync(staging_host_, staging_device_, bytes, cudaMemcpyDeviceToHost, stream_));
    WorkPtr work = record(op);
    work->wait(timeout());
    std::memcpy(t.raw(), staging_host_, bytes);
    return work;
  }
  void ensure_staging(std::size_t bytes) {
    if (bytes <= staging_bytes_) return;
    if (staging_device_ != nullptr) {
      BIGNLP_CUDA_RT_CHECK(cudaStreamSynchronize(stream_));
      cudaFree(staging_device_);
      cudaFreeHost(staging_host_);
      staging_device_ = staging_host_ = nullptr;
      staging_bytes_ = 0;
    }
    const std::size_t size = std::max<std::size_t>(bytes, 256);
    BIGNLP_CUDA_RT_CHECK(cudaMalloc(&staging_device_, size));
    BIGNLP_CUDA_RT_CHECK(cudaMallocHost(&staging_host_, size));
    staging_bytes_ = size;
  }

  WorkPtr record(const char* op) {
    cudaEvent_t ev;
    BIGNLP_CUDA_RT_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    BIGNLP_CUDA_RT_CHECK(cudaEventRecord(ev, stream_));
    return std::make_shared<NcclWork>(handle_, ev, fmt::format("{} on {} (rank {})", op, describe(), rank_));
  }

  Store& store_;
  std::vector<int> members_;
  int rank_;
  std::string name_;
  NcclOptions options_;
  cudaStream_t stream_ = nullptr;
  bool own_stream_ = false;
  std::shared_ptr<NcclHandle> handle_;
  void* barrier_buf_ = nullptr;
  void* staging_device_ = nullptr;  // host_staged(): device and pinned host copies
  void* staging_host_ = nullptr;
  std::size_t staging_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Store& store, int rank, int size, const NcclOptions& options) {
  std::vector<int> members(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) members[static_cast<std::size_t>(r)] = r;
  return std::make_unique<NcclCommunicator>(store, std::move(members), rank, "world", options);
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

}  // namespace bignlp::comm
