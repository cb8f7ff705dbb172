#include "bignlp/export/export_stage.h"

#include <fmt/format.h>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/export/conversion_stage.h"
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
  for (const char* key : {"accuracy.enabled", "benchmark.enabled"}) {
    if (cfg.get_or<bool>(key, false))
      throw ConfigError(fmt::format("{}: True asks for a run of the exported model, which needs the inference engine "
                                    "this build does not have; set {}=False (the export itself does not need it)",
                                    cfg.full_path(key), cfg.full_path(key)));
  }
  if (cfg.has("accuracy")) cfg.mark_used("accuracy");
  if (cfg.has("benchmark")) cfg.mark_used("benchmark");
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
}

}  // namespace bignlp::exporting
