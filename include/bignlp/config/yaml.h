// YAML and JSON I/O for ConfigNode trees.
//
// Loading follows OmegaConf's loader (PyYAML SafeLoader, YAML 1.1 implicit types) exactly:
//   bool  true/True/TRUE/false/.../yes/no/on/off (those three spellings each; "y", "tRue" are strings)
//   null  null/Null/NULL/~ and an empty value;  "???" (quoted or not) is MISSING
//   int   1_000, 0x1F, 017 (octal = 15), 0b11, 1:30 (base 60 = 90), +5;  "0o17" is a string
//   float 1.5, .5, 1., 1e3 (OmegaConf addition), -2.5E+2, .inf, -.Inf, .nan, 1:30.5
//   timestamps stay strings; quoted and block scalars are always strings; !!str/!!int/!!float/
//   !!bool/!!null tags are honoured; anchors, aliases and "<<" merge keys work; duplicate keys are an
//   error; an empty document is {}. Strings containing "${" are checked against the interpolation
//   grammar at load time, so a malformed interpolation is reported with its file:line:col.
// Every node gets Provenance{file, line, column, key_path}. Errors are ConfigError with
// "file:line:col: " prefixes.
//
// Emitting reproduces OmegaConf.to_yaml (PyYAML block style, width 80, insertion order, strings
// quoted when they would read back as another type, floats as Python repr: 1.0e-05, .inf, .nan).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "bignlp/config/node.h"

namespace bignlp::config {

struct YamlLoadOptions {
  /// File name used in provenance and errors (default: the path as given).
  std::string display_name;
  /// Key path prefix stamped into provenance (the package the content will live at).
  std::string key_prefix;
  /// Check interpolation strings against the grammar while loading (default on).
  bool validate_interpolations = true;
};

/// Loads a YAML file. Throws IoError if unreadable, ConfigError for malformed YAML (file:line:col).
ConfigNode load_yaml_file(const std::filesystem::path& path, const YamlLoadOptions& options = {});
/// Loads YAML text; `options.display_name` names it in errors (default "<string>").
ConfigNode load_yaml_string(std::string_view text, const YamlLoadOptions& options = {});

/// The typed value of a plain (unquoted, untagged) YAML scalar under OmegaConf's rules:
/// "yes" -> true, "017" -> 15, "1e3" -> 1000.0, "~" -> null, "???" -> MISSING, "2020-01-01" -> string.
ConfigNode parse_yaml_scalar(std::string_view plain_text);

/// OmegaConf.to_yaml: block-style YAML ending with a newline ("{}\n" for an empty dict). Scalars
/// are emitted as a one-line document.
std::string to_yaml(const ConfigNode& node);
/// One scalar as PyYAML writes it in a block mapping value ("'123'", "1.0e-05", "null", "???").
std::string scalar_to_yaml(const ConfigNode& node);
/// JSON text (Python json.dumps shape with `indent`, 0 = compact one line). MISSING is "???",
/// non-finite floats are NaN/Infinity/-Infinity like Python's json.
std::string to_json(const ConfigNode& node, int indent = 2);

/// Writes to_yaml(node) to `path` atomically (temp file + rename; parents created).
void write_yaml_file(const std::filesystem::path& path, const ConfigNode& node);

}  // namespace bignlp::config
