#include "bignlp/tune/prompt_learning.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/export/nemo.h"
#include "bignlp/export/tar.h"
#include "bignlp/export/torch_file.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/model/model_family.h"
#include "bignlp/train/config_binding.h"

namespace bignlp::tune {
namespace {

namespace fs = std::filesystem;
using config::ConfigView;

std::string where(const ConfigView& cfg, const std::string& key) {
  const config::Provenance* p = cfg.provenance(key);
  return (p ? p->error_prefix() : std::string()) + cfg.full_path(key);
}

// Read and ignored: PyTorch/NeMo machinery without a counterpart, or (encoder_seq_length) a key
// NeMo itself ignores in favour of the base model's (tuning.md §10.1).
constexpr const char* kIgnored[] = {"model.model_parallel_size", "model.encoder_seq_length", "model.data.num_workers",
                                    "model.data.pin_memory", "model.validation_metric",
                                    "model.sequence_parallel", "model.megatron_amp_O2"};

/// Micro-batches of prompt examples: sample k of the run is example order[epoch(k)][k % E], the
/// epoch's order a seeded shuffle (seed + epoch) or the file order; E = floor(N / GBS) * GBS
/// (NeMo's drop_last); the last global batch of an epoch is never partial.
class PromptBatchSource final : public train::BatchSource {
 public:
  PromptBatchSource(std::vector<PromptExample> examples, const std::vector<TaskTemplate>* templates,
                    const PromptTokenizer* tok, std::int64_t micro, std::int64_t epoch_samples, bool shuffle,
                    std::uint64_t seed, std::int64_t epochs)
      : examples_(std::move(examples)), templates_(templates), tok_(tok), micro_(micro), epoch_(epoch_samples),
        shuffle_(shuffle), seed_(seed), epochs_(epochs) {}

  model::Batch batch(std::int64_t first) override {
    std::vector<const PromptExample*> rows;
    for (std::int64_t k = first; k < first + micro_; ++k) rows.push_back(&examples_[index(k)]);
    current_ = collate_prompt_batch(rows, *templates_, *tok_);
    model::Batch b;
    b.tokens = TensorView(current_.tokens.data(), DType::kI32, Shape{current_.batch, current_.seq});
    b.labels = TensorView(current_.labels.data(), DType::kI32, Shape{current_.batch, current_.seq});
    b.loss_mask = TensorView(current_.loss_mask.data(), DType::kF32, Shape{current_.batch, current_.seq});
    b.task_ids = TensorView(current_.task_ids.data(), DType::kI32, Shape{current_.batch});
    return b;
  }
  std::int64_t size() const override { return epoch_ * epochs_; }

 private:
  std::size_t index(std::int64_t k) {
    if (k < 0 || k >= size())
      throw DataError(fmt::format("prompt-learning sample {} is past the {} samples of {} epochs", k, size(), epochs_));
    const std::int64_t e = k / epoch_;
    if (e != order_epoch_) {
      order_.resize(examples_.size());
      std::iota(order_.begin(), order_.end(), std::size_t{0});
      if (shuffle_) {
        std::mt19937_64 gen(seed_ + static_cast<std::uint64_t>(e));
        for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen() % i]);
      }
      order_epoch_ = e;
    }
    return order_[static_cast<std::size_t>(k % epoch_)];
  }

  std::vector<PromptExample> examples_;
  const std::vector<TaskTemplate>* templates_;
  const PromptTokenizer* tok_;
  std::int64_t micro_, epoch_;
  bool shuffle_;
  std::uint64_t seed_;
  std::int64_t epochs_;
  std::vector<std::size_t> order_;
  std::int64_t order_epoch_ = -1;
  PromptBatch current_;
};

