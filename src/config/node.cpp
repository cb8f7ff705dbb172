#include "bignlp/config/node.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "pyformat.h"
#include "suggest.h"

namespace bignlp::config {
namespace {

const std::shared_ptr<const Provenance>& unknown_provenance() {
  static const auto kUnknown = std::make_shared<const Provenance>();
  return kUnknown;
}

bool parse_index(std::string_view step, std::size_t& index) {
  if (step.empty() || step.size() > 18) return false;
  std::size_t v = 0;
  for (char c : step) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::size_t>(c - '0');
  }
  index = v;
  return true;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const auto m = suggest(word, candidates);
  if (!m) return {};
  return fmt::format(" (did you mean '{}'?)", *m);
}

}  // namespace

const char* kind_name(NodeKind kind) {
  switch (kind) {
    case NodeKind::kNull: return "null";
    case NodeKind::kBool: return "bool";
    case NodeKind::kInt: return "int";
    case NodeKind::kFloat: return "float";
    case NodeKind::kString: return "string";
    case NodeKind::kMissing: return "missing";
    case NodeKind::kDict: return "dict";
    case NodeKind::kList: return "list";
  }
  return "?";
}

std::vector<std::string> split_key_path(std::string_view path) {
  std::vector<std::string> out;
  std::string cur;
  bool have = false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '.') {
      if (have) out.push_back(cur);
      cur.clear();
      have = false;
    } else if (c == '[') {
      if (have) out.push_back(cur);
      cur.clear();
      have = false;
      const auto close = path.find(']', i + 1);
      if (close == std::string_view::npos) {
        cur = std::string(path.substr(i));
        have = true;
        break;
      }
      out.emplace_back(path.substr(i + 1, close - i - 1));
      i = close;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(cur);
  return out;
}

std::string join_key_path(const std::vector<std::string>& parts) { return join(parts, "."); }

std::string child_key_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

ConfigNode::ConfigNode() : prov_(unknown_provenance()) {}

ConfigNode ConfigNode::null_value() { return ConfigNode(); }

ConfigNode ConfigNode::boolean(bool value) {
  ConfigNode n;
  n.kind_ = NodeKind::kBool;
  n.bool_ = value;
  return n;
}

ConfigNode ConfigNode::integer(std::int64_t value) {
  ConfigNode n;
  n.kind_ = NodeKind::kInt;
  n.int_ = value;
  return n;
}

ConfigNode ConfigNode::floating(double value) {
  ConfigNode n;
  n.kind_ = NodeKind::kFloat;
  n.float_ = value;
  return n;
}

ConfigNode ConfigNode::string(std::string value) {
  ConfigNode n;
  n.kind_ = NodeKind::kString;
  n.string_ = std::move(value);
  return n;
}

ConfigNode ConfigNode::missing() {
  ConfigNode n;
  n.kind_ = NodeKind::kMissing;
  return n;
}

ConfigNode ConfigNode::dict() {
  ConfigNode n;
  n.kind_ = NodeKind::kDict;
  return n;
}

ConfigNode ConfigNode::dict_of(std::vector<std::pair<std::string, ConfigNode>> entries) {
  ConfigNode n = dict();
  n.keys_.reserve(entries.size());
  n.children_.reserve(entries.size());
  for (auto& [k, v] : entries) {
    n.keys_.push_back(std::move(k));
    n.children_.push_back(std::move(v));
  }
  return n;
}

ConfigNode ConfigNode::list() {
  ConfigNode n;
  n.kind_ = NodeKind::kList;
  return n;
}

bool ConfigNode::is_interpolation() const {
  return kind_ == NodeKind::kString && string_.find("${") != std::string::npos;
}

bool ConfigNode::has_interpolation() const {
  if (is_interpolation()) return true;
  for (const auto& c : children_)
    if (c.has_interpolation()) return true;
  return false;
}

namespace {
[[noreturn]] void kind_mismatch(const ConfigNode& n, const char* wanted) {
  throw ConfigError(fmt::format("{}{}expected {}, got {} ({})", n.provenance().error_prefix(),
                                n.provenance().key_path.empty() ? "" : n.provenance().key_path + ": ", wanted,
                                n.is_string() ? py::str_repr(n.as_string()) : py::str(n), kind_name(n.kind())));
}
}  // namespace

bool ConfigNode::as_bool() const {
  if (kind_ != NodeKind::kBool) kind_mismatch(*this, "bool");
  return bool_;
}

std::int64_t ConfigNode::as_int() const {
  if (kind_ != NodeKind::kInt) kind_mismatch(*this, "int");
  return int_;
}

double ConfigNode::as_double() const {
  if (kind_ == NodeKind::kInt) return static_cast<double>(int_);
  if (kind_ != NodeKind::kFloat) kind_mismatch(*this, "float");
  return float_;
}

