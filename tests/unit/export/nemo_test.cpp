// .nemo export and import, checked with PyTorch (tests/python/nemo_reference.py): torch.load of
// every rank file gives NeMo's keys and shapes, the PyTorch forward of the archive's tensors equals
// our logits, TP/PP layouts have their rank folders, NeMo-style archives written by real torch.save
// import, round trips are lossless, and bad archives fail with clear errors and nothing written.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/error.h"
#include "bignlp/export/nemo.h"
#include "bignlp/export/tar.h"
#include "bignlp/export/torch_file.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;
using testing::python_script;
using testing::run;

struct Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"nemo-test"};
  std::unique_ptr<model::GptModel> model;
  fs::path ckpt;
  Logger log = Logger::capturing();
  Fixture() {
    ctx.allocator = &alloc;
    ckpt = dir.path() / "ckpt";
    model = testing::write_tiny_checkpoint(ckpt, dir.path() / "tok", ctx);
  }
  /// Our logits (B, T, Vp) on tokens written to `tokens_file`.
  std::vector<float> logits(const fs::path& tokens_file) {
    std::vector<std::int32_t> tokens = {1, 5, 99, 42, 7, 3, 0, 64, 12, 13, 14, 15};
    std::vector<std::int32_t> labels(tokens.size(), 0);
    SafetensorsWriter w;
    w.add("tokens", TensorView(tokens.data(), DType::kI32, Shape{2, 6}));
    w.write(tokens_file);
    model::Batch b{.tokens = TensorView(tokens.data(), DType::kI32, Shape{2, 6}),
                   .labels = TensorView(labels.data(), DType::kI32, Shape{2, 6})};
    auto acts = model->forward(b, model::DropoutRng{}, false);
    return model->logits_to_host(*acts);
  }
};

/// Our logits (B, T, Vp) against the reference's (B, T, Vp'), over the real vocabulary (the padded
/// vocabulary depends on the TP size).
void expect_logits_match(const std::vector<float>& ours, std::int64_t vp, const fs::path& ref_file) {
  SafetensorsReader r(ref_file);
  const TensorView l = r.view("logits");
  const std::int64_t rows = static_cast<std::int64_t>(ours.size()) / vp, ref_vp = l.size(2);
  ASSERT_EQ(l.size(0) * l.size(1), rows);
  const float* p = l.data<float>();
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t v = 0; v < testing::tiny_gpt().vocab_size; ++v)
      ASSERT_NEAR(ours[i * vp + v], p[i * ref_vp + v], 1e-4) << "row " << i << " token " << v;
}

class NemoLayoutTest : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

// Source TP (resharded first), output TP, output PP.
TEST_P(NemoLayoutTest, TorchLoadGivesNemoKeysAndPyTorchForwardEqualsOurLogits) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and yaml is not installed";
  const auto [src_tp, tp, pp] = GetParam();
  Fixture f;
  fs::path src = f.ckpt;
  if (src_tp != 1) {
    src = f.dir.path() / "src";
    checkpoint::reshard_checkpoint(f.ckpt, src, src_tp, 2, f.log);  // PP 2 too: layers renamed back
  }
  const fs::path nemo = f.dir.path() / "out" / "model.nemo";
  NemoExportOptions opt;
  opt.tensor_model_parallel_size = tp;
  opt.pipeline_model_parallel_size = pp;
  const ConversionStats stats = export_nemo(src, nemo, opt, f.log);
  EXPECT_GT(stats.file_bytes, stats.tensor_bytes);
  const fs::path tokens = f.dir.path() / "tokens.safetensors", ref = f.dir.path() / "ref.safetensors";
  const std::vector<float> ours = f.logits(tokens);
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} check {} {} {}", python_script("nemo_reference.py"), nemo.string(),
                            tokens.string(), ref.string())),
            0);
  expect_logits_match(ours, f.model->config().padded_vocab_size(), ref);
  // Nothing else beside the archive (staging removed).
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(nemo.parent_path())) ++entries;
  EXPECT_EQ(entries, 1);
}

INSTANTIATE_TEST_SUITE_P(Layouts, NemoLayoutTest,
                         ::testing::Values(std::tuple{1, 1, 1}, std::tuple{1, 2, 1}, std::tuple{1, 2, 2},
                                           std::tuple{2, 1, 1}, std::tuple{2, 4, 2}, std::tuple{1, 1, 4}));

