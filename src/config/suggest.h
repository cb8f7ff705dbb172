// "Did you mean" for config messages (internal): core's closest_matches with a stricter cut-off so
// that short keys do not get far-fetched suggestions (edit distance at most max(1, |word|/3)).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/core/strings.h"

namespace bignlp::config {

inline std::optional<std::string> suggest(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  for (const auto& m : closest_matches(word, candidates, 3)) {
    if (edit_distance(word, m) <= limit) return m;
  }
  return std::nullopt;
}

}  // namespace bignlp::config
