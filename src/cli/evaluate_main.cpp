// bignlp-evaluate: evaluation of trained checkpoints.
//
//   bignlp-evaluate --checkpoint CKPT --loglikelihood REQUESTS.jsonl --output OUT.jsonl [--batch-size N]
//     REQUESTS lines {"context": [ids], "continuation": [ids]}; OUT lines {"logprob": x,
//     "is_greedy": b}, one per request, in request order.
// Index: eval/loglikelihood.h (scoring), train/checkpoint.h (loading).
#include <CLI/CLI.hpp>
#include <iostream>

#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/train/checkpoint.h"

int main(int argc, char** argv) {
  CLI::App app{"bignlp-evaluate: score requests with a bignlp checkpoint"};
  std::string checkpoint, requests, output, precision = "32";
  std::int64_t batch_size = 8;
  int threads = 0;
  app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory")->required();
  app.add_option("--loglikelihood", requests, "JSONL file of log-likelihood requests")->required();
  app.add_option("--output", output, "JSONL file for the results")->required();
  app.add_option("--batch-size", batch_size, "sequences per forward pass")->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "compute precision: 32, bf16 or 16")->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  CLI11_PARSE(app, argc, argv);
  bignlp::Logger log("bignlp-evaluate");
  try {
    bignlp::CpuAllocator alloc;
    bignlp::ops::OpContext ctx = bignlp::ops::OpContext::cpu(threads);
    ctx.allocator = &alloc;
    auto model = bignlp::train::load_gpt_from_checkpoint(checkpoint, ctx, bignlp::model::parse_precision(precision));
    const auto reqs = bignlp::eval::read_loglikelihood_requests(requests, model->config().vocab_size);
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
