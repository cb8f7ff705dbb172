// The bignlp version, one place.
#pragma once

namespace bignlp {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace bignlp
