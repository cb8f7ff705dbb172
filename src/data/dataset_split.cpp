#include "bignlp/data/dataset_split.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::data {

std::vector<double> parse_split_fractions(std::string_view splits_string) {
  const char sep = splits_string.find(',') != std::string_view::npos ? ',' : '/';
  std::vector<double> parts;
  for (const std::string& raw : split(splits_string, sep)) {
    const std::string text(trim(raw));
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0) {
      throw ConfigError(fmt::format("splits_string '{}': '{}' is not a non-negative number (expected e.g. \"99990,8,2\")",
                                    splits_string, text));
    }
    parts.push_back(v);
  }
  if (parts.size() > 3) {
    throw ConfigError(fmt::format("splits_string '{}': {} parts, expected at most 3 (train, validation, test)",
                                  splits_string, parts.size()));
  }
  while (parts.size() < 3) parts.push_back(0.0);
  // Python's sum(): left to right.
  double total = 0.0;
  for (double v : parts) total += v;
  if (total <= 0.0) throw ConfigError(fmt::format("splits_string '{}': the parts sum to 0", splits_string));
  for (double& v : parts) v /= total;
  return parts;
}

std::array<std::int64_t, 4> train_valid_test_split(std::string_view splits_string, std::int64_t size) {
  const std::vector<double> fractions = parse_split_fractions(splits_string);
  std::array<std::int64_t, 4> idx{0, 0, 0, 0};
  for (std::size_t k = 0; k < 3; ++k) {
    // std::nearbyint in the default rounding mode is round-half-to-even, like Python's round().
    idx[k + 1] = idx[k] + static_cast<std::int64_t>(std::nearbyint(fractions[k] * static_cast<double>(size)));
  }
  const std::int64_t diff = idx[3] - size;
  for (std::size_t k = 1; k < 4; ++k) idx[k] -= diff;
  return idx;
}

}  // namespace bignlp::data
