// Engine: text generation through model::Model's incremental decoding (Model::make_kv_cache,
// Model::decode), FasterTransformer's sampling and beam search semantics (sampling.h), and a
// continuous-batching scheduler: requests wait in a queue, join the running batch between decode
// steps when cache slots are free (their prompt runs in that step's context phase, packed with
// the other sequences' single decode tokens), and leave it when finished.
//
// Encoder-decoder models (T5/mT5, Model::is_encoder_decoder): the prompt is the encoder's input,
// encoded once when the request joins (Model::encode; its beams share the encoding); the decoder
// starts from Model::decoder_start_token() and everything below applies to the decoder's sequence
// (start token + generated tokens: the history of penalties and stop words, beam lengths).
// Each sequence owns one KV-cache slot (a beam-search request one per beam) and its own position
// counter: prompts are neither padded nor masked, and a request's tokens do not depend on the
// other requests in the batch (its random stream is its own: XORWOW seeded with random_seed).
// Beam search follows FT's GPT path (no hypothesis store): each live beam offers its 2W best
// tokens (score = cum_log_prob + log p), a finished beam offers end_id with log p = 0; the W
// best by score / length^len_penalty become the next beams (length = prompt + generated tokens,
// as FT's sequence_length + 1; finished beams: FT's sequence_length); cache slots are copied from
// the parent beams. Results list the beams in the last step's ranking order.
// Threads: submit() may be called from any thread; step() and generate() from one thread at a time;
// callbacks run on the stepping thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/infer/sampling.h"
#include "bignlp/model/model.h"

namespace bignlp::infer {

struct GenerationRequest {
  std::vector<std::int32_t> prompt;  ///< at least one token
  SamplingParams params;
};

/// One generated sequence (one beam).
struct SequenceOutput {
  std::vector<std::int32_t> tokens;     ///< generated tokens (the end or stop token included)
  std::vector<float> log_probs;         ///< FT output_log_probs per token (sampling.h), when requested
  std::vector<float> token_log_probs;   ///< ln P(token) under the full processed distribution
  /// With SamplingParams::top_log_probs n > 0: per token, the n most likely (id, log-prob) of the
  /// processed distribution, most likely first.
  std::vector<std::vector<std::pair<std::int32_t, float>>> top_log_probs;
  double cum_log_prob = 0.0;            ///< FT cum_log_probs
  std::string finish_reason;            ///< "end" (end_id), "stop" (a stop word), "length"
};

struct GenerationResult {
  std::vector<SequenceOutput> beams;  ///< beam_width entries (1 when sampling)
  std::string error;                  ///< non-empty when sampling failed (e.g. every token banned)
};

struct EngineOptions {
  std::int64_t max_batch_size = 8;  ///< KV-cache slots (sequences decoded together; a beam uses one)
  std::int64_t capacity = 0;        ///< positions per slot (0: the model's max_sequence_length())
  std::int64_t max_queue = 1 << 30; ///< submit() refuses more waiting requests (QueueFull)
  /// Batch invariance: each sequence of a step runs through the model on its own (one
  /// Model::decode call per sequence), so its logits, and so its tokens, are bitwise those of the
  /// request alone. Batched calls (false, the default) share each weight read between the
  /// sequences of a step but round differently with the batch size (OpenBLAS picks its kernels
  /// by the row count and a row's position in its tile), within about 1e-6 relative.
  bool batch_invariant = false;
};

/// Thrown by Engine::submit when the queue is full.
class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Called for each token of a sampling request (beam_width 1) as it is generated.
using TokenCallback = std::function<void(std::int32_t token, float log_prob)>;
using DoneCallback = std::function<void(GenerationResult)>;

class Engine {
 public:
  Engine(model::Model& model, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Checks `request` (ConfigError naming the setting, or the prompt length against the cache) and
  /// queues it; throws QueueFull when max_queue requests wait. Returns the request's id.
  std::uint64_t submit(GenerationRequest request, TokenCallback on_token = {}, DoneCallback on_done = {});
  /// Admits waiting requests while slots are free, then runs one model step over every running
  /// sequence (prompts of the admitted ones, one token of the others), samples and retires
  /// finished requests. Returns false when there was nothing to run.
  bool step();
  std::size_t queued() const;
  std::size_t running() const { return active_.size(); }
  std::int64_t slots_in_use() const { return options_.max_batch_size - static_cast<std::int64_t>(free_slots_.size()); }
  const EngineOptions& options() const { return options_; }
  model::Model& model() { return model_; }
  /// Tokens that ran through the model so far: prompt (context phase) and decode tokens.
  std::int64_t prompt_tokens() const { return prompt_tokens_; }
  std::int64_t decode_tokens() const { return decode_tokens_; }

  /// Runs `requests` to completion (batches of up to max_batch_size sequences, continuous
  /// batching), results in request order.
  std::vector<GenerationResult> generate(const std::vector<GenerationRequest>& requests);

  /// Checks a request without queueing it (what submit() checks).
  void check(const GenerationRequest& request) const;

 private:
  struct Beam {
    std::int64_t slot = -1;
    SequenceOutput out;
    bool finished = false;
  };
  struct Active {
    std::uint64_t id = 0;
    GenerationRequest req;
    TokenCallback on_token;
    DoneCallback on_done;
    std::vector<Beam> beams;
    std::int64_t generated = 0;  ///< steps taken (tokens generated by a live beam)
    bool prefilled = false;
    /// The decoder's context before the first generated token: the prompt (decoder-only) or the
    /// decoder start token (encoder-decoder; the prompt is the encoder's input).
    std::vector<std::int32_t> context;
    std::unique_ptr<Xorwow> rng;
    std::string error;
  };
  struct Waiting {
    std::uint64_t id = 0;
    GenerationRequest req;
    TokenCallback on_token;
    DoneCallback on_done;
  };

  void admit();
  void sample_step(Active& a, const float* logits);
  void beam_step(Active& a, const std::vector<const float*>& logits);
  bool done(const Active& a) const;
  void finish_beam(const Active& a, Beam& b, std::int32_t token) const;

  model::Model& model_;
  EngineOptions options_;
  model::KvCache cache_;
  std::int64_t vocab_ = 0;
  std::optional<std::int32_t> decoder_start_;  ///< set for encoder-decoder models
  std::vector<std::int64_t> free_slots_;
  std::vector<std::unique_ptr<Active>> active_;
  mutable std::mutex queue_mutex_;
  std::deque<Waiting> queue_;
  std::uint64_t next_id_ = 1;
  std::int64_t prompt_tokens_ = 0, decode_tokens_ = 0;
};

}  // namespace bignlp::infer
