// bench_gpt_train_step: time of GPT training steps (forward + backward + Adam) on the CPU, peak
// host memory, and the same step in PyTorch measured in the same run for a ratio.
//
//   bench_gpt_train_step                       # gpt3/126m shape: L12 C768 NH12 T2048 V50257, MBS 1
//   bench_gpt_train_step --seq-length 512 --steps 3 --no-torch
// Prints per-step seconds, tokens/s, model TFLOP/s (the benchmark recipe's formula), the process
// peak RSS (getrusage ru_maxrss) and the tensor allocator's peak; with the PyTorch peer
// (tools/bench/torch_gpt_step.py, /usr/bin/python3 + torch) the ratio torch_time / bignlp_time.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <memory>
#include <random>
#include <string>

#include "bignlp/core/strings.h"
#include "bignlp/model/gpt.h"
#include "bignlp/train/optimizer.h"

namespace {

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPT training-step benchmark (CPU)"};
  int layers = 12, heads = 12, steps = 3, threads = 0;
  std::int64_t hidden = 768, seq = 2048, vocab = 50257, mbs = 1;
  std::string precision = "32", granularity = "none";
  bool no_torch = false;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--seq-length", seq);
  app.add_option("--vocab", vocab);
  app.add_option("--micro-batch", mbs);
  app.add_option("--steps", steps, "timed steps (after one warm-up step)");
  app.add_option("--precision", precision)->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--checkpoint-granularity", granularity)->check(CLI::IsMember({"none", "full", "selective"}));
  app.add_option("--threads", threads);
  app.add_flag("--no-torch", no_torch, "skip the PyTorch peer");
  CLI11_PARSE(app, argc, argv);

  using namespace bignlp;
  model::GptConfig c;
  c.vocab_size = vocab;
  c.seq_length = seq;
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_attention_heads = heads;
  c.hidden_dropout = 0.1f;
  c.attention_dropout = 0.1f;
  c.precision = model::parse_precision(precision);
  if (granularity == "full")
    c.activations_checkpoint = {model::CheckpointGranularity::kFull, model::CheckpointMethod::kUniform, 1};
  if (granularity == "selective")
    c.activations_checkpoint = {model::CheckpointGranularity::kSelective, model::CheckpointMethod::kUniform, 1};

  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu(threads);
  ctx.allocator = &alloc;
  model::GptModel model(c, ctx);
  model.initialize(1234);
  train::AdamOptimizer opt(model.parameters(), train::OptimizerConfig{"fused_adam", 1e-4, 0.9, 0.95, 1e-8, 0.1}, ctx);
  std::mt19937 rng(1);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(mbs * seq)), labels(tokens.size());
  for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % vocab);
  for (auto& t : labels) t = static_cast<std::int32_t>(rng() % vocab);
  const model::Batch batch{.tokens = TensorView(tokens.data(), DType::kI32, Shape{mbs, seq}),
                           .labels = TensorView(labels.data(), DType::kI32, Shape{mbs, seq})};

  std::printf("model: L=%d C=%lld NH=%d T=%lld V=%lld (Vp %lld), %lld parameters, MBS %lld, precision %s, act. ckpt %s\n",
              layers, static_cast<long long>(hidden), heads, static_cast<long long>(seq), static_cast<long long>(vocab),
              static_cast<long long>(c.padded_vocab_size()), static_cast<long long>(c.num_parameters()),
              static_cast<long long>(mbs), precision.c_str(), granularity.c_str());
  double total = 0.0;
  for (int s = 0; s <= steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    model.parameters().zero_grad(ctx);
    const float loss = model.train_micro_batch(batch, model::DropoutRng{1, model::dropout_offset(s, 0, 1)}, 1.0f);
    opt.step(1e-4, 1.0, 1.0);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("step %d%s: %.3f s, loss %.4f\n", s, s == 0 ? " (warm-up)" : "", dt, loss);
    std::fflush(stdout);
    if (s > 0) total += dt;
  }
  const double per_step = total / steps;
  const double flops = static_cast<double>(mbs) * model::model_flops_per_sequence(c);
  std::printf("bignlp: %.3f s/step, %.1f tokens/s, %.4f model TFLOP/s\n", per_step,
              static_cast<double>(mbs * seq) / per_step, flops / per_step / 1e12);
  std::printf("peak host memory: %s (getrusage maxrss); tensor allocator peak %s\n",
              format_bytes(static_cast<std::uint64_t>(peak_rss_bytes())).c_str(),
              format_bytes(alloc.stats().peak_in_use).c_str());

  if (!no_torch) {
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tools/bench/torch_gpt_step.py --layers {} --hidden {} --heads {} --seq-length {} --vocab {} "
        "--micro-batch {} --steps {} 2>&1",
        BIGNLP_SOURCE_DIR, layers, hidden, heads, seq, c.padded_vocab_size(), mbs, steps);
    std::FILE* p = popen(cmd.c_str(), "r");
    double torch_step = 0.0;
    char line[512];
    while (p != nullptr && std::fgets(line, sizeof line, p) != nullptr) {
      std::printf("  torch| %s", line);
      if (std::sscanf(line, "torch: %lf s/step", &torch_step) == 1) continue;
    }
    if (p != nullptr) pclose(p);
    if (torch_step > 0.0)
      std::printf("ratio torch/bignlp step time: %.2f (>1: bignlp faster)\n", torch_step / per_step);
    else
      std::printf("PyTorch peer unavailable (needs /usr/bin/python3 with torch)\n");
  }
  return 0;
}
