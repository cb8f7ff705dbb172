// OmegaConf interpolation: resolving "${...}" values, with a registry of resolvers.
//
// Semantics are OmegaConf 2.2's (see docs/config.md for the full list):
//   ${a.b} absolute, ${.x} ${..x} relative (first '.' = the containing node), ${list.0} ${a[b]},
//   nested ${a.${b}}, string interpolation "x_${a}" (values converted with Python str()),
//   escapes "\${" (literal) and "\\${" (backslash + interpolation), resolvers ${name:arg,...} whose
//   arguments are typed like OmegaConf's grammar (ints, floats, bools, null, quoted strings, lists,
//   dicts, nested interpolations). A value that is exactly one interpolation keeps the target's type.
//   Cycles ("Recursive interpolation detected"), interpolations to absent keys, to "???" and to a
//   parent node are errors (InterpolationError, with file:line:col and key path).
//
// Resolvers live in a ResolverRegistry object (never global): ResolverRegistry::with_builtins() has
// oc.env, oc.select, oc.decode, oc.create, oc.dict.keys, oc.dict.values, oc.deprecated and bignlp's
// multiply, divide_ceil, divide_floor; compose adds hydra: and now:. Add more with add().
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/core/error.h"

namespace bignlp::config {

/// Kinds of interpolation errors (OmegaConf's exception types).
enum class InterpolationErrorKind {
  kGrammar,              ///< malformed interpolation text (GrammarParseError)
  kKeyNotFound,          ///< key not found, index out of range, above the root (InterpolationKeyError)
  kResolution,           ///< other resolution errors: bad key type, child of a scalar, non-string key
  kResolver,             ///< a resolver failed (env var not found, division by zero, bad oc.decode input)
  kUnsupportedResolver,  ///< unknown resolver name (UnsupportedInterpolationType)
  kCycle,                ///< recursive interpolation, or interpolation to a parent node
  kMissing,              ///< reading a "???" value (MissingMandatoryValue)
  kToMissing,            ///< an interpolation pointing at "???" (InterpolationToMissingValueError)
};

const char* interpolation_error_kind_name(InterpolationErrorKind kind);

/// A ConfigError raised while parsing or resolving an interpolation. what() is the complete message.
class InterpolationError : public ConfigError {
 public:
  InterpolationError(InterpolationErrorKind kind, std::string message)
      : ConfigError(std::move(message)), kind_(kind) {}
  InterpolationErrorKind kind() const { return kind_; }

 private:
  InterpolationErrorKind kind_;
};

/// What a resolver may ask the resolution engine while it runs.
class ResolverContext {
 public:
  virtual ~ResolverContext() = default;
  /// oc.select semantics: the resolved value at `key` (absolute, or relative with leading dots to
  /// the node holding the interpolation); nullopt when absent or "???".
  virtual std::optional<ConfigNode> select(std::string_view key) = 0;
  /// The unresolved node at `key` (absolute or relative), nullptr if absent; `full_path` receives
  /// its absolute key path.
  virtual const ConfigNode* find_node(std::string_view key, std::string* full_path) = 0;
  /// Parses `text` as one grammar element and evaluates it at the current node (oc.decode).
  virtual ConfigNode decode(std::string_view text) = 0;
  /// Key path of the node whose interpolation is being resolved ("" for the root).
  virtual std::string node_path() const = 0;
  /// Environment variable lookup (the registry's environment).
  virtual std::optional<std::string> getenv(std::string_view name) const = 0;
  /// Reports a non-fatal message (oc.deprecated); collected by the caller.
  virtual void warn(std::string message) = 0;
};

/// A resolver: typed arguments in, value out. Throw ConfigError (or any std::exception) on bad
/// input; the engine wraps it with the interpolation's location.
using ResolverFn = std::function<ConfigNode(const std::vector<ConfigNode>& args, ResolverContext& ctx)>;

class ResolverRegistry {
 public:
  /// An empty registry.
  ResolverRegistry();
  /// OmegaConf's built-ins plus bignlp's multiply, divide_ceil, divide_floor.
  static ResolverRegistry with_builtins();

  /// Registers `name` ("ns.name" allowed). Throws ConfigError if it exists and !replace.
  void add(const std::string& name, ResolverFn fn, bool replace = false);
  bool contains(std::string_view name) const;
  const ResolverFn* find(std::string_view name) const;
  std::vector<std::string> names() const;

  /// Replaces the environment oc.env reads (default: the process environment).
  void set_environment(std::function<std::optional<std::string>(std::string_view)> env);
  std::optional<std::string> getenv(std::string_view name) const;

 private:
  std::map<std::string, ResolverFn, std::less<>> resolvers_;
  std::function<std::optional<std::string>(std::string_view)> env_;
};

/// How resolve_in_place treats the corner cases where OmegaConf.resolve (what Hydra's --resolve
/// calls) and to_container(resolve=True) differ.
enum class ResolveMode {
  /// OmegaConf.resolve: an interpolation to "???" becomes "???"; a resolved string that looks like
  /// an interpolation ("\${x}" -> "${x}") is read as one by nodes resolved after it.
  kHydra,
  /// to_container(resolve=True): an interpolation to "???" is an error; results are final.
  kStrict,
};

struct ResolveOptions {
  ResolveMode mode = ResolveMode::kHydra;
  /// Only resolve the nodes under this key path (interpolations may still read anything).
  std::string subtree;
  /// Receives non-fatal messages (oc.deprecated), if set.
  std::vector<std::string>* warnings = nullptr;
};

/// Resolves every interpolation in `root` (or in options.subtree) in place, in document order.
/// Throws InterpolationError.
void resolve_in_place(ConfigNode& root, const ResolverRegistry& resolvers, const ResolveOptions& options = {});

/// A resolved copy of the subtree at `path` ("" = all), to_container(resolve=True) semantics.
ConfigNode resolved_copy(const ConfigNode& root, const ResolverRegistry& resolvers, std::string_view path = {});

/// OmegaConf.select: the value at `path` with interpolations on the way and at the target resolved.
/// nullopt when the key is absent. Reading "???" throws InterpolationError(kMissing) unless
/// `missing_as_absent` (an interpolation to "???" throws kToMissing either way, as in OmegaConf). A container is returned resolved, or, with `resolve_containers` false, as
/// OmegaConf.select returns it: one step (the target of `${...}`), its content left as written.
std::optional<ConfigNode> select(const ConfigNode& root, std::string_view path, const ResolverRegistry& resolvers,
                                 bool missing_as_absent = false, bool resolve_containers = true);

/// Checks `text` against the interpolation grammar. Throws InterpolationError(kGrammar) whose
/// message shows the text with a caret under the offending character.
void validate_interpolation(std::string_view text);

/// Parses `text` as one grammar element (what oc.decode and resolver arguments accept) with no
/// config to read from: interpolations inside are errors. Used by tests and tools.
ConfigNode decode_element(std::string_view text);

}  // namespace bignlp::config