const std::string& ConfigNode::as_string() const {
  if (kind_ != NodeKind::kString) kind_mismatch(*this, "string");
  return string_;
}

std::optional<std::size_t> ConfigNode::index_of(std::string_view key) const {
  if (kind_ != NodeKind::kDict) return std::nullopt;
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key) return i;
  return std::nullopt;
}

const ConfigNode* ConfigNode::find(std::string_view key) const {
  const auto i = index_of(key);
  return i ? &children_[*i] : nullptr;
}

ConfigNode* ConfigNode::find(std::string_view key) {
  const auto i = index_of(key);
  return i ? &children_[*i] : nullptr;
}

ConfigNode& ConfigNode::set(std::string_view key, ConfigNode value) {
  if (kind_ != NodeKind::kDict) {
    throw ConfigError(fmt::format("{}cannot set key '{}' on a {} value", provenance().error_prefix(), key,
                                  kind_name(kind_)));
  }
  if (const auto i = index_of(key)) {
    children_[*i] = std::move(value);
    return children_[*i];
  }
  keys_.emplace_back(key);
  children_.push_back(std::move(value));
  return children_.back();
}

bool ConfigNode::erase(std::string_view key) {
  const auto i = index_of(key);
  if (!i) return false;
  keys_.erase(keys_.begin() + static_cast<std::ptrdiff_t>(*i));
  children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(*i));
  return true;
}

void ConfigNode::push_back(ConfigNode value) {
  if (kind_ != NodeKind::kList) {
    throw ConfigError(fmt::format("{}cannot append to a {} value", provenance().error_prefix(), kind_name(kind_)));
  }
  children_.push_back(std::move(value));
}

const ConfigNode* ConfigNode::child(std::string_view step) const {
  if (kind_ == NodeKind::kDict) return find(step);
  if (kind_ == NodeKind::kList) {
    std::size_t i;
    if (parse_index(step, i) && i < children_.size()) return &children_[i];
  }
  return nullptr;
}

ConfigNode* ConfigNode::child(std::string_view step) {
  return const_cast<ConfigNode*>(static_cast<const ConfigNode*>(this)->child(step));
}

const ConfigNode* ConfigNode::find_path(std::string_view path) const {
  const ConfigNode* cur = this;
  for (const auto& step : split_key_path(path)) {
    cur = cur->child(step);
    if (!cur) return nullptr;
  }
  return cur;
}

ConfigNode* ConfigNode::find_path(std::string_view path) {
  return const_cast<ConfigNode*>(static_cast<const ConfigNode*>(this)->find_path(path));
}

const ConfigNode& ConfigNode::at(std::string_view path) const {
  const ConfigNode* cur = this;
  std::string walked;
  for (const auto& step : split_key_path(path)) {
    const ConfigNode* next = cur->child(step);
    if (!next) {
      const std::string full = child_key_path(walked, step);
      const std::string where = walked.empty() ? std::string("the config root") : "'" + walked + "'";
      if (cur->is_dict()) {
        throw ConfigError(fmt::format("{}{}: key '{}' not found in {}{}", cur->provenance().error_prefix(), full,
                                      step, where, did_you_mean(step, cur->keys())));
      }
      if (cur->is_list()) {
        throw ConfigError(fmt::format("{}{}: index '{}' out of range for the list {} of size {}",
                                      cur->provenance().error_prefix(), full, step, where, cur->size()));
      }
      throw ConfigError(fmt::format("{}{}: {} is a {} value, not a dict or list", cur->provenance().error_prefix(), full,
                                    where, kind_name(cur->kind())));
    }
    cur = next;
    walked = child_key_path(walked, step);
  }
  return *cur;
}

ConfigNode& ConfigNode::at(std::string_view path) {
  return const_cast<ConfigNode&>(static_cast<const ConfigNode*>(this)->at(path));
}

ConfigNode& ConfigNode::set_path(std::string_view path, ConfigNode value) {
  const auto steps = split_key_path(path);
  if (steps.empty()) {
    *this = std::move(value);
    return *this;
  }
  ConfigNode* cur = this;
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    if (cur->is_list()) {
      ConfigNode* next = cur->child(steps[i]);
      if (!next) {
        throw ConfigError(fmt::format("{}: index '{}' out of range (list of size {})",
                                      join_key_path({steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(i + 1)}),
                                      steps[i], cur->size()));
      }
      cur = next;
      continue;
    }
    if (!cur->is_dict()) *cur = ConfigNode::dict();
    ConfigNode* next = cur->find(steps[i]);
    if (!next || !next->is_container()) next = &cur->set(steps[i], ConfigNode::dict());
    cur = next;
  }
  if (cur->is_list()) {
    ConfigNode* slot = cur->child(steps.back());
    if (!slot) {
      throw ConfigError(fmt::format("{}: index '{}' out of range (list of size {})", std::string(path), steps.back(),
                                    cur->size()));
    }
    *slot = std::move(value);
    return *slot;
  }
  if (!cur->is_dict()) *cur = ConfigNode::dict();
  return cur->set(steps.back(), std::move(value));
}

