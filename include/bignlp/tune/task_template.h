// Prompt-learning task templates and the GPT prompt-learning dataset (tuning.md §3.2, §3.3).
//
// A task template (model.task_templates[i]) turns one jsonl document into token ids:
//   fields      = the names in `{...}` of prompt_template, in order (prompt_template_fields)
//   text        = template with each field replaced by the document's value (plain replace; a
//                 field the document lacks becomes "" and the whole text is stripped), then marker
//                 <|VIRTUAL_PROMPT_i|> replaced by the pseudo tokens <prompt_s>..<prompt_{s+split_i-1}>
//   ids         = PromptTokenizer::encode(text) (+ [eos] when add_eos), the pseudo tokens being
//                 ids start, start+1, ... after the base vocabulary (start = tokenizer vocab size)
//   truncation  = when len > max_seq_length: the truncate_field's own ids (with a leading space when
//                 the template has one before it) lose their last len - max ids, spliced at their
//                 first occurrence in ids (no occurrence: DataError, NeMo's "Subsequence not found")
//   answer_start= len(ids) - (len(ids(answer)) + 1 when add_eos)   (answer_only_loss, training)
// Collate: rows right-padded with pad (the tokenizer's pad, else unk, else eos); loss_mask 1 from
// answer_start (answer_only_loss) or on every non-virtual id, 0 on padding; then the shift
// tokens = ids[:, :-1], labels = ids[:, 1:], loss_mask = loss_mask[:, 1:].
// NeMo version followed: 1.11 (the 22.08 launcher's), whose sanity checks abort on a bad template.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/data/tokenizer.h"

namespace bignlp::tune {

struct TaskTemplate {
  std::string taskname;
  std::string prompt_template;
  std::vector<std::string> fields;  ///< prompt_template_fields (from the template when not given)
  std::int64_t total_virtual_tokens = 0;
  std::vector<std::int64_t> virtual_token_splits;
  std::string truncate_field;  ///< "" for null
  std::string answer_field;    ///< "" for null
  bool answer_only_loss = false;
  int task_id = 0;             ///< position in model.task_templates (task_id_num)
};

/// The `{name}` fields of a template, in order of appearance (regex \{(.*?)\}).
std::vector<std::string> template_fields(const std::string& prompt_template);

/// NeMo's sanity checks of a template (§3.2 step 3) for sequences of at most max_seq_length;
/// throws ConfigError naming `where` (the template's key path).
void validate_template(const TaskTemplate& t, std::int64_t max_seq_length, bool for_train, const std::string& where);

/// The base tokenizer plus the pseudo tokens <prompt_0>..<prompt_{n-1}> as special tokens with
/// ids vocab_size().. (the text between them is encoded separately; whitespace next to a pseudo
/// token is stripped, as Hugging Face's slow tokenizer does for special tokens).
class PromptTokenizer {
 public:
  PromptTokenizer(std::shared_ptr<const data::Tokenizer> base, std::int64_t max_virtual_tokens);
  std::vector<std::int32_t> encode(const std::string& text) const;
  std::int32_t pseudo_start() const { return start_; }
  std::int64_t num_pseudo() const { return n_; }
  std::int32_t eos() const;
  std::int32_t pad() const;  ///< pad, else unk, else eos (GPT-2: 50256)
  const data::Tokenizer& base() const { return *base_; }
  /// "<prompt_k>"
  static std::string pseudo_token(std::int64_t k);

 private:
  std::shared_ptr<const data::Tokenizer> base_;
  std::int32_t start_;
  std::int64_t n_;
};

struct PromptExample {
  std::vector<std::int32_t> ids;
  int task_id = 0;
  std::int64_t answer_start = -1;  ///< -1: not computed
};

struct PromptDatasetOptions {
  std::int64_t max_seq_length = 2048;
  std::int64_t min_seq_length = 1;
  bool add_bos = false;
  bool add_eos = true;
  bool for_train = true;
};

/// The text a document becomes (fields filled, markers replaced), before tokenization.
std::string fill_template(const TaskTemplate& t, const nlohmann::json& doc);

/// One document as ids; nullopt when its length falls outside [min, max] (skipped). `where` names
/// the file and line for errors (DataError for a document the template cannot take).
std::optional<PromptExample> build_example(const TaskTemplate& t, const nlohmann::json& doc, const PromptTokenizer& tok,
                                           const PromptDatasetOptions& o, const std::string& where);

/// The examples of jsonl files, each document going to the template of its "taskname" (unknown
/// tasknames are DataErrors naming file:line). Counts skipped documents in *skipped.
std::vector<PromptExample> load_prompt_examples(const std::vector<std::filesystem::path>& files,
                                                const std::vector<TaskTemplate>& templates, const PromptTokenizer& tok,
                                                const PromptDatasetOptions& o, std::int64_t* skipped = nullptr);

/// A collated micro-batch, batch-first, T = longest row - 1 (the shift).
struct PromptBatch {
  std::int64_t batch = 0, seq = 0;
  std::vector<std::int32_t> tokens, labels;  ///< (B, T)
  std::vector<float> loss_mask;              ///< (B, T)
  std::vector<std::int32_t> task_ids;        ///< (B)
};

/// §3.3 collate of `rows` (answer_only_loss per row's template).
PromptBatch collate_prompt_batch(const std::vector<const PromptExample*>& rows, const std::vector<TaskTemplate>& templates,
                                 const PromptTokenizer& tok);

}  // namespace bignlp::tune
