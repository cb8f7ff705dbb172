#include "bignlp/finetune/fine_tuning.h"

#include <fmt/format.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/metadata.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/sequence_to_sequence_dataset.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/export/nemo.h"
#include "bignlp/finetune/seq2seq_batches.h"
#include "bignlp/finetune/seq2seq_validation.h"
#include "bignlp/model/t5_config.h"
#include "bignlp/train/config_binding.h"

namespace bignlp::finetune {
namespace fs = std::filesystem;
using config::ConfigView;

std::string Seq2SeqDataConfig::name(std::size_t k) const {
  return k < names.size() ? names[k] : fmt::format("dataloader{}", k);
}

namespace {

std::string where(const ConfigView& cfg, const std::string& key) {
  const config::Provenance* p = cfg.provenance(key);
  return p ? p->error_prefix() : std::string();
}

[[noreturn]] void refuse(const ConfigView& cfg, const std::string& key, const std::string& why) {
  throw ConfigError(fmt::format("{}{}: {}", where(cfg, key), cfg.full_path(key), why));
}

/// A file key that is a string or a list of strings.
std::vector<fs::path> paths_of(const ConfigView& cfg, const std::string& key) {
  const config::ConfigNode n = cfg.get<config::ConfigNode>(key);
  std::vector<fs::path> out;
  if (n.is_missing()) refuse(cfg, key, "is ??? (mandatory): set it to a text file with one example per line");
  for (const std::string& s : cfg.string_list(key)) out.emplace_back(s);
  if (out.empty()) refuse(cfg, key, "names no file");
  return out;
}

Seq2SeqDataConfig bind_data(const ConfigView& cfg, const std::string& section, bool validation) {
  const auto k = [&](const char* key) { return section + "." + key; };
  Seq2SeqDataConfig d;
  d.src_files = paths_of(cfg, k("src_file_name"));
  d.tgt_files = paths_of(cfg, k("tgt_file_name"));
  if (d.src_files.size() != d.tgt_files.size())
    refuse(cfg, k("tgt_file_name"), fmt::format("names {} files but src_file_name names {}", d.tgt_files.size(),
                                                d.src_files.size()));
  cfg.mark_used(k("names"));  // null: dataloader<k>
  if (cfg.has(k("names"))) d.names = cfg.string_list(k("names"));
  if (!d.names.empty() && d.names.size() != d.src_files.size())
    refuse(cfg, k("names"), fmt::format("has {} names for {} datasets", d.names.size(), d.src_files.size()));
  d.global_batch_size = cfg.get<std::int64_t>(k("global_batch_size"));
  d.micro_batch_size = cfg.get<std::int64_t>(k("micro_batch_size"));
  d.shuffle = cfg.get_or<bool>(k("shuffle"), !validation);
  d.max_src_seq_length = cfg.get_or<std::int64_t>(k("max_src_seq_length"), 512);
  d.max_tgt_seq_length = cfg.get_or<std::int64_t>(k("max_tgt_seq_length"), 128);
  d.drop_last = cfg.get_or<bool>(k("drop_last"), !validation);
  for (const char* key : {"num_workers", "pin_memory"}) cfg.mark_used(k(key));
  if (validation) {
    d.write_predictions_to_file = cfg.get_or<bool>(k("write_predictions_to_file"), false);
    if (auto p = cfg.find<std::string>(k("output_file_path_prefix"))) d.output_file_path_prefix = *p;
    if (d.write_predictions_to_file && d.output_file_path_prefix.empty())
      refuse(cfg, k("output_file_path_prefix"), "is null but write_predictions_to_file is True: set a path prefix");
    d.metric = cfg.get_or<std::string>(k("metric.name"), "exact_string_match");
    if (d.metric != "exact_string_match")
      refuse(cfg, k("metric.name"), fmt::format("'{}' is not built; only exact_string_match is", d.metric));
    for (const char* key : {"metric.average", "metric.num_classes", "metric.class_labels", "metric.labels_are_strings"})
      cfg.mark_used(k(key));
    for (const char* key : {"metric.average", "metric.num_classes", "metric.class_labels"})
      if (cfg.has(k(key)) && !cfg.node(k(key)).is_null())
        refuse(cfg, k(key), "applies to classification metrics only; exact_string_match takes null");
    if (auto v = cfg.find<bool>(k("metric.labels_are_strings")); v && *v)
      refuse(cfg, k("metric.labels_are_strings"), "applies to classification metrics only");
    if (!d.shuffle) cfg.mark_used(k("shuffle"));
    if (d.drop_last) refuse(cfg, k("drop_last"), "True is not supported for validation: every example is validated");
  } else {
    if (d.src_files.size() > 1)
      refuse(cfg, k("src_file_name"), "several training files (concat sampling) are not built: give one file");
    for (const char* key : {"concat_sampling_technique", "concat_sampling_temperature", "concat_sampling_probabilities"})
      cfg.mark_used(k(key));
    if (!d.drop_last) refuse(cfg, k("drop_last"), "False is not supported for training (a step is a whole global batch)");
  }
  return d;
}

/// exp_manager.* of the fine-tuning presets (the monitored metric is validation_<metric>).
void bind_exp_manager(const ConfigView& cfg, FineTuningConfig& f) {
  auto& em = f.training.exp_manager;
  em.explicit_log_dir = cfg.get<std::string>("exp_manager.explicit_log_dir");
  em.resume_if_exists = cfg.get_or<bool>("exp_manager.resume_if_exists", true);
  em.resume_ignore_no_checkpoint = cfg.get_or<bool>("exp_manager.resume_ignore_no_checkpoint", true);
  em.create_checkpoint_callback = cfg.get_or<bool>("exp_manager.create_checkpoint_callback", true);
  const std::string metric_key = "validation_" + f.validation_ds.metric;
  em.monitor = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.monitor", metric_key);
  if (em.monitor != metric_key)
    refuse(cfg, "exp_manager.checkpoint_callback_params.monitor",
           fmt::format("'{}' cannot be monitored; fine-tuning monitors {}", em.monitor, metric_key));
  em.mode = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.mode", "max");
  if (em.mode != "max" && em.mode != "min")
    refuse(cfg, "exp_manager.checkpoint_callback_params.mode", fmt::format("'{}' must be max or min", em.mode));
  em.save_top_k = cfg.get_or<int>("exp_manager.checkpoint_callback_params.save_top_k", 5);
  em.filename = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.filename",
                                        "megatron_t5--{" + metric_key + ":.3f}-{step}");
  f.save_nemo_on_train_end = cfg.get_or<bool>("exp_manager.checkpoint_callback_params.save_nemo_on_train_end", true);
  f.nemo_name = cfg.get_or<std::string>("exp_manager.name", "megatron_t5");
  for (const char* key :
       {"exp_manager.exp_dir", "exp_manager.create_wandb_logger", "exp_manager.wandb_logger_kwargs",
        "exp_manager.create_tensorboard_logger", "exp_manager.log_step_timing", "exp_manager.step_timing_kwargs",
        "exp_manager.checkpoint_callback_params.always_save_nemo", "exp_manager.checkpoint_callback_params.save_last",
        "exp_manager.checkpoint_callback_params.model_parallel_size",
        // the best checkpoint is what save_nemo_on_train_end packs (see run_fine_tuning)
        "exp_manager.checkpoint_callback_params.save_best_model"})
    cfg.mark_used(key);
}

void barrier(const parallel::ParallelContext& parallel) {
  if (parallel.world != nullptr) parallel.world->barrier();
}

/// Runs `fn` on rank 0 while the others wait; an error on rank 0 is rethrown there after the
/// barrier so no rank hangs.
template <typename Fn>
void on_rank0(const parallel::ParallelContext& parallel, Fn&& fn) {
  std::exception_ptr error;
  if (parallel.grid.rank() == 0) {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  }
  barrier(parallel);
  if (error) std::rethrow_exception(error);
}

}  // namespace


