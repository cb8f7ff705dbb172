// Trainer: the training loop of bignlp-train (one rank; parallel ranks build on it), for any model
// family: it is assembled from parts (TrainerParts: model factory, batch sources, evaluator), so
// pre-training, fine-tuning and prompt learning share this one loop.
//
// Per optimizer step: M = GBS / (MBS * DP) micro-batches, each forward+backward with gradient
// scale loss_scale / M (the objective is the mean of micro-batch token means), then the optimizer
// step (unscale, global-norm clip, Adam) with the LR of the scheduler step; a skipped fp16 step
// advances global_step but not the scheduler. consumed_samples = global_step * GBS.
// Every log_every_n_steps: the stdout line (train/metrics.h), TensorBoard scalars and a CSV row.
// Every val_check_interval steps: validation (limit_val_batches global batches from the start of
// the validation split, no dropout) and a checkpoint (top-k by val_loss plus "-last"); at the end
// (max_steps, max_time, or a stop request such as SIGTERM/SIGUSR1) a final checkpoint.
// Resume (exp_manager.resume_if_exists) loads the newest complete checkpoint: weights, Adam
// moments and step, scheduler step, loss-scaler state, consumed samples. Dropout streams and data
// order are functions of the step, so a resumed run continues bit-identically on the CPU.
//
// Parallel ranks (set_parallel): each rank runs fit() with its share of the model. Micro-batch k
// of DP rank d in a step is the global micro-batch j = k*dp + d, i.e. samples [consumed + j*B,
// consumed + (j+1)*B) (Megatron's sampler) with the dropout stream of micro-batch j, so the set of
// micro-batches, their masks and the objective equal those of one rank. With pipeline stages the
// micro-batches run through the 1F1B or interleaved schedule (parallel::PipelineExecutor).
// After the backward passes: sequence-parallel and tied-embedding gradients are completed
// (model::Model::reduce_model_parallel_grads), then averaged over DP in buckets; the buckets of the
// last micro-batch's gradients start while its backward pass still runs. The optimizer is
// distributed over DP for model.optim.name distributed_fused_adam. Rank 0 writes the metric
// lines, TensorBoard, CSV and hparams; checkpoints are written by all (checkpoint/checkpoint.h).
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/model/model.h"
#include "bignlp/parallel/grad_buckets.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/train/batch_source.h"
#include "bignlp/train/training_config.h"

namespace bignlp::train {

/// Builds this rank's model for the parallel context the trainer set up (its options follow the
/// config: sequence parallelism, virtual pipeline size, distributed-optimizer buckets).
using ModelFactory = std::function<std::unique_ptr<model::Model>(const parallel::ParallelContext&)>;

/// Computes the validation metric at `global_step` (the monitored value of top-k checkpoints), or
/// nothing. Called on every rank at the same steps (it may run collectives).
using Evaluator = std::function<std::optional<double>(model::Model& model, std::int64_t global_step)>;

/// The parts a trainer is assembled from; an empty part takes its default from the config: the
/// model from the family registry (TrainingConfig::model_family and model), the batch sources from
/// the GPT datasets of model.data, the evaluator as the mean validation loss over
/// limit_val_batches global batches. The loss is the model family's token cross entropy averaged
/// under the batch's loss_mask (model::Model): an objective that weights or selects tokens
/// (fine-tuning on answers only, prompt learning) is expressed by its batch source's loss_mask.
struct TrainerParts {
  ModelFactory model;
  std::shared_ptr<BatchSource> train_batches;
  std::shared_ptr<BatchSource> valid_batches;  ///< with train_batches: null means no validation data
  Evaluator evaluator;
  /// Sets the weights of a run that does not resume (default: Model::initialize(model.seed));
  /// fine-tuning loads its pre-trained checkpoint here. Called on every rank.
  std::function<void(model::Model&)> initialize_weights;
};

enum class StopReason { kMaxSteps, kMaxTime, kStopRequested };

struct TrainResult {
  StopReason reason = StopReason::kMaxSteps;
  std::int64_t global_step = 0;
  std::int64_t consumed_samples = 0;
  std::int64_t resumed_from_step = -1;        ///< -1: fresh start
  std::vector<double> train_losses;           ///< reduced_train_loss of every step run here
  std::vector<std::pair<std::int64_t, double>> val_losses;  ///< (step, val_loss)
  std::filesystem::path last_checkpoint;
  int dp_buckets = 0;             ///< data-parallel gradient buckets (0 without data parallelism)
  int dp_buckets_overlapped = 0;  ///< of those, started during the last step's backward pass
};

class Trainer {
 public:
  /// ctx: device and allocator for the model (ctx.allocator required). `out` receives the metric
  /// lines (stdout in bignlp-train); the progress bar goes to stderr when it is a terminal.
  Trainer(TrainingConfig config, const Logger& log, const ops::OpContext& ctx, std::FILE* out = stdout,
          TrainerParts parts = {});
  ~Trainer();

