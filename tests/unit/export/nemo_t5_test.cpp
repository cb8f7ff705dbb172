// T5 / mT5 .nemo export checked with PyTorch (tests/python/nemo_reference.py check-t5): torch.load
// of every rank's model_weights.ckpt gives NeMo's T5 key names and per-rank shapes, TP 2 archives
// have mp_rank_00/01, and the NeMo T5 forward (tests/python/t5_reference.py) of the reassembled
// tensors equals our logits.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../model/t5_test_util.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/export/nemo.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;

struct T5NemoCase {
  const char* name;
  bool mt5;  // relative, geglu, rmsnorm, no biases, untied head, separate decoder embedding
  int tp;
};

class NemoT5Export : public ::testing::TestWithParam<T5NemoCase> {};

TEST_P(NemoT5Export, TorchLoadGivesNemoT5KeysAndTheT5ForwardEqualsOurLogits) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and yaml is not installed";
  const T5NemoCase tc = GetParam();
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  TempDir dir("nemo-t5");
  Logger log = Logger::capturing();
  model::T5Config cfg = model::testing::tiny_t5_config();
  if (tc.mt5) {
    for (model::T5StackConfig* s : {&cfg.encoder, &cfg.decoder}) {
      s->position_embedding_type = "relative";
      s->relative_attention_num_buckets = 16;
      s->relative_attention_max_distance = 20;
      s->normalization = "rmsnorm";
      s->bias = false;
      s->activation = "geglu";
    }
    cfg.share_token_embeddings = false;
    cfg.share_decoder_tokens_head_embeddings = false;
    cfg.tokens_head_bias = false;
  }
  model::T5Model m(cfg, ctx);
  m.initialize(5);
  std::mt19937 rng(9);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (auto& p : m.parameters().params()) {
    if (p.init == model::ParamInit::kNormal) continue;
    float* d = p.master.data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
  }
  checkpoint::CheckpointState st;
  st.family = "t5";
  st.model = m.config_json();
  checkpoint::save_checkpoint(dir.path() / "ckpt", st, m.parameters(), nullptr, ctx);
  NemoExportOptions opt;
  opt.tensor_model_parallel_size = tc.tp;
  const fs::path nemo = dir.path() / "t5.nemo";
  export_nemo(dir.path() / "ckpt", nemo, opt, log);

  auto hb = model::testing::random_t5_batch(3, 9, 6, 100, 13);
  auto acts = m.forward(hb.view(), model::DropoutRng{}, false);
  const std::vector<float> ours = m.logits_to_host(*acts);
  const std::int64_t vp = cfg.padded_vocab_size();
  const model::Batch b = hb.view();
  SafetensorsWriter w;
  w.add("encoder_tokens", b.encoder_tokens);
  w.add("tokens", b.tokens);
  w.add("labels", b.labels);
  w.add("loss_mask", b.loss_mask);
  w.add("encoder_lengths", b.encoder_lengths);
  w.add("decoder_lengths", b.decoder_lengths);
  w.write(dir.path() / "batch.safetensors");
  const fs::path ref = dir.path() / "ref.safetensors";
  ASSERT_EQ(testing::run(fmt::format("/usr/bin/python3 {} check-t5 {} {} {}", testing::python_script("nemo_reference.py"),
                                     nemo.string(), (dir.path() / "batch.safetensors").string(), ref.string())),
            0);
  SafetensorsReader r(ref);
  const TensorView l = r.view("logits");
  const std::int64_t ref_vp = l.size(2);
  int compared = 0;
  // Valid decoder positions, real vocabulary; the reference's logits are (B, Td, Vp).
  ASSERT_EQ(l.size(0), hb.b);
  ASSERT_EQ(l.size(1), hb.td);
  for (std::int64_t i = 0; i < hb.b; ++i)
    for (std::int64_t t = 0; t < hb.dec_len[i]; ++t)
      for (std::int64_t v = 0; v < 100; ++v, ++compared) {
        const std::int64_t row = i * hb.td + t;
        ASSERT_NEAR(ours[(i * hb.td + t) * vp + v], l.data<float>()[row * ref_vp + v], 1e-4)
            << "row " << i << " position " << t << " token " << v;
      }
  EXPECT_GT(compared, 1000);
}

INSTANTIATE_TEST_SUITE_P(Layouts, NemoT5Export,
                         ::testing::Values(T5NemoCase{"T5Tp1", false, 1}, T5NemoCase{"T5Tp2", false, 2},
                                           T5NemoCase{"Mt5Tp1", true, 1}, T5NemoCase{"Mt5Tp2", true, 2}),
                         [](const ::testing::TestParamInfo<T5NemoCase>& i) { return i.param.name; });

}  // namespace
}  // namespace bignlp::exporting
