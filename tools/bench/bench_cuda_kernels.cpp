// bench_cuda_kernels: GEMM and attention throughput of the CUDA backend.
//
//   bench_cuda_kernels [--quick]
// GEMM: cuBLASLt bf16 (fp32 accumulation) at 8192^3 (the device's measured matrix peak, the
// reference for the others), TF32 at 8192^3, and the linear layers of the benchmark models.
// Attention: the flash kernels forward and forward+backward on the models' shapes, causal, no
// dropout, in TFLOP/s by FlashAttention's count (forward 4 B NH T^2 HS, halved when causal;
// backward 2.5 x forward). One JSON line per measurement (tools/bench/bench_table.py).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bignlp/core/environment.h"
#include "bignlp/tensor/cuda_allocator.h"
#include "cuda_bench_util.h"

namespace {

using namespace bignlp;

struct GemmCase {
  const char* name;
  std::int64_t m, n, k;
  bool trans_a, trans_b;
  DType dtype, c_dtype;
};

struct AttnCase {
  const char* name;
  int b, nh, t, hs;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA kernel benchmarks: GEMM and attention TFLOP/s"};
  bool quick = false;
  int reps = 20;
  app.add_flag("--quick", quick, "fewer repetitions and smaller peak GEMM (smoke test)");
  app.add_option("--reps", reps, "timed repetitions per case (median reported)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (ops::cuda_device_count() == 0) {
      std::fprintf(stderr, "bench_cuda_kernels: no CUDA device\n");
      return 1;
    }
    ops::CudaContext cc(ops::cuda_options_from_environment(process_environment()));
    auto alloc = make_cuda_allocator(cc.device);
    const ops::OpContext ctx = cc.op_context(*alloc);
    if (quick) reps = 3;
    bench::emit(fmt::format(R"("bench": "device", "name": "{}", "sm_count": {}, "cc": "{}.{}", "memory_gib": {:.1f})",
                            cc.device_name, cc.sm_count, cc.cc_major, cc.cc_minor,
                            static_cast<double>(cc.total_memory) / (1 << 30)));

    const std::int64_t big = quick ? 2048 : 8192;
    const std::vector<GemmCase> gemms{
        {"peak bf16", big, big, big, false, false, DType::kBF16, DType::kBF16},
        {"peak tf32", big, big, big, false, false, DType::kF32, DType::kF32},
        {"124M qkv fwd (16K x 768 -> 2304)", 16384, 2304, 768, false, true, DType::kBF16, DType::kBF16},
        {"124M fc1 fwd (16K x 768 -> 3072)", 16384, 3072, 768, false, true, DType::kBF16, DType::kBF16},
        {"124M fc2 dgrad (16K x 768 <- 3072)", 16384, 768, 3072, false, false, DType::kBF16, DType::kBF16},
        {"124M fc1 wgrad (3072 x 768, fp32 +=)", 3072, 768, 16384, true, false, DType::kBF16, DType::kF32},
        {"124M logits (16K x 768 -> 50304)", 16384, 50304, 768, false, true, DType::kBF16, DType::kBF16},
        {"1.3B fc1 fwd (8K x 2048 -> 8192)", 8192, 8192, 2048, false, true, DType::kBF16, DType::kBF16},
        {"1.3B qkv wgrad (6144 x 2048, fp32 +=)", 6144, 2048, 8192, true, false, DType::kBF16, DType::kF32},
    };
    double peak = 0.0;
    for (const GemmCase& g : gemms) {
      Buffer a = bench::random_device(ctx, g.dtype, g.trans_a ? Shape{g.k, g.m} : Shape{g.m, g.k}, 1.0f, 1);
      Buffer b = bench::random_device(ctx, g.dtype, g.trans_b ? Shape{g.n, g.k} : Shape{g.k, g.n}, 1.0f, 2);
      Buffer c = bench::random_device(ctx, g.c_dtype, Shape{g.m, g.n}, 1.0f, 3);
      const float beta = g.c_dtype == DType::kF32 && g.dtype != DType::kF32 ? 1.0f : 0.0f;
      const double ms = bench::median_ms(cc, 3, reps, [&] {
        ops::gemm(ctx, a, b, c, ops::GemmParams{g.trans_a, g.trans_b, 1.0f, beta});
      });
      const double tflops = 2.0 * g.m * g.n * g.k / (ms * 1e-3) / 1e12;
      if (std::string(g.name) == "peak bf16") peak = tflops;
      bench::emit(fmt::format(R"("bench": "gemm", "name": "{}", "m": {}, "n": {}, "k": {}, "ms": {:.4f}, "tflops": {:.1f}, "of_peak": {:.3f})",
                              g.name, g.m, g.n, g.k, ms, tflops, peak > 0.0 ? tflops / peak : 0.0));
    }

    const std::vector<AttnCase> attns{
        {"gpt2-124m", 16, 12, 1024, 64}, {"gpt3-126m", 8, 12, 2048, 64}, {"gpt-1.3b", 4, 16, 2048, 128}};
    for (const AttnCase& a : attns) {
      const Shape qkv_shape{a.t, a.b, static_cast<std::int64_t>(a.nh) * 3 * a.hs};
      const Shape out_shape{a.t, a.b, static_cast<std::int64_t>(a.nh) * a.hs};
      Buffer qkv = bench::random_device(ctx, DType::kBF16, qkv_shape, 1.0f, 4);
      Buffer out(*alloc, DType::kBF16, out_shape), lse(*alloc, DType::kF32, Shape{a.b, a.nh, a.t});
      Buffer dout = bench::random_device(ctx, DType::kBF16, out_shape, 1.0f, 5);
      Buffer dqkv(*alloc, DType::kBF16, qkv_shape);
      ops::AttentionParams p;
      p.num_heads = a.nh;
      p.causal = true;
      const double fwd_flops = 4.0 * a.b * a.nh * static_cast<double>(a.t) * a.t * a.hs / 2.0;
      const double fwd = bench::median_ms(cc, 3, reps, [&] { ops::attention_forward(ctx, qkv, out, lse, p); });
      const double both = bench::median_ms(cc, 3, reps, [&] {
        ops::attention_forward(ctx, qkv, out, lse, p);
        ops::attention_backward(ctx, qkv, out, lse, dout, dqkv, p);
      });
      const std::string shape = fmt::format(R"("b": {}, "nh": {}, "t": {}, "hs": {})", a.b, a.nh, a.t, a.hs);
      bench::emit(fmt::format(R"("bench": "attention", "impl": "bignlp", "name": "{}", "pass": "fwd", {}, "ms": {:.4f}, "tflops": {:.1f})",
                              a.name, shape, fwd, fwd_flops / (fwd * 1e-3) / 1e12));
      bench::emit(fmt::format(R"("bench": "attention", "impl": "bignlp", "name": "{}", "pass": "fwd+bwd", {}, "ms": {:.4f}, "tflops": {:.1f})",
                              a.name, shape, both, 3.5 * fwd_flops / (both * 1e-3) / 1e12));
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cuda_kernels: %s\n", e.what());
    return e.exit_code();
  }
}
