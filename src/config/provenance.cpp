#include "bignlp/config/provenance.h"

#include <fmt/format.h>

namespace bignlp::config {

std::string Provenance::location() const {
  switch (origin) {
    case Origin::kFile:
      if (line > 0) return fmt::format("{}:{}:{}", file, line, column);
      return file;
    case Origin::kOverride:
      return fmt::format("override #{} '{}'", override_index, override_text);
    case Origin::kProgram:
      return note.empty() ? std::string("set by the program") : fmt::format("set by {}", note);
    case Origin::kResolved:
      return note.empty() ? std::string("resolved interpolation") : fmt::format("resolved from '{}'", note);
    case Origin::kUnknown:
      break;
  }
  return "<unknown>";
}

std::string Provenance::error_prefix() const {
  if (origin == Origin::kFile && !file.empty()) {
    if (line > 0) return fmt::format("{}:{}:{}: ", file, line, column);
    return file + ": ";
  }
  return {};
}

Provenance Provenance::from_file(std::string file, int line, int column, std::string key_path) {
  Provenance p;
  p.origin = Origin::kFile;
  p.file = std::move(file);
  p.line = line;
  p.column = column;
  p.key_path = std::move(key_path);
  return p;
}

Provenance Provenance::from_override(int index, std::string text, std::string key_path) {
  Provenance p;
  p.origin = Origin::kOverride;
  p.override_index = index;
  p.override_text = std::move(text);
  p.key_path = std::move(key_path);
  return p;
}

Provenance Provenance::from_program(std::string note, std::string key_path) {
  Provenance p;
  p.origin = Origin::kProgram;
  p.note = std::move(note);
  p.key_path = std::move(key_path);
  return p;
}

}  // namespace bignlp::config