/// Mean validation loss: per global batch of validation_global_batch_size (the last one partial
/// unless validation_drop_last), the mean of its micro-batch losses; then the mean over batches.
double validation_loss(model::Model& m, const std::vector<PromptExample>& val, const std::vector<TaskTemplate>& templates,
                       const PromptTokenizer& tok, std::int64_t gbs, std::int64_t mbs, bool drop_last) {
  const auto n = static_cast<std::int64_t>(val.size());
  const std::int64_t batches = drop_last ? n / gbs : (n + gbs - 1) / gbs;
  double total = 0.0;
  for (std::int64_t g = 0; g < batches; ++g) {
    const std::int64_t begin = g * gbs, end = std::min(n, begin + gbs);
    double sum = 0.0;
    std::int64_t micro = 0;
    for (std::int64_t s = begin; s < end; s += mbs, ++micro) {
      std::vector<const PromptExample*> rows;
      for (std::int64_t k = s; k < std::min(end, s + mbs); ++k) rows.push_back(&val[static_cast<std::size_t>(k)]);
      PromptBatch pb = collate_prompt_batch(rows, templates, tok);
      model::Batch b;
      b.tokens = TensorView(pb.tokens.data(), DType::kI32, Shape{pb.batch, pb.seq});
      b.labels = TensorView(pb.labels.data(), DType::kI32, Shape{pb.batch, pb.seq});
      b.loss_mask = TensorView(pb.loss_mask.data(), DType::kF32, Shape{pb.batch, pb.seq});
      b.task_ids = TensorView(pb.task_ids.data(), DType::kI32, Shape{pb.batch});
      sum += m.evaluate(b);
    }
    total += sum / static_cast<double>(micro);
  }
  return batches > 0 ? total / static_cast<double>(batches) : 0.0;
}

std::optional<model::Precision> precision_of(const train::TrainingConfig& c) { return c.model.precision; }

/// The prompt model's tasks: every template, new ones trainable, existing ones frozen tables.
PromptModelConfig prompt_model_config(const std::vector<TaskTemplate>& templates, const std::vector<std::string>& new_tasks,
                                      const std::vector<std::string>& existing_tasks, PromptStyle style,
                                      const PromptTokenizer& tok, const PromptEncoderConfig& encoder,
                                      const std::vector<std::string>& init_methods,
                                      const std::vector<std::string>& init_texts) {
  PromptModelConfig pc;
  pc.style = style;
  pc.pseudo_start = tok.pseudo_start();
  pc.pad_id = tok.pad();
  pc.encoder = encoder;
  for (const TaskTemplate& t : templates) {
    pc.virtual_tokens = std::max(pc.virtual_tokens, t.total_virtual_tokens);
    PromptTaskSpec spec;
    spec.name = t.taskname;
    spec.taskname_ids = tok.base().encode(t.taskname);
    const auto in = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), t.taskname) != v.end(); };
    spec.is_new = in(new_tasks);
    if (!spec.is_new && !in(existing_tasks))
      throw ConfigError(fmt::format("model.task_templates: task '{}' is in neither model.new_tasks nor "
                                    "model.existing_tasks",
                                    t.taskname));
    if (spec.is_new && style == PromptStyle::kPromptTuning) {
      const auto pos = static_cast<std::size_t>(std::find(new_tasks.begin(), new_tasks.end(), t.taskname) - new_tasks.begin());
      const std::string method = pos < init_methods.size() ? init_methods[pos] : "random";
      if (method == "text") {
        if (pos >= init_texts.size())
          throw ConfigError(fmt::format("model.prompt_tuning.new_prompt_init_text: no text for new task '{}'", t.taskname));
        spec.init_text_ids = tok.base().encode(init_texts[pos]);
        if (spec.init_text_ids.empty())
          throw ConfigError(fmt::format("model.prompt_tuning.new_prompt_init_text: the text for task '{}' has no tokens",
                                        t.taskname));
      } else if (method != "random") {
        throw ConfigError(fmt::format("model.prompt_tuning.new_prompt_init_methods: '{}' is not text or random", method));
      }
    }
    pc.tasks.push_back(std::move(spec));
  }
  for (const TaskTemplate& t : templates)
    if (t.total_virtual_tokens != pc.virtual_tokens)
      throw ConfigError(fmt::format("model.task_templates: every task here has the same total_virtual_tokens (task '{}' "
                                    "has {}, another {})",
                                    t.taskname, t.total_virtual_tokens, pc.virtual_tokens));
  return pc;
}

}  // namespace

