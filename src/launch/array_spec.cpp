#include "bignlp/launch/array_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::launch {
namespace {

int parse_number(std::string_view part, std::string_view token, std::string_view text, std::string_view what) {
  const std::string_view t = trim(token);
  int value = -1;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || value < 0) {
    throw ConfigError(fmt::format(
        "{}: '{}' is not a valid index list: '{}' is not a non-negative number "
        "(use numbers, ranges and commas, e.g. \"0,3,5-7\")",
        what, text, std::string(part)));
  }
  if (value > kMaxArrayIndex) {
    throw ConfigError(fmt::format("{}: '{}': index {} is larger than {}", what, text, value, kMaxArrayIndex));
  }
  return value;
}

}  // namespace

std::vector<int> parse_index_list(std::string_view text, std::string_view what) {
  if (trim(text).empty()) {
    throw ConfigError(fmt::format("{}: the index list is empty (give numbers and ranges, e.g. \"0-29\" or \"0,3,5-7\")", what));
  }
  std::vector<int> out;
  for (const std::string& raw : split(text, ',')) {
    const std::string_view part = trim(raw);
    if (part.empty()) {
      throw ConfigError(fmt::format("{}: '{}' is not a valid index list: empty entry between commas", what, text));
    }
    const auto dash = part.find('-');
    if (dash == std::string_view::npos) {
      out.push_back(parse_number(part, part, text, what));
      continue;
    }
    const int lo = parse_number(part, part.substr(0, dash), text, what);
    const int hi = parse_number(part, part.substr(dash + 1), text, what);
    if (hi < lo) {
      throw ConfigError(fmt::format("{}: '{}': the range '{}' runs backwards (write it as {}-{})", what, text,
                                    std::string(part), hi, lo));
    }
    for (int i = lo; i <= hi; ++i) out.push_back(i);
  }
  std::sort(out.begin(), out.end());
  const auto dup = std::adjacent_find(out.begin(), out.end());
  if (dup != out.end()) {
    throw ConfigError(fmt::format("{}: '{}' lists index {} more than once", what, text, *dup));
  }
  return out;
}

std::string format_index_list(const std::vector<int>& indices) {
  std::string out;
  std::size_t i = 0;
  while (i < indices.size()) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", indices[i]) : fmt::format("{}-{}", indices[i], indices[j]);
    i = j + 1;
  }
  return out;
}

std::string ArraySpec::slurm_value() const {
  std::string out = format_index_list(indices);
  if (max_parallel > 0) out += fmt::format("%{}", max_parallel);
  return out;
}

}  // namespace bignlp::launch
