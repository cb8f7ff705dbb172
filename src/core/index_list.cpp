#include "bignlp/core/index_list.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp {
namespace {

int parse_index(std::string_view number, std::string_view text, std::string_view what) {
  number = trim(number);
  int v = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || v < 0) {
    throw ConfigError(fmt::format("{}: '{}' is not a valid index list: '{}' is not a non-negative integer (expected "
                                  "numbers and ranges such as \"0-29\" or \"0,3,5-7\")",
                                  what, text, number));
  }
  return v;
}

}  // namespace

std::vector<int> parse_index_list(std::string_view text, std::string_view what) {
  if (trim(text).empty()) {
    throw ConfigError(fmt::format("{}: the index list is empty (expected numbers and ranges such as \"0-29\" or \"0,3,5-7\")", what));
  }
  std::vector<int> out;
  for (const std::string& raw : split(text, ',')) {
    const std::string_view part = trim(raw);
    const auto dash = part.find('-');
    if (dash == std::string_view::npos) {
      out.push_back(parse_index(part, text, what));
      continue;
    }
    const int lo = parse_index(part.substr(0, dash), text, what);
    const int hi = parse_index(part.substr(dash + 1), text, what);
    if (hi < lo) {
      throw ConfigError(fmt::format("{}: '{}': the range '{}' runs backwards (write {}-{})", what, text, part, hi, lo));
    }
    for (int i = lo; i <= hi; ++i) out.push_back(i);
  }
  std::sort(out.begin(), out.end());
  const auto dup = std::adjacent_find(out.begin(), out.end());
  if (dup != out.end()) throw ConfigError(fmt::format("{}: '{}' lists index {} more than once", what, text, *dup));
  return out;
}

}  // namespace bignlp
