// Hugging Face GPT-2 export: the HF-layout PyTorch forward (tests/python/hf_export_reference.py)
// of the exported directory equals our logits over the vocabulary; import(export(x)) == x.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/checkpoint/layout.h"
#include "bignlp/export/hf_export.h"
#include "bignlp/model/hf_gpt2.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;

TEST(HfExport, HfForwardOfTheExportEqualsOurLogits) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  TempDir dir("hf-export");
  Logger log = Logger::capturing();
  auto model = testing::write_tiny_checkpoint(dir.path() / "ckpt", dir.path() / "tok", ctx);
  // From a TP 2 x PP 2 checkpoint: the shards are reassembled on the way.
  checkpoint::reshard_checkpoint(dir.path() / "ckpt", dir.path() / "ckpt2", 2, 2, log);
  export_hf_gpt2(dir.path() / "ckpt2", dir.path() / "hf", false, log);
  std::vector<std::int32_t> tokens = {1, 5, 99, 42, 7, 3, 0, 64, 12, 13, 14, 15}, labels(12, 0);
  {
    SafetensorsWriter w;
    w.add("tokens", TensorView(tokens.data(), DType::kI32, Shape{2, 6}));
    w.write(dir.path() / "tokens.safetensors");
  }
  ASSERT_EQ(testing::run(fmt::format("/usr/bin/python3 {} {} {} {}", testing::python_script("hf_export_reference.py"),
                                     (dir.path() / "hf").string(), (dir.path() / "tokens.safetensors").string(),
                                     (dir.path() / "ref.safetensors").string())),
            0);
  model::Batch b{.tokens = TensorView(tokens.data(), DType::kI32, Shape{2, 6}),
                 .labels = TensorView(labels.data(), DType::kI32, Shape{2, 6})};
  auto acts = model->forward(b, model::DropoutRng{}, false);
  const std::vector<float> ours = model->logits_to_host(*acts);
  const std::int64_t vp = model->config().padded_vocab_size(), V = model->config().vocab_size;
  SafetensorsReader r(dir.path() / "ref.safetensors");
  const TensorView ref = r.view("logits");
  ASSERT_EQ(ref.size(2), V);
  for (std::int64_t i = 0; i < 12; ++i)
    for (std::int64_t v = 0; v < V; ++v) ASSERT_NEAR(ours[i * vp + v], ref.data<float>()[i * V + v], 1e-4) << i << "," << v;
  EXPECT_EQ(read_file(dir.path() / "hf" / "vocab.json"), read_file(dir.path() / "tok" / "vocab.json"));
}

TEST(HfExport, ImportOfTheExportIsTheModel) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  TempDir dir("hf-roundtrip");
  Logger log = Logger::capturing();
  auto model = testing::write_tiny_checkpoint(dir.path() / "ckpt", dir.path() / "tok", ctx);
  export_hf_gpt2(dir.path() / "ckpt", dir.path() / "hf", false, log);
  EXPECT_THROW(export_hf_gpt2(dir.path() / "ckpt", dir.path() / "hf", false, log), ConfigError);
  const model::GptConfig c = model::read_hf_gpt2_config(dir.path() / "hf");
  EXPECT_EQ(c.vocab_size, model->config().vocab_size);
  EXPECT_EQ(c.ffn_hidden_size, model->config().ffn_size());
  EXPECT_EQ(c.activation, model->config().activation);
  EXPECT_FLOAT_EQ(c.layernorm_epsilon, model->config().layernorm_epsilon);
  model::GptModel back(c, ctx);
  model::load_hf_gpt2_weights(dir.path() / "hf", back);
  // Every parameter equal bit for bit (the word embedding over its real rows: the import does not pad).
  for (auto& p : model->parameters().params()) {
    model::Parameter* q = back.parameters().find(p.name);
    ASSERT_NE(q, nullptr) << p.name;
    const std::size_t bytes = static_cast<std::size_t>(q->numel()) * 4;
    if (p.name == checkpoint::kWordEmbeddingName) {
      ASSERT_EQ(q->shape[0], c.vocab_size);
    } else {
      ASSERT_EQ(q->shape, p.shape) << p.name;
    }
    EXPECT_EQ(std::memcmp(q->master.raw(), p.master.raw(), bytes), 0) << p.name;
  }
}

}  // namespace
}  // namespace bignlp::exporting
