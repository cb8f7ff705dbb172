// Multi-tensor Adam(W) with fp32 master weights, and multi-tensor sums of squares (global norm).
//
// One launch covers up to kMaxTensorsPerLaunch tensors: their table (one entry per tensor, with the
// prefix count of its chunks) travels by value as a kernel parameter (CUDA 12.1+ allows 32 KB), so
// no host-to-device copy (which would synchronise the stream) is needed; block b finds its tensor
// by binary search over the prefix counts. Longer lists take several launches. Adam math per element is the CPU reference's (apex FusedAdam):
//   g = grad * grad_scale (+ wd p when not decoupled); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
//   p -= lr ((m / c1) / (sqrt(v / c2) + eps) + wd p (decoupled)); model_param = round(p)
#include "bignlp/core/error.h"
#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kAdamChunk = 16384;

struct AdamTableEntry {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  void* model_param;
  std::int64_t numel;
  std::int64_t chunk_begin;  // index of this tensor's first chunk
  float weight_decay;
  int model_dtype;  // DType value
};

struct SumTableEntry {
  const void* x;
  std::int64_t numel;
  std::int64_t chunk_begin;
  int dtype;
};

constexpr int kMaxTensorsPerLaunch = 160;  // 160 * 64 bytes: 10 KB of kernel parameters

template <typename E, int N = kMaxTensorsPerLaunch>
struct Table {
  E entries[N];
  int count;
};

template <typename E, int N>
__device__ __forceinline__ int find_entry(const E (&table)[N], int count, std::int64_t block) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {  // last entry with chunk_begin <= block
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].chunk_begin <= block) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// N = 1 serves the single-tensor op with a small parameter block (cheaper launches).
template <int N>
__global__ void adamw_kernel(const __grid_constant__ Table<AdamTableEntry, N> table, AdamWArgs a) {
  const AdamTableEntry& e = table.entries[find_entry(table.entries, table.count, blockIdx.x)];
  const std::int64_t begin = (blockIdx.x - e.chunk_begin) * kAdamChunk;
  const std::int64_t end = min(e.numel, begin + kAdamChunk);
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    float p = e.param[i];
    float g = e.grad[i] * a.grad_scale;
    if (!a.decoupled) g += e.weight_decay * p;
    const float m = a.beta1 * e.exp_avg[i] + (1.0f - a.beta1) * g;
    const float v = a.beta2 * e.exp_avg_sq[i] + (1.0f - a.beta2) * g * g;
    float u = (m / a.bias_correction1) / (sqrtf(v / a.bias_correction2) + a.eps);
    if (a.decoupled) u += e.weight_decay * p;
    p -= a.lr * u;
    e.param[i] = p;
    e.exp_avg[i] = m;
    e.exp_avg_sq[i] = v;
    if (e.model_param != nullptr) {
      switch (static_cast<DType>(e.model_dtype)) {
        case DType::kBF16: static_cast<__nv_bfloat16*>(e.model_param)[i] = __float2bfloat16_rn(p); break;
        case DType::kF16: static_cast<__half*>(e.model_param)[i] = __float2half_rn(p); break;
        default: static_cast<float*>(e.model_param)[i] = p; break;
      }
    }
  }
}

template <typename T>
__device__ __forceinline__ double square_sum(const T* x, std::int64_t begin, std::int64_t end) {
  double s = 0.0;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = static_cast<double>(to_float(x[i]));
    s += v * v;
  }
  return s;
}

__global__ void sum_squares_multi_kernel(const __grid_constant__ Table<SumTableEntry> table, double* partials) {
  __shared__ double scratch[32];
  const SumTableEntry& e = table.entries[find_entry(table.entries, table.count, blockIdx.x)];
  const std::int64_t begin = (blockIdx.x - e.chunk_begin) * kSumSquaresChunk;
  const std::int64_t end = min(e.numel, begin + kSumSquaresChunk);
  double s = 0.0;
  switch (static_cast<DType>(e.dtype)) {
    case DType::kBF16: s = square_sum(static_cast<const __nv_bfloat16*>(e.x), begin, end); break;
    case DType::kF16: s = square_sum(static_cast<const __half*>(e.x), begin, end); break;
    default: s = square_sum(static_cast<const float*>(e.x), begin, end); break;
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

}  // namespace

void launch_adamw(const AdamWTensor* tensors, int count, const AdamWArgs& args, cudaStream_t stream) {
  if (count == 1 && tensors[0].numel > 0 && ceil_div(tensors[0].numel, kAdamChunk) <= 0x7FFFFFFFLL) {
    const AdamWTensor& x = tensors[0];
    const Table<AdamTableEntry, 1> one{{AdamTableEntry{x.param, x.grad, x.exp_avg, x.exp_avg_sq, x.model_param, x.numel,
                                                       0, x.weight_decay, static_cast<int>(x.model_dtype)}},
                                       1};
    adamw_kernel<1><<<static_cast<unsigned>(ceil_div(x.numel, kAdamChunk)), kThreads, 0, stream>>>(one, args);
    return;
  }
  Table<AdamTableEntry> table{};
  std::int64_t chunks = 0;
  auto flush = [&] {
    if (table.count > 0)
      adamw_kernel<kMaxTensorsPerLaunch><<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(table, args);
    table.count = 0;
    chunks = 0;
  };
  for (int t = 0; t < count; ++t) {
    const AdamWTensor& x = tensors[t];
    if (x.numel <= 0) continue;
    const std::int64_t need = ceil_div(x.numel, kAdamChunk);
    if (table.count == kMaxTensorsPerLaunch || chunks + need > 0x7FFFFFFFLL) flush();
    if (need > 0x7FFFFFFFLL) throw RuntimeError("launch_adamw: tensor too large for one launch");
    table.entries[table.count++] = AdamTableEntry{x.param,   x.grad,   x.exp_avg,      x.exp_avg_sq,
                                                  x.model_param, x.numel, chunks, x.weight_decay,
                                                  static_cast<int>(x.model_dtype)};
    chunks += need;
  }
  flush();
}

std::int64_t sum_squares_multi_partials(const std::int64_t* numels, int count) {
  std::int64_t chunks = 0;
  for (int t = 0; t < count; ++t) chunks += ceil_div(numels[t], kSumSquaresChunk);
  return chunks;
}

std::int64_t launch_sum_squares_multi(const void* const* xs, const DType* dtypes, const std::int64_t* numels,
                                      int count, double* partials, cudaStream_t stream) {
  Table<SumTableEntry> table{};
  std::int64_t chunks = 0, written = 0;
  auto flush = [&] {
    if (table.count > 0)
      sum_squares_multi_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(table, partials + written);
    written += chunks;
    table.count = 0;
    chunks = 0;
  };
  for (int t = 0; t < count; ++t) {
    if (numels[t] <= 0) continue;
    const std::int64_t need = ceil_div(numels[t], kSumSquaresChunk);
    if (table.count == kMaxTensorsPerLaunch || chunks + need > 0x7FFFFFFFLL) flush();
    table.entries[table.count++] = SumTableEntry{xs[t], numels[t], chunks, static_cast<int>(dtypes[t])};
    chunks += need;
  }
  flush();
  return written;
}

}  // namespace bignlp::kernels
