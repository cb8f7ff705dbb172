#include "bignlp/eval/loglikelihood.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::eval {

std::vector<LoglikelihoodRequest> read_loglikelihood_requests(const std::filesystem::path& path,
                                                              std::int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("cannot read '{}'", path.string()));
  std::vector<LoglikelihoodRequest> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fail = [&](const std::string& msg) { throw DataError(fmt::format("{}:{}: {}", path.string(), lineno, msg)); };
    LoglikelihoodRequest r;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (!j.contains("context") || !j.contains("continuation"))
        fail("a request needs \"context\" and \"continuation\" (lists of token ids)");
      r.context = j.at("context").get<std::vector<std::int32_t>>();
      r.continuation = j.at("continuation").get<std::vector<std::int32_t>>();
    } catch (const nlohmann::json::exception& e) {
      fail(fmt::format("malformed request: {}", e.what()));
    }
    if (r.context.empty()) fail("empty context (start it with the end-of-text id to score from the beginning)");
    if (r.continuation.empty()) fail("empty continuation");
    if (vocab_size > 0)
      for (const auto* ids : {&r.context, &r.continuation})
        for (std::int32_t id : *ids)
          if (id < 0 || id >= vocab_size) fail(fmt::format("token id {} outside the vocabulary [0, {})", id, vocab_size));
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

/// Encoder-decoder models: the context (its last max_len tokens) goes to the encoder; the decoder
/// reads [start] + continuation[:-1] and scores the continuation.
std::vector<LoglikelihoodResult> score_encoder_decoder(model::Model& model,
                                                       const std::vector<LoglikelihoodRequest>& requests,
                                                       std::int64_t batch_size, const BatchDone& on_batch) {
  const std::optional<std::int32_t> start = model.decoder_start_token();
  if (!start)
    throw DataError(fmt::format("the {} checkpoint does not record the decoder's start token (decoder_start_token_id "
                                "in its model config): encoder-decoder log-likelihoods cannot be scored",
                                model.family()));
  const std::int64_t max_len = model.max_sequence_length();
  for (std::size_t i = 0; i < requests.size(); ++i)
    if (static_cast<std::int64_t>(requests[i].continuation.size()) > max_len)
      throw DataError(fmt::format("request {}: continuation of {} tokens exceeds the model's {} positions", i,
                                  requests[i].continuation.size(), max_len));
  const auto enc_len = [&](std::size_t i) {
    return std::min<std::int64_t>(static_cast<std::int64_t>(requests[i].context.size()), max_len);
  };
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return enc_len(a) > enc_len(b); });
  std::vector<LoglikelihoodResult> results(requests.size());
  for (std::size_t first = 0; first < order.size(); first += static_cast<std::size_t>(batch_size)) {
    const std::size_t last = std::min(order.size(), first + static_cast<std::size_t>(batch_size));
    const std::int64_t b = static_cast<std::int64_t>(last - first);
    const std::int64_t te = enc_len(order[first]);
    std::int64_t td = 0;
    for (std::size_t k = first; k < last; ++k)
      td = std::max<std::int64_t>(td, static_cast<std::int64_t>(requests[order[k]].continuation.size()));
    std::vector<std::int32_t> enc(static_cast<std::size_t>(b * te), 0), dec(static_cast<std::size_t>(b * td), 0),
        labels(dec.size(), 0), enc_lengths(static_cast<std::size_t>(b)), dec_lengths(static_cast<std::size_t>(b));
    for (std::int64_t bi = 0; bi < b; ++bi) {
      const LoglikelihoodRequest& r = requests[order[first + bi]];
      const std::int64_t le = enc_len(order[first + bi]);
      std::copy(r.context.end() - le, r.context.end(), enc.begin() + bi * te);
      const std::int64_t ld = static_cast<std::int64_t>(r.continuation.size());
      for (std::int64_t k = 0; k < ld; ++k) {
        labels[bi * td + k] = r.continuation[k];
        dec[bi * td + k] = k == 0 ? *start : r.continuation[k - 1];
      }
      enc_lengths[bi] = static_cast<std::int32_t>(le);
      dec_lengths[bi] = static_cast<std::int32_t>(ld);
    }
    const model::Batch batch{.tokens = TensorView(dec.data(), DType::kI32, Shape{b, td}),
                             .labels = TensorView(labels.data(), DType::kI32, Shape{b, td}),
                             .encoder_tokens = TensorView(enc.data(), DType::kI32, Shape{b, te}),
                             .encoder_lengths = TensorView(enc_lengths.data(), DType::kI32, Shape{b}),
                             .decoder_lengths = TensorView(dec_lengths.data(), DType::kI32, Shape{b})};
    const model::TokenScores scores = score_tokens(model, batch);
    for (std::int64_t bi = 0; bi < b; ++bi) {
      LoglikelihoodResult r;
      r.is_greedy = true;
      for (std::int64_t k = 0; k < dec_lengths[bi]; ++k) {
        r.logprob += scores.logprob[bi * td + k];
        r.is_greedy = r.is_greedy && scores.argmax[bi * td + k] == labels[bi * td + k];
      }
      results[order[first + bi]] = r;
    }
    if (on_batch) {
      const std::vector<std::size_t> done(order.begin() + static_cast<std::ptrdiff_t>(first),
                                          order.begin() + static_cast<std::ptrdiff_t>(last));
      std::vector<LoglikelihoodResult> done_results;
      for (std::size_t i : done) done_results.push_back(results[i]);
      on_batch(done, done_results);
    }
  }
  return results;
}

}  // namespace

