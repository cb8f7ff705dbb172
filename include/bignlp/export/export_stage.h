// The export stage's worker (export=gpt3/export_gpt3): a saved stage config -> a Triton model
// repository with the FasterTransformer GPT checkpoint (fastertransformer.h), plus the commands
// that serve it, rendered next to the repository.
//
// Keys read (the seed's export config):
//   run.results_dir                          where the serving scripts go
//   run.*                                    the launcher's; not used here
//   model.checkpoint_path                    a bignlp checkpoint directory, a checkpoints/ folder (its
//                                            latest complete checkpoint) or a .nemo file (imported
//                                            into a temporary checkpoint first)
//   model.tensor_model_parallel_size         inference tensor_para_size T
//   model.weight_data_type                   fp32 | fp16
//   model.processes                          layers converted in parallel
//   model.load_checkpoints_to_cpu            accepted either way: conversion always reads on the CPU
//   model.fused_qkv                          optional, default True (FT's --fused-qkv)
//   triton_deployment.triton_model_dir       <repo>/<model name>: the model directory written
//   triton_deployment.max_batch_size, pipeline_model_parallel_size, int8_mode,
//   enable_custom_all_reduce, data_type      config.pbtxt values
//   accuracy.enabled                         run the accuracy check (export_check.h) after the export:
//     accuracy.test_data, output_path        LAMBADA file; the JSON report
//     accuracy.runtime_config_ini_path       where the runtime settings used are written
//     accuracy.batch_size, runtime.{max_seq_len, beam_width, sampling_top_k, sampling_top_p}
//     accuracy.ntasks_per_node               the seed's task count for FT's run; the check runs the
//                                            re-assembled model in this one process
//     accuracy.limit                         optional: the first N documents
//   benchmark.enabled                        run the benchmark: benchmark.{input_len, output_len,
//                                            batch_sizes} -> <results_dir>/benchmark.csv;
//     benchmark.triton_wait_time             checked (>= 0); no server is started, nothing to wait for
// (a disabled section's other keys are not read)
// Written next to the repository (in run.results_dir):
//   serve_tritonserver.sh   srun ... tritonserver --model-repository <repo> (seed §6.1: nodes and
//                           CUDA_VISIBLE_DEVICES from T x PP on 8-GPU nodes; the container image
//                           from $BIGNLP_INFERENCE_CONTAINER)
//   serve_bignlp.sh         bignlp-serve --model-repo <repo>
#pragma once

#include <filesystem>

#include "bignlp/config/view.h"
#include "bignlp/core/logging.h"
#include "bignlp/export/fastertransformer.h"

namespace bignlp::exporting {

/// The tritonserver command of seed §6.1 for a repository served with T x PP GPUs (script text).
std::string render_tritonserver_script(const std::filesystem::path& repo, int tensor_para_size, int pipeline_para_size);
/// The bignlp-serve command for the same repository (script text).
std::string render_bignlp_serve_script(const std::filesystem::path& repo);

/// Runs the export stage on its config.
void run_export_stage(const config::ConfigView& cfg, const Logger& log);

}  // namespace bignlp::exporting
