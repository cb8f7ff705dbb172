// bignlp-preprocess: tokenize raw text into Megatron indexed datasets (data preparation stage).
//
// Three forms:
//   bignlp-preprocess --input FILE --output-prefix P --tokenizer-type GPT2BPETokenizer
//                     --vocab-file vocab.json --merge-file merges.txt --append-eod --workers 8
//     Megatron's tools/preprocess_data.py / NeMo's preprocess_data_for_megatron.py flags.
//   bignlp-preprocess --merge-inputs P1,P2,... --output-prefix OUT
//     concatenates datasets (Megatron's merge_datasets).
//   bignlp-preprocess --squad-prompt-learning DIR [--output-dir OUT]
//     SQuAD v1.1 -> the prompt-learning jsonl files (data/squad_prompt_learning.h); the
//     prompt_learning stage runs it as --step squad_prompt_learning on its own config.
//   bignlp-preprocess --config-path DIR --config-name NAME_hydra.yaml --step STEP [key=value ...]
//     one step of the data_preparation stage, as the launcher's jobs run it (docs/data.md §5);
//     --step prepare_squad --squad-dir DIR [--squad-mirror M]: the fine_tuning stage's SQuAD/XQuAD
//     download and conversion for its run.task_name (docs/fine_tuning.md).
//     The worker's share comes from SLURM_ARRAY_TASK_ID / SLURM_LOCALID / SLURM_PROCID /
//     SLURM_NTASKS, its threads from SLURM_CPUS_PER_TASK (or SLURM_CPUS_ON_NODE shared by
//     SLURM_NTASKS_PER_NODE tasks): read here only.
// Index: include/bignlp/data/preprocess.h (the pipeline), tokenizer_factory.h (tokenizers),
// indexed_dataset.h (the output format), pile_/mc4_/custom_dataset_preparation.h (the flows),
// worker_position.h (work split). Exit codes: include/bignlp/core/error.h.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <thread>

#include <algorithm>
#include <cstdlib>

#include "bignlp/config/view.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/core/error.h"
#include "bignlp/core/index_list.h"
#include "bignlp/core/logging.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/custom_dataset_preparation.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/mc4_preparation.h"
#include "bignlp/data/pile_preparation.h"
#include "bignlp/data/preprocess.h"
#include "bignlp/data/squad_prompt_learning.h"
#include "bignlp/data/squad_preparation.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/data/worker_position.h"

namespace {

using bignlp::data::PreprocessOptions;

struct Flags {
  std::vector<std::string> inputs;
  std::vector<std::string> json_keys{"text"};
  bool split_sentences = false;
  bool keep_newlines = false;
  std::string tokenizer_library = "megatron";
  std::string tokenizer_type;
  std::string tokenizer_model;
  std::string vocab_file;
  std::string merge_file;
  bool append_eod = false;
  std::string lang = "english";
  std::string output_prefix;
  std::string dataset_impl = "mmap";
  int workers = 0;
  int chunk_size = 0;
  std::int64_t log_interval = 0;
  bool preproc_folder = false;
  std::string files_filter = "**/*.json*";
  bool text_file = false;
  std::string text_mode = "line";
  bool apply_ftfy = false;
  bool need_pad_id = false;
  double max_bad_fraction = 0.01;
  bool split_special_tokens = false;
  std::string progress = "auto";
  std::string log_level = "info";
  std::vector<std::string> merge_inputs;
};

bignlp::data::ProgressMode parse_progress(const std::string& p) {
  return p == "terminal" ? bignlp::data::ProgressMode::kTerminal
         : p == "log"    ? bignlp::data::ProgressMode::kLog
         : p == "off"    ? bignlp::data::ProgressMode::kOff
                         : bignlp::data::ProgressMode::kAuto;
}

// ---------------------------------------------------------------------------------------------
// Stage mode: the environment is read here and nowhere else.

std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0') throw bignlp::UsageError(fmt::format("environment variable {}='{}' is not an integer", name, v));
  return static_cast<int>(x);
}

