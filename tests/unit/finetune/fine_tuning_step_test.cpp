// One T5 fine-tuning step through the fine_tuning stage's code path (pre-trained checkpoint ->
// SequenceToSequenceDataset -> Seq2SeqBatchSource -> the trainer) against PyTorch
// (tests/python/t5_finetune_step_reference.py, float64, same weights and the same examples'
// token ids): the step's loss, the clipped gradients (Adam's first moment after one step is
// (1 - beta1) x gradient) and the weights after the AdamW step.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/wordpiece.h"
#include "bignlp/finetune/fine_tuning.h"
#include "bignlp/model/model_family.h"
#include "bignlp/model/t5.h"
#include "bignlp/tensor/allocator.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::finetune {
namespace {

namespace fs = std::filesystem;

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

std::vector<float> host(const SafetensorsReader& r, const std::string& name) {
  const TensorView v = r.view(name);
  const float* p = v.data<float>();
  return std::vector<float>(p, p + v.numel());
}

TEST(FineTuningStep, LossGradientsAndWeightsAfterOneStepMatchPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  TempDir dir("ft-step");
  std::string vocab_text = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 20; ++i) vocab_text += fmt::format("w{}\n", i);
  write_file_atomic(dir.path() / "vocab.txt", vocab_text);
  const data::WordPieceTokenizer tokenizer(dir.path() / "vocab.txt", data::WordPieceOptions{});
  const data::T5Vocabulary vocab = data::t5_vocabulary(tokenizer, 3);

  model::T5Config cfg;
  cfg.vocab_size = vocab.size;
  cfg.make_vocab_size_divisible_by = 16;
  cfg.encoder_seq_length = 16;
  cfg.decoder_seq_length = 8;
  for (model::T5StackConfig* s : {&cfg.encoder, &cfg.decoder}) {
    s->num_layers = 2;
    s->hidden_size = 24;
    s->ffn_hidden_size = 32;
    s->num_attention_heads = 3;
    s->kv_channels = 8;
    s->init_method_std = 0.05f;
    s->hidden_dropout = 0.1f;  // the fine-tuning config sets 0
    s->attention_dropout = 0.1f;
    s->position_embedding_type = "relative";
    s->relative_attention_num_buckets = 8;
    s->relative_attention_max_distance = 16;
    s->activation = "geglu";
    s->bias_activation_fusion = false;
  }
  cfg.embedding_dropout = 0.0f;
  cfg.decoder_start_token_id = vocab.bos;

  // The "pre-trained" checkpoint.
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  {
    auto m = model::ModelFamilyRegistry::builtin().build("t5", nlohmann::json(cfg), ctx);
    m->initialize(11);
    checkpoint::CheckpointState st;
    st.family = "t5";
    st.model = m->config_json();
    st.tokenizer = {{"library", "megatron"}, {"type", "BertWordPieceCase"},
                    {"vocab_file", (dir.path() / "vocab.txt").string()}};
    st.model_config = nlohmann::json{{"tokenizer", {{"num_sentinel_tokens", 3}}}};
    checkpoint::save_checkpoint(dir.path() / "pretrained", st, m->parameters(), nullptr, ctx);
  }

  // Four examples (two micro-batches of two), one source longer than max_src (truncated).
  const std::vector<std::string> src = {"w1 w2 w3", "w4 w5 w6 w7 w8 w9 w10 w11 w12 w13", "w14", "w15 w16 w17 w18"};
  const std::vector<std::string> tgt = {"w2", "w9 w10 w11", "w14 w14", "w0"};
  std::string src_text, tgt_text;
  for (std::size_t i = 0; i < src.size(); ++i) {
    src_text += src[i] + "\n";
    tgt_text += tgt[i] + "\n";
  }
  write_file_atomic(dir.path() / "src.txt", src_text);
  write_file_atomic(dir.path() / "tgt.txt", tgt_text);