std::vector<TaskTemplate> bind_task_templates(const ConfigView& cfg, const std::string& key) {
  std::vector<TaskTemplate> out;
  const config::ConfigNode list = cfg.get<config::ConfigNode>(key);
  if (!list.is_list() || list.size() == 0)
    throw ConfigError(fmt::format("{}: expected a list of task templates", where(cfg, key)));
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string p = fmt::format("{}.{}", key, i);
    TaskTemplate t;
    t.taskname = cfg.get<std::string>(p + ".taskname");
    t.prompt_template = cfg.get<std::string>(p + ".prompt_template");
    t.fields = template_fields(t.prompt_template);
    if (auto given = cfg.find<std::vector<std::string>>(p + ".prompt_template_fields")) {
      if (*given != t.fields)
        throw ConfigError(fmt::format("{}: [{}] differs from the template's fields [{}]", where(cfg, p + ".prompt_template_fields"),
                                      fmt::join(*given, ", "), fmt::join(t.fields, ", ")));
    }
    t.total_virtual_tokens = cfg.get<std::int64_t>(p + ".total_virtual_tokens");
    t.virtual_token_splits = cfg.get<std::vector<std::int64_t>>(p + ".virtual_token_splits");
    t.truncate_field = cfg.find<std::string>(p + ".truncate_field").value_or("");
    t.answer_field = cfg.find<std::string>(p + ".answer_field").value_or("");
    t.answer_only_loss = cfg.get_or<bool>(p + ".answer_only_loss", false);
    t.task_id = static_cast<int>(i);
    for (const auto& prev : out)
      if (prev.taskname == t.taskname)
        throw ConfigError(fmt::format("{}: task '{}' appears twice", where(cfg, p + ".taskname"), t.taskname));
    out.push_back(std::move(t));
  }
  return out;
}

