// Shell quoting: the one place where config values become shell words.
//
// Every value a config can carry (paths, names, overrides, environment values) reaches a job
// script only through shell_quote(), so a value with spaces, quotes, `$(...)`, backticks or
// newlines is always one word of data and never a command. Words made only of characters that
// no POSIX shell treats specially are left bare (readable scripts); anything else is put in
// single quotes, with embedded single quotes written as '"'"' (the shlex.quote rule).
// NUL bytes cannot be passed through a shell at all and are rejected (RenderError).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bignlp::launch {

/// `word` as one shell word with exactly this text: bare when safe, single-quoted otherwise.
/// shell_quote("a b") == "'a b'", shell_quote("it's") == "'it'\"'\"'s'", shell_quote("") == "''".
/// Throws RenderError when `word` contains a NUL byte.
std::string shell_quote(std::string_view word);

/// Each word quoted with shell_quote(), joined by single spaces.
std::string shell_join(const std::vector<std::string>& words);

/// True for a valid environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool is_env_name(std::string_view name);

/// True when `text` has no byte that would end or split a line of a job script header
/// (newline, carriage return, NUL): what an `#SBATCH` value or a log path must satisfy.
bool is_single_line(std::string_view text);

/// `text` in double quotes with control characters escaped (\n, \t, \xNN), for error messages.
std::string quote_for_message(std::string_view text);

}  // namespace bignlp::launch
