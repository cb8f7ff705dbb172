#include "bignlp/config/interpolate.h"

#include <fmt/format.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "bignlp/core/strings.h"
#include "interpolation_engine.h"
#include "interpolation_grammar.h"
#include "pyformat.h"
#include "suggest.h"

namespace bignlp::config {

const char* interpolation_error_kind_name(InterpolationErrorKind kind) {
  switch (kind) {
    case InterpolationErrorKind::kGrammar: return "grammar";
    case InterpolationErrorKind::kKeyNotFound: return "interpolation_key";
    case InterpolationErrorKind::kResolution: return "resolution";
    case InterpolationErrorKind::kResolver: return "resolver";
    case InterpolationErrorKind::kUnsupportedResolver: return "unsupported_resolver";
    case InterpolationErrorKind::kCycle: return "cycle";
    case InterpolationErrorKind::kMissing: return "missing";
    case InterpolationErrorKind::kToMissing: return "interpolation_to_missing";
  }
  return "?";
}

// ---- registry ------------------------------------------------------------------------------------

ResolverRegistry::ResolverRegistry()
    : env_([](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (!v) return std::nullopt;
        return std::string(v);
      }) {}

void ResolverRegistry::add(const std::string& name, ResolverFn fn, bool replace) {
  if (!replace && resolvers_.count(name)) throw ConfigError(fmt::format("resolver '{}' is already registered", name));
  resolvers_[name] = std::move(fn);
}

bool ResolverRegistry::contains(std::string_view name) const { return resolvers_.find(name) != resolvers_.end(); }

const ResolverFn* ResolverRegistry::find(std::string_view name) const {
  const auto it = resolvers_.find(name);
  return it == resolvers_.end() ? nullptr : &it->second;
}

std::vector<std::string> ResolverRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : resolvers_) out.push_back(k);
  return out;
}

void ResolverRegistry::set_environment(std::function<std::optional<std::string>(std::string_view)> env) {
  env_ = std::move(env);
}

std::optional<std::string> ResolverRegistry::getenv(std::string_view name) const { return env_(name); }

// ---- grammar errors ------------------------------------------------------------------------------

std::string grammar_error_message(std::string_view text, const grammar::GrammarError& e) {
  // Show the value with a caret under the offending byte (clamped to the text's end).
  const std::size_t at = std::min<std::size_t>(e.offset(), text.size());
  std::string shown(text);
  for (char& c : shown)
    if (c == '\n' || c == '\t') c = ' ';
  return fmt::format("malformed interpolation: {}\n    {}\n    {}^", e.what(), shown, std::string(at, ' '));
}

void validate_interpolation(std::string_view text) {
  try {
    (void)grammar::parse_text(text);
  } catch (const grammar::GrammarError& e) {
    throw InterpolationError(InterpolationErrorKind::kGrammar, grammar_error_message(text, e));
  }
}

// ---- engine --------------------------------------------------------------------------------------

namespace {

std::string path_text(const Path& p) { return p.empty() ? std::string("<root>") : join_key_path(p); }

std::string located(const ConfigNode& n, const Path& p) {
  return fmt::format("{}{}: ", n.provenance().error_prefix(), path_text(p));
}

}  // namespace

Engine::Engine(ConfigNode& root, const ResolverRegistry& registry, ResolveMode mode, std::vector<std::string>* warnings)
    : root_(root), registry_(registry), mode_(mode), warnings_(warnings) {}

bool Engine::is_interp(const ConfigNode& n) const { return n.is_interpolation() && !literal_.count(&n); }

const grammar::Text& Engine::parse(const ConfigNode& n, const Path& p) {
  const std::string& s = n.as_string();
  auto it = cache_.find(s);
  if (it != cache_.end()) return *it->second;
  try {
    auto t = std::make_shared<grammar::Text>(grammar::parse_text(s));
    return *cache_.emplace(s, std::move(t)).first->second;
  } catch (const grammar::GrammarError& e) {
    throw InterpolationError(InterpolationErrorKind::kGrammar, located(n, p) + grammar_error_message(s, e));
  }
}