model::TokenScores score_tokens(model::Model& model, const model::Batch& batch) {
  const parallel::ParallelContext& par = model.parallel_context();
  if (par.pp_size() == 1) return model.score(batch);
  if (model.num_chunks() != 1)
    throw ConfigError(fmt::format("scoring a model with {} chunks per pipeline stage (a virtual pipeline) is not "
                                  "supported; evaluate it without virtual_pipeline_model_parallel_size",
                                  model.num_chunks()));
  const ops::OpContext& ctx = model.context();
  const std::int64_t b = batch.tokens.shape()[0], t = batch.tokens.shape()[1], n = b * t;
  // An encoder-decoder boundary carries the encoder output and the decoder state: room for both.
  const Shape boundary = model.boundary_shape(
      b, model.is_encoder_decoder() && batch.encoder_tokens.defined() ? batch.encoder_tokens.shape()[1] + t : t);
  Buffer input, output;
  if (!par.is_first_stage()) {
    input = Buffer(*ctx.allocator, model.compute_dtype(), boundary);
    par.pp->recv(input.view(), par.pp_rank() - 1);
  }
  if (!par.is_last_stage()) output = Buffer(*ctx.allocator, model.compute_dtype(), boundary);
  auto acts = model.forward_chunk(0, batch, model::DropoutRng{}, /*training=*/false,
                                  input.defined() ? input.view() : TensorView(),
                                  output.defined() ? output.view() : TensorView());
  if (!par.is_last_stage()) par.pp->send(output.view(), par.pp_rank() + 1);
  model::TokenScores s;
  s.logprob.resize(static_cast<std::size_t>(n));
  s.argmax.resize(static_cast<std::size_t>(n));
  if (par.is_last_stage()) s = model.scores_of(*acts);
  acts.reset();
  // The scores travel in the communicator's memory (the device on NCCL).
  Buffer lp(*ctx.allocator, DType::kF32, Shape{n}), am(*ctx.allocator, DType::kI32, Shape{n});
  const TensorView host_lp(s.logprob.data(), DType::kF32, Shape{n}), host_am(s.argmax.data(), DType::kI32, Shape{n});
  if (par.is_last_stage()) {
    ops::copy(ctx, host_lp, lp.view());
    ops::copy(ctx, host_am, am.view());
  }
  par.pp->broadcast(lp.view(), par.pp_size() - 1);
  par.pp->broadcast(am.view(), par.pp_size() - 1);
  ops::copy(ctx, lp.view(), host_lp);
  ops::copy(ctx, am.view(), host_am);
  return s;
}

