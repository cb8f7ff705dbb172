#include "bignlp/finetune/seq2seq_validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/eval/generation.h"
#include "bignlp/infer/engine.h"
#include "bignlp/finetune/seq2seq_batches.h"

namespace bignlp::finetune {
namespace fs = std::filesystem;

std::string python_json_string(const std::string& text) {
  // nlohmann's ensure_ascii output equals Python's: \" \\ \b \f \n \r \t, other controls and
  // everything above 0x7F as lower-case \uXXXX (surrogate pairs above the BMP).
  return nlohmann::json(text).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
}

namespace {

std::string python_json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += python_json_string(items[i]);
  }
  return out + "]";
}

/// One row per line, each line a JSON string (a rank's part of a predictions file).
void write_rows(const fs::path& path, const std::vector<std::string>& inputs, const std::vector<std::string>& preds,
                const std::vector<std::string>& labels) {
  std::string text;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    text += python_json_string(inputs[i]) + "\t" + python_json_string(preds[i]) + "\t" + python_json_string(labels[i]) + "\n";
  write_file_atomic(path, text);
}

void read_rows(const fs::path& path, std::vector<std::string>& inputs, std::vector<std::string>& preds,
               std::vector<std::string>& labels) {
  for (const std::string& line : split(read_file(path), '\n')) {
    if (line.empty()) continue;
    const std::vector<std::string> cols = split(line, '\t');
    if (cols.size() != 3) throw DataError(fmt::format("{}: malformed predictions row", path.string()));
    inputs.push_back(nlohmann::json::parse(cols[0]).get<std::string>());
    preds.push_back(nlohmann::json::parse(cols[1]).get<std::string>());
    labels.push_back(nlohmann::json::parse(cols[2]).get<std::string>());
  }
}

}  // namespace

Seq2SeqValidation::Seq2SeqValidation(std::vector<ValidationSet> sets, Seq2SeqValidationOptions options,
                                     std::shared_ptr<const data::Tokenizer> tokenizer,
                                     std::shared_ptr<const data::T5Vocabulary> vocab,
                                     const parallel::ParallelContext& parallel, const Logger& log, std::FILE* out)
    : sets_(std::move(sets)),
      options_(std::move(options)),
      tokenizer_(std::move(tokenizer)),
      vocab_(std::move(vocab)),
      parallel_(parallel),
      log_(log),
      out_(out) {
  if (options_.micro_batch_size <= 0 || options_.global_batch_size <= 0 ||
      options_.global_batch_size % options_.micro_batch_size != 0)
    throw ConfigError(fmt::format("model.data.validation_ds.global_batch_size: {} is not a positive multiple of "
                                  "micro_batch_size {}",
                                  options_.global_batch_size, options_.micro_batch_size));
}

std::string Seq2SeqValidation::text_of(std::span<const std::int32_t> ids) const {
  const data::T5Vocabulary& v = *vocab_;
  std::vector<std::int32_t> keep;
  for (std::int32_t id : ids) {
    if (id == v.eos) break;
    const bool special = id == v.pad || id == v.bos || id == v.cls || id == v.sep || id == v.mask || id < 0 ||
                         id >= v.base_size;  // sentinels and the appended BOS/EOS
    if (!special) keep.push_back(id);
  }
  return tokenizer_->decode(keep);
}

