// The interpolation resolution engine (internal to the config library).
//
// Works on a mutable tree addressed by key paths (vectors of steps) from the root; relative
// interpolations are computed from the path of the node being resolved. Values are either a
// reference to a node in the tree (containers: keeps relative interpolations inside them correct)
// or an owned value. `active_` holds the nodes currently being resolved (cycle detection).
//
// Modes (ResolveMode): kHydra writes results back as OmegaConf.resolve does; kStrict also
// memoizes referenced targets and marks resolved strings as literal so they are never read as
// interpolations again (to_container(resolve=True) semantics).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bignlp/config/interpolate.h"
#include "interpolation_grammar.h"

namespace bignlp::config {

using Path = std::vector<std::string>;

/// The grammar error text with the value and a caret line.
std::string grammar_error_message(std::string_view text, const grammar::GrammarError& e);

class Engine final : public ResolverContext {
 public:
  /// A failure while evaluating; converted to InterpolationError with the node's location by the
  /// innermost eval_node.
  struct Failure {
    InterpolationErrorKind kind;
    std::string message;
  };
  /// Key absent (select-style lookups only).
  struct NotFound {};

  Engine(ConfigNode& root, const ResolverRegistry& registry, ResolveMode mode, std::vector<std::string>* warnings);

  /// Resolves everything under `subtree` in place.
  void resolve_all(const std::string& subtree);
  /// Node at `path` (intermediate interpolations dereferenced), nullptr if absent.
  ConfigNode* node_at(const Path& path);
  /// Resolved value at `path`, nullopt if absent (or "???" with missing_as_absent).
  std::optional<ConfigNode> select_path(const Path& path, bool missing_as_absent, bool resolve_containers = true);

  // ResolverContext
  std::optional<ConfigNode> select(std::string_view key) override;
  const ConfigNode* find_node(std::string_view key, std::string* full_path) override;
  ConfigNode decode(std::string_view text) override;
  std::string node_path() const override;
  std::optional<std::string> getenv(std::string_view name) const override;
  void warn(std::string message) override;

 private:
  struct Val {
    ConfigNode owned;
    ConfigNode* ref = nullptr;
    Path ref_path;
    bool is_string_result = false;
  };

  // Marks a container as being resolved while it lives (materialize, walk); meeting the container
  // again inside itself is a cycle (Failure kCycle).
  class ActiveContainer {
   public:
    ActiveContainer(Engine& engine, const ConfigNode& node, const Path& path);
    ~ActiveContainer();
    ActiveContainer(const ActiveContainer&) = delete;
    ActiveContainer& operator=(const ActiveContainer&) = delete;

   private:
    Engine& engine_;
    const ConfigNode* node_;
  };

  // Resource limit (docs/config.md "Limits"): interpolations that refer to each other twice per
  // level double their text at each level.
  static constexpr std::size_t kMaxStringBytes = std::size_t{16} << 20;  // one interpolated string
  static void check_string_size(const std::string& s);

  bool is_interp(const ConfigNode& n) const;
  const grammar::Text& parse(const ConfigNode& n, const Path& p);
  [[noreturn]] static void fail(InterpolationErrorKind kind, const std::string& message);

  Val eval_node(ConfigNode& n, const Path& p);
  Val eval_interp(const grammar::Interp& it, const Path& p);
  ConfigNode eval_element(const grammar::Element& e, const Path& p);
  ConfigNode primitive(const std::vector<grammar::Token>& tokens, const Path& p);
  Val lookup(int dots, const std::vector<std::string>& keys, const Path& p, const std::string& key_text,
             bool for_select);
  ConfigNode* deref_container(ConfigNode* cur, Path& cur_path, const std::string& key_text);
  ConfigNode value_of(Val v);
  ConfigNode materialize(ConfigNode& node, const Path& path);
  void walk(ConfigNode& node, Path& path);
  std::string str_of(Val& v);
  std::string key_string(Val v, const std::string& source);

  ConfigNode& root_;
  const ResolverRegistry& registry_;
  ResolveMode mode_;
  std::vector<std::string>* warnings_;
  std::unordered_set<const ConfigNode*> literal_;
  std::unordered_set<const ConfigNode*> active_;
  std::vector<std::pair<const ConfigNode*, Path>> stack_;
  std::unordered_map<std::string, std::shared_ptr<const grammar::Text>> cache_;
  Path current_;
  ConfigNode* last_select_ref_ = nullptr;  // container returned by the latest ResolverContext::select
  Path last_select_path_;
};

}  // namespace bignlp::config
