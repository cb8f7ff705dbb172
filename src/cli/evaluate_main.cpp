// bignlp-evaluate: zero-shot evaluation of trained checkpoints.
//
//   bignlp-evaluate --checkpoint CKPT --tasks lambada,piqa,...|all_tasks --data-dir DIR --output results.json
//                   [--tokenizer-library L --tokenizer-type T --vocab-file V --merge-file M --tokenizer-model SP]
//                   [--task-style launcher|lm-eval] [--batch-size N] [--limit N] [--cache-dir D | --no-cache]
//                   [--precision 32|bf16|16] [--device auto|cpu|cuda] [--threads N]
//     the task suite (eval/tasks.h, eval/evaluator.h): results in lm-eval's JSON shape, a table on
//     stdout, a progress bar with requests/s on a terminal; requests cached per (checkpoint, task).
//   bignlp-evaluate --config-path DIR --config-name NAME.yaml [OVERRIDE ...] [--threads N] [--device ...]
//     the launcher's evaluation stage (gpt3): run.tasks, run.tasks_data_dir, run.results_dir,
//     model.checkpoint_folder / checkpoint_name, model.tensor/pipeline_model_parallel_size,
//     model.precision, model.eval_batch_size, model.vocab_file / merge_file (docs/evaluation.md).
//   bignlp-evaluate --download --tasks ... --data-dir DIR [--manifest conf/eval_task_files.yaml]
//     fetches the task files (URLs and checksums: the manifest).
//   bignlp-evaluate --checkpoint CKPT --loglikelihood REQUESTS.jsonl --output OUT.jsonl [--batch-size N]
//     raw requests {"context": [ids], "continuation": [ids]} -> {"logprob": x, "is_greedy": b}.
//   bignlp-evaluate --checkpoint CKPT --generate ITEMS.jsonl --output PREDICTIONS.jsonl
//                   [--tokens-to-generate N] [--results RESULTS.json] [--batch-size N]
//     a generation task (eval/generation.h): {"text"|"ids": ..., "answers": [...]} per line,
//     greedy decoding on the inference engine (GPT, T5/mT5), predictions file, SQuAD EM/F1 and
//     exact_string_match on stdout and in RESULTS.json (default: PREDICTIONS with .metrics.json).
// A checkpoint with TP x PP shards is evaluated at that layout: one process per rank, started by
// the launcher (or srun / torchrun variables), which meet as bignlp-train's ranks do.
// --device auto (the default) scores on CUDA device LOCAL_RANK when the build has CUDA and a GPU is
// visible, else on the CPU. Precision 32 is exact fp32 on both (no TF32).
// Index: eval/tasks.h, eval/evaluator.h, eval/loglikelihood.h, eval/task_download.h, eval/generation.h,
// infer/engine.h (generation),
// checkpoint/checkpoint.h (loading), worker/worker_session.h (ranks and device).
#include <algorithm>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <fnmatch.h>

#include <iostream>
#include <string_view>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/metadata.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/config/view.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/eval/evaluator.h"
#include "bignlp/eval/generation.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/eval/task_download.h"
#include "bignlp/finetune/seq2seq_evaluation.h"
#include "bignlp/model/model_family.h"
#include "bignlp/tune/prompt_evaluation.h"
#include "bignlp/worker/worker_session.h"

