#include "bignlp/launch/array_spec.h"

#include <fmt/format.h>

namespace bignlp::launch {

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
