// YAML 1.1 implicit scalar resolution (internal): which tag PyYAML's resolvers give a plain scalar.
// Used by the loader (OmegaConf's resolver set: no timestamps, extra float pattern) and by the
// emitter (PyYAML's standard set: decides whether a string may be written plain).
#pragma once

#include <string_view>

namespace bignlp::config::yaml11 {

enum class Tag { kStr, kBool, kInt, kFloat, kNull, kMerge, kValue, kTimestamp };

/// Tag OmegaConf's loader gives a plain scalar.
Tag resolve_for_load(std::string_view text);
/// Tag PyYAML's default Dumper resolver gives a plain scalar (used to decide quoting).
Tag resolve_for_dump(std::string_view text);

bool is_bool(std::string_view t);
bool is_null(std::string_view t);
bool is_int(std::string_view t);
bool is_float_std(std::string_view t);
bool is_float_omegaconf(std::string_view t);
bool is_timestamp(std::string_view t);

}  // namespace bignlp::config::yaml11
