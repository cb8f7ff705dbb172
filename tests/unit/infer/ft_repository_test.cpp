// Loading a FasterTransformer model repository (infer/ft_repository.h), the inverse of
// bignlp-export: a GPT checkpoint (biases and norms perturbed, so the QKV re-ordering of biases
// is seen) exported at inference TP 1 and 2, fp32 and fp16, fused and unfused QKV, loads back into
// the GPT model with every weight equal to the source's (fp16: the source rounded to fp16) and the
// same decode logits; bignlp-generate --model-repo greedy output equals --checkpoint's; broken
// repositories fail naming the file. Also bignlp-generate --interactive's continued turns (the
// same tokenizer-bearing checkpoint).
#include "bignlp/infer/ft_repository.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/export/fastertransformer.h"
#include "bignlp/model/gpt.h"
#include "bignlp/tensor/allocator.h"
#include "eval_fixture.h"

namespace bignlp::infer {
namespace {

namespace fs = std::filesystem;

std::pair<int, std::string> run(const std::string& cmd) {
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

struct Repo {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"ft-repo"};
  fs::path ckpt;
  Repo() {
    ctx.allocator = &alloc;
    ckpt = dir.path() / "ckpt";
    test_support::write_small_bpe(dir.path() / "bpe");
    model::GptConfig c;
    c.vocab_size = test_support::kSmallBpeVocab;
    c.make_vocab_size_divisible_by = 256;
    c.seq_length = 64;
    c.max_position_embeddings = 64;
    c.num_layers = 2;
    c.hidden_size = 32;
    c.ffn_hidden_size = 48;
    c.num_attention_heads = 4;
    c.init_method_std = 0.2f;
    c.hidden_dropout = 0.0f;
    c.attention_dropout = 0.0f;
    model::GptModel m(c, ctx);
    m.initialize(11);
    std::mt19937 rng(3);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (auto& p : m.parameters().params()) {
      if (p.init == model::ParamInit::kNormal) continue;
      float* d = p.master.data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
    }
    checkpoint::CheckpointState st;
    st.model = m.config_json();
    st.tokenizer = {{"library", "megatron"},
                    {"type", "GPT2BPETokenizer"},
                    {"vocab_file", (dir.path() / "bpe" / "vocab.json").string()},
                    {"merge_file", (dir.path() / "bpe" / "merges.txt").string()}};
    checkpoint::save_checkpoint(ckpt, st, m.parameters(), nullptr, ctx);
  }
  fs::path do_export(const std::string& name, int tp, DType wdt, bool fused = true, const std::string& data_type = "fp32") {
    exporting::FtExportOptions o;
    o.model_name = name;
    o.tensor_para_size = tp;
    o.weight_data_type = wdt;
    o.fused_qkv = fused;
    o.data_type = data_type;
    const fs::path repo = dir.path() / ("repo-" + name);
    exporting::export_fastertransformer(ckpt, repo, o, Logger::capturing());
    return repo;
  }
  /// Next-token logits after each of three prompts, one decode call.
  static std::vector<float> logits(model::Model& m) {
    auto cache = m.make_kv_cache(3, 16);
    const std::vector<std::int32_t> tokens{5, 260, 33, 270, 1, 100, 101, 102, 44};
    const std::vector<model::DecodeSegment> segs{{0, 0, 4}, {1, 0, 1}, {2, 0, 4}};
    std::vector<float> out(3 * static_cast<std::size_t>(m.vocab_size()));
    m.decode(cache, tokens, segs, out);
    return out;
  }
};

class FtRepositoryLoad : public ::testing::TestWithParam<std::tuple<int, const char*, bool>> {};

TEST_P(FtRepositoryLoad, WeightsAndLogitsEqualTheSourceCheckpoint) {
  const auto [tp, dtype, fused] = GetParam();
  Repo r;
  const DType wdt = parse_dtype(dtype);
  const fs::path repo = r.do_export("gpt_tiny", tp, wdt, fused);
  // Opened at the repository, the model directory and the weights folder alike.
  const FtRepository at_repo = open_ft_repository(repo);
  EXPECT_EQ(at_repo.model_name, "gpt_tiny");
  EXPECT_EQ(at_repo.tensor_para_size, tp);
  EXPECT_EQ(at_repo.fused_qkv, fused);
  EXPECT_EQ(at_repo.weight_data_type, wdt);
  EXPECT_EQ(at_repo.padded_vocab, 512);
  EXPECT_EQ(at_repo.end_id, 270);
  EXPECT_EQ(open_ft_repository(repo / "gpt_tiny").weights_dir, at_repo.weights_dir);
  EXPECT_EQ(open_ft_repository(at_repo.weights_dir).weights_dir, at_repo.weights_dir);
  EXPECT_EQ(at_repo.parameters.at("data_type"), "fp32");

  auto loaded = load_model_from_ft_repository(at_repo, r.ctx, model::Precision::kFp32);
  auto source = checkpoint::load_model_from_checkpoint(r.ckpt, r.ctx, model::Precision::kFp32);
  EXPECT_EQ(loaded->vocab_size(), test_support::kSmallBpeVocab);  // the tokenizer's, not the padded rows
  // The source as the exported files hold it: fp16 files round each weight once.
  if (wdt == DType::kF16) {
    for (auto& p : source->parameters().params()) {
      std::vector<std::uint16_t> half(static_cast<std::size_t>(p.numel()));
      std::vector<float> back(static_cast<std::size_t>(p.numel()));
      ops::copy(r.ctx, p.value, TensorView(half.data(), DType::kF16, p.shape));
      ops::copy(r.ctx, TensorView(half.data(), DType::kF16, p.shape), TensorView(back.data(), DType::kF32, p.shape));
      source->parameters().assign(r.ctx, p, TensorView(back.data(), DType::kF32, p.shape));
    }
  }
  int compared = 0;
  for (const auto& p : source->parameters().params()) {
    const model::Parameter* q = loaded->parameters().find(p.name);
    ASSERT_NE(q, nullptr) << p.name;
    ASSERT_EQ(q->shape, p.shape) << p.name;
    const float* a = p.value.data<float>();
    const float* b = q->value.data<float>();
    std::int64_t differ = 0;
    for (std::int64_t i = 0; i < p.numel(); ++i) differ += a[i] != b[i];
    EXPECT_EQ(differ, 0) << p.name;
    ++compared;
  }
  EXPECT_EQ(compared, 4 + 2 * 12);
  const std::vector<float> want = Repo::logits(*source), got = Repo::logits(*loaded);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Layouts, FtRepositoryLoad,
                         ::testing::Values(std::make_tuple(1, "fp32", true), std::make_tuple(2, "fp32", true),
                                           std::make_tuple(2, "fp16", true), std::make_tuple(2, "fp32", false),
                                           std::make_tuple(4, "fp32", true)),
                         [](const auto& info) {
                           return fmt::format("tp{}_{}{}", std::get<0>(info.param), std::get<1>(info.param),
                                              std::get<2>(info.param) ? "" : "_unfused");
                         });

TEST(FtRepositoryGenerate, GreedyFromTheRepositoryEqualsTheCheckpoint) {
  Repo r;
  const fs::path prompts = r.dir.path() / "prompts.jsonl";
  write_file_atomic(prompts, "{\"text\": \"the north wind\"}\n{\"ids\": [5, 260, 33]}\n{\"text\": \"and so on\"}\n");
  const auto generate = [&](const std::string& source, const std::string& name) {
    const fs::path out = r.dir.path() / (name + ".jsonl");
    const auto [rc, log] = run(fmt::format("{}/bignlp-generate {} --input {} --output {} --tokens-to-generate 12 "
                                           "--batch-size 2 --threads 1",
                                           BIGNLP_BIN_DIR, source, prompts.string(), out.string()));
    EXPECT_EQ(rc, 0) << log;
    return read_file(out);
  };
  const std::string want = generate("--checkpoint " + r.ckpt.string(), "ckpt");
  ASSERT_NE(want.find("\"ids\""), std::string::npos);
  for (int tp : {1, 2}) {
    const fs::path repo = r.do_export(fmt::format("tp{}", tp), tp, DType::kF32, true, "fp16");
    // config.pbtxt says fp16 compute; --precision 32 compares like with like.
    EXPECT_EQ(generate(fmt::format("--model-repo {} --precision 32", repo.string()), fmt::format("repo{}", tp)), want)
        << "tp " << tp;
  }
  // A repository of two models needs the name of one.
  const fs::path two = r.dir.path() / "two";
  fs::create_directories(two);
  fs::rename(r.dir.path() / "repo-tp1" / "tp1", two / "a");
  fs::rename(r.dir.path() / "repo-tp2" / "tp2", two / "b");
  const auto [rc, log] = run(fmt::format("{}/bignlp-generate --model-repo {} --input {} --output {}", BIGNLP_BIN_DIR,
                                         two.string(), prompts.string(), (r.dir.path() / "never.jsonl").string()));
  EXPECT_NE(rc, 0);
  EXPECT_NE(log.find("the models here: a, b"), std::string::npos) << log;
  EXPECT_EQ(generate(fmt::format("--model-repo {} --model-name b --precision 32", two.string()), "named"), want);
}

TEST(FtRepositoryErrors, BrokenRepositoriesNameTheFile) {
  Repo r;
  const fs::path repo = r.do_export("m", 2, DType::kF16);
  const fs::path w = repo / "m" / "1" / "2-gpu";
  const auto expect_error = [&](const std::string& needle) {
    try {
      load_model_from_ft_repository(open_ft_repository(repo), r.ctx, model::Precision::kFp32);
      ADD_FAILURE() << "no error, expected " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // A truncated rank file.
  const fs::path qkv = w / "model.layers.1.attention.query_key_value.weight.1.bin";
  const std::string bytes = read_file(qkv);
  write_file_atomic(qkv, bytes.substr(0, bytes.size() - 2));
  expect_error(qkv.string() + ": " + std::to_string(bytes.size() - 2) + " bytes, expected " + std::to_string(bytes.size()));
  fs::remove(qkv);
  expect_error(qkv.string() + ": weight file missing");
  write_file_atomic(qkv, bytes);
  // config.ini keys the GPT family cannot honour, refused by file, line and key.
  const std::string ini = read_file(w / "config.ini");
  write_file_atomic(w / "config.ini", ini + "layernorm_type = post_layernorm\n");
  expect_error((w / "config.ini").string() + ":15: [gpt] layernorm_type = post_layernorm");
  write_file_atomic(w / "config.ini", ini + "head_num = many\n");
  expect_error("[gpt] head_num = 'many' is not an integer");
  write_file_atomic(w / "config.ini", ini);
  // int8 weight-only: refused, naming config.pbtxt.
  const std::string pbtxt = read_file(repo / "m" / "config.pbtxt");
  std::string int8 = pbtxt;
  int8.replace(int8.find("key: \"int8_mode\"\n  value {\n    string_value: \"0\""),
               std::string("key: \"int8_mode\"\n  value {\n    string_value: \"0\"").size(),
               "key: \"int8_mode\"\n  value {\n    string_value: \"1\"");
  write_file_atomic(repo / "m" / "config.pbtxt", int8);
  expect_error("config.pbtxt: parameters int8_mode = \"1\"");
  write_file_atomic(repo / "m" / "config.pbtxt", pbtxt);
  EXPECT_NO_THROW(load_model_from_ft_repository(open_ft_repository(repo), r.ctx, model::Precision::kFp32));
}

}  // namespace
}  // namespace bignlp::infer

namespace bignlp::infer {
namespace {

// bignlp-generate --interactive: the second turn, continued from the session's cache, prints what
// generating from the whole dialogue (turn 1, its answer, turn 2) from scratch prints.
TEST(InteractiveGenerate, TheSecondTurnEqualsTheWholeDialogueFromScratch) {
  Repo r;
  const auto tok = data::load_tokenizer(data::TokenizerSpec{"megatron", "GPT2BPETokenizer",
                                                            r.dir.path() / "bpe" / "vocab.json",
                                                            r.dir.path() / "bpe" / "merges.txt", {}, false});
  const auto once = [&](const std::vector<std::int32_t>& ids) {
    const fs::path in = r.dir.path() / "in.jsonl", out = r.dir.path() / "out.jsonl";
    write_file_atomic(in, nlohmann::json{{"ids", ids}}.dump() + "\n");
    const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} "
                                           "--tokens-to-generate 5 --threads 1",
                                           BIGNLP_BIN_DIR, r.ckpt.string(), in.string(), out.string()));
    EXPECT_EQ(rc, 0) << log;
    return nlohmann::json::parse(read_file(out));
  };
  const std::vector<std::int32_t> a = tok->encode("the north\n"), b = tok->encode("wind\n");
  const auto first = once(a);
  std::vector<std::int32_t> whole = a;
  for (const auto& id : first["ids"]) whole.push_back(id.get<std::int32_t>());
  whole.insert(whole.end(), b.begin(), b.end());
  const auto second = once(whole);
  const auto [rc, shown] = run(fmt::format("(printf 'the north\\nwind\\n\\n' | {}/bignlp-generate --checkpoint {} "
                                           "--interactive --tokens-to-generate 5 --threads 1 2>/dev/null)",
                                           BIGNLP_BIN_DIR, r.ckpt.string()));
  EXPECT_EQ(rc, 0) << shown;
  EXPECT_EQ(shown, "> " + first["text"].get<std::string>() + "\n> " + second["text"].get<std::string>() + "\n> ");
}

}  // namespace
}  // namespace bignlp::infer
