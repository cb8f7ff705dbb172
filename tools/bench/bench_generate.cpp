// CPU generation benchmark: prompt (context phase) and decode tokens/s of the bignlp engine
// (infer::Engine over GptModel's KV cache, greedy) against a PyTorch GPT with a KV cache written
// in the project (tools/bench/torch_generate.py), on the same weights (written to a safetensors
// file and read by the peer), at batch 1 and 8, gpt3/126m shape by default. Prints figures and
// the ratio torch time / bignlp time (> 1: bignlp faster); asserts nothing.
//
//   bench_generate [--layers 12 --hidden 768 --heads 12 --vocab 50257 --positions 2048]
//                  [--prompt 128] [--decode 32] [--batches 1,8] [--threads N] [--no-torch]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "bignlp/core/file_io.h"
#include "bignlp/infer/engine.h"
#include "bignlp/model/gpt.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/safetensors.h"

using namespace bignlp;

int main(int argc, char** argv) {
  CLI::App app{"bench_generate: bignlp generation vs a PyTorch KV-cache GPT on the CPU"};
  std::int64_t layers = 12, hidden = 768, heads = 12, vocab = 50257, positions = 2048, prompt = 128, decode = 32;
  std::vector<std::int64_t> batches{1, 8};
  int threads = 0;
  bool no_torch = false;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--vocab", vocab);
  app.add_option("--positions", positions);
  app.add_option("--prompt", prompt, "prompt tokens per sequence");
  app.add_option("--decode", decode, "tokens generated per sequence");
  app.add_option("--batches", batches)->delimiter(',');
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_flag("--no-torch", no_torch);
  CLI11_PARSE(app, argc, argv);

  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  if (threads > 0) ctx.cpu_threads = threads;
  model::GptConfig c;
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_attention_heads = heads;
  c.vocab_size = vocab;
  c.seq_length = positions;
  c.max_position_embeddings = positions;
  model::GptModel m(c, ctx);
  m.initialize(1234);
  TempDir dir("bench-generate");
  const auto weights = dir.path() / "weights.safetensors";
  {
    SafetensorsWriter w;
    std::vector<std::vector<float>> host;
    for (const auto& p : m.parameters().params()) {
      host.emplace_back(static_cast<std::size_t>(p.value.numel()));
      ops::copy(ctx, p.value, TensorView(host.back().data(), DType::kF32, p.value.shape()));
      w.add(p.name, TensorView(host.back().data(), DType::kF32, p.value.shape()));
    }
    w.write(weights);
  }
  std::printf("model: %lld layers, hidden %lld, %lld heads, vocab %lld (padded %lld), %.1fM parameters; prompt %lld, "
              "decode %lld tokens per sequence, greedy, fp32\n",
              static_cast<long long>(layers), static_cast<long long>(hidden), static_cast<long long>(heads),
              static_cast<long long>(vocab), static_cast<long long>(c.padded_vocab_size()), m.num_parameters() / 1e6,
              static_cast<long long>(prompt), static_cast<long long>(decode));
  std::mt19937 rng(7);
  for (const std::int64_t b : batches) {
    std::vector<infer::GenerationRequest> reqs;
    std::string ids_arg;
    for (std::int64_t i = 0; i < b; ++i) {
      infer::GenerationRequest r;
      for (std::int64_t t = 0; t < prompt; ++t) r.prompt.push_back(static_cast<std::int32_t>(rng() % vocab));
      r.params.max_new_tokens = decode;
      reqs.push_back(r);
    }
    {
      // A file of the prompts for the peer.
      std::string text;
      for (const auto& r : reqs) text += fmt::format("{}\n", fmt::join(r.prompt, " "));
      write_file_atomic(dir.path() / fmt::format("prompts{}.txt", b), text);
    }
    infer::Engine e(m, infer::EngineOptions{b, prompt + decode});
    std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(b));
    for (std::int64_t i = 0; i < b; ++i)
      e.submit(reqs[i], {}, [&out, i](infer::GenerationResult r) { out[i] = r.beams[0].tokens; });
    const auto t0 = std::chrono::steady_clock::now();
    e.step();  // context phase of every prompt (and the first token)
    const auto t1 = std::chrono::steady_clock::now();
    while (e.step()) {
    }
    const auto t2 = std::chrono::steady_clock::now();
    const double tp = std::chrono::duration<double>(t1 - t0).count(), td = std::chrono::duration<double>(t2 - t1).count();
    const double prompt_tps = static_cast<double>(b * prompt) / tp, decode_tps = static_cast<double>(b * (decode - 1)) / td;
    std::printf("batch %lld  bignlp: prompt %.0f tokens/s (%.3f s), decode %.1f tokens/s (%.3f s)\n",
                static_cast<long long>(b), prompt_tps, tp, decode_tps, td);
    std::fflush(stdout);
    if (no_torch) continue;
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tools/bench/torch_generate.py --weights {} --prompts {} --layers {} --heads {} --decode {} "
        "--vocab {}{} 2>&1",
        BIGNLP_SOURCE_DIR, weights.string(), (dir.path() / fmt::format("prompts{}.txt", b)).string(), layers, heads,
        decode, vocab, threads > 0 ? fmt::format(" --threads {}", threads) : "");
    std::FILE* p = popen(cmd.c_str(), "r");
    double tprompt = 0, tdecode = 0;
    std::string tokens_line;
    char line[1 << 16];
    while (p != nullptr && std::fgets(line, sizeof line, p) != nullptr) {
      if (std::sscanf(line, "torch: prompt %lf s, decode %lf s", &tprompt, &tdecode) == 2) continue;
      if (std::string(line).rfind("tokens:", 0) == 0) {
        tokens_line = line;
        continue;
      }
      std::printf("  torch| %s", line);
    }
    if (p != nullptr) pclose(p);
    if (tprompt <= 0 || tdecode <= 0) {
      std::printf("  PyTorch peer unavailable (needs /usr/bin/python3 with torch)\n");
      continue;
    }
    std::string ours = "tokens:";
    for (const auto& o : out) ours += " " + fmt::format("{}", fmt::join(o, ",")) ;
    std::printf("batch %lld  torch:  prompt %.0f tokens/s (%.3f s), decode %.1f tokens/s (%.3f s)\n",
                static_cast<long long>(b), static_cast<double>(b * prompt) / tprompt, tprompt,
                static_cast<double>(b * (decode - 1)) / tdecode, tdecode);
    std::printf("batch %lld  ratio torch/bignlp time: prompt %.2f, decode %.2f (>1: bignlp faster); greedy tokens %s\n",
                static_cast<long long>(b), tprompt / tp, tdecode / td,
                tokens_line.substr(0, tokens_line.find_last_not_of("\n") + 1) == ours ? "identical" : "differ");
  }
  return 0;
}
