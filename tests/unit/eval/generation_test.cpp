// Generation-based evaluation: SQuAD exact match / F1 and exact_string_match against an independent
// Python implementation (tests/python/squad_metrics_reference.py) on tricky strings (punctuation,
// articles, Unicode case and spaces, empty strings); the generation task greedy-decodes on the
// engine, cuts at the end id, drops special ids and scores what it decoded.
#include "bignlp/eval/generation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"

namespace bignlp::eval {
namespace {

bool python3_available() { return std::system("/usr/bin/python3 -c 'import json, re' >/dev/null 2>&1") == 0; }

struct Case {
  std::string prediction;
  std::vector<std::string> answers;
};

std::vector<Case> tricky_cases() {
  return {
      {"Denver Broncos", {"Denver Broncos", "The Denver Broncos"}},
      {"the Denver Broncos!", {"Denver Broncos"}},
      {"denver broncos", {"Denver Broncos"}},
      {"A cat, an apple and the dog.", {"cat apple and dog"}},
      {"theatre and anatomy", {"theatre anatomy and"}},    // articles only as whole words
      {"an_apple", {"anapple"}},                           // '_' is punctuation: deleted, not a boundary
      {"a-b the-c", {"ab thec"}},                          // punctuation deleted before articles
      {"U.S. $1,000", {"us 1000", "U S 1 000"}},
      {"", {""}},                                          // both empty: EM 1, F1 0
      {"", {"something"}},
      {"answer", {}},                                      // no references: 0
      {"   \t\n  ", {"the"}},
      {"Ünïcödé STRASSE", {"ünïcödé strasse"}},
      {"ΟΔΟΣ Σ", {"οδος σ"}},                               // final sigma in lower()
      {"İstanbul", {"i̇stanbul", "istanbul"}},               // U+0130 lower-cases to i + U+0307
      {"Ａ ｃａｔ", {"ａ ｃａｔ"}},                           // fullwidth letters: no ASCII punctuation
      {"a\u00a0cat\u3000the\u2003end", {"cat end"}},       // Unicode spaces split
      {"café—the «best»", {"café—the «best»", "café best"}},  // non-ASCII punctuation stays
      {"theé a1 1a the1 ½the", {"theé a1 1a the1 ½the"}},   // Unicode letters/numerics are word characters
      {"x x x y", {"x y y"}},                               // multiset intersection
      {"big red dog", {"the red dog house", "dog"}},        // partial overlaps, the best one counts
      {"The the THE", {"the"}},
  };
}

TEST(GenerationMetrics, MatchAnIndependentPythonImplementation) {
  if (!python3_available()) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  const std::vector<Case> cases = tricky_cases();
  TempDir dir("squad-metrics");
  nlohmann::json in{{"items", nlohmann::json::array()}};
  for (const auto& c : cases) in["items"].push_back({{"prediction", c.prediction}, {"answers", c.answers}});
  write_file_atomic(dir.path() / "in.json", in.dump());
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/squad_metrics_reference.py {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "in.json").string(),
                                      (dir.path() / "out.json").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir.path() / "out.json"));
  std::vector<GenerationPrediction> preds;
  int em_hits = 0, f1_partial = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& r = ref["items"][i];
    EXPECT_EQ(normalize_answer(cases[i].prediction), r["normalized"].get<std::string>()) << "case " << i;
    const GenerationPrediction p = score_prediction(cases[i].prediction, cases[i].answers);
    EXPECT_EQ(p.exact_match, r["exact_match"].get<double>()) << "case " << i;
    EXPECT_NEAR(p.f1, r["f1"].get<double>(), 1e-12) << "case " << i;
    EXPECT_EQ(p.exact_string_match, r["exact_string_match"].get<double>()) << "case " << i;
    em_hits += p.exact_match == 1.0;
    f1_partial += p.f1 > 0.0 && p.f1 < 1.0;
    preds.push_back(p);
  }
  // The cases exercise both outcomes of every metric.
  EXPECT_GT(em_hits, 3);
  EXPECT_LT(em_hits, static_cast<int>(cases.size()) - 3);
  EXPECT_GT(f1_partial, 1);
  const GenerationScores s = aggregate(preds);
  EXPECT_NEAR(s.exact_match, ref["exact_match"].get<double>(), 1e-9);
  EXPECT_NEAR(s.f1, ref["f1"].get<double>(), 1e-9);
  EXPECT_NEAR(s.exact_string_match, ref["exact_string_match"].get<double>(), 1e-12);
  EXPECT_EQ(s.total, static_cast<std::int64_t>(cases.size()));
}

