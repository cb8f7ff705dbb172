// Composition of conf/ for the launch tests: the primary config with one option per group and
// `key=value` overrides, as `bignlp` composes it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/strings.h"
#include "bignlp/launch/pipeline.h"

namespace bignlp::launch::testing {

struct Composed {
  config::ConfigNode config;
  config::ResolverRegistry resolvers = config::ResolverRegistry::with_builtins();
  std::map<std::string, std::string> choices;

  PipelineRequest request(std::vector<std::string> argv = {"bignlp"}) const {
    return PipelineRequest{config, resolvers, choices, std::move(argv), {}};
  }
};

/// conf/config.yaml with its default options, then `overrides`: "group=option" for config groups,
/// "a.b=value" for values (YAML scalars or flow lists).
inline Composed compose_conf(const std::vector<std::string>& overrides) {
  const std::filesystem::path conf = std::filesystem::path(BIGNLP_SOURCE_DIR) / "conf";
  Composed out;
  config::ConfigNode root = config::load_yaml_file(conf / "config.yaml");
  const config::ConfigNode defaults = *root.find("defaults");
  root.erase("defaults");
  std::vector<std::string> groups;
  for (std::size_t i = 0; i < defaults.size(); ++i) {
    const config::ConfigNode& d = defaults[i];
    if (!d.is_dict()) continue;
    const std::string group = d.key_at(0);
    groups.push_back(group);
    if (!d.child_at(0).is_null()) out.choices[group] = d.child_at(0).as_string();
  }
  std::vector<std::string> values;
  for (std::string o : overrides) {
    if (o.starts_with("+")) o.erase(0, 1);
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq);
    if (std::find(groups.begin(), groups.end(), key) != groups.end()) {
      out.choices[key] = o.substr(eq + 1);
    } else {
      values.push_back(o);
    }
  }
  for (const auto& group : groups) {
    auto it = out.choices.find(group);
    if (it == out.choices.end()) {
      root.set(group, config::ConfigNode());
      continue;
    }
    root.set(group, config::load_yaml_file(conf / group / (it->second + ".yaml")));
  }
  for (const auto& o : values) {
    const auto eq = o.find('=');
    std::string text = o.substr(eq + 1);
    config::ConfigNode v;
    if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') && text.back() == text.front()) {
      std::string unquoted;  // a quoted override value: the text inside, with \x read as x
      for (std::size_t i = 1; i + 1 < text.size(); ++i) {
        if (text[i] == '\\' && i + 2 < text.size()) ++i;
        unquoted += text[i];
      }
      v = config::ConfigNode::string(unquoted);
    } else {
      v = text.starts_with("[") ? config::load_yaml_string(text) : config::parse_yaml_scalar(text);
    }
    root.set_path(o.substr(0, eq), v);
  }
  out.config = std::move(root);
  register_launch_resolvers(out.resolvers, BIGNLP_SOURCE_DIR);
  return out;
}

}  // namespace bignlp::launch::testing