bignlp::data::WorkerPosition read_worker_position() {
  bignlp::data::WorkerPosition p;
  p.array_task_id = env_int("SLURM_ARRAY_TASK_ID");
  p.local_rank = env_int("SLURM_LOCALID").value_or(0);
  p.rank = env_int("SLURM_PROCID").value_or(0);
  p.world_size = std::max(1, env_int("SLURM_NTASKS").value_or(1));
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The task's own CPUs; else the node's shared by the tasks on it; else every core.
  if (const auto per_task = env_int("SLURM_CPUS_PER_TASK")) {
    p.cpus = *per_task;
  } else {
    p.cpus = env_int("SLURM_CPUS_ON_NODE").value_or(hw) / std::max(1, env_int("SLURM_NTASKS_PER_NODE").value_or(1));
  }
  p.cpus = std::clamp(p.cpus, 1, hw);
  return p;
}

std::string show(const bignlp::data::WorkerPosition& p) {
  if (p.array_task_id) return fmt::format("array task {} (local task {})", *p.array_task_id, p.local_rank);
  return fmt::format("rank {} of {}", p.rank, p.world_size);
}

// Keys the launcher (or NeMo's config) carries that the worker does not need.
void mark_launcher_keys(const bignlp::config::ConfigView& cfg) {
  for (const char* k : {"run", "dataset", "download_the_pile", "download_mc4", "preprocess_data", "train_tokenizer",
                        "nodes", "time_limit", "bcp_preproc_npernode", "log_dir", "file_numbers", "cluster_type",
                        "data_config", "launcher_scripts_path", "bignlp_path", "steps"}) {
    if (cfg.has(k)) cfg.mark_used(k);
  }
}

void warn_unused(const bignlp::config::ConfigView& cfg, const bignlp::Logger& log) {
  const auto unused = cfg.unused_keys();
  if (!unused.empty()) {
    log.warn("keys not used by this step: {} (typos? see docs/data.md for the keys of each dataset)",
             bignlp::join(unused, ", "));
  }
}

std::vector<std::string> string_list(const bignlp::config::ConfigView& cfg, const std::string& key) {
  std::vector<std::string> out;
  if (!cfg.has(key)) return out;
  const bignlp::config::ConfigNode n = cfg.node(key);
  if (n.is_list()) {
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (!n[i].is_null()) out.push_back(cfg.get<std::string>(fmt::format("{}.{}", key, i)));
    }
  } else if (!n.is_null()) {
    for (const auto& part : bignlp::split(cfg.get<std::string>(key), ',')) {
      if (!bignlp::trim(part).empty()) out.emplace_back(bignlp::trim(part));
    }
  }
  return out;
}

void single_task_only(const bignlp::data::WorkerPosition& pos, const std::string& step, const bignlp::Logger& log,
                      const std::function<void()>& fn) {
  if ((pos.array_task_id && *pos.array_task_id != 0) || pos.rank != 0 || pos.local_rank != 0) {
    log.info("step {} runs in the first task only; {} has nothing to do", step, show(pos));
    return;
  }
  fn();
}

[[noreturn]] void unknown_step(const std::string& dataset, const std::string& step, const std::vector<std::string>& steps) {
  std::string msg = fmt::format("--step {}: not a step of dataset '{}' (steps: {})", step, dataset, bignlp::join(steps, ", "));
  const auto close = bignlp::closest_matches(step, steps, 1);
  if (!close.empty()) msg += fmt::format("; did you mean '{}'?", close.front());
  throw bignlp::UsageError(msg);
}

