#include "bignlp/export/export_stage.h"

#include <fmt/format.h>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/export/conversion_stage.h"
#include "bignlp/export/export_check.h"
#include "bignlp/export/nemo.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string render_tritonserver_script(const fs::path& repo, int tp, int pp) {
  const int gpus = tp * pp, per_node = 8;
  const int nodes = (gpus + per_node - 1) / per_node;
  std::string devices;
  if (gpus < per_node)
    for (int i = 0; i < gpus; ++i) devices += (i ? "," : "") + std::to_string(i);
  const std::string r = shell_quote(repo.string());
  const std::string inner =
      devices.empty() ? fmt::format("tritonserver --model-repository {}", repo.string())
                      : fmt::format("export CUDA_VISIBLE_DEVICES={} && tritonserver --model-repository {}", devices,
                                    repo.string());
  return fmt::format(
      "#!/bin/bash\n"
      "# Serves the model repository with NVIDIA Triton and the FasterTransformer backend:\n"
      "# tensor parallel {} x pipeline parallel {} = {} GPUs on {} node(s) of 8 GPUs.\n"
      "set -euo pipefail\n"
      "srun --nodes={} --mpi=pmix --container-image=\"${{BIGNLP_INFERENCE_CONTAINER:?set the inference container "
      "image}}\" --container-mounts={}:{} bash -c {}\n",
      tp, pp, gpus, nodes, nodes, r, r, shell_quote(inner));
}

std::string render_bignlp_serve_script(const fs::path& repo) {
  return fmt::format(
      "#!/bin/bash\n"
      "# Serves the same model repository with bignlp's own server (no Triton).\n"
      "set -euo pipefail\n"
      "exec bignlp-serve --model-repo {} \"$@\"\n",
      shell_quote(repo.string()));
}

