// bignlp-evaluate: evaluation of trained checkpoints.
//
//   bignlp-evaluate --checkpoint CKPT --loglikelihood REQUESTS.jsonl --output OUT.jsonl [--batch-size N]
//                   [--precision 32|bf16|16] [--device auto|cpu|cuda]
//     REQUESTS lines {"context": [ids], "continuation": [ids]}; OUT lines {"logprob": x,
//     "is_greedy": b}, one per request, in request order.
// --device auto (the default) scores on CUDA device 0 (LOCAL_RANK / SLURM_LOCALID when set) when the
// build has CUDA and a GPU is visible, else on the CPU. Precision 32 is exact fp32 on both (no TF32:
// scores should not depend on the device beyond rounding order).
// Index: eval/loglikelihood.h (scoring), checkpoint/checkpoint.h (loading), worker/worker_session.h
// (device choice; one process, whatever the launcher's world).
#include <CLI/CLI.hpp>
#include <iostream>
#include <string_view>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/worker/worker_session.h"

int main(int argc, char** argv) {
  CLI::App app{"bignlp-evaluate: score requests with a bignlp checkpoint"};
  std::string checkpoint, requests, output, precision = "32", device = "auto";
  std::int64_t batch_size = 8;
  int threads = 0;
  app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory")->required();
  app.add_option("--loglikelihood", requests, "JSONL file of log-likelihood requests")->required();
  app.add_option("--output", output, "JSONL file for the results")->required();
  app.add_option("--batch-size", batch_size, "sequences per forward pass")->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "compute precision: 32, bf16 or 16")->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--device", device, "auto (a GPU when there is one), cpu or cuda (gpu)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}));
  // The launcher's evaluation stage runs this program on its stage config; that worker is not built.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config-path" || arg == "--config-name" || arg.rfind("--config-path=", 0) == 0 ||
        arg.rfind("--config-name=", 0) == 0) {
      std::cerr << "bignlp-evaluate: running the launcher's evaluation stage (a stage config given with --config-path/"
                   "--config-name) is not built yet; this version scores --loglikelihood requests against --checkpoint (README, Status)\n";
      return static_cast<int>(bignlp::ExitCode::kConfig);
    }
  }
  CLI11_PARSE(app, argc, argv);
  bignlp::Logger log("bignlp-evaluate");
  try {
    bignlp::worker::WorkerOptions options;
    options.world = bignlp::worker::WorldKind::kSingleProcess;
    options.device_flag = device;
    options.cpu_threads = threads;
    options.allow_tf32 = false;
    const bignlp::worker::WorkerSession session =
        bignlp::worker::start_worker(options, bignlp::process_environment(), log);
    const bignlp::ops::DeviceRuntime& runtime = session.runtime();
    if (session.context().device.is_cuda()) log.info("scoring on {}", runtime.describe());
    auto model = bignlp::checkpoint::load_model_from_checkpoint(checkpoint, runtime.context(),
                                                              bignlp::model::parse_precision(precision));
    const auto reqs = bignlp::eval::read_loglikelihood_requests(requests, model->vocab_size());
    const auto results = bignlp::eval::score_loglikelihood(*model, reqs, batch_size);
    bignlp::eval::write_loglikelihood_results(output, results);
    log.info("scored {} requests from {} into {}", results.size(), requests, output);
    return 0;
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-evaluate: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-evaluate: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
