#include "bignlp/train/config_binding.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/config/worker_keys.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/model/t5_config.h"
#include "bignlp/train/t5_data_loader.h"

namespace bignlp::train {
namespace {

using config::ConfigView;

/// Keys read and ignored because no value can change what the user gets (the trained weights,
/// checkpoints, logs): performance switches, fusions and logging verbosity. Each has its reason in
/// docs/engine.md ("Keys that are read and ignored"); keep the two lists in step.
constexpr const char* kIgnoredKeys[] = {
    "trainer.num_sanity_val_steps", "exp_manager.exp_dir", "exp_manager.step_timing_kwargs",
    "model.persist_layer_norm", "model.gradient_as_bucket_view", "model.grad_div_ar_fusion",
    "model.gradient_accumulation_fusion", "model.bias_dropout_add_fusion", "model.masked_softmax_fusion",
    "model.use_cpu_initialization", "model.apex_transformer_log_level", "model.megatron_amp_O2",
    "model.num_micro_batches_with_partial_activation_checkpoints", "model.activations_checkpoint_layers_per_pipeline",
    "model.data.skip_warmup", "model.data.num_workers", "model.sync_batch_comm",
    "model.optim.overlap_grad_sync", "model.optim.contiguous_grad_buffer"};

std::string python_text(bool v) { return v ? "True" : "False"; }
std::string python_text(int v) { return std::to_string(v); }
std::string python_text(const std::string& v) { return "'" + v + "'"; }
std::string python_text(float v) { return fmt::format("{}", v); }

/// "file:line:col: " for values from files; "" otherwise (see origin()).
std::string where(const ConfigView& cfg, const std::string& key) {
  const config::Provenance* p = cfg.provenance(key);
  return p ? p->error_prefix() : std::string();
}

/// " (override #1 'a=b')" for values that do not come from a file.
std::string origin(const ConfigView& cfg, const std::string& key) {
  const config::Provenance* p = cfg.provenance(key);
  return p && p->error_prefix().empty() ? " (" + p->location() + ")" : std::string();
}

/// Reads a key whose only supported value is `off`; anything else is a ConfigError.
template <typename T>
void require_off(const ConfigView& cfg, const std::string& key, T off, const std::string& why) {
  const std::optional<T> v = cfg.find<T>(key);
  if (v && *v != off)
    throw ConfigError(fmt::format("{}{}: {}{} is not supported: {}", where(cfg, key), cfg.full_path(key), python_text(*v),
                                  origin(cfg, key), why));
}

/// Keys bignlp reads elsewhere or deliberately ignores, and settings it refuses.
/// `epochs`: trainer.max_epochs is the stage's own length (the tuning stages: max_steps -1 with
/// max_epochs); pre-training runs for trainer.max_steps and refuses it.
void bind_unsupported(const ConfigView& cfg, bool epochs = false) {
  for (const char* key : kIgnoredKeys) cfg.mark_used(key);
  // Megatron's lighter checkpointing of the micro-batches in flight under pipeline parallelism is
  // not built: every micro-batch follows activations_checkpoint_method / _num_layers. Only null.
  for (const char* key :
       {"model.num_micro_batches_with_partial_activation_checkpoints", "model.activations_checkpoint_layers_per_pipeline"}) {
    if (const std::optional<int> v = cfg.find<int>(key)) {
      throw ConfigError(fmt::format(
          "{}{}: {}{} is not supported: only null (every micro-batch is checkpointed as "
          "model.activations_checkpoint_method and model.activations_checkpoint_num_layers say)",
          where(cfg, key), cfg.full_path(key), *v, origin(cfg, key)));
    }
  }
  // Keys whose only supported value is NeMo's default for this worker (anything else would change
  // the result and is not built).
  require_off<bool>(cfg, "trainer.logger", false, "exp_manager creates the loggers (TensorBoard, W&B)");
  require_off<bool>(cfg, "trainer.enable_checkpointing", false,
                    "exp_manager.create_checkpoint_callback controls checkpointing");
  require_off<bool>(cfg, "trainer.replace_sampler_ddp", false,
                    "the data order is Megatron's pretraining sampler over model.global_batch_size");
  for (const char* key : {"trainer.max_epochs", "model.resume_from_checkpoint", "model.tokenizer.delimiter"}) {
    if (epochs && std::string(key) == "trainer.max_epochs") continue;
    const std::optional<config::ConfigNode> v = cfg.find<config::ConfigNode>(key);
    if (v && v->kind() != config::NodeKind::kNull)
      throw ConfigError(fmt::format("{}{}: {}{} is not supported: only null ({})", where(cfg, key), cfg.full_path(key),
                                    config::to_yaml(*v).substr(0, config::to_yaml(*v).find('\n')), origin(cfg, key),
                                    std::string(key) == "trainer.max_epochs"
                                        ? "training runs for trainer.max_steps"
                                        : std::string(key) == "model.resume_from_checkpoint"
                                              ? "training resumes from the newest checkpoint in exp_manager.explicit_log_dir "
                                                "(exp_manager.resume_if_exists)"
                                              : "the tokenizers here take no delimiter"));
  }
  require_off<bool>(cfg, "exp_manager.checkpoint_callback_params.save_last", true,
                    "the '-last' checkpoint is what a resumed run reads");
  require_off<bool>(cfg, "model.pre_process", true, "NeMo's internal switch; the model always embeds its input");
  require_off<bool>(cfg, "model.post_process", true, "NeMo's internal switch; the model always computes its output");
  require_off<bool>(cfg, "model.fp16_lm_cross_entropy", false, "the loss is computed in fp32");
  require_off<bool>(cfg, "model.transformer_engine", false, "Transformer Engine layers are not built");
  require_off<bool>(cfg, "model.fp8", false, "FP8 training is not built");
  require_off<bool>(cfg, "model.nsys_profile.enabled", false, "Nsight Systems ranges are not emitted");
  if (cfg.has("model.nsys_profile")) cfg.mark_used("model.nsys_profile");
  require_off<std::string>(cfg, "model.data.data_impl", "mmap", "the datasets are read as Megatron's mmap .bin/.idx");
  require_off<std::string>(cfg, "model.data.dataloader_type", "single",
                           "the data order is Megatron's pretraining sampler (single)");
  if (cfg.has("run")) cfg.mark_used("run");
}

/// trainer.*
void bind_trainer(const ConfigView& cfg, TrainingConfig& c) {
  c.num_nodes = cfg.get_or<int>("trainer.num_nodes", 1);
  {
    const std::string key = "trainer.accelerator";
    c.accelerator.cpu_fix =
        "trainer.accelerator=cpu (training.trainer.accelerator=cpu on the bignlp command line), or bignlp-train "
        "--device cpu";
    if (const auto v = cfg.find<std::string>(key)) {
      c.accelerator.origin = where(cfg, key) + cfg.full_path(key) + origin(cfg, key);
      c.accelerator.text = *v;
      c.accelerator.kind = ops::parse_device_kind(*v, c.accelerator.origin);
    } else {
      c.accelerator.origin = cfg.full_path(key) + " (not set: auto)";
      c.accelerator.text = "auto";
      c.accelerator.kind = ops::DeviceKind::kAuto;
    }
  }
  c.devices = cfg.get_or<int>("trainer.devices", 1);
  c.model.precision = model::parse_precision(cfg.get_or<std::string>("trainer.precision", "32"));
  c.max_steps = cfg.get<std::int64_t>("trainer.max_steps");
  if (auto t = cfg.find<std::string>("trainer.max_time")) c.max_time_seconds = parse_max_time(*t);
  c.log_every_n_steps = cfg.get_or<std::int64_t>("trainer.log_every_n_steps", 10);
  {
    const std::string key = "trainer.val_check_interval";
    const config::ConfigNode n = cfg.get_or<config::ConfigNode>(key, config::ConfigNode::integer(0));
    if (n.is_float()) {
      // A fraction of an epoch: with max_steps-driven training this means every N steps.
      c.val_check_interval = std::max<std::int64_t>(1, static_cast<std::int64_t>(n.as_double() * static_cast<double>(c.max_steps)));
    } else {
      c.val_check_interval = cfg.get_or<std::int64_t>(key, 0);
    }
  }
  {
    const config::ConfigNode n = cfg.get_or<config::ConfigNode>("trainer.limit_val_batches", config::ConfigNode::floating(1.0));
    c.limit_val_batches_is_fraction = n.is_float();
    c.limit_val_batches = n.as_double();
  }
  c.limit_test_batches = cfg.get_or<std::int64_t>("trainer.limit_test_batches", 0);
  c.enable_progress_bar = cfg.get_or<bool>("trainer.enable_progress_bar", true);
  c.gradient_clip_val = cfg.get_or<double>("trainer.gradient_clip_val", 0.0);
  require_off<int>(cfg, "trainer.accumulate_grad_batches", 1,
                   "gradient accumulation comes from model.global_batch_size / model.micro_batch_size");
}

/// exp_manager.create_wandb_logger / wandb_logger_kwargs: the keys of PyTorch Lightning's
/// WandbLogger that mean something for an offline run; any other is refused by name.
void bind_wandb(const ConfigView& cfg, ExpManagerConfig& em) {
  const std::string kw = "exp_manager.wandb_logger_kwargs";
  if (!cfg.get_or<bool>("exp_manager.create_wandb_logger", false)) {
    // Without the logger the kwargs configure nothing (NeMo reads them only to create it).
    if (cfg.has(kw)) cfg.mark_used(kw);
    return;
  }
  WandbOptions w;
  auto str = [&](const char* key, std::string& out) {
    const std::string k = kw + "." + key;
    if (const auto v = cfg.find<config::ConfigNode>(k); v && v->kind() != config::NodeKind::kNull)
      out = cfg.get<std::string>(k);
  };
  str("project", w.project);
  str("name", w.name);
  str("entity", w.entity);
  str("group", w.group);
  str("job_type", w.job_type);
  str("notes", w.notes);
  str("id", w.id);
  if (w.id.empty()) str("version", w.id);  // PTL's alias of id
  std::string save_dir;
  str("save_dir", save_dir);
  if (save_dir.empty()) str("dir", save_dir);
  w.save_dir = save_dir.empty() ? em.explicit_log_dir : std::filesystem::path(save_dir);
  if (const auto v = cfg.find<config::ConfigNode>(kw + ".tags"); v && v->kind() != config::NodeKind::kNull)
    w.tags = cfg.get<std::vector<std::string>>(kw + ".tags");
  // offline: the run is always written offline here (compute nodes often have no internet).
  (void)cfg.find<bool>(kw + ".offline");
  require_off<bool>(cfg, kw + ".log_model", false,
                    "checkpoints are not uploaded as W&B artifacts (convert them with the conversion stage)");
  require_off<bool>(cfg, kw + ".anonymous", false, "anonymous W&B runs are not supported");
  if (cfg.has(kw)) cfg.sub(kw).check_all_used("W&B logger (project, name, entity, group, job_type, notes, tags, id, "
                                              "version, save_dir, dir, offline, log_model)");
  em.wandb = std::move(w);
}

/// exp_manager.*
void bind_exp_manager(const ConfigView& cfg, TrainingConfig& c) {
  auto& em = c.exp_manager;
  em.explicit_log_dir = cfg.get<std::string>("exp_manager.explicit_log_dir");
  em.resume_if_exists = cfg.get_or<bool>("exp_manager.resume_if_exists", true);
  em.resume_ignore_no_checkpoint = cfg.get_or<bool>("exp_manager.resume_ignore_no_checkpoint", true);
  em.create_checkpoint_callback = cfg.get_or<bool>("exp_manager.create_checkpoint_callback", true);
  em.monitor = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.monitor", "val_loss");
  if (em.monitor != "val_loss")
    throw ConfigError(fmt::format("{}: only val_loss can be monitored, got '{}'",
                                  cfg.full_path("exp_manager.checkpoint_callback_params.monitor"), em.monitor));
  em.mode = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.mode", "min");
  em.save_top_k = cfg.get_or<int>("exp_manager.checkpoint_callback_params.save_top_k", 10);
  em.filename = cfg.get_or<std::string>("exp_manager.checkpoint_callback_params.filename", em.filename);
  em.name = cfg.get_or<std::string>("exp_manager.name", em.name);
  em.create_tensorboard_logger = cfg.get_or<bool>("exp_manager.create_tensorboard_logger", true);
  em.log_step_timing = cfg.get_or<bool>("exp_manager.log_step_timing", true);
  em.save_nemo_on_train_end = cfg.get_or<bool>("exp_manager.checkpoint_callback_params.save_nemo_on_train_end", false);
  em.always_save_nemo = cfg.get_or<bool>("exp_manager.checkpoint_callback_params.always_save_nemo", false);
  for (const char* key : {"exp_manager.checkpoint_callback_params.save_nemo_on_train_end",
                          "exp_manager.checkpoint_callback_params.always_save_nemo"}) {
    if (cfg.get_or<bool>(key, false) && !em.create_checkpoint_callback)
      throw ConfigError(fmt::format("{}{}: True{} needs exp_manager.create_checkpoint_callback True (the .nemo is "
                                    "written from the saved checkpoint)",
                                    where(cfg, key), cfg.full_path(key), origin(cfg, key)));
    if (cfg.get_or<bool>(key, false) &&
        (em.name.empty() || em.name.find('/') != std::string::npos || em.name == "." || em.name == ".."))
      throw ConfigError(fmt::format("{}: '{}' cannot name the .nemo file {} asks for", cfg.full_path("exp_manager.name"),
                                    em.name, cfg.full_path(key)));
  }
  bind_wandb(cfg, em);
}

/// model.*: batch sizes, parallel layout, the GPT architecture, seed and loss scaling.
void bind_model(const ConfigView& cfg, TrainingConfig& c) {
  auto& m = c.model;
  c.micro_batch_size = cfg.get<std::int64_t>("model.micro_batch_size");
  c.global_batch_size = cfg.get<std::int64_t>("model.global_batch_size");
  m.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  c.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  c.virtual_pipeline_model_parallel_size =
      cfg.find<int>("model.virtual_pipeline_model_parallel_size").value_or(1);  // null: no interleaving
  c.sequence_parallel = cfg.get_or<bool>("model.sequence_parallel", false);
  m.seq_length = cfg.get<std::int64_t>("model.encoder_seq_length");
  m.max_position_embeddings = cfg.get_or<std::int64_t>("model.max_position_embeddings", m.seq_length);
  m.num_layers = cfg.get<int>("model.num_layers");
  m.hidden_size = cfg.get<std::int64_t>("model.hidden_size");
  m.ffn_hidden_size = cfg.get_or<std::int64_t>("model.ffn_hidden_size", 4 * m.hidden_size);
  m.num_attention_heads = cfg.get<int>("model.num_attention_heads");
  m.kv_channels = cfg.get_or<std::int64_t>("model.kv_channels", 0);
  m.init_method_std = cfg.get_or<float>("model.init_method_std", 0.02f);
  m.use_scaled_init_method = cfg.get_or<bool>("model.use_scaled_init_method", true);
  m.hidden_dropout = cfg.get_or<float>("model.hidden_dropout", 0.1f);
  m.attention_dropout = cfg.get_or<float>("model.attention_dropout", 0.1f);
  m.apply_query_key_layer_scaling = cfg.get_or<bool>("model.apply_query_key_layer_scaling", true);
  m.layernorm_epsilon = cfg.get_or<float>("model.layernorm_epsilon", 1e-5f);
  m.make_vocab_size_divisible_by = cfg.get_or<std::int64_t>("model.make_vocab_size_divisible_by", 128);
  // NeMo's GeLU choice: the fused bias-GeLU kernel and openai_gelu use tanh, F.gelu (erf) otherwise.
  const bool fused = cfg.get_or<bool>("model.bias_activation_fusion", true);
  const bool openai = cfg.get_or<bool>("model.openai_gelu", false);
  cfg.mark_used("model.onnx_safe");
  m.activation = fused || openai ? ops::GeluApprox::kTanh : ops::GeluApprox::kErf;
  require_off<std::string>(cfg, "model.activation", "gelu", "only the GeLU MLP is implemented");
  require_off<bool>(cfg, "model.fp32_residual_connection", false, "the residual stream uses the compute dtype");
  require_off<bool>(cfg, "model.data.reset_attention_mask", false, "attention is causal only");
  require_off<std::string>(cfg, "model.transformer_block_type", "pre_ln", "only pre-LN blocks are implemented");
  require_off<std::string>(cfg, "model.normalization", "layernorm", "only LayerNorm is implemented");
  require_off<std::string>(cfg, "model.position_embedding_type", "learned_absolute",
                           "only learned absolute positions are implemented");
  require_off<bool>(cfg, "model.share_embeddings_and_output_weights", true, "the output layer is tied");
  require_off<bool>(cfg, "model.bias", true, "linear layers have biases");
  require_off<bool>(cfg, "model.normalize_attention_scores", true, "scores are divided by sqrt(head size)");
  if (auto g = cfg.find<std::string>("model.activations_checkpoint_granularity")) {
    if (*g == "full")
      m.activations_checkpoint.granularity = model::CheckpointGranularity::kFull;
    else if (*g == "selective")
      m.activations_checkpoint.granularity = model::CheckpointGranularity::kSelective;
    else
      throw ConfigError(fmt::format("{}: '{}' must be full, selective or null",
                                    cfg.full_path("model.activations_checkpoint_granularity"), *g));
    const auto method = cfg.find<std::string>("model.activations_checkpoint_method");
    if (!method || (*method != "uniform" && *method != "block"))
      throw ConfigError(fmt::format("{}: must be uniform or block when a granularity is set",
                                    cfg.full_path("model.activations_checkpoint_method")));
    m.activations_checkpoint.method = *method == "block" ? model::CheckpointMethod::kBlock : model::CheckpointMethod::kUniform;
    m.activations_checkpoint.num_layers = cfg.get_or<int>("model.activations_checkpoint_num_layers", 1);
  } else {
    cfg.mark_used("model.activations_checkpoint_method");
    cfg.mark_used("model.activations_checkpoint_num_layers");
  }
  c.seed = cfg.get_or<std::uint64_t>("model.seed", 1234);
  c.loss_scaler.init_scale = cfg.get_or<double>("model.native_amp_init_scale", 4294967296.0);
  c.loss_scaler.growth_interval = cfg.get_or<std::int64_t>("model.native_amp_growth_interval", 1000);
  c.loss_scaler.hysteresis = cfg.get_or<int>("model.hysteresis", 2);
}

/// model.encoder.* / model.decoder.* of a T5/mT5 config (megatron_model_base_config keys).
model::T5StackConfig bind_t5_stack(const ConfigView& cfg, const std::string& stack) {
  const auto k = [&](const char* key) { return "model." + stack + "." + key; };
  model::T5StackConfig s;
  s.num_layers = cfg.get<int>(k("num_layers"));
  s.hidden_size = cfg.get<std::int64_t>(k("hidden_size"));
  s.ffn_hidden_size = cfg.get<std::int64_t>(k("ffn_hidden_size"));
  s.num_attention_heads = cfg.get<int>(k("num_attention_heads"));
  s.kv_channels = cfg.find<std::int64_t>(k("kv_channels")).value_or(0);  // null: hidden / heads
  s.init_method_std = cfg.get_or<float>(k("init_method_std"), 0.02f);
  s.use_scaled_init_method = cfg.get_or<bool>(k("use_scaled_init_method"), true);
  s.hidden_dropout = cfg.get_or<float>(k("hidden_dropout"), 0.1f);
  s.attention_dropout = cfg.get_or<float>(k("attention_dropout"), 0.1f);
  s.position_embedding_type = cfg.get_or<std::string>(k("position_embedding_type"), "learned_absolute");
  s.relative_attention_num_buckets = cfg.get_or<int>(k("relative_attention_num_buckets"), 32);
  s.relative_attention_max_distance = cfg.get_or<int>(k("relative_attention_max_distance"), 128);
  s.relative_position_bias_self_attention_only =
      cfg.get_or<bool>(k("relative_position_bias_self_attention_only"), true);
  s.apply_query_key_layer_scaling = cfg.get_or<bool>(k("apply_query_key_layer_scaling"), true);
  s.layernorm_epsilon = cfg.get_or<float>(k("layernorm_epsilon"), 1e-5f);
  s.activation = cfg.get_or<std::string>(k("activation"), "gelu");
  s.bias_activation_fusion = cfg.get_or<bool>(k("bias_activation_fusion"), true);
  s.openai_gelu = cfg.get_or<bool>(k("openai_gelu"), false);
  s.bias = cfg.get_or<bool>(k("bias"), true);
  s.normalization = cfg.get_or<std::string>(k("normalization"), "layernorm");
  s.normalize_attention_scores = cfg.get_or<bool>(k("normalize_attention_scores"), true);
  // Kernel-fusion switches: no counterpart (the numerics do not depend on them here).
  for (const char* key : {"persist_layer_norm", "grad_div_ar_fusion", "masked_softmax_fusion", "bias_dropout_add_fusion",
                          "onnx_safe", "hidden_steps"})
    cfg.mark_used(k(key));
  require_off<float>(cfg, k("ffn_dropout"), 0.0f, "dropout inside the MLP is not built");
  require_off<std::string>(cfg, k("arch"), "transformer", "only the transformer encoder/decoder is built");
  require_off<bool>(cfg, k("headscale"), false, "head scaling is not built");
  require_off<std::string>(cfg, k("transformer_block_type"), "pre_ln", "only pre-LN blocks are built");
  require_off<int>(cfg, k("num_self_attention_per_cross_attention"), 1, "one self-attention per cross-attention");
  require_off<bool>(cfg, k("fp32_residual_connection"), false, "the residual stream uses the compute dtype");
  require_off<bool>(cfg, k("megatron_legacy"), false, "the legacy (non-interleaved) QKV layout is not built");
  if (auto g = cfg.find<std::string>(k("activations_checkpoint_granularity"))) {
    auto& ac = s.activations_checkpoint;
    if (*g == "full")
      ac.granularity = model::CheckpointGranularity::kFull;
    else if (*g == "selective")
      ac.granularity = model::CheckpointGranularity::kSelective;
    else
      throw ConfigError(fmt::format("{}{}: '{}' must be full, selective or null", where(cfg, k("activations_checkpoint_granularity")),
                                    cfg.full_path(k("activations_checkpoint_granularity")), *g));
    const auto method = cfg.find<std::string>(k("activations_checkpoint_method"));
    if (!method || (*method != "uniform" && *method != "block"))
      throw ConfigError(fmt::format("{}: must be uniform or block when a granularity is set",
                                    cfg.full_path(k("activations_checkpoint_method"))));
    ac.method = *method == "block" ? model::CheckpointMethod::kBlock : model::CheckpointMethod::kUniform;
    ac.num_layers = cfg.get_or<int>(k("activations_checkpoint_num_layers"), 1);
  } else {
    cfg.mark_used(k("activations_checkpoint_method"));
    cfg.mark_used(k("activations_checkpoint_num_layers"));
  }
  return s;
}

/// model.* of a T5/mT5 config (everything but model.data.*, model.tokenizer.* and model.optim.*):
/// the "t5" family's config. The vocabulary size and precision are filled in later.
model::T5Config bind_t5_model(const ConfigView& cfg, TrainingConfig& c) {
  c.model_family = "t5";
  c.micro_batch_size = cfg.get<std::int64_t>("model.micro_batch_size");
  c.global_batch_size = cfg.get<std::int64_t>("model.global_batch_size");
  c.model.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  c.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  c.virtual_pipeline_model_parallel_size = cfg.find<int>("model.virtual_pipeline_model_parallel_size").value_or(1);
  c.sequence_parallel = cfg.get_or<bool>("model.sequence_parallel", false);
  model::T5Config t;
  t.tensor_model_parallel_size = c.model.tensor_model_parallel_size;
  t.make_vocab_size_divisible_by = cfg.get_or<std::int64_t>("model.make_vocab_size_divisible_by", 128);
  t.encoder_seq_length = cfg.get<std::int64_t>("model.seq_length");
  t.max_position_embeddings = cfg.get_or<std::int64_t>("model.max_position_embeddings", t.encoder_seq_length);
  // The decoder length is a data key (bound with the dataset); the model reads it for its checks.
  t.decoder_seq_length = cfg.find<std::int64_t>("model.data.seq_length_dec").value_or(0);
  t.pipeline_model_parallel_split_rank = cfg.find<int>("model.pipeline_model_parallel_split_rank").value_or(0);
  t.encoder = bind_t5_stack(cfg, "encoder");
  t.decoder = bind_t5_stack(cfg, "decoder");
  t.embedding_init_method_std = cfg.get_or<float>("model.embedding_init_method_std", t.encoder.init_method_std);
  t.embedding_dropout = cfg.get_or<float>("model.embedding_dropout", t.encoder.hidden_dropout);
  t.share_token_embeddings = cfg.get_or<bool>("model.share_token_embeddings", true);
  t.share_decoder_tokens_head_embeddings = cfg.get_or<bool>("model.share_decoder_tokens_head_embeddings", true);
  t.tokens_head_bias = cfg.get_or<bool>("model.tokens_head_bias", true);
  require_off<float>(cfg, "model.label_smoothing", 0.0f, "label smoothing is not built");
  require_off<bool>(cfg, "model.fp32_residual_connection", false, "the residual stream uses the compute dtype");
  // The trainer's shared fields (MicroBatchRunner shape, throughput) read these of c.model.
  c.model.seq_length = t.encoder_seq_length;
  c.model.max_position_embeddings = t.positions();
  c.seed = cfg.get_or<std::uint64_t>("model.seed", 1234);
  c.loss_scaler.init_scale = cfg.get_or<double>("model.native_amp_init_scale", 4294967296.0);
  c.loss_scaler.growth_interval = cfg.get_or<std::int64_t>("model.native_amp_growth_interval", 1000);
  c.loss_scaler.hysteresis = cfg.get_or<int>("model.hysteresis", 2);
  return t;
}

/// The finished T5 config into c.family_config (vocabulary from the tokenizer, trainer.precision),
/// its ConfigErrors pointed at the key they name.
void finish_t5_model(const ConfigView& cfg, model::T5Config t, TrainingConfig& c) {
  t.vocab_size = c.model.vocab_size;
  t.precision = c.model.precision;
  try {
    t.validate();
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    const auto colon = msg.find(':');
    const std::string key = colon == std::string::npos ? std::string() : msg.substr(0, colon);
    if (!key.empty() && cfg.provenance(key) != nullptr) throw ConfigError(where(cfg, key) + msg + origin(cfg, key));
    throw;
  }
  c.family_config = nlohmann::json(t);
}

/// model.tokenizer.*: recorded for checkpoints and loaded for the vocabulary size; returns the
/// end-of-document id (-1 when the tokenizer has none).
std::int64_t bind_tokenizer(const ConfigView& cfg, TrainingConfig& c) {
  auto& m = c.model;
  for (const char* k : {"library", "type", "vocab_file", "merge_file", "model"})
    if (auto v = cfg.find<std::string>(std::string("model.tokenizer.") + k)) c.tokenizer[k] = *v;
  data::TokenizerSpec spec;
  spec.library = c.tokenizer.count("library") ? c.tokenizer["library"] : "megatron";
  spec.type = c.tokenizer.count("type") ? c.tokenizer["type"] : "";
  if (c.tokenizer.count("vocab_file")) spec.vocab_file = c.tokenizer["vocab_file"];
  if (c.tokenizer.count("merge_file")) spec.merge_file = c.tokenizer["merge_file"];
  if (c.tokenizer.count("model")) spec.model_file = c.tokenizer["model"];
  const std::unique_ptr<data::Tokenizer> tokenizer = data::load_tokenizer(spec);
  m.vocab_size = tokenizer->vocab_size();
  const std::int64_t eod = tokenizer->special_tokens().eod ? *tokenizer->special_tokens().eod : -1;
  return eod;
}

/// model.optim.* and the data-parallel gradient buckets.
void bind_optimizer(const ConfigView& cfg, TrainingConfig& c) {
  c.optim.name = cfg.get<std::string>("model.optim.name");
  // Data-parallel gradient buckets: the distributed optimizer's bucket_cap_mb, else NeMo's
  // all-reduce chunk size.
  const double chunk_mb = cfg.get_or<double>("model.grad_allreduce_chunk_size_mb", 125.0);
  const double bucket_mb = cfg.get_or<double>("model.optim.bucket_cap_mb", 100.0);
  c.grad_bucket_mb = c.optim.name == "distributed_fused_adam" ? bucket_mb : chunk_mb;
  c.optim.lr = cfg.get<double>("model.optim.lr");
  c.optim.weight_decay = cfg.get_or<double>("model.optim.weight_decay", 0.0);
  c.optim.eps = cfg.get_or<double>("model.optim.eps", 1e-8);
  if (auto betas = cfg.find<std::vector<double>>("model.optim.betas")) {
    if (betas->size() != 2)
      throw ConfigError(fmt::format("{}: expected two values [beta1, beta2], got {}", cfg.full_path("model.optim.betas"),
                                    betas->size()));
    c.optim.beta1 = (*betas)[0];
    c.optim.beta2 = (*betas)[1];
  }
  if (cfg.has("model.optim.sched")) {
    c.sched.name = cfg.get_or<std::string>("model.optim.sched.name", "");
    c.sched.warmup_steps = cfg.get_or<std::int64_t>("model.optim.sched.warmup_steps", 0);
    c.sched.warmup_ratio = cfg.get_or<double>("model.optim.sched.warmup_ratio", -1.0);
    c.sched.constant_steps = cfg.get_or<std::int64_t>("model.optim.sched.constant_steps", 0);
    c.sched.constant_ratio = cfg.get_or<double>("model.optim.sched.constant_ratio", -1.0);
    c.sched.min_lr = cfg.get_or<double>("model.optim.sched.min_lr", 0.0);
    require_off<int>(cfg, "model.optim.sched.last_epoch", -1, "the schedule starts from the checkpoint's step");
  } else {
    c.sched.name = "";
  }
}

/// model.data.data_prefix: a list [weight, prefix, ...] or [prefix], a single prefix, or null (empty).
void bind_data_prefix(const ConfigView& cfg, TrainingConfig& c) {
  const std::string key = "model.data.data_prefix";
  const config::ConfigNode n = cfg.get_or<config::ConfigNode>(key, config::ConfigNode::list());
  if (n.is_dict())
    throw ConfigError(fmt::format("{}: the dict form (train/validation/test) is not supported; give a list "
                                  "[weight, prefix, ...]",
                                  cfg.full_path(key)));
  if (n.is_list())
    c.data.data_prefix = cfg.get_or<std::vector<std::string>>(key, {});
  else if (!n.is_null())
    c.data.data_prefix = {cfg.get<std::string>(key)};
}

/// model.data.*
void bind_data(const ConfigView& cfg, TrainingConfig& c, std::int64_t eod) {
  bind_data_prefix(cfg, c);
  c.data.splits_string = cfg.get_or<std::string>("model.data.splits_string", "969, 30, 1");
  if (auto d = cfg.find<std::string>("model.data.index_mapping_dir")) c.data.index_mapping_dir = *d;
  c.data.reset_position_ids = cfg.get_or<bool>("model.data.reset_position_ids", false);
  c.data.eod_mask_loss = cfg.get_or<bool>("model.data.eod_mask_loss", false);
  c.data.eod_token = eod;
  const std::int64_t data_seq = cfg.get_or<std::int64_t>("model.data.seq_length", c.model.seq_length);
  if (data_seq != c.model.seq_length)
    throw ConfigError(fmt::format("{}: {} differs from model.encoder_seq_length {}", cfg.full_path("model.data.seq_length"),
                                  data_seq, c.model.seq_length));
}

}  // namespace

nlohmann::json to_json_value(const config::ConfigNode& n) {
  switch (n.kind()) {
    case config::NodeKind::kNull: return nullptr;
    case config::NodeKind::kBool: return n.as_bool();
    case config::NodeKind::kInt: return n.as_int();
    case config::NodeKind::kFloat: return std::isfinite(n.as_double()) ? nlohmann::json(n.as_double()) : nlohmann::json();
    case config::NodeKind::kString: return n.as_string();
    case config::NodeKind::kMissing: return "???";
    case config::NodeKind::kList: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& child : n.children()) out.push_back(to_json_value(child));
      return out;
    }
    case config::NodeKind::kDict: {
      nlohmann::json out = nlohmann::json::object();
      for (std::size_t i = 0; i < n.size(); ++i) out[n.key_at(i)] = to_json_value(n.child_at(i));
      return out;
    }
  }
  return nullptr;
}


