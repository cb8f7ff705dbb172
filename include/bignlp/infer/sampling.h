// Sampling: FasterTransformer's per-step logit processing and token choice for one sequence
// (docs/inference.md; reference/inference-facts.md §2).
//
// Order of operations on the fp32 logits of one step (real vocabulary [0, V)):
//   1. bad words: a one-token word is always banned; an n-token word's last token is banned when
//      the previous n-1 tokens of the history equal its first n-1 (logit -inf)
//   2. temperature: l *= 1 / (T + 1e-6) (skipped when T == 1)
//   3. penalties over every distinct id of the history (prompt and generated tokens, once each):
//      repetition (multiplicative: l / p when l >= 0, l * p when l < 0) or presence (additive: l - p);
//      both at once is an error
//   4. min_length: end_id's logit is -FLT_MAX while fewer than min_length tokens were generated
//   5. top-k (k > 0; top-p inside the k candidates, boundary clipped) or top-p (k == 0, p > 0);
//      k == 0 and p == 0 is greedy (k = 1); k > 0 and p == 0 is pure top-k (p = 1)
// Log-probabilities come from the processed distribution: cum_log_prob adds ln P(token) under the
// full softmax; output_log_probs is ln P(token | top-k set) on the top-k path, ln P(token) on the
// top-p path. Random numbers: one draw per step from an XORWOW generator seeded as curand_init(seed,
// 0, 0), uniform in (0, 1] as curand_uniform. Ties among equal logits rank the lower id first.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace bignlp::infer {

/// The per-request generation settings (FT runtime arguments).
struct SamplingParams {
  std::int64_t max_new_tokens = 16;  ///< request_output_len: tokens to generate at most
  int top_k = 0;                     ///< runtime_top_k (0: off)
  float top_p = 0.0f;                ///< runtime_top_p (0: off)
  float temperature = 1.0f;
  float repetition_penalty = 1.0f;   ///< multiplicative (1: off)
  float presence_penalty = 0.0f;     ///< additive (0: off)
  std::int64_t min_length = 0;
  std::optional<std::int32_t> end_id;                ///< none: only length and stop words end a sequence
  std::vector<std::vector<std::int32_t>> stop_words;  ///< token sequences that end a sequence (kept in the output)
  std::vector<std::vector<std::int32_t>> bad_words;   ///< token sequences never completed
  std::uint64_t random_seed = 0;
  bool return_log_probs = false;
  int beam_width = 1;
  float len_penalty = 0.0f;          ///< beam search: score = cum_log_prob / length^len_penalty
  int top_log_probs = 0;             ///< also report the n most likely tokens of each step (sampling only)

  /// Throws ConfigError naming the first invalid setting (`where` prefixes the message).
  void validate(std::int64_t vocab_size, const std::string& where = "") const;
};

/// curand's default XORWOW generator, seeded like curand_init(seed, 0, 0).
class Xorwow {
 public:
  explicit Xorwow(std::uint64_t seed);
  std::uint32_t next();
  /// (0, 1], as curand_uniform.
  float uniform();

 private:
  std::uint32_t v_[5];
  std::uint32_t d_;
};

/// Steps 1-4 above on `logits` (V values, modified in place). `history`: prompt then generated
/// tokens; `generated`: how many of them were generated.
void process_logits(std::span<float> logits, std::span<const std::int32_t> history, std::int64_t generated,
                    const SamplingParams& p, bool apply_temperature_and_penalties = true);

struct SampledToken {
  std::int32_t id = 0;
  float log_prob = 0.0f;      ///< output_log_probs entry (see the file comment)
  float cum_log_prob = 0.0f;  ///< ln P(id) under the full processed distribution
};

/// Step 5 on processed logits: one token by top-k / top-p / greedy with `rng`.
SampledToken sample_token(std::span<const float> logits, const SamplingParams& p, Xorwow& rng);

/// log_softmax of logits into out (same size), in double precision accumulation.
void log_softmax(std::span<const float> logits, std::span<float> out);

/// True when history ends with `word` (non-empty).
bool ends_with(std::span<const std::int32_t> history, std::span<const std::int32_t> word);

/// FT's word-list tensor [2, L] (row 0: the words' ids concatenated, row 1: inclusive end
/// offsets padded with -1) as a list of words; throws ConfigError naming `what` when malformed.
std::vector<std::vector<std::int32_t>> parse_word_list(std::span<const std::int32_t> flat, std::int64_t length,
                                                       const std::string& what);

}  // namespace bignlp::infer
