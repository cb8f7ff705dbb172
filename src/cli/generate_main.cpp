// bignlp-generate: text generation with a bignlp checkpoint (docs/inference.md).
//
//   bignlp-generate --checkpoint CKPT|--model-repo DIR --input PROMPTS.jsonl --output OUT.jsonl [--tokens-to-generate N]
//                   [--top-k K] [--top-p P] [--temperature T] [--beam-width W] [--len-penalty A]
//                   [--repetition-penalty R | --presence-penalty P] [--min-length N] [--end-id ID]
//                   [--stop-words W1,W2 ...] [--bad-words ...] [--seed S] [--logprobs] [--batch-size B]
//   bignlp-generate --checkpoint CKPT --interactive [...]     (a prompt loop on a terminal)
// --model-repo: a FasterTransformer GPT model repository as bignlp-export writes it
// (infer/ft_repository.h); --model-name picks one model of a repository holding several.
// Formats: infer/generation_io.h. Output lines come in input order, written atomically.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/infer/engine.h"
#include "bignlp/infer/ft_repository.h"
#include "bignlp/infer/generation_io.h"
#include "bignlp/worker/worker_session.h"

namespace {

using namespace bignlp;

std::vector<std::vector<std::int32_t>> words_of(const std::vector<std::string>& words, const data::Tokenizer* tok,
                                                const char* flag) {
  std::vector<std::vector<std::int32_t>> out;
  for (const auto& w : words) {
    if (tok == nullptr)
      throw ConfigError(fmt::format("{} needs the checkpoint's tokenizer, and the checkpoint records none", flag));
    auto ids = tok->encode(w);
    if (ids.empty()) throw ConfigError(fmt::format("{}: '{}' encodes to no tokens", flag, w));
    out.push_back(std::move(ids));
  }
  return out;
}

int interactive(infer::Engine& engine, const infer::SamplingParams& params, const data::Tokenizer* tok) {
  if (tok == nullptr) throw ConfigError("--interactive needs the model's tokenizer, and the model records none");
  // One session: its KV cache is kept between turns, so a turn runs only its own tokens through
  // the model (and the last token generated before it). When the dialogue outgrows the context,
  // a new session starts from its most recent tokens.
  std::uint64_t session = engine.open_session();
  std::string line;
  std::cerr << "bignlp-generate: type a prompt and press enter (an empty line or end of input quits)\n";
  while (std::cout << "> " << std::flush, std::getline(std::cin, line) && !line.empty()) {
    std::vector<std::int32_t> ids = tok->encode(line + "\n");
    const std::int64_t room = engine.options().capacity - params.max_new_tokens;
    if (room < 1) throw ConfigError("--tokens-to-generate leaves no room for a prompt in the model's context");
    const std::vector<std::int32_t>& so_far = engine.session_tokens(session);
    if (static_cast<std::int64_t>(so_far.size() + ids.size()) > room) {
      std::vector<std::int32_t> history(so_far);
      history.insert(history.end(), ids.begin(), ids.end());
      history.erase(history.begin(), history.end() - std::min<std::int64_t>(room, static_cast<std::int64_t>(history.size())));
      engine.close_session(session);
      session = engine.open_session();
      ids = std::move(history);
    }
    std::vector<std::int32_t> generated;
    std::string shown;
    engine.submit(
        infer::GenerationRequest{ids, params, session},
        [&](std::int32_t token, float) {
          generated.push_back(token);
          const std::string text = infer::detokenize(*tok, generated);
          if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
            std::cout << text.substr(shown.size()) << std::flush;
            shown = text;
          }
        },
        {});
    while (engine.step()) {
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bignlp-generate: generate text with a bignlp checkpoint"};
  std::string checkpoint, model_repo, repo_model_name, input, output, precision = "32", device = "auto";
  std::vector<std::string> stop_words, bad_words;
  infer::SamplingParams p;
  p.max_new_tokens = 30;
  std::int64_t end_id = -2;  // -2: the tokenizer's end-of-document id; -1: none
  std::int64_t batch_size = 8;
  bool want_interactive = false;
  int threads = 0;
  auto* ckpt_opt = app.add_option("--checkpoint", checkpoint, "bignlp checkpoint directory");
  auto* repo_opt = app.add_option("--model-repo", model_repo,
                                  "FasterTransformer GPT model repository (bignlp-export): the repository, a model "
                                  "directory or its <T>-gpu weights folder");
  ckpt_opt->excludes(repo_opt);
  app.add_option("--model-name", repo_model_name, "with --model-repo: the model of a repository holding several");
  app.add_option("--input", input, "JSONL prompts: {\"ids\": [...]} or {\"text\": \"...\"} per line");
  app.add_option("--output", output, "JSONL results, one line per prompt in input order");
  app.add_flag("--interactive", want_interactive, "a prompt loop on the terminal, streaming tokens");
  app.add_option("--tokens-to-generate", p.max_new_tokens, "tokens to generate per prompt")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", p.top_k, "top-k sampling (0: off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", p.top_p, "nucleus sampling threshold (0: off); top-k 0 and top-p 0 is greedy");
  app.add_option("--temperature", p.temperature, "softmax temperature");
  app.add_option("--beam-width", p.beam_width, "beam search width (1: sampling)")->check(CLI::PositiveNumber);
  app.add_option("--len-penalty", p.len_penalty, "beam search length penalty alpha (score / length^alpha)");
  app.add_option("--repetition-penalty", p.repetition_penalty, "multiplicative repetition penalty (1: off)");
  app.add_option("--presence-penalty", p.presence_penalty, "additive presence penalty (0: off)");
  app.add_option("--min-length", p.min_length, "tokens generated before the end id may come")->check(CLI::NonNegativeNumber);
  app.add_option("--end-id", end_id, "end-of-sequence token id (default: the tokenizer's; -1: none)");
  app.add_option("--stop-words", stop_words, "words (texts) that end generation, kept in the output");
  app.add_option("--bad-words", bad_words, "words (texts) never generated");
  app.add_option("--seed", p.random_seed, "random seed of every prompt (a line's \"seed\" overrides it)");
  app.add_flag("--logprobs", p.return_log_probs, "write per-token log-probabilities");
  app.add_option("--batch-size", batch_size, "sequences decoded together (a beam counts as one)")->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "compute precision: 32, bf16 or 16 (default 32; with --model-repo, config.pbtxt's data_type)")->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--device", device, "auto (a GPU when there is one), cpu or cuda (gpu)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}));
  CLI11_PARSE(app, argc, argv);
  Logger log("bignlp-generate");
  try {
    if (!want_interactive && (input.empty() || output.empty()))
      throw UsageError("give --input and --output, or --interactive");
    if (want_interactive && (!input.empty() || !output.empty()))
      throw UsageError("--interactive reads prompts from the terminal: drop --input/--output");
    if (!repo_model_name.empty() && model_repo.empty()) throw UsageError("--model-name goes with --model-repo");
    // Ranks: a checkpoint runs in its own TP x PP layout (one process per rank, as bignlp-evaluate;
    // every rank runs the same engine and samples the same tokens from the same logits);
    // a repository's weights are re-assembled for as many tensor-parallel ranks as were started.
    const std::map<std::string, std::string> env = process_environment();
    const int world = comm::parse_distributed_env(env).world_size;
    int tp = world, pp = 1;
    if (!checkpoint.empty()) {
      const checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(checkpoint);
      tp = meta.tp_size;
      pp = meta.pp_size;
    }
    if (tp * pp != world)
      throw ConfigError(fmt::format("checkpoint {} is split TP {} x PP {} = {} ranks, but {} processes were started; "
                                    "start one per rank (or reshard it)",
                                    checkpoint, tp, pp, tp * pp, world));
    const bool parallel = tp * pp > 1;
    if (parallel && want_interactive) throw UsageError("--interactive runs on one rank");
    worker::WorkerOptions options;
    options.world = parallel ? worker::WorldKind::kLauncher : worker::WorldKind::kSingleProcess;
    options.device_flag = device;
    options.cpu_threads = threads;
    options.allow_tf32 = false;
    options.tensor_model_parallel_size = tp;
    options.pipeline_model_parallel_size = pp;
    const worker::WorkerSession session = worker::start_worker(options, env, log);
    const bool reporting = !parallel || session.env().rank == 0;
    if (parallel) log = session.log();
    const std::optional<model::Precision> prec =
        model_repo.empty() || app.count("--precision") > 0 ? std::optional(model::parse_precision(precision)) : std::nullopt;
    infer::InferenceModel loaded =
        infer::load_inference_model(checkpoint, model_repo, repo_model_name, session.runtime().context(), prec,
                                    parallel ? session.parallel_context() : parallel::ParallelContext{});
    auto& model = loaded.model;
    const auto& tok = loaded.tokenizer;
    log.info("loaded {} ({} compute)", loaded.source, dtype_name(model->compute_dtype()));
    if (end_id == -2) {
      p.end_id = loaded.end_id;
    } else if (end_id >= 0) {
      p.end_id = static_cast<std::int32_t>(end_id);
    } else if (end_id != -1) {
      throw UsageError(fmt::format("--end-id {}: expected a token id or -1 (none)", end_id));
    }
    p.stop_words = words_of(stop_words, tok.get(), "--stop-words");
    p.bad_words = words_of(bad_words, tok.get(), "--bad-words");
    p.validate(model->vocab_size(), "bignlp-generate");
    infer::Engine engine(*model, infer::EngineOptions{batch_size, 0});
    if (want_interactive) return interactive(engine, p, tok.get());
    const auto requests = infer::read_generation_requests(input, p, tok.get(), model->vocab_size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      try {
        engine.check(requests[i]);
      } catch (const ConfigError& e) {
        throw DataError(fmt::format("{}: prompt {} (line order): {}", input, i + 1, e.what()));
      }
    }
    const auto results = engine.generate(requests);
    for (std::size_t i = 0; i < results.size(); ++i)
      if (!results[i].error.empty())
        throw RuntimeError(fmt::format("{}: prompt {}: generation failed: {}", input, i + 1, results[i].error));
    std::string text;
    for (const auto& r : results) text += infer::result_json(r, tok.get(), p.return_log_probs).dump() + "\n";
    if (!reporting) return 0;  // every rank computed the same tokens; rank 0 writes them
    write_file_atomic(output, text);
    log.info("generated for {} prompts from {} into {} ({} prompt and {} decode tokens)", results.size(), input, output,
             engine.prompt_tokens(), engine.decode_tokens());
    return 0;
  } catch (const Error& e) {
    std::cerr << "bignlp-generate: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-generate: " << e.what() << "\n";
    return static_cast<int>(ExitCode::kRuntime);
  }
}
