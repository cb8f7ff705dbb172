#include "bignlp/finetune/seq2seq_evaluation.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/eval/generation.h"
#include "bignlp/finetune/fine_tuning.h"
#include "bignlp/finetune/seq2seq_validation.h"
#include "bignlp/model/model_family.h"
#include "bignlp/model/t5_config.h"

namespace bignlp::finetune {
namespace fs = std::filesystem;

namespace {

/// The "answer" of every line of the ground-truth JSON-lines file (a string or a list of strings).
std::vector<std::vector<std::string>> read_ground_truth(const fs::path& path, const std::string& key) {
  if (!fs::exists(path))
    throw ConfigError(fmt::format("{}: '{}' does not exist (the SQuAD ground truth of the prompt-learning data "
                                  "preparation; set it to null to score against the validation targets)",
                                  key, path.string()));
  std::vector<std::vector<std::string>> out;
  int lineno = 0;
  for (const std::string& line : split(read_file(path), '\n')) {
    ++lineno;
    if (trim(line).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw DataError(fmt::format("{}:{}: not JSON ({})", path.string(), lineno, e.what()));
    }
    if (!j.is_object() || !j.contains("answer"))
      throw DataError(fmt::format("{}:{}: no \"answer\"", path.string(), lineno));
    std::vector<std::string> answers;
    if (j["answer"].is_string()) {
      answers.push_back(j["answer"].get<std::string>());
    } else if (j["answer"].is_array()) {
      for (const auto& a : j["answer"]) {
        if (!a.is_string()) throw DataError(fmt::format("{}:{}: \"answer\" holds a non-string", path.string(), lineno));
        answers.push_back(a.get<std::string>());
      }
    } else {
      throw DataError(fmt::format("{}:{}: \"answer\" is not a string or a list", path.string(), lineno));
    }
    out.push_back(std::move(answers));
  }
  return out;
}

/// fine_tuning_metric_calc.py's preparation of a prediction: strip(), newlines as spaces.
std::string clean_prediction(const std::string& text) {
  std::string s(trim(text));
  for (char& ch : s)
    if (ch == '\n') ch = ' ';
  return s;
}

}  // namespace

void run_seq2seq_evaluation(const config::ConfigView& cfg, const Logger& log, const ops::OpContext& ctx,
                            const parallel::ParallelContext& parallel, std::FILE* out) {
  FineTuningConfig f;
  f.restore_from_path = cfg.get<std::string>("model.restore_from_path");
  f.training.model.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  f.training.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  if (f.training.pipeline_model_parallel_size != 1)
    throw ConfigError(fmt::format("{}: T5 pipeline parallelism is not built yet; evaluate with 1",
                                  cfg.full_path("model.pipeline_model_parallel_size")));
  f.training.exp_manager.explicit_log_dir = cfg.get<std::string>("exp_manager.explicit_log_dir");
  const model::Precision precision = model::parse_precision(cfg.get_or<std::string>("trainer.precision", "32"));
  f.validation_ds = bind_seq2seq_data(cfg, "model.data.validation_ds", true);
  std::optional<fs::path> ground_truth;
  // The metric step runs for configs with the key (t5/squad), null or not.
  const bool has_gt_key = cfg.node("model").contains("ground_truth_file_path");
  if (auto g = cfg.find<std::string>("model.ground_truth_file_path")) ground_truth = *g;

  const fs::path ckpt = prepare_pretrained(f, parallel, log);
  const checkpoint::CheckpointState st = checkpoint::read_checkpoint_metadata(ckpt);
  model::T5Config t = st.model.get<model::T5Config>();
  t.tensor_model_parallel_size = f.training.tensor_model_parallel_size();
  t.precision = precision;
  auto model = model::ModelFamilyRegistry::builtin().build("t5", nlohmann::json(t), ctx, parallel);
  checkpoint::load_checkpoint(ckpt, model->parameters(), nullptr, ctx, parallel);
  const TokenizerAndVocab tv = tokenizer_of(st, ckpt);

  std::vector<ValidationSet> sets;
  for (std::size_t k = 0; k < f.validation_ds.src_files.size(); ++k) {
    data::SequenceToSequenceOptions o;
    o.max_src_seq_length = f.validation_ds.max_src_seq_length;
    o.max_tgt_seq_length = f.validation_ds.max_tgt_seq_length;
    o.bos = tv.vocab->bos;
    o.eos = tv.vocab->eos;
    sets.push_back(ValidationSet{f.validation_ds.name(k),
                                 std::make_shared<const data::SequenceToSequenceDataset>(
                                     f.validation_ds.src_files[k], f.validation_ds.tgt_files[k], *tv.tokenizer, o)});
  }
  const auto first_set = sets.front().data;
  Seq2SeqValidationOptions vo;
  vo.micro_batch_size = f.validation_ds.micro_batch_size;
  vo.global_batch_size = f.validation_ds.global_batch_size;
  vo.pad = tv.vocab->pad;
  vo.write_predictions_to_file = f.validation_ds.write_predictions_to_file;
  vo.output_file_path_prefix = f.validation_ds.output_file_path_prefix;
  Seq2SeqValidation validation(std::move(sets), vo, tv.tokenizer, tv.vocab, parallel, log, out);
  const Seq2SeqValidationResult r = validation.run(*model, 0);

  if (!has_gt_key || parallel.grid.rank() != 0) return;
  // The metric step over the first set (rank 0 holds every row when DP is 1; with DP > 1 the
  // predictions file holds them).
  std::vector<std::string> preds = r.preds.front();
  if (parallel.dp_size() > 1) {
    if (!f.validation_ds.write_predictions_to_file)
      throw ConfigError(fmt::format("{}: the SQuAD metric over several data-parallel ranks reads the predictions file: "
                                    "set it to True",
                                    cfg.full_path("model.data.validation_ds.write_predictions_to_file")));
    const fs::path file = f.validation_ds.output_file_path_prefix.string() + "_validation_" + f.validation_ds.name(0) +
                          "_inputs_preds_labels.json";
    preds = nlohmann::json::parse(read_file(file)).at("preds").get<std::vector<std::string>>();
  }
  std::vector<std::vector<std::string>> answers;
  if (ground_truth) {
    answers = read_ground_truth(*ground_truth, cfg.full_path("model.ground_truth_file_path"));
  } else {
    for (std::int64_t i = 0; i < first_set->size(); ++i) answers.push_back({first_set->tgt_text(i)});
    log.info("{} is null: scoring against the validation targets", cfg.full_path("model.ground_truth_file_path"));
  }
  if (answers.size() < preds.size())
    throw DataError(fmt::format("{}: {} answers for {} predictions (line i answers prediction i)",
                                ground_truth ? ground_truth->string() : std::string("the validation targets"),
                                answers.size(), preds.size()));
  std::vector<eval::GenerationPrediction> scored;
  for (std::size_t i = 0; i < preds.size(); ++i) scored.push_back(eval::score_prediction(clean_prediction(preds[i]), answers[i]));
  const eval::GenerationScores s = eval::aggregate(scored);
  const nlohmann::json j = {{"exact_match", s.exact_match}, {"f1", s.f1}, {"total", s.total}};
  std::fprintf(out, "%s\n", j.dump().c_str());
  std::fflush(out);
  const fs::path metric_file = cfg.get<std::string>("run.results_dir") + "/results/squad_metric.json";
  write_file_atomic(metric_file, j.dump() + "\n");
  log.info("SQuAD exact match {:.2f}, F1 {:.2f} over {} questions ({})", s.exact_match, s.f1, s.total,
           metric_file.string());
}

}  // namespace bignlp::finetune
