// OmegaConf's interpolation grammar (internal): a hand-written lexer/parser producing an AST.
//
// Mirrors OmegaConf 2.2's ANTLR grammar (OmegaConfGrammarLexer/Parser) token by token:
//   text       : (interpolation | literal)+     top-level value; "\${" escapes, "\\${" = "\" + interp
//   interpolation: "${" ("."* key ("." key | "[" key "]")* | name ":" sequence?) "}"
//   element    : primitive | quoted | "[" sequence? "]" | "{" (dictKey ":" element ("," ...)*)? "}"
// The primitive tokens (numbers, bool, null, ID, escapes) come from scalar_lexer.h, shared with the
// override parser. Evaluation lives in interpolate.cpp; this file only knows syntax. Errors throw
// GrammarError with the byte offset of the offending character.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "scalar_lexer.h"

namespace bignlp::config::grammar {

/// Syntax error at `offset` (bytes into the parsed text).
class GrammarError : public std::runtime_error {
 public:
  GrammarError(std::string message, std::size_t offset) : std::runtime_error(std::move(message)), offset_(offset) {}
  std::size_t offset() const { return offset_; }

 private:
  std::size_t offset_;
};

struct Interp;
using InterpPtr = std::shared_ptr<const Interp>;

/// Literal text or an interpolation.
struct TextPart {
  std::string literal;  // used when interp is null
  InterpPtr interp;
};

/// A sequence of parts (top-level value or the inside of a quoted argument).
struct Text {
  std::vector<TextPart> parts;
  /// Exactly one interpolation and nothing else: the value keeps the target's type.
  bool single_interpolation() const { return parts.size() == 1 && parts[0].interp != nullptr; }
};

/// One segment of a node key or resolver name: literal text or a nested interpolation.
struct KeySegment {
  std::string text;
  InterpPtr interp;
};

using lexer::TokenType;

struct Token {
  TokenType type;
  std::string text;
  InterpPtr interp;  // kInterp
};

struct DictEntry;

struct Element {
  enum class Kind { kPrimitive, kQuoted, kList, kDict, kEmpty };
  Kind kind = Kind::kEmpty;
  std::vector<Token> tokens;                               // kPrimitive
  Text quoted;                                             // kQuoted
  std::vector<Element> items;                              // kList
  std::vector<DictEntry> entries;                          // kDict
};

/// One `key: value` of a dict element.
struct DictEntry {
  std::vector<Token> key;
  Element value;
};

struct Interp {
  bool is_resolver = false;
  // Node interpolation: number of leading dots (0 = absolute) and the key segments.
  int dots = 0;
  std::vector<KeySegment> key;
  // Resolver interpolation: name segments (joined by '.') and arguments.
  std::vector<KeySegment> name;
  std::vector<Element> args;
  std::string source;  // the interpolation's text, for messages
};

/// Parses a config value (the `text` rule). Throws GrammarError.
Text parse_text(std::string_view value);
/// Parses one element as oc.decode does (`singleElement` rule). Throws GrammarError.
Element parse_single_element(std::string_view value);

}  // namespace bignlp::config::grammar
