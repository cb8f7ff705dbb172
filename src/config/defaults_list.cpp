#include "bignlp/config/defaults_list.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "pyformat.h"
#include "suggest.h"

namespace bignlp::config {

// ---- DefaultsElement --------------------------------------------------------------------------------

std::optional<std::string> DefaultsElement::name() const {
  if (kind == Kind::kGroup) {
    if (options.empty() || options_list) return std::nullopt;
    return options[0];
  }
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool DefaultsElement::is_missing() const {
  const auto n = name();
  return n && *n == "???";
}

bool DefaultsElement::is_interpolation() const {
  if (kind == Kind::kGroup) {
    const auto n = name();
    return n && n->find("${") != std::string::npos;
  }
  return kind == Kind::kConfig && path.find("${") != std::string::npos;
}

std::string DefaultsElement::group_path() const {
  if (kind == Kind::kGroup) {
    const bool absolute = !path.empty() && path[0] == '/';
    const std::string group = absolute ? path.substr(1) : path;
    if (parent_base_dir.empty() || absolute || external_append) return group;
    return parent_base_dir + "/" + group;
  }
  const bool absolute = !path.empty() && path[0] == '/';
  const std::string p = absolute ? path.substr(1) : path;
  const auto slash = p.rfind('/');
  const std::string group = slash == std::string::npos ? std::string() : p.substr(0, slash);
  if (absolute || parent_base_dir.empty()) return group;
  return group.empty() ? parent_base_dir : parent_base_dir + "/" + group;
}

std::string DefaultsElement::config_path() const {
  if (kind == Kind::kGroup) return group_path() + "/" + name().value_or("None");
  const bool absolute = !path.empty() && path[0] == '/';
  const std::string p = absolute ? path.substr(1) : path;
  if (absolute || parent_base_dir.empty()) return p;
  return parent_base_dir + "/" + p;
}

std::string DefaultsElement::default_package() const { return replace_all(group_path(), "/", "."); }

std::string DefaultsElement::final_package(bool default_to_package_header) const {
  std::optional<std::string> pkg = package;
  if (!pkg && default_to_package_header) pkg = package_header;
  std::string p;
  if (pkg) {
    p = *pkg;
  } else if (kind == Kind::kGroup) {
    p = replace_all(!path.empty() && path[0] == '/' ? path.substr(1) : path, "/", ".");
  } else {
    const std::string rel = !path.empty() && path[0] == '/' ? path.substr(1) : path;
    const auto slash = rel.rfind('/');
    p = replace_all(slash == std::string::npos ? std::string() : rel.substr(0, slash), "/", ".");
  }
  const std::string parent = (kind == Kind::kGroup && external_append) ? std::string() : parent_package;
  std::string ret = parent.empty() ? p : (p.empty() ? parent : parent + "." + p);
  const auto g = ret.rfind("_global_");
  if (g == std::string::npos) return ret;
  const std::size_t cut = g + 8 + 1;
  return cut >= ret.size() ? std::string() : ret.substr(cut);
}

std::string DefaultsElement::override_key() const {
  const std::string def = default_package();
  std::string fin = final_package(false);
  std::string key = group_path();
  if (def != fin) {
    if (fin.empty()) fin = "_global_";
    key += "@" + fin;
  }
  return key;
}

std::string DefaultsElement::display() const {
  if (kind == Kind::kSelf) return "_self_";
  std::string kw;
  if (optional) kw += "optional ";
  if (is_override) kw += "override ";
  const std::string at = package ? "@" + *package : "";
  if (kind == Kind::kConfig) return kw + path + at;
  std::string value;
  if (options_list) {
    value = "[" + join(options, ", ") + "]";
  } else {
    value = options.empty() ? "null" : options[0];
  }
  return kw + path + at + ": " + value;
}

// ---- parsing a loaded defaults list -----------------------------------------------------------------

namespace {

struct SplitKey {
  std::string group;
  std::optional<std::string> package;
};

SplitKey split_group(const std::string& text) {
  const auto at = text.find('@');
  if (at == std::string::npos) return {text, std::nullopt};
  return {text.substr(0, at), text.substr(at + 1)};
}

ConfigError entry_error(const ConfigNode& where, const std::string& config_path, const std::string& msg) {
  return ConfigError(fmt::format("{}In '{}': {}", where.provenance().error_prefix(), config_path, msg));
}

void normalize_package(DefaultsElement& e) {
  if (e.package && *e.package == "_here_") e.package = "";
}

std::vector<DefaultsElement> parse_defaults(const ConfigNode& list, const std::string& config_path) {
  std::vector<DefaultsElement> out;
  for (const auto& item : list.children()) {
    DefaultsElement e;
    e.where = item.provenance();
    if (item.is_string()) {
      const SplitKey k = split_group(item.as_string());
      if (k.group == "_self_") {
        if (k.package) throw entry_error(item, config_path, "_self_@PACKAGE is not supported");
        e.kind = DefaultsElement::Kind::kSelf;
        e.path = "_self_";
      } else {
        e.kind = DefaultsElement::Kind::kConfig;
        e.path = k.group;
        e.package = k.package;
      }
    } else if (item.is_dict()) {
      if (item.size() > 1) {
        throw entry_error(item, config_path, fmt::format("Too many keys in default item {}", py::str(item)));
      }
      if (item.size() == 0) throw entry_error(item, config_path, fmt::format("Missing group name in {}", py::str(item)));
      const std::string& key = item.key_at(0);
      const ConfigNode& value = item.child_at(0);
      SplitKey k = split_group(key);
      // Keywords before the group: "optional", "override".
      auto words = split(k.group, ' ');
      std::vector<std::string> parts;
      for (auto& w : words)
        if (!w.empty()) parts.push_back(w);
      if (parts.empty()) throw entry_error(item, config_path, fmt::format("Missing group name in {}", py::str(item)));
      e.kind = DefaultsElement::Kind::kGroup;
      e.path = parts.back();
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (parts[i] == "optional") {
          e.optional = true;
        } else if (parts[i] == "override") {
          e.is_override = true;
        } else {
          break;
        }
      }
      e.package = k.package;
      if (value.is_null()) {
        // disabled group
      } else if (value.is_missing()) {
        e.options = {"???"};
      } else if (value.is_string()) {
        e.options = {value.as_string()};
      } else if (value.is_list()) {
        e.options_list = true;
        for (const auto& o : value.children()) {
          if (!o.is_string()) {
            throw entry_error(o, config_path,
                              fmt::format("Unsupported item value in defaults : {}, nested list items must be strings",
                                          kind_name(o.kind())));
          }
          e.options.push_back(o.as_string());
        }
      } else {
        throw entry_error(value, config_path,
                          fmt::format("Unsupported item value in defaults : {}. Supported: string or list",
                                      kind_name(value.kind())));
      }
    } else {
      throw entry_error(item, config_path, fmt::format("Unsupported type in defaults : {}", kind_name(item.kind())));
    }
    normalize_package(e);
    out.push_back(std::move(e));
  }
  return out;
}

void update_parent(DefaultsElement& e, const std::string& base_dir, const std::string& package) {
  e.parent_base_dir = base_dir;
  e.parent_package = package;
  if (e.package && e.package->find("_group_") != std::string::npos) {
    e.package = "_global_." + replace_all(*e.package, "_group_", e.default_package());
  }
}

void set_package_header(DefaultsElement& e, std::optional<std::string> header) {
  if (!header) return;
  std::string h = *header;
  if (h != "_global_" && h.rfind("_global_.", 0) != 0) h = h.empty() ? "_global_" : "_global_." + h;
  e.package_header = h;
}

// ---- Hydra's Overrides bookkeeping ------------------------------------------------------------------

struct OverrideMeta {
  bool external = false;
  std::optional<std::string> containing_config;
  bool used = false;
};

struct Deletion {
  std::optional<std::string> name;
  bool used = false;
};

template <class V>
struct Ordered {
  std::vector<std::pair<std::string, V>> items;
  V* find(const std::string& k) {
    for (auto& [key, v] : items)
      if (key == k) return &v;
    return nullptr;
  }
  const V* find(const std::string& k) const {
    for (const auto& [key, v] : items)
      if (key == k) return &v;
    return nullptr;
  }
  V& operator[](const std::string& k) {
    if (V* v = find(k)) return *v;
    items.emplace_back(k, V{});
    return items.back().second;
  }
};

struct OverrideState {
  Ordered<std::vector<std::string>> choices;  // value: option(s); empty vector = null
  Ordered<bool> choice_is_list;
  Ordered<OverrideMeta> meta;
  std::vector<DefaultsElement> append;
  std::vector<Override> config_overrides;
  Ordered<std::optional<std::string>> known;
  std::map<std::string, std::set<std::string>> known_per_group;
  Ordered<Deletion> deletions;
};

class Builder {
 public:
  Builder(const ConfigRepository& repo, OverrideState& st, bool skip_missing, std::vector<std::string>& warnings)
      : repo_(repo), st_(st), skip_missing_(skip_missing), warnings_(warnings) {}

  // Returns true when the node got children (a subtree).
  void expand(DefaultsTreeNode& tree, const DefaultsTreeNode* parent_tree, bool is_root_config, bool interpolated) {
    DefaultsElement& parent = tree.node;
    if (parent.kind == DefaultsElement::Kind::kVirtualRoot) {
      // Children are processed from the end: the primary config before hydra/config.
      for (auto it = tree.children.rbegin(); it != tree.children.rend(); ++it) {
        update_parent(it->node, "", "");
        expand(*it, &tree, it->node.primary, false);
      }
      return;
    }
    if (is_root_config) {
      update_parent(parent, "", "");
      if (!repo_.config_exists(parent.config_path())) not_found(tree, parent_tree);
    }
    if (parent.name() && !parent.is_missing() && !parent.is_interpolation()) {
      if (const LoadedConfig* l = repo_.load(parent.config_path())) set_package_header(parent, l->package_header);
    }
    if (is_deleted(parent)) {
      parent.deleted = true;
      st_.deletions.find(parent.override_key())->used = true;
      return;
    }
    set_known_choice(parent);
    if (!parent.name()) return;
    if (check_not_missing(parent)) return;

    const std::string path = parent.config_path();
    const LoadedConfig* loaded = repo_.load(path);
    if (!loaded) {
      if (parent.optional) {
        parent.deleted = true;
        return;
      }
      not_found(tree, parent_tree);
    }
    std::vector<DefaultsElement> defaults;
    if (loaded->defaults) defaults = parse_defaults(*loaded->defaults, path);

    bool self_added = false;
    if (!defaults.empty() || (is_root_config && !st_.append.empty())) {
      self_added = validate_self(parent, defaults, has_content(loaded->content));
    }
    if (is_root_config) {
      for (const auto& a : st_.append) defaults.push_back(a);
    }
    update_overrides(defaults, parent, interpolated);

    std::vector<DefaultsTreeNode> children;  // built in reverse order
    for (auto it = defaults.rbegin(); it != defaults.rend(); ++it) {
      DefaultsElement d = *it;
      if (d.is_self()) {
        update_parent(d, parent.parent_base_dir, parent.final_package());
        children.push_back(leaf(d));
        continue;
      }
      if (d.is_override) continue;
      update_parent(d, parent.group_path(), parent.final_package());
      if (d.is_group() && st_.choices.find(d.override_key())) {
        const std::string key = d.override_key();
        d.options = *st_.choices.find(key);
        d.options_list = *st_.choice_is_list.find(key);
        d.overridden = true;
        st_.meta.find(key)->used = true;
      }
      if (d.is_group() && d.options_list) {
        for (auto o = d.options.rbegin(); o != d.options.rend(); ++o) {
          if (o->find("${") != std::string::npos) {
            throw ConfigError(fmt::format("In '{}': Defaults List interpolation is not supported in options list items",
                                          path));
          }
          DefaultsElement c;
          c.kind = DefaultsElement::Kind::kConfig;
          c.path = d.path + "/" + *o;
          c.package = d.package;
          c.optional = d.optional;
          c.where = d.where;
          update_parent(c, parent.group_path(), parent.final_package());
          children.push_back(child(c, tree, interpolated));
        }
        continue;
      }
      if (d.is_interpolation()) {
        DefaultsTreeNode deferred = leaf(d);
        deferred.has_children = false;
        children.push_back(std::move(deferred));
        continue;
      }
      children.push_back(child(d, tree, interpolated));
    }

    // Deferred interpolations: resolved against the choices known now.
    for (auto& c : children) {
      if (c.has_children || !c.node.is_interpolation() || c.node.is_self()) continue;
      resolve_interpolation(c.node, defaults, self_added);
      update_parent(c.node, parent.group_path(), parent.final_package());
      DefaultsTreeNode sub;
      sub.node = c.node;
      expand(sub, &tree, false, true);
      c = std::move(sub);
    }

    if (!children.empty()) {
      std::reverse(children.begin(), children.end());
      tree.children = std::move(children);
      tree.has_children = true;
    }
  }

 private:
  const ConfigRepository& repo_;
  OverrideState& st_;
  bool skip_missing_;
  std::vector<std::string>& warnings_;

  static DefaultsTreeNode leaf(const DefaultsElement& e) {
    DefaultsTreeNode n;
    n.node = e;
    return n;
  }

  DefaultsTreeNode child(const DefaultsElement& e, const DefaultsTreeNode& parent_tree, bool interpolated) {
    DefaultsTreeNode n;
    n.node = e;
    expand(n, &parent_tree, false, interpolated);
    return n;
  }

  static bool has_content(const ConfigNode& content) {
    for (std::size_t i = 0; i < content.size(); ++i)
      if (!content.child_at(i).is_missing()) return true;
    return false;
  }

  bool validate_self(const DefaultsElement& containing, std::vector<DefaultsElement>& defaults, bool has_config_content) {
    bool has_self = false, has_non_override = false;
    for (const auto& d : defaults) {
      if (!d.is_override) has_non_override = true;
      if (d.is_self()) {
        if (has_self) throw ConfigError(fmt::format("Duplicate _self_ defined in {}", containing.config_path()));
        has_self = true;
      }
    }
    if ((!has_self && has_non_override) || defaults.empty()) {
      if (containing.primary && has_config_content && has_non_override) {
        warnings_.push_back(fmt::format(
            "In '{}': Defaults list is missing `_self_`: its content is merged after its defaults (bignlp and Hydra >= "
            "1.1 order). Add `- _self_` to the defaults list to make the order explicit.",
            containing.config_path()));
      }
      DefaultsElement self;
      self.kind = DefaultsElement::Kind::kSelf;
      self.path = "_self_";
      defaults.push_back(self);
    }
    return !has_self;
  }

  bool is_deleted(const DefaultsElement& d) {
    if (!d.is_group()) return false;
    Deletion* del = st_.deletions.find(d.override_key());
    if (!del) return false;
    return !del->name || (d.name() && *del->name == *d.name());
  }

  void set_known_choice(const DefaultsElement& d) {
    if (!d.is_group()) return;
    const std::string key = d.override_key();
    const std::optional<std::string> value = d.options_list ? std::optional<std::string>(join(d.options, ",")) : d.name();
    if (auto* prev = st_.known.find(key)) {
      if (*prev != value) {
        throw ConfigError(fmt::format("{}Multiple values for {}. To override a value use 'override {}: {}'",
                                      d.where.error_prefix(), key, key, prev->value_or("null")));
      }
    } else {
      st_.known[key] = value;
    }
    st_.known_per_group[d.group_path()].insert(key);
  }

  bool check_not_missing(const DefaultsElement& d) {
    if (!d.is_missing()) return false;
    if (skip_missing_) return true;
    if (d.is_group()) {
      const std::string key = d.override_key();
      std::string opts;
      for (const auto& o : repo_.group_options_recursive(d.group_path())) opts += "\n\t" + o;
      throw ConfigError(fmt::format("You must specify '{}', e.g, {}=<OPTION>\nAvailable options:{}", key, key, opts));
    }
    throw ConfigError(fmt::format("Missing ConfigDefault is not supported : {}", d.config_path()));
  }

  void update_overrides(std::vector<DefaultsElement>& defaults, const DefaultsElement& parent, bool interpolated) {
    bool seen_override = false;
    const DefaultsElement* last_override = nullptr;
    for (auto& d : defaults) {
      if (d.is_self()) continue;
      update_parent(d, parent.group_path(), parent.final_package());
      if (seen_override && !(d.is_override || d.external_append)) {
        throw ConfigError(fmt::format(
            "{}In {}: Override '{} : {}' is defined before '{}: {}'.\nOverrides must be at the end of the defaults list",
            d.where.error_prefix(), parent.config_path(), last_override->override_key(),
            last_override->name().value_or("null"), d.is_group() ? d.override_key() : d.config_path(),
            d.name().value_or("null")));
      }
      if (d.is_group() && d.is_override) {
        seen_override = true;
        last_override = &d;
        if (interpolated) {
          throw ConfigError(fmt::format(
              "{}: Default List Overrides are not allowed in the subtree\nof an in interpolated config group "
              "(override {}={}).",
              parent.config_path(), d.override_key(), d.name().value_or("null")));
        }
        const std::string key = d.override_key();
        if (!st_.choices.find(key)) {
          st_.choices[key] = d.options;
          st_.choice_is_list[key] = d.options_list;
          OverrideMeta m;
          m.containing_config = parent.config_path();
          st_.meta[key] = m;
        }
      }
    }
  }

  void resolve_interpolation(DefaultsElement& d, const std::vector<DefaultsElement>& defaults, bool self_added) {
    (void)defaults;
    (void)self_added;
    const std::string value = d.is_group() ? *d.name() : d.path;
    // ${ key } with key a known choice (a string) is replaced; anything left is an error.
    std::string out;
    std::size_t i = 0;
    while (i < value.size()) {
      const auto open = value.find("${", i);
      if (open == std::string::npos) {
        out += value.substr(i);
        break;
      }
      const auto close = value.find('}', open + 2);
      const auto brace = value.find('{', open + 2);
      if (close == std::string::npos || (brace != std::string::npos && brace < close)) {
        out += value.substr(i);
        break;
      }
      out += value.substr(i, open - i);
      const std::string key(trim(std::string_view(value).substr(open + 2, close - open - 2)));
      const auto* known = st_.known.find(key);
      if (known && *known) {
        out += **known;
      } else {
        out += value.substr(open, close + 1 - open);
      }
      i = close + 1;
    }
    if (out.find("${") != std::string::npos) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : st_.known.items) keys.push_back(k);
      if (keys.empty()) throw ConfigError(fmt::format("{}Error resolving interpolation '{}'", d.where.error_prefix(), value));
      throw ConfigError(fmt::format("{}Error resolving interpolation '{}', possible interpolation keys: {}",
                                    d.where.error_prefix(), value, join(keys, ", ")));
    }
    if (d.is_group()) {
      d.options = {out};
    } else {
      d.path = out;
    }
  }