PromptLearningJob bind_prompt_learning(const ConfigView& cfg) {
  PromptLearningJob j;
  train::TrainingConfig& c = j.training;
  if (cfg.has("model.pipeline_model_parallel_split_rank"))
    throw ConfigError(fmt::format("{}: a T5/mT5 prompt-learning config; T5/mT5 prompt learning (prompt_learning=t5/squad, "
                                  "mt5/squad) is not built, GPT prompt learning is (prompt_learning=gpt3/squad)",
                                  where(cfg, "model.pipeline_model_parallel_split_rank")));
  train::bind_trainer_exp_manager_optim(cfg, c);
  for (const char* k : kIgnored) cfg.mark_used(k);
  // Honoured: the final .nemo takes the best val_loss checkpoint (save_best_model).
  cfg.mark_used("exp_manager.checkpoint_callback_params.save_best_model");
  if (auto r = cfg.find<std::string>("trainer.resume_from_checkpoint"))
    throw ConfigError(fmt::format("{}: '{}' is not supported: a run resumes from its own newest checkpoint with "
                                  "exp_manager.resume_if_exists=True",
                                  where(cfg, "trainer.resume_from_checkpoint"), *r));
  if (cfg.get_or<bool>("model.optim.sched.reduce_on_plateau", false))
    throw ConfigError(fmt::format("{}: True is not supported", where(cfg, "model.optim.sched.reduce_on_plateau")));
  cfg.mark_used("model.optim.sched.monitor");  // used by reduce_on_plateau only
  j.max_epochs = cfg.get_or<std::int64_t>("trainer.max_epochs", 1);
  c.micro_batch_size = cfg.get<std::int64_t>("model.micro_batch_size");
  c.global_batch_size = cfg.get<std::int64_t>("model.global_batch_size");
  c.model.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  c.pipeline_model_parallel_size = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  if (c.model.tensor_model_parallel_size != 1 || c.pipeline_model_parallel_size != 1)
    throw ConfigError(fmt::format("{}: prompt learning runs one rank per model replica here (TP 1, PP 1); got TP {} "
                                  "PP {} (reshard the base model with bignlp-convert)",
                                  where(cfg, "model.tensor_model_parallel_size"), c.model.tensor_model_parallel_size,
                                  c.pipeline_model_parallel_size));
  // NeMo derives the checkpoint's model-parallel size from TP x PP (1 here): another value is refused.
  if (const auto mp = cfg.find<std::int64_t>("exp_manager.checkpoint_callback_params.model_parallel_size"); mp && *mp != 1)
    throw ConfigError(fmt::format("{}: {} differs from model.tensor_model_parallel_size x "
                                  "model.pipeline_model_parallel_size (1); leave it null or set it to 1",
                                  where(cfg, "exp_manager.checkpoint_callback_params.model_parallel_size"), *mp));
  cfg.mark_used("exp_manager.checkpoint_callback_params.model_parallel_size");
  c.seed = cfg.get_or<std::uint64_t>("model.seed", 1234);
  j.validation_global_batch_size = cfg.get_or<std::int64_t>("model.validation_global_batch_size", c.global_batch_size);
  j.validation_micro_batch_size = cfg.get_or<std::int64_t>("model.validation_micro_batch_size", c.micro_batch_size);
  j.validation_drop_last = cfg.get_or<bool>("model.validation_drop_last", true);
  if (j.validation_global_batch_size <= 0 || j.validation_micro_batch_size <= 0)
    throw ConfigError(fmt::format("{}: validation batch sizes must be positive", where(cfg, "model.validation_global_batch_size")));
  if (cfg.get_or<bool>("model.report_validation_metric", false))
    throw ConfigError(fmt::format("{}: True is not supported: validation reports val_loss; the answers are scored by "
                                  "evaluation=prompt_gpt3/squad (acc, ppl)",
                                  where(cfg, "model.report_validation_metric")));
  j.nemo_path = cfg.get<std::string>("model.nemo_path");
  j.style = parse_prompt_style(cfg.get<std::string>("model.virtual_prompt_style"));
  if (j.style == PromptStyle::kInference)
    throw ConfigError(fmt::format("{}: 'inference' does not train (use p-tuning or prompt-tuning)",
                                  where(cfg, "model.virtual_prompt_style")));
  if (auto r = cfg.find<std::string>("model.restore_path")) j.restore_path = *r;
  j.language_model_path = cfg.get<std::string>("model.language_model_path");
  j.existing_tasks = cfg.get_or<std::vector<std::string>>("model.existing_tasks", {});
  j.new_tasks = cfg.get<std::vector<std::string>>("model.new_tasks");
  if (j.new_tasks.empty()) throw ConfigError(fmt::format("{}: no task to learn", where(cfg, "model.new_tasks")));
  if (!j.existing_tasks.empty() && !j.restore_path)
    throw ConfigError(fmt::format("{}: existing tasks come from an earlier prompt-learnt model: set model.restore_path",
                                  where(cfg, "model.existing_tasks")));
  j.templates = bind_task_templates(cfg, "model.task_templates");
  for (const auto& name : j.new_tasks)
    if (std::none_of(j.templates.begin(), j.templates.end(), [&](const TaskTemplate& t) { return t.taskname == name; }))
      throw ConfigError(fmt::format("{}: task '{}' has no entry in model.task_templates", where(cfg, "model.new_tasks"), name));
  // The style's own block is read; the other one is accepted and unused (NeMo reads only its style's).
  if (j.style == PromptStyle::kPTuning) {
    cfg.mark_used("model.prompt_tuning");
    cfg.mark_used("model.prompt_learning");
    j.encoder.type = parse_encoder_type(cfg.get_or<std::string>("model.p_tuning.encoder_type", "lstm"));
    j.encoder.num_layers = cfg.get_or<int>("model.p_tuning.num_layers", 2);
    j.encoder.encoder_hidden = cfg.get_or<std::int64_t>("model.p_tuning.encoder_hidden", 0);
    j.encoder.init_std = cfg.get_or<float>("model.p_tuning.init_std", 0.023f);
    const float dropout = cfg.get_or<float>("model.p_tuning.dropout", 0.0f);
    // PyTorch's LSTM applies dropout between layers only: one layer ignores it.
    if (dropout != 0.0f && !(j.encoder.type == EncoderType::kLstm && j.encoder.num_layers == 1))
      throw ConfigError(fmt::format("{}: {} is not supported: the prompt encoder runs without dropout (0.0)",
                                    where(cfg, "model.p_tuning.dropout"), dropout));
  } else {
    cfg.mark_used("model.p_tuning");
    cfg.mark_used("model.prompt_learning");
    j.init_methods = cfg.get_or<std::vector<std::string>>("model.prompt_tuning.new_prompt_init_methods", {});
    j.init_texts = cfg.get_or<std::vector<std::string>>("model.prompt_tuning.new_prompt_init_text", {});
  }
  j.train_files = [&] {
    std::vector<fs::path> v;
    for (const auto& s : cfg.string_list("model.data.train_ds")) v.emplace_back(s);
    return v;
  }();
  if (cfg.has("model.data.validation_ds"))
    for (const auto& s : cfg.string_list("model.data.validation_ds")) j.validation_files.emplace_back(s);
  if (auto test = cfg.find<config::ConfigNode>("model.data.test_ds"); test && !test->is_null())
    throw ConfigError(fmt::format("{}: a test set is not run by the prompt_learning stage (use evaluation=prompt_gpt3/squad)",
                                  where(cfg, "model.data.test_ds")));
  j.add_eos = cfg.get_or<bool>("model.data.add_eos", true);
  j.shuffle = cfg.get_or<bool>("model.data.shuffle", true);
  if (cfg.get_or<bool>("model.data.add_bos", false))
    throw ConfigError(fmt::format("{}: True is not supported (GPT prompt learning adds no BOS)", where(cfg, "model.data.add_bos")));

  cfg.sub("trainer").check_all_used("prompt_learning");
  cfg.sub("exp_manager").check_all_used("prompt_learning");
  cfg.sub("model").check_all_used("prompt_learning");
  j.model_section = cfg.node("model");
  config::ConfigNode hp = config::ConfigNode::dict();
  hp.set("cfg", j.model_section);
  c.hparams_yaml = config::to_yaml(hp);
  return j;
}

