// Provenance: where a config value came from.
//
// Every ConfigNode carries one (shared, immutable). A value loaded from YAML knows its file, 1-based
// line and column and the full key path it was defined at in the composed config; a value set by a
// command-line override knows the override's position and text; a value set by a program knows a
// short note saying who set it. When composition or an override replaces a value, the new value's
// provenance links to the one it replaced (`previous`), so `bignlp --explain KEY` can show the
// whole history. Not handled: provenance of keys (only of values).
#pragma once

#include <memory>
#include <string>

namespace bignlp::config {

/// Where a value was defined.
struct Provenance {
  enum class Origin : unsigned char {
    kUnknown,   ///< built in code without a note
    kFile,      ///< loaded from a YAML file (file, line, column)
    kOverride,  ///< set by a command-line override (override_index, override_text)
    kProgram,   ///< set by a program (note says who)
    kResolved,  ///< produced by resolving an interpolation (note holds the interpolation)
  };

  Origin origin = Origin::kUnknown;
  std::string file;           ///< path of the YAML file as given (kFile)
  int line = 0;               ///< 1-based line, 0 when unknown
  int column = 0;             ///< 1-based column, 0 when unknown
  std::string key_path;       ///< full key path where the value was defined ("trainer.num_nodes")
  int override_index = 0;     ///< 1-based position among the command-line overrides (kOverride)
  std::string override_text;  ///< the override as typed (kOverride)
  std::string note;           ///< free text for kProgram / kResolved
  /// The definition this value replaced (merge of a later config, an override, a program edit).
  std::shared_ptr<const Provenance> previous;

  /// Short location: "conf/x.yaml:3:5", "override #2 'a=1'", "set by launcher", "<unknown>".
  std::string location() const;
  /// "conf/x.yaml:3:5: " for values from files (empty otherwise): the prefix of error messages.
  std::string error_prefix() const;

  static Provenance from_file(std::string file, int line, int column, std::string key_path = {});
  static Provenance from_override(int index, std::string text, std::string key_path = {});
  static Provenance from_program(std::string note, std::string key_path = {});
};

}  // namespace bignlp::config
