// The engine: KV-cache decoding gives the logits of a full recomputation, whatever mix of context
// and decode segments a step holds; a request's result does not depend on the batch around it;
// beam search, stop words, end_id and min_length act as documented.
#include "bignlp/infer/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "bignlp/core/error.h"
#include "bignlp/model/gpt.h"

namespace bignlp::infer {
namespace {

struct Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  std::unique_ptr<model::GptModel> model;
  explicit Fixture(std::int64_t positions = 24) {
    ctx.allocator = &alloc;
    model::GptConfig c;
    c.vocab_size = 40;
    c.make_vocab_size_divisible_by = 8;
    c.seq_length = positions;
    c.max_position_embeddings = positions;
    c.num_layers = 2;
    c.hidden_size = 16;
    c.num_attention_heads = 2;
    c.init_method_std = 0.5f;
    model = std::make_unique<model::GptModel>(c, ctx);
    model->initialize(11);
  }
  /// Full forward of one sequence: logits (T, V) over the real vocabulary.
  std::vector<std::vector<float>> full(const std::vector<std::int32_t>& ids) {
    const std::int64_t t = static_cast<std::int64_t>(ids.size()), vp = model->config().padded_vocab_size();
    std::vector<std::int32_t> tok(ids);
    model::Batch b;
    b.tokens = TensorView(tok.data(), DType::kI32, Shape{1, t});
    auto acts = model->forward(b, model::DropoutRng{}, false);
    const auto l = model->logits_to_host(*acts);
    std::vector<std::vector<float>> out;
    for (std::int64_t i = 0; i < t; ++i) out.emplace_back(l.begin() + i * vp, l.begin() + i * vp + 40);
    return out;
  }
};

TEST(EngineTest, CachedDecodingEqualsFullRecomputation) {
  Fixture f;
  const std::vector<std::vector<std::int32_t>> seqs{{1, 5, 9, 2, 33, 7, 7, 0, 12, 3},
                                                    {4, 8, 15, 16, 23, 39, 1, 1},
                                                    {38, 2, 2, 2, 9, 10, 11, 12, 13, 14, 5, 6}};
  std::vector<std::vector<std::vector<float>>> ref;
  for (const auto& s : seqs) ref.push_back(f.full(s));
  model::KvCache cache = f.model->make_kv_cache(4, 20);
  // Steps of (sequence, slot, past, count): context phases, single decode tokens and a chunk,
  // mixed in one call.
  struct Seg {
    int seq;
    std::int64_t slot, past, count;
  };
  const std::vector<std::vector<Seg>> steps{
      {{0, 2, 0, 5}, {1, 0, 0, 1}},
      {{0, 2, 5, 1}, {1, 0, 1, 3}, {2, 3, 0, 9}},
      {{2, 3, 9, 1}, {0, 2, 6, 1}, {1, 0, 4, 1}},
      {{1, 0, 5, 3}, {0, 2, 7, 3}, {2, 3, 10, 2}},
  };
  int checked = 0;
  for (const auto& step : steps) {
    std::vector<std::int32_t> tokens;
    std::vector<model::DecodeSegment> segs;
    for (const Seg& s : step) {
      segs.push_back({s.slot, s.past, s.count});
      for (std::int64_t i = 0; i < s.count; ++i) tokens.push_back(seqs[s.seq][s.past + i]);
    }
    std::vector<float> logits(segs.size() * 40);
    f.model->decode(cache, tokens, segs, logits);
    for (std::size_t i = 0; i < step.size(); ++i) {
      const auto& want = ref[step[i].seq][step[i].past + step[i].count - 1];
      for (int v = 0; v < 40; ++v)
        ASSERT_NEAR(logits[i * 40 + v], want[v], 2e-5 * (1.0 + std::abs(want[v])))
            << "step segment " << i << " vocab " << v;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 11);
  // Beam reordering copies a slot: decoding from the copy continues the same sequence.
  cache.copy_slot(f.model->context(), 2, 1, 10);
  std::vector<float> logits(40);
  const std::vector<std::int32_t> tok{seqs[0][9]};
  const std::vector<model::DecodeSegment> seg{{1, 9, 1}};
  f.model->decode(cache, tok, seg, logits);
  // Sequence 0 has 10 tokens; the reference for position 9 is its last row.
  for (int v = 0; v < 40; ++v) EXPECT_NEAR(logits[v], ref[0][9][v], 2e-5 * (1.0 + std::abs(ref[0][9][v])));
}

TEST(EngineTest, BadSegmentsAndOversizedRequestsAreRefused) {
  Fixture f;
  model::KvCache cache = f.model->make_kv_cache(2, 8);
  std::vector<float> logits(40);
  const std::vector<std::int32_t> tok{1, 2};
  const std::vector<model::DecodeSegment> outside{{5, 0, 2}};
  EXPECT_THROW(f.model->decode(cache, tok, outside, logits), Error);
  const std::vector<model::DecodeSegment> past_capacity{{0, 7, 2}};
  EXPECT_THROW(f.model->decode(cache, tok, past_capacity, logits), Error);
  EXPECT_THROW(f.model->make_kv_cache(1, 25), Error);  // more positions than the model has
  Engine e(*f.model, EngineOptions{2, 0});
  GenerationRequest r{{1, 2, 3}, {}};
  r.params.max_new_tokens = 22;  // 3 + 22 > 24 positions
  EXPECT_THROW(e.submit(r), ConfigError);
  r.params.max_new_tokens = 2;
  r.params.beam_width = 3;  // more beams than slots
  EXPECT_THROW(e.submit(r), ConfigError);
  r.params.beam_width = 1;
  r.prompt = {};
  EXPECT_THROW(e.submit(r), ConfigError);
}

std::vector<GenerationRequest> mixed_requests() {
  std::vector<GenerationRequest> rs;
  const auto add = [&](std::vector<std::int32_t> prompt, auto set) {
    GenerationRequest r{std::move(prompt), {}};
    r.params.max_new_tokens = 8;
    set(r.params);
    rs.push_back(r);
  };
  add({1, 2, 3}, [](SamplingParams&) {});
  add({7}, [](SamplingParams& p) { p.top_k = 5; p.random_seed = 3; p.return_log_probs = true; });
  add({4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, [](SamplingParams& p) { p.top_p = 0.9f; p.temperature = 1.3f; p.random_seed = 99; });
  add({9, 8}, [](SamplingParams& p) { p.top_k = 4; p.top_p = 0.5f; p.repetition_penalty = 1.5f; p.random_seed = 5; });
  add({3, 1, 4, 1, 5}, [](SamplingParams& p) { p.beam_width = 3; p.len_penalty = 0.6f; p.max_new_tokens = 6; });
  add({2, 7, 1}, [](SamplingParams& p) { p.top_k = 10; p.presence_penalty = 2.0f; p.random_seed = 8; p.max_new_tokens = 12; });
  return rs;
}

TEST(EngineTest, ResultsDoNotDependOnTheBatch) {
  Fixture f;
  const auto rs = mixed_requests();
  std::vector<GenerationResult> alone;
  {
    Engine e(*f.model, EngineOptions{3, 0});
    for (const auto& r : rs) alone.push_back(e.generate({r})[0]);
  }
  for (std::int64_t slots : {3, 4, 8}) {
    Engine e(*f.model, EngineOptions{slots, 0});
    const auto together = e.generate(rs);
    ASSERT_EQ(together.size(), rs.size());
    for (std::size_t i = 0; i < rs.size(); ++i) {
      ASSERT_EQ(together[i].beams.size(), alone[i].beams.size()) << i;
      for (std::size_t b = 0; b < alone[i].beams.size(); ++b) {
        EXPECT_EQ(together[i].beams[b].tokens, alone[i].beams[b].tokens) << "request " << i << " slots " << slots;
        EXPECT_NEAR(together[i].beams[b].cum_log_prob, alone[i].beams[b].cum_log_prob, 1e-4);
      }
    }
    EXPECT_EQ(e.slots_in_use(), 0);
  }
  EXPECT_EQ(alone[1].beams[0].log_probs.size(), 8u);
  EXPECT_TRUE(alone[0].beams[0].log_probs.empty());
  EXPECT_EQ(alone[4].beams.size(), 3u);
}

TEST(EngineTest, BatchInvariantModeGivesBitwiseTheResultsOfEachRequestAlone) {
  Fixture f;
  const auto rs = mixed_requests();
  std::vector<GenerationResult> alone;
  {
    Engine e(*f.model, EngineOptions{3, 0, 1 << 30, true});
    for (const auto& r : rs) alone.push_back(e.generate({r})[0]);
  }
  Engine e(*f.model, EngineOptions{8, 0, 1 << 30, true});
  const auto together = e.generate(rs);
  for (std::size_t i = 0; i < rs.size(); ++i)
    for (std::size_t b = 0; b < alone[i].beams.size(); ++b) {
      EXPECT_EQ(together[i].beams[b].tokens, alone[i].beams[b].tokens) << i;
      EXPECT_EQ(together[i].beams[b].cum_log_prob, alone[i].beams[b].cum_log_prob) << i;  // bitwise
    }
}

TEST(EngineTest, AFailingRequestEndsAloneWithAnError) {
  Fixture f;
  GenerationRequest ok{{1, 2}, {}}, bad{{3, 4}, {}};
  ok.params.max_new_tokens = bad.params.max_new_tokens = 3;
  for (std::int32_t id = 0; id < 40; ++id) bad.params.bad_words.push_back({id});  // nothing left to sample
  Engine e(*f.model, EngineOptions{4, 0});
  const auto res = e.generate({ok, bad});
  EXPECT_TRUE(res[0].error.empty());
  EXPECT_EQ(res[0].beams[0].tokens.size(), 3u);
  EXPECT_NE(res[1].error.find("every token of the vocabulary is banned"), std::string::npos) << res[1].error;
  EXPECT_EQ(e.slots_in_use(), 0);
}

TEST(EngineTest, GreedyPicksTheArgmaxOfTheFullForward) {
  Fixture f;
  GenerationRequest r{{5, 6, 7}, {}};
  r.params.max_new_tokens = 10;
  Engine e(*f.model, EngineOptions{1, 0});
  const auto res = e.generate({r})[0].beams[0];
  ASSERT_EQ(res.tokens.size(), 10u);
  std::vector<std::int32_t> seq = r.prompt;
  double cum = 0.0;
  for (std::int32_t t : res.tokens) {
    const auto l = f.full(seq).back();
    const auto best = std::max_element(l.begin(), l.end()) - l.begin();
    EXPECT_EQ(t, best);
    double z = 0.0;
    for (float x : l) z += std::exp(x - l[best]);
    cum += -std::log(z);
    seq.push_back(t);
  }
  EXPECT_NEAR(res.cum_log_prob, cum, 1e-4);
  EXPECT_EQ(res.finish_reason, "length");
}

TEST(EngineTest, BeamSearchFindsAtLeastTheGreedyScoreAndKeepsBeamsDistinct) {
  Fixture f;
  GenerationRequest g{{11, 3, 20}, {}};
  g.params.max_new_tokens = 6;
  GenerationRequest b = g;
  b.params.beam_width = 4;
  Engine e(*f.model, EngineOptions{4, 0});
  const auto greedy = e.generate({g})[0].beams[0];
  const auto beams = e.generate({b})[0].beams;
  ASSERT_EQ(beams.size(), 4u);
  EXPECT_GE(beams[0].cum_log_prob, greedy.cum_log_prob - 1e-6);
  std::set<std::vector<std::int32_t>> distinct;
  for (std::size_t i = 0; i < beams.size(); ++i) {
    distinct.insert(beams[i].tokens);
    EXPECT_EQ(beams[i].tokens.size(), 6u);
    if (i > 0) {
      EXPECT_GE(beams[i - 1].cum_log_prob, beams[i].cum_log_prob);  // len_penalty 0: ranked by score
    }
    // cum_log_prob is the sum of the per-token log-probs of the full forward.
    std::vector<std::int32_t> seq = g.prompt;
    double cum = 0.0;
    for (std::int32_t t : beams[i].tokens) {
      const auto l = f.full(seq).back();
      const float mx = *std::max_element(l.begin(), l.end());
      double z = 0.0;
      for (float x : l) z += std::exp(x - mx);
      cum += l[t] - mx - std::log(z);
      seq.push_back(t);
    }
    EXPECT_NEAR(beams[i].cum_log_prob, cum, 1e-4) << "beam " << i;
  }
  EXPECT_EQ(distinct.size(), 4u);
}

TEST(EngineTest, EndIdStopWordsAndMinLength) {
  Fixture f;
  GenerationRequest r{{5, 6, 7}, {}};
  r.params.max_new_tokens = 10;
  Engine e(*f.model, EngineOptions{2, 0});
  const auto free_run = e.generate({r})[0].beams[0].tokens;
  // end_id = the third greedy token: generation ends there, the end token included.
  r.params.end_id = free_run[2];
  auto res = e.generate({r})[0].beams[0];
  const auto first_end = std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  EXPECT_EQ(res.tokens, std::vector<std::int32_t>(free_run.begin(), free_run.begin() + first_end + 1));
  EXPECT_EQ(res.finish_reason, "end");
  // min_length beyond that point: the end token cannot come before.
  r.params.min_length = first_end + 2;
  res = e.generate({r})[0].beams[0];
  for (std::int64_t i = 0; i < r.params.min_length && i < static_cast<std::int64_t>(res.tokens.size()); ++i)
    EXPECT_NE(res.tokens[i], *r.params.end_id) << i;
  // A two-token stop word: the sequence stops after it, the word kept.
  r.params = {};
  r.params.max_new_tokens = 10;
  r.params.stop_words = {{free_run[3], free_run[4]}};
  res = e.generate({r})[0].beams[0];
  EXPECT_EQ(res.finish_reason, "stop");
  EXPECT_EQ(res.tokens.back(), free_run[4]);
  EXPECT_LE(res.tokens.size(), 5u);
  // A bad word: the greedy first token is banned, so another comes first.
  r.params = {};
  r.params.max_new_tokens = 2;
  r.params.bad_words = {{free_run[0]}};
  res = e.generate({r})[0].beams[0];
  EXPECT_NE(res.tokens[0], free_run[0]);
}

}  // namespace
}  // namespace bignlp::infer

namespace bignlp::infer {
namespace {

// Interactive generation: a session's second turn runs only its new tokens through the model (the
// last generated token of turn 1 and the new prompt) and generates what a request for the whole
// concatenation generates from scratch, with repetition penalty and seeded top-k sampling (both
// read the whole history) as well as greedy.
TEST(EngineSession, ContinuedGenerationEqualsTheConcatenationFromScratch) {
  for (const bool sampled : {false, true}) {
    Fixture f;
    Engine engine(*f.model, EngineOptions{3, 0});
    SamplingParams p;
    p.max_new_tokens = 4;
    if (sampled) {
      p.top_k = 5;
      p.random_seed = 17;
      p.repetition_penalty = 1.5f;
    }
    const std::vector<std::int32_t> turn1{3, 9, 27, 1}, turn2{5, 5, 30};
    const std::uint64_t s = engine.open_session();
    GenerationResult r1, r2;
    engine.submit(GenerationRequest{turn1, p, s}, {}, [&](GenerationResult r) { r1 = std::move(r); });
    while (engine.step()) {
    }
    ASSERT_EQ(r1.beams.at(0).tokens.size(), 4u);
    const std::int64_t prompt_before = engine.prompt_tokens();
    engine.submit(GenerationRequest{turn2, p, s}, {}, [&](GenerationResult r) { r2 = std::move(r); });
    while (engine.step()) {
    }
    // Turn 2 ran the pending generated token and its own 3 tokens, not the 8 before them.
    EXPECT_EQ(engine.prompt_tokens() - prompt_before, 1 + 3);
    std::vector<std::int32_t> whole = turn1;
    whole.insert(whole.end(), r1.beams[0].tokens.begin(), r1.beams[0].tokens.end());
    whole.insert(whole.end(), turn2.begin(), turn2.end());
    Engine fresh(*f.model, EngineOptions{1, 0});
    const auto scratch = fresh.generate({GenerationRequest{whole, p}});
    EXPECT_EQ(r2.beams.at(0).tokens, scratch.at(0).beams.at(0).tokens) << (sampled ? "sampled" : "greedy");
    for (std::size_t i = 0; i < scratch[0].beams[0].token_log_probs.size(); ++i)
      EXPECT_NEAR(r2.beams[0].token_log_probs.at(i), scratch[0].beams[0].token_log_probs[i], 1e-5);
    std::vector<std::int32_t> expect_tokens = whole;
    expect_tokens.insert(expect_tokens.end(), r2.beams[0].tokens.begin(), r2.beams[0].tokens.end());
    EXPECT_EQ(engine.session_tokens(s), expect_tokens);
    // The session keeps its slot until closed; the context limit counts the session's tokens.
    EXPECT_EQ(engine.slots_in_use(), 1);
    p.max_new_tokens = 10;
    EXPECT_THROW(engine.check(GenerationRequest{std::vector<std::int32_t>(2, 1), p, s}), ConfigError);
    engine.close_session(s);
    EXPECT_EQ(engine.slots_in_use(), 0);
    EXPECT_THROW(engine.check(GenerationRequest{turn2, p, s}), ConfigError);
  }
}

}  // namespace
}  // namespace bignlp::infer