std::unique_ptr<model::Model> load_frozen_base(const fs::path& path, const ops::OpContext& ctx,
                                               std::optional<model::Precision> precision, const fs::path& scratch,
                                               const Logger& log, fs::path* checkpoint_dir) {
  fs::path dir = path;
  if (path.extension() == ".nemo") {
    if (!fs::is_regular_file(path))
      throw IoError(fmt::format("{}: no such .nemo file (model.language_model_path: run the conversion stage first)",
                                path.string()));
    dir = scratch / "base";
    if (!fs::exists(dir / "metadata.json")) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      exporting::import_nemo(path, dir, log);
    }
  } else if (!fs::is_directory(path)) {
    throw IoError(fmt::format("{}: no such checkpoint directory or .nemo file (model.language_model_path)", path.string()));
  }
  checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(dir);
  const auto registry = model::ModelFamilyRegistry::builtin();
  if (!registry.contains(meta.family))
    throw DataError(fmt::format("{}: unknown model family '{}'", dir.string(), meta.family));
  if (precision) meta.model["precision"] = model::precision_name(*precision);
  auto base = registry.build(meta.family, meta.model, ctx, {}, [](const model::Parameter&) { return false; });
  checkpoint::load_checkpoint(dir, base->parameters(), nullptr, ctx);
  if (checkpoint_dir != nullptr) *checkpoint_dir = dir;
  return base;
}