TEST(NemoExport, RefusesAnExistingOutputUnlessOverwrite) {
  Fixture f;
  const fs::path nemo = f.dir.path() / "m.nemo";
  write_file_atomic(nemo, "keep");
  EXPECT_THROW(export_nemo(f.ckpt, nemo, {}, f.log), ConfigError);
  EXPECT_EQ(read_file(nemo), "keep");
  NemoExportOptions opt;
  opt.overwrite = true;
  export_nemo(f.ckpt, nemo, opt, f.log);
  EXPECT_NE(read_file(nemo), "keep");
}

TEST(NemoExport, MissingTokenizerFileIsAnErrorNamingTheKey) {
  Fixture f;
  fs::remove(f.dir.path() / "tok" / "merges.txt");
  try {
    export_nemo(f.ckpt, f.dir.path() / "m.nemo", {}, f.log);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.merge_file"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(f.dir.path() / "m.nemo"));
}

/// Every tensor of two checkpoints equal, bit for bit.
void expect_same_checkpoint(const fs::path& a, const fs::path& b) {
  const auto ma = checkpoint::read_checkpoint_metadata(a), mb = checkpoint::read_checkpoint_metadata(b);
  ASSERT_EQ(ma.tp_size, mb.tp_size);
  ASSERT_EQ(ma.pp_size, mb.pp_size);
  EXPECT_EQ(ma.model, mb.model);
  EXPECT_EQ(ma.global_step, mb.global_step);
  for (int p = 0; p < ma.pp_size; ++p)
    for (int t = 0; t < ma.tp_size; ++t) {
      SafetensorsReader ra(a / checkpoint::checkpoint_shard_name(t, p) / "model.safetensors");
      SafetensorsReader rb(b / checkpoint::checkpoint_shard_name(t, p) / "model.safetensors");
      ASSERT_EQ(ra.entries().size(), rb.entries().size());
      for (const auto& e : ra.entries()) {
        ASSERT_NE(rb.find(e.name), nullptr) << e.name;
        const TensorView va = ra.view(e.name), vb = rb.view(e.name);
        ASSERT_EQ(va.shape(), vb.shape()) << e.name;
        ASSERT_EQ(std::memcmp(va.raw(), vb.raw(), va.nbytes()), 0) << e.name;
      }
    }
}

TEST(NemoRoundTrip, NemoToCheckpointToNemoIsLossless) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and yaml is not installed";
  Fixture f;
  const fs::path src = f.dir.path() / "src";
  checkpoint::reshard_checkpoint(f.ckpt, src, 2, 2, f.log);
  const fs::path n1 = f.dir.path() / "a.nemo", n2 = f.dir.path() / "b.nemo", back = f.dir.path() / "back";
  export_nemo(src, n1, {}, f.log);
  import_nemo(n1, back, f.log);
  expect_same_checkpoint(src, back);
  // The tokenizer files came along.
  const auto meta = checkpoint::read_checkpoint_metadata(back);
  EXPECT_EQ(read_file(meta.tokenizer.at("vocab_file")), read_file(f.dir.path() / "tok" / "vocab.json"));
  export_nemo(back, n2, {}, f.log);
  // Both archives' tensors, as torch.load sees them, are equal.
  const fs::path t1 = f.dir.path() / "t1.safetensors", t2 = f.dir.path() / "t2.safetensors";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} tensors {} {}", python_script("nemo_reference.py"), n1.string(), t1.string())), 0);
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} tensors {} {}", python_script("nemo_reference.py"), n2.string(), t2.string())), 0);
  SafetensorsReader r1(t1), r2(t2);
  ASSERT_EQ(r1.entries().size(), r2.entries().size());
  ASSERT_GT(r1.entries().size(), 20u);
  for (const auto& e : r1.entries()) {
    const TensorView a = r1.view(e.name), b = r2.view(e.name);
    ASSERT_EQ(a.shape(), b.shape()) << e.name;
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << e.name;
  }
}

