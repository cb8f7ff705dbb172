#include "bignlp/data/sentence_splitter.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "bignlp/data/unicode.h"

namespace bignlp::data {
namespace {

constexpr std::array<std::string_view, 40> kAbbreviations = {
    "mr",  "mrs", "ms",   "dr",  "prof", "sr",   "jr",   "st",   "vs",  "etc", "e.g", "i.e", "inc", "ltd",
    "co",  "no",  "fig",  "figs", "vol", "pp",   "ed",   "eds",  "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov",  "dec",  "u.s",  "approx", "dept", "est", "gen", "gov"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_closer(char c) { return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}'; }

// Does the text at `pos` start like a new sentence?
bool starts_sentence(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return false;
  const char c = text[pos];
  if (c == '"' || c == '\'' || c == '(' || c == '[' || (c >= '0' && c <= '9')) return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (static_cast<unsigned char>(c) >= 0x80) {
    const Utf8Char u = decode_utf8(text, pos);
    if (!u.valid) return false;
    // A non-ASCII upper-case letter (one that lower-casing changes).
    const std::string s(text.substr(pos, u.length));
    return (unicode_flags(u.cp) & kUnicodeLetter) != 0 && utf8_to_lower(s) != s;
  }
  return false;
}

// Is the word ending just before the period at `dot` an abbreviation or an initial?
bool is_abbreviation(std::string_view text, std::size_t dot) {
  std::size_t start = dot;
  while (start > 0 && !is_space(text[start - 1]) && text[start - 1] != '(' && text[start - 1] != '"') --start;
  std::string word(text.substr(start, dot - start));
  if (word.empty()) return false;
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
  if (word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]))) return true;
  return std::find(kAbbreviations.begin(), kAbbreviations.end(), word) != kAbbreviations.end();
}

}  // namespace

std::vector<std::string_view> split_sentences(std::string_view text, bool keep_newlines) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size() && is_space(text[start])) ++start;
  std::size_t i = start;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '.' && c != '!' && c != '?') {
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    while (end < text.size() && (text[end] == '.' || text[end] == '!' || text[end] == '?')) ++end;
    while (end < text.size() && is_closer(text[end])) ++end;
    std::size_t next = end;
    while (next < text.size() && is_space(text[next])) ++next;
    const bool boundary = next > end && next < text.size() && starts_sentence(text, next) &&
                          !(c == '.' && end == i + 1 && is_abbreviation(text, i));
    if (boundary) {
      out.push_back(text.substr(start, (keep_newlines ? next : end) - start));
      start = next;
    }
    i = end;
  }
  std::size_t stop = text.size();
  if (!keep_newlines) {
    while (stop > start && is_space(text[stop - 1])) --stop;
  }
  if (stop > start) {
    bool blank = true;
    for (std::size_t k = start; k < stop; ++k) blank = blank && is_space(text[k]);
    if (!blank) out.push_back(text.substr(start, stop - start));
  }
  return out;
}

}  // namespace bignlp::data