bool ConfigNode::erase_path(std::string_view path) {
  auto steps = split_key_path(path);
  if (steps.empty()) return false;
  const std::string last = steps.back();
  steps.pop_back();
  ConfigNode* parent = find_path(join_key_path(steps));
  if (!parent) return false;
  if (parent->is_dict()) return parent->erase(last);
  if (parent->is_list()) {
    std::size_t i;
    if (!parse_index(last, i) || i >= parent->children_.size()) return false;
    parent->children_.erase(parent->children_.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

const Provenance& ConfigNode::provenance() const { return *prov_; }

void ConfigNode::set_provenance(Provenance provenance) {
  prov_ = std::make_shared<const Provenance>(std::move(provenance));
}

ConfigNode&& ConfigNode::with_provenance(Provenance provenance) && {
  set_provenance(std::move(provenance));
  return std::move(*this);
}

void ConfigNode::set_provenance_recursive(const Provenance& provenance) {
  set_provenance(provenance);
  for (std::size_t i = 0; i < children_.size(); ++i) {
    Provenance p = provenance;
    const std::string step = is_dict() ? keys_[i] : std::to_string(i);
    p.key_path = child_key_path(provenance.key_path, step);
    children_[i].set_provenance_recursive(p);
  }
}

bool ConfigNode::operator==(const ConfigNode& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case NodeKind::kNull:
    case NodeKind::kMissing:
      return true;
    case NodeKind::kBool:
      return bool_ == other.bool_;
    case NodeKind::kInt:
      return int_ == other.int_;
    case NodeKind::kFloat:
      return float_ == other.float_ || (std::isnan(float_) && std::isnan(other.float_));
    case NodeKind::kString:
      return string_ == other.string_;
    case NodeKind::kDict:
      return keys_ == other.keys_ && children_ == other.children_;
    case NodeKind::kList:
      return children_ == other.children_;
  }
  return false;
}

std::string ConfigNode::to_python_str() const { return py::str(*this); }

namespace {

void merge_impl(ConfigNode& dst, const ConfigNode& src, const std::string& path) {
  if (src.is_missing() && !dst.is_missing()) return;
  if (dst.is_dict() && src.is_dict()) {
    for (std::size_t i = 0; i < src.size(); ++i) {
      const std::string& key = src.key_at(i);
      const ConfigNode& sv = src.child_at(i);
      ConfigNode* dv = dst.find(key);
      if (!dv) {
        dst.set(key, sv);
        continue;
      }
      merge_impl(*dv, sv, child_key_path(path, key));
    }
    return;
  }
  if ((dst.is_dict() && src.is_list()) || (dst.is_list() && src.is_dict())) {
    const Provenance& sp = src.provenance();
    throw ConfigError(fmt::format("{}{}: cannot merge a {} into a {} (the {} is defined at {})", sp.error_prefix(),
                                  path.empty() ? std::string("<root>") : path, kind_name(src.kind()),
                                  kind_name(dst.kind()), kind_name(dst.kind()), dst.provenance().location()));
  }
  // Replacement: keep the history of what was replaced (scalars only; containers keep theirs).
  ConfigNode replaced = src;
  if (src.is_scalar() && dst.provenance().origin != Provenance::Origin::kUnknown) {
    Provenance p = src.provenance();
    p.previous = dst.provenance_ptr();
    replaced.set_provenance(std::move(p));
  }
  dst = std::move(replaced);
}

}  // namespace

void merge_into(ConfigNode& dst, const ConfigNode& src) { merge_impl(dst, src, ""); }

namespace {

void merge_move(ConfigNode& dst, ConfigNode&& src, const std::string& path) {
  if (dst.is_dict() && src.is_dict()) {
    for (std::size_t i = 0; i < src.size(); ++i) {
      ConfigNode& sv = src.child_at(i);
      ConfigNode* dv = dst.find(src.key_at(i));
      if (!dv) {
        dst.set(src.key_at(i), std::move(sv));
      } else if (dv->is_dict() && sv.is_dict()) {
        merge_move(*dv, std::move(sv), child_key_path(path, src.key_at(i)));
      } else {
        merge_impl(*dv, sv, child_key_path(path, src.key_at(i)));
      }
    }
    return;
  }
  merge_impl(dst, src, path);
}

}  // namespace

void merge_into(ConfigNode& dst, ConfigNode&& src) { merge_move(dst, std::move(src), ""); }

}  // namespace bignlp::config
