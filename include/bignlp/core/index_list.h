// Index lists as the configs write them: numbers and inclusive ranges separated by commas,
// "0-29", "0,3,5-7" (-> 0 3 5 6 7). Used for file_numbers (the Pile shards, one job array element
// each) and Slurm-style array specs.
#pragma once

#include <string_view>
#include <vector>

namespace bignlp {

/// The sorted indices of `text`. Throws ConfigError naming `what` (e.g. the key path) for an empty
/// list, a bad number, a backwards range or a repeated index.
std::vector<int> parse_index_list(std::string_view text, std::string_view what);

}  // namespace bignlp