  [[noreturn]] void not_found(const DefaultsTreeNode& tree, const DefaultsTreeNode* parent_tree) {
    const DefaultsElement& e = tree.node;
    std::string msg;
    if (e.primary) {
      msg = fmt::format("Cannot find primary config '{}'. Check that it's in your config search path.\n", e.config_path());
    } else {
      if (e.is_group()) {
        msg = fmt::format("Could not find '{}'\n", e.config_path());
        const auto options = repo_.group_options_recursive(e.group_path());
        if (!options.empty()) {
          msg += fmt::format("\nAvailable options in '{}':", e.group_path());
          for (const auto& o : options) msg += "\n\t" + o;
          if (const auto close = suggest(*e.name(), options)) msg += fmt::format("\nDid you mean '{}'?", *close);
          msg += "\n";
        }
      } else {
        msg = fmt::format("Could not load '{}'.\n", e.config_path());
      }
      if (parent_tree && parent_tree->node.kind != DefaultsElement::Kind::kVirtualRoot) {
        msg = fmt::format("In '{}': {}", parent_tree->node.config_path(), msg);
      }
      msg = e.where.error_prefix() + msg;
    }
    msg += "\nConfig search path:";
    for (const auto& s : repo_.search_path()) msg += "\n\t" + s.to_string();
    throw ConfigError(msg);
  }
};