[[noreturn]] void Engine::fail(InterpolationErrorKind kind, const std::string& message) {
  throw Failure{kind, message};
}

Engine::ActiveContainer::ActiveContainer(Engine& engine, const ConfigNode& node, const Path& path)
    : engine_(engine), node_(&node) {
  if (engine_.active_.count(node_)) {
    fail(InterpolationErrorKind::kCycle, fmt::format("Recursive interpolation detected through '{}'", path_text(path)));
  }
  engine_.active_.insert(node_);
}

Engine::ActiveContainer::~ActiveContainer() { engine_.active_.erase(node_); }

Engine::Val Engine::eval_node(ConfigNode& n, const Path& p) {
  if (active_.count(&n)) {
    std::string chain;
    for (const auto& [node, path] : stack_) chain += path_text(path) + " -> ";
    chain += path_text(p);
    fail(InterpolationErrorKind::kCycle, fmt::format("Recursive interpolation detected: {}", chain));
  }
  if (stack_.size() >= 200) {
    fail(InterpolationErrorKind::kResolution,
         fmt::format("interpolations chained more than 200 deep (resolving '{}')", path_text(p)));
  }
  const grammar::Text& text = parse(n, p);
  active_.insert(&n);
  stack_.emplace_back(&n, p);
  struct Pop {
    Engine* e;
    ConfigNode* n;
    ~Pop() {
      e->active_.erase(n);
      e->stack_.pop_back();
    }
  } pop{this, &n};
  try {
    if (text.single_interpolation()) return eval_interp(*text.parts[0].interp, p);
    std::string out;
    for (const auto& part : text.parts) {
      if (part.interp) {
        Val v = eval_interp(*part.interp, p);
        out += str_of(v);
      } else {
        out += part.literal;
      }
      check_string_size(out);
    }
    Val v;
    v.owned = ConfigNode::string(std::move(out));
    v.is_string_result = true;
    return v;
  } catch (const Failure& f) {
    throw InterpolationError(f.kind, fmt::format("{}{} in '{}'", located(n, p), f.message, n.as_string()));
  }
}

void Engine::check_string_size(const std::string& s) {
  if (s.size() > kMaxStringBytes) {
    fail(InterpolationErrorKind::kResolution,
         fmt::format("an interpolated string grows past {} MiB (interpolations doubling at each level?); see "
                     "docs/config.md \"Limits\"",
                     kMaxStringBytes >> 20));
  }
}

std::string Engine::str_of(Val& v) {
  if (v.ref) return py::str(*v.ref);
  return py::str(v.owned);
}

std::string Engine::key_string(Val v, const std::string& source) {
  ConfigNode value = v.ref ? *v.ref : std::move(v.owned);
  if (!value.is_string()) {
    fail(InterpolationErrorKind::kResolution,
         fmt::format("the interpolation '{}' is used as (part of) a key and must give a string, but gave {} ({})",
                     source, py::repr(value), kind_name(value.kind())));
  }
  return value.as_string();
}