Seq2SeqValidationResult Seq2SeqValidation::run(model::Model& model, std::int64_t global_step) {
  const int dp = parallel_.dp_size(), d = parallel_.dp_rank();
  const std::int64_t mbs = options_.micro_batch_size, gbs = options_.global_batch_size;
  Seq2SeqValidationResult result;
  for (const ValidationSet& set : sets_) {
    const std::int64_t n = set.data->size();
    const std::int64_t available = (n + gbs - 1) / gbs;
    std::int64_t batches =
        options_.limit_val_batches_is_fraction
            ? static_cast<std::int64_t>(std::ceil(options_.limit_val_batches * static_cast<double>(available)))
            : static_cast<std::int64_t>(options_.limit_val_batches);
    batches = std::clamp<std::int64_t>(batches, 0, available);
    // The batch source only collates (no epochs, no shuffle).
    Seq2SeqBatchSource source(set.data, mbs, 1, options_.pad, false, 0, 1);
    std::vector<std::string> inputs, preds, labels;
    std::vector<eval::GenerationItem> items;
    // [loss sum, micro-batches, matches, examples]
    float sums[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (std::int64_t g = 0; g < batches; ++g) {
      const std::int64_t first = g * gbs, last = std::min(n, first + gbs);
      for (std::int64_t j = 0; first + j * mbs < last; ++j) {
        if (j % dp != d) continue;
        std::vector<std::int64_t> ex;
        for (std::int64_t i = first + j * mbs; i < std::min(last, first + (j + 1) * mbs); ++i) ex.push_back(i);
        const model::Batch batch = source.collate(ex);
        sums[0] += model.evaluate(batch);
        sums[1] += 1.0f;
        for (std::int64_t i : ex) {
          const auto& tgt = set.data->tgt(i);
          inputs.push_back(text_of(set.data->src(i)));
          labels.push_back(text_of(std::span<const std::int32_t>(tgt).subspan(1)));
          items.push_back(eval::GenerationItem{set.data->src(i), {labels.back()}});
        }
      }
    }
    // Greedy decoding of this rank's examples on the inference engine (every tensor-parallel rank
    // of the group runs the same requests).
    {
      infer::EngineOptions eo;
      eo.max_batch_size = mbs;
      infer::Engine engine(model, eo);
      eval::GenerationOptions go;
      go.max_new_tokens = options_.max_decode_tokens;
      go.end_id = vocab_->eos;
      go.detokenize = [this](const std::vector<std::int32_t>& ids) { return text_of(ids); };
      const eval::GenerationReport report = eval::run_generation_task(engine, items, go);
      for (const eval::GenerationPrediction& p : report.predictions) {
        preds.push_back(p.text);
        sums[2] += static_cast<float>(p.exact_string_match);
        sums[3] += 1.0f;
      }
    }
    if (parallel_.dp != nullptr) parallel_.dp->all_reduce(TensorView(sums, DType::kF32, Shape{4}), comm::ReduceOp::kSum);
    const double loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
    result.set_losses.push_back(loss);
    if (sums[3] > 0) result.set_exact_string_match.push_back(sums[2] / sums[3]);
    result.inputs.push_back(std::move(inputs));
    result.preds.push_back(std::move(preds));
    result.labels.push_back(std::move(labels));
  }
  double loss_sum = 0.0, em_sum = 0.0;
  for (double l : result.set_losses) loss_sum += l;
  for (double e : result.set_exact_string_match) em_sum += e;
  result.loss = sets_.empty() ? 0.0 : loss_sum / static_cast<double>(sets_.size());
  if (!std::isfinite(result.loss)) result.loss = 1e5;
  if (!sets_.empty() && result.set_exact_string_match.size() == sets_.size()) {
    const double em = em_sum / static_cast<double>(sets_.size());
    result.exact_string_match = std::isfinite(em) ? em : 0.0;
  }

  const bool rank0 = parallel_.grid.rank() == 0;
  if (rank0) {
    std::string line = fmt::format("validation global_step={} validation_loss={:.6f}", global_step, result.loss);
    if (result.exact_string_match) line += fmt::format(" validation_exact_string_match={:.6f}", *result.exact_string_match);
    for (std::size_t k = 0; k < sets_.size(); ++k) {
      line += fmt::format(" validation_loss_{}={:.6f}", sets_[k].name, result.set_losses[k]);
      if (k < result.set_exact_string_match.size())
        line += fmt::format(" validation_exact_string_match_{}={:.6f}", sets_[k].name, result.set_exact_string_match[k]);
    }
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }

  if (options_.write_predictions_to_file) {
    // Each data-parallel group's first rank (TP rank 0) holds the rows of its DP rank.
    const bool writer = parallel_.tp_rank() == 0 && parallel_.grid.pp_rank() == 0;
    for (std::size_t k = 0; k < sets_.size(); ++k) {
      const fs::path file = options_.output_file_path_prefix.string() + "_validation_" + sets_[k].name +
                            "_inputs_preds_labels.json";
      const fs::path part = file.string() + fmt::format(".rank{}.part", d);
      if (writer && dp > 1) write_rows(part, result.inputs[k], result.preds[k], result.labels[k]);
      if (parallel_.world != nullptr) parallel_.world->barrier();
      if (rank0) {
        std::vector<std::string> in, pr, lb;
        if (dp > 1) {
          for (int r = 0; r < dp; ++r) {
            const fs::path p = file.string() + fmt::format(".rank{}.part", r);
            read_rows(p, in, pr, lb);
            fs::remove(p);
          }
        } else {
          in = result.inputs[k];
          pr = result.preds[k];
          lb = result.labels[k];
        }
        write_file_atomic(file, "{\"inputs\": " + python_json_list(in) + ", \"preds\": " + python_json_list(pr) +
                                    ", \"labels\": " + python_json_list(lb) + "}");
        log_.info("wrote {} predictions to {}", pr.size(), file.string());
      }
      if (parallel_.world != nullptr) parallel_.world->barrier();
    }
  }
  return result;
}

}  // namespace bignlp::finetune
