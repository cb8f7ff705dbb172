// Evaluation of a fine-tuned T5/mT5 model (the evaluation stage's t5/* and mt5/* presets, e.g.
// evaluation=t5/squad, mt5/xquad; tuning.md §7): NeMo's megatron_t5_seq2seq_eval.py followed, for
// SQuAD, by the launcher's metric step.
//
//   model        model.restore_from_path: the fine-tuned .nemo (or a checkpoint directory /
//                checkpoints folder), made ready for model.tensor_model_parallel_size as in
//                fine-tuning (finetune/fine_tuning.h prepare_pretrained, under exp_manager.explicit_log_dir)
//   validation   model.data.validation_ds through Seq2SeqValidation (loss, greedy decoding, exact
//                string match per set; the predictions file when write_predictions_to_file)
//   metric step  when the config has model.ground_truth_file_path (t5/squad): every prediction,
//                stripped and with newlines as spaces, against line i of that JSON-lines file's
//                "answer" (a string or a list), SQuAD EM/F1 (formats.md §7.4, eval/generation.h) over
//                the first validation set; printed as {"exact_match": .., "f1": .., "total": ..} and
//                written to <run.results_dir>/results/squad_metric.json. A null ground truth scores
//                against the validation set's target lines (one answer per question).
#pragma once

#include <cstdio>

#include "bignlp/config/view.h"
#include "bignlp/core/logging.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::finetune {

/// Runs the evaluation (every rank). Throws ConfigError naming the key, DataError/IoError.
void run_seq2seq_evaluation(const config::ConfigView& cfg, const Logger& log, const ops::OpContext& ctx,
                            const parallel::ParallelContext& parallel, std::FILE* out = stdout);

}  // namespace bignlp::finetune