namespace {

namespace fs = std::filesystem;
using bignlp::ConfigError;

struct TokenizerFlags {
  std::string library, type, vocab_file, merge_file, model;
  bool any() const { return !library.empty() || !type.empty() || !vocab_file.empty() || !merge_file.empty() || !model.empty(); }
};

/// Everything one evaluation run needs, from the flags or the stage config.
struct RunSpec {
  fs::path checkpoint;
  std::vector<std::string> tasks;
  fs::path data_dir;
  TokenizerFlags tokenizer;
  std::string tokenizer_from = "the flags";
  bignlp::eval::TaskStyle style = bignlp::eval::TaskStyle::kLauncher;
  std::int64_t batch_size = 8;
  std::optional<std::int64_t> limit;
  fs::path output;
  fs::path cache_dir;
  std::optional<std::string> precision;
  std::string device = "auto";
  int threads = 0;
  int bootstrap_iters = 100000;
  // Stage runs: the layout the config asks for, with the keys that said so.
  std::optional<int> expected_tp, expected_pp;
  std::string tp_key = "--tensor-model-parallel-size", pp_key = "--pipeline-model-parallel-size";
  std::string model_name = "bignlp";
};

bignlp::data::TokenizerSpec tokenizer_spec(const RunSpec& spec, const bignlp::checkpoint::CheckpointState& meta) {
  bignlp::data::TokenizerSpec s;
  std::map<std::string, std::string> t = meta.tokenizer;
  const TokenizerFlags& f = spec.tokenizer;
  if (f.any()) {
    // Flags replace the checkpoint's tokenizer; a vocabulary given without a type keeps the type.
    if (!f.library.empty()) t["library"] = f.library;
    if (!f.type.empty()) t["type"] = f.type;
    if (!f.vocab_file.empty()) t["vocab_file"] = f.vocab_file;
    if (!f.merge_file.empty()) t["merge_file"] = f.merge_file;
    if (!f.model.empty()) t["model"] = f.model;
  }
  if (t.empty())
    throw ConfigError(fmt::format("{} records no tokenizer; give --tokenizer-type and its files",
                                  spec.checkpoint.string()));
  s.library = t.count("library") ? t["library"] : "megatron";
  s.type = t.count("type") ? t["type"] : "";
  if (t.count("vocab_file")) s.vocab_file = t["vocab_file"];
  if (t.count("merge_file")) s.merge_file = t["merge_file"];
  if (t.count("model")) s.model_file = t["model"];
  return s;
}

std::string model_key(const RunSpec& spec, const std::string& precision) {
  const std::string text = fs::weakly_canonical(spec.checkpoint).string() + "\n" +
                           bignlp::read_file(spec.checkpoint / "metadata.json") + "\n" + precision;
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

int run_tasks(const RunSpec& spec, bignlp::Logger log) {
  const bignlp::checkpoint::CheckpointState meta = bignlp::checkpoint::read_checkpoint_metadata(spec.checkpoint);
  if (spec.expected_tp && *spec.expected_tp != meta.tp_size)
    throw ConfigError(fmt::format("{}={} but checkpoint {} has tensor_model_parallel_size {} (evaluate at the "
                                  "checkpoint's layout, or reshard it with bignlp-convert)",
                                  spec.tp_key, *spec.expected_tp, spec.checkpoint.string(), meta.tp_size));
  if (spec.expected_pp && *spec.expected_pp != meta.pp_size)
    throw ConfigError(fmt::format("{}={} but checkpoint {} has pipeline_model_parallel_size {} (evaluate at the "
                                  "checkpoint's layout, or reshard it with bignlp-convert)",
                                  spec.pp_key, *spec.expected_pp, spec.checkpoint.string(), meta.pp_size));
  if (meta.virtual_pp_size > 1)
    throw ConfigError(fmt::format("checkpoint {} has a virtual pipeline ({} chunks per stage), which evaluation does "
                                  "not run; reshard it with bignlp-convert",
                                  spec.checkpoint.string(), meta.virtual_pp_size));
  // Tasks and tokenizer first: a wrong path fails before any rank meets another.
  std::vector<bignlp::eval::Task> tasks;
  for (const auto& name : spec.tasks) tasks.push_back(bignlp::eval::load_task(name, spec.data_dir, spec.style, spec.limit));
  const auto tokenizer = bignlp::data::load_tokenizer(tokenizer_spec(spec, meta));

  const bool parallel = meta.tp_size * meta.pp_size > 1;
  bignlp::worker::WorkerOptions options;
  options.world = parallel ? bignlp::worker::WorldKind::kLauncher : bignlp::worker::WorldKind::kSingleProcess;
  options.device_flag = spec.device;
  options.cpu_threads = spec.threads;
  options.allow_tf32 = false;
  options.tensor_model_parallel_size = meta.tp_size;
  options.pipeline_model_parallel_size = meta.pp_size;
  const std::map<std::string, std::string> env = bignlp::process_environment();
  if (parallel && bignlp::comm::parse_distributed_env(env).world_size != meta.tp_size * meta.pp_size)
    throw ConfigError(fmt::format("checkpoint {} is split TP {} x PP {} = {} ranks, but {} processes were started; start "
                                  "one per rank (the stage's run.nodes x run.ntasks_per_node)",
                                  spec.checkpoint.string(), meta.tp_size, meta.pp_size, meta.tp_size * meta.pp_size,
                                  bignlp::comm::parse_distributed_env(env).world_size));
  const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(options, env, log);
  log = parallel ? session.log() : log;
  const bignlp::ops::OpContext& ctx = session.context();
  if (ctx.device.is_cuda()) log.info("scoring on {}", session.runtime().describe());
  const std::optional<bignlp::model::Precision> precision =
      spec.precision ? std::optional(bignlp::model::parse_precision(*spec.precision)) : std::nullopt;
  std::unique_ptr<bignlp::model::Model> model;
  if (!parallel) {
    model = bignlp::checkpoint::load_model_from_checkpoint(spec.checkpoint, ctx, precision);
  } else {
    nlohmann::json config = meta.model;
    if (precision) config["precision"] = bignlp::model::precision_name(*precision);
    const auto& registry = bignlp::model::ModelFamilyRegistry::builtin();
    model = registry.build(meta.family, config, ctx, session.parallel_context());
    bignlp::checkpoint::load_checkpoint(spec.checkpoint, model->parameters(), nullptr, ctx, session.parallel_context());
  }
  if (tokenizer->vocab_size() > model->vocab_size())
    throw ConfigError(fmt::format("the tokenizer ({}) has {} tokens but the model of {} takes {}", spec.tokenizer_from,
                                  tokenizer->vocab_size(), spec.checkpoint.string(), model->vocab_size()));
  const bool reporting = session.env().rank == 0;
  log.info("evaluating {} (TP {} x PP {}, precision {}) on {} with the {} task style", spec.checkpoint.string(),
           meta.tp_size, meta.pp_size, spec.precision.value_or("as trained"), bignlp::join(spec.tasks, ", "),
           bignlp::eval::task_style_name(spec.style));

  bignlp::eval::EvalOptions eo;
  eo.style = spec.style;
  eo.batch_size = spec.batch_size;
  eo.limit = spec.limit;
  eo.bootstrap_iters = spec.bootstrap_iters;
  eo.cache_dir = spec.cache_dir;
  eo.model_key = model_key(spec, spec.precision.value_or(""));
  eo.is_reporting_rank = reporting;
  if (parallel) eo.after_cache_read = [&session] { session.barrier(); };
  std::vector<bignlp::eval::TaskReport> reports;
  for (const auto& task : tasks) {
    reports.push_back(bignlp::eval::evaluate_task(*model, *tokenizer, task, eo, log));
    const auto& r = reports.back();
    log.info("{}: {} documents, {} requests ({} cached) in {:.1f} s", r.name, r.docs, r.requests, r.cached, r.seconds);
  }
  if (reporting) {
    const nlohmann::json config = {{"model", spec.model_name},
                                   {"model_args", fmt::format("checkpoint={}", spec.checkpoint.string())},
                                   {"num_fewshot", 0},
                                   {"batch_size", spec.batch_size},
                                   {"device", ctx.device.is_cuda() ? "cuda" : "cpu"},
                                   {"no_cache", spec.cache_dir.empty()},
                                   {"limit", spec.limit ? nlohmann::json(*spec.limit) : nlohmann::json(nullptr)},
                                   {"bootstrap_iters", spec.bootstrap_iters},
                                   {"description_dict", nlohmann::json::object()},
                                   {"task_style", std::string(bignlp::eval::task_style_name(spec.style))},
                                   {"tensor_model_parallel_size", meta.tp_size},
                                   {"pipeline_model_parallel_size", meta.pp_size}};
    if (spec.output.has_parent_path()) fs::create_directories(spec.output.parent_path());
    bignlp::write_file_atomic(spec.output, bignlp::eval::results_json(reports, config).dump(2) + "\n");
    std::cout << bignlp::eval::results_table(reports) << std::flush;
    log.info("results written to {}", spec.output.string());
  }
  session.barrier();
  return 0;
}

/// The checkpoint the stage names: model.checkpoint_folder with checkpoint_name "latest" (the
/// highest step) or a name pattern (the highest step among the matches).
fs::path stage_checkpoint(const bignlp::config::ConfigView& cfg) {
  const fs::path folder = cfg.get<std::string>("model.checkpoint_folder");
  const std::string name = cfg.get_or<std::string>("model.checkpoint_name", "latest");
  if (!fs::is_directory(folder))
    throw ConfigError(fmt::format("{}: '{}' is not a directory of training checkpoints",
                                  cfg.full_path("model.checkpoint_folder"), folder.string()));
  if (name == "latest") {
    auto latest = bignlp::checkpoint::find_latest_checkpoint(folder);
    if (!latest)
      throw ConfigError(fmt::format("{}: '{}' holds no complete checkpoint", cfg.full_path("model.checkpoint_folder"),
                                    folder.string()));
    return *latest;
  }
  std::optional<fs::path> found;
  for (const auto& c : bignlp::checkpoint::list_checkpoints(folder))
    if (fnmatch(name.c_str(), c.filename().c_str(), 0) == 0) found = c;
  if (!found)
    throw ConfigError(fmt::format("{}: no checkpoint in '{}' matches '{}'", cfg.full_path("model.checkpoint_name"),
                                  folder.string(), name));
  return *found;
}

RunSpec stage_spec(const bignlp::config::ConfigView& cfg, const bignlp::Logger& log) {
  RunSpec s;
  const std::string model_type = cfg.get_or<std::string>("model.model_type", "nemo-gpt3");
  if (model_type != "nemo-gpt3")
    throw ConfigError(fmt::format("{}: '{}' is not evaluated by the zero-shot suite (nemo-gpt3 is)",
                                  cfg.full_path("model.model_type"), model_type));
  s.checkpoint = stage_checkpoint(cfg);
  s.tasks = bignlp::eval::parse_task_list(cfg.get<std::string>("run.tasks"), cfg.full_path("run.tasks"));
  s.data_dir = cfg.get<std::string>("run.tasks_data_dir");
  const fs::path results = cfg.get<std::string>("run.results_dir");
  s.output = results / "results.json";
  s.cache_dir = results / "cache";
  if (auto style = cfg.find<std::string>("run.task_style"))
    s.style = bignlp::eval::parse_task_style(*style, cfg.full_path("run.task_style"));
  if (auto limit = cfg.find<std::int64_t>("run.limit")) {
    if (*limit < 1) throw ConfigError(fmt::format("{} must be at least 1", cfg.full_path("run.limit")));
    s.limit = *limit;
  }
  s.expected_tp = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
  s.expected_pp = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  s.tp_key = cfg.full_path("model.tensor_model_parallel_size");
  s.pp_key = cfg.full_path("model.pipeline_model_parallel_size");
  if (auto mp = cfg.find<int>("model.model_parallel_size"); mp && *mp != *s.expected_tp * *s.expected_pp)
    throw ConfigError(fmt::format("{}={} is not {} x {}", cfg.full_path("model.model_parallel_size"), *mp,
                                  *s.expected_tp, *s.expected_pp));
  if (auto p = cfg.find<std::string>("model.precision")) {
    if (*p != "32" && *p != "16" && *p != "bf16")
      throw ConfigError(fmt::format("{}: '{}' is not 32, 16 or bf16", cfg.full_path("model.precision"), *p));
    s.precision = *p;
  }
  s.batch_size = cfg.get_or<std::int64_t>("model.eval_batch_size", 4);
  if (s.batch_size < 1) throw ConfigError(fmt::format("{} must be at least 1", cfg.full_path("model.eval_batch_size")));
  if (auto v = cfg.find<std::string>("model.vocab_file")) s.tokenizer.vocab_file = *v;
  if (auto m = cfg.find<std::string>("model.merge_file")) s.tokenizer.merge_file = *m;
  s.tokenizer_from = fmt::format("{} / {}", cfg.full_path("model.vocab_file"), cfg.full_path("model.merge_file"));
  if (auto hp = cfg.find<std::string>("model.hparams_file"))
    log.info("{} ({}) is not read: the checkpoint records its own model config", cfg.full_path("model.hparams_file"), *hp);
  return s;
}

/// evaluation=prompt_gpt3/squad: acc and ppl of a prompt-learnt GPT (tune/prompt_evaluation.h),
/// written to <run.results_dir>/results/metrics.json.
int run_prompt_stage(const bignlp::config::ConfigView& cfg, const std::string& device, int threads,
                     const bignlp::Logger& log) {
  const int tp = cfg.get_or<int>("model.tensor_model_parallel_size", 1), pp = cfg.get_or<int>("model.pipeline_model_parallel_size", 1);
  if (tp != 1 || pp != 1)
    throw ConfigError(fmt::format("{}={}, {}={}: a prompt-learnt model is evaluated on one rank here (its base is "
                                  "loaded unsplit); set both to 1",
                                  cfg.full_path("model.tensor_model_parallel_size"), tp,
                                  cfg.full_path("model.pipeline_model_parallel_size"), pp));
  cfg.mark_used("model.model_parallel_size");
  if (cfg.get_or<bool>("model.disable_special_tokens", false))
    throw ConfigError(fmt::format("{}: True (scoring without the virtual tokens) is not supported",
                                  cfg.full_path("model.disable_special_tokens")));
  const std::string precision = cfg.get_or<std::string>("model.precision", "32");
  const std::int64_t batch = cfg.get_or<std::int64_t>("model.eval_batch_size", 4);
  if (batch < 1) throw ConfigError(fmt::format("{} must be at least 1", cfg.full_path("model.eval_batch_size")));
  const fs::path nemo = cfg.get<std::string>("model.nemo_model");
  std::vector<fs::path> files;
  for (const auto& f : cfg.string_list("model.prompt_dataset_paths")) files.emplace_back(f);
  const std::string tasks = cfg.get_or<std::string>("run.tasks", "prompt");
  if (tasks != "prompt")
    throw ConfigError(fmt::format("{}: '{}': a prompt-learnt model is evaluated on the task 'prompt'", cfg.full_path("run.tasks"), tasks));
  const fs::path out = fs::path(cfg.get<std::string>("run.results_dir")) / "results" / "metrics.json";
  bignlp::worker::WorkerOptions options;
  options.world = bignlp::worker::WorldKind::kSingleProcess;
  options.device_flag = device;
  options.cpu_threads = threads;
  options.allow_tf32 = false;
  const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(options, bignlp::process_environment(), log);
  bignlp::tune::LoadedPromptModel m = bignlp::tune::load_prompt_model(
      nemo, session.runtime().context(), bignlp::model::parse_precision(precision), std::nullopt, log);
  const bignlp::tune::PromptEvalResult r = bignlp::tune::evaluate_prompt_model(m, files, batch);
  fs::create_directories(out.parent_path());
  bignlp::write_file_atomic(out, r.metrics_json().dump(2) + "\n");
  std::cout << fmt::format("prompt: acc {:.4f} (+- {:.4f}), ppl {:.6g} (+- {:.3g}) over {} examples\n", r.acc,
                           r.acc_stderr, r.ppl, r.ppl_stderr, r.examples)
            << std::flush;
  log.info("metrics written to {}", out.string());
  return 0;
}

int run_stage(const bignlp::config::WorkerConfigArgs& cfg_args, std::vector<std::string> args, bignlp::Logger log) {
  CLI::App app{"bignlp-evaluate: the launcher's evaluation stage"};
  std::string device = "auto";
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--device", device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}));
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
  const bignlp::config::ConfigView cfg(root);
  if (cfg.get_or<std::string>("model.model_type", "nemo-gpt3") == "nemo-gpt3-prompt")
    return run_prompt_stage(cfg, device, threads, log);
  if (cfg.has("model.data.validation_ds")) {
    // t5/* and mt5/* (a fine-tuned model on text-to-text sets): finetune/seq2seq_evaluation.h.
    bignlp::worker::WorkerOptions o;
    o.device.text = cfg.get_or<std::string>("trainer.accelerator", "auto");
    o.device.kind = bignlp::ops::parse_device_kind(o.device.text, cfg.full_path("trainer.accelerator"));
    o.device.origin = cfg.full_path("trainer.accelerator");
    o.device_flag = device == "auto" ? "" : device;
    o.cpu_threads = threads;
    o.rendezvous_root = cfg.get<std::string>("exp_manager.explicit_log_dir");
    o.expected_world = bignlp::worker::ExpectedWorld{cfg.get_or<int>("trainer.num_nodes", 1), cfg.get_or<int>("trainer.devices", 1)};
    o.tensor_model_parallel_size = cfg.get_or<int>("model.tensor_model_parallel_size", 1);
    const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(o, bignlp::process_environment(), log);
    bignlp::finetune::run_seq2seq_evaluation(cfg, session.log(), session.context(), session.parallel_context(), stdout);
    session.barrier();
    return 0;
  }
  RunSpec s = stage_spec(cfg, log);
  s.device = device;
  s.threads = threads;
  return run_tasks(s, log);
}

int run_loglikelihood(const std::string& checkpoint, const std::string& requests, const std::string& output,
                      std::int64_t batch_size, const std::string& precision, const std::string& device, int threads,
                      const bignlp::Logger& log) {
  bignlp::worker::WorkerOptions options;
  options.world = bignlp::worker::WorldKind::kSingleProcess;
  options.device_flag = device;
  options.cpu_threads = threads;
  options.allow_tf32 = false;
  const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(options, bignlp::process_environment(), log);
  const bignlp::ops::DeviceRuntime& runtime = session.runtime();
  if (session.context().device.is_cuda()) log.info("scoring on {}", runtime.describe());
  auto model = bignlp::checkpoint::load_model_from_checkpoint(checkpoint, runtime.context(),
                                                            bignlp::model::parse_precision(precision));
  const auto reqs = bignlp::eval::read_loglikelihood_requests(requests, model->vocab_size());
  const auto results = bignlp::eval::score_loglikelihood(*model, reqs, batch_size);
  bignlp::eval::write_loglikelihood_results(output, results);
  log.info("scored {} requests from {} into {}", results.size(), requests, output);
  return 0;
}

struct GenerateSpec {
  std::string checkpoint, items, output, results, precision = "32", device = "auto";
  std::int64_t tokens = 30, batch_size = 8;
  int threads = 0;
};

int run_generate(const GenerateSpec& g, const TokenizerFlags& flags, const bignlp::Logger& log) {
  bignlp::worker::WorkerOptions options;
  options.world = bignlp::worker::WorldKind::kSingleProcess;
  options.device_flag = g.device;
  options.cpu_threads = g.threads;
  options.allow_tf32 = false;
  const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(options, bignlp::process_environment(), log);
  auto model = bignlp::checkpoint::load_model_from_checkpoint(g.checkpoint, session.runtime().context(),
                                                            bignlp::model::parse_precision(g.precision));
  std::unique_ptr<bignlp::data::Tokenizer> tok;
  if (flags.any()) {
    RunSpec spec;
    spec.checkpoint = g.checkpoint;
    spec.tokenizer = flags;
    tok = bignlp::data::load_tokenizer(tokenizer_spec(spec, bignlp::checkpoint::read_checkpoint_metadata(g.checkpoint)));
  } else {
    tok = bignlp::infer::load_checkpoint_tokenizer(g.checkpoint);
  }
  if (!tok)
    throw ConfigError(fmt::format("{} records no tokenizer, which --generate needs to detokenize the predictions; give "
                                  "--tokenizer-type and its files",
                                  g.checkpoint));
  const bool encdec = model->is_encoder_decoder();
  const auto items = bignlp::eval::read_generation_items(g.items, tok.get(), model->vocab_size(), encdec);
  bignlp::eval::GenerationOptions o;
  o.max_new_tokens = g.tokens;
  const bignlp::data::SpecialTokens& sp = tok->special_tokens();
  // The end of a generated answer: T5's eos; GPT's end-of-document token.
  o.end_id = encdec ? (sp.eos ? sp.eos : sp.eod) : (sp.eod ? sp.eod : sp.eos);
  for (const auto& id : {sp.bos, sp.eos, sp.eod, sp.pad, sp.cls, sp.sep, sp.mask})
    if (id) o.drop_ids.push_back(*id);
  // Ids past the tokenizer (T5 sentinels, padding rows) have no text.
  for (std::int64_t id = tok->vocab_size(); id < model->vocab_size(); ++id) o.drop_ids.push_back(static_cast<std::int32_t>(id));
  o.detokenize = [&tok](const std::vector<std::int32_t>& ids) { return bignlp::infer::detokenize(*tok, ids); };
  bignlp::infer::Engine engine(*model, bignlp::infer::EngineOptions{g.batch_size, 0});
  const bignlp::eval::GenerationReport report = bignlp::eval::run_generation_task(engine, items, o);
  const fs::path results = g.results.empty() ? fs::path(g.output).replace_extension(".metrics.json") : fs::path(g.results);
  nlohmann::json j = bignlp::eval::scores_json(report.scores);
  j["config"] = {{"checkpoint", g.checkpoint}, {"generate", g.items}, {"tokens_to_generate", g.tokens},
                 {"end_id", o.end_id ? nlohmann::json(*o.end_id) : nlohmann::json(nullptr)},
                 {"precision", g.precision}};
  bignlp::eval::write_generation_predictions(g.output, items, report);
  bignlp::write_file_atomic(results, j.dump(2) + "\n");
  std::cout << bignlp::eval::scores_json(report.scores).dump() << "\n" << std::flush;
  log.info("{} items of {}: exact_match {:.2f}, f1 {:.2f}, exact_string_match {:.4f}; predictions in {}, scores in {}",
           report.scores.total, g.items, report.scores.exact_match, report.scores.f1, report.scores.exact_string_match,
           g.output, results.string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bignlp::Logger log("bignlp-evaluate");
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (bignlp::config::names_worker_config(args)) {
      const bignlp::config::WorkerConfigArgs cfg_args = bignlp::config::extract_worker_config_args(args);
      return run_stage(cfg_args, args, log);
    }

    CLI::App app{"bignlp-evaluate: zero-shot evaluation of a bignlp checkpoint"};
    RunSpec s;
    std::string checkpoint, requests, output, data_dir, tasks, style = "launcher", precision, cache_dir, manifest;
    std::int64_t limit = 0;
    bool no_cache = false, download = false;
    app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory");
    app.add_option("--tasks", tasks, "comma list of tasks (lambada, boolq, race, piqa, hellaswag, winogrande, "
                                     "wikitext2, wikitext103) or all_tasks");
    app.add_option("--data-dir", data_dir, "directory with the tasks' files under their published names");
    app.add_option("--output", output, "results JSON (tasks) or JSONL (--loglikelihood)");
    app.add_option("--task-style", style, "launcher (the NeMo launcher's lm-eval fork, default) or lm-eval (upstream)");
    app.add_option("--batch-size", s.batch_size, "sequences per forward pass")->check(CLI::PositiveNumber);
    app.add_option("--limit", limit, "evaluate the first N documents of each task")->check(CLI::PositiveNumber);
    app.add_option("--cache-dir", cache_dir, "request cache (default: <output dir>/eval_cache)");
    app.add_flag("--no-cache", no_cache, "score every request, keep no cache");
    app.add_option("--bootstrap-iters", s.bootstrap_iters, "bootstrap resamples for perplexity stderr (lm-eval: 100000)")
        ->check(CLI::PositiveNumber);
    app.add_option("--tokenizer-library", s.tokenizer.library, "megatron or sentencepiece (default: the checkpoint's)");
    app.add_option("--tokenizer-type", s.tokenizer.type, "GPT2BPETokenizer, BertWordPieceCase, BertWordPieceLowerCase");
    app.add_option("--vocab-file", s.tokenizer.vocab_file, "tokenizer vocabulary");
    app.add_option("--merge-file", s.tokenizer.merge_file, "GPT-2 BPE merges");
    app.add_option("--tokenizer-model", s.tokenizer.model, "SentencePiece .model file");
    app.add_option("--loglikelihood", requests, "JSONL file of token-level log-likelihood requests");
    GenerateSpec gen;
    app.add_option("--generate", gen.items, "JSONL generation task: {\"text\"|\"ids\": ..., \"answers\": [...]} per line");
    auto* tokens_opt = app.add_option("--tokens-to-generate", gen.tokens, "--generate: tokens to decode at most (default 30)")
                           ->check(CLI::PositiveNumber);
    auto* results_opt = app.add_option("--results", gen.results, "--generate: scores JSON (default: OUTPUT with .metrics.json)");
    app.add_flag("--download", download, "download the --tasks' files into --data-dir");
    app.add_option("--manifest", manifest, "task file table (default: conf/eval_task_files.yaml of this tree)");
    app.add_option("--precision", precision, "compute precision: 32, bf16 or 16 (default: the checkpoint's)")
        ->check(CLI::IsMember({"32", "bf16", "16"}));
    app.add_option("--threads", s.threads, "CPU threads (0: all)");
    app.add_option("--device", s.device, "auto (a GPU when there is one), cpu or cuda (gpu)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}));
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    auto need = [](const std::string& v, const char* flag, const char* mode) {
      if (v.empty()) throw bignlp::UsageError(fmt::format("{} needs {}", mode, flag));
    };
    if (download) {
      need(tasks, "--tasks", "--download");
      need(data_dir, "--data-dir", "--download");
      const fs::path m = manifest.empty() ? bignlp::eval::default_task_manifest(argv[0]) : fs::path(manifest);
      bignlp::eval::download_tasks(m, bignlp::eval::parse_task_list(tasks), data_dir, log);
      return 0;
    }
    need(checkpoint, "--checkpoint", "bignlp-evaluate");
    need(output, "--output", "bignlp-evaluate");
    if (gen.items.empty() && (tokens_opt->count() > 0 || results_opt->count() > 0))
      throw bignlp::UsageError("--tokens-to-generate and --results belong to --generate");
    if (!gen.items.empty()) {
      if (!tasks.empty() || !requests.empty())
        throw bignlp::UsageError("--generate, --loglikelihood and --tasks are separate modes; give one");
      if (!data_dir.empty() || limit > 0 || no_cache || !cache_dir.empty() || style != "launcher")
        throw bignlp::UsageError("--data-dir, --limit, --cache-dir, --no-cache and --task-style belong to --tasks, not --generate");
      gen.checkpoint = checkpoint;
      gen.output = output;
      gen.batch_size = s.batch_size;
      gen.precision = precision.empty() ? "32" : precision;
      gen.device = s.device;
      gen.threads = s.threads;
      return run_generate(gen, s.tokenizer, log);
    }
    if (!requests.empty()) {
      if (!tasks.empty()) throw bignlp::UsageError("--loglikelihood and --tasks are two modes; give one");
      return run_loglikelihood(checkpoint, requests, output, s.batch_size, precision.empty() ? "32" : precision,
                               s.device, s.threads, log);
    }
    need(tasks, "--tasks", "bignlp-evaluate");
    need(data_dir, "--data-dir", "--tasks");
    s.checkpoint = checkpoint;
    s.tasks = bignlp::eval::parse_task_list(tasks);
    s.data_dir = data_dir;
    s.style = bignlp::eval::parse_task_style(style);
    if (limit > 0) s.limit = limit;
    s.output = output;
    if (!no_cache) s.cache_dir = cache_dir.empty() ? fs::absolute(output).parent_path() / "eval_cache" : fs::path(cache_dir);
    if (!precision.empty()) s.precision = precision;
    return run_tasks(s, log);
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-evaluate: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-evaluate: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