void run_pile(const bignlp::config::ConfigView& cfg, const std::string& step, const bignlp::data::WorkerPosition& pos,
              bignlp::data::ProgressMode progress, const bignlp::Logger& log) {
  namespace bd = bignlp::data;
  bd::PileConfig c;
  c.tokenizer_type = cfg.get_or<std::string>("tokenizer_type", "GPT2BPETokenizer");
  c.the_pile_url = cfg.get_or<std::string>("the_pile_url", "");
  c.data_dir = cfg.get<std::string>("data_dir");
  c.output_prefix = cfg.get_or<std::string>("output_prefix", c.tokenizer_type == "GPT2BPETokenizer" ? "my-gpt3" : "my-t5");
  c.download_vocab_url = cfg.get_or<std::string>("download_vocab_url", "");
  c.download_merges_url = cfg.get_or<std::string>("download_merges_url", "");
  c.vocab_save_dir = cfg.get_or<std::string>("vocab_save_dir", (c.data_dir / "bpe").string());
  c.merges_save_dir = cfg.get_or<std::string>("merges_save_dir", c.vocab_save_dir.string());
  c.rm_downloaded = cfg.get_or<bool>("rm_downloaded", true);
  c.rm_extracted = cfg.get_or<bool>("rm_extracted", true);
  c.append_eod = cfg.get_or<bool>("append_eod", true);
  c.workers = pos.cpus;
  c.progress = progress;
  const std::string numbers = cfg.get<std::string>("file_numbers");
  const auto files = bignlp::parse_index_list(numbers, cfg.full_path("file_numbers"));
  mark_launcher_keys(cfg);
  warn_unused(cfg, log);
  const std::vector<std::string> steps = {"download", "extract", "preprocess"};
  if (std::find(steps.begin(), steps.end(), step) == steps.end()) unknown_step("pile", step, steps);
  const auto mine = bd::worker_items(pos, files);
  std::vector<std::string> names;
  for (const int n : mine) names.push_back(bd::pile_shard_name(n));
  log.info("pile {}: {} handles shard(s) {}", step, show(pos), names.empty() ? "none" : bignlp::join(names, ","));
  for (const int n : mine) {
    if (step == "download") bd::pile_download(c, n, log);
    else if (step == "extract") bd::pile_extract(c, n, log);
    else bd::pile_preprocess(c, n, log);
  }
}

void run_mc4(const bignlp::config::ConfigView& cfg, const std::string& step, const bignlp::data::WorkerPosition& pos,
             bignlp::data::ProgressMode progress, const bignlp::Logger& log) {
  namespace bd = bignlp::data;
  bd::Mc4Config c;
  c.mc4_dir = cfg.get<std::string>("mc4_dir");
  c.git_lfs_dir = cfg.get_or<std::string>("git_lfs_dir", (c.mc4_dir / "lfs").string());
  c.c4_repo_url = cfg.get_or<std::string>("c4_repo_url", c.c4_repo_url);
  c.c4_download_url = cfg.get_or<std::string>("c4_download_url", c.c4_download_url);
  c.languages = string_list(cfg, "languages");
  if (c.languages.empty()) throw bignlp::ConfigError(fmt::format("{} is empty: list languages or write 'all'", cfg.full_path("languages")));
  c.use_cleaned_english = cfg.get_or<bool>("use_cleaned_english", true);
  c.softlinks_dir = cfg.get_or<std::string>("softlinks_dir", (c.mc4_dir / "softlinks").string());
  c.preprocessed_dir = cfg.get_or<std::string>("preprocessed_dir", (c.mc4_dir / "preprocessed").string());
  c.max_split_size_gb = cfg.get_or<double>("max_split_size", 200.0);
  c.download_worker_mapping = cfg.get_or<std::string>("download_worker_mapping", (c.mc4_dir / "download_mapping").string());
  c.preprocess_worker_mapping =
      cfg.get_or<std::string>("preprocess_worker_mapping", (c.mc4_dir / "preprocess_mapping").string());
  c.rm_downloaded = cfg.get_or<bool>("rm_downloaded", false);
  c.download_vocab_url = cfg.get_or<std::string>("download_vocab_url", "");
  c.download_tokenizer_url = cfg.get_or<std::string>("download_tokenizer_url", "");
  c.vocab_save_dir = cfg.get_or<std::string>("vocab_save_dir", (c.mc4_dir / "bpe").string());
  const std::string tok_dir = cfg.get_or<std::string>("tokenizer_save_dir", c.vocab_save_dir.string());
  c.tokenizer_model = cfg.get_or<std::string>("tokenizer_model", (std::filesystem::path(tok_dir) / "mt5_tokenizer.model").string());
  c.node_array_size = cfg.get_or<int>("run.node_array_size", 20);
  c.workers_per_node = cfg.get_or<int>("run.workers_per_node", 4);
  c.workers = pos.cpus;
  c.progress = progress;
  mark_launcher_keys(cfg);
  warn_unused(cfg, log);
  if (step == "prepare") {
    single_task_only(pos, step, log, [&] { bd::mc4_prepare(c, log); });
  } else if (step == "download") {
    for (const int w : bd::worker_slots(pos, 1, c.node_array_size)) bd::mc4_download(c, w, log);
  } else if (step == "setup_preprocess") {
    single_task_only(pos, step, log, [&] { bd::mc4_setup_preprocess(c, log); });
  } else if (step == "preprocess") {
    for (const int s : bd::worker_slots(pos, c.workers_per_node, c.node_array_size * c.workers_per_node)) {
      bd::mc4_preprocess(c, s, log);
    }
  } else {
    unknown_step("mc4", step, {"prepare", "download", "setup_preprocess", "preprocess"});
  }
}

