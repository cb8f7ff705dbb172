// Encoder-decoder (T5) decoding through the engine: the encoder runs once per request and the
// decoder against its self-attention cache and cached cross-attention keys/values gives the
// logits of a full T5 forward; greedy and beam-search output of the learned-absolute and the
// relative-bias variants equal a PyTorch greedy / beam loop over the same weights
// (tests/python/t5_generate_reference.py, on t5_reference.py's model); batched requests of
// different lengths equal their single-request results.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/infer/engine.h"
#include "bignlp/model/t5.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::infer {
namespace {

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

constexpr int kVocab = 90;

struct T5Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  std::unique_ptr<model::T5Model> model;
  explicit T5Fixture(const std::string& positions, bool gated = false) {
    ctx.allocator = &alloc;
    model::T5Config c;
    c.vocab_size = kVocab;  // padded to 96
    c.make_vocab_size_divisible_by = 32;
    c.encoder_seq_length = 16;
    c.decoder_seq_length = 12;
    c.max_position_embeddings = 16;
    c.decoder_start_token_id = 2;
    c.embedding_init_method_std = 0.4f;
    c.embedding_dropout = 0.0f;
    for (model::T5StackConfig* s : {&c.encoder, &c.decoder}) {
      s->num_layers = 2;
      s->hidden_size = 24;
      s->ffn_hidden_size = 32;
      s->num_attention_heads = 4;
      s->kv_channels = 5;  // projection 20 != hidden 24
      s->init_method_std = 0.3f;
      s->hidden_dropout = 0.0f;
      s->attention_dropout = 0.0f;
      s->activation = gated ? "geglu" : "gelu";
      s->position_embedding_type = positions;
      s->relative_attention_num_buckets = 8;
      s->relative_attention_max_distance = 12;
    }
    c.decoder.num_layers = 3;
    model = std::make_unique<model::T5Model>(c, ctx);
    model->initialize(positions == "relative" ? 21 : 12);
    // Norms and biases start at 1/0: perturb them so their effect is exercised.
    std::mt19937 rng(4);
    std::normal_distribution<float> noise(0.0f, 0.2f);
    for (auto& p : model->parameters().params()) {
      if (p.init == model::ParamInit::kNormal) continue;
      float* d = p.master.data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
    }
  }
  /// Full forward: decoder logits (Td, V) for encoder input `enc` and decoder input `dec`.
  std::vector<std::vector<float>> full(std::vector<std::int32_t> enc, std::vector<std::int32_t> dec) {
    const auto te = static_cast<std::int64_t>(enc.size()), td = static_cast<std::int64_t>(dec.size());
    model::Batch b;
    b.encoder_tokens = TensorView(enc.data(), DType::kI32, Shape{1, te});
    b.tokens = TensorView(dec.data(), DType::kI32, Shape{1, td});
    auto acts = model->forward(b, model::DropoutRng{}, false);
    const auto l = model->logits_to_host(*acts);
    const std::int64_t vp = model->config().padded_vocab_size();
    std::vector<std::vector<float>> out;
    for (std::int64_t i = 0; i < td; ++i) out.emplace_back(l.begin() + i * vp, l.begin() + i * vp + kVocab);
    return out;
  }
};

const std::vector<std::vector<std::int32_t>>& prompts() {
  static const std::vector<std::vector<std::int32_t>> p{
      {5, 17, 33, 8}, {71}, {40, 2, 9, 9, 9, 61, 12, 80, 5, 5, 3, 88, 1, 14}, {33, 34}, {8, 6, 4, 2, 0, 86, 85}};
  return p;
}

class T5Decode : public ::testing::TestWithParam<std::string> {};

