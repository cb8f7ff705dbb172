// ConfigNode: bignlp's config tree (what OmegaConf calls DictConfig/ListConfig/ValueNode).
//
// A node is a value: null, bool, int (64-bit), float (double), string, MISSING ("???"), an ordered
// dict (string keys, insertion order kept) or a list. Copies are deep; there is no aliasing. A string
// containing "${" is an interpolation: it is stored verbatim and evaluated only when resolved
// (interpolate.h). Every node carries a Provenance (provenance.h) that survives copies, merges and
// moves.
//
// Key paths address nodes: "a.b.c", list indices as "list.0" or "list[0]", bracketed keys "a[b]".
// Lookups never insert; `at()` throws ConfigError naming the path, the closest existing keys and the
// provenance of the container; `find_path()` returns nullptr.
//
// Not handled: typed dict keys (keys are strings; YAML `1: x` gives the key "1"), structured
// (schema-typed) nodes, read-only flags. Struct mode is a behaviour of compose/override/view, not a
// flag stored in the tree.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/provenance.h"

namespace bignlp::config {

enum class NodeKind : unsigned char { kNull, kBool, kInt, kFloat, kString, kMissing, kDict, kList };

/// "null", "bool", "int", "float", "string", "missing", "dict", "list".
const char* kind_name(NodeKind kind);

/// One step of a key path: a dict key or a list index (kept as text; "0" addresses list element 0).
std::vector<std::string> split_key_path(std::string_view path);
/// Inverse of split_key_path for plain keys: {"a","b","0"} -> "a.b.0".
std::string join_key_path(const std::vector<std::string>& parts);
/// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string child_key_path(std::string_view parent, std::string_view key);

class ConfigNode {
 public:
  /// A null node.
  ConfigNode();
  static ConfigNode null_value();
  static ConfigNode boolean(bool value);
  static ConfigNode integer(std::int64_t value);
  static ConfigNode floating(double value);
  static ConfigNode string(std::string value);
  /// The MISSING marker "???": printing shows ???, reading it is an error.
  static ConfigNode missing();
  static ConfigNode dict();
  /// A dict of these entries in this order, built in linear time; the keys must be distinct.
  static ConfigNode dict_of(std::vector<std::pair<std::string, ConfigNode>> entries);
  static ConfigNode list();

  NodeKind kind() const { return kind_; }
  bool is_null() const { return kind_ == NodeKind::kNull; }
  bool is_bool() const { return kind_ == NodeKind::kBool; }
  bool is_int() const { return kind_ == NodeKind::kInt; }
  bool is_float() const { return kind_ == NodeKind::kFloat; }
  bool is_string() const { return kind_ == NodeKind::kString; }
  bool is_missing() const { return kind_ == NodeKind::kMissing; }
  bool is_dict() const { return kind_ == NodeKind::kDict; }
  bool is_list() const { return kind_ == NodeKind::kList; }
  bool is_container() const { return kind_ == NodeKind::kDict || kind_ == NodeKind::kList; }
  bool is_scalar() const { return !is_container(); }
  /// A string containing "${" (OmegaConf's rule, escaped "\${" included).
  bool is_interpolation() const;
  /// True if this node or any node below it is an interpolation.
  bool has_interpolation() const;

  // Scalar access. These throw ConfigError (with provenance) on a kind mismatch; use view.h for
  // user-facing typed reads with friendlier conversions.
  bool as_bool() const;
  std::int64_t as_int() const;
  /// Float value; an int converts.
  double as_double() const;
  /// The string (also the text of an interpolation).
  const std::string& as_string() const;

  /// Number of dict entries or list elements (0 for scalars).
  std::size_t size() const { return children_.size(); }
  bool empty() const { return children_.empty(); }