/// model.data.* of a T5/mT5 config (the span-corruption keys), model.tokenizer.num_sentinel_tokens
/// and, for the mT5 auto-blend when data_prefix is null, run.preprocessed_dir / run.blending_alpha.
void bind_t5_data_config(const ConfigView& cfg, TrainingConfig& c) {
  bind_data_prefix(cfg, c);
  for (const char* key : {"model.data.data_impl", "model.data.skip_warmup", "model.data.num_workers"}) cfg.mark_used(key);
  c.data.splits_string = cfg.get_or<std::string>("model.data.splits_string", "969, 30, 1");
  if (auto d = cfg.find<std::string>("model.data.index_mapping_dir")) c.data.index_mapping_dir = *d;
  T5DataConfig& t = c.data.t5;
  t.seq_length = cfg.get<std::int64_t>("model.data.seq_length");
  t.seq_length_dec = cfg.get<std::int64_t>("model.data.seq_length_dec");
  t.masked_lm_prob = cfg.get_or<double>("model.data.masked_lm_prob", 0.15);
  t.short_seq_prob = cfg.get_or<double>("model.data.short_seq_prob", 0.0);
  t.max_ngram_size = cfg.get_or<int>("model.data.max_ngram_size", 10);
  t.mean_ngram_size = cfg.find<double>("model.data.mean_ngram_size");
  t.geometric_dist = cfg.get_or<bool>("model.data.geometric_dist", true);
  t.permutation = cfg.get_or<bool>("model.data.permutation", false);
  t.whole_word_masking = cfg.get_or<bool>("model.data.whole_word_masking", true);
  t.favor_longer_ngrams = cfg.get_or<bool>("model.data.favor_longer_ngrams", false);
  t.respect_document_boundaries = cfg.get_or<bool>("model.data.respect_document_boundaries", true);
  t.num_sentinel_tokens = cfg.get_or<int>("model.tokenizer.num_sentinel_tokens", 100);
  require_off<std::string>(cfg, "model.data.dataset_type", "t5",
                           "only the t5 span-corruption dataset is built (not t5_prefix_lm or ul2)");
  require_off<std::string>(cfg, "model.data.dataloader_type", "single",
                           "samples are read in order from consumed_samples (Megatron's single sampler)");
  if (c.data.data_prefix.empty()) {
    if (auto dir = cfg.find<std::string>("run.preprocessed_dir")) {
      t.preprocessed_dir = *dir;
      t.blending_alpha = cfg.get_or<double>("run.blending_alpha", 0.7);
    }
  }
  // The dataset's own range checks, reported at the key (file:line when it comes from a file).
  data::T5DatasetOptions o;
  o.seq_length = static_cast<std::int32_t>(t.seq_length);
  o.seq_length_dec = static_cast<std::int32_t>(t.seq_length_dec);
  o.masked_lm_prob = t.masked_lm_prob;
  o.short_seq_prob = t.short_seq_prob;
  o.max_ngram_size = t.max_ngram_size;
  o.mean_ngram_size = t.mean_ngram_size;
  o.permutation = t.permutation;
  o.respect_document_boundaries = t.respect_document_boundaries;
  try {
    o.validate();
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    const auto colon = msg.find(':');
    const std::string key = colon == std::string::npos ? std::string() : msg.substr(0, colon);
    if (!key.empty() && cfg.provenance(key) != nullptr) throw ConfigError(where(cfg, key) + msg + origin(cfg, key));
    throw;
  }
}