TEST_P(T5Decode, CachedDecodingEqualsTheFullForward) {
  T5Fixture f(GetParam());
  const std::vector<std::int32_t> enc0{5, 17, 33, 8, 1, 60}, enc1{71, 3};
  const std::vector<std::int32_t> dec0{2, 40, 41, 7, 7, 19, 3}, dec1{2, 9, 88, 12, 5};
  const auto ref0 = f.full(enc0, dec0), ref1 = f.full(enc1, dec1);
  model::KvCache cache = f.model->make_kv_cache(3, 12);
  EXPECT_EQ(cache.encoder_capacity, 16);
  // Input 0 in slot 2, input 1 in slot 0, encoded together.
  std::vector<std::int32_t> enc_tokens(enc0);
  enc_tokens.insert(enc_tokens.end(), enc1.begin(), enc1.end());
  const std::vector<model::DecodeSegment> enc_segs{{2, 0, 6}, {0, 0, 2}};
  f.model->encode(cache, enc_tokens, enc_segs);
  EXPECT_EQ(cache.encoder_lengths[2], 6);
  EXPECT_EQ(cache.cross_source[0], 0);
  struct Seg {
    int seq;
    std::int64_t slot, past, count;
  };
  const std::vector<std::vector<std::int32_t>*> decs{const_cast<std::vector<std::int32_t>*>(&dec0),
                                                     const_cast<std::vector<std::int32_t>*>(&dec1)};
  const std::vector<const std::vector<std::vector<float>>*> refs{&ref0, &ref1};
  // A context chunk, single decode tokens and chunks, mixed in one call.
  const std::vector<std::vector<Seg>> steps{{{0, 2, 0, 3}, {1, 0, 0, 1}}, {{1, 0, 1, 2}, {0, 2, 3, 1}},
                                            {{0, 2, 4, 3}, {1, 0, 3, 2}}};
  int checked = 0;
  for (const auto& step : steps) {
    std::vector<std::int32_t> tokens;
    std::vector<model::DecodeSegment> segs;
    for (const Seg& s : step) {
      segs.push_back({s.slot, s.past, s.count});
      for (std::int64_t i = 0; i < s.count; ++i) tokens.push_back((*decs[s.seq])[s.past + i]);
    }
    std::vector<float> logits(segs.size() * kVocab);
    f.model->decode(cache, tokens, segs, logits);
    for (std::size_t i = 0; i < step.size(); ++i) {
      const auto& want = (*refs[step[i].seq])[step[i].past + step[i].count - 1];
      for (int v = 0; v < kVocab; ++v)
        ASSERT_NEAR(logits[i * kVocab + v], want[v], 2e-5 * (1.0 + std::abs(want[v]))) << "segment " << i << " vocab " << v;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
  // A beam copy: slot 1 gets slot 2's decoder positions and shares its encoded input.
  cache.copy_slot(f.model->context(), 2, 1, 7);
  cache.share_encoder(2, 1);
  EXPECT_EQ(cache.cross_source[1], 2);
  std::vector<float> logits(kVocab);
  const std::vector<std::int32_t> tok{dec0[6]};
  const std::vector<model::DecodeSegment> seg{{1, 6, 1}};
  f.model->decode(cache, tok, seg, logits);
  for (int v = 0; v < kVocab; ++v) EXPECT_NEAR(logits[v], ref0[6][v], 2e-5 * (1.0 + std::abs(ref0[6][v])));
  // A slot without an encoded input, and an encoding that does not start at 0, are refused.
  model::KvCache fresh = f.model->make_kv_cache(2, 4);
  EXPECT_THROW(f.model->decode(fresh, tok, std::vector<model::DecodeSegment>{{0, 0, 1}}, logits), Error);
  EXPECT_THROW(f.model->encode(fresh, tok, std::vector<model::DecodeSegment>{{0, 1, 1}}), Error);
}

/// Greedy (width 1) or beam-search requests of `n` tokens for every prompt, no end token.
std::vector<GenerationRequest> requests(std::int64_t n, int width) {
  std::vector<GenerationRequest> rs;
  for (const auto& p : prompts()) {
    GenerationRequest r{p, {}};
    r.params.max_new_tokens = n;
    r.params.beam_width = width;
    rs.push_back(r);
  }
  return rs;
}

/// Runs tests/python/t5_generate_reference.py on the fixture's weights: one JSON object per prompt.
std::vector<nlohmann::json> reference(T5Fixture& f, std::int64_t n, int width) {
  TempDir dir("t5-generate");
  SafetensorsWriter w;
  for (auto& p : f.model->parameters().params()) w.add(p.name, p.master);
  w.set_metadata("config", f.model->config_json().dump());
  w.write(dir.path() / "weights.safetensors");
  std::string lines;
  for (const auto& p : prompts()) lines += nlohmann::json{{"ids", p}}.dump() + "\n";
  write_file_atomic(dir.path() / "prompts.jsonl", lines);
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/t5_generate_reference.py {} {} {} {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "weights.safetensors").string(),
                                      (dir.path() / "prompts.jsonl").string(), (dir.path() / "expected.jsonl").string(),
                                      n, width);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<nlohmann::json> out;
  std::ifstream in(dir.path() / "expected.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST_P(T5Decode, GreedyOutputEqualsAPyTorchGreedyLoop) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  T5Fixture f(GetParam(), /*gated=*/GetParam() == "relative");
  const auto want = reference(f, 9, 1);
  ASSERT_EQ(want.size(), prompts().size());
  // Two slots for five requests: requests join as others leave (continuous batching).
  Engine e(*f.model, EngineOptions{2, 0});
  const auto got = e.generate(requests(9, 1));
  std::set<std::vector<std::int32_t>> distinct;
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(got[i].error.empty()) << got[i].error;
    EXPECT_EQ(got[i].beams[0].tokens, want[i]["ids"].get<std::vector<std::int32_t>>()) << "prompt " << i;
    EXPECT_NEAR(got[i].beams[0].cum_log_prob, want[i]["cum_logprob"].get<double>(), 1e-4) << "prompt " << i;
    distinct.insert(got[i].beams[0].tokens);
  }
  EXPECT_GT(distinct.size(), 1u) << "the outputs should depend on the encoder input";
  EXPECT_EQ(e.prompt_tokens(), 4 + 1 + 14 + 2 + 7 + 5);  // encoder inputs + one start token each
}

TEST_P(T5Decode, BeamSearchEqualsAPyTorchBeamSearch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  T5Fixture f(GetParam());
  const auto want = reference(f, 5, 3);
  Engine e(*f.model, EngineOptions{4, 0});  // one beam request at a time (3 slots each)
  const auto got = e.generate(requests(5, 3));
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].beams.size(), 3u);
    for (std::size_t b = 0; b < 3; ++b) {
      EXPECT_EQ(got[i].beams[b].tokens, want[i]["beams"][b]["ids"].get<std::vector<std::int32_t>>())
          << "prompt " << i << " beam " << b;
      EXPECT_NEAR(got[i].beams[b].cum_log_prob, want[i]["beams"][b]["cum_logprob"].get<double>(), 1e-4);
    }
  }
}