TokenizerAndVocab tokenizer_of(const checkpoint::CheckpointState& st, const fs::path& checkpoint_dir) {
  int sentinels = 100;
  if (st.model_config.is_object() && st.model_config.contains("tokenizer") &&
      st.model_config["tokenizer"].contains("num_sentinel_tokens") &&
      st.model_config["tokenizer"]["num_sentinel_tokens"].is_number_integer())
    sentinels = st.model_config["tokenizer"]["num_sentinel_tokens"].get<int>();
  data::TokenizerSpec spec;
  const auto tok = [&](const char* key) {
    const auto it = st.tokenizer.find(key);
    return it == st.tokenizer.end() ? std::string() : it->second;
  };
  spec.library = tok("library").empty() ? "megatron" : tok("library");
  spec.type = tok("type");
  spec.vocab_file = tok("vocab_file");
  spec.merge_file = tok("merge_file");
  spec.model_file = tok("model");
  TokenizerAndVocab out;
  try {
    out.tokenizer = data::load_tokenizer(spec);
  } catch (const Error& e) {
    throw DataError(fmt::format("{}: the tokenizer its metadata names cannot be loaded: {}", checkpoint_dir.string(),
                                e.what()));
  }
  out.vocab = std::make_shared<const data::T5Vocabulary>(data::t5_vocabulary(*out.tokenizer, sentinels));
  return out;
}