PromptLearningResult run_prompt_learning(const PromptLearningJob& job, const ops::OpContext& ctx,
                                         const parallel::ParallelContext& parallel, const Logger& log,
                                         const std::atomic<int>* stop_flag, std::FILE* out) {
  PromptLearningResult result;
  train::TrainingConfig c = job.training;
  const fs::path results = c.exp_manager.explicit_log_dir;
  fs::create_directories(results);
  const fs::path scratch = results / ".prompt-base";
  // The base: its tokenizer (recorded in the checkpoint), sizes and precision.
  if (parallel.world != nullptr && parallel.grid.rank() != 0) parallel.world->barrier();
  fs::path base_dir;
  auto probe = load_frozen_base(job.language_model_path, ctx, precision_of(c), scratch, log, &base_dir);
  if (parallel.world != nullptr && parallel.grid.rank() == 0) parallel.world->barrier();
  std::shared_ptr<const data::Tokenizer> tokenizer = infer::load_checkpoint_tokenizer(base_dir);
  if (!tokenizer)
    throw ConfigError(fmt::format("{}: the base checkpoint records no tokenizer (metadata.json), which prompt learning "
                                  "needs to tokenize the task templates",
                                  base_dir.string()));
  const std::int64_t max_len = probe->max_sequence_length();
  std::int64_t max_virtual = 0;
  for (const auto& t : job.templates) max_virtual = std::max(max_virtual, t.total_virtual_tokens);
  PromptTokenizer tok(tokenizer, max_virtual);
  for (const auto& t : job.templates)
    validate_template(t, max_len, /*for_train=*/true, fmt::format("prompt_learning.model.task_templates.{}", t.task_id));
  PromptDatasetOptions dopt;
  dopt.max_seq_length = max_len;  // the frozen model's (NeMo ignores model.encoder_seq_length)
  dopt.add_eos = job.add_eos;
  std::int64_t skipped = 0;
  std::vector<PromptExample> train_ex = load_prompt_examples(job.train_files, job.templates, tok, dopt, &skipped);
  if (skipped > 0) log.warn("{} training examples skipped (length outside [1, {}])", skipped, max_len);
  std::vector<PromptExample> val_ex;
  if (!job.validation_files.empty()) val_ex = load_prompt_examples(job.validation_files, job.templates, tok, dopt, &skipped);
  result.train_examples = static_cast<std::int64_t>(train_ex.size());
  result.validation_examples = static_cast<std::int64_t>(val_ex.size());
  const std::int64_t steps_per_epoch = result.train_examples / c.global_batch_size;
  if (steps_per_epoch == 0)
    throw ConfigError(fmt::format("model.global_batch_size: {} is more than the {} training examples", c.global_batch_size,
                                  result.train_examples));
  std::int64_t epochs = job.max_epochs;
  if (c.max_steps <= 0) {
    c.max_steps = steps_per_epoch * job.max_epochs;
  } else {
    epochs = (c.max_steps + steps_per_epoch - 1) / steps_per_epoch;
  }
  // The task-specific objects live as long as the trainer.
  PromptModelConfig pc = prompt_model_config(job.templates, job.new_tasks, job.existing_tasks, job.style, tok, job.encoder,
                                             job.init_methods, job.init_texts);
  pc.base_pointer = {{"language_model_path", fs::absolute(job.language_model_path).string()},
                     {"family", std::string(probe->family())}};
  std::map<std::string, std::vector<float>> existing;
  if (job.restore_path) {
    LoadedPromptModel old = load_prompt_model(*job.restore_path, ctx, precision_of(c), job.language_model_path, log);
    for (const auto& name : job.existing_tasks) {
      if (std::find(old.tasks.begin(), old.tasks.end(), name) == old.tasks.end())
        throw ConfigError(fmt::format("model.existing_tasks: '{}' is not a task of {} (it has: {})", name,
                                      job.restore_path->string(), fmt::join(old.tasks, ", ")));
    }
    existing = old.model->final_tables();
  }
  c.model_family = "gpt_prompt";
  c.model.precision = probe->compute_dtype() == DType::kF32 ? model::Precision::kFp32 : c.model.precision;
  c.model.seq_length = max_len;
  probe.reset();
  auto model_factory = [&](const parallel::ParallelContext&) -> std::unique_ptr<model::Model> {
    auto base = load_frozen_base(job.language_model_path, ctx, precision_of(c), scratch, log);
    auto m = std::make_unique<PromptModel>(pc, std::move(base), ctx);
    for (const auto& [name, rows] : existing) m->set_table(name, rows);
    return m;
  };
  c.family_config = {{"virtual_prompt_style", prompt_style_name(job.style)}};
  train::TrainerParts parts;
  parts.model = model_factory;
  parts.train_batches = std::make_shared<PromptBatchSource>(std::move(train_ex), &job.templates, &tok, c.micro_batch_size,
                                                            steps_per_epoch * c.global_batch_size, job.shuffle, c.seed,
                                                            epochs);
  if (!val_ex.empty()) {
    parts.evaluator = [&](model::Model& m, std::int64_t) -> std::optional<double> {
      return validation_loss(m, val_ex, job.templates, tok, job.validation_global_batch_size,
                             job.validation_micro_batch_size, job.validation_drop_last);
    };
  }
  log.info("prompt learning ({}): {} training / {} validation examples, {} steps ({} per epoch), tasks new [{}] existing "
           "[{}]",
           prompt_style_name(job.style), result.train_examples, result.validation_examples, c.max_steps, steps_per_epoch,
           fmt::join(job.new_tasks, ", "), fmt::join(job.existing_tasks, ", "));
  train::Trainer trainer(c, log, ctx, out, std::move(parts));
  trainer.set_parallel(parallel);
  trainer.set_stop_flag(stop_flag);
  result.train = trainer.fit();
  auto* pm = dynamic_cast<PromptModel*>(trainer.model());
  BIGNLP_CHECK(pm != nullptr, "the prompt-learning trainer holds another model");
  // save_best_model: the checkpoint with the lowest val_loss, when validation ran.
  std::optional<std::pair<double, fs::path>> best;
  for (const auto& p : checkpoint::list_checkpoints(results / "checkpoints")) {
    const auto meta = checkpoint::read_checkpoint_metadata(p);
    if (meta.val_loss && (!best || *meta.val_loss < best->first)) best = std::make_pair(*meta.val_loss, p);
  }
  if (best) {
    checkpoint::load_checkpoint(best->second, pm->parameters(), nullptr, ctx);
    log.info("prompt tables from the best checkpoint {} (val_loss {:.4f})", best->second.string(), best->first);
  }
  if (parallel.grid.rank() == 0) {
    const std::map<std::string, std::vector<float>> tables = pm->final_tables();
    // model_config.yaml: the style becomes inference, every task an existing one.
    config::ConfigNode cfg = job.model_section;
    cfg.set_path("virtual_prompt_style", config::ConfigNode::string("inference"));
    config::ConfigNode tasks = config::ConfigNode::list();
    for (const auto& t : job.templates)
      if (tables.count(t.taskname) != 0) tasks.push_back(config::ConfigNode::string(t.taskname));
    cfg.set_path("existing_tasks", tasks);
    cfg.set_path("new_tasks", config::ConfigNode::list());
    cfg.set_path("language_model_path", config::ConfigNode::string(fs::absolute(job.language_model_path).string()));
    cfg.set_path("target", config::ConfigNode::string(
                               "nemo.collections.nlp.models.language_modeling.megatron_gpt_prompt_learning_model."
                               "MegatronGPTPromptLearningModel"));
    result.nemo = job.nemo_path;
    fs::create_directories(result.nemo.parent_path());
    TempDir staging("bignlp-prompt-nemo");
    {
      exporting::TorchFileWriter w(staging.path() / "model_weights.ckpt", "model_weights");
      w.set_outer_key("prompt_table");
      for (const auto& [name, rows] : tables) {
        const auto hidden = static_cast<std::int64_t>(rows.size()) / pc.virtual_tokens;
        w.add(prompt_table_key(name),
              TensorView(const_cast<float*>(rows.data()), DType::kF32, Shape{pc.virtual_tokens, hidden}));
        std::vector<std::int64_t> idx(static_cast<std::size_t>(pc.virtual_tokens));
        std::iota(idx.begin(), idx.end(), std::int64_t{0});
        w.add("prompt_table." + name + ".indices", TensorView(idx.data(), DType::kI64, Shape{pc.virtual_tokens}));
      }
      w.finish();
    }
    const fs::path tmp = result.nemo.parent_path() / (".tmp-" + result.nemo.filename().string());
    {
      exporting::TarWriter tar(tmp);
      tar.add_directory("./");
      tar.add_bytes("./model_config.yaml", config::to_yaml(cfg));
      tar.add_file("./model_weights.ckpt", staging.path() / "model_weights.ckpt");
      tar.finish();
    }
    fs::rename(tmp, result.nemo);
    std::vector<std::string> names;
    for (const auto& [k, v] : tables) names.push_back(k);
    log.info("wrote the prompt-learnt model {} (tasks: {}; base {})", result.nemo.string(), fmt::join(names, ", "),
             fs::absolute(job.language_model_path).string());
  }
  if (parallel.world != nullptr) parallel.world->barrier();
  return result;
}