TEST(NemoImport, ReadsANemoStyleArchiveWrittenByTorchSave) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and yaml is not installed";
  Fixture f;
  // The state dict under NeMo's names, saved by real torch.save, in a gzip tar with a NeMo config.
  const fs::path state = f.dir.path() / "state.safetensors", cfg = f.dir.path() / "cfg.json",
                 vocab = f.dir.path() / "vocab.json", nemo = f.dir.path() / "nemo.nemo";
  {
    SafetensorsWriter w;
    for (auto& p : f.model->parameters().params()) w.add(p.name, p.master);
    w.write(state);
  }
  // A 100-token vocabulary: the model's real vocabulary size comes from it.
  nlohmann::json v = nlohmann::json::object();
  for (int i = 0; i < 100; ++i) v[fmt::format("t{}", i)] = i;
  write_file_atomic(vocab, v.dump());
  const model::GptConfig c = testing::tiny_gpt();
  const nlohmann::json nemo_cfg = {
      {"precision", 16},         {"tensor_model_parallel_size", 1}, {"pipeline_model_parallel_size", 1},
      {"encoder_seq_length", c.seq_length}, {"max_position_embeddings", c.max_position_embeddings},
      {"num_layers", c.num_layers}, {"hidden_size", c.hidden_size}, {"ffn_hidden_size", c.ffn_hidden_size},
      {"num_attention_heads", c.num_attention_heads}, {"init_method_std", 0.02}, {"hidden_dropout", 0.1},
      {"kv_channels", nullptr}, {"make_vocab_size_divisible_by", c.make_vocab_size_divisible_by},
      {"layernorm_epsilon", c.layernorm_epsilon}, {"megatron_amp_O2", true}, {"bias_gelu_fusion", true},
      {"tokenizer", {{"library", "megatron"}, {"type", "GPT2BPETokenizer"}, {"vocab_file", ""}, {"merge_file", nullptr}}},
      {"target", "nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel"},
      {"nemo_version", "1.17.0"}};
  write_file_atomic(cfg, nemo_cfg.dump());
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} make-nemo {} {} {} {}", python_script("nemo_reference.py"),
                            state.string(), cfg.string(), vocab.string(), nemo.string())),
            0);
  const fs::path back = f.dir.path() / "back";
  import_nemo(nemo, back, f.log);
  const auto meta = checkpoint::read_checkpoint_metadata(back);
  EXPECT_EQ(meta.family, "gpt");
  EXPECT_EQ(meta.model.at("vocab_size"), 100);
  EXPECT_EQ(meta.model.at("num_layers"), c.num_layers);
  SafetensorsReader r(back / checkpoint::checkpoint_shard_name(0, 0) / "model.safetensors");
  for (auto& p : f.model->parameters().params()) {
    const TensorView t = r.view(p.name);
    ASSERT_EQ(t.shape(), p.shape) << p.name;
    ASSERT_EQ(std::memcmp(t.raw(), p.master.raw(), t.nbytes()), 0) << p.name;
  }
}

/// Expects `fn` to throw DataError whose message contains each of `needles`, and `out` not to exist.
template <class Fn>
void expect_data_error(Fn fn, std::initializer_list<std::string> needles, const fs::path& out) {
  try {
    fn();
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << "left behind: " << e.path();
}

TEST(NemoImport, TruncatedArchiveIsAnErrorNamingTheFile) {
  Fixture f;
  const fs::path n = f.dir.path() / "a.nemo";
  export_nemo(f.ckpt, n, {}, f.log);
  const std::string bytes = read_file(n);
  const fs::path cut = f.dir.path() / "cut.nemo";
  write_file_atomic(cut, bytes.substr(0, bytes.size() / 2 + 100));
  fs::create_directories(f.dir.path() / "o");
  expect_data_error([&] { import_nemo(cut, f.dir.path() / "o" / "back", f.log); }, {cut.string(), "truncated"},
                    f.dir.path() / "o" / "back");
}

TEST(NemoImport, CorruptTensorBytesFailTheirCrc) {
  Fixture f;
  const fs::path n = f.dir.path() / "a.nemo";
  export_nemo(f.ckpt, n, {}, f.log);
  std::string bytes = read_file(n);
  // Flip a byte well inside the weights (the archive is mostly tensor data).
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5A);
  const fs::path bad = f.dir.path() / "bad.nemo";
  write_file_atomic(bad, bytes);
  fs::create_directories(f.dir.path() / "o");
  expect_data_error([&] { import_nemo(bad, f.dir.path() / "o" / "back", f.log); }, {"model_weights.ckpt", "CRC"},
                    f.dir.path() / "o" / "back");
}

/// Rewrites archive `in` as `out` without members for which `drop(name)` holds, and with
/// model_config.yaml replaced when `config` is not empty.
void rewrite_archive(const fs::path& in, const fs::path& out, const std::function<bool(const std::string&)>& drop,
                     const std::string& config = {}) {
  TempDir tmp("rewrite");
  const auto files = extract_tar(in, tmp.path());
  TarWriter w(out);
  for (const auto& name : files) {
    if (drop(name)) continue;
    if (name == "model_config.yaml" && !config.empty()) w.add_bytes("./" + name, config);
    else w.add_file("./" + name, tmp.path() / name);
  }
  w.finish();
}