  FineTuningConfig f;
  train::TrainingConfig& c = f.training;
  c.max_steps = 1;
  c.micro_batch_size = 2;
  c.global_batch_size = 4;
  c.log_every_n_steps = 1;
  c.gradient_clip_val = 0.5;
  c.optim.name = "fused_adam";
  c.optim.lr = 0.01;
  c.optim.weight_decay = 0.1;
  c.optim.beta1 = 0.9;
  c.optim.beta2 = 0.999;
  c.optim.eps = 1e-8;
  c.sched.name = "";
  c.exp_manager.explicit_log_dir = dir.path() / "run";
  c.exp_manager.monitor = "validation_exact_string_match";
  c.exp_manager.mode = "max";
  c.exp_manager.filename = "ft--{step}";
  f.restore_from_path = dir.path() / "pretrained";
  f.hidden_dropout = 0.0f;
  f.attention_dropout = 0.0f;
  f.save_nemo_on_train_end = false;
  for (Seq2SeqDataConfig* d : {&f.train_ds, &f.validation_ds}) {
    d->src_files = {dir.path() / "src.txt"};
    d->tgt_files = {dir.path() / "tgt.txt"};
    d->micro_batch_size = 2;
    d->global_batch_size = 4;
    d->max_src_seq_length = 8;
    d->max_tgt_seq_length = 6;
  }
  f.train_ds.drop_last = true;
  std::FILE* out = std::tmpfile();
  const train::TrainResult r = run_fine_tuning(f, Logger::capturing(), ctx, {}, nullptr, out);
  std::fclose(out);
  ASSERT_EQ(r.train_losses.size(), 1u);
  ASSERT_FALSE(r.last_checkpoint.empty());

  // The reference: the same weights and the tokenizer's ids of each example.
  nlohmann::json examples = nlohmann::json::array();
  const auto encoder = tokenizer.make_encoder();
  for (std::size_t i = 0; i < src.size(); ++i) {
    std::vector<std::int32_t> s, t;
    encoder->encode(src[i], s);
    encoder->encode(tgt[i], t);
    examples.push_back({s, t});
  }
  const nlohmann::json step = {{"bos", vocab.bos}, {"eos", vocab.eos}, {"pad", vocab.pad}, {"max_src", 8},
                               {"max_tgt", 6}, {"micro_batch_size", 2}, {"lr", 0.01}, {"weight_decay", 0.1},
                               {"betas", {0.9, 0.999}}, {"eps", 1e-8}, {"clip", 0.5}};
  nlohmann::json ref_cfg = nlohmann::json(cfg);
  const SafetensorsReader pre(dir.path() / "pretrained" / "tp_rank_00_pp_rank_000" / "model.safetensors");
  SafetensorsWriter w;
  for (const auto& e : pre.entries()) w.add(e.name, pre.view(e.name));
  w.set_metadata("config", ref_cfg.dump());
  w.set_metadata("examples", examples.dump());
  w.set_metadata("step", step.dump());
  w.write(dir.path() / "in.safetensors");
  const std::string cmd =
      fmt::format("/usr/bin/python3 {}/tests/python/t5_finetune_step_reference.py {} {}", BIGNLP_SOURCE_DIR,
                  (dir.path() / "in.safetensors").string(), (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const SafetensorsReader ref(dir.path() / "out.safetensors");
  EXPECT_NEAR(r.train_losses[0], host(ref, "loss")[0], 1e-5 * std::abs(r.train_losses[0]));

  const SafetensorsReader after(r.last_checkpoint / "tp_rank_00_pp_rank_000" / "model.safetensors");
  const SafetensorsReader moments(r.last_checkpoint / "tp_rank_00_pp_rank_000" / "optimizer.safetensors");
  int tensors = 0;
  std::int64_t tight = 0, total = 0;
  for (const auto& e : pre.entries()) {
    const std::vector<float> g_ref = host(ref, "grad." + e.name), w_ref = host(ref, e.name);
    const std::vector<float> m = host(moments, "exp_avg." + e.name), w_after = host(after, e.name);
    float gmax = 0.0f;
    for (float g : g_ref) gmax = std::max(gmax, std::abs(g));
    for (std::size_t i = 0; i < g_ref.size(); ++i) {
      // exp_avg = (1 - beta1) * clipped gradient.
      ASSERT_NEAR(m[i] / 0.1f, g_ref[i], 1e-4f * gmax + 1e-7f) << e.name << "[" << i << "]";
      // Adam's first step moves by ~lr * sign(g): tight where the gradient is not tiny.
      const bool clear = std::abs(g_ref[i]) > 1e-4f * gmax && std::abs(g_ref[i]) > 1e-6f;
      ASSERT_NEAR(w_after[i], w_ref[i], clear ? 2e-6f : 0.01f) << e.name << "[" << i << "]";
      tight += clear ? 1 : 0;
      ++total;
    }
    ++tensors;
  }
  EXPECT_GT(tensors, 20);
  EXPECT_GT(tight, total / 2) << "most weights are checked tightly";
}

}  // namespace
}  // namespace bignlp::finetune