Seq2SeqDataConfig bind_seq2seq_data(const ConfigView& cfg, const std::string& section, bool validation) {
  return bind_data(cfg, section, validation);
}

void run_on_rank0(const parallel::ParallelContext& parallel, const std::function<void()>& fn) { on_rank0(parallel, fn); }

FineTuningConfig bind_fine_tuning_config(const ConfigView& cfg) {
  FineTuningConfig f;
  train::TrainingConfig& c = f.training;
  if (cfg.has("run")) {
    f.task_name = cfg.get_or<std::string>("run.task_name", "");
    cfg.mark_used("run");
  }
  // trainer.*: max_steps -1 means "max_epochs"; the fraction form of val_check_interval needs the
  // epoch length, both resolved when the dataset is read.
  const std::int64_t max_steps = cfg.get<std::int64_t>("trainer.max_steps");
  f.max_epochs = cfg.find<std::int64_t>("trainer.max_epochs");
  if (max_steps <= 0 && !f.max_epochs)
    refuse(cfg, "trainer.max_steps", fmt::format("is {} and trainer.max_epochs is null: set one of them", max_steps));
  {
    const config::ConfigNode n =
        cfg.get_or<config::ConfigNode>("trainer.val_check_interval", config::ConfigNode::integer(0));
    if (n.is_float()) f.val_check_fraction = n.as_double();
  }
  train::bind_trainer_config(cfg, c);
  c.max_steps = max_steps;
  if (f.val_check_fraction) c.val_check_interval = 0;
  f.validation_ds = bind_data(cfg, "model.data.validation_ds", true);
  f.train_ds = bind_data(cfg, "model.data.train_ds", false);
  bind_exp_manager(cfg, f);
  for (const char* key : {"trainer.logger", "trainer.enable_checkpointing", "trainer.replace_sampler_ddp",
                          "trainer.enable_progress_bar", "trainer.num_sanity_val_steps", "trainer.limit_test_batches"})
    cfg.mark_used(key);

  // model.*
  f.restore_from_path = cfg.get<std::string>("model.restore_from_path");
  c.model.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  c.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  if (c.pipeline_model_parallel_size != 1)
    refuse(cfg, "model.pipeline_model_parallel_size",
           fmt::format("{}: T5 pipeline parallelism is not built yet; fine-tune with 1 (and tensor/data parallelism)",
                       c.pipeline_model_parallel_size));
  for (const char* key : {"model.pipeline_model_parallel_split_rank", "model.model_parallel_size",
                          "model.gradient_as_bucket_view", "model.masked_softmax_fusion"})
    cfg.mark_used(key);
  if (auto o2 = cfg.find<bool>("model.megatron_amp_O2"); o2 && *o2)
    refuse(cfg, "model.megatron_amp_O2", "True is not built (fp32 master weights with the trainer's mixed precision)");
  if (auto r = cfg.find<std::string>("model.resume_from_checkpoint"))
    refuse(cfg, "model.resume_from_checkpoint",
           fmt::format("'{}': resume comes from exp_manager.resume_if_exists (the run's checkpoints)", *r));
  f.hidden_dropout = cfg.find<float>("model.hidden_dropout");
  f.attention_dropout = cfg.find<float>("model.attention_dropout");
  c.seed = cfg.get_or<std::uint64_t>("model.seed", 1234);
  c.micro_batch_size = f.train_ds.micro_batch_size;
  c.global_batch_size = f.train_ds.global_batch_size;
  train::bind_optimizer_config(cfg, c);
  if (!cfg.has("model.optim.sched")) c.sched.name = "";  // a constant LR (NeMo without a scheduler)

  cfg.sub("trainer").check_all_used("fine_tuning");
  cfg.sub("exp_manager").check_all_used("fine_tuning");
  cfg.sub("model").check_all_used("fine_tuning");
  f.model_section = train::to_json_value(cfg.node("model"));
  return f;
}