void collect(const DefaultsTreeNode& tree, const DefaultsTreeNode* parent, std::vector<ResultDefault>& out);

void emit(const DefaultsTreeNode* tree_node, const DefaultsElement& node, const DefaultsTreeNode* tree_parent,
          std::vector<ResultDefault>& out) {
  if (node.deleted || node.is_missing()) return;
  if (node.kind == DefaultsElement::Kind::kVirtualRoot) return;
  if (!node.is_self() && !node.name()) return;
  ResultDefault r;
  if (node.is_self()) {
    r.config_path = tree_node->node.config_path();
    r.is_self = true;
    if (tree_parent && tree_parent->node.kind != DefaultsElement::Kind::kVirtualRoot)
      r.parent = tree_parent->node.config_path();
    r.package = tree_node->node.final_package();
    r.primary = tree_node->node.primary;
  } else {
    r.config_path = node.config_path();
    if (tree_node && tree_node->node.kind != DefaultsElement::Kind::kVirtualRoot) r.parent = tree_node->node.config_path();
    r.package = node.final_package();
    if (node.is_group()) r.override_key = node.override_key();
    r.primary = node.primary;
  }
  out.push_back(std::move(r));
}

void collect(const DefaultsTreeNode& tree, const DefaultsTreeNode* parent, std::vector<ResultDefault>& out) {
  if (!tree.has_children || tree.children.empty()) {
    emit(parent, tree.node, nullptr, out);
    return;
  }
  for (const auto& c : tree.children) {
    if (!c.has_children) {
      if (c.node.is_self()) {
        emit(&tree, c.node, parent, out);
      } else {
        emit(&tree, c.node, nullptr, out);
      }
    } else {
      collect(c, &tree, out);
    }
  }
}

