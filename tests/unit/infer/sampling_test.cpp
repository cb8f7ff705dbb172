// Sampling semantics against tests/python/sampling_reference.py, an independent implementation of
// FasterTransformer's rules (order of operations, top-k/top-p boundary, penalties, min_length,
// bad words, XORWOW draws) on fixed logits.
#include "bignlp/infer/sampling.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::infer {
namespace {

bool python_numpy_available() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

SamplingParams params_of(const nlohmann::json& j) {
  SamplingParams p;
  p.top_k = j.value("top_k", 0);
  p.top_p = j.value("top_p", 0.0f);
  p.temperature = j.value("temperature", 1.0f);
  p.repetition_penalty = j.value("repetition_penalty", 1.0f);
  p.presence_penalty = j.value("presence_penalty", 0.0f);
  p.min_length = j.value("min_length", 0);
  if (j.contains("end_id")) p.end_id = j["end_id"].get<std::int32_t>();
  if (j.contains("bad_words")) p.bad_words = j["bad_words"].get<std::vector<std::vector<std::int32_t>>>();
  return p;
}

TEST(SamplingTest, MatchesTheIndependentReference) {
  if (!python_numpy_available()) GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed";
  TempDir dir("sampling");
  const auto out = dir.path() / "ref.json";
  ASSERT_EQ(std::system(fmt::format("/usr/bin/python3 {}/tests/python/sampling_reference.py {}", BIGNLP_SOURCE_DIR,
                                    out.string())
                            .c_str()),
            0);
  nlohmann::json ref;
  std::ifstream(out) >> ref;
  Xorwow g(12345);
  for (const auto& x : ref["xorwow_12345"]) EXPECT_EQ(g.next(), x.get<std::uint32_t>());
  ASSERT_EQ(ref["cases"].size(), 32u);
  int distinct_tokens_total = 0;
  for (std::size_t ci = 0; ci < ref["cases"].size(); ++ci) {
    const auto& c = ref["cases"][ci];
    const SamplingParams p = params_of(c["params"]);
    p.validate(40);
    std::vector<float> logits = c["logits"].get<std::vector<float>>();
    const auto history = c["history"].get<std::vector<std::int32_t>>();
    process_logits(logits, history, c["generated"].get<std::int64_t>(), p);
    const auto expected = c["processed"].get<std::vector<double>>();
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (expected[i] < -1e299)
        EXPECT_TRUE(std::isinf(logits[i]) && logits[i] < 0) << "case " << ci << " id " << i;
      else
        EXPECT_FLOAT_EQ(logits[i], static_cast<float>(expected[i])) << "case " << ci << " id " << i;
    }
    Xorwow rng(c["seed"].get<std::uint64_t>());
    std::set<std::int32_t> seen;
    for (std::size_t d = 0; d < c["draws"].size(); ++d) {
      const auto& e = c["draws"][d];
      const SampledToken t = sample_token(logits, p, rng);
      ASSERT_EQ(t.id, e["token"].get<std::int32_t>()) << "case " << ci << " " << c["params"].dump() << " draw " << d;
      EXPECT_NEAR(t.log_prob, e["log_prob"].get<double>(), 1e-4) << "case " << ci << " draw " << d;
      EXPECT_NEAR(t.cum_log_prob, e["cum"].get<double>(), 1e-4) << "case " << ci << " draw " << d;
      seen.insert(t.id);
    }
    distinct_tokens_total += static_cast<int>(seen.size());
  }
  EXPECT_GT(distinct_tokens_total, 100);  // the draws exercise real sampling, not only arg-max
}

TEST(SamplingTest, InvalidSettingsAreRefusedByName) {
  const auto refused = [](SamplingParams p, const std::string& what) {
    try {
      p.validate(50, "request 3");
      ADD_FAILURE() << "accepted " << what;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("request 3"), std::string::npos) << e.what();
    }
  };
  SamplingParams p;
  p.repetition_penalty = 1.2f;
  p.presence_penalty = 0.5f;
  refused(p, "cannot be used together");
  p = {};
  p.top_p = 1.5f;
  refused(p, "top_p");
  p = {};
  p.temperature = 0.0f;
  refused(p, "temperature");
  p = {};
  p.end_id = 50;
  refused(p, "end_id");
  p = {};
  p.stop_words = {{1, 60}};
  refused(p, "stop_words");
  p = {};
  p.beam_width = 0;
  refused(p, "beam_width");
}

TEST(SamplingTest, WordListTensorsParseAsFtLaysThemOut) {
  // words [5,7,3], [9,2], [6,2,4,1]: row 0 the ids, row 1 the end offsets padded with -1.
  const std::vector<std::int32_t> flat{5, 7, 3, 9, 2, 6, 2, 4, 1, 3, 5, 9, -1, -1, -1, -1, -1, -1};
  const auto words = parse_word_list(flat, 9, "stop_words_list");
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[0], (std::vector<std::int32_t>{5, 7, 3}));
  EXPECT_EQ(words[1], (std::vector<std::int32_t>{9, 2}));
  EXPECT_EQ(words[2], (std::vector<std::int32_t>{6, 2, 4, 1}));
  EXPECT_TRUE(parse_word_list(std::vector<std::int32_t>{0, -1}, 1, "x").empty());
  EXPECT_THROW(parse_word_list(std::vector<std::int32_t>{1, 2, 3}, 2, "x"), ConfigError);
  EXPECT_THROW(parse_word_list(std::vector<std::int32_t>{1, 2, 3, 1}, 2, "x"), ConfigError);
}

}  // namespace
}  // namespace bignlp::infer
