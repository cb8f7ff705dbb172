// Slurm host lists ("hostlist expressions", as sinfo prints them and --nodelist takes them).
//
//   hpc-pg0-[1-8,10]           hpc-pg0-1 ... hpc-pg0-8, hpc-pg0-10
//   node[01-03],gpu7           node01 node02 node03 gpu7   (zero padding: the width of the bound)
//   rack[1-2]-n[1-2]           rack1-n1 rack1-n2 rack2-n1 rack2-n2 (several brackets: all combinations)
// Commas outside brackets separate expressions; inside brackets they separate ranges.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bignlp::cluster {

/// The host names of `expr`, in order. Throws ConfigError naming `what` (e.g. "--nodelist") and
/// the offending part for an unbalanced bracket, an empty or reversed range, a non-number in a
/// range, a host listed twice, or more than 65536 hosts.
std::vector<std::string> expand_nodelist(std::string_view expr, std::string_view what = "nodelist");

}  // namespace bignlp::cluster
