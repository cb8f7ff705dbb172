#include "bignlp/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/train/checkpoint.h"
#include "bignlp/train/data_loader.h"
#include "bignlp/train/metrics.h"
#include "bignlp/train/optimizer.h"
#include "bignlp/train/tensorboard.h"

namespace fs = std::filesystem;

namespace bignlp::train {

using Clock = std::chrono::steady_clock;

struct Trainer::State {
  std::unique_ptr<AdamOptimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  std::unique_ptr<DynamicLossScaler> scaler;
  std::unique_ptr<GptDataLoader> train_loader, valid_loader;
  std::int64_t global_step = 0;
  std::int64_t scheduler_step = 0;
  std::int64_t consumed_samples = 0;
  std::int64_t last_saved_step = -1;
};

Trainer::Trainer(TrainingConfig config, const Logger& log, const ops::OpContext& ctx, std::FILE* out)
    : config_(std::move(config)), log_(log), ctx_(ctx), out_(out) {
  BIGNLP_CHECK(ctx_.allocator != nullptr, "Trainer needs an OpContext with an allocator");
}

Trainer::~Trainer() = default;

void Trainer::set_datasets(data::GptDatasets datasets) { datasets_ = std::move(datasets); }

void Trainer::write_hparams() const {
  std::string text = config_.hparams_yaml;
  if (text.empty()) {
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

std::optional<double> Trainer::validate(State& s) {
  if (!s.valid_loader) return std::nullopt;
  const std::int64_t gbs = config_.global_batch_size, mbs = config_.micro_batch_size;
  const std::int64_t available = s.valid_loader->size() / gbs;
  std::int64_t batches = config_.limit_val_batches_is_fraction
                             ? static_cast<std::int64_t>(config_.limit_val_batches * static_cast<double>(available))
                             : static_cast<std::int64_t>(config_.limit_val_batches);
  batches = std::min(batches, available);
  if (batches <= 0) return std::nullopt;
  double sum = 0.0;
  std::int64_t count = 0;
  for (std::int64_t b = 0; b < batches; ++b)
    for (std::int64_t m = 0; m < gbs / mbs; ++m) {
      sum += model_->evaluate(s.valid_loader->batch(b * gbs + m * mbs));
      ++count;
    }
  return sum / static_cast<double>(count);
}

void Trainer::save(State& s, std::optional<double> val_loss, TrainResult& result) {
  if (!config_.exp_manager.create_checkpoint_callback || s.last_saved_step == s.global_step) return;
  const fs::path dir = config_.exp_manager.explicit_log_dir / "checkpoints";
  CheckpointState st;
  st.global_step = s.global_step;
  st.consumed_samples = s.consumed_samples;
  st.val_loss = val_loss;
  st.scheduler_step = s.scheduler_step;
  st.optimizer_steps = s.optimizer->steps();
  st.loss_scaler = s.scaler->state();
  st.seed = config_.seed;
  st.model = config_.model;
  st.tokenizer = config_.tokenizer;
  st.tp_size = config_.tensor_model_parallel_size;
  st.pp_size = config_.pipeline_model_parallel_size;
  const auto& em = config_.exp_manager;
  const std::string name = render_checkpoint_name(em.filename, s.global_step, s.consumed_samples, val_loss);
  // "-last": the newest state, replacing the previous one.
  const std::vector<fs::path> before = list_checkpoints(dir);
  const fs::path last = dir / (name + "-last");
  save_checkpoint(last, st, model_->parameters(), s.optimizer.get(), ctx_);
  for (const auto& p : before)
    if (ends_with(p.filename().string(), "-last") && p != last) fs::remove_all(p);
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
    if (keep) {
      save_checkpoint(dir / name, st, model_->parameters(), s.optimizer.get(), ctx_);
      ranked.emplace_back(key, dir / name);
      std::sort(ranked.begin(), ranked.end());
      while (em.save_top_k > 0 && static_cast<int>(ranked.size()) > em.save_top_k) {
        fs::remove_all(ranked.back().second);
        ranked.pop_back();
      }
    }
  }
  s.last_saved_step = s.global_step;
  log_.info("saved checkpoint {} (step {}, consumed_samples {})", last.string(), s.global_step, s.consumed_samples);
}

TrainResult Trainer::fit() {
  config_.validate();
  const auto fit_start = Clock::now();
  const TrainingConfig& c = config_;
  TrainResult result;
  State s;

  if (!datasets_) {
    data::GptDataConfig dc;
    dc.data_prefix = data::parse_data_prefix(c.data.data_prefix);
    dc.splits_string = c.data.splits_string;
    dc.num_samples = data::nemo_gpt_num_samples(c.max_steps, c.global_batch_size,
                                                c.val_check_interval > 0 ? c.val_check_interval : c.max_steps,
                                                c.limit_val_batches, c.limit_val_batches_is_fraction,
                                                c.limit_test_batches);
    dc.seq_length = static_cast<std::int32_t>(c.model.seq_length);
    dc.seed = static_cast<std::uint32_t>(c.seed);
    dc.index_mapping_dir = c.data.index_mapping_dir;
    datasets_ = data::build_gpt_datasets(dc, &log_);
  }
  if (!datasets_->train) throw ConfigError("model.data.splits_string: the training split holds no documents");
  s.train_loader = std::make_unique<GptDataLoader>(datasets_->train, c.micro_batch_size, c.model.seq_length, c.data);
  if (datasets_->valid)
    s.valid_loader = std::make_unique<GptDataLoader>(datasets_->valid, c.micro_batch_size, c.model.seq_length, c.data);

  model_ = std::make_unique<model::GptModel>(c.model, ctx_);
  s.optimizer = std::make_unique<AdamOptimizer>(model_->parameters(), c.optim, ctx_);
  LrScheduleConfig sched = c.sched;
  sched.lr = c.optim.lr;
  sched.max_steps = c.max_steps;
  s.schedule = std::make_unique<LrSchedule>(sched);
  LossScalerConfig scaler = c.loss_scaler;
  scaler.enabled = c.model.precision == model::Precision::kFp16;
  s.scaler = std::make_unique<DynamicLossScaler>(scaler);

  const fs::path log_dir = c.exp_manager.explicit_log_dir;
  const fs::path ckpt_dir = log_dir / "checkpoints";
  std::optional<fs::path> resume;
  if (c.exp_manager.resume_if_exists) {
    resume = find_latest_checkpoint(ckpt_dir);
    if (!resume && !c.exp_manager.resume_ignore_no_checkpoint)
      throw ConfigError(fmt::format("exp_manager.resume_if_exists: no complete checkpoint in '{}' (set "
                                    "exp_manager.resume_ignore_no_checkpoint=True to start fresh)",
                                    ckpt_dir.string()));
  }
  if (resume) {
    const CheckpointState st = read_checkpoint_metadata(*resume);
    load_checkpoint(*resume, model_->parameters(), s.optimizer.get(), ctx_);
    s.global_step = st.global_step;
    s.consumed_samples = st.consumed_samples;
    s.scheduler_step = st.scheduler_step;
    s.scaler->restore(st.loss_scaler);
    s.last_saved_step = st.global_step;
    result.resumed_from_step = st.global_step;
    result.last_checkpoint = *resume;
    log_.info("resumed from {} (step {}, consumed_samples {})", resume->string(), st.global_step, st.consumed_samples);
  } else {
    model_->initialize(c.seed);
  }
  write_hparams();

  TensorBoardWriter tb(log_dir);
  CsvMetricsWriter csv(log_dir / "metrics.csv");
  ProgressBar bar(stderr, c.max_steps);
  const std::int64_t m = c.num_micro_batches(), mbs = c.micro_batch_size, gbs = c.global_batch_size;
  const double flops_per_step = static_cast<double>(gbs) * model::model_flops_per_sequence(c.model);
  log_.info("training {} parameters: {} micro-batches of {} per step, global batch {}, {} steps",
            c.model.num_parameters(), m, mbs, gbs, c.max_steps);

  while (s.global_step < c.max_steps) {
    const auto t0 = Clock::now();
    model_->parameters().zero_grad(ctx_);
    const double loss_scale = s.scaler->scale();
    double loss_sum = 0.0;
    for (std::int64_t k = 0; k < m; ++k) {
      const model::GptBatch batch = s.train_loader->batch(s.consumed_samples + k * mbs);
      const model::DropoutRng rng{c.seed, model::dropout_offset(s.global_step, k, m)};
      loss_sum += model_->train_micro_batch(batch, rng, static_cast<float>(loss_scale / static_cast<double>(m)));
    }
    const double lr = s.schedule->lr(s.scheduler_step);
    const OptimizerStepResult step = s.optimizer->step(lr, loss_scale, c.gradient_clip_val);
    s.scaler->update(step.skipped);
    if (!step.skipped) ++s.scheduler_step;
    if (step.skipped) log_.warn("step {}: non-finite gradients at loss scale {}; step skipped", s.global_step + 1, loss_scale);
    ++s.global_step;
    s.consumed_samples += gbs;
    const double step_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const double loss = loss_sum / static_cast<double>(m);
    result.train_losses.push_back(loss);

    std::optional<double> val_loss;
    const bool validate_now = c.val_check_interval > 0 && s.global_step % c.val_check_interval == 0;
    if (validate_now) {
      val_loss = validate(s);
      if (val_loss) result.val_losses.emplace_back(s.global_step, *val_loss);
    }
    if (s.global_step % c.log_every_n_steps == 0 || val_loss || s.global_step == c.max_steps) {
      StepMetrics sm;
      sm.global_step = s.global_step;
      sm.consumed_samples = s.consumed_samples;
      sm.reduced_train_loss = loss;
      sm.lr = lr;
      sm.train_step_timing = step_seconds;
      sm.tokens_per_second = static_cast<double>(gbs * c.model.seq_length) / step_seconds;
      sm.tflops_per_device = flops_per_step / step_seconds / c.world_size() / 1e12;
      if (c.peak_tflops_per_device) sm.mfu = sm.tflops_per_device / *c.peak_tflops_per_device;
      if (s.scaler->enabled()) sm.loss_scale = loss_scale;
      sm.val_loss = val_loss;
      sm.grad_norm = step.grad_norm;
      bar.clear();
      std::fprintf(out_, "%s\n", format_step_line(sm).c_str());
      std::fflush(out_);
      csv.write(sm);
      tb.add_scalar("reduced_train_loss", loss, s.global_step);
      tb.add_scalar("lr", lr, s.global_step);
      tb.add_scalar("global_step", static_cast<double>(s.global_step), s.global_step);
      tb.add_scalar("consumed_samples", static_cast<double>(s.consumed_samples), s.global_step);
      tb.add_scalar("train_step_timing", step_seconds, s.global_step);
      tb.add_scalar("train_step_timing in s", step_seconds, s.global_step);
      tb.add_scalar("tokens_per_second", sm.tokens_per_second, s.global_step);
      tb.add_scalar("tflops_per_device", sm.tflops_per_device, s.global_step);
      tb.add_scalar("grad_norm", step.grad_norm, s.global_step);
      if (sm.loss_scale) tb.add_scalar("loss_scale", *sm.loss_scale, s.global_step);
      if (val_loss) tb.add_scalar("val_loss", *val_loss, s.global_step);
      tb.flush();
    }
    bar.update(s.global_step, loss, step_seconds);
    if (validate_now) save(s, val_loss, result);
    if (on_step_) on_step_(s.global_step);

    if (stop_flag_ != nullptr && stop_flag_->load() != 0) {
      result.reason = StopReason::kStopRequested;
      break;
    }
    if (c.max_time_seconds > 0.0 &&
        std::chrono::duration<double>(Clock::now() - fit_start).count() >= c.max_time_seconds) {
      result.reason = StopReason::kMaxTime;
      break;
    }
  }
  bar.finish();
  if (result.reason != StopReason::kMaxSteps || s.last_saved_step != s.global_step) {
    if (result.reason == StopReason::kStopRequested) log_.info("stop requested: saving a checkpoint at step {}", s.global_step);
    if (result.reason == StopReason::kMaxTime) log_.info("trainer.max_time reached: saving a checkpoint at step {}", s.global_step);
    save(s, std::nullopt, result);
  }
  result.global_step = s.global_step;
  result.consumed_samples = s.consumed_samples;
  return result;
}

}  // namespace bignlp::train
