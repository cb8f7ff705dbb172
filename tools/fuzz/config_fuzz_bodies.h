// What the config fuzz targets do with one input; shared by the libFuzzer targets (this folder)
// and by test_config, which replays the checked-in corpus and every crash found
// (tests/data/fuzz/<target>/). Any exception other than bignlp::Error is a bug, as is a crash.
#pragma once

#include <string>
#include <string_view>

#include "bignlp/config/compose.h"
#include "bignlp/config/interpolate.h"
#include "bignlp/config/override_parser.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"

namespace bignlp::config::fuzz {

inline ConfigNode fuzz_base_config() {
  return load_yaml_string(
      "a: 1\nb: [x, 2.5, {c: null}]\nd: {e: '${a}', f: '??\?'}\ns: str\nm: ???\nnested: {deep: {k: v}}\n");
}

/// Override parser, then applying the override to a small config.
inline void override_parser(std::string_view data) {
  Override o;
  try {
    o = parse_override(data, 1);
  } catch (const Error&) {
    return;
  }
  (void)o.key_element();
  (void)o.value_text();
  (void)o.is_hydra_override();
  if (o.is_sweep()) return;
  ConfigNode root = fuzz_base_config();
  try {
    apply_override(root, o, ResolverRegistry::with_builtins());
    (void)to_yaml(root);
  } catch (const Error&) {
  }
}

/// Interpolation grammar and resolution of `data` as a value (and inside a string) of a small
/// config, in both resolve modes, plus oc.decode's element rule.
inline void interpolation(std::string_view data) {
  const std::string text(data);
  try {
    validate_interpolation(text);
  } catch (const Error&) {
  }
  try {
    (void)decode_element(text);
  } catch (const Error&) {
  }
  ResolverRegistry reg = ResolverRegistry::with_builtins();
  reg.set_environment([](std::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return std::string("/home/fuzz");
    return std::nullopt;
  });
  for (const ResolveMode mode : {ResolveMode::kHydra, ResolveMode::kStrict}) {
    ConfigNode root = fuzz_base_config();
    root.set("v", ConfigNode::string(text));
    root.at("nested.deep").set("w", ConfigNode::string("x_" + text));
    try {
      ResolveOptions opt;
      opt.mode = mode;
      resolve_in_place(root, reg, opt);
      (void)to_yaml(root);
    } catch (const Error&) {
    }
  }
}

/// YAML: load, emit, load again; the second load must give the same tree.
inline void yaml_roundtrip(std::string_view data) {
  ConfigNode first;
  try {
    YamlLoadOptions opt;
    opt.validate_interpolations = false;
    first = load_yaml_string(data, opt);
  } catch (const Error&) {
    return;
  }
  const std::string text = to_yaml(first);
  YamlLoadOptions opt;
  opt.validate_interpolations = false;
  ConfigNode second;
  try {
    second = load_yaml_string(text, opt);
  } catch (const Error& e) {
    throw std::logic_error("emitted YAML does not load back: " + std::string(e.what()) + "\n" + text);
  }
  // A scalar document is emitted as a one-line document; dicts and lists must round-trip exactly.
  if (first.is_container() && !(second == first)) {
    throw std::logic_error("YAML round trip changed the value:\n" + text + "---\n" + to_yaml(second));
  }
  (void)to_json(first);
}

}  // namespace bignlp::config::fuzz
