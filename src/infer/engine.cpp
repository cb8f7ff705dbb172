#include "bignlp/infer/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::infer {

Engine::Engine(model::Model& model, EngineOptions options) : model_(model), options_(options) {
  if (options_.capacity <= 0) options_.capacity = model_.max_sequence_length();
  if (options_.max_batch_size < 1)
    throw ConfigError(fmt::format("max_batch_size must be >= 1, got {}", options_.max_batch_size));
  if (options_.capacity > model_.max_sequence_length())
    throw ConfigError(fmt::format("KV-cache capacity {} exceeds the model's {} positions", options_.capacity,
                                  model_.max_sequence_length()));
  vocab_ = model_.vocab_size();
  if (model_.is_encoder_decoder()) {
    const std::optional<std::int32_t> start = model_.decoder_start_token();
    if (!start)
      throw ConfigError(fmt::format("the {} model records no decoder start token (decoder_start_token_id): it cannot "
                                    "generate",
                                    model_.family()));
    decoder_start_ = *start;
  }
  cache_ = model_.make_kv_cache(options_.max_batch_size, options_.capacity);
  for (std::int64_t s = options_.max_batch_size - 1; s >= 0; --s) free_slots_.push_back(s);
}

Engine::~Engine() = default;

void Engine::check(const GenerationRequest& r) const {
  r.params.validate(vocab_);
  if (r.prompt.empty()) throw ConfigError("the prompt must hold at least one token");
  for (std::int32_t id : r.prompt)
    if (id < 0 || id >= vocab_) throw ConfigError(fmt::format("prompt token id {} outside the vocabulary [0, {})", id, vocab_));
  std::int64_t earlier = 0;
  if (r.session != 0) {
    if (decoder_start_)
      throw ConfigError("sessions (continued generation) are for decoder-only models; this model is encoder-decoder");
    auto it = sessions_.find(r.session);
    if (it == sessions_.end()) throw ConfigError(fmt::format("no open session {}", r.session));
    if (r.params.beam_width != 1) throw ConfigError("a session continues with sampling only (beam_width 1)");
    earlier = static_cast<std::int64_t>(it->second.tokens.size());
  }
  if (decoder_start_) {
    // The prompt is the encoder's input; the decoder runs from its start token (position 0).
    if (static_cast<std::int64_t>(r.prompt.size()) > cache_.encoder_capacity)
      throw ConfigError(fmt::format("prompt of {} tokens exceeds the encoder's {} positions", r.prompt.size(),
                                    cache_.encoder_capacity));
    if (r.params.max_new_tokens > options_.capacity)
      throw ConfigError(fmt::format("{} tokens to generate exceed the decoder's context of {} positions",
                                    r.params.max_new_tokens, options_.capacity));
  } else if (const std::int64_t total = earlier + static_cast<std::int64_t>(r.prompt.size()) + r.params.max_new_tokens;
             total > options_.capacity) {
    throw ConfigError(fmt::format("{}prompt of {} tokens plus {} tokens to generate exceeds the context of {} positions",
                                  earlier > 0 ? fmt::format("the session's {} tokens plus a ", earlier) : "",
                                  r.prompt.size(), r.params.max_new_tokens, options_.capacity));
  }
  if (r.params.beam_width > options_.max_batch_size)
    throw ConfigError(fmt::format("beam_width {} exceeds max_batch_size {} (one cache slot per beam)",
                                  r.params.beam_width, options_.max_batch_size));
}

std::uint64_t Engine::submit(GenerationRequest request, TokenCallback on_token, DoneCallback on_done) {
  check(request);
  std::lock_guard<std::mutex> lock(queue_mutex_);
  if (static_cast<std::int64_t>(queue_.size()) >= options_.max_queue)
    throw QueueFull(fmt::format("the queue holds {} requests (its limit)", queue_.size()));
  const std::uint64_t id = next_id_++;
  queue_.push_back(Waiting{id, std::move(request), std::move(on_token), std::move(on_done)});
  return id;
}

std::size_t Engine::queued() const {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  return queue_.size();
}

