#include "bignlp/launch/stage_config.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::launch {

std::optional<std::string> scalar_text(const config::ConfigNode& node) {
  switch (node.kind()) {
    case config::NodeKind::kString: return node.as_string();
    case config::NodeKind::kInt: return fmt::format("{}", node.as_int());
    case config::NodeKind::kBool: return node.as_bool() ? std::string("true") : std::string("false");
    case config::NodeKind::kFloat: return node.to_python_str();
    default: return std::nullopt;
  }
}

StageConfig::StageConfig(std::string stage, config::ConfigNode resolved)
    : stage_(std::move(stage)), node_(std::move(resolved)) {}

std::string StageConfig::key(std::string_view path) const {
  return path.empty() ? stage_ : stage_ + "." + std::string(path);
}

std::string StageConfig::show(std::string_view path) const {
  const config::ConfigNode* n = node_.find_path(path);
  std::string value = "null";
  if (n && !n->is_null()) value = scalar_text(*n).value_or(n->to_python_str());
  return key(path) + "=" + value;
}

std::string StageConfig::origin(std::string_view path) const {
  const config::ConfigNode* n = node_.find_path(path);
  if (!n) return "";
  const config::Provenance& p = n->provenance();
  if (p.origin == config::Provenance::Origin::kFile || p.origin == config::Provenance::Origin::kOverride) {
    return " (" + p.location() + ")";
  }
  return "";
}

void StageConfig::fail(std::string_view path, const std::string& message) const {
  throw ConfigError(fmt::format("{}{}", key(path), message.empty() ? "" : ": " + message) + origin(path));
}

const config::ConfigNode& StageConfig::at(std::string_view path) const {
  const config::ConfigNode* n = node_.find_path(path);
  if (!n || n->is_null()) {
    fail(path, "this key is required and is missing or null (set it in the config or with " + key(path) + "=...)");
  }
  return *n;
}

bool StageConfig::has(std::string_view path) const {
  const config::ConfigNode* n = node_.find_path(path);
  return n && !n->is_null();
}

std::int64_t StageConfig::get_int(std::string_view path) const {
  const config::ConfigNode& n = at(path);
  if (n.is_int()) return n.as_int();
  fail(path, fmt::format("expected an integer, got {} '{}'", config::kind_name(n.kind()),
                         scalar_text(n).value_or(n.to_python_str())));
}

std::optional<std::int64_t> StageConfig::opt_int(std::string_view path) const {
  if (!has(path)) return std::nullopt;
  return get_int(path);
}

bool StageConfig::get_bool(std::string_view path) const {
  const config::ConfigNode& n = at(path);
  if (n.is_bool()) return n.as_bool();
  fail(path, fmt::format("expected true or false, got '{}'", scalar_text(n).value_or(n.to_python_str())));
}

bool StageConfig::opt_bool(std::string_view path, bool fallback) const {
  return has(path) ? get_bool(path) : fallback;
}

std::string StageConfig::get_string(std::string_view path) const {
  const config::ConfigNode& n = at(path);
  if (auto s = scalar_text(n)) return *s;
  fail(path, fmt::format("expected a single value, got a {}", config::kind_name(n.kind())));
}

std::optional<std::string> StageConfig::opt_string(std::string_view path) const {
  if (!has(path)) return std::nullopt;
  return get_string(path);
}

std::vector<std::string> StageConfig::string_list(std::string_view path) const {
  std::vector<std::string> out;
  if (!has(path)) return out;
  const config::ConfigNode& n = at(path);
  if (!n.is_list()) {
    if (auto s = scalar_text(n)) return {*s};
    fail(path, "expected a list");
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const config::ConfigNode& item = n[i];
    if (item.is_null()) continue;
    auto s = scalar_text(item);
    if (!s) fail(fmt::format("{}.{}", path, i), "expected a single value in this list");
    out.push_back(*s);
  }
  return out;
}

}  // namespace bignlp::launch