  /// Uses these GPT datasets instead of building them from config.data (tests, benchmarks).
  void set_datasets(data::GptDatasetSplits datasets);
  /// A flag polled after every step; non-zero requests a checkpoint and a clean stop (signals).
  void set_stop_flag(const std::atomic<int>* flag) { stop_flag_ = flag; }
  /// Called after every step with the new global step (tests).
  void set_step_callback(std::function<void(std::int64_t)> fn) { on_step_ = std::move(fn); }
  /// Called on rank 0 after every checkpoint save with the "-last" checkpoint (train_end false), and
  /// once when training ends with the final one (train_end true): the .nemo writers of
  /// exp_manager.checkpoint_callback_params.always_save_nemo / save_nemo_on_train_end.
  using CheckpointCallback = std::function<void(const std::filesystem::path& checkpoint, bool train_end)>;
  void set_checkpoint_callback(CheckpointCallback fn) { on_checkpoint_ = std::move(fn); }
  /// Runs this rank's share of a parallel job (the groups must outlive the trainer). The
  /// context's options are taken from the config (sequence_parallel, virtual pipeline size).
  void set_parallel(const parallel::ParallelContext& parallel) { parallel_ = parallel; }

  /// Runs to max_steps (or max_time / a stop request). Throws ConfigError/DataError/IoError.
  TrainResult fit();

  /// The model (valid after fit() started; for tests and tools).
  model::Model* model() { return model_.get(); }

 private:
  struct State;
  struct StepResult;
  /// The batch sources of the parts, or GPT loaders over config.data's datasets.
  void prepare_batches(State& s);
  /// The parallel options from the config, the model, its gradient buckets and the optimizer.
  void build_model(State& s);
  /// Resumes from the newest checkpoint (exp_manager.resume_if_exists) or initialises the weights.
  void resume_or_initialize(State& s, TrainResult& result);
  /// One optimizer step: micro-batches, gradient reduction, optimizer.
  StepResult run_step(State& s, TrainResult& result);
  /// Rank 0's step line, CSV row and TensorBoard scalars.
  void log_step(State& s, const StepResult& step, std::optional<double> val_loss);
  /// The default evaluator: mean validation loss over limit_val_batches global batches.
  std::optional<double> validation_loss(State& s);
  /// Forward and backward of every micro-batch of the step; returns the sum of the micro-batch
  /// losses seen on this rank (0 off the last pipeline stage).
  double run_micro_batches(State& s, double loss_scale);
  /// Sum over pipeline stages, mean over DP ranks: every rank gets the same value.
  double reduce_loss(double local_sum, std::int64_t micro_batches) const;
  bool is_rank0() const { return parallel_.grid.rank() == 0; }
  /// True on every rank when any rank's flag is set (a collective when there are several ranks).
  bool any_rank(bool flag) const;
  /// The gradient-ready hook that feeds data-parallel buckets.
  model::GradReadyHook bucket_hook(parallel::GradBuckets& buckets);
  void save(State& s, std::optional<double> val_loss, TrainResult& result);
  void write_hparams() const;

  TrainingConfig config_;
  Logger log_;
  ops::OpContext ctx_;
  std::FILE* out_;
  TrainerParts parts_;
  std::optional<data::GptDatasetSplits> datasets_;
  const std::atomic<int>* stop_flag_ = nullptr;
  std::function<void(std::int64_t)> on_step_;
  CheckpointCallback on_checkpoint_;
  parallel::ParallelContext parallel_;
  std::unique_ptr<model::Model> model_;
};

}  // namespace bignlp::train
