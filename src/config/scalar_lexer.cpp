#include "scalar_lexer.h"

#include <algorithm>

namespace bignlp::config::lexer {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_unquoted_char(char c) { return std::string_view("/-\\+.$%*@?|").find(c) != std::string_view::npos; }

}  // namespace

std::size_t ScalarLexer::digits_len(std::size_t at) const {
  if (at >= s_.size() || !is_digit(s_[at])) return 0;
  std::size_t j = at + 1;
  for (;;) {
    if (j < s_.size() && is_digit(s_[j])) {
      ++j;
    } else if (j + 1 < s_.size() && s_[j] == '_' && is_digit(s_[j + 1])) {
      j += 2;
    } else {
      break;
    }
  }
  return j - at;
}

std::size_t ScalarLexer::int_unsigned_len(std::size_t at) const {
  if (at < s_.size() && s_[at] == '0') return 1;
  return digits_len(at);
}

std::size_t ScalarLexer::int_len(std::size_t at) const {
  std::size_t i = at;
  if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
  const std::size_t u = int_unsigned_len(i);
  return u ? i + u - at : 0;
}

std::size_t ScalarLexer::float_len(std::size_t at) const {
  std::size_t i = at;
  if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
  std::size_t best = 0;
  if (word_at(i, "inf") || word_at(i, "nan")) best = i + 3 - at;
  const std::size_t u = int_unsigned_len(i);
  // POINT_FLOAT: "1.", "1.5" or ".5" (a lone "." is not a number).
  std::size_t mantissa_end = 0;
  if (i + u < s_.size() && s_[i + u] == '.') {
    const std::size_t p = i + u + 1;
    const std::size_t d = digits_len(p);
    if (d > 0 || u > 0) {
      mantissa_end = p + d;
      best = std::max(best, mantissa_end - at);
    }
  }
  // EXPONENT_FLOAT: [eE] [+-]? digits after the mantissa or after the bare integer part.
  auto exponent_end = [&](std::size_t m) -> std::size_t {
    if (m < s_.size() && (s_[m] == 'e' || s_[m] == 'E')) {
      std::size_t q = m + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      const std::size_t d = digits_len(q);
      if (d > 0) return q + d;
    }
    return 0;
  };
  if (mantissa_end > 0) {
    if (const std::size_t e = exponent_end(mantissa_end)) best = std::max(best, e - at);
  }
  if (u > 0) {
    if (const std::size_t e = exponent_end(i + u)) best = std::max(best, e - at);
  }
  return best;
}

std::size_t ScalarLexer::id_len(std::size_t at) const {
  if (at >= s_.size() || !is_id_start(s_[at])) return 0;
  std::size_t j = at + 1;
  while (j < s_.size() && is_id_char(s_[j], dialect_)) ++j;
  return j - at;
}

std::size_t ScalarLexer::esc_len(std::size_t at) const {
  std::size_t j = at;
  while (j + 1 < s_.size() && s_[j] == '\\' &&
         std::string_view("\\()[]{}:=, \t").find(s_[j + 1]) != std::string_view::npos)
    j += 2;
  return j - at;
}

std::size_t ScalarLexer::ws_len(std::size_t at) const {
  std::size_t k = 0;
  while (at + k < s_.size() && is_ws(s_[at + k])) ++k;
  return k;
}

bool ScalarLexer::word_at(std::size_t at, std::string_view lower_word) const {
  if (at > s_.size() || lower_word.size() > s_.size() - at) return false;
  for (std::size_t k = 0; k < lower_word.size(); ++k)
    if (lower(s_[at + k]) != lower_word[k]) return false;
  return true;
}

Match ScalarLexer::longest_scalar(std::size_t at) const {
  Match best;
  auto consider = [&](std::size_t length, TokenType type) {
    if (length > best.length) best = Match{type, length};
  };
  consider(float_len(at), TokenType::kFloat);
  consider(int_len(at), TokenType::kInt);
  consider(word_at(at, "true") ? 4 : word_at(at, "false") ? 5 : 0, TokenType::kBool);
  consider(word_at(at, "null") ? 4 : 0, TokenType::kNull);
  consider(at < s_.size() && is_unquoted_char(s_[at]) ? 1 : 0, TokenType::kUnquoted);
  consider(id_len(at), TokenType::kId);
  return best;
}

bool int_token_value(std::string_view text, long long& out) {
  bool neg = false;
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    neg = text[i] == '-';
    ++i;
  }
  unsigned long long v = 0;
  bool any = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') continue;
    if (c < '0' || c > '9') return false;
    any = true;
    if (v > (~0ULL - 9) / 10) return false;
    v = v * 10 + static_cast<unsigned long long>(c - '0');
  }
  if (!any) return false;
  if (neg) {
    if (v > 9223372036854775808ULL) return false;
    out = v == 9223372036854775808ULL ? static_cast<long long>(-9223372036854775807LL - 1) : -static_cast<long long>(v);
  } else {
    if (v > 9223372036854775807ULL) return false;
    out = static_cast<long long>(v);
  }
  return true;
}

}  // namespace bignlp::config::lexer
