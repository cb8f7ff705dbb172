#include "bignlp/config/view.h"

#include <fmt/format.h>

#include <set>

#include "bignlp/core/strings.h"
#include "interpolation_engine.h"
#include "pyformat.h"
#include "suggest.h"

namespace bignlp::config {

namespace view_detail {
namespace {
std::string shown(const ConfigNode& n) {
  if (n.is_string()) return py::str_repr(n.as_string());
  if (n.is_null()) return "null";
  if (n.is_dict()) return "a dict";
  if (n.is_list()) return "a list";
  return fmt::format("{} ({})", py::str(n), kind_name(n.kind()));
}
[[noreturn]] void mismatch(const ConfigNode& n, const std::string& path, const char* want) {
  if (n.is_missing()) {
    throw InterpolationError(InterpolationErrorKind::kMissing,
                             fmt::format("{}{}: Missing mandatory value (?\?\?); set it, e.g. {}=<value>",
                                         n.provenance().error_prefix(), path, path));
  }
  throw ConfigError(fmt::format("{}{}: expected {}, got {}", n.provenance().error_prefix(), path, want, shown(n)));
}
}  // namespace

bool to_bool(const ConfigNode& n, const std::string& path) {
  if (!n.is_bool()) mismatch(n, path, "bool");
  return n.as_bool();
}
std::int64_t to_int(const ConfigNode& n, const std::string& path) {
  if (!n.is_int()) mismatch(n, path, "int");
  return n.as_int();
}
double to_double(const ConfigNode& n, const std::string& path) {
  if (!n.is_int() && !n.is_float()) mismatch(n, path, "float");
  return n.as_double();
}
std::string to_string(const ConfigNode& n, const std::string& path) {
  if (n.is_string()) return n.as_string();
  if (n.is_int() || n.is_float() || n.is_bool()) return py::str(n);
  mismatch(n, path, "string");
}
void expect_kind(const ConfigNode& n, const std::string& path, NodeKind kind) {
  if (n.kind() != kind) mismatch(n, path, kind == NodeKind::kList ? "list" : "dict");
}
void out_of_range(const ConfigNode& n, const std::string& path, const char* type) {
  throw ConfigError(fmt::format("{}{}: value {} is out of range for {}", n.provenance().error_prefix(), path, py::str(n), type));
}
}  // namespace view_detail

std::optional<std::string> scalar_text(const ConfigNode& node) {
  switch (node.kind()) {
    case NodeKind::kString: return node.as_string();
    case NodeKind::kInt: return fmt::format("{}", node.as_int());
    case NodeKind::kBool: return node.as_bool() ? std::string("true") : std::string("false");
    case NodeKind::kFloat: return py::str(node);
    default: return std::nullopt;
  }
}

struct ConfigView::State {
  ConfigNode root;
  ResolverRegistry owned;
  const ResolverRegistry* registry = nullptr;
  std::unique_ptr<Engine> engine;
  std::set<std::string> used;
  std::set<std::string> asked;  // every key a reader asked for, present or not (for suggestions)
};

ConfigView::ConfigView(const ConfigNode& root, const ResolverRegistry* resolvers) : state_(std::make_shared<State>()) {
  state_->root = root;
  if (resolvers) {
    state_->registry = resolvers;
  } else {
    state_->owned = ResolverRegistry::with_builtins();
    state_->registry = &state_->owned;
  }
  state_->engine = std::make_unique<Engine>(state_->root, *state_->registry, ResolveMode::kStrict, nullptr);
}

ConfigView::ConfigView(std::shared_ptr<State> state, std::string prefix) : state_(std::move(state)), prefix_(std::move(prefix)) {}
ConfigView::~ConfigView() = default;
ConfigView::ConfigView(const ConfigView&) = default;
ConfigView& ConfigView::operator=(const ConfigView&) = default;

ConfigView ConfigView::sub(std::string_view path) const {
  const std::string full = full_path(path);
  const ConfigNode& n = require(full);
  if (!n.is_dict() && !n.is_list()) view_detail::expect_kind(n, full, NodeKind::kDict);
  state_->used.erase(full);  // a sub-view tracks its own keys
  return ConfigView(state_, full);
}

std::string ConfigView::full_path(std::string_view path) const { return child_key_path(prefix_, path); }

const ConfigNode* ConfigView::lookup(const std::string& full) const {
  state_->asked.insert(full);
  const Path steps = split_key_path(full);
  ConfigNode* n = state_->engine->node_at(steps);
  if (!n) return nullptr;
  if (n->has_interpolation()) {
    (void)state_->engine->select_path(steps, /*missing_as_absent=*/false);
    n = state_->engine->node_at(steps);
    if (!n) return nullptr;
  }
  state_->used.insert(full);
  return n;
}

const ConfigNode& ConfigView::require(const std::string& full) const {
  if (const ConfigNode* n = lookup(full)) return *n;
  // Find the deepest existing ancestor for the location and a suggestion.
  auto steps = split_key_path(full);
  const std::string missing = steps.back();
  steps.pop_back();
  const ConfigNode* parent = state_->root.find_path(join_key_path(steps));
  std::string where, hint;
  if (parent) {
    where = parent->provenance().error_prefix();
    if (parent->is_dict()) {
      if (const auto m = suggest(missing, parent->keys()))
        hint = fmt::format(" (did you mean '{}'?)", child_key_path(join_key_path(steps), *m));
    }
  }
  throw ConfigError(fmt::format("{}{}: required key is missing{}", where, full, hint));
}

std::vector<std::string> ConfigView::string_list(std::string_view path) const {
  const std::string full = full_path(path);
  const ConfigNode* n = lookup(full);
  if (!n || n->is_null()) return {};
  if (!n->is_list()) {
    if (n->is_dict()) view_detail::expect_kind(*n, full, NodeKind::kList);
    return {view_detail::to_string(*n, full)};
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n->size(); ++i) {
    if (!(*n)[i].is_null()) out.push_back(view_detail::to_string((*n)[i], child_key_path(full, std::to_string(i))));
  }
  return out;
}

std::string ConfigView::as_override(std::string_view path) const {
  const std::string full = full_path(path);
  const ConfigNode* n = lookup(full);
  std::string value = "null";
  if (n && !n->is_null()) value = scalar_text(*n).value_or(py::str(*n));
  return full + "=" + value;
}

bool ConfigView::has(std::string_view path) const {
  const Path steps = split_key_path(full_path(path));
  const ConfigNode* n = state_->engine->node_at(steps);
  if (!n) return false;
  if (n->is_interpolation()) {
    auto v = state_->engine->select_path(steps, true);
    return v && !v->is_null();
  }
  return !n->is_null();
}

std::vector<std::string> ConfigView::keys(std::string_view path) const {
  const Path steps = split_key_path(full_path(path));
  const ConfigNode* n = state_->engine->node_at(steps);
  if (!n || !n->is_dict()) return {};
  return n->keys();
}

const Provenance* ConfigView::provenance(std::string_view path) const {
  const ConfigNode* n = state_->root.find_path(full_path(path));
  return n ? &n->provenance() : nullptr;
}

void ConfigView::mark_used(std::string_view path) const { state_->used.insert(full_path(path)); }

namespace {
void leaves(const ConfigNode& n, const std::string& path, std::vector<std::pair<std::string, const ConfigNode*>>& out) {
  if (n.is_container() && !n.empty()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      leaves(n.child_at(i), child_key_path(path, n.is_dict() ? n.key_at(i) : std::to_string(i)), out);
    return;
  }
  out.emplace_back(path, &n);
}
}  // namespace

std::vector<std::string> ConfigView::unused_keys() const {
  std::vector<std::string> out;
  const ConfigNode* base = state_->root.find_path(prefix_);
  if (!base) return out;
  std::vector<std::pair<std::string, const ConfigNode*>> all;
  leaves(*base, prefix_, all);
  for (const auto& [path, node] : all) {
    bool used = false;
    std::string p = path;
    for (;;) {
      if (state_->used.count(p)) {
        used = true;
        break;
      }
      if (p.empty() || p == prefix_) break;
      const auto dot = p.find_last_of(".");
      p = dot == std::string::npos ? std::string() : p.substr(0, dot);
      if (p.size() < prefix_.size()) break;
    }
    if (!used) out.push_back(path);
  }
  return out;
}

void ConfigView::check_all_used(std::string_view what) const {
  const auto unused = unused_keys();
  if (unused.empty()) return;
  std::string msg = fmt::format("unknown key{} in {} (nothing reads {}; remove {} or fix the spelling):",
                                unused.size() == 1 ? "" : "s", what, unused.size() == 1 ? "it" : "them",
                                unused.size() == 1 ? "it" : "them");
  for (const auto& path : unused) {
    const ConfigNode* n = state_->root.find_path(path);
    std::string loc = n ? n->provenance().location() : std::string();
    std::string hint;
    const auto dot = path.find_last_of('.');
    const std::string parent = dot == std::string::npos ? std::string() : path.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
    std::vector<std::string> used_siblings;
    for (const auto& u : state_->asked) {
      const auto udot = u.find_last_of('.');
      const std::string uparent = udot == std::string::npos ? std::string() : u.substr(0, udot);
      if (uparent == parent) used_siblings.push_back(udot == std::string::npos ? u : u.substr(udot + 1));
    }
    if (const auto m = suggest(leaf, used_siblings)) hint = fmt::format(" (did you mean '{}'?)", child_key_path(parent, *m));
    msg += fmt::format("\n  {}{}{}", loc.empty() || loc == "<unknown>" ? "" : loc + ": ", path, hint);
  }
  throw ConfigError(msg);
}

}  // namespace bignlp::config
