// Defaults lists: which configs compose the final config, in which order, at which package.
//
// Implements Hydra 1.3's algorithm (hydra/_internal/defaults_list.py): the tree is expanded
// depth-first with each list processed from its end (so `override` entries of later configs, e.g.
// an experiment, take effect before earlier entries are expanded); `_self_` places a config's own
// content (appended at the end when absent); command-line group overrides win over `override`
// entries; `optional` tolerates a missing option; `null` disables a group; `???` demands a choice;
// `+group=opt` appends to the primary config's list; `~group` deletes; `${group}` interpolations in
// option names are resolved against the final choices. Every override must match something.
//
// Packages: an entry's package is relative to the including config's package (a defaults-list
// `@pkg`, "_here_", "_group_", "_global_"); a "# @package X" header is absolute; the default is the
// group path with dots. Errors are ConfigError in Hydra's wording (see docs/config_errors.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/override.h"
#include "bignlp/config/provenance.h"
#include "bignlp/config/repository.h"

namespace bignlp::config {

/// One entry of a defaults list (Hydra's InputDefault), as written plus what expansion learned.
struct DefaultsElement {
  enum class Kind { kSelf, kConfig, kGroup, kVirtualRoot };
  Kind kind = Kind::kConfig;
  /// kConfig: config path as written ("db/mysql", "/abs", "file"); kGroup: group as written.
  std::string path;
  /// kGroup: the selected option(s); empty = null (disabled). "???" = must be chosen.
  std::vector<std::string> options;
  bool options_list = false;  ///< written as GROUP: [a, b]
  std::optional<std::string> package;
  bool optional = false;
  bool is_override = false;
  bool external_append = false;  ///< added by +group=option
  bool primary = false;
  Provenance where;  ///< file:line of the entry

  // Filled during expansion.
  std::string parent_base_dir;
  std::string parent_package;
  std::optional<std::string> package_header;
  bool deleted = false;
  bool overridden = false;  ///< the option was replaced by an override

  bool is_self() const { return kind == Kind::kSelf; }
  bool is_group() const { return kind == Kind::kGroup; }
  /// The option (kGroup) or path (kConfig); nullopt for a null group default.
  std::optional<std::string> name() const;
  bool is_missing() const;        ///< option "???"
  bool is_interpolation() const;  ///< option contains "${"
  /// Absolute group path ("server/db"); for kConfig the directory of the path.
  std::string group_path() const;
  /// Absolute config path ("server/db/mysql").
  std::string config_path() const;
  /// Group path with dots.
  std::string default_package() const;
  /// Where the content lands ("" = root).
  std::string final_package(bool default_to_package_header = true) const;
  /// Key used by overrides: group path, plus "@pkg" when the package is not the default.
  std::string override_key() const;
  /// How the entry was written ("db: mysql", "override db: sqlite", "db/mysql@pkg", "_self_").
  std::string display() const;
};

/// The expanded tree. Leaves have no children; a config with a defaults list has its entries
/// (and `_self_`) as children.
struct DefaultsTreeNode {
  DefaultsElement node;
  std::vector<DefaultsTreeNode> children;
  bool has_children = false;
};

/// One config to merge, in order (Hydra's ResultDefault).
struct ResultDefault {
  std::string config_path;
  std::string package;  ///< "" = root
  bool is_self = false;
  bool primary = false;
  std::optional<std::string> parent;
  std::optional<std::string> override_key;
};

/// The final choice of a group ("training" -> "gpt3/5b"; nullopt when disabled with null).
struct GroupChoice {
  std::string key;
  std::optional<std::string> option;
};

struct DefaultsList {
  std::vector<ResultDefault> defaults;
  DefaultsTreeNode tree;
  /// The overrides that address config values (not groups), in command-line order.
  std::vector<Override> config_overrides;
  /// Every group default seen (hydra's runtime.choices), in discovery order.
  std::vector<GroupChoice> choices;
  std::vector<std::string> warnings;
};

/// Builds the defaults list for `config_name` with `overrides` (sweeps must be expanded already).
/// `with_hydra` prepends bignlp's built-in hydra/config. `skip_missing` tolerates unchosen "???"
/// groups (used by --help).
DefaultsList create_defaults_list(const ConfigRepository& repo, std::string_view config_name,
                                  const std::vector<Override>& overrides, bool with_hydra = true,
                                  bool skip_missing = false);

/// The tree as `--info defaults-tree` prints it.
std::string format_defaults_tree(const DefaultsTreeNode& tree);
/// The list as `--info defaults` prints it (a table).
std::string format_defaults_list(const std::vector<ResultDefault>& defaults);

}  // namespace bignlp::config
