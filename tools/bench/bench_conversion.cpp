// Conversion and export throughput and peak memory for a gpt3/126m-shaped model.
//
//   bench_conversion [--bin DIR] [--work DIR] [--layers 12] [--hidden 768] [--heads 12]
//                    [--vocab 50257] [--seq 2048]
// Writes a randomly initialised TP 1 checkpoint of that shape, then runs each converter as its own
// process (bignlp-convert / bignlp-export from --bin, default: next to this program) and prints
// wall time, MB/s of fp32 model bytes, and the process's peak resident memory (wait4 ru_maxrss)
// next to the model's size: a streaming converter peaks well below two copies of the model.
// Peer measured in the same run: `cp` of the checkpoint's model.safetensors (the disk's copy rate).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  double seconds = 0;
  double peak_mb = 0;
  int status = 0;
};

Run run(const std::vector<std::string>& argv) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_conversion: conversion MB/s and peak memory"};
  std::string bin = fs::canonical("/proc/self/exe").parent_path().string(), work;
  int layers = 12, heads = 12;
  std::int64_t hidden = 768, vocab = 50257, seq = 2048;
  app.add_option("--bin", bin, "directory of bignlp-convert and bignlp-export");
  app.add_option("--work", work, "scratch directory (default: a temporary one)");
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--vocab", vocab);
  app.add_option("--seq", seq);
  CLI11_PARSE(app, argc, argv);
  std::optional<bignlp::TempDir> tmp;
  if (work.empty()) {
    tmp.emplace("bench-conversion");
    work = tmp->path().string();
  }
  const fs::path w = work;
  const fs::path ckpt = w / "ckpt";
  double model_mb = 0;
  {
    bignlp::model::GptConfig c;
    c.num_layers = layers;
    c.hidden_size = hidden;
    c.ffn_hidden_size = 4 * hidden;
    c.num_attention_heads = heads;
    c.vocab_size = vocab;
    c.make_vocab_size_divisible_by = 128;
    c.seq_length = seq;
    c.max_position_embeddings = seq;
    bignlp::CpuAllocator alloc;
    bignlp::ops::OpContext ctx = bignlp::ops::OpContext::cpu();
    ctx.allocator = &alloc;
    bignlp::model::GptModel m(c, ctx);
    m.initialize(1);
    bignlp::checkpoint::CheckpointState st;
    st.model = m.config_json();
    bignlp::checkpoint::save_checkpoint(ckpt, st, m.parameters(), nullptr, ctx);
    model_mb = static_cast<double>(m.parameters().numel()) * 4 / 1e6;
    std::cout << fmt::format("model: {} layers, hidden {}, {} heads, vocab {} -> {:.1f} MB fp32\n", layers, hidden,
                             heads, vocab, model_mb);
  }
  const std::string convert = (fs::path(bin) / "bignlp-convert").string();
  const std::string exporter = (fs::path(bin) / "bignlp-export").string();
  struct Case {
    std::string name;
    std::vector<std::string> argv;
  };
  const std::vector<Case> cases = {
      {"cp model.safetensors (peer)",
       {"/bin/cp", (ckpt / "tp_rank_00_pp_rank_000" / "model.safetensors").string(), (w / "copy.safetensors").string()}},
      {".nemo TP1", {convert, "--to", "nemo", "--input", ckpt.string(), "--output", (w / "a.nemo").string()}},
      {".nemo TP2 x PP2 (resharded)",
       {convert, "--to", "nemo", "--input", ckpt.string(), "--output", (w / "b.nemo").string(),
        "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"}},
      {".nemo import", {convert, "--from", "nemo", "--input", (w / "a.nemo").string(), "--output", (w / "back").string()}},
      {"FT export T=2 fp16",
       {exporter, "--checkpoint", ckpt.string(), "--output", (w / "repo").string(), "--model-name", "gpt3_126m",
        "--tensor-para-size", "2", "--weight-data-type", "fp16"}},
      {"HF GPT-2 export", {convert, "--to", "hf-gpt2", "--input", ckpt.string(), "--output", (w / "hf").string()}},
      {"reshard TP2 x PP2", {convert, "--reshard", "--input", ckpt.string(), "--output", (w / "resharded").string(),
                             "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"}},
  };
  double peer = 0;
  std::cout << fmt::format("{:<30} {:>9} {:>10} {:>12} {:>14} {:>10}\n", "conversion", "seconds", "MB/s",
                           "vs cp", "peak RSS MB", "x model");
  for (const auto& c : cases) {
    const Run r = run(c.argv);
    if (r.status != 0) {
      std::cout << fmt::format("{:<30} failed (exit {})\n", c.name, r.status);
      continue;
    }
    const double rate = model_mb / r.seconds;
    if (peer == 0) peer = rate;
    std::cout << fmt::format("{:<30} {:>9.2f} {:>10.1f} {:>12.2f} {:>14.1f} {:>10.2f}\n", c.name, r.seconds, rate,
                             rate / peer, r.peak_mb, r.peak_mb / model_mb);
  }
  return 0;
}