Engine::Val Engine::eval_interp(const grammar::Interp& it, const Path& p) {
  if (!it.is_resolver) {
    // As OmegaConf does: the key is the concatenated text (segments from nested interpolations
    // included), then split again, so "${${ref}.p}" with ref=".opts" is the relative ".opts.p".
    std::string key_text(static_cast<std::size_t>(it.dots), '.');
    for (std::size_t i = 0; i < it.key.size(); ++i) {
      const auto& seg = it.key[i];
      const std::string part = seg.interp ? key_string(eval_interp(*seg.interp, p), seg.interp->source) : seg.text;
      if (i > 0) key_text += '.';
      key_text += part;
    }
    int dots = 0;
    while (static_cast<std::size_t>(dots) < key_text.size() && key_text[static_cast<std::size_t>(dots)] == '.') ++dots;
    const auto keys = split_key_path(std::string_view(key_text).substr(static_cast<std::size_t>(dots)));
    Val v = lookup(dots, keys, p, key_text, /*for_select=*/false);
    return v;
  }
  std::vector<std::string> name_parts;
  for (const auto& seg : it.name) {
    if (seg.interp) {
      Val v = eval_interp(*seg.interp, p);
      ConfigNode value = v.ref ? *v.ref : std::move(v.owned);
      if (!value.is_string()) {
        fail(InterpolationErrorKind::kResolution,
             fmt::format("the name of a resolver must be a string, but '{}' gave {} ({})", seg.interp->source,
                         py::repr(value), kind_name(value.kind())));
      }
      name_parts.push_back(value.as_string());
    } else {
      name_parts.push_back(seg.text);
    }
  }
  const std::string name = join(name_parts, ".");
  const ResolverFn* fn = registry_.find(name);
  if (!fn) {
    std::string hint;
    if (const auto m = suggest(name, registry_.names())) hint = fmt::format(" (did you mean '{}'?)", *m);
    fail(InterpolationErrorKind::kUnsupportedResolver, fmt::format("Unsupported interpolation type {}{}", name, hint));
  }
  std::vector<ConfigNode> args;
  args.reserve(it.args.size());
  for (const auto& e : it.args) args.push_back(eval_element(e, p));
  Val v;
  const Path saved = current_;
  current_ = p;
  last_select_ref_ = nullptr;
  try {
    v.owned = (*fn)(args, *this);
  } catch (const Failure&) {
    current_ = saved;
    throw;
  } catch (const InterpolationError&) {
    current_ = saved;
    throw;
  } catch (const std::exception& e) {
    current_ = saved;
    fail(InterpolationErrorKind::kResolver, fmt::format("resolver '{}' failed: {}", name, e.what()));
  }
  current_ = saved;
  // A resolver handing back exactly the container it selected (oc.select, oc.deprecated) returns
  // that node itself, as OmegaConf does: interpolations inside it stay relative to its place.
  if (last_select_ref_ && v.owned.is_container() && v.owned == *last_select_ref_) {
    v.ref = last_select_ref_;
    v.ref_path = last_select_path_;
    v.owned = ConfigNode();
  }
  last_select_ref_ = nullptr;
  v.is_string_result = v.owned.is_string();
  return v;
}

ConfigNode Engine::eval_element(const grammar::Element& e, const Path& p) {
  using grammar::Element;
  using grammar::TokenType;
  switch (e.kind) {
    case Element::Kind::kEmpty:
      return ConfigNode::string("");
    case Element::Kind::kQuoted: {
      if (e.quoted.parts.empty()) return ConfigNode::string("");
      std::string out;
      for (const auto& part : e.quoted.parts) {
        if (part.interp) {
          Val v = eval_interp(*part.interp, p);
          out += str_of(v);
        } else {
          out += part.literal;
        }
        check_string_size(out);
      }
      return ConfigNode::string(std::move(out));
    }
    case Element::Kind::kList: {
      ConfigNode out = ConfigNode::list();
      for (const auto& item : e.items) out.push_back(eval_element(item, p));
      return out;
    }
    case Element::Kind::kDict: {
      ConfigNode out = ConfigNode::dict();
      for (const auto& entry : e.entries) {
        ConfigNode key = primitive(entry.key, p);
        out.set(key.is_string() ? key.as_string() : py::str(key), eval_element(entry.value, p));
      }
      return out;
    }
    case Element::Kind::kPrimitive:
      return primitive(e.tokens, p);
  }
  return {};
}

namespace {
std::string unescape(const std::string& esc) {
  std::string out;
  for (std::size_t i = 1; i < esc.size(); i += 2) out += esc[i];
  return out;
}
}  // namespace

