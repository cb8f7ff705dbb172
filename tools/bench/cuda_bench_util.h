// Shared pieces of the CUDA benchmarks: event timing (median of repetitions after warm-up, as
// METHOD.md asks), random device tensors (never zeros: they run faster than real data), and
// one-line JSON records that tools/bench/bench_table.py turns into the results table.
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bignlp/ops/cuda_context.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::bench {

/// Median milliseconds of `reps` runs of fn on the context's stream, after `warmup` runs.
inline double median_ms(ops::CudaContext& cc, int warmup, int reps, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  cc.synchronize();
  std::vector<ops::CudaEvent> start(static_cast<std::size_t>(reps)), stop(static_cast<std::size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    start[i].record(cc.stream);
    fn();
    stop[i].record(cc.stream);
  }
  cc.synchronize();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) ms.push_back(stop[i].elapsed_ms_since(start[i]));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// A device buffer of normal(0, stddev) values of `dtype`.
inline Buffer random_device(const ops::OpContext& ctx, DType dtype, Shape shape, float stddev, unsigned seed) {
  std::vector<float> host(static_cast<std::size_t>(shape.numel()));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  for (auto& x : host) x = d(rng);
  Buffer b(*ctx.allocator, dtype, shape);
  ops::copy(ctx, TensorView(host.data(), DType::kF32, shape), b);
  return b;
}

/// Prints one JSON record (fields already formatted as "key": value pairs).
inline void emit(const std::string& fields) {
  std::printf("{%s}\n", fields.c_str());
  std::fflush(stdout);
}

}  // namespace bignlp::bench