fs::path prepare_pretrained(const FineTuningConfig& config, const parallel::ParallelContext& parallel,
                            const Logger& log) {
  const fs::path& source = config.restore_from_path;
  const fs::path dir = config.training.exp_manager.explicit_log_dir / "pretrained";
  const int tp = config.training.tensor_model_parallel_size();
  const int pp = config.training.pipeline_model_parallel_size;
  std::error_code ec;
  if (!fs::exists(source, ec))
    throw ConfigError(fmt::format("model.restore_from_path: '{}' does not exist (a pre-trained .nemo file or "
                                  "checkpoint directory; run the conversion stage first, or import an HF model "
                                  "with bignlp-convert --from hf-t5)",
                                  source.string()));
  fs::path ckpt = source;
  if (fs::is_directory(source) && !fs::exists(source / "metadata.json")) {
    // A checkpoints/ folder of a training run: its newest complete checkpoint.
    const std::optional<fs::path> latest = checkpoint::find_latest_checkpoint(source);
    if (!latest)
      throw ConfigError(fmt::format("model.restore_from_path: '{}' is neither a checkpoint nor a folder holding one",
                                    source.string()));
    ckpt = *latest;
  } else if (!fs::is_directory(source)) {
    ckpt = dir / source.stem();
    on_rank0(parallel, [&] {
      if (fs::exists(ckpt / "metadata.json")) return;
      log.info("importing the pre-trained model {} into {}", source.string(), ckpt.string());
      exporting::import_nemo(source, ckpt, log);
    });
  }
  const checkpoint::CheckpointState st = checkpoint::read_checkpoint_metadata(ckpt);
  if (st.family != "t5")
    throw ConfigError(fmt::format("model.restore_from_path: '{}' holds a '{}' model; fine-tuning takes T5/mT5",
                                  source.string(), st.family));
  if (st.tp_size == tp && st.pp_size == pp) return ckpt;
  const fs::path resharded = dir / fmt::format("{}-tp{}-pp{}", ckpt.filename().string(), tp, pp);
  on_rank0(parallel, [&] {
    if (fs::exists(resharded / "metadata.json")) return;
    log.info("resharding the pre-trained model from TP {} x PP {} to TP {} x PP {} into {}", st.tp_size, st.pp_size, tp,
             pp, resharded.string());
    checkpoint::reshard_checkpoint(ckpt, resharded, tp, pp, log);
  });
  return resharded;
}