ConfigNode Engine::primitive(const std::vector<grammar::Token>& tokens, const Path& p) {
  using grammar::TokenType;
  if (tokens.size() == 1) {
    const auto& t = tokens[0];
    switch (t.type) {
      case TokenType::kId:
      case TokenType::kUnquoted:
      case TokenType::kColon:
      case TokenType::kWs:
        return ConfigNode::string(t.text);
      case TokenType::kNull:
        return ConfigNode::null_value();
      case TokenType::kInt: {
        long long v;
        if (!lexer::int_token_value(t.text, v))
          fail(InterpolationErrorKind::kResolution, fmt::format("integer '{}' does not fit in 64 bits", t.text));
        return ConfigNode::integer(v);
      }
      case TokenType::kFloat:
        return ConfigNode::floating(py::parse_float(t.text));
      case TokenType::kBool:
        return ConfigNode::boolean(to_lower(t.text) == "true");
      case TokenType::kEsc:
        return ConfigNode::string(unescape(t.text));
      case TokenType::kInterp:
        return value_of(eval_interp(*t.interp, p));
    }
  }
  std::string out;
  for (const auto& t : tokens) {
    if (t.type == TokenType::kEsc) {
      out += unescape(t.text);
    } else if (t.type == TokenType::kInterp) {
      Val v = eval_interp(*t.interp, p);
      out += str_of(v);
    } else {
      out += t.text;
    }
    check_string_size(out);
  }
  return ConfigNode::string(std::move(out));
}

ConfigNode Engine::value_of(Val v) {
  if (v.ref) return materialize(*v.ref, v.ref_path);
  return std::move(v.owned);
}

namespace {
// Python int() of a list index key: digits with single '_' separators, optional sign.
bool parse_list_index(const std::string& key, long long& out) {
  if (!py::is_int(key)) return false;
  std::string clean;
  for (char c : key)
    if (c != '_' && c != ' ' && c != '\t') clean += c;
  return lexer::int_token_value(clean, out);
}
}  // namespace

ConfigNode* Engine::deref_container(ConfigNode* cur, Path& cur_path, const std::string& key_text) {
  while (cur->is_interpolation() && is_interp(*cur)) {
    Val v = eval_node(*cur, cur_path);
    if (v.ref) {
      cur = v.ref;
      cur_path = v.ref_path;
    } else if (v.owned.is_container()) {
      *cur = std::move(v.owned);  // memo: the node's value is this container from now on
    } else {
      *cur = std::move(v.owned);
      if (cur->is_string()) literal_.insert(cur);
      break;
    }
  }
  return cur;
}