  // Dict access (keys in insertion order). On a non-dict these find nothing / throw ConfigError.
  const std::vector<std::string>& keys() const { return keys_; }
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const ConfigNode* find(std::string_view key) const;
  ConfigNode* find(std::string_view key);
  /// Inserts at the end, or replaces the value in place (keeping the key's position). Returns the
  /// stored child. The node must be a dict (throws ConfigError otherwise).
  ConfigNode& set(std::string_view key, ConfigNode value);
  /// Removes a key; false if absent.
  bool erase(std::string_view key);
  /// Index of a key, or nullopt.
  std::optional<std::size_t> index_of(std::string_view key) const;

  // Dict and list children by position.
  const std::vector<ConfigNode>& children() const { return children_; }
  std::vector<ConfigNode>& children() { return children_; }
  const std::string& key_at(std::size_t i) const { return keys_.at(i); }
  const ConfigNode& child_at(std::size_t i) const { return children_.at(i); }
  ConfigNode& child_at(std::size_t i) { return children_.at(i); }

  // List access.
  void push_back(ConfigNode value);
  const ConfigNode& operator[](std::size_t i) const { return children_.at(i); }
  ConfigNode& operator[](std::size_t i) { return children_.at(i); }

  /// Child by one key-path step: dict key, or list index for lists (nullptr if absent/out of range).
  const ConfigNode* child(std::string_view step) const;
  ConfigNode* child(std::string_view step);

  /// Node at a key path ("a.b.0", "a.b[0]"); "" is this node. nullptr if any step is absent or
  /// walks into a scalar.
  const ConfigNode* find_path(std::string_view path) const;
  ConfigNode* find_path(std::string_view path);
  /// Like find_path but throws ConfigError: "<file:line:col: >a.b: key 'c' not found (did you mean
  /// 'cc'?)".
  const ConfigNode& at(std::string_view path) const;
  ConfigNode& at(std::string_view path);
  /// Sets the value at `path`, creating missing parent dicts (a scalar in the way is replaced by a
  /// dict). List elements must exist. Returns the stored node.
  ConfigNode& set_path(std::string_view path, ConfigNode value);
  /// Removes the node at `path`; false if absent.
  bool erase_path(std::string_view path);

  /// Provenance of this value.
  const Provenance& provenance() const;
  const std::shared_ptr<const Provenance>& provenance_ptr() const { return prov_; }
  void set_provenance(Provenance provenance);
  void set_provenance(std::shared_ptr<const Provenance> provenance) { prov_ = std::move(provenance); }
  /// Fluent form: ConfigNode::integer(3).with_provenance(Provenance::from_program("launcher")).
  ConfigNode&& with_provenance(Provenance provenance) &&;
  /// Sets `provenance` on this node and every node below it (fills key_path per node when the
  /// given key_path is the path of this node).
  void set_provenance_recursive(const Provenance& provenance);

  /// Value equality: kind and content (dict key order matters, provenance ignored). NaN == NaN.
  bool operator==(const ConfigNode& other) const;
  bool operator!=(const ConfigNode& other) const { return !(*this == other); }

  /// Python str() of the value as OmegaConf shows it (1.0, True, None, [1, 'a'], {'x': 1}, ???).
  std::string to_python_str() const;

 private:
  NodeKind kind_ = NodeKind::kNull;
  bool bool_ = false;
  std::int64_t int_ = 0;
  double float_ = 0.0;
  std::string string_;
  std::vector<std::string> keys_;      // dict keys, parallel to children_
  std::vector<ConfigNode> children_;   // dict values or list elements
  std::shared_ptr<const Provenance> prov_;
};

/// Deep merge as OmegaConf.merge does: dicts merge key by key (new keys appended in order), lists
/// and scalars are replaced, a MISSING value in `src` does not replace an existing value, null
/// does, interpolations are copied verbatim. The replaced value's provenance becomes `previous` of
/// the new one.
void merge_into(ConfigNode& dst, const ConfigNode& src);
/// The same, consuming `src` (moves its subtrees instead of copying them).
void merge_into(ConfigNode& dst, ConfigNode&& src);

}  // namespace bignlp::config