train::TrainResult run_fine_tuning(FineTuningConfig f, const Logger& log, const ops::OpContext& ctx,
                                   const parallel::ParallelContext& parallel, const std::atomic<int>* stop_flag,
                                   std::FILE* out) {
  train::TrainingConfig& c = f.training;
  const bool rank0 = parallel.grid.rank() == 0;
  const fs::path pretrained = prepare_pretrained(f, parallel, log);
  const checkpoint::CheckpointState st = checkpoint::read_checkpoint_metadata(pretrained);

  // The model: the pre-trained config with the run's layout, precision and dropout.
  model::T5Config t = st.model.get<model::T5Config>();
  t.tensor_model_parallel_size = c.tensor_model_parallel_size();
  t.precision = c.model.precision;
  for (model::T5StackConfig* s : {&t.encoder, &t.decoder}) {
    if (f.hidden_dropout) s->hidden_dropout = *f.hidden_dropout;
    if (f.attention_dropout) s->attention_dropout = *f.attention_dropout;
  }
  const bool learned = t.encoder.position_embedding_type == "learned_absolute";
  for (const Seq2SeqDataConfig* d : {&f.train_ds, &f.validation_ds}) {
    const char* which = d == &f.train_ds ? "train_ds" : "validation_ds";
    if (learned && (d->max_src_seq_length > t.positions() || d->max_tgt_seq_length - 1 > t.positions()))
      throw ConfigError(fmt::format("model.data.{}.max_src_seq_length / max_tgt_seq_length: {} / {} exceed the {} "
                                    "learned positions of the pre-trained model",
                                    which, d->max_src_seq_length, d->max_tgt_seq_length, t.positions()));
  }
  t.decoder_seq_length = std::max(f.train_ds.max_tgt_seq_length, f.validation_ds.max_tgt_seq_length) - 1;
  if (learned) t.decoder_seq_length = std::min(t.decoder_seq_length, t.positions());
  t.validate();
  c.model_family = "t5";
  c.family_config = nlohmann::json(t);
  c.model.seq_length = t.encoder_seq_length;
  c.model.max_position_embeddings = t.positions();
  c.model.vocab_size = t.vocab_size;
  c.tokenizer = st.tokenizer;

  // The checkpoint records the pre-trained model: section with the fine-tuning keys merged in
  // (NeMo's restore with overrides).
  nlohmann::json merged = st.model_config.is_object() ? st.model_config : nlohmann::json::object();
  for (const auto& [key, value] : f.model_section.items())
    if (key != "restore_from_path") merged[key] = value;
  c.model_config = merged;

  // Tokenizer and datasets.
  const TokenizerAndVocab tv = tokenizer_of(st, pretrained);
  const std::shared_ptr<const data::Tokenizer> tokenizer = tv.tokenizer;
  const std::shared_ptr<const data::T5Vocabulary> vocab = tv.vocab;
  if (vocab->size != t.vocab_size)
    throw DataError(fmt::format("{}: the tokenizer ({} ids with sentinels) does not match the model's vocabulary "
                                "of {}",
                                pretrained.string(), vocab->size, t.vocab_size));
  const auto read = [&](const Seq2SeqDataConfig& d, std::size_t k) {
    data::SequenceToSequenceOptions o;
    o.max_src_seq_length = d.max_src_seq_length;
    o.max_tgt_seq_length = d.max_tgt_seq_length;
    o.bos = vocab->bos;
    o.eos = vocab->eos;
    return std::make_shared<const data::SequenceToSequenceDataset>(d.src_files[k], d.tgt_files[k], *tokenizer, o);
  };
  const auto train_data = read(f.train_ds, 0);
  const std::int64_t steps_per_epoch = train_data->size() / c.global_batch_size;
  if (c.max_steps <= 0) c.max_steps = *f.max_epochs * steps_per_epoch;
  if (f.val_check_fraction)
    c.val_check_interval = std::max<std::int64_t>(1, static_cast<std::int64_t>(*f.val_check_fraction *
                                                                               static_cast<double>(steps_per_epoch)));
  const std::int64_t epochs = (c.max_steps + steps_per_epoch - 1) / std::max<std::int64_t>(1, steps_per_epoch);
  auto train_batches = std::make_shared<Seq2SeqBatchSource>(train_data, c.micro_batch_size, c.global_batch_size,
                                                            vocab->pad, f.train_ds.shuffle, c.seed, epochs);
  std::vector<ValidationSet> valid;
  for (std::size_t k = 0; k < f.validation_ds.src_files.size(); ++k)
    valid.push_back(ValidationSet{f.validation_ds.name(k), read(f.validation_ds, k)});
  if (rank0)
    log.info("fine-tuning from {}: {} training examples ({} steps per epoch, {} steps), {} validation set(s)",
             pretrained.string(), train_data->size(), steps_per_epoch, c.max_steps, valid.size());

  Seq2SeqValidationOptions vo;
  vo.micro_batch_size = f.validation_ds.micro_batch_size;
  vo.global_batch_size = f.validation_ds.global_batch_size;
  vo.limit_val_batches = c.limit_val_batches;
  vo.limit_val_batches_is_fraction = c.limit_val_batches_is_fraction;
  vo.pad = vocab->pad;
  vo.write_predictions_to_file = f.validation_ds.write_predictions_to_file;
  vo.output_file_path_prefix = f.validation_ds.output_file_path_prefix;
  auto validation = std::make_shared<Seq2SeqValidation>(std::move(valid), vo, tokenizer, vocab, parallel, log, out);

  train::TrainerParts parts;
  parts.train_batches = train_batches;
  auto last_validated = std::make_shared<std::int64_t>(-1);
  parts.evaluator = [validation, last_validated](model::Model& m, std::int64_t step) -> std::optional<double> {
    *last_validated = step;
    return validation->run(m, step).exact_string_match;
  };
  parts.initialize_weights = [pretrained, &ctx, &parallel, &log, rank0](model::Model& m) {
    checkpoint::load_checkpoint(pretrained, m.parameters(), nullptr, ctx, parallel);
    if (rank0) log.info("initial weights from the pre-trained checkpoint {}", pretrained.string());
  };
  train::Trainer trainer(c, log, ctx, out, std::move(parts));
  trainer.set_stop_flag(stop_flag);
  trainer.set_parallel(parallel);
  train::TrainResult result = trainer.fit();
  // NeMo validates once more after fit (a run whose last step was validated is not validated again).
  if (result.reason == train::StopReason::kMaxSteps && *last_validated != result.global_step)
    validation->run(*trainer.model(), result.global_step);

  // save_nemo_on_train_end: the best checkpoint (by the monitored metric) as one .nemo.
  if (f.save_nemo_on_train_end && c.exp_manager.create_checkpoint_callback &&
      result.reason == train::StopReason::kMaxSteps) {
    const fs::path ckpt_dir = c.exp_manager.explicit_log_dir / "checkpoints";
    on_rank0(parallel, [&] {
      std::optional<fs::path> best;
      std::optional<double> best_value;
      for (const fs::path& p : checkpoint::list_checkpoints(ckpt_dir)) {
        const auto meta = checkpoint::read_checkpoint_metadata(p);
        if (!meta.val_loss) continue;
        // Oldest first: on a tie the later (longer trained) checkpoint wins.
        const bool better = !best_value || (c.exp_manager.mode == "max" ? *meta.val_loss >= *best_value
                                                                         : *meta.val_loss <= *best_value);
        if (better) {
          best = p;
          best_value = meta.val_loss;
        }
      }
      if (!best) best = result.last_checkpoint;
      if (best->empty()) return;
      exporting::NemoExportOptions o;
      o.overwrite = true;
      const fs::path nemo = ckpt_dir / (f.nemo_name + ".nemo");
      exporting::export_nemo(*best, nemo, o, log);
      log.info("saved {} from {} ({} {})", nemo.string(), best->string(), c.exp_manager.monitor,
               best_value ? fmt::format("{:.4f}", *best_value) : std::string("not validated"));
    });
  }
  return result;
}

}  // namespace bignlp::finetune
