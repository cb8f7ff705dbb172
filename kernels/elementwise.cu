// Elementwise utilities: fill, converting (strided) copy, add, scale, deterministic sums of squares
// and column sums, and the small GEMM epilogue helpers.
//
// Memory-bound: 16-byte vector accesses when every pointer allows them, a scalar path otherwise.
// Reductions use fixed chunks and a fixed combination tree, so their results are the same on every
// run (they differ from the CPU reference only in the last bits, by the order of additions).
#include <string>

#include "bignlp/core/error.h"
#include "kernels/common.cuh"

namespace bignlp::kernels {

void throw_unsupported_dtype(const char* where, DType dtype) {
  throw RuntimeError(std::string(where) + ": no CUDA kernel for dtype " + std::string(dtype_name(dtype)));
}

namespace {

constexpr int kThreads = 256;

// --- fill ------------------------------------------------------------------------------------

template <typename W>
__global__ void fill_kernel(W* x, std::int64_t n, W value) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = value;
}

template <typename W>
void fill_words(void* x, std::int64_t n, W value, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<W><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<W*>(x), n, value);
}

// --- convert ---------------------------------------------------------------------------------

template <typename T>
constexpr bool is_float_v = std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

template <typename S, typename D>
__device__ __forceinline__ D convert_value(S v) {
  if constexpr (is_float_v<S> && is_float_v<D>) {
    return from_float<D>(to_float(v));
  } else {
    double d;
    if constexpr (is_float_v<S>) d = static_cast<double>(to_float(v));
    else d = static_cast<double>(v);
    if constexpr (is_float_v<D>) return from_float<D>(static_cast<float>(d));
    else return static_cast<D>(d);
  }
}

template <typename S, typename D>
__global__ void convert_kernel(const S* src, D* dst, std::int64_t n, StridedLayout layout) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    std::int64_t off = i;
    if (layout.rank > 0) {
      off = 0;
      std::int64_t rem = i;
      for (int d = layout.rank - 1; d >= 0; --d) {
        const std::int64_t extent = layout.sizes[d];
        off += (rem % extent) * layout.strides[d];
        rem /= extent;
      }
    }
    dst[i] = convert_value<S, D>(src[off]);
  }
}

template <typename Fn>
void dispatch_any(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kI32: fn(std::int32_t{}); return;
    case DType::kI64: fn(std::int64_t{}); return;
    case DType::kU16: fn(std::uint16_t{}); return;
    default: dispatch_float(dtype, fn);
  }
}

// --- add / scale -----------------------------------------------------------------------------

template <typename T, int N>
__global__ void add_kernel(const T* a, const T* b, T* out, std::int64_t n) {
  const std::int64_t vecs = n / N;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t tid = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (std::int64_t i = tid; i < vecs; i += stride) {
    const Vec<T, N> va = reinterpret_cast<const Vec<T, N>*>(a)[i];
    const Vec<T, N> vb = reinterpret_cast<const Vec<T, N>*>(b)[i];
    Vec<T, N> vo;
#pragma unroll
    for (int k = 0; k < N; ++k) vo.v[k] = from_float<T>(to_float(va.v[k]) + to_float(vb.v[k]));
    reinterpret_cast<Vec<T, N>*>(out)[i] = vo;
  }
  for (std::int64_t i = vecs * N + tid; i < n; i += stride) out[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}

template <typename T, int N>
__global__ void scale_kernel(T* x, std::int64_t n, float factor) {
  const std::int64_t vecs = n / N;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t tid = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (std::int64_t i = tid; i < vecs; i += stride) {
    Vec<T, N> v = reinterpret_cast<Vec<T, N>*>(x)[i];
#pragma unroll
    for (int k = 0; k < N; ++k) v.v[k] = from_float<T>(to_float(v.v[k]) * factor);
    reinterpret_cast<Vec<T, N>*>(x)[i] = v;
  }
  for (std::int64_t i = vecs * N + tid; i < n; i += stride) x[i] = from_float<T>(to_float(x[i]) * factor);
}

__global__ void accumulate_kernel(const float* x, float* out, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] += x[i];
}