// The overrides of config groups go into `st` (choices, appends, deletions); the others are
// config overrides, applied after composition.
void sort_overrides(const ConfigRepository& repo, const std::vector<Override>& overrides, OverrideState& st,
                    DefaultsList& result) {
  for (const auto& ov : overrides) {
    if (ov.is_sweep()) continue;
    const bool is_group = repo.group_exists(ov.key);
    if (ov.value.is_dict() || !is_group) {
      result.config_overrides.push_back(ov);
      continue;
    }
    if (ov.is_force_add()) {
      throw OverrideError(fmt::format("force-add of config groups is not supported: '{}'", ov.input));
    }
    if (ov.is_delete()) {
      if (ov.has_value && !ov.value.is_string() && !ov.value.is_null()) {
        throw OverrideError(fmt::format("Config group override deletion value must be a string : {}", ov.input));
      }
      Deletion d;
      if (ov.has_value && ov.value.is_string()) d.name = ov.value.as_string();
      st.deletions[ov.key_element()] = d;
      continue;
    }
    if (!ov.value.is_string() && !ov.value.is_list()) {
      throw OverrideError(fmt::format("Config group override must be a string or a list. Got {} (in '{}')",
                                      ov.value.is_null()     ? "NoneType"
                                      : ov.value.is_bool()   ? "bool"
                                      : ov.value.is_int()    ? "int"
                                      : ov.value.is_float()  ? "float"
                                                             : kind_name(ov.value.kind()),
                                      ov.input));
    }
    std::vector<std::string> opts;
    const bool is_list = ov.value.is_list();
    if (is_list) {
      for (const auto& o : ov.value.children()) {
        if (!o.is_string()) throw OverrideError(fmt::format("Config group override list items must be strings: '{}'", ov.input));
        opts.push_back(o.as_string());
      }
    } else {
      opts.push_back(ov.value.as_string());
    }
    if (ov.is_add()) {
      DefaultsElement e;
      e.kind = DefaultsElement::Kind::kGroup;
      e.path = ov.key;
      e.package = ov.package;
      e.options = opts;
      e.options_list = is_list;
      e.external_append = true;
      e.where = Provenance::from_override(ov.index, ov.input);
      normalize_package(e);
      st.append.push_back(std::move(e));
      continue;
    }
    const std::string key = ov.key_element();
    st.choices[key] = opts;
    st.choice_is_list[key] = is_list;
    OverrideMeta m;
    m.external = true;
    st.meta[key] = m;
  }
}