void Engine::admit() {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  while (!queue_.empty()) {
    Waiting& w = queue_.front();
    const auto width = static_cast<std::size_t>(w.req.params.beam_width);
    Session* session = nullptr;
    if (w.req.session != 0) {
      auto it = sessions_.find(w.req.session);
      if (it == sessions_.end() || it->second.busy) break;  // closed or still running: it waits (FIFO)
      session = &it->second;
    } else if (free_slots_.size() < width) {
      break;  // first come, first served
    }
    auto a = std::make_unique<Active>();
    a->id = w.id;
    a->req = std::move(w.req);
    if (session != nullptr) {
      // The session's sequence so far, then the new tokens; only those not yet cached will run.
      a->req.prompt.insert(a->req.prompt.begin(), session->tokens.begin(), session->tokens.end());
      a->cached = session->cached;
      a->context = a->req.prompt;  // sessions are decoder-only (check() refuses them for encoder-decoder)
      session->busy = true;
      a->beams.resize(1);
      a->beams[0].slot = session->slot;
      a->on_token = std::move(w.on_token);
      a->on_done = std::move(w.on_done);
      a->rng = std::make_unique<Xorwow>(a->req.params.random_seed);
      queue_.pop_front();
      active_.push_back(std::move(a));
      continue;
    }
    a->on_token = std::move(w.on_token);
    a->on_done = std::move(w.on_done);
    a->rng = std::make_unique<Xorwow>(a->req.params.random_seed);
    if (decoder_start_)
      a->context = {*decoder_start_};
    else
      a->context = a->req.prompt;
    a->beams.resize(width);
    for (Beam& b : a->beams) {
      b.slot = free_slots_.back();
      free_slots_.pop_back();
    }
    // Beams other than 0 exist from the first selection on (FT: cum_log_probs -FLT_MAX).
    for (std::size_t i = 1; i < width; ++i) a->beams[i].finished = true;
    queue_.pop_front();
    active_.push_back(std::move(a));
  }
}

bool Engine::done(const Active& a) const {
  if (a.generated >= a.req.params.max_new_tokens) return true;
  return std::all_of(a.beams.begin(), a.beams.end(), [](const Beam& b) { return b.finished; });
}

void Engine::finish_beam(const Active& a, Beam& b, std::int32_t token) const {
  const SamplingParams& p = a.req.params;
  if (p.end_id && token == *p.end_id) {
    b.finished = true;
    b.out.finish_reason = "end";
    return;
  }
  if (!p.stop_words.empty()) {
    std::vector<std::int32_t> history(a.context);
    history.insert(history.end(), b.out.tokens.begin(), b.out.tokens.end());
    for (const auto& w : p.stop_words)
      if (ends_with(history, w)) {
        b.finished = true;
        b.out.finish_reason = "stop";
        return;
      }
  }
}

void Engine::sample_step(Active& a, const float* row) {
  const SamplingParams& p = a.req.params;
  Beam& b = a.beams[0];
  std::vector<float> logits(row, row + vocab_);
  std::vector<std::int32_t> history(a.context);
  history.insert(history.end(), b.out.tokens.begin(), b.out.tokens.end());
  process_logits(logits, history, a.generated, p);
  const SampledToken t = sample_token(logits, p, *a.rng);
  if (p.top_log_probs > 0) {
    std::vector<float> lp(logits.size());
    log_softmax(logits, lp);
    std::vector<std::int32_t> ids(lp.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + p.top_log_probs, ids.end(),
                      [&](std::int32_t x, std::int32_t y) { return lp[x] > lp[y] || (lp[x] == lp[y] && x < y); });
    auto& top = b.out.top_log_probs.emplace_back();
    for (int i = 0; i < p.top_log_probs; ++i) top.emplace_back(ids[i], lp[ids[i]]);
  }
  b.out.tokens.push_back(t.id);
  if (p.return_log_probs) b.out.log_probs.push_back(t.log_prob);
  b.out.token_log_probs.push_back(t.cum_log_prob);
  b.out.cum_log_prob += t.cum_log_prob;
  ++a.generated;
  finish_beam(a, b, t.id);
  if (a.on_token) a.on_token(t.id, t.cum_log_prob);
}

