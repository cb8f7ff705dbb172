// The primitive tokens shared by OmegaConf's interpolation grammar (interpolation_grammar.cpp) and
// Hydra's override grammar (override_parser.cpp) (internal to the config library).
//
// Both lexers (OmegaConf 2.2 OmegaConfGrammarLexer, VALUE_MODE; Hydra 1.3 OverrideLexer,
// VALUE_MODE) define these tokens alike:
//   INT_UNSIGNED   '0' | [1-9] ('_'? DIGIT)*               INT   [+-]? INT_UNSIGNED
//   POINT_FLOAT    INT_UNSIGNED '.' | INT_UNSIGNED? '.' DIGIT ('_'? DIGIT)*   ("1." and ".5" are floats)
//   EXPONENT_FLOAT (INT_UNSIGNED | POINT_FLOAT) [eE] [+-]? DIGIT ('_'? DIGIT)*
//   FLOAT          [+-]? (POINT_FLOAT | EXPONENT_FLOAT | inf | nan)          (inf, nan in any case)
//   BOOL           true | false (any case)                  NULL  null (any case)
//   UNQUOTED_CHAR  one of / - \ + . $ % * @ ? |
//   ESC            ('\\' | '\(' | '\)' | '\[' | '\]' | '\{' | '\}' | '\:' | '\=' | '\,' | '\ ' | '\<tab>')+
//   ID             (CHAR | '_') (CHAR | DIGIT | '_' | <Dialect>)*
// The one difference, chosen by Dialect, is in ID: Hydra's OverrideLexer also allows '-' after the
// first character (function names, keyword arguments and config group names such as "my-group");
// OmegaConf 2.2's does not ("${my-res:1}" is a syntax error there; OmegaConf 2.3 added '-').
// Everything else that differs between the grammars -- which characters end a primitive, how
// "${" inside one is read, the error texts -- belongs to each parser.
#pragma once

#include <cstddef>
#include <string_view>

namespace bignlp::config::lexer {

/// Which grammar's ID rule applies.
enum class Dialect {
  kOmegaConf,  ///< OmegaConf 2.2: ID is (CHAR | '_') (CHAR | DIGIT | '_')*
  kHydra,      ///< Hydra 1.3: ID is (CHAR | '_') (CHAR | DIGIT | '_' | '-')*
};

/// Token types of an unquoted value. longest_scalar() yields the first six; the parsers add the
/// others (': ' separators, escapes, whitespace runs, interpolations) themselves.
enum class TokenType { kId, kNull, kInt, kFloat, kBool, kUnquoted, kColon, kEsc, kWs, kInterp };

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
/// CHAR: [a-zA-Z].
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
/// WS: [ \t].
inline bool is_ws(char c) { return c == ' ' || c == '\t'; }
inline bool is_id_start(char c) { return is_alpha(c) || c == '_'; }
inline bool is_id_char(char c, Dialect dialect) {
  return is_alpha(c) || is_digit(c) || c == '_' || (dialect == Dialect::kHydra && c == '-');
}

/// A token found at a position: its type and length in bytes (0 when none starts there).
struct Match {
  TokenType type = TokenType::kId;
  std::size_t length = 0;
};

/// Measures the tokens above in `text` (not owned). Every *_len(at) returns the length of the
/// token starting at byte `at`, 0 when none starts there (or `at` is past the end).
class ScalarLexer {
 public:
  ScalarLexer(std::string_view text, Dialect dialect) : s_(text), dialect_(dialect) {}

  std::size_t int_len(std::size_t at) const;
  std::size_t int_unsigned_len(std::size_t at) const;
  std::size_t float_len(std::size_t at) const;
  std::size_t id_len(std::size_t at) const;
  std::size_t esc_len(std::size_t at) const;
  /// A run of blanks (WS).
  std::size_t ws_len(std::size_t at) const;
  /// True if `lower_word` (lower case) stands at `at`, in any case.
  bool word_at(std::size_t at, std::string_view lower_word) const;

  /// The longest of FLOAT, INT, BOOL, NULL, UNQUOTED_CHAR and ID at `at`; a tie goes to the earlier
  /// of them in that order (ANTLR's rule for lexer rules). Length 0 when none matches.
  Match longest_scalar(std::size_t at) const;

 private:
  // DIGIT ('_'? DIGIT)*
  std::size_t digits_len(std::size_t at) const;

  std::string_view s_;
  Dialect dialect_;
};

/// The value of an INT token ('_' ignored) as Python's int() gives it. False when it does not fit
/// in 64 bits (or is not an INT).
bool int_token_value(std::string_view text, long long& out);

}  // namespace bignlp::config::lexer
