// bignlp-export: a bignlp checkpoint -> FasterTransformer GPT weights in a Triton model repository.
//
//   bignlp-export --checkpoint CKPT --output REPO --model-name NAME --tensor-para-size T
//                 [--weight-data-type fp32|fp16] [--no-fused-qkv] [--processes N]
//                 [--max-batch-size N] [--pipeline-para-size N] [--data-type fp32|fp16|bf16]
//                 [--int8-mode] [--enable-custom-all-reduce] [--overwrite]
//     writes REPO/NAME/config.pbtxt and REPO/NAME/1/<T>-gpu/ (export/fastertransformer.h). CKPT may
//     also be a .nemo file (imported into a temporary checkpoint first).
//
//   bignlp-export --config-path DIR --config-name NAME [OVERRIDES]
//     the launcher's export stage (export/export_stage.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "bignlp/config/view.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/export/export_stage.h"
#include "bignlp/export/fastertransformer.h"
#include "bignlp/export/nemo.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  bignlp::Logger log("bignlp-export");
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    const bool stage_mode = bignlp::config::names_worker_config(args);
    bignlp::config::WorkerConfigArgs cfg_args;
    if (stage_mode) cfg_args = bignlp::config::extract_worker_config_args(args);
    if (stage_mode) {
      if (!args.empty()) {
        std::cerr << "bignlp-export: with --config-path/--config-name the stage config says everything; unexpected "
                     "argument '" << args.front() << "'\n";
        return static_cast<int>(bignlp::ExitCode::kUsage);
      }
      const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
      bignlp::exporting::run_export_stage(bignlp::config::ConfigView(root), log);
      return 0;
    }
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-export: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-export: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
  CLI::App app{"bignlp-export: FasterTransformer GPT weights in a Triton model repository"};
  std::string checkpoint, output, wdt = "fp32";
  bignlp::exporting::FtExportOptions o;
  bool no_fused = false, int8 = false, car = false;
  app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory or .nemo file")->required();
  app.add_option("--output", output, "Triton model repository")->required();
  app.add_option("--model-name", o.model_name, "model directory name inside the repository")->required();
  app.add_option("--tensor-para-size", o.tensor_para_size, "inference tensor-parallel size")->required()->check(CLI::PositiveNumber);
  app.add_option("--weight-data-type", wdt, "weight files: fp32 or fp16")->check(CLI::IsMember({"fp32", "fp16"}));
  app.add_flag("--no-fused-qkv", no_fused, "QKV weights as [3, h, h/T] (folder unfusedQKV-<T>-gpu)");
  app.add_option("--processes", o.processes, "layers converted in parallel")->check(CLI::PositiveNumber);
  app.add_option("--max-batch-size", o.max_batch_size, "config.pbtxt max_batch_size")->check(CLI::PositiveNumber);
  app.add_option("--pipeline-para-size", o.pipeline_para_size, "config.pbtxt pipeline_para_size")->check(CLI::PositiveNumber);
  app.add_option("--data-type", o.data_type, "config.pbtxt data_type (runtime compute type)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_flag("--int8-mode", int8, "config.pbtxt int8_mode 1");
  app.add_flag("--enable-custom-all-reduce", car, "config.pbtxt enable_custom_all_reduce 1");
  app.add_flag("--overwrite", o.overwrite, "replace an existing model directory");
  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.weight_data_type = wdt == "fp16" ? bignlp::DType::kF16 : bignlp::DType::kF32;
  o.fused_qkv = !no_fused;
  o.int8_mode = int8;
  o.enable_custom_all_reduce = car;
  try {
    fs::path ckpt = checkpoint;
    std::optional<bignlp::TempDir> imported;
    if (ckpt.extension() == ".nemo") {
      imported.emplace("export-nemo");
      bignlp::exporting::import_nemo(ckpt, imported->path() / "checkpoint", log);
      ckpt = imported->path() / "checkpoint";
    }
    bignlp::exporting::export_fastertransformer(ckpt, output, o, log);
    return 0;
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-export: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-export: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