void run_export_stage(const config::ConfigView& cfg, const Logger& log) {
  cfg.mark_used("run");
  const fs::path results = cfg.get<std::string>("run.results_dir");
  fs::path ckpt = cfg.get<std::string>("model.checkpoint_path");
  FtExportOptions o;
  o.tensor_para_size = cfg.get<int>("model.tensor_model_parallel_size");
  const std::string wdt = cfg.get<std::string>("model.weight_data_type");
  if (wdt != "fp32" && wdt != "fp16")
    throw ConfigError(fmt::format("{}: '{}' is not fp32 or fp16", cfg.full_path("model.weight_data_type"), wdt));
  o.weight_data_type = wdt == "fp16" ? DType::kF16 : DType::kF32;
  o.processes = cfg.get_or<int>("model.processes", 1);
  cfg.get_or<bool>("model.load_checkpoints_to_cpu", false);  // always on the CPU here
  o.fused_qkv = cfg.get_or<bool>("model.fused_qkv", true);
  const fs::path model_dir = cfg.get<std::string>("triton_deployment.triton_model_dir");
  o.model_name = model_dir.filename().string();
  const fs::path repo = model_dir.parent_path();
  o.max_batch_size = cfg.get_or<int>("triton_deployment.max_batch_size", 1);
  o.pipeline_para_size = cfg.get_or<int>("triton_deployment.pipeline_model_parallel_size", 1);
  o.int8_mode = cfg.get_or<bool>("triton_deployment.int8_mode", false);
  o.enable_custom_all_reduce = cfg.get_or<bool>("triton_deployment.enable_custom_all_reduce", false);
  o.data_type = cfg.get_or<std::string>("triton_deployment.data_type", "fp16");
  // The accuracy check and the benchmark (export_check.h): their keys are read before anything is
  // written, so a bad value fails early.
  const bool accuracy = cfg.get_or<bool>("accuracy.enabled", false);
  AccuracyCheckOptions ao;
  if (accuracy) {
    // The launcher's task count for FT's multi-GPU run; the check runs the re-assembled model in
    // this one process (the numbers FT computes on ntasks_per_node ranks).
    if (cfg.get_or<int>("accuracy.ntasks_per_node", 1) < 1)
      throw ConfigError(fmt::format("{}: must be >= 1", cfg.full_path("accuracy.ntasks_per_node")));
    ao.test_data = cfg.get<std::string>("accuracy.test_data");
    if (!fs::is_regular_file(ao.test_data))
      throw ConfigError(fmt::format("{}: '{}' does not exist; fetch LAMBADA with bignlp-evaluate --download --tasks lambada "
                                    "--data-dir DIR and point it at DIR/lambada_test.jsonl (or set {}=False)",
                                    cfg.full_path("accuracy.test_data"), ao.test_data.string(),
                                    cfg.full_path("accuracy.enabled")));
    ao.output_path = cfg.get<std::string>("accuracy.output_path");
    ao.runtime_ini = cfg.get_or<std::string>("accuracy.runtime_config_ini_path", "");
    ao.batch_size = cfg.get_or<std::int64_t>("accuracy.batch_size", 64);
    ao.max_seq_len = cfg.get_or<std::int64_t>("accuracy.runtime.max_seq_len", 512);
    ao.beam_width = cfg.get_or<int>("accuracy.runtime.beam_width", 1);
    ao.top_k = cfg.get_or<int>("accuracy.runtime.sampling_top_k", 1);
    ao.top_p = cfg.get_or<float>("accuracy.runtime.sampling_top_p", 0.0f);
    if (auto limit = cfg.find<std::int64_t>("accuracy.limit")) ao.limit = *limit;
    for (const char* k : {"accuracy.batch_size", "accuracy.runtime.max_seq_len", "accuracy.runtime.beam_width"})
      if (cfg.get_or<std::int64_t>(k, 1) < 1) throw ConfigError(fmt::format("{}: must be >= 1", cfg.full_path(k)));
  } else if (cfg.has("accuracy")) {
    cfg.mark_used("accuracy");  // a disabled section's other keys are not read
  }
  const bool benchmark = cfg.get_or<bool>("benchmark.enabled", false);
  BenchmarkOptions bo;
  if (benchmark) {
    bo.input_len = cfg.get_or<std::int64_t>("benchmark.input_len", 60);
    bo.output_len = cfg.get_or<std::int64_t>("benchmark.output_len", 20);
    if (cfg.has("benchmark.batch_sizes")) bo.batch_sizes = cfg.get<std::vector<std::int64_t>>("benchmark.batch_sizes");
    // Seconds the seed waits for tritonserver to start; the benchmark here runs the engine in this
    // process, so there is no server to wait for (read, checked, documented in docs/conversion.md).
    if (cfg.get_or<double>("benchmark.triton_wait_time", 0.0) < 0)
      throw ConfigError(fmt::format("{}: must be >= 0", cfg.full_path("benchmark.triton_wait_time")));
    bo.output_csv = results / "benchmark.csv";
  } else if (cfg.has("benchmark")) {
    cfg.mark_used("benchmark");
  }
  cfg.check_all_used("the export stage config");
  // The launcher's export replaces the model directory of an earlier run.
  o.overwrite = true;
  std::optional<TempDir> imported;
  if (ckpt.extension() == ".nemo") {
    imported.emplace("export-nemo");
    const fs::path c = imported->path() / "checkpoint";
    import_nemo(ckpt, c, log);
    ckpt = c;
  } else if (!fs::exists(ckpt / "metadata.json")) {
    ckpt = select_checkpoint(ckpt, "latest");
  }
  export_fastertransformer(ckpt, repo, o, log);
  write_file_atomic(results / "serve_tritonserver.sh",
                    render_tritonserver_script(fs::absolute(repo).lexically_normal(), o.tensor_para_size,
                                               o.pipeline_para_size),
                    0755);
  write_file_atomic(results / "serve_bignlp.sh", render_bignlp_serve_script(fs::absolute(repo).lexically_normal()), 0755);
  log.info("serving commands: {} and {}", (results / "serve_tritonserver.sh").string(),
           (results / "serve_bignlp.sh").string());
  if (accuracy) check_export_accuracy(ckpt, model_dir, ao, log);
  if (benchmark) {
    benchmark_export(model_dir, bo, log);
    log.info("benchmark results: {}", bo.output_csv.string());
  }
}

}  // namespace bignlp::exporting
