// Import of Hugging Face T5 / mT5 checkpoints: random HF-layout checkpoints written by
// tests/python/hf_t5_reference.py (an mT5-shaped one: gated-gelu, untied lm_head; a T5 one: relu,
// tied embeddings with the d_model^-0.5 rescale) are imported and score the same log-probabilities
// as that script's PyTorch forward of the HF architecture.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/hf_t5.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::model {
namespace {

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

std::string script() { return std::string(BIGNLP_SOURCE_DIR) + "/tests/python/hf_t5_reference.py"; }

class HfT5Import : public ::testing::TestWithParam<std::string> {};

TEST_P(HfT5Import, ImportedModelScoresWhatTheHfArchitectureScores) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const std::string variant = GetParam();
  TempDir dir("hf-t5-" + variant);
  const auto hf = dir.path() / "hf";
  const std::string write = fmt::format("/usr/bin/python3 {} write {} {}", script(), hf.string(), variant);
  ASSERT_EQ(std::system(write.c_str()), 0) << write;

  const T5Config cfg = read_hf_t5_config(hf);
  EXPECT_EQ(cfg.vocab_size, 250);
  EXPECT_EQ(cfg.padded_vocab_size(), 250);
  EXPECT_EQ(cfg.decoder.num_layers, 3);
  EXPECT_EQ(cfg.encoder.normalization, "rmsnorm");
  EXPECT_FALSE(cfg.encoder.normalize_attention_scores);
  EXPECT_EQ(cfg.share_decoder_tokens_head_embeddings, variant == "t5");
  EXPECT_EQ(cfg.decoder_start_token_id, 0);
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  T5Model model(cfg, ctx);
  model.initialize(1);
  load_hf_t5_weights(hf, model);

  const std::int64_t b = 3, te = 11, td = 7;
  std::mt19937 rng(5);
  std::vector<std::int32_t> enc(b * te, 0), dec(b * td, 0), labels(b * td, 0), enc_len{11, 6, 9}, dec_len{7, 4, 5};
  std::vector<float> mask(b * td, 0.0f);
  for (std::int64_t r = 0; r < b; ++r) {
    for (std::int64_t t = 0; t < enc_len[r]; ++t) enc[r * te + t] = 2 + static_cast<int>(rng() % 248);
    for (std::int64_t t = 0; t < dec_len[r]; ++t) {
      labels[r * td + t] = 2 + static_cast<int>(rng() % 248);
      dec[r * td + t] = t == 0 ? static_cast<int>(cfg.decoder_start_token_id) : labels[r * td + t - 1];
      mask[r * td + t] = 1.0f;
    }
  }
  const Batch batch{.tokens = TensorView(dec.data(), DType::kI32, Shape{b, td}),
                    .labels = TensorView(labels.data(), DType::kI32, Shape{b, td}),
                    .loss_mask = TensorView(mask.data(), DType::kF32, Shape{b, td}),
                    .encoder_tokens = TensorView(enc.data(), DType::kI32, Shape{b, te}),
                    .encoder_lengths = TensorView(enc_len.data(), DType::kI32, Shape{b}),
                    .decoder_lengths = TensorView(dec_len.data(), DType::kI32, Shape{b})};
  const TokenScores ours = model.score(batch);

  SafetensorsWriter w;
  w.add("encoder_tokens", batch.encoder_tokens);
  w.add("decoder_input_ids", batch.tokens);
  w.add("labels", batch.labels);
  w.add("encoder_lengths", batch.encoder_lengths);
  w.add("decoder_lengths", batch.decoder_lengths);
  w.write(dir.path() / "in.safetensors");
  const std::string score = fmt::format("/usr/bin/python3 {} score {} {} {}", script(), hf.string(),
                                        (dir.path() / "in.safetensors").string(), (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(score.c_str()), 0) << score;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  const TensorView lp = ref.view("logprob");
  const TensorView logits = ref.view("logits");
  int compared = 0, greedy_agree = 0;
  double worst = 0.0;
  for (std::int64_t r = 0; r < b; ++r)
    for (std::int64_t t = 0; t < dec_len[r]; ++t) {
      const float theirs = lp.data<float>()[r * td + t];
      worst = std::max(worst, std::abs(static_cast<double>(ours.logprob[r * td + t]) - theirs));
      // The greedy token is the reference's argmax.
      const float* row = logits.data<float>() + (r * td + t) * 250;
      const int best = static_cast<int>(std::max_element(row, row + 250) - row);
      greedy_agree += ours.argmax[r * td + t] == best;
      ++compared;
    }
  EXPECT_LT(worst, 1e-4) << "largest |log p ours - log p HF|";
  EXPECT_EQ(greedy_agree, compared);
  EXPECT_EQ(compared, 16);
}

INSTANTIATE_TEST_SUITE_P(Variants, HfT5Import, ::testing::Values("mt5", "t5"));

TEST(HfT5ImportErrors, UnsupportedFeedForwardAndMissingTensorsNameTheFile) {
  TempDir dir("hf-t5-bad");
  write_file_atomic(dir.path() / "config.json",
                    R"({"model_type": "t5", "vocab_size": 10, "d_model": 8, "d_kv": 2, "d_ff": 16, "num_layers": 1,
                        "num_heads": 4, "feed_forward_proj": "gated-tanh"})");
  try {
    read_hf_t5_config(dir.path());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gated-tanh"), std::string::npos) << e.what();
  }
  write_file_atomic(dir.path() / "config.json",
                    R"({"model_type": "t5", "vocab_size": 10, "d_model": 8, "d_kv": 2, "d_ff": 16, "num_layers": 1,
                        "num_heads": 4, "feed_forward_proj": "relu"})");
  const T5Config cfg = read_hf_t5_config(dir.path());
  SafetensorsWriter w;
  std::vector<float> shared(80, 0.5f);
  w.add("shared.weight", TensorView(shared.data(), DType::kF32, Shape{10, 8}));
  w.write(dir.path() / "model.safetensors");
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  T5Model model(cfg, ctx);
  try {
    load_hf_t5_weights(dir.path(), model);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("relative_attention_bias"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bignlp::model
