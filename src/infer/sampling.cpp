#include "bignlp/infer/sampling.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>

#include "bignlp/core/error.h"

namespace bignlp::infer {

void SamplingParams::validate(std::int64_t vocab, const std::string& where) const {
  const auto fail = [&](const std::string& msg) { throw ConfigError(where.empty() ? msg : where + ": " + msg); };
  if (max_new_tokens < 0) fail(fmt::format("max_new_tokens (request_output_len) must be >= 0, got {}", max_new_tokens));
  if (top_k < 0) fail(fmt::format("top_k must be >= 0, got {}", top_k));
  if (top_k > vocab) fail(fmt::format("top_k {} exceeds the vocabulary of {} tokens", top_k, vocab));
  if (!(top_p >= 0.0f && top_p <= 1.0f)) fail(fmt::format("top_p must be in [0, 1], got {}", top_p));
  if (!(temperature > 0.0f) || !std::isfinite(temperature))
    fail(fmt::format("temperature must be > 0, got {}", temperature));
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    fail(fmt::format("repetition_penalty must be > 0, got {}", repetition_penalty));
  if (!std::isfinite(presence_penalty)) fail("presence_penalty must be finite");
  if (repetition_penalty != 1.0f && presence_penalty != 0.0f)
    fail(fmt::format("repetition_penalty ({}) and presence_penalty ({}) cannot be used together", repetition_penalty,
                     presence_penalty));
  if (min_length < 0) fail(fmt::format("min_length must be >= 0, got {}", min_length));
  if (end_id && (*end_id < 0 || *end_id >= vocab))
    fail(fmt::format("end_id {} outside the vocabulary [0, {})", *end_id, vocab));
  if (beam_width < 1) fail(fmt::format("beam_width must be >= 1, got {}", beam_width));
  if (!std::isfinite(len_penalty)) fail("len_penalty must be finite");
  if (top_log_probs < 0 || top_log_probs > vocab) fail(fmt::format("top_log_probs must be in [0, {}], got {}", vocab, top_log_probs));
  for (const auto* list : {&stop_words, &bad_words})
    for (const auto& w : *list) {
      const char* name = list == &stop_words ? "stop_words" : "bad_words";
      if (w.empty()) fail(fmt::format("{} holds an empty word", name));
      for (std::int32_t id : w)
        if (id < 0 || id >= vocab) fail(fmt::format("{} token id {} outside the vocabulary [0, {})", name, id, vocab));
    }
}

Xorwow::Xorwow(std::uint64_t seed) {
  const std::uint32_t s0 = static_cast<std::uint32_t>(seed) ^ 0xaad26b49u;
  const std::uint32_t s1 = static_cast<std::uint32_t>(seed >> 32) ^ 0xf7dcefddu;
  const std::uint32_t t0 = 1099087573u * s0;
  const std::uint32_t t1 = 2591861531u * s1;
  d_ = 6615241u + t1 + t0;
  v_[0] = 123456789u + t0;
  v_[1] = 362436069u ^ t0;
  v_[2] = 521288629u + t1;
  v_[3] = 88675123u ^ t1;
  v_[4] = 5783321u + t0;
}

std::uint32_t Xorwow::next() {
  const std::uint32_t t = v_[0] ^ (v_[0] >> 2);
  v_[0] = v_[1];
  v_[1] = v_[2];
  v_[2] = v_[3];
  v_[3] = v_[4];
  v_[4] = (v_[4] ^ (v_[4] << 4)) ^ (t ^ (t << 1));
  d_ += 362437u;
  return v_[4] + d_;
}

float Xorwow::uniform() {
  constexpr float kInv = 2.3283064e-10f;
  return static_cast<float>(next()) * kInv + kInv / 2.0f;
}

bool ends_with(std::span<const std::int32_t> history, std::span<const std::int32_t> word) {
  if (word.empty() || word.size() > history.size()) return false;
  return std::equal(word.begin(), word.end(), history.end() - static_cast<std::ptrdiff_t>(word.size()));
}

void process_logits(std::span<float> logits, std::span<const std::int32_t> history, std::int64_t generated,
                    const SamplingParams& p, bool apply_temperature_and_penalties) {
  const std::int64_t v = static_cast<std::int64_t>(logits.size());
  for (const auto& w : p.bad_words) {
    const std::span<const std::int32_t> prefix(w.data(), w.size() - 1);
    if (w.size() == 1 || ends_with(history, prefix)) logits[static_cast<std::size_t>(w.back())] = -INFINITY;
  }
  if (apply_temperature_and_penalties) {
    if (p.temperature != 1.0f) {
      const float inv = 1.0f / (p.temperature + 1e-6f);
      for (float& l : logits) l *= inv;
    }
    if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f) {
      std::vector<std::int32_t> ids(history.begin(), history.end());
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      for (std::int32_t id : ids) {
        if (id < 0 || id >= v) continue;
        float& l = logits[static_cast<std::size_t>(id)];
        if (p.repetition_penalty != 1.0f)
          l = l < 0.0f ? l * p.repetition_penalty : l / p.repetition_penalty;
        else
          l -= p.presence_penalty;
      }
    }
  }
  if (p.end_id && generated < p.min_length) logits[static_cast<std::size_t>(*p.end_id)] = -FLT_MAX;
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double lz = mx + std::log(sum);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - lz);
}

