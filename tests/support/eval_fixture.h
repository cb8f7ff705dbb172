// The evaluation tests' model: a small GPT with a GPT-2 BPE tokenizer of the 256 byte tokens, 14
// merges and <|endoftext|> (271 ids, padded to 512 for TP 1 and TP 2 alike), 64 positions (so
// long task texts are truncated and WikiText articles take several rolling windows), random
// weights with init_method_std 0.2 (peaked enough that choices never tie), saved as a one-rank
// bignlp checkpoint that records the tokenizer.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"
#include "bignlp/tensor/allocator.h"

namespace bignlp::test_support {

/// Writes vocab.json and merges.txt into `dir`.
inline void write_small_bpe(const std::filesystem::path& dir) {
  auto utf8 = [](unsigned cp) {
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return s;
  };
  nlohmann::json vocab = nlohmann::json::object();
  unsigned next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    vocab[utf8(printable ? b : next++)] = b;
  }
  const std::string g = utf8(0x120);  // the space byte
  const std::vector<std::pair<std::string, std::string>> merges{
      {g, "t"}, {"h", "e"}, {g + "t", "he"}, {g, "a"}, {"i", "n"}, {"e", "r"}, {"o", "n"},
      {g, "s"}, {"r", "e"}, {"a", "n"},     {g, "w"}, {"e", "d"}, {g, "o"},  {g, "b"}};
  std::string text = "#version: 0.2\n";
  int id = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = id++;
    text += a + " " + b + "\n";
  }
  vocab["<|endoftext|>"] = id;
  std::filesystem::create_directories(dir);
  write_file_atomic(dir / "vocab.json", vocab.dump());
  write_file_atomic(dir / "merges.txt", text);
}

inline constexpr std::int64_t kSmallBpeVocab = 271;

/// Saves the evaluation model (weights from `seed`) as checkpoint `ckpt`, recording the tokenizer
/// files of `bpe_dir`.
inline void write_eval_checkpoint(const std::filesystem::path& ckpt, const std::filesystem::path& bpe_dir,
                                  std::uint64_t seed = 5) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  model::GptConfig c;
  c.vocab_size = kSmallBpeVocab;
  c.make_vocab_size_divisible_by = 256;
  c.seq_length = 64;
  c.max_position_embeddings = 64;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.init_method_std = 0.2f;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  model::GptModel m(c, ctx);
  m.initialize(seed);
  checkpoint::CheckpointState st;
  st.model = m.config_json();
  st.tokenizer = {{"library", "megatron"},
                  {"type", "GPT2BPETokenizer"},
                  {"vocab_file", (bpe_dir / "vocab.json").string()},
                  {"merge_file", (bpe_dir / "merges.txt").string()}};
  checkpoint::save_checkpoint(ckpt, st, m.parameters(), nullptr, ctx);
}

}  // namespace bignlp::test_support
