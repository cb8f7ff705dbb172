// The NCCL backend on one GPU (world size 1: one GPU cannot host several NCCL ranks): every
// collective runs through NCCL on device memory and gives the one-rank results; the rendezvous
// goes through a file store. Skipped without a CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "bignlp/comm/file_store.h"
#include "bignlp/comm/nccl_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/core/file_io.h"

namespace bignlp::comm {
namespace {

struct DeviceVector {
  explicit DeviceVector(const std::vector<float>& host) : n(static_cast<std::int64_t>(host.size())) {
    cudaMalloc(&ptr, host.size() * sizeof(float));
    cudaMemcpy(ptr, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
  }
  ~DeviceVector() { cudaFree(ptr); }
  std::vector<float> host() const {
    std::vector<float> h(static_cast<std::size_t>(n));
    cudaMemcpy(h.data(), ptr, h.size() * sizeof(float), cudaMemcpyDeviceToHost);
    return h;
  }
  TensorView view() const { return TensorView(ptr, DType::kF32, Shape{n}, Shape{1}, Device::cuda(0)); }
  void* ptr = nullptr;
  std::int64_t n;
};

TEST(NcclCommunicatorGpu, WorldOfOneRunsEveryCollective) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  TempDir dir("nccl");
  FileStore store(dir.path() / "store");
  NcclOptions o;
  o.timeout = std::chrono::seconds(60);
  auto c = make_nccl_communicator(store, 0, 1, o);
  EXPECT_STREQ(c->backend(), "nccl");
  DeviceVector x({1.0f, 2.0f, 3.0f, 4.0f}), y({0, 0, 0, 0});
  c->all_reduce(x.view(), ReduceOp::kSum);
  EXPECT_EQ(x.host(), (std::vector<float>{1, 2, 3, 4}));
  c->all_reduce(x.view(), ReduceOp::kAvg);
  EXPECT_EQ(x.host(), (std::vector<float>{1, 2, 3, 4}));
  c->all_gather(x.view(), y.view());
  EXPECT_EQ(y.host(), (std::vector<float>{1, 2, 3, 4}));
  c->reduce_scatter(x.view(), y.view(), ReduceOp::kMax);
  EXPECT_EQ(y.host(), (std::vector<float>{1, 2, 3, 4}));
  c->broadcast(x.view(), 0);
  auto w = c->all_reduce_async(x.view(), ReduceOp::kSum);
  w->wait(std::chrono::seconds(30));
  EXPECT_TRUE(w->completed());
  c->barrier();
  // Groups of the 1x1x1 grid are split through the store.
  auto groups = ParallelGroups::create(*c, ProcessGrid(1, 0, 1, 1));
  groups.tp->all_reduce(x.view());
  EXPECT_EQ(x.host(), (std::vector<float>{1, 2, 3, 4}));
  // Host tensors are refused with a message naming the backend.
  std::vector<float> host(4);
  EXPECT_THROW(c->all_reduce(TensorView(host.data(), DType::kF32, Shape{4})), RuntimeError);
}

}  // namespace
}  // namespace bignlp::comm