// The root of the defaults tree: the primary config, under a virtual root next to hydra/config.
DefaultsTreeNode defaults_root(std::string_view config_name, bool with_hydra) {
  DefaultsElement primary;
  primary.kind = DefaultsElement::Kind::kConfig;
  primary.path = std::string(config_name);
  primary.primary = true;
  DefaultsTreeNode root;
  if (!with_hydra) {
    root.node = primary;
    return root;
  }
  root.node.kind = DefaultsElement::Kind::kVirtualRoot;
  DefaultsTreeNode hydra_node;
  hydra_node.node.kind = DefaultsElement::Kind::kConfig;
  hydra_node.node.path = "hydra/config";
  DefaultsTreeNode primary_node;
  primary_node.node = primary;
  root.children = {std::move(hydra_node), std::move(primary_node)};
  root.has_children = true;
  return root;
}

// Hydra's ensure_no_duplicates_in_list.
void check_no_duplicates(const std::vector<ResultDefault>& defaults) {
  std::set<std::string> keys;
  for (const auto& d : defaults) {
    if (d.is_self || !d.override_key) continue;
    if (!keys.insert(*d.override_key).second)
      throw ConfigError(fmt::format("{} appears more than once in the final defaults list", *d.override_key));
  }
}

// Hydra's ensure_overrides_used: every group override and deletion matched an entry.
void check_overrides_used(const OverrideState& st) {
  for (const auto& [key, meta] : st.meta.items) {
    if (meta.used) continue;
    const std::string group = key.substr(0, key.find('@'));
    const auto it = st.known_per_group.find(group);
    const std::set<std::string> choices = it == st.known_per_group.end() ? std::set<std::string>{} : it->second;
    std::string msg;
    if (choices.size() > 1) {
      msg = fmt::format("Could not override '{}'.\nDid you mean to override one of {}?", key,
                        join(std::vector<std::string>(choices.begin(), choices.end()), ", "));
    } else if (choices.size() == 1) {
      msg = fmt::format("Could not override '{}'.\nDid you mean to override {}?", key, *choices.begin());
    } else {
      msg = fmt::format("Could not override '{}'. No match in the defaults list.", key);
    }
    if (meta.containing_config) msg = fmt::format("In '{}': {}", *meta.containing_config, msg);
    if (meta.external) {
      const auto& opts = *st.choices.find(key);
      const bool is_list = *st.choice_is_list.find(key);
      msg += fmt::format("\nTo append to your default list use +{}={}", key,
                         is_list ? "[" + join(opts, ",") + "]" : (opts.empty() ? std::string("null") : opts[0]));
      throw OverrideError(msg);
    }
    throw ConfigError(msg);
  }
  for (const auto& [key, del] : st.deletions.items) {
    if (del.used) continue;
    const std::string desc = del.name ? key + "=" + *del.name : key;
    throw OverrideError(fmt::format("Could not delete '{}'. No match in the defaults list", desc));
  }
}

}  // namespace

