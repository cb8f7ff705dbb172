// `bignlp-evaluate --generate` end to end on demo-sized GPT and T5 checkpoints (small GPT-2 BPE
// tokenizer recorded in the checkpoint): the predictions are the engine's greedy tokens cut at the
// end token, answers built from them score as intended (exact, right up to case / article /
// punctuation, wrong), and EM / F1 / exact_string_match on stdout and in the results file equal
// the independent Python implementation (tests/python/squad_metrics_reference.py) applied to the
// predictions file; bad task files fail naming the file and line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/infer/engine.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/model/t5.h"
#include "eval_fixture.h"

namespace bignlp::eval {
namespace {

namespace fs = std::filesystem;

struct Proc {
  int status = -1;
  std::string output;
};

Proc run(const std::string& cmd) {
  Proc r;
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

/// A demo-sized T5 (learned positions) with the small BPE tokenizer, decoder start = <|endoftext|>.
void write_t5_checkpoint(const fs::path& ckpt, const fs::path& bpe) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  model::T5Config c;
  c.vocab_size = test_support::kSmallBpeVocab;
  c.make_vocab_size_divisible_by = 128;
  c.encoder_seq_length = 48;
  c.decoder_seq_length = 24;
  c.max_position_embeddings = 48;
  c.decoder_start_token_id = test_support::kSmallBpeVocab - 1;
  c.embedding_init_method_std = 0.3f;
  c.embedding_dropout = 0.0f;
  for (model::T5StackConfig* s : {&c.encoder, &c.decoder}) {
    s->num_layers = 2;
    s->hidden_size = 32;
    s->ffn_hidden_size = 48;
    s->num_attention_heads = 4;
    s->init_method_std = 0.3f;
    s->hidden_dropout = 0.0f;
    s->attention_dropout = 0.0f;
  }
  model::T5Model m(c, ctx);
  m.initialize(17);
  checkpoint::CheckpointState st;
  st.family = "t5";
  st.model = m.config_json();
  st.tokenizer = {{"library", "megatron"},
                  {"type", "GPT2BPETokenizer"},
                  {"vocab_file", (bpe / "vocab.json").string()},
                  {"merge_file", (bpe / "merges.txt").string()}};
  checkpoint::save_checkpoint(ckpt, st, m.parameters(), nullptr, ctx);
}

class GenerateTaskTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    bpe = dir.path() / "bpe";
    ckpt = dir.path() / "ckpt";
    test_support::write_small_bpe(bpe);
    if (GetParam() == "gpt")
      test_support::write_eval_checkpoint(ckpt, bpe);
    else
      write_t5_checkpoint(ckpt, bpe);
  }
  std::string evaluate(const std::string& args) const {
    return fmt::format("{}/bignlp-evaluate --checkpoint {} --threads 1 {}", BIGNLP_BIN_DIR, ckpt.string(), args);
  }
  TempDir dir{"generate-task"};
  fs::path bpe, ckpt;
};

