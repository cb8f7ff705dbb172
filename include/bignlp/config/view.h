// ConfigView: typed, audited reads of a config for the code that consumes it (stages, workers).
//
//   ConfigView cfg(root);                               // copies root; resolves ${...} on read
//   int tp = cfg.get<int>("model.tensor_model_parallel_size");
//   double lr = cfg.get_or<double>("model.optim.lr", 1e-4);
//   std::optional<std::string> tok = cfg.find<std::string>("model.tokenizer.model");
//   std::vector<std::string> prefixes = cfg.string_list("model.data.data_prefix");  // one or several
//   ConfigView model = cfg.sub("model");                // same usage tracker
//   cfg.check_all_used("training");                     // unknown keys -> ConfigError
//
// Errors are ConfigError naming file:line:col and the full key path:
//   conf/training/gpt3/5b.yaml:42:5: training.model.tensor_model_parallel_size: expected int, got 'abc'
// Conversions: bool <- bool; integers <- int (range-checked); double/float <- int or float;
// std::string <- any scalar (numbers as Python prints them); std::vector<T> <- list;
// std::map<std::string, T> <- dict; ConfigNode <- anything (resolved copy). null is "absent" for
// get_or/find and an error for get; "???" is always an error when read.
//
// Usage audit (Hydra's struct mode, applied after the fact): every get/find/node marks the key
// (a container read marks its whole subtree); unused_keys() lists leaves nobody read, and
// check_all_used() turns them into one error listing each with its location and a "did you mean".
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/core/error.h"

namespace bignlp::config {

namespace view_detail {
bool to_bool(const ConfigNode& n, const std::string& path);
std::int64_t to_int(const ConfigNode& n, const std::string& path);
double to_double(const ConfigNode& n, const std::string& path);
std::string to_string(const ConfigNode& n, const std::string& path);
void expect_kind(const ConfigNode& n, const std::string& path, NodeKind kind);
[[noreturn]] void out_of_range(const ConfigNode& n, const std::string& path, const char* type);

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

template <class T>
T convert(const ConfigNode& n, const std::string& path) {
  if constexpr (std::is_same_v<T, ConfigNode>) {
    return n;
  } else if constexpr (std::is_same_v<T, bool>) {
    return to_bool(n, path);
  } else if constexpr (std::is_integral_v<T>) {
    const std::int64_t v = to_int(n, path);
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0 || static_cast<std::uint64_t>(v) > std::numeric_limits<T>::max()) out_of_range(n, path, "unsigned");
    } else {
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        out_of_range(n, path, "int");
    }
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(to_double(n, path));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return to_string(n, path);
  } else if constexpr (is_vector<T>::value) {
    expect_kind(n, path, NodeKind::kList);
    T out;
    for (std::size_t i = 0; i < n.size(); ++i)
      out.push_back(convert<typename T::value_type>(n[i], child_key_path(path, std::to_string(i))));
    return out;
  } else if constexpr (is_string_map<T>::value) {
    expect_kind(n, path, NodeKind::kDict);
    T out;
    for (std::size_t i = 0; i < n.size(); ++i)
      out.emplace(n.key_at(i), convert<typename T::mapped_type>(n.child_at(i), child_key_path(path, n.key_at(i))));
    return out;
  } else {
    static_assert(sizeof(T) == 0, "ConfigView: unsupported type");
  }
}
}  // namespace view_detail

class ConfigView {
 public:
  /// A view of a copy of `root`. Interpolations are resolved when read, with `resolvers`
  /// (ResolverRegistry::with_builtins() when null; the registry must outlive the view).
  explicit ConfigView(const ConfigNode& root, const ResolverRegistry* resolvers = nullptr);
  ~ConfigView();
  ConfigView(const ConfigView&);
  ConfigView& operator=(const ConfigView&);

  /// A view of the subtree at `path` (relative to this view); shares the usage tracker.
  ConfigView sub(std::string_view path) const;
  /// Full key path of this view's root ("" for the config root).
  const std::string& prefix() const { return prefix_; }
  /// prefix() + "." + path.
  std::string full_path(std::string_view path) const;

  /// The value at `path`; throws ConfigError when absent, null, "???" or of the wrong type.
  template <class T>
  T get(std::string_view path) const {
    const std::string full = full_path(path);
    return view_detail::convert<T>(require(full), full);
  }
  /// The value at `path`, or `fallback` when absent or null.
  template <class T>
  T get_or(std::string_view path, T fallback) const {
    const std::string full = full_path(path);
    const ConfigNode* n = lookup(full);
    if (!n || n->is_null()) return fallback;
    return view_detail::convert<T>(*n, full);
  }
  /// The value at `path`, or nullopt when absent or null.
  template <class T>
  std::optional<T> find(std::string_view path) const {
    const std::string full = full_path(path);
    const ConfigNode* n = lookup(full);
    if (!n || n->is_null()) return std::nullopt;
    return view_detail::convert<T>(*n, full);
  }
  /// A list of scalars as text (converted like get<std::string>, null entries dropped), or a single
  /// scalar as a one-item list; absent or null gives an empty list. For keys that take one value or
  /// several ("model.data.data_prefix").
  std::vector<std::string> string_list(std::string_view path) const;
  /// The full key and its value as a command-line override writes them, for messages:
  /// "training.trainer.num_nodes=20", "training.model.fp16=true"; the value is "null" when absent.
  std::string as_override(std::string_view path) const;
  /// Present and not null (does not mark the key used).
  bool has(std::string_view path) const;
  /// Resolved copy of the node at `path` (marks its subtree used). Throws when absent.
  ConfigNode node(std::string_view path = {}) const { return get<ConfigNode>(path); }
  /// Keys of the dict at `path` (does not mark them used).
  std::vector<std::string> keys(std::string_view path = {}) const;
  /// Provenance of the value at `path` (nullptr when absent).
  const Provenance* provenance(std::string_view path) const;

  /// Marks `path` (and everything below it) as read.
  void mark_used(std::string_view path) const;
  /// Full paths of the leaves under this view that were never read, in document order.
  std::vector<std::string> unused_keys() const;
  /// Throws ConfigError listing each unused key (file:line:col, key path, closest used sibling).
  /// `what` names the config in the message ("training", "the stage config").
  void check_all_used(std::string_view what = "config") const;

 private:
  struct State;
  ConfigView(std::shared_ptr<State> state, std::string prefix);
  const ConfigNode* lookup(const std::string& full) const;   // resolved node or nullptr; marks used
  const ConfigNode& require(const std::string& full) const;  // resolved node; throws when absent/null

  std::shared_ptr<State> state_;
  std::string prefix_;
};

/// A scalar as a config file or a command-line override writes it: "20", "true", "1e-05",
/// "gpt3_5b" (strings as they are); nullopt for null, "???" and containers. get<std::string>
/// differs only for booleans, which it reads as Python's str() writes them ("True").
std::optional<std::string> scalar_text(const ConfigNode& node);

}  // namespace bignlp::config