// --- sums ------------------------------------------------------------------------------------

// One block of kThreads per chunk of kSumSquaresChunk elements.
template <typename T>
__global__ void sum_squares_partials_kernel(const T* x, std::int64_t n, double* partials) {
  __shared__ double scratch[32];
  const std::int64_t begin = blockIdx.x * kSumSquaresChunk;
  const std::int64_t end = min(n, begin + kSumSquaresChunk);
  double s = 0.0;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = static_cast<double>(to_float(x[i]));
    s += v * v;
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sum_partials_kernel(const double* partials, std::int64_t count, float* out, bool accumulate) {
  __shared__ double scratch[32];
  double s = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) out[0] = static_cast<float>(accumulate ? static_cast<double>(out[0]) + s : s);
}

template <typename T>
__global__ void column_partials_kernel(const T* x, std::int64_t rows, std::int64_t cols, float* partial) {
  const std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  const std::int64_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
  for (std::int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {  // grid.y is capped
    const std::int64_t r0 = chunk * kColumnChunk;
    const std::int64_t r1 = min(rows, r0 + kColumnChunk);
    float s = 0.0f;
    for (std::int64_t r = r0; r < r1; ++r) s += to_float(x[r * cols + j]);
    partial[chunk * cols + j] = s;
  }
}

__global__ void reduce_partials_kernel(const float* partial, std::int64_t chunks, std::int64_t cols, float* out) {
  const std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  float s = 0.0f;
  for (std::int64_t r = 0; r < chunks; ++r) s += partial[r * cols + j];
  out[j] += s;
}

// --- GEMM helpers ----------------------------------------------------------------------------

template <typename T, typename BT>
__global__ void gemm_no_k_kernel(T* c, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta, const BT* bias) {
  const std::int64_t total = m * n;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / n, j = i % n;
    float v = beta == 0.0f ? 0.0f : beta * to_float(c[r * ldc + j]);
    if (bias != nullptr) v += to_float(bias[j]);
    c[r * ldc + j] = from_float<T>(v);
  }
}

template <typename T, typename BT>
__global__ void add_bias_kernel(T* x, std::int64_t m, std::int64_t n, std::int64_t ld, const BT* bias) {
  const std::int64_t total = m * n;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / n, j = i % n;
    x[r * ld + j] = from_float<T>(to_float(x[r * ld + j]) + to_float(bias[j]));
  }
}

}  // namespace

void launch_fill(void* x, std::size_t elem_bytes, std::int64_t n, std::uint64_t pattern, cudaStream_t stream) {
  // Widen the pattern to 16 bytes when the buffer allows it: one store per 16 bytes.
  const std::int64_t bytes = n * static_cast<std::int64_t>(elem_bytes);
  if (aligned_to(x, 16) && bytes % 16 == 0 && bytes > 0) {
    std::uint64_t word = pattern;
    if (elem_bytes == 1) word = (pattern & 0xFFu) * 0x0101010101010101ull;
    if (elem_bytes == 2) word = (pattern & 0xFFFFu) * 0x0001000100010001ull;
    if (elem_bytes == 4) word = (pattern & 0xFFFFFFFFull) * 0x0000000100000001ull;
    const uint4 v{static_cast<unsigned>(word), static_cast<unsigned>(word >> 32), static_cast<unsigned>(word),
                  static_cast<unsigned>(word >> 32)};
    fill_words<uint4>(x, bytes / 16, v, stream);
    return;
  }
  switch (elem_bytes) {
    case 1: fill_words<std::uint8_t>(x, n, static_cast<std::uint8_t>(pattern), stream); return;
    case 2: fill_words<std::uint16_t>(x, n, static_cast<std::uint16_t>(pattern), stream); return;
    case 4: fill_words<std::uint32_t>(x, n, static_cast<std::uint32_t>(pattern), stream); return;
    case 8: fill_words<std::uint64_t>(x, n, pattern, stream); return;
    default: throw RuntimeError("launch_fill: element size must be 1, 2, 4 or 8 bytes, got " + std::to_string(elem_bytes));
  }
}

