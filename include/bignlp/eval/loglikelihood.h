// Log-likelihood scoring: the primitive zero-shot tasks (LAMBADA, PIQA, ...) are built on.
//
// A request is a context and a continuation (token ids). Its result is the sum of
// log p(continuation[i] | context, continuation[:i]) and whether every continuation token is the
// model's greedy (argmax) choice. The model sees (context + continuation)[:-1]; when that exceeds
// max_position_embeddings the oldest context tokens are dropped (the continuation must fit).
// Requests are scored in batches of similar length (padded on the right, which causal attention
// never sees) and results come back in request order. The order is lm-eval's: longest
// (context + continuation) first, ties by the tokens; identical requests are scored once.
// A pipelined model (PP > 1) runs the forward pass stage by stage (score_tokens); every rank of
// the model gets the scores, so every rank must call with the same requests.
// Encoder-decoder models (Model::is_encoder_decoder, T5): the context (its last
// max_position_embeddings tokens) is the encoder's input and the decoder reads the model's start
// token followed by the continuation, scoring each continuation token; a model that does not know
// its decoder start token is refused.
// JSONL: request lines {"context": [ids], "continuation": [ids]}; result lines
// {"logprob": <float>, "is_greedy": <bool>}.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "bignlp/model/model.h"

namespace bignlp::eval {

struct LoglikelihoodRequest {
  std::vector<std::int32_t> context;
  std::vector<std::int32_t> continuation;
};

struct LoglikelihoodResult {
  double logprob = 0.0;
  bool is_greedy = false;
};

/// Reads a JSONL request file. Throws DataError naming the file and line for malformed lines,
/// an empty context or continuation, or ids outside [0, vocab_size) (when vocab_size > 0).
std::vector<LoglikelihoodRequest> read_loglikelihood_requests(const std::filesystem::path& path,
                                                              std::int64_t vocab_size = 0);

/// Called after each batch with the indices (into the requests) it completed and their results.
using BatchDone = std::function<void(const std::vector<std::size_t>& indices, const std::vector<LoglikelihoodResult>& results)>;

/// Scores `requests` with `model`, `batch_size` sequences per forward pass. Collective over the
/// model's ranks (tensor and pipeline parallel): each calls with the same requests.
std::vector<LoglikelihoodResult> score_loglikelihood(model::Model& model,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     std::int64_t batch_size, const BatchDone& on_batch = {});

/// model.score(batch) on any TP x PP layout: with pipeline stages, each stage runs its chunk
/// (receiving from the previous stage, sending to the next) and the last stage's scores are
/// broadcast over the pipeline group, so every rank returns them. One chunk per stage (no
/// virtual pipeline; throws ConfigError otherwise).
model::TokenScores score_tokens(model::Model& model, const model::Batch& batch);

/// Writes one JSON line per result, atomically. Throws IoError.
void write_loglikelihood_results(const std::filesystem::path& path, const std::vector<LoglikelihoodResult>& results);

}  // namespace bignlp::eval
