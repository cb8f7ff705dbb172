// Runtime checks for engine code: BIGNLP_CHECK(cond, fmt, args...).
//
// On failure throws bignlp::RuntimeError whose message carries the failed statement, the function,
// file and line, then the formatted explanation ("expected X, got Y" with names; add a HINT when
// the fix is known). Use for invariants and for inputs the engine cannot proceed with; config
// mistakes a user makes are ConfigError with provenance instead (config/).
#pragma once

#include <fmt/format.h>

#include <string>

#include "bignlp/core/error.h"

namespace bignlp::detail {

[[noreturn]] void throw_check_failure(const char* expr, const char* func, const char* file, int line,
                                      const std::string& message);

}  // namespace bignlp::detail

/// Throws bignlp::RuntimeError when `cond` is false. Extra arguments are a fmt format string and
/// its arguments.
#define BIGNLP_CHECK(cond, ...)                                                                \
  do {                                                                                         \
    if (!(cond)) [[unlikely]] {                                                                \
      ::bignlp::detail::throw_check_failure(#cond, __func__, __FILE__, __LINE__,               \
                                            ::fmt::format(__VA_ARGS__));                       \
    }                                                                                          \
  } while (0)

/// Like BIGNLP_CHECK without a message.
#define BIGNLP_ASSERT(cond) BIGNLP_CHECK(cond, "internal invariant violated")