TEST_P(GenerateTaskTest, PredictionsAndScoresEndToEnd) {
  const bool t5 = GetParam() == "t5";
  const std::vector<std::string> texts{"the cat sat on the mat", "who won the war", "a rose is a rose",
                                       "she went to the store and bought bread", "on"};
  const std::int64_t n_tokens = 6;
  // What the engine decodes greedily for these inputs, loaded as the program loads them.
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  auto model = checkpoint::load_model_from_checkpoint(ckpt, ctx, model::Precision::kFp32);
  data::TokenizerSpec spec;
  spec.type = "GPT2BPETokenizer";
  spec.vocab_file = bpe / "vocab.json";
  spec.merge_file = bpe / "merges.txt";
  const auto tok = data::load_tokenizer(spec);
  const auto& sp = tok->special_tokens();
  const std::optional<std::int32_t> end = t5 ? (sp.eos ? sp.eos : sp.eod) : (sp.eod ? sp.eod : sp.eos);
  ASSERT_TRUE(end.has_value());
  std::vector<infer::GenerationRequest> rs;
  for (const auto& t : texts) {
    infer::GenerationRequest r;
    if (t5 && sp.bos) r.prompt.push_back(*sp.bos);
    auto enc = tok->make_encoder();
    enc->encode(t, r.prompt);
    if (t5 && sp.eos) r.prompt.push_back(*sp.eos);
    r.params.max_new_tokens = n_tokens;
    r.params.end_id = end;
    rs.push_back(r);
  }
  infer::Engine engine(*model, infer::EngineOptions{8, 0});
  const auto results = engine.generate(rs);
  std::vector<std::vector<std::int32_t>> want_ids;
  std::vector<std::string> want_text;
  for (const auto& r : results) {
    std::vector<std::int32_t> ids = r.beams[0].tokens;
    if (!ids.empty() && ids.back() == *end) ids.pop_back();
    want_ids.push_back(ids);
    std::vector<std::int32_t> kept;
    for (std::int32_t id : ids)
      if (id != *end && id < tok->vocab_size()) kept.push_back(id);
    want_text.push_back(infer::detokenize(*tok, kept));  // invalid UTF-8 replaced, as the program does
  }
  int nonempty = 0;
  for (const auto& t : want_text) nonempty += !t.empty();
  EXPECT_GE(nonempty, 3) << "the demo model should generate text before its end token";
  // Answers: item 0 exact, item 1 right up to case, an article and punctuation, item 2 wrong,
  // item 3 the right text among wrong ones, item 4 a partial overlap.
  std::string upper = want_text[1];
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::vector<std::vector<std::string>> answers{
      {want_text[0]}, {"An " + upper + "!"}, {"zzz qqq"}, {"nothing", want_text[3], "else"}, {"x " + want_text[4]}};
  std::string lines;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    nlohmann::json j{{i == 2 ? "ids" : "text", i == 2 ? nlohmann::json(rs[2].prompt) : nlohmann::json(texts[i])},
                     {"answers", answers[i]}};
    lines += j.dump() + "\n";
  }
  const fs::path items = dir.path() / "items.jsonl", out = dir.path() / "out" / "predictions.jsonl",
                 results_file = dir.path() / "out" / "predictions.metrics.json";
  write_file_atomic(items, lines);
  fs::create_directories(out.parent_path());
  const Proc p = run(evaluate(fmt::format("--generate {} --output {} --tokens-to-generate {} --batch-size 2",
                                          items.string(), out.string(), n_tokens)));
  ASSERT_EQ(p.status, 0) << p.output;
  const auto preds = read_jsonl(out);
  ASSERT_EQ(preds.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(preds[i]["ids"].get<std::vector<std::int32_t>>(), want_ids[i]) << "item " << i;
    EXPECT_EQ(preds[i]["text"].get<std::string>(), want_text[i]) << "item " << i;
  }
  EXPECT_EQ(preds[0]["exact_match"].get<double>(), 1.0);
  EXPECT_EQ(preds[0]["exact_string_match"].get<double>(), 1.0);
  EXPECT_EQ(preds[1]["exact_match"].get<double>(), 1.0);
  EXPECT_EQ(preds[3]["exact_match"].get<double>(), 1.0);
  // Against the independent implementation, from the predictions file.
  nlohmann::json in{{"items", nlohmann::json::array()}};
  for (std::size_t i = 0; i < texts.size(); ++i)
    in["items"].push_back({{"prediction", preds[i]["text"]}, {"answers", answers[i]}});
  write_file_atomic(dir.path() / "ref_in.json", in.dump());
  const Proc py = run(fmt::format("/usr/bin/python3 {}/tests/python/squad_metrics_reference.py {} {}", BIGNLP_SOURCE_DIR,
                                  (dir.path() / "ref_in.json").string(), (dir.path() / "ref_out.json").string()));
  ASSERT_EQ(py.status, 0) << py.output;
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir.path() / "ref_out.json"));
  const nlohmann::json got = nlohmann::json::parse(read_file(results_file));
  for (const char* k : {"exact_match", "f1", "exact_string_match"})
    EXPECT_NEAR(got[k].get<double>(), ref[k].get<double>(), 1e-9) << k;
  EXPECT_EQ(got["total"].get<int>(), 5);
  for (std::size_t i = 0; i < texts.size(); ++i)
    EXPECT_NEAR(preds[i]["f1"].get<double>(), ref["items"][i]["f1"].get<double>(), 1e-12) << i;
  // stdout carries the same scores as one JSON line.
  EXPECT_NE(p.output.find(fmt::format("\"exact_match\":{}", nlohmann::json(got["exact_match"]).dump())),
            std::string::npos)
      << p.output;
}

TEST_P(GenerateTaskTest, BadTaskFilesNameTheFileAndLine) {
  const fs::path bad = dir.path() / "bad.jsonl", out = dir.path() / "never.jsonl";
  const auto check = [&](const std::string& content, const std::string& needle) {
    write_file_atomic(bad, content);
    const Proc p = run(evaluate(fmt::format("--generate {} --output {}", bad.string(), out.string())));
    EXPECT_NE(p.status, 0) << content;
    EXPECT_NE(p.output.find(needle), std::string::npos) << p.output;
    EXPECT_FALSE(fs::exists(out));
  };
  check("{\"text\": \"a\", \"answers\": [\"b\"]}\n{\"text\": \"a\"}\n", bad.string() + ":2: answers: missing");
  check("{\"ids\": [1, 99999], \"answers\": []}\n", bad.string() + ":1: ids: 99999 is not a token id");
  check("\n{\"text\": \"a\", \"answers\": [1]}\n", bad.string() + ":2: answers: 1 is not a string");
  check("{\"text\": \"a\", \"answer\": \"b\"}\n", bad.string() + ":1: unknown key \"answer\"");
  const Proc p = run(evaluate(fmt::format("--generate {} --output {} --tasks lambada", bad.string(), out.string())));
  EXPECT_NE(p.status, 0);
  EXPECT_NE(p.output.find("separate modes"), std::string::npos) << p.output;
}

INSTANTIATE_TEST_SUITE_P(Families, GenerateTaskTest, ::testing::Values("gpt", "t5"));

}  // namespace
}  // namespace bignlp::eval
