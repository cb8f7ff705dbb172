// bignlp-serve's HTTP server (cpp-httplib): one model behind an Engine (continuous batching) and
// three faces (docs/inference.md):
//   - Triton's KServe v2 JSON protocol with the FasterTransformer GPT backend's tensor names:
//     GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/ready];
//     POST /v2/models/{name}/infer (input_ids [B, S] + input_lengths [B, 1] + request_output_len
//     [B, 1] and the optional runtime tensors; output_ids [B, W, S + max output len] holding each
//     row's prompt then its generated tokens, padded with end_id, sequence_length [B, W],
//     response_input_lengths [B], cum_log_probs [B, W] and output_log_probs [B, W, max output len]
//     when is_return_log_probs)
//   - the OpenAI-style API: POST /v1/completions, POST /v1/chat/completions (both with
//     stream: true as server-sent events), GET /v1/models
//   - GET /metrics in Prometheus text format.
// Bad requests get 4xx with a message naming the field; a full queue 503; after shutdown begins,
// new requests get 503 while in-flight ones finish. One engine thread steps the model; HTTP
// handler threads submit requests and wait for (or stream) their results.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bignlp/data/tokenizer.h"
#include "bignlp/infer/engine.h"

namespace bignlp::serve {

struct ServerOptions {
  std::string model_name = "bignlp";
  std::string host = "127.0.0.1";
  int port = 8000;              ///< 0: any free port (bind() returns it)
  int http_threads = 64;        ///< concurrent HTTP connections handled
  infer::EngineOptions engine;  ///< max_batch_size (KV slots), capacity, max_queue
  std::size_t max_body_bytes = 16u << 20;
  bool access_log = true;       ///< one JSON line per request on stderr
};

class Server {
 public:
  /// `tokenizer` may be null (then only token-id prompts work); `end_id` is the default end token.
  Server(model::Model& model, const data::Tokenizer* tokenizer, std::optional<std::int32_t> end_id,
         ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds host:port; returns the port. Throws IoError naming the address when it cannot.
  int bind();
  /// Serves until a shutdown has drained (blocks).
  void serve();
  /// Stops taking requests (503) and stops the server once in-flight requests are answered.
  /// Safe to call from any thread (not from a signal handler).
  void begin_shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bignlp::serve