/// Keys NeMo derives from others: a value that disagrees would change the result, so it is refused.
void check_derived_keys(const ConfigView& cfg, const TrainingConfig& c) {
  const auto mismatch = [&](const std::string& key, std::int64_t v, std::int64_t want, const std::string& what) {
    throw ConfigError(fmt::format("{}{}: {}{} differs from {} ({}); leave it null or set it to {}", where(cfg, key),
                                  cfg.full_path(key), v, origin(cfg, key), what, want, want));
  };
  const std::string sched = "model.optim.sched.max_steps";
  if (const auto v = cfg.find<std::int64_t>(sched); v && *v != c.max_steps)
    mismatch(sched, *v, c.max_steps, "trainer.max_steps, which the learning-rate schedule follows");
  const std::string mp = "exp_manager.checkpoint_callback_params.model_parallel_size";
  const std::int64_t tp_pp = static_cast<std::int64_t>(c.tensor_model_parallel_size()) * c.pipeline_model_parallel_size;
  if (const auto v = cfg.find<std::int64_t>(mp); v && *v != tp_pp)
    mismatch(mp, *v, tp_pp, "model.tensor_model_parallel_size x model.pipeline_model_parallel_size");
}

void bind_trainer_exp_manager_optim(const ConfigView& cfg, TrainingConfig& c) {
  bind_unsupported(cfg, /*epochs=*/true);
  bind_trainer(cfg, c);
  bind_exp_manager(cfg, c);
  bind_optimizer(cfg, c);
}