std::vector<LoglikelihoodResult> score_loglikelihood(model::Model& model,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     std::int64_t batch_size, const BatchDone& on_batch) {
  BIGNLP_CHECK(batch_size > 0, "batch size must be positive, got {}", batch_size);
  if (model.is_encoder_decoder()) return score_encoder_decoder(model, requests, batch_size, on_batch);
  const std::int64_t max_len = model.max_sequence_length();
  // Inputs and targets of each request, left-truncated to max_len.
  struct Seq {
    std::vector<std::int32_t> input, target;
    std::size_t n_cont;
  };
  std::vector<Seq> seqs(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    std::vector<std::int32_t> all(r.context);
    all.insert(all.end(), r.continuation.begin(), r.continuation.end());
    if (static_cast<std::int64_t>(r.continuation.size()) > max_len)
      throw DataError(fmt::format("request {}: continuation of {} tokens exceeds the model's {} positions", i,
                                  r.continuation.size(), max_len));
    const std::size_t keep = std::min<std::size_t>(all.size(), static_cast<std::size_t>(max_len) + 1);
    all.erase(all.begin(), all.end() - static_cast<std::ptrdiff_t>(keep));
    seqs[i].input.assign(all.begin(), all.end() - 1);
    seqs[i].target.assign(all.begin() + 1, all.end());
    seqs[i].n_cont = r.continuation.size();
  }
  // lm-eval's order: (-len(context + continuation), tokens); identical requests once.
  auto key_less = [&](std::size_t a, std::size_t b) {
    const auto& ra = requests[a];
    const auto& rb = requests[b];
    const std::size_t la = ra.context.size() + ra.continuation.size(), lb = rb.context.size() + rb.continuation.size();
    if (la != lb) return la > lb;
    std::vector<std::int32_t> ta(ra.context), tb(rb.context);
    ta.insert(ta.end(), ra.continuation.begin(), ra.continuation.end());
    tb.insert(tb.end(), rb.continuation.begin(), rb.continuation.end());
    if (ta != tb) return ta < tb;
    return ra.continuation.size() < rb.continuation.size();
  };
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), key_less);
  std::vector<std::size_t> unique;            // first request of each group of identical ones
  std::vector<std::vector<std::size_t>> same;  // the group of each unique request
  for (std::size_t i : order) {
    if (!unique.empty() && requests[i].context == requests[unique.back()].context &&
        requests[i].continuation == requests[unique.back()].continuation) {
      same.back().push_back(i);
      continue;
    }
    unique.push_back(i);
    same.push_back({i});
  }
  std::vector<LoglikelihoodResult> results(requests.size());
  for (std::size_t start = 0; start < unique.size(); start += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(unique.size(), start + static_cast<std::size_t>(batch_size));
    const std::int64_t b = static_cast<std::int64_t>(end - start);
    std::int64_t t = 0;
    for (std::size_t k = start; k < end; ++k) t = std::max<std::int64_t>(t, static_cast<std::int64_t>(seqs[unique[k]].input.size()));
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(b * t), 0), labels(tokens.size(), 0);
    for (std::int64_t bi = 0; bi < b; ++bi) {
      const Seq& s = seqs[unique[start + static_cast<std::size_t>(bi)]];
      std::copy(s.input.begin(), s.input.end(), tokens.begin() + bi * t);
      std::copy(s.target.begin(), s.target.end(), labels.begin() + bi * t);
    }
    const model::Batch batch{.tokens = TensorView(tokens.data(), DType::kI32, Shape{b, t}),
                             .labels = TensorView(labels.data(), DType::kI32, Shape{b, t})};
    const model::TokenScores scores = score_tokens(model, batch);
    std::vector<std::size_t> done;
    std::vector<LoglikelihoodResult> done_results;
    for (std::int64_t bi = 0; bi < b; ++bi) {
      const std::size_t u = start + static_cast<std::size_t>(bi);
      const Seq& s = seqs[unique[u]];
      const std::int64_t len = static_cast<std::int64_t>(s.input.size());
      LoglikelihoodResult r;
      r.is_greedy = true;
      for (std::int64_t k = len - static_cast<std::int64_t>(s.n_cont); k < len; ++k) {
        r.logprob += scores.logprob[bi * t + k];
        r.is_greedy = r.is_greedy && scores.argmax[bi * t + k] == s.target[k];
      }
      for (std::size_t i : same[u]) {
        results[i] = r;
        done.push_back(i);
        done_results.push_back(r);
      }
    }
    if (on_batch) on_batch(done, done_results);
  }
  return results;
}

void write_loglikelihood_results(const std::filesystem::path& path, const std::vector<LoglikelihoodResult>& results) {
  std::string text;
  for (const auto& r : results) text += nlohmann::json{{"logprob", r.logprob}, {"is_greedy", r.is_greedy}}.dump() + "\n";
  write_file_atomic(path, text);
}

}  // namespace bignlp::eval
