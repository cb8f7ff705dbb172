#include "bignlp/core/check.h"

#include <filesystem>

namespace bignlp::detail {

void throw_check_failure(const char* expr, const char* func, const char* file, int line,
                         const std::string& message) {
  // Paths relative to the source tree keep messages short and stable across machines.
  std::string path = file;
  const std::string root = std::string(BIGNLP_SOURCE_DIR) + "/";
  if (path.rfind(root, 0) == 0) path = path.substr(root.size());
  throw RuntimeError(fmt::format("{}:{}: {}: check '{}' failed: {}", path, line, func, expr, message));
}

}  // namespace bignlp::detail