void bind_trainer_config(const ConfigView& cfg, TrainingConfig& c) { bind_trainer(cfg, c); }

void bind_optimizer_config(const ConfigView& cfg, TrainingConfig& c) { bind_optimizer(cfg, c); }

TrainingConfig bind_training_config(const ConfigView& cfg) {
  // Types and ranges first: the schema the launcher checked (config/worker_keys.h).
  if (const auto problems = config::check_training_keys(cfg); !problems.empty())
    throw ConfigError(join(problems, "\n"));
  TrainingConfig c;
  bind_unsupported(cfg);
  bind_trainer(cfg, c);
  bind_exp_manager(cfg, c);
  // A T5/mT5 config has encoder and decoder sections (the launcher's way of telling the families apart).
  const bool t5 = cfg.has("model.encoder");
  std::optional<model::T5Config> t5_model;
  if (t5)
    t5_model = bind_t5_model(cfg, c);
  else
    bind_model(cfg, c);
  const std::int64_t eod = bind_tokenizer(cfg, c);
  bind_optimizer(cfg, c);
  if (t5_model) {
    // The span-corruption data keys; the trainer then reads the T5 batch sources (t5_data_loader.h).
    bind_t5_data_config(cfg, c);
    // The model's vocabulary is the tokenizer's plus the sentinels and special tokens the T5 layout
    // appends; the decoder starts from its BOS.
    const std::shared_ptr<const data::T5Vocabulary> vocab = t5_vocabulary_of(c);
    c.model.vocab_size = vocab->size;
    t5_model->decoder_start_token_id = vocab->bos;
    finish_t5_model(cfg, *t5_model, c);
  } else {
    bind_data(cfg, c, eod);
  }

  check_derived_keys(cfg, c);
  cfg.sub("trainer").check_all_used("training");
  cfg.sub("exp_manager").check_all_used("training");
  cfg.sub("model").check_all_used("training");

  // results/hparams.yaml and the checkpoints' model_config: the model section, as NeMo's logger
  // writes it. Read after the audit above (reading a section marks all of it used).
  config::ConfigNode hp = config::ConfigNode::dict();
  const config::ConfigNode model_section = cfg.node("model");
  hp.set("cfg", model_section);
  c.hparams_yaml = config::to_yaml(hp);
  c.model_config = to_json_value(model_section);
  if (c.exp_manager.wandb) {
    // The W&B run's config: the resolved sections of this stage.
    for (const char* section : {"trainer", "exp_manager", "model"})
      if (cfg.has(section)) c.exp_manager.wandb->config[section] = to_json_value(cfg.node(section));
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    // Cross-key rules: point at the first key the message names.
    const std::string msg = e.what();
    for (const char* key : {"model.global_batch_size", "model.micro_batch_size", "model.tensor_model_parallel_size",
                            "model.data.data_prefix", "trainer.max_steps", "exp_manager.explicit_log_dir"}) {
      if (msg.rfind(key, 0) == 0 && cfg.provenance(key) != nullptr)
        throw ConfigError(where(cfg, key) + msg + origin(cfg, key));
    }
    throw;
  }
  return c;
}

}  // namespace bignlp::train