DefaultsList create_defaults_list(const ConfigRepository& repo, std::string_view config_name,
                                  const std::vector<Override>& overrides, bool with_hydra, bool skip_missing) {
  OverrideState st;
  DefaultsList result;
  sort_overrides(repo, overrides, st, result);
  DefaultsTreeNode root = defaults_root(config_name, with_hydra);
  Builder builder(repo, st, skip_missing, result.warnings);
  builder.expand(root, nullptr, true, false);
  result.tree = root;
  collect(result.tree, nullptr, result.defaults);
  check_no_duplicates(result.defaults);
  check_overrides_used(st);
  for (const auto& [k, v] : st.known.items) result.choices.push_back(GroupChoice{k, v});
  return result;
}

namespace {

void format_tree(const DefaultsTreeNode& t, int depth, std::string& out) {
  const std::string pad(static_cast<std::size_t>(depth) * 2, ' ');
  const DefaultsElement& e = t.node;
  std::string label;
  if (e.kind == DefaultsElement::Kind::kVirtualRoot) {
    label = "<root>";
  } else if (e.is_self()) {
    label = "_self_";
  } else if (e.is_group()) {
    label = fmt::format("{}: {}", e.override_key(),
                        e.options_list ? "[" + join(e.options, ", ") + "]" : e.name().value_or("null"));
  } else {
    label = e.config_path();
  }
  if (e.deleted) label += " (deleted)";
  if (e.overridden) label += " (overridden)";
  out += pad + label + (t.has_children ? ":" : "") + "\n";
  for (const auto& c : t.children) format_tree(c, depth + 1, out);
}

}  // namespace

std::string format_defaults_tree(const DefaultsTreeNode& tree) {
  std::string out;
  format_tree(tree, 0, out);
  return out;
}

std::string format_defaults_list(const std::vector<ResultDefault>& defaults) {
  std::size_t w_path = 11, w_pkg = 7, w_parent = 6;
  for (const auto& d : defaults) {
    w_path = std::max(w_path, d.config_path.size());
    w_pkg = std::max(w_pkg, d.package.size());
    w_parent = std::max(w_parent, d.parent.value_or("").size());
  }
  std::string out = fmt::format("| {:<{}} | {:<{}} | {:<6} | {:<{}} |\n", "Config path", w_path, "Package", w_pkg,
                                "_self_", "Parent", w_parent);
  out += std::string(w_path + w_pkg + w_parent + 6 + 13, '-') + "\n";
  for (const auto& d : defaults) {
    out += fmt::format("| {:<{}} | {:<{}} | {:<6} | {:<{}} |\n", d.config_path, w_path, d.package, w_pkg,
                       d.is_self ? "True" : "False", d.parent.value_or(""), w_parent);
  }
  return out;
}

}  // namespace bignlp::config
