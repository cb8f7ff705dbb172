// bignlp-serve: an HTTP inference server for a bignlp checkpoint (docs/inference.md): Triton's
// KServe v2 protocol with the FasterTransformer GPT tensors, the OpenAI-style completions and chat
// API, Prometheus metrics. SIGTERM or SIGINT: new requests get 503, in-flight ones finish, then
// the server exits 0.
//
//   bignlp-serve --checkpoint CKPT|--model-repo DIR [--model-name NAME] [--host 127.0.0.1] [--port 8000]
//                [--max-batch-size B] [--max-queue Q] [--http-threads N] [--end-id ID]
#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>
#include <unistd.h>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/infer/ft_repository.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/serve/server.h"
#include "bignlp/worker/worker_session.h"

namespace {

// SIGTERM/SIGINT: the handler (which may run on any thread, the BLAS library's included) writes
// the signal number into a pipe; a waiting thread reads it and begins the drain.
int signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(signal_pipe[1], &b, 1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bignlp;
  CLI::App app{"bignlp-serve: serve a bignlp checkpoint or FasterTransformer repository over HTTP (KServe v2 and OpenAI-style APIs)"};
  std::string checkpoint, model_repo, precision = "32", device = "auto";
  serve::ServerOptions o;
  o.engine.max_batch_size = 8;
  o.engine.max_queue = 256;
  std::int64_t end_id = -2;
  int threads = 0;
  bool no_access_log = false;
  auto* ckpt_opt = app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory");
  auto* repo_opt = app.add_option("--model-repo", model_repo,
                                  "FasterTransformer GPT model repository (bignlp-export): the repository, a model "
                                  "directory or its <T>-gpu weights folder");
  ckpt_opt->excludes(repo_opt);
  app.add_option("--model-name", o.model_name,
                 "the model's name in URLs and requests (default: the checkpoint directory's name, or the "
                 "repository's model name); with --model-repo also the model of the repository to load");
  app.add_option("--host", o.host, "address to bind (default 127.0.0.1: this machine only)");
  app.add_option("--port", o.port, "TCP port (0: any free port, printed)")->check(CLI::Range(0, 65535));
  app.add_option("--max-batch-size", o.engine.max_batch_size, "sequences decoded together (KV-cache slots)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-context", o.engine.capacity, "positions per sequence (0: the model's maximum)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-queue", o.engine.max_queue, "waiting requests before 503")->check(CLI::PositiveNumber);
  app.add_flag("--batch-invariant", o.engine.batch_invariant,
               "run each sequence of a step on its own: answers are bitwise those of each request alone (slower: "
               "no weight read is shared)");
  app.add_option("--http-threads", o.http_threads, "concurrent HTTP connections handled")->check(CLI::PositiveNumber);
  app.add_option("--end-id", end_id, "default end-of-sequence token id (default: the tokenizer's; -1: none)");
  app.add_flag("--no-access-log", no_access_log, "do not log each request on stderr");
  app.add_option("--precision", precision, "compute precision: 32, bf16 or 16 (default 32; with --model-repo, config.pbtxt's data_type)")->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--device", device, "auto (a GPU when there is one), cpu or cuda (gpu)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}));
  CLI11_PARSE(app, argc, argv);
  o.access_log = !no_access_log;
  Logger log("bignlp-serve");
  if (pipe(signal_pipe) != 0) {
    std::cerr << "bignlp-serve: cannot create the signal pipe\n";
    return static_cast<int>(ExitCode::kRuntime);
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  try {
    if (app.count("--model-name") == 0) o.model_name.clear();
    worker::WorkerOptions wo;
    wo.world = worker::WorldKind::kSingleProcess;
    wo.device_flag = device;
    wo.cpu_threads = threads;
    wo.allow_tf32 = false;
    const worker::WorkerSession session = worker::start_worker(wo, process_environment(), log);
    const std::optional<model::Precision> prec =
        model_repo.empty() || app.count("--precision") > 0 ? std::optional(model::parse_precision(precision)) : std::nullopt;
    infer::InferenceModel loaded =
        infer::load_inference_model(checkpoint, model_repo, o.model_name, session.runtime().context(), prec);
    auto& model = loaded.model;
    const auto& tok = loaded.tokenizer;
    if (o.model_name.empty()) o.model_name = loaded.name;
    if (o.model_name.empty() || o.model_name.find('/') != std::string::npos)
      throw UsageError(fmt::format("--model-name '{}': give a name without '/'", o.model_name));
    log.info("loaded {} ({} compute)", loaded.source, dtype_name(model->compute_dtype()));
    std::optional<std::int32_t> eid;
    if (end_id == -2) {
      eid = loaded.end_id;
    } else if (end_id >= 0) {
      if (end_id >= model->vocab_size())
        throw UsageError(fmt::format("--end-id {} outside the vocabulary [0, {})", end_id, model->vocab_size()));
      eid = static_cast<std::int32_t>(end_id);
    } else if (end_id != -1) {
      throw UsageError(fmt::format("--end-id {}: expected a token id or -1 (none)", end_id));
    }
    serve::Server server(*model, tok.get(), eid, o);
    const int port = server.bind();
    std::thread waiter([&] {
      unsigned char sig = 0;
      while (read(signal_pipe[0], &sig, 1) < 0) {
      }
      if (sig == 0) return;  // serve() ended on its own
      log.info("signal {}: draining in-flight requests, then exiting", static_cast<int>(sig));
      server.begin_shutdown();
    });
    log.info("serving model '{}' on http://{}:{} ({} KV-cache slots, queue {})", o.model_name, o.host, port,
             o.engine.max_batch_size, o.engine.max_queue);
    std::cout << "listening on " << o.host << ":" << port << std::endl;
    server.serve();
    log.info("stopped");
    const unsigned char zero = 0;
    [[maybe_unused]] const ssize_t n = write(signal_pipe[1], &zero, 1);  // unblocks the waiter if no signal came
    waiter.join();
    return 0;
  } catch (const Error& e) {
    std::cerr << "bignlp-serve: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-serve: " << e.what() << "\n";
    return static_cast<int>(ExitCode::kRuntime);
  }
}
