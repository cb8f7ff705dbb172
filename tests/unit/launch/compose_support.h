// Composition of conf/ for the launch tests, exactly as `bignlp` composes it (config::compose),
// with the stage sequence request built the way run_composed() builds it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bignlp/config/compose.h"
#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/launch/stage_sequence.h"

namespace bignlp::launch::testing {

struct Composed {
  config::ConfigNode config;
  config::ResolverRegistry resolvers;
  std::map<std::string, std::string> choices;

  StageSequenceRequest request(std::vector<std::string> argv = {"bignlp"}) const {
    return StageSequenceRequest{config, resolvers, choices, std::move(argv), {}};
  }
};

/// `value` as a Hydra double-quoted override value: quotes escaped, and backslashes escaped where
/// they would precede a quote.
inline std::string hydra_quoted(const std::string& value) {
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      std::size_t j = i;
      while (j < value.size() && value[j] == '\\') ++j;
      const bool before_quote = j == value.size() || value[j] == '"';
      out += before_quote ? std::string(2 * (j - i), '\\') : std::string(j - i, '\\');
      i = j - 1;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// conf/config.yaml with `overrides` in Hydra's grammar (group=option, key=value, +key=value).
inline Composed compose_conf(const std::vector<std::string>& overrides) {
  config::ComposeOptions o;
  o.config_path = std::filesystem::path(BIGNLP_SOURCE_DIR) / "conf";
  o.overrides = overrides;
  const config::ComposeResult r = config::compose(o);
  Composed out{r.config, r.resolvers(), {}};
  register_launch_resolvers(out.resolvers, BIGNLP_SOURCE_DIR);
  for (const auto& c : r.choices) {
    if (c.option) out.choices[c.key] = *c.option;
  }
  return out;
}

}  // namespace bignlp::launch::testing
