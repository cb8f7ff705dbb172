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
//   bignlp-convert --reshard --input CKPT --output CKPT2 --tensor-model-parallel-size N
//                  --pipeline-model-parallel-size M
//     rewrites a bignlp checkpoint for another TP x PP layout (weights and Adam moments; the
//     data-parallel size never matters). Conversion and export stages use it to reach the
//     layout they serve with.
// Index: model/hf_gpt2.h, model/hf_t5.h (mappings), checkpoint/checkpoint.h (output format), checkpoint/reshard.h.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <string_view>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/model/hf_gpt2.h"
#include "bignlp/model/hf_t5.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"bignlp-convert: import checkpoints into bignlp's checkpoint format"};
  std::string from, input, output;
  bool reshard = false;
  int tp = 1, pp = 1;
  auto* from_opt = app.add_option("--from", from, "source format")->check(CLI::IsMember({"hf-gpt2", "hf-t5"}));
  auto* reshard_opt = app.add_flag("--reshard", reshard, "rewrite a bignlp checkpoint for another TP x PP layout");
  from_opt->excludes(reshard_opt);
  app.add_option("--input", input, "source checkpoint directory")->required();
  app.add_option("--output", output, "bignlp checkpoint directory to write")->required();
  auto* tp_opt = app.add_option("--tensor-model-parallel-size", tp, "--reshard: tensor-parallel size of the output")
                     ->check(CLI::PositiveNumber);
  auto* pp_opt = app.add_option("--pipeline-model-parallel-size", pp, "--reshard: pipeline-parallel size of the output")
                     ->check(CLI::PositiveNumber);
  tp_opt->needs(reshard_opt);
  pp_opt->needs(reshard_opt);
  // The launcher's conversion stage runs this program on its stage config; that worker is not built.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config-path" || arg == "--config-name" || arg.rfind("--config-path=", 0) == 0 ||
        arg.rfind("--config-name=", 0) == 0) {
      std::cerr << "bignlp-convert: running the launcher's conversion stage (a stage config given with --config-path/"
                   "--config-name) is not built yet; this version converts with --from hf-gpt2, --from hf-t5 or --reshard (README, Status)\n";
      return static_cast<int>(bignlp::ExitCode::kConfig);
    }
  }
  CLI11_PARSE(app, argc, argv);
  if (from.empty() && !reshard) {
    std::cerr << "bignlp-convert: give --from FORMAT (import) or --reshard (change the TP x PP layout)\n";
    return static_cast<int>(bignlp::ExitCode::kUsage);
  }
  bignlp::Logger log("bignlp-convert");
  try {
    if (reshard) {
      bignlp::checkpoint::reshard_checkpoint(input, output, tp, pp, log);
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
