// Job array index lists: the "0,3,5-7" syntax of data_preparation.file_numbers and Slurm's
// `--array=<indices>%<max parallel>`.
//
// An index list is numbers and ascending ranges separated by commas ("0-29", "0,3,5-7", "7").
// Parsing expands it (sorted, duplicates rejected), formatting compresses it back into the
// shortest list of ranges, so format(parse(x)) is canonical. Slurm's step syntax ("1-7:2") is
// not accepted: file numbers never need it, and rejecting it keeps one obvious meaning.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bignlp::launch {

/// Upper bound of an array index accepted here (Slurm's default MaxArraySize is 1001).
inline constexpr int kMaxArrayIndex = 1000000;

/// Expands "0,3,5-7" into {0, 3, 5, 6, 7}. Throws ConfigError naming `what` (the config key the
/// text came from) and the offending part for empty lists, non-numbers, descending ranges,
/// negative or too large numbers, and indices listed twice.
std::vector<int> parse_index_list(std::string_view text, std::string_view what);

/// Compresses sorted, unique indices into ranges: {0,1,2,5,7,8} -> "0-2,5,7-8".
std::string format_index_list(const std::vector<int>& indices);

/// A job array: which indices run, and how many at most at once (0: no limit).
struct ArraySpec {
  std::vector<int> indices;  ///< sorted, unique, non-empty
  int max_parallel = 0;

  /// Slurm's `--array` value, e.g. "0-29%30" (no "%N" when max_parallel is 0).
  std::string slurm_value() const;
  bool operator==(const ArraySpec&) const = default;
};

}  // namespace bignlp::launch
