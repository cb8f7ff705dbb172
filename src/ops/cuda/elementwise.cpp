// CUDA elementwise utilities: fill, copy (device <-> device with conversion and strides, host <->
// device), add, scale, and the deterministic sums of squares.
#include <cuda_runtime_api.h>

#include <cstring>
#include <vector>

#include "../backend.h"
#include "bignlp/tensor/half.h"
#include "cuda_common.h"

namespace bignlp::ops::cuda {
namespace {

/// The bytes of `value` stored as one element of dtype (the CPU reference's conversion).
std::uint64_t element_pattern(DType dtype, double value) {
  switch (dtype) {
    case DType::kF32: return float_bits(static_cast<float>(value));
    case DType::kBF16: return bf16_from_float(static_cast<float>(value)).bits;
    case DType::kF16: return fp16_from_float(static_cast<float>(value)).bits;
    case DType::kI32: return static_cast<std::uint32_t>(static_cast<std::int32_t>(value));
    case DType::kI64: return static_cast<std::uint64_t>(static_cast<std::int64_t>(value));
    case DType::kU16: return static_cast<std::uint16_t>(value);
  }
  return 0;
}

kernels::StridedLayout layout_of(const TensorView& t) {
  BIGNLP_CHECK(t.rank() <= 6, "copy: rank {} exceeds 6", t.rank());
  kernels::StridedLayout l;
  l.rank = t.rank();
  for (int d = 0; d < t.rank(); ++d) {
    l.sizes[d] = t.size(d);
    l.strides[d] = t.stride(d);
  }
  return l;
}

/// dst (device, contiguous) = convert(src (device, any strides)).
void device_convert(CudaContext& cc, const TensorView& src, void* dst, DType dst_dtype) {
  const kernels::StridedLayout layout = layout_of(src);
  kernels::launch_convert(src.raw(), src.dtype(), dst, dst_dtype, src.numel(), src.is_contiguous() ? nullptr : &layout,
                          cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "convert");
}

}  // namespace

void fill(const OpContext& ctx, const TensorView& x, double value) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_fill(x.raw(), dtype_size(x.dtype()), x.numel(), element_pattern(x.dtype(), value), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "fill");
}

void copy(const OpContext& ctx, const TensorView& src, const TensorView& dst) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t n = src.numel();
  if (n == 0) return;
  const bool same = src.dtype() == dst.dtype();
  if (src.device().is_cuda() && dst.device().is_cuda()) {
    if (src.device() != dst.device()) {
      BIGNLP_CHECK(same && src.is_contiguous(), "copy across CUDA devices ({} -> {}) needs equal dtypes and a "
                   "contiguous source", src.device().to_string(), dst.device().to_string());
      CUDA_CHECK(cudaMemcpyPeerAsync(dst.raw(), dst.device().index, src.raw(), src.device().index, dst.nbytes(),
                                     cc.stream));
      return;
    }
    if (same && src.is_contiguous()) {
      if (src.raw() != dst.raw())
        CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), dst.nbytes(), cudaMemcpyDeviceToDevice, cc.stream));
      return;
    }
    device_convert(cc, src, dst.raw(), dst.dtype());
    return;
  }
  if (dst.device().is_cuda()) {  // host -> device
    TensorView host = src;
    std::vector<unsigned char> packed;
    if (!src.is_contiguous()) {  // pack on the host first
      packed.resize(static_cast<std::size_t>(n) * dtype_size(src.dtype()));
      host = TensorView(packed.data(), src.dtype(), src.shape());
      cpu::copy(OpContext::cpu(), src, host);
    }
    if (same) {
      // Pageable source: returns once the data is staged, so the host memory may go right after.
      CUDA_CHECK(cudaMemcpyAsync(dst.raw(), host.raw(), dst.nbytes(), cudaMemcpyHostToDevice, cc.stream));
      return;
    }
    Scratch staged(*ctx.allocator, host.nbytes());
    CUDA_CHECK(cudaMemcpyAsync(staged.get(), host.raw(), host.nbytes(), cudaMemcpyHostToDevice, cc.stream));
    device_convert(cc, TensorView(staged.get(), src.dtype(), src.shape(), dst.device()), dst.raw(), dst.dtype());
    return;
  }
  // device -> host: the host memory is read by the caller right after, so wait for the copy.
  if (same && src.is_contiguous()) {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), dst.nbytes(), cudaMemcpyDeviceToHost, cc.stream));
  } else {
    Scratch converted(*ctx.allocator, dst.nbytes());
    device_convert(cc, src, converted.get(), dst.dtype());
    CUDA_CHECK(cudaMemcpyAsync(dst.raw(), converted.get(), dst.nbytes(), cudaMemcpyDeviceToHost, cc.stream));
    CUDA_CHECK(cudaStreamSynchronize(cc.stream));  // before `converted` can be reused
    return;
  }
  CUDA_CHECK(cudaStreamSynchronize(cc.stream));
}

void add(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_add(a.raw(), b.raw(), out.raw(), a.dtype(), a.numel(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "add");
}

void scale(const OpContext& ctx, const TensorView& x, float factor) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_scale(x.raw(), x.dtype(), x.numel(), factor, cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "scale");
}

void sum_squares(const OpContext& ctx, const TensorView& x, const TensorView& out, bool accumulate) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t n = x.numel();
  const std::int64_t chunks = (n + kernels::kSumSquaresChunk - 1) / kernels::kSumSquaresChunk;
  Scratch partials(*ctx.allocator, static_cast<std::size_t>(chunks > 0 ? chunks : 1) * sizeof(double));
  kernels::launch_sum_squares_partials(x.raw(), x.dtype(), n, partials.as<double>(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "sum_squares_partials");
  kernels::launch_sum_partials(partials.as<double>(), chunks, static_cast<float*>(out.raw()), accumulate, cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "sum_partials");
}

void sum_squares_multi(const OpContext& ctx, std::span<const TensorView> xs, const TensorView& out, bool accumulate) {
  CudaContext& cc = cuda_state(ctx);
  std::vector<const void*> ptrs;
  std::vector<DType> dtypes;
  std::vector<std::int64_t> numels;
  for (const TensorView& x : xs) {
    ptrs.push_back(x.raw());
    dtypes.push_back(x.dtype());
    numels.push_back(x.numel());
  }
  const int count = static_cast<int>(xs.size());
  const std::int64_t chunks = kernels::sum_squares_multi_partials(numels.data(), count);
  Scratch partials(*ctx.allocator, static_cast<std::size_t>(chunks > 0 ? chunks : 1) * sizeof(double));
  kernels::launch_sum_squares_multi(ptrs.data(), dtypes.data(), numels.data(), count, partials.as<double>(),
                                    cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "sum_squares_multi");
  kernels::launch_sum_partials(partials.as<double>(), chunks, static_cast<float*>(out.raw()), accumulate, cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "sum_partials");
}

}  // namespace bignlp::ops::cuda
