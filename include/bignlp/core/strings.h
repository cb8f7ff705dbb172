// Small string helpers shared by every library: split/join/trim, case, "did you mean" matching,
// and human-readable sizes and durations. Pure functions, no allocation tricks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bignlp {

/// Splits on every occurrence of `sep` (empty fields kept): split("a,,b", ',') == {"a","","b"}.
std::vector<std::string> split(std::string_view text, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view text);
std::string to_lower(std::string_view text);
bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);
/// Replaces every occurrence of `from` (non-empty) with `to`.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);

/// Levenshtein distance (insert/delete/substitute cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidates closest to `word` (distance <= max(2, |word|/3)), best first, at most `limit`.
std::vector<std::string> closest_matches(std::string_view word, const std::vector<std::string>& candidates,
                                         std::size_t limit = 3);

/// "1.50 GiB", "512 B".
std::string format_bytes(std::uint64_t bytes);
/// "1h02m03s", "4.25s", "12ms".
std::string format_duration(double seconds);

}  // namespace bignlp
