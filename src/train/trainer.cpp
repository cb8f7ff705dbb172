#include "bignlp/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/model/micro_batch_runner.h"
#include "bignlp/model/model_family.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"
#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/train/data_loader.h"
#include "bignlp/train/t5_data_loader.h"
#include "bignlp/train/metrics.h"
#include "bignlp/train/optimizer.h"
#include "bignlp/train/tensorboard.h"
#include "bignlp/train/wandb.h"
#include "bignlp/parallel/grad_buckets.h"

namespace fs = std::filesystem;

namespace bignlp::train {

using Clock = std::chrono::steady_clock;
using checkpoint::CheckpointState;
using checkpoint::find_latest_checkpoint;
using checkpoint::list_checkpoints;
using checkpoint::load_checkpoint;
using checkpoint::read_checkpoint_metadata;
using checkpoint::render_checkpoint_name;
using checkpoint::save_checkpoint;

struct Trainer::State {
  std::unique_ptr<parallel::GradBuckets> buckets;  // data-parallel reduction (DP > 1)
  std::unique_ptr<AdamOptimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  std::unique_ptr<DynamicLossScaler> scaler;
  std::shared_ptr<BatchSource> train_batches, valid_batches;
  std::int64_t global_step = 0;
  std::int64_t scheduler_step = 0;
  std::int64_t consumed_samples = 0;
  std::int64_t last_saved_step = -1;
  std::int64_t nonfinite_steps = 0;  // consecutive steps skipped for non-finite gradients
  std::unique_ptr<TensorBoardWriter> tb;  // rank 0, exp_manager.create_tensorboard_logger
  std::unique_ptr<WandbOfflineRun> wandb;  // rank 0, exp_manager.create_wandb_logger
  std::unique_ptr<CsvMetricsWriter> csv;  // rank 0
};

struct Trainer::StepResult {
  double loss = 0.0;
  double lr = 0.0;
  double seconds = 0.0;
  double loss_scale = 1.0;
  OptimizerStepResult optimizer;
};

Trainer::Trainer(TrainingConfig config, const Logger& log, const ops::OpContext& ctx, std::FILE* out, TrainerParts parts)
    : config_(std::move(config)), log_(log), ctx_(ctx), out_(out), parts_(std::move(parts)) {
  BIGNLP_CHECK(ctx_.allocator != nullptr, "Trainer needs an OpContext with an allocator");
}

Trainer::~Trainer() = default;

void Trainer::set_datasets(data::GptDatasetSplits datasets) { datasets_ = std::move(datasets); }

void Trainer::write_hparams() const {
  std::string text = config_.hparams_yaml;
  if (text.empty() && !config_.family_config.is_null()) {
    // Another family's config (JSON is YAML's flow form) with the batch sizes and seed.
    nlohmann::json cfg = config_.family_config;
    cfg["micro_batch_size"] = config_.micro_batch_size;
    cfg["global_batch_size"] = config_.global_batch_size;
    cfg["seed"] = config_.seed;
    text = "cfg: " + cfg.dump() + "\n";
  } else if (text.empty()) {
    const model::GptConfig& m = config_.model;
    text = fmt::format(
        "cfg:\n  micro_batch_size: {}\n  global_batch_size: {}\n  encoder_seq_length: {}\n  max_position_embeddings: "
        "{}\n  num_layers: {}\n  hidden_size: {}\n  ffn_hidden_size: {}\n  num_attention_heads: {}\n  kv_channels: {}\n"
        "  init_method_std: {}\n  hidden_dropout: {}\n  attention_dropout: {}\n  layernorm_epsilon: {}\n"
        "  make_vocab_size_divisible_by: {}\n  precision: {}\n  seed: {}\n",
        config_.micro_batch_size, config_.global_batch_size, m.seq_length, m.positions(), m.num_layers, m.hidden_size,
        m.ffn_size(), m.num_attention_heads, m.head_size(), m.init_method_std, m.hidden_dropout, m.attention_dropout,
        m.layernorm_epsilon, m.make_vocab_size_divisible_by, model::precision_name(m.precision), config_.seed);
  }
  write_file_atomic(config_.exp_manager.explicit_log_dir / "hparams.yaml", text);
}

std::optional<double> Trainer::validation_loss(State& s) {
  if (!s.valid_batches) return std::nullopt;
  const std::int64_t gbs = config_.global_batch_size, mbs = config_.micro_batch_size;
  const std::int64_t available = s.valid_batches->size() / gbs;
  std::int64_t batches = config_.limit_val_batches_is_fraction
                             ? static_cast<std::int64_t>(config_.limit_val_batches * static_cast<double>(available))
                             : static_cast<std::int64_t>(config_.limit_val_batches);
  batches = std::min(batches, available);
  if (batches <= 0) return std::nullopt;
  const std::int64_t m = config_.num_micro_batches();
  const int dp = parallel_.dp_size(), d = parallel_.dp_rank();
  model::MicroBatchRunner runner(*model_, mbs, config_.model.seq_length);
  double sum = 0.0;
  for (std::int64_t b = 0; b < batches; ++b)
    sum += runner.evaluate(m, [&](std::int64_t k) { return s.valid_batches->batch(b * gbs + (k * dp + d) * mbs); });
  return reduce_loss(sum, batches * m);
}

model::GradReadyHook Trainer::bucket_hook(parallel::GradBuckets& buckets) {
  return [this, &buckets](model::Parameter& p) {
    // Gradients that still need a TP or embedding-group sum are marked after it (fit()).
    if (!model_->needs_model_parallel_reduction(p)) buckets.mark_ready(p.offset);
  };
}

double Trainer::run_micro_batches(State& s, double loss_scale) {
  const TrainingConfig& c = config_;
  const std::int64_t m = c.num_micro_batches(), mbs = c.micro_batch_size;
  const int dp = parallel_.dp_size(), d = parallel_.dp_rank();
  const std::int64_t consumed = s.consumed_samples, step = s.global_step;
  // Local micro-batch k is the step's global micro-batch k*dp + d.
  const auto batch = [&](std::int64_t k) { return s.train_batches->batch(consumed + (k * dp + d) * mbs); };
  const auto rng = [=, &c](std::int64_t k) {
    return model::DropoutRng{c.seed, model::dropout_offset(step, k * dp + d, m * dp)};
  };
  const float grad_scale = static_cast<float>(loss_scale / static_cast<double>(m));
  model::MicroBatchRunner runner(*model_, mbs, c.model.seq_length);
  return runner.train(m, batch, rng, grad_scale, s.buckets ? bucket_hook(*s.buckets) : model::GradReadyHook{});
}

double Trainer::reduce_loss(double local_sum, std::int64_t micro_batches) const {
  if (parallel_.pp == nullptr && parallel_.dp == nullptr) return local_sum / static_cast<double>(micro_batches);
  float v = static_cast<float>(local_sum / static_cast<double>(micro_batches));
  const TensorView t(&v, DType::kF32, Shape{1});
  if (parallel_.pp != nullptr) parallel_.pp->all_reduce(t, comm::ReduceOp::kSum);  // only the last stage has it
  if (parallel_.dp != nullptr) parallel_.dp->all_reduce(t, comm::ReduceOp::kAvg);
  return v;
}

bool Trainer::any_rank(bool flag) const {
  if (parallel_.world == nullptr) return flag;
  std::int32_t v = flag ? 1 : 0;
  parallel_.world->all_reduce(TensorView(&v, DType::kI32, Shape{1}), comm::ReduceOp::kMax);
  return v != 0;
}

void Trainer::save(State& s, std::optional<double> val_loss, TrainResult& result) {
  if (!config_.exp_manager.create_checkpoint_callback || s.last_saved_step == s.global_step) return;
  // Never save a diverged state (it would replace "-last" and be resumed from): every rank's weights
  // must be finite. One sum of squares over the compute copies; an overflow to inf counts too.
  float sq = 0.0f;
  {
    std::vector<TensorView> values;
    for (const auto& p : model_->parameters().params()) values.push_back(p.value);
    Buffer out(*ctx_.allocator, DType::kF32, Shape{1});
    ops::sum_squares_multi(ctx_, values, out.view());
    ops::copy(ctx_, out.view(), TensorView(&sq, DType::kF32, Shape{1}));
  }
  if (any_rank(!std::isfinite(sq)))
    throw RuntimeError(fmt::format(
        "step {}: the weights are not finite (or so large that their sum of squares overflows): training has "
        "diverged. Stopping without saving, so the checkpoints in {} stay as they were{}; lower the learning rate or "
        "resume from an earlier checkpoint",
        s.global_step, config_.exp_manager.explicit_log_dir.string(),
        s.last_saved_step >= 0 ? fmt::format(" (the last was saved at step {})", s.last_saved_step) : ""));
  const fs::path dir = config_.exp_manager.explicit_log_dir / "checkpoints";
  CheckpointState st;
  st.global_step = s.global_step;
  st.consumed_samples = s.consumed_samples;
  st.val_loss = val_loss;
  st.scheduler_step = s.scheduler_step;
  st.optimizer_steps = s.optimizer->steps();
  st.loss_scaler = s.scaler->state();
  st.seed = config_.seed;
  st.family = std::string(model_->family());
  st.model = model_->config_json();
  st.tokenizer = config_.tokenizer;
  st.tp_size = config_.tensor_model_parallel_size();
  st.pp_size = config_.pipeline_model_parallel_size;
  st.virtual_pp_size = config_.virtual_pipeline_model_parallel_size;
  st.model_config = config_.model_config;
  const auto& em = config_.exp_manager;
  const std::string name = render_checkpoint_name(em.filename, s.global_step, s.consumed_samples, val_loss, em.monitor);
  // Every rank takes part in each save; only rank 0 deletes, between barriers, so all ranks see
  // the same directory when they decide what to save.
  comm::Communicator* world = parallel_.world;
  const auto sync = [world] {
    if (world != nullptr) world->barrier();
  };
  // "-last": the newest state, replacing the previous one.
  const std::vector<fs::path> before = list_checkpoints(dir);
  sync();
  const fs::path last = dir / (name + "-last");
  save_checkpoint(last, st, model_->parameters(), s.optimizer.get(), ctx_, parallel_);
  if (is_rank0())
    for (const auto& p : before)
      if (ends_with(p.filename().string(), "-last") && p != last) remove_directory_atomic(p);
  sync();
  result.last_checkpoint = last;
  // Top-k by the monitored validation loss.
  if (val_loss && em.save_top_k != 0) {
    std::vector<std::pair<double, fs::path>> ranked;
    for (const auto& p : list_checkpoints(dir)) {
      if (ends_with(p.filename().string(), "-last")) continue;
      const auto meta = read_checkpoint_metadata(p);
      if (meta.val_loss) ranked.emplace_back(em.mode == "min" ? *meta.val_loss : -*meta.val_loss, p);
    }
    const double key = em.mode == "min" ? *val_loss : -*val_loss;
    std::sort(ranked.begin(), ranked.end());
    const bool keep = em.save_top_k < 0 || static_cast<int>(ranked.size()) < em.save_top_k || key < ranked.back().first;
    sync();
    if (keep) {
      save_checkpoint(dir / name, st, model_->parameters(), s.optimizer.get(), ctx_, parallel_);
      ranked.emplace_back(key, dir / name);
      std::sort(ranked.begin(), ranked.end());
      while (em.save_top_k > 0 && static_cast<int>(ranked.size()) > em.save_top_k) {
        if (is_rank0()) remove_directory_atomic(ranked.back().second);
        ranked.pop_back();
      }
      sync();
    }
  }
  s.last_saved_step = s.global_step;
  if (is_rank0())
    log_.info("saved checkpoint {} (step {}, consumed_samples {})", last.string(), s.global_step, s.consumed_samples);
  if (is_rank0() && on_checkpoint_) on_checkpoint_(last, false);
}

void Trainer::prepare_batches(State& s) {
  const TrainingConfig& c = config_;
  if (parts_.train_batches) {
    s.train_batches = parts_.train_batches;
    s.valid_batches = parts_.valid_batches;
    return;
  }
  if (c.model_family == "t5") {
    // T5/mT5 span corruption (t5_data_loader.h); rank 0 builds the samples-mapping caches first.
    if (parallel_.world != nullptr && !is_rank0()) parallel_.world->barrier();
    T5BatchSources t5 = build_t5_batch_sources(c, &log_);
    if (parallel_.world != nullptr && is_rank0()) parallel_.world->barrier();
    s.train_batches = std::move(t5.train);
    s.valid_batches = std::move(t5.valid);
    return;
  }
  if (!datasets_) {
    data::GptDatasetSplitsConfig dc;
    dc.data_prefix = data::parse_data_prefix(c.data.data_prefix);
    dc.splits_string = c.data.splits_string;
    dc.num_samples = data::nemo_gpt_num_samples(c.max_steps, c.global_batch_size,
                                                c.val_check_interval > 0 ? c.val_check_interval : c.max_steps,
                                                c.limit_val_batches, c.limit_val_batches_is_fraction,
                                                c.limit_test_batches);
    dc.seq_length = static_cast<std::int32_t>(c.model.seq_length);
    dc.seed = static_cast<std::uint32_t>(c.seed);
    dc.index_mapping_dir = c.data.index_mapping_dir;
    dc.vocab_size = c.model.vocab_size;  // token ids checked against the tokenizer before training
    // Rank 0 builds the index caches first; the others then read them instead of racing to write.
    if (parallel_.world != nullptr && !is_rank0()) parallel_.world->barrier();
    datasets_ = data::build_gpt_dataset_splits(dc, &log_);
    if (parallel_.world != nullptr && is_rank0()) parallel_.world->barrier();
  }
  if (!datasets_->train) throw ConfigError("model.data.splits_string: the training split holds no documents");
  s.train_batches = std::make_shared<GptDataLoader>(datasets_->train, c.micro_batch_size, c.model.seq_length, c.data);
  if (datasets_->valid)
    s.valid_batches = std::make_shared<GptDataLoader>(datasets_->valid, c.micro_batch_size, c.model.seq_length, c.data);
}

void Trainer::build_model(State& s) {
  const TrainingConfig& c = config_;
  parallel_.options.sequence_parallel = c.sequence_parallel && parallel_.tp != nullptr;
  parallel_.options.virtual_pipeline_size = c.virtual_pipeline_model_parallel_size;
  if (parallel_.options.sequence_parallel) parallel_.options.async_tp_allreduce = false;
  BIGNLP_CHECK(parallel_.grid.world_size() == c.world_size() && parallel_.tp_size() == c.tensor_model_parallel_size() &&
                   parallel_.pp_size() == c.pipeline_model_parallel_size,
               "the parallel context ({} ranks, {}) does not match the config ({} ranks, TP {} PP {})",
               parallel_.grid.world_size(), parallel_.grid.to_string(), c.world_size(), c.tensor_model_parallel_size(),
               c.pipeline_model_parallel_size);
  const bool distributed_optimizer = c.optim.name == "distributed_fused_adam" && parallel_.dp != nullptr;
  const auto bucket = std::max<std::int64_t>(1, static_cast<std::int64_t>(c.grad_bucket_mb * 1024 * 1024 / 4));
  // The store keeps fp32 master weights only for this DP rank's shards of the buckets below.
  parallel_.options.distributed_optimizer_bucket_numel = distributed_optimizer ? bucket : 0;
  if (parts_.model) {
    model_ = parts_.model(parallel_);
  } else {
    model_ = model::ModelFamilyRegistry::builtin().build(
        c.model_family, c.family_config.is_null() ? nlohmann::json(c.model) : c.family_config, ctx_, parallel_);
  }
  BIGNLP_CHECK(model_ != nullptr, "the trainer's model factory returned no model");
  if (parallel_.dp != nullptr) {
    std::vector<parallel::FlatRange> ranges = model_->parameters().trainable_ranges();
    s.buckets = std::make_unique<parallel::GradBuckets>(
        parallel_.dp, ctx_, std::move(ranges), bucket,
        distributed_optimizer ? parallel::GradBuckets::Mode::kReduceScatter : parallel::GradBuckets::Mode::kAllReduce);
  }
  s.optimizer = std::make_unique<AdamOptimizer>(model_->parameters(), c.optim, ctx_, parallel_,
                                                distributed_optimizer ? s.buckets.get() : nullptr);
  LrScheduleConfig sched = c.sched;
  sched.lr = c.optim.lr;
  sched.max_steps = c.max_steps;
  s.schedule = std::make_unique<LrSchedule>(sched);
  LossScalerConfig scaler = c.loss_scaler;
  scaler.enabled = c.model.precision == model::Precision::kFp16;
  s.scaler = std::make_unique<DynamicLossScaler>(scaler);
}

void Trainer::resume_or_initialize(State& s, TrainResult& result) {
  const TrainingConfig& c = config_;
  const fs::path ckpt_dir = c.exp_manager.explicit_log_dir / "checkpoints";
  // Leftovers of saves, replacements and removals that were killed midway (".tmp-*", never listed):
  // safe to drop now.
  std::error_code ec;
  if (fs::is_directory(ckpt_dir, ec))
    for (const auto& e : fs::directory_iterator(ckpt_dir, ec))
      if (e.is_directory() && starts_with(e.path().filename().string(), StagedDirectory::kStagingPrefix)) {
        log_.warn("removing the incomplete checkpoint {}", e.path().string());
        fs::remove_all(e.path(), ec);
      }
  std::optional<fs::path> resume;
  std::vector<fs::path> candidates;
  if (c.exp_manager.resume_if_exists) {
    candidates = list_checkpoints(ckpt_dir);
    if (candidates.empty() && !c.exp_manager.resume_ignore_no_checkpoint)
      throw ConfigError(fmt::format("exp_manager.resume_if_exists: no complete checkpoint in '{}' (set "
                                    "exp_manager.resume_ignore_no_checkpoint=True to start fresh)",
                                    ckpt_dir.string()));
  }
  if (candidates.empty()) {
    if (parts_.initialize_weights)
      parts_.initialize_weights(*model_);
    else
      model_->initialize(c.seed);
    return;
  }
  // Newest first; a damaged checkpoint (size, checksum or non-finite values, on any rank: the ranks
  // agree) is skipped with a warning and the next older one is tried. Loading an intact one assigns
  // every weight and moment, so nothing of a failed attempt survives.
  std::vector<std::string> damaged;
  for (auto it = candidates.rbegin(); it != candidates.rend() && !resume; ++it) {
    std::string error;
    try {
      load_checkpoint(*it, model_->parameters(), s.optimizer.get(), ctx_, parallel_, &log_);
    } catch (const DataError& e) {
      error = e.what();
    } catch (const IoError& e) {  // a shard file missing or unreadable
      error = e.what();
    }
    if (!any_rank(!error.empty())) {
      resume = *it;
      break;
    }
    if (error.empty()) error = "damaged on another rank (see that rank's log)";
    log_.warn("checkpoint {} is damaged, not resuming from it: {}", it->string(), error);
    damaged.push_back(fmt::format("{}: {}", it->string(), error));
  }
  if (!resume)
    throw DataError(fmt::format("exp_manager.resume_if_exists: every checkpoint in '{}' is damaged:\n  {}\n(move "
                                "them aside to start fresh)",
                                ckpt_dir.string(), join(damaged, "\n  ")));
  if (!damaged.empty() && is_rank0())
    log_.warn("resuming from {}, the newest intact checkpoint ({} newer one(s) damaged)", resume->string(),
              damaged.size());
  const CheckpointState st = read_checkpoint_metadata(*resume);
  s.global_step = st.global_step;
  s.consumed_samples = st.consumed_samples;
  s.scheduler_step = st.scheduler_step;
  s.scaler->restore(st.loss_scaler);
  s.last_saved_step = st.global_step;
  result.resumed_from_step = st.global_step;
  result.last_checkpoint = *resume;
  if (is_rank0())
    log_.info("resumed from {} (step {}, consumed_samples {})", resume->string(), st.global_step, st.consumed_samples);
}

Trainer::StepResult Trainer::run_step(State& s, TrainResult& result) {
  const TrainingConfig& c = config_;
  const auto t0 = Clock::now();
  StepResult r;
  model_->parameters().zero_grad(ctx_);
  r.loss_scale = s.scaler->scale();
  if (s.buckets) s.buckets->set_buffer(model_->parameters().flat_grad());
  const double loss_sum = run_micro_batches(s, r.loss_scale);
  model_->reduce_model_parallel_grads();
  if (s.buckets) {
    for (auto& p : model_->parameters().params())
      if (model_->needs_model_parallel_reduction(p)) s.buckets->mark_ready(p.offset);
    s.buckets->finish();
    result.dp_buckets = static_cast<int>(s.buckets->buckets().size());
    result.dp_buckets_overlapped = s.buckets->overlapped_last_step();
    if (s.global_step == 0 && is_rank0())
      log_.info("data-parallel gradient reduction: {} buckets, {} started during the backward pass", result.dp_buckets,
                result.dp_buckets_overlapped);
  }
  r.lr = s.schedule->lr(s.scheduler_step);
  r.optimizer = s.optimizer->step(r.lr, r.loss_scale, c.gradient_clip_val);
  s.scaler->update(r.optimizer.skipped);
  if (!r.optimizer.skipped) ++s.scheduler_step;
  if (r.optimizer.skipped && is_rank0())
    log_.warn("step {}: non-finite gradients at loss scale {}; step skipped", s.global_step + 1, r.loss_scale);
  s.nonfinite_steps = r.optimizer.skipped ? s.nonfinite_steps + 1 : 0;
  ++s.global_step;
  s.consumed_samples += c.global_batch_size;
  r.loss = reduce_loss(loss_sum, c.num_micro_batches());
  ops::synchronize(ctx_);  // on a GPU the step's last kernels (the Adam update) count in its time
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

void Trainer::log_step(State& s, const StepResult& step, std::optional<double> val_loss) {
  const TrainingConfig& c = config_;
  StepMetrics sm;
  sm.global_step = s.global_step;
  sm.consumed_samples = s.consumed_samples;
  sm.reduced_train_loss = step.loss;
  sm.lr = step.lr;
  sm.train_step_timing = step.seconds;
  sm.tokens_per_second = static_cast<double>(c.global_batch_size * c.model.seq_length) / step.seconds;
  sm.tflops_per_device = static_cast<double>(c.global_batch_size) * model_->flops_per_sample() / step.seconds /
                         c.world_size() / 1e12;
  if (c.peak_tflops_per_device) sm.mfu = sm.tflops_per_device / *c.peak_tflops_per_device;
  if (s.scaler->enabled()) sm.loss_scale = step.loss_scale;
  sm.val_loss = val_loss;
  sm.grad_norm = step.optimizer.grad_norm;
  std::fprintf(out_, "%s\n", format_step_line(sm).c_str());
  std::fflush(out_);
  s.csv->write(sm);
  // The same scalars to every logger.
  std::vector<std::pair<std::string, double>> scalars = {
      {"reduced_train_loss", step.loss},
      {"lr", step.lr},
      {"global_step", static_cast<double>(s.global_step)},
      {"consumed_samples", static_cast<double>(s.consumed_samples)}};
  if (c.exp_manager.log_step_timing) {
    scalars.emplace_back("train_step_timing", step.seconds);
    scalars.emplace_back("train_step_timing in s", step.seconds);
  }
  scalars.emplace_back("tokens_per_second", sm.tokens_per_second);
  scalars.emplace_back("tflops_per_device", sm.tflops_per_device);
  scalars.emplace_back("grad_norm", step.optimizer.grad_norm);
  if (sm.loss_scale) scalars.emplace_back("loss_scale", *sm.loss_scale);
  if (val_loss) scalars.emplace_back("val_loss", *val_loss);
  if (s.tb) {
    for (const auto& [tag, value] : scalars) s.tb->add_scalar(tag, value, s.global_step);
    s.tb->flush();
  }
  if (s.wandb) s.wandb->log(s.global_step, scalars);
}

TrainResult Trainer::fit() {
  config_.validate(/*needs_data=*/!parts_.train_batches && !datasets_);
  const auto fit_start = Clock::now();
  const TrainingConfig& c = config_;
  TrainResult result;
  State s;
  prepare_batches(s);
  build_model(s);
  resume_or_initialize(s, result);
  // Metrics, TensorBoard and hparams come from rank 0 only.
  if (is_rank0()) {
    write_hparams();
    if (c.exp_manager.create_tensorboard_logger)
      s.tb = std::make_unique<TensorBoardWriter>(c.exp_manager.explicit_log_dir);
    if (c.exp_manager.wandb) {
      s.wandb = std::make_unique<WandbOfflineRun>(*c.exp_manager.wandb);
      log_.info("W&B: logging offline to {} (run {})", s.wandb->run_dir().string(), s.wandb->run_id());
    }
    s.csv = std::make_unique<CsvMetricsWriter>(c.exp_manager.explicit_log_dir / "metrics.csv");
  }
  ProgressBar bar(is_rank0() && c.enable_progress_bar ? stderr : nullptr, c.max_steps);
  if (is_rank0())
    log_.info("training {} parameters: {} micro-batches of {} per step and data-parallel rank, global batch {}, {} "
              "steps on {} ranks ({})",
              model_->num_parameters(), c.num_micro_batches(), c.micro_batch_size, c.global_batch_size, c.max_steps,
              parallel_.grid.world_size(), parallel_.grid.to_string());

  while (s.global_step < c.max_steps) {
    const StepResult step = run_step(s, result);
    result.train_losses.push_back(step.loss);
    // Every rank skips the same steps (the skip follows the global gradient norm), so all stop here.
    if (c.max_consecutive_nonfinite_steps > 0 && s.nonfinite_steps >= c.max_consecutive_nonfinite_steps) {
      throw RuntimeError(fmt::format(
          "{} steps in a row (to step {}) had non-finite gradients (last loss {}): training has diverged. Stopping "
          "without saving, so the checkpoints in {} stay as they were{}; lower the learning rate or resume from an "
          "earlier checkpoint",
          s.nonfinite_steps, s.global_step, step.loss, c.exp_manager.explicit_log_dir.string(),
          s.last_saved_step >= 0 ? fmt::format(" (the last was saved at step {})", s.last_saved_step) : ""));
    }
    std::optional<double> val_loss;
    const bool validate_now = c.val_check_interval > 0 && s.global_step % c.val_check_interval == 0;
    if (validate_now) {
      val_loss = parts_.evaluator ? parts_.evaluator(*model_, s.global_step) : validation_loss(s);
      if (val_loss) result.val_losses.emplace_back(s.global_step, *val_loss);
    }
    if (is_rank0() && (s.global_step % c.log_every_n_steps == 0 || val_loss || s.global_step == c.max_steps)) {
      bar.clear();
      log_step(s, step, val_loss);
    }
    bar.update(s.global_step, step.loss, step.seconds);
    if (validate_now) save(s, val_loss, result);
    if (on_step_) on_step_(s.global_step);

    // Every rank must stop at the same step: the decisions are combined over the world.
    if (any_rank(stop_flag_ != nullptr && stop_flag_->load() != 0)) {
      result.reason = StopReason::kStopRequested;
      break;
    }
    if (c.max_time_seconds > 0.0 &&
        any_rank(std::chrono::duration<double>(Clock::now() - fit_start).count() >= c.max_time_seconds)) {
      result.reason = StopReason::kMaxTime;
      break;
    }
  }
  bar.finish();
  if (result.reason != StopReason::kMaxSteps || s.last_saved_step != s.global_step) {
    if (result.reason == StopReason::kStopRequested && is_rank0())
      log_.info("stop requested: saving a checkpoint at step {}", s.global_step);
    if (result.reason == StopReason::kMaxTime && is_rank0())
      log_.info("trainer.max_time reached: saving a checkpoint at step {}", s.global_step);
    save(s, std::nullopt, result);
  }
  result.global_step = s.global_step;
  result.consumed_samples = s.consumed_samples;
  if (is_rank0() && on_checkpoint_ && !result.last_checkpoint.empty()) on_checkpoint_(result.last_checkpoint, true);
  if (s.wandb) {
    s.wandb->finish(0);
    log_.info("W&B: the offline run is complete; upload it with: {}", s.wandb->sync_command());
  }
  return result;
}

}  // namespace bignlp::train