void Engine::beam_step(Active& a, const std::vector<const float*>& logits) {
  const SamplingParams& p = a.req.params;
  const int w = p.beam_width;
  const std::int64_t plen = static_cast<std::int64_t>(a.context.size());
  struct Candidate {
    double score = 0.0, rank = 0.0;
    int parent = 0;
    std::int32_t token = 0;
    float log_prob = 0.0f;
    bool from_finished = false;
  };
  const auto ranked = [&](double score, std::int64_t len) {
    if (p.len_penalty == 0.0f || len == 1) return score;
    return score / std::pow(static_cast<double>(len), static_cast<double>(p.len_penalty));
  };
  std::vector<Candidate> cands;
  std::vector<float> lp(static_cast<std::size_t>(vocab_));
  for (int i = 0; i < w; ++i) {
    Beam& b = a.beams[static_cast<std::size_t>(i)];
    if (!a.prefilled && i > 0) continue;  // first step: beam 0 only
    if (b.finished) {
      const std::int64_t len = plen - 1 + static_cast<std::int64_t>(b.out.tokens.size());
      cands.push_back(Candidate{b.out.cum_log_prob, ranked(b.out.cum_log_prob, len), i, p.end_id.value_or(-1), 0.0f, true});
      continue;
    }
    std::vector<float> l(logits[static_cast<std::size_t>(i)], logits[static_cast<std::size_t>(i)] + vocab_);
    std::vector<std::int32_t> history(a.context);
    history.insert(history.end(), b.out.tokens.begin(), b.out.tokens.end());
    process_logits(l, history, a.generated, p);
    log_softmax(l, lp);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(vocab_));
    std::iota(ids.begin(), ids.end(), 0);
    const int top = static_cast<int>(std::min<std::int64_t>(2 * w, vocab_));
    std::partial_sort(ids.begin(), ids.begin() + top, ids.end(), [&](std::int32_t x, std::int32_t y) {
      return lp[x] > lp[y] || (lp[x] == lp[y] && x < y);
    });
    const std::int64_t len = plen + a.generated;
    for (int j = 0; j < top; ++j) {
      const double score = b.out.cum_log_prob + lp[ids[j]];
      cands.push_back(Candidate{score, ranked(score, len), i, ids[j], lp[ids[j]], false});
    }
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Candidate& x, const Candidate& y) { return x.rank > y.rank; });
  cands.resize(std::min<std::size_t>(cands.size(), static_cast<std::size_t>(w)));
  // New beams: the first child of a parent keeps its slot; further children take the slots of
  // parents without children, copied from the parent.
  const std::int64_t cached = plen + a.generated;
  std::vector<int> children(static_cast<std::size_t>(w), 0);
  for (const Candidate& c : cands) ++children[static_cast<std::size_t>(c.parent)];
  std::vector<std::int64_t> spare;
  for (int i = 0; i < w; ++i)
    if (children[static_cast<std::size_t>(i)] == 0) spare.push_back(a.beams[static_cast<std::size_t>(i)].slot);
  std::vector<bool> slot_taken(static_cast<std::size_t>(w), false);
  std::vector<Beam> next(static_cast<std::size_t>(w));
  for (std::size_t j = 0; j < cands.size(); ++j) {
    const Candidate& c = cands[j];
    const Beam& parent = a.beams[static_cast<std::size_t>(c.parent)];
    Beam& nb = next[j];
    nb.out = parent.out;
    nb.finished = parent.finished;
    if (!slot_taken[static_cast<std::size_t>(c.parent)]) {
      slot_taken[static_cast<std::size_t>(c.parent)] = true;
      nb.slot = parent.slot;
    } else {
      nb.slot = spare.back();
      spare.pop_back();
      cache_.copy_slot(model_.context(), parent.slot, nb.slot, std::min(cached, options_.capacity));
    }
    if (c.from_finished) continue;
    nb.out.tokens.push_back(c.token);
    if (p.return_log_probs) nb.out.log_probs.push_back(c.log_prob);
    nb.out.token_log_probs.push_back(c.log_prob);
    nb.out.cum_log_prob = c.score;
    nb.finished = false;
    nb.out.finish_reason.clear();
  }
  // Fewer candidates than beams (tiny vocabularies): the rest stay finished on spare slots.
  for (std::size_t j = cands.size(); j < next.size(); ++j) {
    next[j].slot = spare.back();
    spare.pop_back();
    next[j].finished = true;
    next[j].out.cum_log_prob = -FLT_MAX;
  }
  a.beams = std::move(next);
  ++a.generated;
  for (std::size_t j = 0; j < cands.size(); ++j)
    if (!cands[j].from_finished) finish_beam(a, a.beams[j], cands[j].token);
}

