// Internal: cached cuBLASLt matmul plans (descriptors, layouts and the chosen algorithm) per GEMM
// problem, so the heuristic query runs once per shape and not on every call of a training step.
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace bignlp::ops {

/// What identifies a GEMM problem for cuBLASLt (everything except the data pointers).
struct GemmKey {
  int a_type = 0, b_type = 0, c_type = 0, bias_type = -1, aux_type = -1;
  int compute = 0, epilogue = 0;
  bool trans_a = false, trans_b = false;  // cuBLASLt operands (see gemm.cpp for the row-major mapping)
  std::int64_t rows_a = 0, cols_a = 0, ld_a = 0, rows_b = 0, cols_b = 0, ld_b = 0, rows_c = 0, cols_c = 0, ld_c = 0;
  std::int64_t ld_aux = 0;
  int align_a = 0, align_b = 0, align_c = 0;
  bool beta_zero = true;

  bool operator==(const GemmKey&) const = default;
};

struct GemmKeyHash {
  std::size_t operator()(const GemmKey& k) const noexcept {
    std::size_t h = 1469598103934665603ull;
    auto mix = [&h](std::int64_t v) { h = (h ^ static_cast<std::size_t>(v)) * 1099511628211ull; };
    for (std::int64_t v : {std::int64_t{k.a_type}, std::int64_t{k.b_type}, std::int64_t{k.c_type},
                           std::int64_t{k.bias_type}, std::int64_t{k.aux_type}, std::int64_t{k.compute},
                           std::int64_t{k.epilogue}, std::int64_t{k.trans_a}, std::int64_t{k.trans_b}, k.rows_a,
                           k.cols_a, k.ld_a, k.rows_b, k.cols_b, k.ld_b, k.rows_c, k.cols_c, k.ld_c, k.ld_aux,
                           std::int64_t{k.align_a}, std::int64_t{k.align_b}, std::int64_t{k.align_c},
                           std::int64_t{k.beta_zero}})
      mix(v);
    return h;
  }
};

struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool usable = false;  ///< false: cuBLASLt offers no algorithm (callers fall back or report)
};

struct GemmPlanCache {
  std::mutex mutex;
  std::unordered_map<GemmKey, GemmPlan, GemmKeyHash> plans;

  ~GemmPlanCache() {
    for (auto& [key, plan] : plans) {
      if (plan.a != nullptr) cublasLtMatrixLayoutDestroy(plan.a);
      if (plan.b != nullptr) cublasLtMatrixLayoutDestroy(plan.b);
      if (plan.c != nullptr) cublasLtMatrixLayoutDestroy(plan.c);
      if (plan.desc != nullptr) cublasLtMatmulDescDestroy(plan.desc);
    }
  }
};

}  // namespace bignlp::ops
