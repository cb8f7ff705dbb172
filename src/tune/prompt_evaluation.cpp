#include "bignlp/tune/prompt_evaluation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "bignlp/core/error.h"

namespace bignlp::tune {
namespace {

double stddev_of_mean(const std::vector<double>& xs) {
  const auto n = static_cast<double>(xs.size());
  if (xs.size() < 2) return 0.0;
  double mean = 0.0;
  for (double x : xs) mean += x;
  mean /= n;
  double var = 0.0;
  for (double x : xs) var += (x - mean) * (x - mean);
  return std::sqrt(var / (n - 1.0) / n);
}

double perplexity(const std::vector<double>& ll) {
  double mean = 0.0;
  for (double x : ll) mean += x;
  return std::exp(-mean / static_cast<double>(ll.size()));
}

}  // namespace

nlohmann::json PromptEvalResult::metrics_json() const {
  return {{"prompt", {{"ppl", ppl}, {"ppl_stderr", ppl_stderr}, {"acc", acc}, {"acc_stderr", acc_stderr}}}};
}

PromptEvalResult evaluate_prompt_model(LoadedPromptModel& m, const std::vector<std::filesystem::path>& files,
                                       std::int64_t batch_size) {
  PromptEvalResult r;
  PromptDatasetOptions o;
  o.max_seq_length = m.base_max_length;
  o.add_eos = true;
  o.for_train = true;  // answer_start is computed (the harness's dataset is built for training)
  std::vector<TaskTemplate> templates = m.templates;
  for (auto& t : templates) t.answer_only_loss = true;  // the context/continuation split needs answer_start
  const std::vector<PromptExample> examples = load_prompt_examples(files, templates, *m.prompt_tokenizer, o, &r.skipped);
  if (examples.empty()) throw DataError("prompt evaluation: no examples in the prompt dataset files");
  const std::int32_t pad = m.prompt_tokenizer->pad();
  const std::int64_t max_len = m.base_max_length;
  for (std::size_t first = 0; first < examples.size(); first += static_cast<std::size_t>(batch_size)) {
    const std::size_t last = std::min(examples.size(), first + static_cast<std::size_t>(batch_size));
    struct Row {
      std::vector<std::int32_t> tokens;
      std::int64_t cont = 0;
      int task = 0;
    };
    std::vector<Row> rows;
    std::int64_t T = 0;
    for (std::size_t i = first; i < last; ++i) {
      const PromptExample& ex = examples[i];
      Row row;
      row.task = ex.task_id;
      std::vector<std::int32_t> all(ex.ids.begin(), ex.ids.end() - 1);  // without the EOS
      row.cont = static_cast<std::int64_t>(all.size()) - ex.answer_start;
      if (static_cast<std::int64_t>(all.size()) > max_len + 1) all.erase(all.begin(), all.end() - (max_len + 1));
      row.tokens = std::move(all);
      T = std::max<std::int64_t>(T, static_cast<std::int64_t>(row.tokens.size()) - 1);
      rows.push_back(std::move(row));
    }
    const auto B = static_cast<std::int64_t>(rows.size());
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(B * T), pad), labels(tokens.size(), pad), task_ids;
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& t = rows[static_cast<std::size_t>(b)].tokens;
      for (std::size_t k = 0; k + 1 < t.size(); ++k) {
        tokens[static_cast<std::size_t>(b * T) + k] = t[k];
        labels[static_cast<std::size_t>(b * T) + k] = t[k + 1];
      }
      task_ids.push_back(rows[static_cast<std::size_t>(b)].task);
    }
    model::Batch batch;
    batch.tokens = TensorView(tokens.data(), DType::kI32, Shape{B, T});
    batch.labels = TensorView(labels.data(), DType::kI32, Shape{B, T});
    batch.task_ids = TensorView(task_ids.data(), DType::kI32, Shape{B});
    const model::TokenScores s = m.model->score(batch);
    for (std::int64_t b = 0; b < B; ++b) {
      const Row& row = rows[static_cast<std::size_t>(b)];
      const auto len = static_cast<std::int64_t>(row.tokens.size()) - 1;  // label positions of this row
      double ll = 0.0;
      bool greedy = true;
      for (std::int64_t p = len - row.cont; p < len; ++p) {
        const std::size_t i = static_cast<std::size_t>(b * T + p);
        ll += s.logprob[i];
        greedy = greedy && s.argmax[i] == labels[i];
      }
      r.ll.push_back(ll);
      r.is_greedy.push_back(greedy);
    }
  }
  r.examples = static_cast<std::int64_t>(r.ll.size());
  std::vector<double> acc_items;
  for (bool g : r.is_greedy) acc_items.push_back(g ? 1.0 : 0.0);
  double sum = 0.0;
  for (double a : acc_items) sum += a;
  r.acc = sum / static_cast<double>(acc_items.size());
  r.acc_stderr = stddev_of_mean(acc_items);
  r.ppl = perplexity(r.ll);
  // Bootstrap standard error of the perplexity (lm-eval's bootstrap_stderr, fewer resamples).
  std::mt19937_64 gen(1234);
  std::vector<double> boots;
  std::vector<double> sample(r.ll.size());
  for (int it = 0; it < 1000; ++it) {
    for (auto& x : sample) x = r.ll[gen() % r.ll.size()];
    boots.push_back(perplexity(sample));
  }
  double mean = 0.0;
  for (double x : boots) mean += x;
  mean /= static_cast<double>(boots.size());
  double var = 0.0;
  for (double x : boots) var += (x - mean) * (x - mean);
  r.ppl_stderr = std::sqrt(var / static_cast<double>(boots.size() - 1));
  return r;
}

}  // namespace bignlp::tune