Engine::Val Engine::lookup(int dots, const std::vector<std::string>& keys, const Path& p, const std::string& key_text,
                           bool for_select) {
  Path base;
  if (dots > 0) {
    base = p;
    if (!base.empty()) base.pop_back();
    for (int i = 1; i < dots; ++i) {
      if (base.empty()) {
        if (for_select) throw NotFound{};
        fail(InterpolationErrorKind::kKeyNotFound, fmt::format("Error resolving key '{}': it goes above the root", key_text));
      }
      base.pop_back();
    }
  }
  // The base is an ancestor of the node being resolved: it exists and is a container.
  ConfigNode* cur = &root_;
  Path cur_path;
  for (const auto& step : base) {
    cur = deref_container(cur, cur_path, key_text);
    ConfigNode* next = cur->child(step);
    if (!next) {
      if (for_select) throw NotFound{};
      fail(InterpolationErrorKind::kKeyNotFound, fmt::format("Interpolation key '{}' not found", key_text));
    }
    cur = next;
    cur_path.push_back(step);
  }
  for (const auto& step : keys) {
    cur = deref_container(cur, cur_path, key_text);
    if (cur->is_missing()) {
      if (for_select) throw NotFound{};
      fail(InterpolationErrorKind::kToMissing,
           fmt::format("interpolation key '{}' goes through '{}', which is a missing mandatory value (?\?\?)", key_text,
                       path_text(cur_path)));
    }
    if (cur->is_dict()) {
      ConfigNode* next = cur->find(step);
      if (!next) {
        if (for_select) throw NotFound{};
        std::string hint;
        if (const auto m = suggest(step, cur->keys()))
          hint = fmt::format(" (did you mean '{}'?)", child_key_path(join_key_path(cur_path), *m));
        fail(InterpolationErrorKind::kKeyNotFound, fmt::format("Interpolation key '{}' not found{}", key_text, hint));
      }
      cur = next;
      cur_path.push_back(step);
    } else if (cur->is_list()) {
      long long idx;
      if (!parse_list_index(step, idx)) {
        fail(InterpolationErrorKind::kResolution,
             fmt::format("interpolation key '{}': '{}' is a list and '{}' is not an integer index", key_text,
                         path_text(cur_path), step));
      }
      if (idx < 0 || static_cast<std::size_t>(idx) >= cur->size()) {
        if (for_select) throw NotFound{};
        fail(InterpolationErrorKind::kKeyNotFound,
             fmt::format("Interpolation key '{}' not found: index {} is out of range for '{}' (size {})", key_text, idx,
                         path_text(cur_path), cur->size()));
      }
      cur = &cur->children()[static_cast<std::size_t>(idx)];
      cur_path.push_back(std::to_string(idx));
    } else {
      fail(InterpolationErrorKind::kResolution,
           fmt::format("interpolation key '{}': node '{}' is a {} value and cannot contain '{}'", key_text,
                       path_text(cur_path), kind_name(cur->kind()), step));
    }
  }
  // Pointing at an ancestor of the node being resolved.
  if (!for_select && cur_path.size() < p.size() && std::equal(cur_path.begin(), cur_path.end(), p.begin())) {
    fail(InterpolationErrorKind::kCycle,
         fmt::format("Interpolation to parent node detected: '{}' is an ancestor of '{}'", key_text, path_text(p)));
  }
  if (cur->is_missing()) {
    if (for_select) throw NotFound{};
    fail(InterpolationErrorKind::kToMissing,
         fmt::format("interpolation '{}' points to a missing mandatory value (?\?\?); set it, e.g. {}=<value>", key_text,
                     path_text(cur_path)));
  }
  if (is_interp(*cur)) {
    Val v = eval_node(*cur, cur_path);
    // The final target may be reached through the target's own interpolation: it must not be an
    // ancestor of the node being resolved either.
    if (!for_select && v.ref && v.ref_path.size() < p.size() && std::equal(v.ref_path.begin(), v.ref_path.end(), p.begin())) {
      fail(InterpolationErrorKind::kCycle,
           fmt::format("Interpolation to parent node detected: '{}' leads to '{}', an ancestor of '{}'", key_text,
                       path_text(v.ref_path), path_text(p)));
    }
    if (mode_ == ResolveMode::kStrict && !v.ref) {
      // Memoize: the target's value is final in strict mode.
      ConfigNode value = v.owned;
      value.set_provenance(cur->provenance_ptr());
      *cur = std::move(value);
      if (cur->is_string()) literal_.insert(cur);
      if (cur->is_container()) {
        Val r;
        r.ref = cur;
        r.ref_path = cur_path;
        return r;
      }
    } else if (!v.ref && v.owned.is_container()) {
      // A resolver produced a container: give it a home so relative interpolations inside work.
      *cur = std::move(v.owned);
      Val r;
      r.ref = cur;
      r.ref_path = cur_path;
      return r;
    }
    return v;
  }
  Val v;
  if (cur->is_container()) {
    v.ref = cur;
    v.ref_path = cur_path;
  } else {
    v.owned = *cur;
  }
  return v;
}

ConfigNode Engine::materialize(ConfigNode& node, const Path& path) {
  if (node.is_container()) {
    const ActiveContainer active(*this, node, path);
    ConfigNode out = node.is_dict() ? ConfigNode::dict() : ConfigNode::list();
    out.set_provenance(node.provenance_ptr());
    Path child_path = path;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string step = node.is_dict() ? node.key_at(i) : std::to_string(i);
      child_path.push_back(step);
      ConfigNode value = materialize(node.child_at(i), child_path);
      child_path.pop_back();
      if (node.is_dict()) {
        out.set(step, std::move(value));
      } else {
        out.push_back(std::move(value));
      }
    }
    return out;
  }
  if (!is_interp(node)) return node;
  Val v = eval_node(node, path);
  if (v.ref) {
    ConfigNode out = materialize(*v.ref, v.ref_path);
    if (mode_ == ResolveMode::kStrict) node = out;  // memo: an interpolation node has no children
    return out;
  }
  if (v.owned.is_container()) {
    node = std::move(v.owned);
    return materialize(node, path);
  }
  ConfigNode out = std::move(v.owned);
  Provenance prov = node.provenance();
  prov.note = node.as_string();
  out.set_provenance(std::move(prov));
  if (mode_ == ResolveMode::kStrict) {
    node = out;
    if (node.is_string()) literal_.insert(&node);
  }
  return out;
}

