// Embedding lookup and its deterministic scatter-add backward.
//
// Forward: one warp per token row, 16-byte vectors when rows and pointers allow.
// Backward: keys = id - vocab_start (ids outside the shard get the key V and are skipped) are
// sorted stably with their token index (cub radix sort), so equal ids form runs in token order.
// One block per run head sums the run's rows column by column in that order and adds the result
// to the table row: no atomics, every table row written by exactly one block, the same bits on
// every run.
#include <cub/device/device_radix_sort.cuh>

#include "bignlp/core/error.h"

#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 256;

template <typename T, int N>
__global__ void embedding_forward_kernel(const std::int32_t* ids, const T* table, T* out, std::int64_t n,
                                         std::int64_t c, std::int64_t v, std::int64_t vocab_start, bool accumulate) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  if (row >= n) return;
  const int lane = threadIdx.x & 31;
  const std::int64_t id = static_cast<std::int64_t>(ids[row]) - vocab_start;
  const bool owned = id >= 0 && id < v;
  const T* src = table + (owned ? id : 0) * c;
  T* dst = out + row * c;
  for (std::int64_t j = static_cast<std::int64_t>(lane) * N; j < c; j += 32 * N) {
    Vec<T, N> e;
    if (owned) {
      e = *reinterpret_cast<const Vec<T, N>*>(src + j);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) e.v[k] = from_float<T>(0.0f);
    }
    if (accumulate) {
      const Vec<T, N> o = *reinterpret_cast<const Vec<T, N>*>(dst + j);
#pragma unroll
      for (int k = 0; k < N; ++k) e.v[k] = from_float<T>(to_float(o.v[k]) + to_float(e.v[k]));
    }
    *reinterpret_cast<Vec<T, N>*>(dst + j) = e;
  }
}

__global__ void embedding_keys_kernel(const std::int32_t* ids, std::int64_t n, std::int64_t v,
                                      std::int64_t vocab_start, std::int32_t* keys, std::int32_t* rows) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t id = static_cast<std::int64_t>(ids[i]) - vocab_start;
    keys[i] = (id >= 0 && id < v) ? static_cast<std::int32_t>(id) : static_cast<std::int32_t>(v);
    rows[i] = static_cast<std::int32_t>(i);
  }
}

// Block i handles the run that starts at sorted position i (and exits when i is not a run head).
template <typename T>
__global__ void embedding_backward_kernel(const std::int32_t* keys, const std::int32_t* rows, const T* dout,
                                          float* dtable, std::int64_t n, std::int64_t c, std::int64_t v) {
  const std::int64_t i = blockIdx.x;
  const std::int32_t key = keys[i];
  if (key >= v) return;                        // ids outside the shard sort last, under key V
  if (i > 0 && keys[i - 1] == key) return;     // not the head of its run
  std::int64_t end = i + 1;
  while (end < n && keys[end] == key) ++end;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    float s = 0.0f;
    for (std::int64_t r = i; r < end; ++r) s += to_float(dout[static_cast<std::int64_t>(rows[r]) * c + j]);
    dtable[static_cast<std::int64_t>(key) * c + j] += s;
  }
}

int key_bits(std::int64_t v) {
  int bits = 1;
  while ((std::int64_t{1} << bits) <= v) ++bits;  // keys lie in [0, V]
  return bits;
}

std::size_t align_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

std::size_t sort_temp_bytes(std::int64_t n, std::int64_t v) {
  std::size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const std::int32_t*>(nullptr),
                                  static_cast<std::int32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
                                  static_cast<std::int32_t*>(nullptr), static_cast<int>(n), 0, key_bits(v));
  return bytes;
}

}  // namespace

void launch_embedding_forward(const std::int32_t* ids, const void* table, void* out, DType dtype, std::int64_t n,
                              std::int64_t c, std::int64_t v, std::int64_t vocab_start, bool accumulate,
                              cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  const unsigned grid = static_cast<unsigned>(ceil_div(n, kThreads / 32));
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = c % kVec == 0 && aligned_to(table, 16) && aligned_to(out, 16);
    if (vec)
      embedding_forward_kernel<T, kVec><<<grid, kThreads, 0, stream>>>(ids, static_cast<const T*>(table),
                                                                       static_cast<T*>(out), n, c, v, vocab_start,
                                                                       accumulate);
    else
      embedding_forward_kernel<T, 1><<<grid, kThreads, 0, stream>>>(ids, static_cast<const T*>(table),
                                                                    static_cast<T*>(out), n, c, v, vocab_start,
                                                                    accumulate);
  });
}

std::size_t embedding_backward_workspace_bytes(std::int64_t n, std::int64_t v) {
  const std::size_t arr = align_up(static_cast<std::size_t>(n) * sizeof(std::int32_t));
  return 4 * arr + align_up(sort_temp_bytes(n, v));
}

void launch_embedding_backward(const std::int32_t* ids, const void* dout, float* dtable, DType dtype, std::int64_t n,
                               std::int64_t c, std::int64_t v, std::int64_t vocab_start, void* workspace,
                               std::size_t workspace_bytes, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  if (workspace_bytes < embedding_backward_workspace_bytes(n, v))
    throw RuntimeError("launch_embedding_backward: workspace too small");
  const std::size_t arr = align_up(static_cast<std::size_t>(n) * sizeof(std::int32_t));
  char* ws = static_cast<char*>(workspace);
  auto* keys_in = reinterpret_cast<std::int32_t*>(ws);
  auto* rows_in = reinterpret_cast<std::int32_t*>(ws + arr);
  auto* keys_out = reinterpret_cast<std::int32_t*>(ws + 2 * arr);
  auto* rows_out = reinterpret_cast<std::int32_t*>(ws + 3 * arr);
  void* temp = ws + 4 * arr;
  std::size_t temp_bytes = sort_temp_bytes(n, v);
  embedding_keys_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(ids, n, v, vocab_start, keys_in, rows_in);
  cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, rows_in, rows_out, static_cast<int>(n), 0,
                                  key_bits(v), stream);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    embedding_backward_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
        keys_out, rows_out, static_cast<const T*>(dout), dtable, n, c, v);
  });
}

}  // namespace bignlp::kernels
