// Job arrays: Slurm's `--array=<indices>%<max parallel>` from an index list (the "0,3,5-7" syntax
// of data_preparation.file_numbers, parsed by core/index_list.h). Formatting compresses indices
// back into the shortest list of ranges, so format(parse(x)) is canonical.
#pragma once

#include <string>
#include <vector>

namespace bignlp::launch {

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