void Engine::walk(ConfigNode& node, Path& path) {
  if (node.is_container()) {
    const ActiveContainer active(*this, node, path);
    for (std::size_t i = 0; i < node.size(); ++i) {
      path.push_back(node.is_dict() ? node.key_at(i) : std::to_string(i));
      walk(node.child_at(i), path);
      path.pop_back();
    }
    return;
  }
  if (!is_interp(node)) return;
  Val v;
  try {
    v = eval_node(node, path);
  } catch (const InterpolationError& e) {
    if (mode_ == ResolveMode::kHydra && e.kind() == InterpolationErrorKind::kToMissing) {
      auto prov = node.provenance_ptr();
      node = ConfigNode::missing();
      node.set_provenance(prov);
      return;
    }
    throw;
  }
  const auto prov = node.provenance_ptr();
  if (v.ref) {
    if (mode_ == ResolveMode::kHydra) {
      Path target_path = v.ref_path;
      walk(*v.ref, target_path);
      ConfigNode copy = *v.ref;
      node = std::move(copy);
    } else {
      node = materialize(*v.ref, v.ref_path);
    }
    return;
  }
  if (v.owned.is_container()) {
    node = std::move(v.owned);
    node.set_provenance(prov);
    walk(node, path);
    return;
  }
  Provenance p = *prov;
  p.note = node.as_string();
  if (mode_ == ResolveMode::kHydra && v.owned.is_interpolation()) {
    // OmegaConf.resolve writes the result back, and a string containing "${" is parsed again
    // when it is stored: it must be a well-formed interpolation.
    try {
      (void)grammar::parse_text(v.owned.as_string());
    } catch (const grammar::GrammarError& e) {
      throw InterpolationError(
          InterpolationErrorKind::kGrammar,
          fmt::format("{}the resolved value is written back and read again as an interpolation, but it does not "
                      "parse: {}",
                      located(node, path), grammar_error_message(v.owned.as_string(), e)));
    }
  }
  node = std::move(v.owned);
  node.set_provenance(std::move(p));
  if (mode_ == ResolveMode::kStrict && node.is_string()) literal_.insert(&node);
}

void Engine::resolve_all(const std::string& subtree) {
  Path path = split_key_path(subtree);
  ConfigNode* start = node_at(path);
  if (!start) throw ConfigError(fmt::format("{}: key not found", subtree));
  try {
    walk(*start, path);
  } catch (const Failure& f) {
    throw InterpolationError(f.kind, f.message);
  }
}

ConfigNode* Engine::node_at(const Path& path) {
  ConfigNode* cur = &root_;
  Path cur_path;
  try {
    for (const auto& step : path) {
      cur = deref_container(cur, cur_path, join_key_path(path));
      ConfigNode* next = cur->child(step);
      if (!next) return nullptr;
      cur = next;
      cur_path.push_back(step);
    }
  } catch (const Failure& f) {
    throw InterpolationError(f.kind, f.message);
  }
  return cur;
}

std::optional<ConfigNode> Engine::select_path(const Path& path, bool missing_as_absent, bool resolve_containers) {
  ConfigNode* n = node_at(path);
  if (!n) return std::nullopt;
  try {
    if (!resolve_containers && (n->is_container() || is_interp(*n))) {
      if (n->is_container()) return *n;
      Val v = eval_node(*n, path);
      if (v.ref) return *v.ref;
      return std::move(v.owned);
    }
    if (n->is_missing()) {
      if (missing_as_absent) return std::nullopt;
      throw InterpolationError(InterpolationErrorKind::kMissing,
                               fmt::format("{}Missing mandatory value: {} (set it on the command line: {}=<value>)",
                                           n->provenance().error_prefix(), path_text(path), path_text(path)));
    }
    return materialize(*n, path);
  } catch (const Failure& f) {
    throw InterpolationError(f.kind, f.message);
  }
}

