#include "bignlp/tensor/cuda_check.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::detail {

void throw_cuda_library_error(std::string_view library, long long code, std::string_view code_name, const char* expr,
                              const char* func, const char* file, int line) {
  throw RuntimeError(fmt::format("{} error {} ({}) in `{}` at {} ({}:{})", library, code, code_name, expr, func,
                                 file, line));
}

}  // namespace bignlp::detail
