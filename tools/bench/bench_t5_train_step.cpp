// bench_t5_train_step: time of T5 training steps (encoder + decoder forward, backward, Adam) on
// the CPU at micro batch 1, peak host memory, and the same step in PyTorch
// (tools/bench/torch_t5_step.py) measured in the same run for a ratio.
//
//   bench_t5_train_step                        # t5/220m shape: 12+12 layers, C768, FFN 2048 GeGLU,
//                                              # NH12, kv 64, Te 512, Td 128, V 29096 (+sentinels)
//   bench_t5_train_step --encoder-seq 128 --decoder-seq 32 --steps 1 --no-torch
// Prints per-step seconds, tokens/s (encoder + decoder tokens), the process peak RSS (getrusage
// ru_maxrss) and the tensor allocator's peak; with the PyTorch peer the ratio torch_time /
// bignlp_time. The peer runs as a child process: its own peak RSS is printed by it.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <random>
#include <string>

#include "bignlp/core/strings.h"
#include "bignlp/model/t5.h"
#include "bignlp/train/optimizer.h"

namespace {

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"T5 training-step benchmark (CPU)"};
  int layers = 12, heads = 12, steps = 2, threads = 0;
  std::int64_t hidden = 768, ffn = 2048, kv = 64, te = 512, td = 128, vocab = 29096, mbs = 1;
  std::string precision = "32";
  bool no_torch = false;
  app.add_option("--layers", layers, "layers of each stack");
  app.add_option("--hidden", hidden);
  app.add_option("--ffn", ffn);
  app.add_option("--heads", heads);
  app.add_option("--kv-channels", kv);
  app.add_option("--encoder-seq", te);
  app.add_option("--decoder-seq", td);
  app.add_option("--vocab", vocab, "tokenizer vocabulary with sentinels (28996 + 100 for t5/220m)");
  app.add_option("--micro-batch", mbs);
  app.add_option("--steps", steps, "timed steps (after one warm-up step)");
  app.add_option("--precision", precision)->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--threads", threads);
  app.add_flag("--no-torch", no_torch, "skip the PyTorch peer");
  CLI11_PARSE(app, argc, argv);

  using namespace bignlp;
  model::T5Config c;
  c.vocab_size = vocab;
  c.encoder_seq_length = te;
  c.decoder_seq_length = td;
  c.max_position_embeddings = te;
  for (model::T5StackConfig* s : {&c.encoder, &c.decoder}) {
    s->num_layers = layers;
    s->hidden_size = hidden;
    s->ffn_hidden_size = ffn;
    s->num_attention_heads = heads;
    s->kv_channels = kv;
    s->init_method_std = 0.015f;
    s->activation = "geglu";
  }
  c.embedding_init_method_std = 0.015f;
  c.precision = model::parse_precision(precision);

  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu(threads);
  ctx.allocator = &alloc;
  model::T5Model model(c, ctx);
  model.initialize(1234);
  train::AdamOptimizer opt(model.parameters(), train::OptimizerConfig{"fused_adam", 1e-4, 0.9, 0.999, 1e-8, 0.01}, ctx);
  std::mt19937 rng(1);
  std::vector<std::int32_t> enc(static_cast<std::size_t>(mbs * te)), dec(static_cast<std::size_t>(mbs * td)),
      labels(dec.size());
  for (auto& t : enc) t = static_cast<std::int32_t>(rng() % vocab);
  for (auto& t : dec) t = static_cast<std::int32_t>(rng() % vocab);
  for (auto& t : labels) t = static_cast<std::int32_t>(rng() % vocab);
  const model::Batch batch{.tokens = TensorView(dec.data(), DType::kI32, Shape{mbs, td}),
                           .labels = TensorView(labels.data(), DType::kI32, Shape{mbs, td}),
                           .encoder_tokens = TensorView(enc.data(), DType::kI32, Shape{mbs, te})};

  std::printf("model: 2x%d layers C=%lld FFN=%lld (geglu) NH=%d kv=%lld Te=%lld Td=%lld V=%lld (Vp %lld), %lld "
              "parameters, MBS %lld, precision %s\n",
              layers, static_cast<long long>(hidden), static_cast<long long>(ffn), heads, static_cast<long long>(kv),
              static_cast<long long>(te), static_cast<long long>(td), static_cast<long long>(vocab),
              static_cast<long long>(c.padded_vocab_size()), static_cast<long long>(c.num_parameters()),
              static_cast<long long>(mbs), precision.c_str());
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
  std::printf("bignlp: %.3f s/step, %.1f tokens/s (encoder + decoder)\n", per_step,
              static_cast<double>(mbs * (te + td)) / per_step);
  std::printf("peak host memory: %s (getrusage maxrss); tensor allocator peak %s\n",
              format_bytes(static_cast<std::uint64_t>(peak_rss_bytes())).c_str(),
              format_bytes(alloc.stats().peak_in_use).c_str());
  std::fflush(stdout);

  if (!no_torch) {
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tools/bench/torch_t5_step.py --layers {} --hidden {} --ffn {} --heads {} --kv-channels {} "
        "--encoder-seq {} --decoder-seq {} --vocab {} --micro-batch {} --steps {} 2>&1",
        BIGNLP_SOURCE_DIR, layers, hidden, ffn, heads, kv, te, td, c.padded_vocab_size(), mbs, steps);
    std::FILE* p = popen(cmd.c_str(), "r");
    double torch_step = 0.0;
    char line[512];
    while (p != nullptr && std::fgets(line, sizeof line, p) != nullptr) {
      std::printf("  torch| %s", line);
      std::fflush(stdout);
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