void run_custom(const bignlp::config::ConfigView& cfg, const std::string& step, const bignlp::data::WorkerPosition& pos,
                bignlp::data::ProgressMode progress, const bignlp::Logger& log) {
  namespace bd = bignlp::data;
  bd::CustomDatasetConfig c;
  const std::filesystem::path dir = cfg.get_or<std::string>("custom_dataset_dir", "");
  c.bpe_save_dir = cfg.get_or<std::string>("bpe_save_dir", (dir / "bpe").string());
  if (cfg.has("train_tokenizer_args")) {
    const bignlp::config::ConfigNode args = cfg.node("train_tokenizer_args");
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (!args.child_at(i).is_null()) {
        c.train_tokenizer_args[args.key_at(i)] = cfg.get<std::string>("train_tokenizer_args." + args.key_at(i));
      }
    }
  }
  for (const auto& f : string_list(cfg, "raw_dataset_files")) c.raw_dataset_files.emplace_back(f);
  c.tokenizer.library = cfg.get_or<std::string>("tokenizer_library", "sentencepiece");
  c.tokenizer.type = cfg.get_or<std::string>("tokenizer_type", "");
  c.tokenizer.model_file = cfg.get_or<std::string>("tokenizer_model", "");
  c.tokenizer.vocab_file = cfg.get_or<std::string>("vocab_file", "");
  c.tokenizer.merge_file = cfg.get_or<std::string>("merge_file", "");
  c.preprocess_worker_mapping = cfg.get_or<std::string>("preprocess_worker_mapping", (dir / "preprocess_mapping").string());
  c.preprocessed_dir = cfg.get_or<std::string>("preprocessed_dir", (dir / "preprocessed").string());
  c.output_prefix = cfg.find<std::string>("output_prefix");
  if (cfg.has("json_keys")) c.json_keys = string_list(cfg, "json_keys");
  c.append_eod = cfg.get_or<bool>("append_eod", false);
  c.split_sentences = cfg.get_or<bool>("split_sentences", false);
  const std::string mode = cfg.get_or<std::string>("text_mode", "line");
  if (mode != "line" && mode != "paragraph" && mode != "file") {
    throw bignlp::ConfigError(fmt::format("{}: '{}' is not line, paragraph or file", cfg.full_path("text_mode"), mode));
  }
  c.text_mode = mode == "paragraph" ? bd::TextMode::kParagraph : mode == "file" ? bd::TextMode::kFile : bd::TextMode::kLine;
  c.node_array_size = cfg.get_or<int>("run.node_array_size", 1);
  c.workers_per_node = cfg.get_or<int>("run.workers_per_node", 1);
  c.workers = pos.cpus;
  c.progress = progress;
  mark_launcher_keys(cfg);
  if (cfg.has("custom_dataset_dir")) cfg.mark_used("custom_dataset_dir");
  warn_unused(cfg, log);
  if (step == "train_tokenizer") {
    single_task_only(pos, step, log, [&] { bd::custom_train_tokenizer(c, log); });
  } else if (step == "preprocess") {
    for (const int s : bd::worker_slots(pos, c.workers_per_node, c.node_array_size * c.workers_per_node)) {
      bd::custom_preprocess(c, s, log);
    }
  } else {
    unknown_step("custom_dataset", step, {"train_tokenizer", "preprocess"});
  }
}