namespace {

/// Ids ordered by logit, highest first, lower id first among equals.
bool ranks_before(std::span<const float> l, std::int32_t a, std::int32_t b) {
  return l[static_cast<std::size_t>(a)] > l[static_cast<std::size_t>(b)] ||
         (l[static_cast<std::size_t>(a)] == l[static_cast<std::size_t>(b)] && a < b);
}

}  // namespace

SampledToken sample_token(std::span<const float> logits, const SamplingParams& params, Xorwow& rng) {
  const std::int64_t v = static_cast<std::int64_t>(logits.size());
  int k = params.top_k;
  float p = params.top_p;
  if (k == 0 && p == 0.0f) k = 1;
  if (k > 0 && p == 0.0f) p = 1.0f;
  const float lmax = *std::max_element(logits.begin(), logits.end());
  if (!std::isfinite(lmax)) throw RuntimeError("sampling: every token of the vocabulary is banned");
  double total = 0.0;
  for (float l : logits) total += std::exp(static_cast<double>(l) - lmax);
  const double log_total = std::log(total);
  const float u = rng.uniform();
  SampledToken out;
  if (k > 0) {
    // top-k: the k best candidates, then nucleus p inside their mass (r = u * p * S_k).
    std::vector<std::int32_t> ids(static_cast<std::size_t>(v));
    std::iota(ids.begin(), ids.end(), 0);
    const auto cmp = [&](std::int32_t a, std::int32_t b) { return ranks_before(logits, a, b); };
    k = static_cast<int>(std::min<std::int64_t>(k, v));
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), cmp);
    std::vector<double> w(static_cast<std::size_t>(k));
    double sk = 0.0;
    for (int i = 0; i < k; ++i) sk += w[i] = std::exp(static_cast<double>(logits[ids[i]]) - lmax);
    double r = static_cast<double>(u) * p * sk;
    int chosen = k - 1;
    for (int i = 0; i < k; ++i) {
      r -= w[i];
      if (r <= 0.0) {
        chosen = i;
        break;
      }
    }
    out.id = ids[chosen];
    out.cum_log_prob = static_cast<float>(static_cast<double>(logits[out.id]) - lmax - log_total);
    out.log_prob = static_cast<float>(std::log(w[chosen] / sk));
    return out;
  }
  // top-p: probabilities with FT's 1e-6 in the denominator; the first sorted id whose inclusive
  // cumulative probability reaches u * p.
  std::vector<double> prob(static_cast<std::size_t>(v));
  for (std::int64_t i = 0; i < v; ++i) prob[i] = std::exp(static_cast<double>(logits[i]) - lmax) / (total + 1e-6);
  std::int32_t best = 0;
  for (std::int32_t i = 1; i < v; ++i)
    if (ranks_before(logits, i, best)) best = i;
  if (prob[best] >= p) {
    out.id = best;
  } else {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(v));
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) { return prob[a] > prob[b]; });
    const double r = static_cast<double>(u) * p;
    double c = 0.0;
    out.id = ids.back();
    for (std::int32_t id : ids) {
      c += prob[id];
      if (c >= r) {
        out.id = id;
        break;
      }
    }
  }
  out.log_prob = static_cast<float>(std::log(prob[out.id]));
  out.cum_log_prob = out.log_prob;
  return out;
}

std::vector<std::vector<std::int32_t>> parse_word_list(std::span<const std::int32_t> flat, std::int64_t length,
                                                       const std::string& what) {
  if (length < 0 || static_cast<std::int64_t>(flat.size()) != 2 * length)
    throw ConfigError(fmt::format("{}: a word list is a [2, L] int32 tensor, got {} values for L = {}", what,
                                  flat.size(), length));
  std::vector<std::vector<std::int32_t>> words;
  std::int64_t start = 0;
  for (std::int64_t i = 0; i < length; ++i) {
    const std::int32_t end = flat[static_cast<std::size_t>(length + i)];
    if (end < 0) break;
    if (end <= start || end > length)
      throw ConfigError(fmt::format("{}: offset {} at [1, {}] is not after the previous offset {} or exceeds L = {}",
                                    what, end, i, start, length));
    words.emplace_back(flat.begin() + start, flat.begin() + end);
    start = end;
  }
  return words;
}

}  // namespace bignlp::infer
