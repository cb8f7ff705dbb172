// Test support: a GPT-2 style vocabulary without merges, for tests that train on token ids and
// need only a tokenizer the programs can load.
#pragma once

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "bignlp/core/file_io.h"

namespace bignlp::test_support {

/// Writes `dir`/vocab.json and an empty `dir`/merges.txt: the 256 byte symbols of GPT-2's
/// byte-level alphabet (formats.md §4.1) with ids 0-255, then `extra` filler tokens
/// "<fillerN>", then <|endoftext|> = 256 + extra (extra 50000 gives GPT-2's 50257 entries).
inline void write_byte_vocab(const std::filesystem::path& dir, int extra = 0) {
  auto utf8 = [](unsigned cp) {  // code points below 0x800 only
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return s;
  };
  std::string json = "{";
  unsigned next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    std::string key = utf8(printable ? b : next++);
    if (key == "\"" || key == "\\") key = "\\" + key;
    json += fmt::format("\"{}\": {}, ", key, b);
  }
  for (int i = 0; i < extra; ++i) json += fmt::format("\"<filler{}>\": {}, ", i, 256 + i);
  json += fmt::format("\"<|endoftext|>\": {}}}", 256 + extra);
  std::filesystem::create_directories(dir);
  write_file_atomic(dir / "vocab.json", json);
  write_file_atomic(dir / "merges.txt", "#version: 0.2\n");
}

}  // namespace bignlp::test_support
