// bench_eval: zero-shot evaluation throughput, requests/s of LAMBADA-sized log-likelihood requests
// (context 60-110 tokens, continuation 1-3, as lambada_test.jsonl tokenizes with GPT-2) on the
// CPU, next to a PyTorch scoring loop over the same requests batched the same way (longest first,
// --batch-size per forward pass, right-padded, fp32, no grad) measured in the same run.
//
//   bench_eval                                 # gpt3/126m shape: L12 C768 NH12 P2048 V50257
//   bench_eval --requests 64 --batch-size 16 --layers 2 --no-torch
// The PyTorch peer is tools/bench/torch_eval.py (/usr/bin/python3 + torch); it gets the weights
// it needs from the shape (random, like ours: throughput does not depend on the values).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "bignlp/core/file_io.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/model/gpt.h"

int main(int argc, char** argv) {
  CLI::App app{"zero-shot evaluation throughput (CPU)"};
  int layers = 12, heads = 12, threads = 0, n_requests = 128;
  std::int64_t hidden = 768, positions = 2048, vocab = 50257, batch_size = 16;
  bool no_torch = false;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--positions", positions);
  app.add_option("--vocab", vocab);
  app.add_option("--requests", n_requests, "LAMBADA-sized requests scored (after a warm-up batch)");
  app.add_option("--batch-size", batch_size);
  app.add_option("--threads", threads);
  app.add_flag("--no-torch", no_torch, "skip the PyTorch peer");
  CLI11_PARSE(app, argc, argv);

  using namespace bignlp;
  model::GptConfig c;
  c.vocab_size = vocab;
  c.seq_length = positions;
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_attention_heads = heads;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu(threads);
  ctx.allocator = &alloc;
  model::GptModel model(c, ctx);
  model.initialize(1234);

  std::mt19937 rng(7);
  std::vector<eval::LoglikelihoodRequest> reqs(static_cast<std::size_t>(n_requests));
  nlohmann::json lines = nlohmann::json::array();
  for (auto& r : reqs) {
    r.context.resize(60 + rng() % 51);
    r.continuation.resize(1 + rng() % 3);
    for (auto& t : r.context) t = static_cast<std::int32_t>(rng() % vocab);
    for (auto& t : r.continuation) t = static_cast<std::int32_t>(rng() % vocab);
  }
  std::printf("model: L=%d C=%lld NH=%d P=%lld V=%lld, %lld parameters; %d requests (context 60-110, continuation 1-3 "
              "tokens), batch size %lld\n",
              layers, static_cast<long long>(hidden), heads, static_cast<long long>(positions),
              static_cast<long long>(vocab), static_cast<long long>(c.num_parameters()), n_requests,
              static_cast<long long>(batch_size));
  // Warm-up: one batch.
  eval::score_loglikelihood(model, std::vector<eval::LoglikelihoodRequest>(reqs.begin(), reqs.begin() + std::min<std::int64_t>(batch_size, n_requests)), batch_size);
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = eval::score_loglikelihood(model, reqs, batch_size);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ours = n_requests / secs;
  std::printf("bignlp: %.2f requests/s (%.3f s for %d requests; first logprob %.4f)\n", ours, secs, n_requests,
              res[0].logprob);
  std::fflush(stdout);

  if (!no_torch) {
    TempDir dir("bench-eval");
    std::string text;
    for (const auto& r : reqs) text += nlohmann::json{{"context", r.context}, {"continuation", r.continuation}}.dump() + "\n";
    write_file_atomic(dir.path() / "requests.jsonl", text);
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tools/bench/torch_eval.py --layers {} --hidden {} --heads {} --positions {} --vocab {} "
        "--batch-size {} --requests {} 2>&1",
        BIGNLP_SOURCE_DIR, layers, hidden, heads, positions, c.padded_vocab_size(), batch_size,
        (dir.path() / "requests.jsonl").string());
    std::FILE* p = popen(cmd.c_str(), "r");
    double theirs = 0.0;
    char line[512];
    while (p != nullptr && std::fgets(line, sizeof line, p) != nullptr) {
      std::printf("  torch| %s", line);
      std::sscanf(line, "torch: %lf requests/s", &theirs);
    }
    if (p != nullptr) pclose(p);
    if (theirs > 0.0)
      std::printf("ratio bignlp/torch requests/s: %.2f (>1: bignlp faster)\n", ours / theirs);
    else
      std::printf("PyTorch peer unavailable (needs /usr/bin/python3 with torch)\n");
  }
  return 0;
}