// ---- ResolverContext -----------------------------------------------------------------------------

std::optional<ConfigNode> Engine::select(std::string_view key) {
  int dots = 0;
  while (static_cast<std::size_t>(dots) < key.size() && key[static_cast<std::size_t>(dots)] == '.') ++dots;
  const auto keys = split_key_path(key.substr(static_cast<std::size_t>(dots)));
  // oc.select's key is relative to the node's parent when it starts with '.', absolute otherwise.
  const Path p = current_;
  try {
    Val v = lookup(dots, keys, p, std::string(key), /*for_select=*/true);
    if (v.ref) {
      // Containers come back as they are (unresolved), like OmegaConf's select; the engine turns a
      // resolver result equal to this node back into a reference to it.
      last_select_ref_ = v.ref;
      last_select_path_ = v.ref_path;
      return *v.ref;
    }
    return value_of(std::move(v));
  } catch (const NotFound&) {
    return std::nullopt;
  }
}

const ConfigNode* Engine::find_node(std::string_view key, std::string* full_path) {
  int dots = 0;
  while (static_cast<std::size_t>(dots) < key.size() && key[static_cast<std::size_t>(dots)] == '.') ++dots;
  const auto keys = split_key_path(key.substr(static_cast<std::size_t>(dots)));
  try {
    Val v = lookup(dots, keys, current_, std::string(key), /*for_select=*/true);
    if (!v.ref) return nullptr;
    if (full_path) *full_path = join_key_path(v.ref_path);
    return v.ref;
  } catch (const NotFound&) {
    return nullptr;
  }
}

ConfigNode Engine::decode(std::string_view text) {
  grammar::Element e;
  try {
    e = grammar::parse_single_element(text);
  } catch (const grammar::GrammarError& g) {
    fail(InterpolationErrorKind::kResolver, "oc.decode: " + grammar_error_message(text, g));
  }
  ConfigNode value = eval_element(e, current_);
  return value;
}

std::string Engine::node_path() const { return join_key_path(current_); }

std::optional<std::string> Engine::getenv(std::string_view name) const { return registry_.getenv(name); }

void Engine::warn(std::string message) {
  if (warnings_) warnings_->push_back(std::move(message));
}

// ---- public entry points -------------------------------------------------------------------------

void resolve_in_place(ConfigNode& root, const ResolverRegistry& resolvers, const ResolveOptions& options) {
  Engine engine(root, resolvers, options.mode, options.warnings);
  engine.resolve_all(options.subtree);
}

ConfigNode resolved_copy(const ConfigNode& root, const ResolverRegistry& resolvers, std::string_view path) {
  ConfigNode copy = root;
  Engine engine(copy, resolvers, ResolveMode::kStrict, nullptr);
  engine.resolve_all(std::string(path));
  const ConfigNode* sub = copy.find_path(path);
  return sub ? *sub : ConfigNode();
}

std::optional<ConfigNode> select(const ConfigNode& root, std::string_view path, const ResolverRegistry& resolvers,
                                 bool missing_as_absent, bool resolve_containers) {
  ConfigNode copy = root;
  Engine engine(copy, resolvers, ResolveMode::kStrict, nullptr);
  return engine.select_path(split_key_path(path), missing_as_absent, resolve_containers);
}

ConfigNode decode_element(std::string_view text) {
  ConfigNode empty = ConfigNode::dict();
  ResolverRegistry none;
  Engine engine(empty, none, ResolveMode::kStrict, nullptr);
  try {
    return engine.decode(text);
  } catch (const Engine::Failure& f) {
    throw InterpolationError(f.kind, f.message);
  }
}

}  // namespace bignlp::config
