// bignlp-convert: checkpoint import and conversion.
//
//   bignlp-convert --from hf-gpt2 --input HF_DIR --output CKPT_DIR
//     HF_DIR holds config.json and model.safetensors (keys with or without "transformer.");
//     CKPT_DIR becomes a bignlp checkpoint (checkpoint/checkpoint.h) that bignlp-evaluate and
//     training (as initial weights) read.
//   bignlp-convert --from hf-t5 --input HF_DIR --output CKPT_DIR
//     the same for a Hugging Face T5 / T5 v1.1 / mT5 checkpoint (the "t5" family, model/hf_t5.h);
//     a spiece.model beside it is recorded as the sentencepiece tokenizer.
//
//   bignlp-convert --to nemo --input CKPT --output FILE.nemo [--tensor-model-parallel-size N]
//                  [--pipeline-model-parallel-size M] [--vocab-file F] [--merge-file F]
//                  [--tokenizer-model F] [--overwrite]
//     writes a bignlp checkpoint as a .nemo archive (export/nemo.h), resharded when the sizes are
//     given.
//
//   bignlp-convert --to hf-gpt2 --input CKPT --output HF_DIR [--overwrite]
//     writes a GPT checkpoint as a Hugging Face GPT-2 directory (export/hf_export.h).
//   bignlp-convert --to hf-t5 --input CKPT --output HF_DIR [--overwrite]
//     writes a T5 / mT5 checkpoint as a Hugging Face T5 / mT5 directory (export/hf_export.h).
//
//   bignlp-convert --from nemo --input FILE.nemo --output CKPT_DIR
//     reads a .nemo archive (ours or NeMo's GPT) into a new bignlp checkpoint.
//
//   bignlp-convert --config-path DIR --config-name NAME [OVERRIDES]
//     the launcher's conversion stage (export/conversion_stage.h).
//
//   bignlp-convert --reshard --input CKPT --output CKPT2 --tensor-model-parallel-size N
//                  --pipeline-model-parallel-size M
//     rewrites a bignlp checkpoint for another TP x PP layout (weights and Adam moments; the
//     data-parallel size never matters). Conversion and export stages use it to reach the
//     layout they serve with.
// Index: model/hf_gpt2.h, model/hf_t5.h (mappings), checkpoint/checkpoint.h (output format), checkpoint/reshard.h.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string_view>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/config/view.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/core/error.h"
#include "bignlp/export/conversion_stage.h"
#include "bignlp/export/hf_export.h"
#include "bignlp/export/nemo.h"
#include "bignlp/core/logging.h"
#include "bignlp/model/hf_gpt2.h"
#include "bignlp/model/hf_t5.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  bignlp::Logger log("bignlp-convert");
  // The launcher's conversion stage: a saved stage config.
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    const bool stage_mode = bignlp::config::names_worker_config(args);
    bignlp::config::WorkerConfigArgs cfg_args;
    if (stage_mode) cfg_args = bignlp::config::extract_worker_config_args(args);
    if (stage_mode) {
      if (!args.empty()) {
        std::cerr << "bignlp-convert: with --config-path/--config-name the stage config says everything; unexpected "
                     "argument '" << args.front() << "'\n";
        return static_cast<int>(bignlp::ExitCode::kUsage);
      }
      const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
      const bignlp::config::ConfigView cfg(root);
      // The launcher starts tensor x pipeline parallel tasks; one process converts everything.
      for (const char* var : {"SLURM_PROCID", "RANK", "OMPI_COMM_WORLD_RANK"}) {
        if (const char* v = std::getenv(var); v != nullptr && std::string_view(v) != "0") {
          log.info("task {} ({}): the conversion runs on task 0", v, var);
          return 0;
        }
      }
      bignlp::exporting::run_conversion_stage(cfg, log);
      return 0;
    }
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-convert: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-convert: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
  CLI::App app{"bignlp-convert: checkpoint import, export and resharding"};
  std::string from, to, input, output, vocab_file, merge_file, tokenizer_model;
  bool reshard = false, overwrite = false;
  int tp = 0, pp = 0;
  auto* from_opt = app.add_option("--from", from, "import: source format")->check(CLI::IsMember({"hf-gpt2", "hf-t5", "nemo"}));
  auto* to_opt = app.add_option("--to", to, "export: target format")->check(CLI::IsMember({"nemo", "hf-gpt2", "hf-t5"}));
  auto* reshard_opt = app.add_flag("--reshard", reshard, "rewrite a bignlp checkpoint for another TP x PP layout");
  from_opt->excludes(reshard_opt);
  to_opt->excludes(reshard_opt);
  to_opt->excludes(from_opt);
  app.add_option("--input", input, "source checkpoint directory or file")->required();
  app.add_option("--output", output, "what to write")->required();
  auto* tp_opt = app.add_option("--tensor-model-parallel-size", tp, "--reshard, --to nemo: tensor-parallel size of the output")
                     ->check(CLI::PositiveNumber);
  auto* pp_opt = app.add_option("--pipeline-model-parallel-size", pp, "--reshard, --to nemo: pipeline-parallel size of the output")
                     ->check(CLI::PositiveNumber);
  auto* vocab_opt = app.add_option("--vocab-file", vocab_file, "--to nemo: tokenizer vocab file to pack");
  auto* merge_opt = app.add_option("--merge-file", merge_file, "--to nemo: tokenizer merges file to pack");
  auto* model_opt = app.add_option("--tokenizer-model", tokenizer_model, "--to nemo: SentencePiece model to pack");
  auto* overwrite_opt = app.add_flag("--overwrite", overwrite, "--to: replace an existing output");
  for (auto* o : {vocab_opt, merge_opt, model_opt, overwrite_opt}) o->needs(to_opt);
  tp_opt->excludes(from_opt);
  pp_opt->excludes(from_opt);
  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (from.empty() && to.empty() && !reshard) {
    std::cerr << "bignlp-convert: give --from FORMAT (import), --to FORMAT (export) or --reshard (change the TP x PP layout)\n";
    return static_cast<int>(bignlp::ExitCode::kUsage);
  }
  if ((to == "hf-gpt2" || to == "hf-t5") && (tp > 0 || pp > 0 || !vocab_file.empty() || !merge_file.empty() || !tokenizer_model.empty())) {
    std::cerr << "bignlp-convert: --to " << to << " writes one unsharded model with the checkpoint's tokenizer files; "
                 "--tensor-model-parallel-size, --pipeline-model-parallel-size, --vocab-file, --merge-file and "
                 "--tokenizer-model do not apply\n";
    return static_cast<int>(bignlp::ExitCode::kUsage);
  }
  try {
    if (reshard) {
      bignlp::checkpoint::reshard_checkpoint(input, output, tp > 0 ? tp : 1, pp > 0 ? pp : 1, log);
      return 0;
    }
    if (to == "nemo") {
      bignlp::exporting::NemoExportOptions opt;
      opt.tensor_model_parallel_size = tp;
      opt.pipeline_model_parallel_size = pp;
      opt.overwrite = overwrite;
      if (!vocab_file.empty()) opt.tokenizer_files["vocab_file"] = vocab_file;
      if (!merge_file.empty()) opt.tokenizer_files["merge_file"] = merge_file;
      if (!tokenizer_model.empty()) opt.tokenizer_files["model"] = tokenizer_model;
      bignlp::exporting::export_nemo(input, output, opt, log);
      return 0;
    }
    if (to == "hf-gpt2") {
      bignlp::exporting::export_hf_gpt2(input, output, overwrite, log);
      return 0;
    }
    if (to == "hf-t5") {
      bignlp::exporting::export_hf_t5(input, output, overwrite, log);
      return 0;
    }
    if (from == "nemo") {
      bignlp::exporting::import_nemo(input, output, log);
      return 0;
    }
    bignlp::CpuAllocator alloc;
    bignlp::ops::OpContext ctx = bignlp::ops::OpContext::cpu();
    ctx.allocator = &alloc;
    const fs::path in(input);
    if (from == "hf-t5") {
      const bignlp::model::T5Config config = bignlp::model::read_hf_t5_config(in);
      bignlp::model::T5Model model(config, ctx);
      bignlp::model::load_hf_t5_weights(in, model);
      bignlp::checkpoint::CheckpointState state;
      state.family = "t5";
      state.model = model.config_json();
      if (fs::exists(in / "spiece.model"))
        state.tokenizer = {{"library", "sentencepiece"}, {"model", fs::absolute(in / "spiece.model").string()}};
      fs::path out(output);
      if (out.has_parent_path()) fs::create_directories(out.parent_path());
      bignlp::checkpoint::save_checkpoint(out, state, model.parameters(), nullptr, ctx);
      log.info("imported {} (T5: {} + {} layers, d_model {}, {} parameters) into {}", in.string(),
               config.encoder.num_layers, config.decoder.num_layers, config.encoder.hidden_size,
               model.num_parameters(), out.string());
      return 0;
    }
    const bignlp::model::GptConfig config = bignlp::model::read_hf_gpt2_config(in);
    bignlp::model::GptModel model(config, ctx);
    bignlp::model::load_hf_gpt2_weights(in, model);
    bignlp::checkpoint::CheckpointState state;
    state.model = model.config_json();
    state.tokenizer = {{"library", "megatron"}, {"type", "GPT2BPETokenizer"}};
    for (const char* name : {"vocab.json", "merges.txt"}) {
      if (fs::exists(in / name))
        state.tokenizer[std::string(name) == "vocab.json" ? "vocab_file" : "merge_file"] = fs::absolute(in / name).string();
    }
    fs::path out(output);
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    bignlp::checkpoint::save_checkpoint(out, state, model.parameters(), nullptr, ctx);
    log.info("imported {} ({} layers, hidden {}, {} parameters) into {}", in.string(), config.num_layers,
             config.hidden_size, config.num_parameters(), out.string());
    return 0;
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-convert: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-convert: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