/// The prompt_learning stage's data step (tuning.md §2.2): SQuAD v1.1's train-v1.1.json and
/// dev-v1.1.json in the folder of model.data.train_ds[0] become the four prompt-learning jsonl
/// files there (rewritten on every run, as NeMo's script does).
int run_squad_prompt_learning(const bignlp::config::ConfigView& cfg, const bignlp::Logger& log) {
  const std::vector<std::string> train = cfg.string_list("model.data.train_ds");
  if (train.empty()) throw bignlp::ConfigError(fmt::format("{}: no training file", cfg.full_path("model.data.train_ds")));
  const std::filesystem::path dir = std::filesystem::path(train.front()).parent_path();
  const auto n = bignlp::data::convert_squad_for_prompt_learning(dir / "train-v1.1.json", dir / "dev-v1.1.json", dir);
  log.info("SQuAD -> prompt-learning jsonl in {}: {} training and {} validation/test questions ({} without answers "
           "skipped)",
           dir.string(), n.train, n.dev, n.skipped);
  return 0;
}

int run_squad_prompt_learning_flags(const std::string& dir, const std::string& out, const bignlp::Logger& log) {
  const std::filesystem::path in(dir);
  const std::filesystem::path to = out.empty() ? in : std::filesystem::path(out);
  const auto n = bignlp::data::convert_squad_for_prompt_learning(in / "train-v1.1.json", in / "dev-v1.1.json", to);
  log.info("SQuAD -> prompt-learning jsonl in {}: {} training and {} validation/test questions", to.string(), n.train,
           n.dev);
  return 0;
}