LoadedPromptModel load_prompt_model(const fs::path& nemo, const ops::OpContext& ctx, std::optional<model::Precision> precision,
                                    const std::optional<fs::path>& language_model, const Logger& log) {
  LoadedPromptModel out;
  if (!fs::is_regular_file(nemo)) throw IoError(fmt::format("{}: no such prompt-learnt .nemo file", nemo.string()));
  out.scratch = std::make_unique<TempDir>("bignlp-prompt");
  const fs::path dir = out.scratch->path() / "nemo";
  fs::create_directories(dir);
  exporting::extract_tar(nemo, dir);
  if (!fs::exists(dir / "model_config.yaml") || !fs::exists(dir / "model_weights.ckpt"))
    throw DataError(fmt::format("{}: not a prompt-learnt model (model_config.yaml and model_weights.ckpt expected)",
                                nemo.string()));
  const config::ConfigNode root = config::load_yaml_file(dir / "model_config.yaml");
  const ConfigView cfg(root);
  const fs::path lm = language_model ? *language_model : fs::path(cfg.get<std::string>("language_model_path"));
  fs::path base_dir;
  auto base = load_frozen_base(lm, ctx, precision, out.scratch->path(), log, &base_dir);
  out.tokenizer = infer::load_checkpoint_tokenizer(base_dir);
  if (!out.tokenizer) throw ConfigError(fmt::format("{}: the base checkpoint records no tokenizer", base_dir.string()));
  out.templates = bind_task_templates(cfg, "task_templates");
  std::int64_t max_virtual = 0;
  for (const auto& t : out.templates) max_virtual = std::max(max_virtual, t.total_virtual_tokens);
  out.prompt_tokenizer = std::make_unique<PromptTokenizer>(out.tokenizer, max_virtual);
  out.tasks = cfg.get_or<std::vector<std::string>>("existing_tasks", {});
  // Only tasks with tables can be used: drop the templates of the others.
  std::vector<TaskTemplate> kept;
  for (auto t : out.templates)
    if (std::find(out.tasks.begin(), out.tasks.end(), t.taskname) != out.tasks.end()) {
      t.task_id = static_cast<int>(kept.size());
      kept.push_back(std::move(t));
    }
  out.templates = std::move(kept);
  PromptModelConfig pc = prompt_model_config(out.templates, {}, out.tasks, PromptStyle::kInference, *out.prompt_tokenizer,
                                             PromptEncoderConfig{}, {}, {});
  pc.base_pointer = {{"language_model_path", fs::absolute(lm).string()}, {"family", std::string(base->family())}};
  out.base_max_length = base->max_sequence_length();
  out.model = std::make_unique<PromptModel>(pc, std::move(base), ctx);
  exporting::TorchFileReader reader(dir / "model_weights.ckpt");
  for (const auto& name : out.tasks) {
    if (reader.find(prompt_table_key(name)) == nullptr)
      throw DataError(fmt::format("{}: model_weights.ckpt has no '{}' (task '{}' of existing_tasks)", nemo.string(),
                                  prompt_table_key(name), name));
    out.model->set_table(name, reader.read_f32(prompt_table_key(name)));
  }
  return out;
}

}  // namespace bignlp::tune
