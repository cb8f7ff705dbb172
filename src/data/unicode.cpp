#include "bignlp/data/unicode.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>
#include <map>
#include <memory>
#include <vector>

#include "bignlp/core/error.h"

namespace bignlp::data {
namespace {

bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::uint16_t compute_flags(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  std::uint16_t f = 0;
  const int8_t type = u_charType(c);
  const std::uint32_t mask = U_MASK(type);
  if (mask & U_GC_L_MASK) f |= kUnicodeLetter;
  if (mask & U_GC_N_MASK) f |= kUnicodeNumber;
  if (u_isUWhiteSpace(c)) f |= kUnicodeSpace;
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || type == U_SPACE_SEPARATOR) f |= kUnicodeBertSpace;
  if ((mask & U_GC_C_MASK) && cp != '\t' && cp != '\n' && cp != '\r') f |= kUnicodeBertControl;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126) ||
      (mask & U_GC_P_MASK)) {
    f |= kUnicodeBertPunct;
  }
  if (type == U_NON_SPACING_MARK) f |= kUnicodeMarkNonspacing;
  if (is_cjk(cp)) f |= kUnicodeCjk;
  const UCharDirection dir = u_charDirection(c);
  if (dir == U_WHITE_SPACE_NEUTRAL || dir == U_BLOCK_SEPARATOR || dir == U_SEGMENT_SEPARATOR || type == U_SPACE_SEPARATOR) {
    f |= kUnicodePySpace;
  }
  return f;
}

// Two-level table: 4352 blocks of 256 code points, identical blocks shared.
class FlagTable {
 public:
  FlagTable() {
    constexpr std::size_t kBlocks = 0x110000 / 256;
    index_.resize(kBlocks);
    std::map<std::u16string, std::uint16_t> seen;
    std::u16string block(256, u'\0');
    for (std::size_t b = 0; b < kBlocks; ++b) {
      for (std::size_t k = 0; k < 256; ++k) block[k] = static_cast<char16_t>(compute_flags(static_cast<char32_t>(b * 256 + k)));
      const auto [it, inserted] = seen.emplace(block, static_cast<std::uint16_t>(seen.size()));
      if (inserted) blocks_.insert(blocks_.end(), block.begin(), block.end());
      index_[b] = it->second;
    }
  }
  std::uint16_t get(char32_t cp) const {
    if (cp >= 0x110000) return 0;
    return static_cast<std::uint16_t>(blocks_[static_cast<std::size_t>(index_[cp >> 8]) * 256 + (cp & 0xFF)]);
  }

 private:
  std::vector<std::uint16_t> index_;
  std::u16string blocks_;
};

const FlagTable& flag_table() {
  // Immutable after construction; C++ guarantees thread-safe initialisation.
  static const FlagTable table;
  return table;
}

}  // namespace

std::uint16_t unicode_flags(char32_t cp) { return flag_table().get(cp); }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < bytes.size()) {
    const Utf8Char c = decode_utf8(bytes, i);
    if (c.valid) {
      out.append(bytes.substr(i, c.length));
      i += c.length;
      continue;
    }
    // Maximal subpart: the longest prefix of a well-formed sequence (Unicode table 3-7 ranges).
    const unsigned char b0 = at(i);
    std::size_t len = 1;
    unsigned char lo = 0x80, hi = 0xBF;
    std::size_t need = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    for (std::size_t k = 0; k < need && i + len < bytes.size(); ++k) {
      const unsigned char b = at(i + len);
      const unsigned char l = k == 0 ? lo : 0x80;
      const unsigned char h = k == 0 ? hi : 0xBF;
      if (b < l || b > h) break;
      ++len;
    }
    out.append("\xEF\xBF\xBD");
    i += len;
  }
  return out;
}

std::string utf8_to_lower(std::string_view text) {
  bool ascii = true;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      ascii = false;
      break;
    }
  }
  std::string out;
  if (ascii) {
    out.assign(text);
    for (char& ch : out) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return out;
  }
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  s.toLower(icu::Locale::getRoot());
  s.toUTF8String(out);
  return out;
}

std::string utf8_nfd(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw RuntimeError("ICU: cannot load the NFD normalizer");
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString d = nfd->normalize(s, status);
  if (U_FAILURE(status)) throw RuntimeError("ICU: NFD normalisation failed");
  std::string out;
  d.toUTF8String(out);
  return out;
}

}  // namespace bignlp::data