int run_stage(std::vector<std::string> args, const bignlp::config::WorkerConfigArgs& cfg_args) {
  std::string step;
  std::string progress = "auto";
  std::string log_level = "info";
  std::string squad_dir, squad_mirror;
  CLI::App app{"bignlp-preprocess (stage mode): one step of the data_preparation stage", "bignlp-preprocess"};
  app.add_option("--step", step, "the step to run (docs/data.md)")->required();
  app.add_option("--squad-dir", squad_dir, "step prepare_squad: the SQuAD directory (<data_dir>/squad_data)");
  app.add_option("--squad-mirror", squad_mirror,
                 "step prepare_squad: a URL or directory laid out like the SQuAD directory, instead of the public hosts");
  app.add_option("--progress", progress, "auto, terminal, log or off")->check(CLI::IsMember({"auto", "terminal", "log", "off"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  std::reverse(args.begin(), args.end());
  try {
    app.parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : static_cast<int>(bignlp::ExitCode::kUsage);
  }
  const bignlp::Logger log("preprocess", bignlp::parse_log_level(log_level));
  const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
  const bignlp::config::ConfigView cfg(root);
  if (step == "squad_prompt_learning") return run_squad_prompt_learning(cfg, log);
  const auto pos = read_worker_position();
  if (step == "prepare_squad") {
    // The fine_tuning stage's data preparation (data/squad_preparation.h) for its run.task_name.
    if (squad_dir.empty()) throw bignlp::UsageError("--step prepare_squad needs --squad-dir");
    bignlp::data::SquadDownloadOptions o;
    o.mirror = squad_mirror;
    single_task_only(pos, step, log, [&] {
      bignlp::data::prepare_squad_for_fine_tuning(squad_dir, cfg.get<std::string>("run.task_name"), o, log);
    });
    log.info("step {} done", step);
    return 0;
  }
  const std::string dataset = cfg.get<std::string>("dataset");
  log.info("data preparation: dataset {}, step {}, {}, {} CPU(s)", dataset, step, show(pos), pos.cpus);
  if (dataset == "pile") {
    run_pile(cfg, step, pos, parse_progress(progress), log);
  } else if (dataset == "mc4") {
    run_mc4(cfg, step, pos, parse_progress(progress), log);
  } else if (dataset == "custom_dataset") {
    run_custom(cfg, step, pos, parse_progress(progress), log);
  } else {
    throw bignlp::ConfigError(fmt::format("{}: '{}' is not pile, mc4 or custom_dataset", cfg.full_path("dataset"), dataset));
  }
  log.info("step {} done", step);
  return 0;
}

int run(int argc, char** argv) {
  std::vector<std::string> all_args(argv + 1, argv + argc);
  const bignlp::config::WorkerConfigArgs cfg_args = bignlp::config::extract_worker_config_args(all_args);
  if (!cfg_args.config_name.empty() || !cfg_args.config_path.empty()) return run_stage(all_args, cfg_args);
  if (!cfg_args.overrides.empty()) {
    throw bignlp::UsageError(fmt::format("'{}' looks like a config override, which needs --config-path/--config-name",
                                         cfg_args.overrides.front()));
  }
  Flags f;
  CLI::App app{"bignlp-preprocess: tokenize text into Megatron .bin/.idx datasets", "bignlp-preprocess"};
  app.option_defaults()->always_capture_default();
  app.add_option("--input", f.inputs, "input file(s): .json/.jsonl (one JSON object per line), .txt; optionally .gz or .zst; "
                                      "a folder with --preproc-folder")->delimiter(',');
  app.add_option("--json-keys", f.json_keys, "keys to extract from each JSON line (one dataset per key)")->delimiter(',');
  app.add_flag("--split-sentences", f.split_sentences, "one sequence per sentence (output level 'sentence')");
  app.add_flag("--keep-newlines", f.keep_newlines, "keep the newlines after sentences when splitting");
  app.add_option("--tokenizer-library", f.tokenizer_library, "megatron or sentencepiece")
      ->check(CLI::IsMember({"megatron", "sentencepiece"}));
  app.add_option("--tokenizer-type", f.tokenizer_type, "GPT2BPETokenizer, BertWordPieceCase or BertWordPieceLowerCase")
      ->check(CLI::IsMember({"GPT2BPETokenizer", "BertWordPieceCase", "BertWordPieceLowerCase"}));
  app.add_option("--tokenizer-model", f.tokenizer_model, "SentencePiece .model file");
  app.add_option("--vocab-file,--vocab", f.vocab_file, "vocab.json (GPT-2) or vocab.txt (BERT)");
  app.add_option("--merge-file", f.merge_file, "merges.txt (GPT-2)");
  app.add_flag("--append-eod", f.append_eod, "append the end-of-document token to every document");
  app.add_option("--lang", f.lang, "language of the sentence splitter (english only)");
  app.add_option("--output-prefix", f.output_prefix, "writes <prefix>_<key>_<document|sentence>.bin/.idx");
  app.add_option("--dataset-impl", f.dataset_impl, "mmap (the only format written)");
  app.add_option("--workers", f.workers, "tokenizing threads (default: all cores)");
  app.add_option("--chunk-size", f.chunk_size, "documents per work item (default: ~1 MB of text)");
  app.add_option("--log-interval", f.log_interval, "also log progress every N documents (non-terminal output)");
  app.add_flag("--preproc-folder", f.preproc_folder, "--input is a folder: every file matching --files-filter");
  app.add_option("--files-filter", f.files_filter, "glob under the input folder ('**/' = any sub-folders)");
  app.add_flag("--text_file,--text-file", f.text_file, "inputs are plain text, not JSON");
  app.add_option("--text-mode", f.text_mode, "plain text documents: line, paragraph (blank-line separated) or file")
      ->check(CLI::IsMember({"line", "paragraph", "file"}));
  app.add_flag("--apply-ftfy", f.apply_ftfy, "accepted for compatibility; text is not changed (see README)");
  app.add_flag("--need-pad-id", f.need_pad_id, "accepted for compatibility (SentencePiece pad id)");
  app.add_option("--max-bad-fraction", f.max_bad_fraction, "fail when more than this fraction of records are malformed");
  app.add_flag("--split-special-tokens", f.split_special_tokens,
               "special tokens written in the text (e.g. <|endoftext|>) become their ids (Hugging Face behaviour)");
  app.add_option("--progress", f.progress, "auto (live line on a terminal, log lines otherwise), terminal, log or off")
      ->check(CLI::IsMember({"auto", "terminal", "log", "off"}));
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error or off");
  app.add_option("--merge-inputs", f.merge_inputs, "merge these dataset prefixes into --output-prefix instead of tokenizing")
      ->delimiter(',');
  std::string squad_dir, output_dir;
  app.add_option("--squad-prompt-learning", squad_dir,
                 "convert DIR/train-v1.1.json and DIR/dev-v1.1.json (SQuAD v1.1) to the prompt-learning jsonl files");
  app.add_option("--output-dir", output_dir, "with --squad-prompt-learning: where the jsonl files go (default: DIR)");
  try {
    std::reverse(all_args.begin(), all_args.end());
    app.parse(std::move(all_args));
  } catch (const CLI::ParseError& e) {
    // --help prints and succeeds; every other flag error is a usage error (exit code 2).
    return app.exit(e) == 0 ? 0 : static_cast<int>(bignlp::ExitCode::kUsage);
  }
  const bignlp::Logger log("preprocess", bignlp::parse_log_level(f.log_level));

  if (!squad_dir.empty()) return run_squad_prompt_learning_flags(squad_dir, output_dir, log);
  if (!output_dir.empty()) throw bignlp::UsageError("--output-dir goes with --squad-prompt-learning");
  if (!f.merge_inputs.empty()) {
    if (f.output_prefix.empty()) throw bignlp::UsageError("--merge-inputs needs --output-prefix");
    std::vector<std::filesystem::path> prefixes(f.merge_inputs.begin(), f.merge_inputs.end());
    bignlp::data::merge_indexed_datasets(prefixes, f.output_prefix);
    log.info("merged {} datasets into '{}'", prefixes.size(), f.output_prefix);
    return 0;
  }
  if (f.dataset_impl != "mmap") {
    throw bignlp::UsageError(fmt::format("--dataset-impl {}: only 'mmap' (Megatron's MMIDIDX format) is written",
                                         f.dataset_impl));
  }
  if (f.lang != "english") log.warn("--lang {}: the built-in sentence splitter follows English rules", f.lang);
  if (f.apply_ftfy) log.warn("--apply-ftfy: text repair (ftfy) is not available; the text is tokenized as it is");
  if (f.tokenizer_library == "megatron" && f.tokenizer_type.empty()) {
    throw bignlp::UsageError("--tokenizer-type is required with --tokenizer-library megatron");
  }

  bignlp::data::TokenizerSpec spec;
  spec.library = f.tokenizer_library;
  spec.type = f.tokenizer_type;
  spec.vocab_file = f.vocab_file;
  spec.merge_file = f.merge_file;
  spec.model_file = f.tokenizer_model;
  spec.split_special_tokens = f.split_special_tokens;
  const auto tokenizer = bignlp::data::load_tokenizer(spec);

  PreprocessOptions o;
  o.inputs.assign(f.inputs.begin(), f.inputs.end());
  o.preproc_folder = f.preproc_folder;
  o.files_filter = f.files_filter;
  o.json_keys = f.json_keys;
  o.text_input = f.text_file;
  o.text_mode = f.text_mode == "paragraph" ? bignlp::data::TextMode::kParagraph
                : f.text_mode == "file"    ? bignlp::data::TextMode::kFile
                                           : bignlp::data::TextMode::kLine;
  o.split_sentences = f.split_sentences;
  o.keep_newlines = f.keep_newlines;
  o.append_eod = f.append_eod;
  o.output_prefix = f.output_prefix;
  o.workers = f.workers > 0 ? f.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.chunk_records = f.chunk_size > 0 ? static_cast<std::size_t>(f.chunk_size) : 0;
  o.max_bad_fraction = f.max_bad_fraction;
  o.log_interval_docs = static_cast<std::uint64_t>(std::max<std::int64_t>(f.log_interval, 0));
  o.progress = parse_progress(f.progress);
  log.info("tokenizer {} ({} ids), {} worker(s), output '{}'", tokenizer->type_name(), tokenizer->vocab_size(), o.workers,
           o.output_prefix.string());
  const auto stats = bignlp::data::preprocess(o, *tokenizer, log);
  for (const auto& p : stats.outputs) log.info("wrote '{}.bin' and '{}.idx'", p.string(), p.string());
  log.info("{} documents, {} sequences, {} tokens from {} ({} records{}{}) in {}", stats.documents, stats.sentences,
           stats.tokens, bignlp::format_bytes(stats.bytes), stats.records,
           stats.bad_records ? fmt::format(", {} bad", stats.bad_records) : "",
           stats.empty_documents ? fmt::format(", {} without tokens", stats.empty_documents) : "",
           bignlp::format_duration(stats.seconds));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-preprocess: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-preprocess: internal error: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
