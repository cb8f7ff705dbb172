// Parser for Hydra's override grammar (Hydra 1.3 OverrideLexer/OverrideParser), hand-written.
//
// Values: null, true/false (any case), ints (1_000, +1), floats (1e-05, inf, nan), unquoted strings
// (several tokens concatenate, inner whitespace kept, edges trimmed, escapes \\ \( \) \[ \] \{ \} \:
// \= \, \<space>), quoted strings ('..' or ".."; always strings), "${...}" interpolations kept as
// text, lists [a,b], dicts {a:1,b:[2]}, and functions: choice, range, interval, tag, sort,
// shuffle, glob, extend_list and the casts int, float, str, bool. A top-level "a,b" is a simple
// choice sweep. Errors throw OverrideError: "Error parsing override '<text>'", the text with a
// caret under the offending character, the reason, and where the grammar is documented.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/override.h"

namespace bignlp::config {

/// Parses one override; `index` is its 1-based position on the command line.
Override parse_override(std::string_view text, int index = 0);

/// Parses each argument in order (index = position + 1).
std::vector<Override> parse_overrides(const std::vector<std::string>& args);

/// Escapes the characters Hydra's grammar treats specially (\ ( ) [ ] { } : = , space tab) so a
/// string can be written back as an unquoted override value.
std::string escape_override_value(std::string_view text);

}  // namespace bignlp::config
