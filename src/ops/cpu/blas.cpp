#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "cpu_common.h"

namespace bignlp::ops::cpu {

namespace {

// OpenBLAS's own thread pool and our OpenMP team would take turns on the same cores, each
// spinning while the other works (2 cores: 33.5 s per gpt3/126m step against 29.5 s with one
// OpenMP thread). OpenBLAS runs single-threaded instead, and sgemm() splits each product over
// the OpenMP team.
void make_blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Products with fewer multiply-adds run as one call.
constexpr std::int64_t kSplitWork = std::int64_t{1} << 22;
// A split cuts the longer side of C into slices of at least this many rows/columns, at most
// kMaxSlices of them, with boundaries at multiples of kAlign (whole micro-kernel tiles).
constexpr std::int64_t kMinSlice = 128;
constexpr std::int64_t kMaxSlices = 64;
constexpr std::int64_t kAlign = 16;

}  // namespace

void sgemm(const OpContext& ctx, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  make_blas_single_threaded();
  const CBLAS_TRANSPOSE cta = ta ? CblasTrans : CblasNoTrans, ctb = tb ? CblasTrans : CblasNoTrans;
  auto call = [&](std::int64_t mm, std::int64_t nn, const float* ap, const float* bp, float* cp) {
    cblas_sgemm(CblasRowMajor, cta, ctb, static_cast<int>(mm), static_cast<int>(nn), static_cast<int>(k), alpha, ap,
                static_cast<int>(lda), bp, static_cast<int>(ldb), beta, cp, static_cast<int>(ldc));
  };
  // The slicing depends on the shape only, never on the thread count: OpenBLAS picks its
  // kernels (and so the rounding) by the sizes it is given, so the same slices on any number of
  // threads give the same bits.
  const std::int64_t work = m * n * std::max<std::int64_t>(k, 1);
  const bool by_rows = m >= n;
  const std::int64_t len = by_rows ? m : n;
  const std::int64_t wanted = std::clamp<std::int64_t>(len / kMinSlice, 1, kMaxSlices);
  if (work < kSplitWork || wanted <= 1) {
    call(m, n, a, b, c);
    return;
  }
  const std::int64_t step = ((len + wanted - 1) / wanted + kAlign - 1) / kAlign * kAlign;
  const std::int64_t slices = (len + step - 1) / step;
  const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<std::int64_t>(num_threads(ctx), slices));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t s = 0; s < slices; ++s) {
    const std::int64_t begin = s * step, count = std::min(step, len - begin);
    if (by_rows) {
      // Rows of op(A): rows of A, or columns when A is transposed.
      call(count, n, a + (ta ? begin : begin * lda), b, c + begin * ldc);
    } else {
      // Columns of op(B): columns of B, or rows when B is transposed.
      call(m, count, a, b + (tb ? begin * ldb : begin), c + begin);
    }
  }
}

}  // namespace bignlp::ops::cpu
