// CPU elementwise utilities: fill, converting (strided) copy, add, scale, deterministic sum of squares.
#include <cstring>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {
namespace {

/// Calls fn(T{}) with the C++ storage type of any dtype.
template <typename Fn>
void dispatch_any(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kI32: fn(std::int32_t{}); return;
    case DType::kI64: fn(std::int64_t{}); return;
    case DType::kU16: fn(std::uint16_t{}); return;
    default: dispatch_float(dtype, fn);
  }
}

template <typename T>
double load(const T& v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, BFloat16> || std::is_same_v<T, Float16>)
    return to_f(v);
  else
    return static_cast<double>(v);
}

template <typename T>
T store(double v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, BFloat16> || std::is_same_v<T, Float16>)
    return from_f<T>(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

/// Element offset of flat (row-major) index i in a strided view.
std::int64_t strided_offset(const TensorView& t, std::int64_t i) {
  std::int64_t off = 0;
  for (int d = t.rank() - 1; d >= 0; --d) {
    const std::int64_t extent = t.size(d);
    off += (i % extent) * t.stride(d);
    i /= extent;
  }
  return off;
}

}  // namespace

void fill(const OpContext& ctx, const TensorView& x, double value) {
  dispatch_any(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(x.raw());
    const T v = store<T>(value);
    parallel_chunks(ctx, x.numel(), 1 << 16, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) p[i] = v;
    });
  });
}

void copy(const OpContext& ctx, const TensorView& src, const TensorView& dst) {
  const std::int64_t n = src.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype() && src.is_contiguous()) {
    if (src.raw() != dst.raw()) std::memmove(dst.raw(), src.raw(), dst.nbytes());
    return;
  }
  const bool contiguous = src.is_contiguous();
  dispatch_any(src.dtype(), [&](auto stag) {
    using S = decltype(stag);
    const S* sp = static_cast<const S*>(src.raw());
    dispatch_any(dst.dtype(), [&](auto dtag) {
      using D = decltype(dtag);
      D* dp = static_cast<D*>(dst.raw());
      parallel_chunks(ctx, n, 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) dp[i] = store<D>(load(sp[contiguous ? i : strided_offset(src, i)]));
      });
    });
  });
}

void add(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out) {
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* ap = static_cast<const T*>(a.raw());
    const T* bp = static_cast<const T*>(b.raw());
    T* op = static_cast<T*>(out.raw());
    parallel_chunks(ctx, a.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) op[i] = from_f<T>(to_f(ap[i]) + to_f(bp[i]));
    });
  });
}

void scale(const OpContext& ctx, const TensorView& x, float factor) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(x.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) p[i] = from_f<T>(to_f(p[i]) * factor);
    });
  });
}

void sum_squares(const OpContext& ctx, const TensorView& x, const TensorView& out, bool accumulate) {
  constexpr std::int64_t kChunk = 4096;
  const std::int64_t n = x.numel();
  std::vector<double> partial(static_cast<std::size_t>((n + kChunk - 1) / kChunk), 0.0);
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(x.raw());
    parallel_chunks(ctx, n, kChunk, [&](std::int64_t i0, std::int64_t i1) {
      double s = 0.0;
      for (std::int64_t i = i0; i < i1; ++i) {
        const double v = to_f(p[i]);
        s += v * v;
      }
      partial[static_cast<std::size_t>(i0 / kChunk)] = s;
    });
  });
  double total = 0.0;
  for (double s : partial) total += s;
  float* o = static_cast<float*>(out.raw());
  o[0] = static_cast<float>(accumulate ? static_cast<double>(o[0]) + total : total);
}

void sum_squares_multi(const OpContext& ctx, std::span<const TensorView> xs, const TensorView& out, bool accumulate) {
  float* o = static_cast<float*>(out.raw());
  if (!accumulate) o[0] = 0.0f;
  for (const TensorView& x : xs) cpu::sum_squares(ctx, x, out, /*accumulate=*/true);
}

}  // namespace bignlp::ops::cpu