bool Engine::step() {
  admit();
  if (active_.empty()) return false;
  std::vector<std::int32_t> tokens, encoder_tokens;
  std::vector<model::DecodeSegment> segs, encoder_segs;
  // Which logits row belongs to which (request, beam).
  std::vector<std::pair<std::size_t, std::size_t>> owner;
  std::int64_t prompt = 0, decode = 0;
  for (std::size_t r = 0; r < active_.size(); ++r) {
    Active& a = *active_[r];
    const std::int64_t plen = static_cast<std::int64_t>(a.context.size());
    if (!a.prefilled) {
      if (decoder_start_) {
        const std::int64_t elen = static_cast<std::int64_t>(a.req.prompt.size());
        encoder_segs.push_back(model::DecodeSegment{a.beams[0].slot, 0, elen});
        encoder_tokens.insert(encoder_tokens.end(), a.req.prompt.begin(), a.req.prompt.end());
        prompt += elen;
      }
      segs.push_back(model::DecodeSegment{a.beams[0].slot, a.cached, plen - a.cached});
      tokens.insert(tokens.end(), a.context.begin() + a.cached, a.context.end());
      owner.emplace_back(r, 0);
      prompt += plen - a.cached;
      continue;
    }
    for (std::size_t i = 0; i < a.beams.size(); ++i) {
      const Beam& b = a.beams[i];
      if (b.finished) continue;
      segs.push_back(model::DecodeSegment{b.slot, plen + a.generated - 1, 1});
      tokens.push_back(b.out.tokens.back());
      owner.emplace_back(r, i);
      ++decode;
    }
  }
  if (!encoder_segs.empty()) {
    // Encoder-decoder: each new request's input is encoded once; its beams share the encoding.
    model_.encode(cache_, encoder_tokens, encoder_segs);
    for (const auto& ap : active_)
      if (!ap->prefilled)
        for (const Beam& b : ap->beams) cache_.share_encoder(ap->beams[0].slot, b.slot);
  }
  std::vector<float> logits(segs.size() * static_cast<std::size_t>(vocab_));
  if (options_.batch_invariant) {
    std::size_t first = 0;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const auto count = static_cast<std::size_t>(segs[i].count);
      model_.decode(cache_, std::span<const std::int32_t>(tokens.data() + first, count),
                    std::span<const model::DecodeSegment>(&segs[i], 1),
                    std::span<float>(logits.data() + i * static_cast<std::size_t>(vocab_), static_cast<std::size_t>(vocab_)));
      first += count;
    }
  } else if (!segs.empty()) {
    model_.decode(cache_, tokens, segs, logits);
  }
  prompt_tokens_ += prompt;
  decode_tokens_ += decode;
  // Per request: its rows, in beam order.
  std::vector<std::vector<const float*>> rows(active_.size());
  for (std::size_t r = 0; r < active_.size(); ++r) rows[r].assign(active_[r]->beams.size(), nullptr);
  for (std::size_t i = 0; i < owner.size(); ++i)
    rows[owner[i].first][owner[i].second] = logits.data() + i * static_cast<std::size_t>(vocab_);
  for (std::size_t r = 0; r < active_.size(); ++r) {
    Active& a = *active_[r];
    if (a.req.params.max_new_tokens == 0) {
      a.prefilled = true;
      continue;
    }
    try {
      if (a.req.params.beam_width == 1)
        sample_step(a, rows[r][0]);
      else
        beam_step(a, rows[r]);
    } catch (const std::exception& e) {
      // This request ends here; the others go on.
      a.error = e.what();
      for (Beam& b : a.beams) b.finished = true;
    }
    a.prefilled = true;
  }
  // Retire finished requests.
  std::vector<std::unique_ptr<Active>> still;
  for (auto& ap : active_) {
    Active& a = *ap;
    if (!done(a)) {
      still.push_back(std::move(ap));
      continue;
    }
    GenerationResult res;
    res.error = a.error;
    if (a.req.session != 0) {
      // The session keeps its slot: every prompt token and all generated ones but the last are cached.
      Session& s = sessions_.at(a.req.session);
      s.tokens = a.req.prompt;
      s.tokens.insert(s.tokens.end(), a.beams[0].out.tokens.begin(), a.beams[0].out.tokens.end());
      s.cached = static_cast<std::int64_t>(a.req.prompt.size()) +
                 std::max<std::int64_t>(0, static_cast<std::int64_t>(a.beams[0].out.tokens.size()) - 1);
      s.busy = false;
      if (!a.error.empty()) {  // a failed request empties the session (its cache is rewritten from position 0)
        s.tokens.clear();
        s.cached = 0;
      }
    }
    for (Beam& b : a.beams) {
      if (b.out.finish_reason.empty()) b.out.finish_reason = "length";
      if (a.req.session == 0) free_slots_.push_back(b.slot);
      res.beams.push_back(std::move(b.out));
    }
    if (a.on_done) a.on_done(std::move(res));
  }
  active_ = std::move(still);
  return true;
}

std::uint64_t Engine::open_session() {
  if (free_slots_.empty())
    throw ConfigError(fmt::format("no free KV-cache slot for a session (max_batch_size {})", options_.max_batch_size));
  const std::uint64_t id = next_session_++;
  Session s;
  s.slot = free_slots_.back();
  free_slots_.pop_back();
  sessions_.emplace(id, std::move(s));
  return id;
}

void Engine::close_session(std::uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) throw ConfigError(fmt::format("no open session {}", session));
  if (it->second.busy) throw ConfigError(fmt::format("session {} has a request running", session));
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    for (const Waiting& w : queue_)
      if (w.req.session == session) throw ConfigError(fmt::format("session {} has a request queued", session));
  }
  free_slots_.push_back(it->second.slot);
  sessions_.erase(it);
}

const std::vector<std::int32_t>& Engine::session_tokens(std::uint64_t session) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) throw ConfigError(fmt::format("no open session {}", session));
  return it->second.tokens;
}

std::vector<GenerationResult> Engine::generate(const std::vector<GenerationRequest>& requests) {
  for (const auto& r : requests) check(r);
  std::vector<GenerationResult> results(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i)
    submit(requests[i], {}, [&results, i](GenerationResult res) { results[i] = std::move(res); });
  while (step()) {
  }
  return results;
}

}  // namespace bignlp::infer
