// The Unicode facts the tokenizers need, from Debian's ICU, behind a small table.
//
// Character classes are computed once per process into a two-level lookup table (ICU is not called
// per character on the hot path):
//   letter      \p{L}  (Lu Ll Lt Lm Lo)            number  \p{N} (Nd Nl No)
//   space       Unicode White_Space (what `\s` means in Python's `regex` module, which GPT-2's
//               encoder uses; JavaScript's `\s` differs on U+0085 and U+FEFF)
//   bert_space  BERT's _is_whitespace: ' ', \t, \n, \r or category Zs
//   bert_control BERT's _is_control: a C* category except \t \n \r
//   bert_punct  BERT's _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126 or a P* category
//   mark_nonspacing  category Mn (removed by accent stripping)
//   cjk         the CJK ideograph blocks BERT puts spaces around
//   py_space    Python's str.isspace() (bidi class WS, B or S, or category Zs): what str.split() splits on
// UTF-8 decoding here never fails: a byte that does not start a valid sequence decodes as itself
// (flagged invalid, class "other"), so byte-level tokenizers round-trip any input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bignlp::data {

enum UnicodeFlag : std::uint16_t {
  kUnicodeLetter = 1u << 0,
  kUnicodeNumber = 1u << 1,
  kUnicodeSpace = 1u << 2,
  kUnicodeBertSpace = 1u << 3,
  kUnicodeBertControl = 1u << 4,
  kUnicodeBertPunct = 1u << 5,
  kUnicodeMarkNonspacing = 1u << 6,
  kUnicodeCjk = 1u << 7,
  kUnicodePySpace = 1u << 8,
};

/// The UnicodeFlag bits of code point `cp` (0 for values beyond U+10FFFF).
std::uint16_t unicode_flags(char32_t cp);

/// One decoded code point: its value, byte length (1-4) and whether the bytes were valid UTF-8.
struct Utf8Char {
  char32_t cp;
  std::uint8_t length;
  bool valid;
};

/// Decodes the code point starting at text[pos] (pos < text.size()).
inline Utf8Char decode_utf8(std::string_view text, std::size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) return {b0, 1, true};
  const std::size_t left = text.size() - pos;
  const auto cont = [&](std::size_t k) {
    return k < left && (static_cast<unsigned char>(text[pos + k]) & 0xC0) == 0x80;
  };
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[pos + k]) & 0x3Fu; };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return {((b0 & 0x1Fu) << 6) | byte(1), 2, true};
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    const char32_t cp = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3, true};
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const char32_t cp = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
    if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4, true};
  }
  return {b0, 1, false};
}

/// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp);

/// Replaces invalid UTF-8 with U+FFFD the way Python's bytes.decode('utf-8', 'replace') does (one
/// replacement per maximal invalid subpart).
std::string sanitize_utf8(std::string_view bytes);

/// Full Unicode lower-casing (Python's str.lower()), via ICU's root-locale case mapping.
std::string utf8_to_lower(std::string_view text);

/// Canonical decomposition (NFD), via ICU.
std::string utf8_nfd(std::string_view text);

}  // namespace bignlp::data
