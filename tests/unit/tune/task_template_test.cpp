// Task templates, tokenization with pseudo tokens, truncation and the collate (tuning.md §3.2,
// §3.3), on the GPT-2 BPE tables (data/bpe) and the worked example of §3.9.
#include <gtest/gtest.h>

#include <filesystem>

#include "bignlp/core/error.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/tune/task_template.h"

namespace fs = std::filesystem;
using namespace bignlp;
using namespace bignlp::tune;

namespace {

std::shared_ptr<const data::Tokenizer> gpt2() {
  const fs::path vocab = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/vocab.json";
  const fs::path merges = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/merges.txt";
  if (!fs::exists(vocab) || !fs::exists(merges)) return nullptr;
  data::TokenizerSpec spec;
  spec.type = "GPT2BPETokenizer";
  spec.vocab_file = vocab;
  spec.merge_file = merges;
  return data::load_tokenizer(spec);
}

TaskTemplate squad_template() {
  TaskTemplate t;
  t.taskname = "squad";
  t.prompt_template = "<|VIRTUAL_PROMPT_0|>Context: {context} Question: {question} Answer: {answer}";
  t.fields = template_fields(t.prompt_template);
  t.total_virtual_tokens = 10;
  t.virtual_token_splits = {10};
  t.truncate_field = "context";
  t.answer_field = "answer";
  t.answer_only_loss = true;
  return t;
}

const nlohmann::json kDoc = {{"taskname", "squad"},
                             {"context", "The sky is blue."},
                             {"question", "What color is the sky?"},
                             {"answer", "blue"}};

TEST(TaskTemplate, FieldsAndFill) {
  EXPECT_EQ(template_fields("<|VIRTUAL_PROMPT_0|> Q: {question}? C: {context} A: {answer}"),
            (std::vector<std::string>{"question", "context", "answer"}));
  TaskTemplate t = squad_template();
  t.virtual_token_splits = {3};
  t.total_virtual_tokens = 3;
  EXPECT_EQ(fill_template(t, kDoc),
            "<prompt_0><prompt_1><prompt_2>Context: The sky is blue. Question: What color is the sky? Answer: blue");
  // A missing field becomes "" and the text is stripped (the inference form).
  nlohmann::json no_answer = kDoc;
  no_answer.erase("answer");
  EXPECT_EQ(fill_template(t, no_answer),
            "<prompt_0><prompt_1><prompt_2>Context: The sky is blue. Question: What color is the sky? Answer:");
  TaskTemplate two = t;
  two.prompt_template = "<|VIRTUAL_PROMPT_0|>{question}<|VIRTUAL_PROMPT_1|>";
  two.fields = template_fields(two.prompt_template);
  two.virtual_token_splits = {2, 1};
  EXPECT_EQ(fill_template(two, {{"question", "Q"}}), "<prompt_0><prompt_1>Q<prompt_2>");
}

TEST(TaskTemplate, SanityChecks) {
  TaskTemplate t = squad_template();
  EXPECT_NO_THROW(validate_template(t, 2048, true, "x"));
  TaskTemplate bad = t;
  bad.virtual_token_splits = {4, 6};
  EXPECT_THROW(validate_template(bad, 2048, true, "x"), ConfigError);  // two splits, one marker
  bad = t;
  bad.virtual_token_splits = {9};
  EXPECT_THROW(validate_template(bad, 2048, true, "x"), ConfigError);  // sum differs
  bad = t;
  bad.prompt_template = "<|VIRTUAL_PROMPT_0|>{answer} {context}";
  EXPECT_THROW(validate_template(bad, 2048, true, "x"), ConfigError);  // answer not last
  EXPECT_NO_THROW(validate_template(bad, 2048, false, "x"));            // not checked for inference
  EXPECT_THROW(validate_template(t, 10, true, "x"), ConfigError);       // 10 virtual tokens >= max length 10
}

TEST(TaskTemplate, WorkedExampleIdsAndLossMask) {
  const auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "data/bpe (GPT-2 vocab) not present: run scripts/fetch_demo_data.sh";
  PromptTokenizer pt(tok, 10);
  ASSERT_EQ(pt.pseudo_start(), 50257);
  ASSERT_EQ(pt.pad(), 50256);
  const TaskTemplate t = squad_template();
  auto ex = build_example(t, kDoc, pt, PromptDatasetOptions{}, "doc");
  ASSERT_TRUE(ex.has_value());
  const std::vector<std::int32_t> expected = {50257, 50258, 50259, 50260, 50261, 50262, 50263, 50264, 50265, 50266,
                                              21947, 25,    383,   6766,  318,   4171,  13,    18233, 25,    1867,
                                              3124,  318,   262,   6766,  30,    23998, 25,    4171,  50256};
  EXPECT_EQ(ex->ids, expected);
  EXPECT_EQ(ex->answer_start, 27);
  const PromptBatch b = collate_prompt_batch({&*ex}, {t}, pt);
  ASSERT_EQ(b.seq, 28);
  EXPECT_EQ(std::vector<std::int32_t>(b.tokens.begin(), b.tokens.end()),
            std::vector<std::int32_t>(expected.begin(), expected.end() - 1));
  EXPECT_EQ(std::vector<std::int32_t>(b.labels.begin(), b.labels.end()),
            std::vector<std::int32_t>(expected.begin() + 1, expected.end()));
  for (std::int64_t i = 0; i < 28; ++i) EXPECT_EQ(b.loss_mask[i], (i == 26 || i == 27) ? 1.0f : 0.0f) << i;
  // Without answer_only_loss every non-virtual label counts (the template text too).
  TaskTemplate all = t;
  all.answer_only_loss = false;
  auto ex2 = build_example(all, kDoc, pt, PromptDatasetOptions{}, "doc");
  const PromptBatch b2 = collate_prompt_batch({&*ex2}, {all}, pt);
  for (std::int64_t i = 0; i < 28; ++i) EXPECT_EQ(b2.loss_mask[i], i >= 9 ? 1.0f : 0.0f) << i;
}

TEST(TaskTemplate, TruncatesTheContextFromItsEnd) {
  const auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "data/bpe (GPT-2 vocab) not present";
  PromptTokenizer pt(tok, 10);
  const TaskTemplate t = squad_template();
  nlohmann::json doc = kDoc;
  doc["context"] = "one two three four five six seven eight nine ten eleven twelve";  // 12 tokens
  PromptDatasetOptions o;
  const auto full = build_example(t, doc, pt, o, "doc");
  ASSERT_TRUE(full.has_value());
  const std::vector<std::int32_t> context = tok->encode(" one two three four five six seven eight nine ten eleven twelve");
  ASSERT_EQ(context.size(), 12u);
  o.max_seq_length = static_cast<std::int64_t>(full->ids.size()) - 5;
  const auto cut = build_example(t, doc, pt, o, "doc");
  ASSERT_TRUE(cut.has_value());
  ASSERT_EQ(cut->ids.size(), full->ids.size() - 5);
  // The context lost its last 5 tokens; everything after it is unchanged.
  std::vector<std::int32_t> want = full->ids;
  const auto at = std::search(want.begin(), want.end(), context.begin(), context.end()) - want.begin();
  want.erase(want.begin() + at + 7, want.begin() + at + 12);
  EXPECT_EQ(cut->ids, want);
  EXPECT_EQ(cut->answer_start, static_cast<std::int64_t>(cut->ids.size()) - 2);
  // Too long and nothing to cut: skipped.
  TaskTemplate no_cut = t;
  no_cut.truncate_field.clear();
  EXPECT_FALSE(build_example(no_cut, doc, pt, o, "doc").has_value());
}

TEST(TaskTemplate, BadDocumentsNameTheLine) {
  const auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "data/bpe (GPT-2 vocab) not present";
  PromptTokenizer pt(tok, 10);
  nlohmann::json extra = kDoc;
  extra["title"] = "x";
  try {
    build_example(squad_template(), extra, pt, PromptDatasetOptions{}, "f.jsonl:3");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("title"), std::string::npos);
  }
  nlohmann::json no_answer = kDoc;
  no_answer.erase("answer");
  EXPECT_THROW(build_example(squad_template(), no_answer, pt, PromptDatasetOptions{}, "f:1"), DataError);
}

TEST(PromptTokenizer, PseudoTokensAreSingleIdsAndStripAdjacentSpace) {
  const auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "data/bpe (GPT-2 vocab) not present";
  PromptTokenizer pt(tok, 3);
  EXPECT_EQ(pt.encode("<prompt_0><prompt_2> Question"), (std::vector<std::int32_t>{50257, 50259, 24361}));
  EXPECT_EQ(pt.encode("<prompt_0> Question"), pt.encode("<prompt_0>Question"));
  // Beyond the registered pseudo tokens: plain text.
  EXPECT_EQ(pt.encode("<prompt_3>"), tok->encode("<prompt_3>"));
}

}  // namespace