void launch_convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, std::int64_t n,
                    const StridedLayout* src_layout, cudaStream_t stream) {
  if (n <= 0) return;
  const StridedLayout layout = src_layout != nullptr ? *src_layout : StridedLayout{};
  dispatch_any(src_dtype, [&](auto stag) {
    using S = decltype(stag);
    dispatch_any(dst_dtype, [&](auto dtag) {
      using D = decltype(dtag);
      convert_kernel<S, D><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const S*>(src),
                                                                           static_cast<D*>(dst), n, layout);
    });
  });
}

void launch_add(const void* a, const void* b, void* out, DType dtype, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = aligned_to(a, 16) && aligned_to(b, 16) && aligned_to(out, 16);
    if (vec)
      add_kernel<T, kVec><<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n);
    else
      add_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(a),
                                                                       static_cast<const T*>(b), static_cast<T*>(out), n);
  });
}

void launch_scale(void* x, DType dtype, std::int64_t n, float factor, cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    if (aligned_to(x, 16))
      scale_kernel<T, kVec><<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(static_cast<T*>(x), n, factor);
    else
      scale_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(x), n, factor);
  });
}

void launch_accumulate_f32(const float* x, float* out, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  accumulate_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(x, out, n);
}

void launch_sum_squares_partials(const void* x, DType dtype, std::int64_t n, double* partials, cudaStream_t stream) {
  if (n <= 0) return;
  const std::int64_t chunks = ceil_div(n, kSumSquaresChunk);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    sum_squares_partials_kernel<T><<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                                                            n, partials);
  });
}

void launch_sum_partials(const double* partials, std::int64_t count, float* out, bool accumulate,
                         cudaStream_t stream) {
  sum_partials_kernel<<<1, 1024, 0, stream>>>(partials, count, out, accumulate);
}

void launch_column_partials(const void* x, DType dtype, std::int64_t rows, std::int64_t cols, float* partial,
                            cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const std::int64_t chunks = ceil_div(rows, kColumnChunk);
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kThreads)), static_cast<unsigned>(chunks < 65535 ? chunks : 65535));
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    column_partials_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), rows, cols, partial);
  });
}

void launch_reduce_partials(const float* partial, std::int64_t chunks, std::int64_t cols, float* out,
                            cudaStream_t stream) {
  if (cols <= 0) return;
  reduce_partials_kernel<<<static_cast<unsigned>(ceil_div(cols, kThreads)), kThreads, 0, stream>>>(partial, chunks,
                                                                                                   cols, out);
}

void launch_gemm_no_k(void* c, DType c_dtype, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta,
                      const void* bias, DType bias_dtype, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  dispatch_float(c_dtype, [&](auto ctag) {
    using T = decltype(ctag);
    dispatch_float(bias_dtype, [&](auto btag) {
      using BT = decltype(btag);
      gemm_no_k_kernel<T, BT><<<grid_for(m * n, kThreads), kThreads, 0, stream>>>(
          static_cast<T*>(c), m, n, ldc, beta, static_cast<const BT*>(bias));
    });
  });
}

void launch_add_bias(void* x, DType dtype, std::int64_t m, std::int64_t n, std::int64_t ld, const void* bias,
                     DType bias_dtype, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_float(bias_dtype, [&](auto btag) {
      using BT = decltype(btag);
      add_bias_kernel<T, BT><<<grid_for(m * n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(x), m, n, ld,
                                                                                 static_cast<const BT*>(bias));
    });
  });
}

}  // namespace bignlp::kernels
