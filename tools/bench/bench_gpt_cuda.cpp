// bench_gpt_cuda: GPT training steps of the bignlp engine on one GPU (forward + backward + Adam with
// fp32 master weights and gradient clipping), the figures tools/bench/torch_gpt.py reports for its
// PyTorch implementation of the same model.
//
//   bench_gpt_cuda --name gpt2-124m --layers 12 --hidden 768 --heads 12 --seq-length 1024 --micro-batch 16
// Prints one JSON line: median step time over --steps after --warmup steps, tokens/s, model
// TFLOP/s and MFU (the GPT-3 benchmark recipe's FLOP count, model::model_flops_per_sequence,
// against the device's peak from ops/peak_throughput.h -- 989 for a dense-bf16 H100/H200 SXM -- or
// --peak-tflops), the caching allocator's peak memory, and the
// number of cudaMalloc calls during the timed steps (0 expected).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "bignlp/core/environment.h"
#include "bignlp/model/gpt.h"
#include "bignlp/ops/peak_throughput.h"
#include "bignlp/tensor/cuda_allocator.h"
#include "bignlp/train/optimizer.h"
#include "cuda_bench_util.h"

int main(int argc, char** argv) {
  CLI::App app{"GPT training-step benchmark on CUDA"};
  std::string name = "gpt2-124m", precision = "bf16", granularity = "none";
  int layers = 12, heads = 12, steps = 10, warmup = 3;
  std::int64_t hidden = 768, seq = 1024, vocab = 50257, mbs = 16;
  float dropout = 0.0f;
  double peak_tflops = 0.0;
  app.add_option("--name", name);
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--seq-length", seq);
  app.add_option("--vocab", vocab);
  app.add_option("--micro-batch", mbs);
  app.add_option("--steps", steps, "timed steps (median reported)");
  app.add_option("--warmup", warmup);
  app.add_option("--dropout", dropout, "hidden and attention dropout");
  app.add_option("--precision", precision)->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--checkpoint-granularity", granularity)->check(CLI::IsMember({"none", "full", "selective"}));
  app.add_option("--peak-tflops", peak_tflops,
                 "the device's peak for MFU (default: the device table, 989 for H100/H200 SXM in bf16)");
  CLI11_PARSE(app, argc, argv);

  using namespace bignlp;
  try {
    if (ops::cuda_device_count() == 0) {
      std::fprintf(stderr, "bench_gpt_cuda: no CUDA device\n");
      return 1;
    }
    model::GptConfig c;
    c.vocab_size = vocab;
    c.seq_length = seq;
    c.num_layers = layers;
    c.hidden_size = hidden;
    c.num_attention_heads = heads;
    c.hidden_dropout = dropout;
    c.attention_dropout = dropout;
    c.precision = model::parse_precision(precision);
    if (granularity == "full")
      c.activations_checkpoint = {model::CheckpointGranularity::kFull, model::CheckpointMethod::kUniform, 1};
    if (granularity == "selective")
      c.activations_checkpoint = {model::CheckpointGranularity::kSelective, model::CheckpointMethod::kUniform, 1};

    ops::CudaContext cc(ops::cuda_options_from_environment(process_environment()));
    if (peak_tflops <= 0.0) {
      const auto peak = ops::peak_throughput(ops::DeviceIdentity{cc.device_name, cc.cc_major, cc.cc_minor},
                                             ops::peak_math_for(c.compute_dtype(), cc.allow_tf32));
      if (!peak) {
        std::fprintf(stderr, "bench_gpt_cuda: %s (compute capability %d.%d) is not in the peak table; pass --peak-tflops\n",
                     cc.device_name.c_str(), cc.cc_major, cc.cc_minor);
        return 2;
      }
      peak_tflops = peak->tflops;
    }
    auto alloc = make_cuda_allocator(cc.device);
    const ops::OpContext ctx = cc.op_context(*alloc);
    model::GptModel m(c, ctx);
    m.initialize(1234);
    train::AdamOptimizer opt(m.parameters(), train::OptimizerConfig{"fused_adam", 6e-4, 0.9, 0.95, 1e-8, 0.1}, ctx);
    std::mt19937 rng(1);
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(mbs * seq)), labels(tokens.size());
    for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % vocab);
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) labels[i] = tokens[i + 1];
    const model::Batch batch{.tokens = TensorView(tokens.data(), DType::kI32, Shape{mbs, seq}),
                             .labels = TensorView(labels.data(), DType::kI32, Shape{mbs, seq})};

    std::vector<double> ms;
    float first_loss = 0.0f, last_loss = 0.0f;
    std::uint64_t mallocs_before = 0;
    for (int s = 0; s < warmup + steps; ++s) {
      if (s == warmup) {
        cc.synchronize();
        mallocs_before = alloc->stats().system_allocations;
        alloc->reset_peak();
      }
      ops::CudaEvent start, stop;
      start.record(cc.stream);
      m.parameters().zero_grad(ctx);
      const float loss = m.train_micro_batch(batch, model::DropoutRng{1, model::dropout_offset(s, 0, 1)}, 1.0f);
      opt.step(6e-4, 1.0, 1.0);
      stop.record(cc.stream);
      stop.synchronize();
      if (s == 0) first_loss = loss;
      last_loss = loss;
      if (s >= warmup) ms.push_back(stop.elapsed_ms_since(start));
    }
    std::sort(ms.begin(), ms.end());
    const double step_ms = ms[ms.size() / 2];
    const double tokens_per_step = static_cast<double>(mbs * seq);
    const double flops = static_cast<double>(mbs) * model::model_flops_per_sequence(c);
    const double tflops = flops / (step_ms * 1e-3) / 1e12;
    const AllocatorStats st = alloc->stats();
    std::size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    bench::emit(fmt::format(
        R"("bench": "gpt", "impl": "bignlp", "name": "{}", "params": {}, "layers": {}, "hidden": {}, "heads": {}, "seq": {}, "micro_batch": {}, "precision": "{}", "dropout": {}, "step_ms": {:.2f}, "step_ms_min": {:.2f}, "step_ms_max": {:.2f}, "tokens_per_s": {:.0f}, "tflops": {:.1f}, "mfu": {:.4f}, "peak_tflops": {:g}, "peak_alloc_gib": {:.2f}, "peak_reserved_gib": {:.2f}, "device_used_gib": {:.2f}, "cuda_mallocs_in_timed_steps": {}, "loss_first": {:.4f}, "loss_last": {:.4f})",
        name, c.num_parameters(), layers, hidden, heads, seq, mbs, precision, dropout, step_ms, ms.front(), ms.back(),
        tokens_per_step / (step_ms * 1e-3), tflops, tflops / peak_tflops, peak_tflops,
        static_cast<double>(st.peak_in_use) / (1 << 30), static_cast<double>(st.peak_reserved) / (1 << 30),
        static_cast<double>(total_b - free_b) / (1 << 30), st.system_allocations - mallocs_before, first_loss,
        last_loss));
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpt_cuda: %s\n", e.what());
    return e.exit_code();
  }
}
