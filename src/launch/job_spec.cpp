#include "bignlp/launch/job_spec.h"

#include <fmt/format.h>

#include "bignlp/core/strings.h"

namespace bignlp::launch {

std::filesystem::path JobSpec::script_path() const { return dir / (name + "_submission.sh"); }

std::string JobSpec::log_pattern(bool err) const {
  const char* id = array ? "%A_%a" : "%j";
  return (dir / fmt::format("log-{}_{}.{}", name, id, err ? "err" : "out")).string();
}

std::filesystem::path JobSpec::log_path(bool err, const std::string& job_id, int array_index) const {
  std::string p = log_pattern(err);
  p = replace_all(p, "%A", job_id);
  p = replace_all(p, "%a", fmt::format("{}", array_index));
  p = replace_all(p, "%j", job_id);
  return p;
}

int JobSpec::group_tasks(const CommandGroup& group) const {
  const int n = group.nodes > 0 ? group.nodes : nodes;
  const int t = group.ntasks_per_node > 0 ? group.ntasks_per_node : ntasks_per_node;
  return n * t;
}

}  // namespace bignlp::launch
