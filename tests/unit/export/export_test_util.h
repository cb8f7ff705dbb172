// Shared fixtures of the export tests: a tiny GPT checkpoint with tokenizer files, Python helpers.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::exporting::testing {

namespace fs = std::filesystem;

inline bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, yaml' >/dev/null 2>&1") == 0;
}

inline std::string python_script(const char* name) {
  return (fs::path(BIGNLP_SOURCE_DIR) / "tests" / "python" / name).string();
}

/// Runs a command, returns its exit status (stdout/stderr to the test log).
inline int run(const std::string& cmd) { return WEXITSTATUS(std::system(cmd.c_str())); }

inline model::GptConfig tiny_gpt() {
  model::GptConfig c;
  c.vocab_size = 100;  // padded to 128 at TP 1 and 2, 256 at TP 4 (divisible by 64)
  c.make_vocab_size_divisible_by = 64;
  c.seq_length = 8;
  c.max_position_embeddings = 10;
  c.num_layers = 4;
  c.hidden_size = 32;
  c.ffn_hidden_size = 48;
  c.num_attention_heads = 4;
  c.init_method_std = 0.05f;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  return c;
}

/// Writes a TP 1 x PP 1 checkpoint of a randomly initialised tiny GPT (biases and norms perturbed
/// too) with tokenizer files beside it; returns the model for logits.
inline std::unique_ptr<model::GptModel> write_tiny_checkpoint(const fs::path& dir, const fs::path& files,
                                                              const ops::OpContext& ctx, std::uint64_t seed = 7) {
  auto m = std::make_unique<model::GptModel>(tiny_gpt(), ctx);
  m->initialize(seed);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (auto& p : m->parameters().params()) {
    if (p.init == model::ParamInit::kNormal) continue;
    float* d = p.master.data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
  }
  fs::create_directories(files);
  std::string vocab = "{";  // as many entries as the model's vocabulary
  for (int i = 0; i < 100; ++i) vocab += (i ? ", " : "") + std::string("\"t") + std::to_string(i) + "\": " + std::to_string(i);
  write_file_atomic(files / "vocab.json", vocab + "}\n");
  write_file_atomic(files / "merges.txt", "#version: 0.2\na b\n");
  checkpoint::CheckpointState st;
  st.model = m->config_json();
  st.global_step = 12;
  st.tokenizer = {{"library", "megatron"},
                  {"type", "GPT2BPETokenizer"},
                  {"vocab_file", (files / "vocab.json").string()},
                  {"merge_file", (files / "merges.txt").string()}};
  checkpoint::save_checkpoint(dir, st, m->parameters(), nullptr, ctx);
  return m;
}

}  // namespace bignlp::exporting::testing