TEST_P(T5Decode, BatchedRequestsEqualTheirSingleRequestResults) {
  T5Fixture f(GetParam());
  std::vector<GenerationRequest> rs = requests(7, 1);
  rs[1].params.top_k = 5;
  rs[1].params.random_seed = 3;
  rs[2].params.beam_width = 2;
  rs[3].params.top_p = 0.8f;
  rs[3].params.repetition_penalty = 1.4f;
  rs[3].params.random_seed = 9;
  for (const bool invariant : {false, true}) {
    std::vector<GenerationResult> alone;
    {
      Engine e(*f.model, EngineOptions{2, 0, 1 << 30, invariant});
      for (const auto& r : rs) alone.push_back(e.generate({r})[0]);
    }
    Engine e(*f.model, EngineOptions{8, 0, 1 << 30, invariant});
    const auto together = e.generate(rs);
    for (std::size_t i = 0; i < rs.size(); ++i) {
      ASSERT_EQ(together[i].beams.size(), alone[i].beams.size());
      for (std::size_t b = 0; b < alone[i].beams.size(); ++b) {
        EXPECT_EQ(together[i].beams[b].tokens, alone[i].beams[b].tokens) << "request " << i << " invariant " << invariant;
        if (invariant)
          EXPECT_EQ(together[i].beams[b].cum_log_prob, alone[i].beams[b].cum_log_prob) << i;  // bitwise
        else
          EXPECT_NEAR(together[i].beams[b].cum_log_prob, alone[i].beams[b].cum_log_prob, 1e-4) << i;
      }
    }
    EXPECT_EQ(e.slots_in_use(), 0);
  }
}

TEST(T5DecodeLimits, PromptsAndLengthsAreCheckedAgainstEncoderAndDecoder) {
  T5Fixture f("learned_absolute");
  Engine e(*f.model, EngineOptions{2, 6});
  GenerationRequest r{std::vector<std::int32_t>(16, 5), {}};
  r.params.max_new_tokens = 6;  // a 16-token input fits the encoder; 6 decoder positions fit
  EXPECT_NO_THROW(e.check(r));
  r.prompt.push_back(5);
  EXPECT_THROW(e.check(r), ConfigError);  // 17 > the encoder's 16 positions
  r.prompt.pop_back();
  r.params.max_new_tokens = 7;
  EXPECT_THROW(e.check(r), ConfigError);  // 7 > the decoder's 6 positions
  model::T5Config c = f.model->config();
  c.decoder_start_token_id = -1;
  model::T5Model unknown_start(c, f.ctx);
  EXPECT_THROW(Engine(unknown_start, EngineOptions{1, 0}), ConfigError);
}

INSTANTIATE_TEST_SUITE_P(Positions, T5Decode, ::testing::Values("learned_absolute", "relative"));

}  // namespace
}  // namespace bignlp::infer