TEST(NemoImport, MissingRankFolderIsAnErrorNamingIt) {
  Fixture f;
  const fs::path n = f.dir.path() / "a.nemo", bad = f.dir.path() / "bad.nemo";
  NemoExportOptions opt;
  opt.tensor_model_parallel_size = 2;
  export_nemo(f.ckpt, n, opt, f.log);
  rewrite_archive(n, bad, [](const std::string& name) { return name.rfind("mp_rank_01", 0) == 0; });
  fs::create_directories(f.dir.path() / "o");
  expect_data_error([&] { import_nemo(bad, f.dir.path() / "o" / "back", f.log); }, {"mp_rank_01/model_weights.ckpt", "missing"},
                    f.dir.path() / "o" / "back");
}

TEST(NemoImport, ConfigThatDoesNotMatchTheTensorsIsAnErrorNamingFileAndTensor) {
  Fixture f;
  const fs::path n = f.dir.path() / "a.nemo", bad = f.dir.path() / "bad.nemo";
  export_nemo(f.ckpt, n, {}, f.log);
  // An archive without bignlp's metadata whose config claims a wider FFN than the tensors have.
  TempDir tmp("cfg");
  extract_tar(n, tmp.path());
  std::string cfg = read_file(tmp.path() / "model_config.yaml");
  const auto pos = cfg.find("ffn_hidden_size: 48");
  ASSERT_NE(pos, std::string::npos) << cfg;
  cfg.replace(pos, 19, "ffn_hidden_size: 64");
  rewrite_archive(n, bad, [](const std::string& name) { return name == "bignlp_metadata.json"; }, cfg);
  fs::create_directories(f.dir.path() / "o");
  expect_data_error([&] { import_nemo(bad, f.dir.path() / "o" / "back", f.log); },
                    {"model_weights.ckpt", "model.language_model.encoder.layers.0.mlp.dense_h_to_4h.weight", "(64, 32)"},
                    f.dir.path() / "o" / "back");
}

TEST(TorchFile, PickleWithAForeignGlobalIsRefusedNamingFileAndOffset) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and yaml is not installed";
  TempDir dir("pickle");
  const fs::path f = dir.path() / "bad.ckpt";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} bad-pickle {}", python_script("nemo_reference.py"), f.string())), 0);
  try {
    TorchFileReader r(f);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(f.string() + ":data.pkl: at byte"), std::string::npos) << m;
    EXPECT_NE(m.find("collections.Counter"), std::string::npos) << m;
  }
}

TEST(TorchFile, ReadsBackWhatItWrites) {
  TempDir dir("torchfile");
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<std::uint16_t> h = {0x3C00, 0x4000};  // fp16 1.0, 2.0
  {
    TorchFileWriter w(dir.path() / "x.ckpt");
    w.add("a", TensorView(a.data(), DType::kF32, Shape{2, 3}));
    w.add("h", TensorView(h.data(), DType::kF16, Shape{2}));
    EXPECT_THROW(w.add("a", TensorView(a.data(), DType::kF32, Shape{6})), RuntimeError);
    w.finish();
  }
  TorchFileReader r(dir.path() / "x.ckpt");
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].shape, (Shape{2, 3}));
  EXPECT_EQ(r.read_f32("a"), a);
  EXPECT_EQ(r.read_f32("h"), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_THROW(r.read_f32("nope"), DataError);
}

TEST(TorchFile, LegacyFormatIsRefusedWithAClearMessage) {
  TempDir dir("legacy");
  write_file_atomic(dir.path() / "old.ckpt", std::string("\x80\x02\x8a\x0a", 4) + "junk");
  try {
    TorchFileReader r(dir.path() / "old.ckpt");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("legacy"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bignlp::exporting

namespace bignlp::exporting {
namespace {

TEST(NemoExport, CheckpointWhoseConfigDoesNotMatchItsTensorsIsAnErrorNamingFileAndTensor) {
  Fixture f;
  auto meta = checkpoint::read_checkpoint_metadata(f.ckpt);
  meta.model["ffn_hidden_size"] = 64;
  checkpoint::write_checkpoint_metadata(f.ckpt, meta);
  const fs::path out = f.dir.path() / "o" / "m.nemo";
  fs::create_directories(out.parent_path());
  expect_data_error([&] { export_nemo(f.ckpt, out, {}, f.log); },
                    {"tp_rank_00_pp_rank_000/model.safetensors", "model.language_model.encoder.layers.0.mlp.dense_h_to_4h.weight"},
                    out);
}

}  // namespace
}  // namespace bignlp::exporting
