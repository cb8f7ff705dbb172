// The train/valid/test split string of Megatron and NeMo ("99990,8,2", "969, 30, 1", "1/0/0").
//
// Parts are split on ',' (or '/' when there is no comma), parsed as floats, padded to three with
// zeros and normalised. Boundaries are idx[0] = 0, idx[k+1] = idx[k] + round(frac[k] * size) with
// Python's round-half-to-even, then every boundary after the first is shifted so idx[3] == size.
// Split k covers documents [idx[k], idx[k+1]); an empty range means no dataset for that split.
// Example: "99990,8,2" over 1,000,000 documents -> {0, 999900, 999980, 1000000}; over 12,345 it
// gives {0, 12344, 12345, 12345} (test is empty).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bignlp::data {

/// The normalised fractions of a split string; throws ConfigError naming the string when a part
/// is not a number, is negative, or they sum to 0.
std::vector<double> parse_split_fractions(std::string_view splits_string);

/// Split boundaries {0, train_end, valid_end, size} for `size` documents.
std::array<std::int64_t, 4> train_valid_test_split(std::string_view splits_string, std::int64_t size);

}  // namespace bignlp::data