TEST(GenerationMetrics, ExactStringMatchIsRawEquality) {
  // tuning.md §11's vectors.
  EXPECT_EQ(exact_string_match("Denver Broncos", "Denver Broncos"), 1.0);
  EXPECT_EQ(exact_string_match("denver broncos", "Denver Broncos"), 0.0);
  EXPECT_EQ(squad_exact_match("denver broncos", "Denver Broncos"), 1.0);
  EXPECT_EQ(aggregate({}).total, 0);
}

struct GptFixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  std::unique_ptr<model::GptModel> model;
  GptFixture() {
    ctx.allocator = &alloc;
    model::GptConfig c;
    c.vocab_size = 12;
    c.make_vocab_size_divisible_by = 4;
    c.seq_length = 24;
    c.max_position_embeddings = 24;
    c.num_layers = 2;
    c.hidden_size = 16;
    c.num_attention_heads = 2;
    c.init_method_std = 0.6f;
    model = std::make_unique<model::GptModel>(c, ctx);
    model->initialize(3);
  }
};

/// A toy detokenizer: id i is the word "w<i>", words joined by spaces.
std::string words(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (std::int32_t id : ids) s += (s.empty() ? "" : " ") + fmt::format("w{}", id);
  return s;
}

TEST(GenerationTask, GreedyDecodesCutsAtTheEndIdAndScores) {
  GptFixture f;
  const std::vector<std::vector<std::int32_t>> inputs{{1, 2, 3}, {4}, {5, 6, 7, 8, 9}, {10, 11}};
  // What the engine decodes greedily without an end id.
  std::vector<std::vector<std::int32_t>> free_run;
  {
    infer::Engine e(*f.model, infer::EngineOptions{4, 0});
    std::vector<infer::GenerationRequest> rs;
    for (const auto& in : inputs) {
      infer::GenerationRequest r{in, {}};
      r.params.max_new_tokens = 6;
      rs.push_back(r);
    }
    for (const auto& r : e.generate(rs)) free_run.push_back(r.beams[0].tokens);
  }
  // The end id: a token the first sequence generates after its first token.
  const std::int32_t end = free_run[0][1];
  const std::int32_t dropped = free_run[0][0] == end ? -1 : free_run[0][0];
  std::vector<GenerationItem> items;
  std::vector<std::vector<std::int32_t>> want_ids;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::vector<std::int32_t> ids;
    for (std::int32_t t : free_run[i]) {
      if (t == end) break;
      ids.push_back(t);
    }
    want_ids.push_back(ids);
    std::vector<std::int32_t> kept;
    for (std::int32_t t : ids)
      if (t != dropped) kept.push_back(t);
    // Item 0: the right answer among others; item 1: right up to case, an article and punctuation;
    // item 2: a wrong answer; item 3: none.
    std::vector<std::string> answers;
    if (i == 0) answers = {"nothing", words(kept)};
    if (i == 1) {
      std::string upper = words(kept);
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      answers = {"The " + upper + "."};
    }
    if (i == 2) answers = {"w999"};
    items.push_back({inputs[i], answers});
  }
  infer::Engine e(*f.model, infer::EngineOptions{2, 0});
  GenerationOptions o;
  o.max_new_tokens = 6;
  o.end_id = end;
  if (dropped >= 0) o.drop_ids = {dropped};
  o.detokenize = words;
  const GenerationReport rep = run_generation_task(e, items, o);
  ASSERT_EQ(rep.predictions.size(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(rep.predictions[i].ids, want_ids[i]) << i;
  EXPECT_EQ(rep.predictions[0].exact_match, 1.0);
  EXPECT_EQ(rep.predictions[0].exact_string_match, 1.0);
  EXPECT_EQ(rep.predictions[2].exact_match, 0.0);
  EXPECT_EQ(rep.predictions[3].f1, 0.0);
  EXPECT_EQ(rep.scores.total, 4);
  EXPECT_EQ(rep.predictions[1].exact_match, 1.0);
  EXPECT_EQ(rep.predictions[1].exact_string_match, 0.0);
  double em = 0, f1 = 0;
  for (const auto& p : rep.predictions) {
    em += p.exact_match;
    f1 += p.f1;
  }
  EXPECT_NEAR(rep.scores.exact_match, 25.0 * em, 1e-9);
  EXPECT_NEAR(rep.scores.f1, 25.0 * f1, 1e-9);
  // Inputs the engine cannot take are refused naming the item.
  items.push_back({std::vector<std::int32_t>(30, 1), {"x"}});
  try {
    run_generation_task(e, items, o);
    FAIL() << "an input longer than the context was accepted";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("generation item 5"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace bignlp::eval
