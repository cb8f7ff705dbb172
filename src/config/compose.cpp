#include "bignlp/config/compose.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <ctime>
#include <random>

#include "bignlp/config/override_parser.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "pyformat.h"
#include "suggest.h"

namespace fs = std::filesystem;

namespace bignlp::config {
namespace {

std::string strip_yaml_suffix(std::string name) {
  if (ends_with(name, ".yaml")) name.resize(name.size() - 5);
  return name;
}

// Python equality for override deletion checks: numbers compare by value (bools are ints).
bool py_equal(const ConfigNode& a, const ConfigNode& b) {
  const auto numeric = [](const ConfigNode& n) { return n.is_int() || n.is_float() || n.is_bool(); };
  const auto num = [](const ConfigNode& n) { return n.is_bool() ? (n.as_bool() ? 1.0 : 0.0) : n.as_double(); };
  if (numeric(a) && numeric(b)) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return num(a) == num(b);
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_dict()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const ConfigNode* other = b.find(a.key_at(i));
      if (!other || !py_equal(a.child_at(i), *other)) return false;
    }
    return true;
  }
  if (a.is_list()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!py_equal(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

// A struct-mode violation (Hydra: "Could not override").
struct StructViolation {
  std::string key;       // the missing key
  std::string full_key;  // its full path
  std::vector<std::string> siblings;
};

struct MergeTypeError {
  std::string message;
};

void stamp(ConfigNode& value, const Override& ov, const std::string& key_path, const ConfigNode* replaced) {
  Provenance p = Provenance::from_override(ov.index, ov.input, key_path);
  value.set_provenance_recursive(p);
  if (replaced && replaced->provenance().origin != Provenance::Origin::kUnknown) {
    Provenance top = value.provenance();
    top.previous = replaced->provenance_ptr();
    value.set_provenance(std::move(top));
  }
}

void merge_struct(ConfigNode& dst, const ConfigNode& src, bool force_add, const std::string& path) {
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::string& key = src.key_at(i);
    const ConfigNode& sv = src.child_at(i);
    const std::string full = child_key_path(path, key);
    ConfigNode* dv = dst.find(key);
    if (!dv) {
      if (!force_add) throw StructViolation{key, full, dst.keys()};
      dst.set(key, sv);
      continue;
    }
    if (sv.is_missing()) continue;
    if (dv->is_dict() && sv.is_dict()) {
      merge_struct(*dv, sv, force_add, full);
    } else if ((dv->is_dict() && sv.is_list()) || (dv->is_list() && sv.is_dict())) {
      throw MergeTypeError{fmt::format("Cannot merge a {} into the {} at '{}'", kind_name(sv.kind()), kind_name(dv->kind()), full)};
    } else {
      ConfigNode v = sv;
      if (dv->provenance().origin != Provenance::Origin::kUnknown) {
        Provenance p = v.provenance();
        p.previous = dv->provenance_ptr();
        v.set_provenance(std::move(p));
      }
      *dv = std::move(v);
    }
  }
}

bool parse_index(const std::string& s, std::size_t& out) {
  if (!py::is_int(s)) return false;
  long long v = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') v = v * 10 + (c - '0');
    else if (c == '-') return false;
  }
  out = static_cast<std::size_t>(v);
  return true;
}

// Element `step` of `list`, the list at key path `walked`; MergeTypeError unless `step` is an index
// in range.
ConfigNode& list_element(ConfigNode& list, const std::string& step, const std::string& walked) {
  std::size_t idx;
  if (!parse_index(step, idx))
    throw MergeTypeError{fmt::format("'{}' is a list and '{}' is not an index", walked, step)};
  if (idx >= list.size())
    throw MergeTypeError{
        fmt::format("list index {} out of range for '{}' (size {})", idx, walked, list.size())};
  return list[idx];
}

// OmegaConf.update(cfg, key, value, merge=True, force_add=...) under struct mode.
void update(ConfigNode& root, const Override& ov, ConfigNode value, bool force_add) {
  const auto steps = split_key_path(ov.key);
  ConfigNode* cur = &root;
  std::string walked;
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    const std::string& step = steps[i];
    ConfigNode* next = nullptr;
    if (cur->is_list()) {
      next = &list_element(*cur, step, walked);
    } else {
      next = cur->find(step);
      if (!next) {
        if (!force_add) throw StructViolation{step, child_key_path(walked, step), cur->keys()};
        next = &cur->set(step, ConfigNode::dict());
      }
    }
    if (!next->is_container()) {
      auto prov = next->provenance_ptr();
      *next = ConfigNode::dict();
      next->set_provenance(prov);
    }
    cur = next;
    walked = child_key_path(walked, step);
  }
  const std::string& last = steps.back();
  const std::string full = child_key_path(walked, last);
  ConfigNode* target = nullptr;
  if (cur->is_list()) {
    target = &list_element(*cur, last, walked);
  } else {
    target = cur->find(last);
  }
  if (value.is_container() && target && target->is_container()) {
    if (target->is_dict() && value.is_dict()) {
      stamp(value, ov, full, nullptr);
      merge_struct(*target, value, force_add, full);
      return;
    }
    if (target->is_list() && value.is_list()) {
      stamp(value, ov, full, target);
      *target = std::move(value);
      return;
    }
    throw MergeTypeError{fmt::format("Cannot merge {} with {}", target->is_dict() ? "DictConfig" : "ListConfig",
                                     value.is_dict() ? "DictConfig" : "ListConfig")};
  }
  if (!target) {
    if (!force_add) throw StructViolation{last, full, cur->keys()};
    stamp(value, ov, full, nullptr);
    cur->set(last, std::move(value));
    return;
  }
  stamp(value, ov, full, target);
  *target = std::move(value);
}

std::string hint_for(const StructViolation& v) {
  const auto m = suggest(v.key, v.siblings);
  if (!m) return {};
  const auto dot = v.full_key.rfind('.');
  const std::string parent = dot == std::string::npos ? std::string() : v.full_key.substr(0, dot);
  return fmt::format("\nDid you mean '{}'?", child_key_path(parent, *m));
}

std::optional<ConfigNode> select_for_override(const ConfigNode& root, const std::string& key, const ResolverRegistry& r) {
  const ConfigNode* n = root.find_path(key);
  if (!n || n->is_null() || n->is_missing()) return std::nullopt;
  if (!n->has_interpolation()) return *n;
  auto v = select(root, key, r, /*missing_as_absent=*/true);
  if (v && v->is_null()) return std::nullopt;
  return v;
}

}  // namespace

void apply_override(ConfigNode& root, const Override& ov, const ResolverRegistry& resolvers) {
  if (ov.package) {
    throw OverrideError(fmt::format(
        "Override {} looks like a config group override, but config group '{}' does not exist.", ov.input, ov.key));
  }
  try {
    switch (ov.type) {
      case OverrideType::kDelete: {
        const auto current = select_for_override(root, ov.key, resolvers);
        if (!current) throw OverrideError(fmt::format("Could not delete from config. '{}' does not exist.", ov.key));
        if (ov.has_value && !py_equal(ov.value, *current)) {
          throw OverrideError(fmt::format("Could not delete from config. The value of '{}' is {} and not {}.", ov.key,
                                          py::str(*current), py::str(ov.value)));
        }
        root.erase_path(ov.key);
        return;
      }
      case OverrideType::kAdd: {
        const auto current = select_for_override(root, ov.key, resolvers);
        if (!current || ov.value.is_container()) {
          update(root, ov, ov.value, /*force_add=*/true);
          return;
        }
        throw OverrideError(fmt::format(
            "Could not append to config. An item is already at '{}'.\nEither remove + prefix: '{}'\nOr add a second + "
            "to add or override '{}': '+{}'",
            ov.key, ov.input.substr(1), ov.key, ov.input));
      }
      case OverrideType::kForceAdd:
        update(root, ov, ov.value, /*force_add=*/true);
        return;
      case OverrideType::kExtendList: {
        ConfigNode* target = root.find_path(ov.key);
        if (!target || !target->is_list()) {
          throw OverrideError(fmt::format(
              "Could not append to config list. The existing value of '{}' is {} which is not a list.", ov.key,
              target ? py::str(*target) : std::string("None")));
        }
        for (const auto& v : ov.value.children()) {
          ConfigNode item = v;
          stamp(item, ov, child_key_path(ov.key, std::to_string(target->size())), nullptr);
          target->push_back(std::move(item));
        }
        return;
      }
      case OverrideType::kChange:
        try {
          update(root, ov, ov.value, /*force_add=*/false);
        } catch (const StructViolation& v) {
          throw OverrideError(fmt::format("Could not override '{}'.\nTo append to your config use +{}\nKey '{}' is not in "
                                          "struct\n    full_key: {}{}",
                                          ov.key, ov.input, v.key, v.full_key, hint_for(v)));
        }
        return;
    }
  } catch (const StructViolation& v) {
    throw OverrideError(fmt::format("Error merging override {}\nKey '{}' is not in struct\n    full_key: {}{}", ov.input,
                                    v.key, v.full_key, hint_for(v)));
  } catch (const MergeTypeError& e) {
    throw OverrideError(fmt::format("Error merging override {}\n{}", ov.input, e.message));
  } catch (const OverrideError&) {
    throw;
  } catch (const ConfigError& e) {
    throw OverrideError(fmt::format("Error merging override {}\n{}", ov.input, e.what()));
  }
}

void add_hydra_resolvers(ResolverRegistry& registry, const ConfigNode& hydra) {
  auto node = std::make_shared<const ConfigNode>(hydra);
  registry.add(
      "hydra",
      [node](const std::vector<ConfigNode>& args, ResolverContext&) -> ConfigNode {
        if (args.size() != 1 || !args[0].is_string()) throw ConfigError("hydra takes one key, e.g. ${hydra:runtime.choices.training}");
        ResolverRegistry inner = ResolverRegistry::with_builtins();
        inner.add("now", [](const std::vector<ConfigNode>& a, ResolverContext&) -> ConfigNode {
          if (a.size() != 1 || !a[0].is_string()) throw ConfigError("now takes one strftime pattern");
          const std::time_t t = std::time(nullptr);
          std::tm tm{};
          localtime_r(&t, &tm);
          char buf[256];
          const std::size_t n = std::strftime(buf, sizeof buf, a[0].as_string().c_str(), &tm);
          return ConfigNode::string(std::string(buf, n));
        });
        ConfigNode wrapped = ConfigNode::dict();
        wrapped.set("hydra", *node);
        auto v = select(wrapped, "hydra." + args[0].as_string(), inner, /*missing_as_absent=*/false);
        return v ? *v : ConfigNode::null_value();
      },
      true);
  registry.add(
      "now",
      [](const std::vector<ConfigNode>& a, ResolverContext&) -> ConfigNode {
        if (a.size() != 1 || !a[0].is_string()) throw ConfigError("now takes one strftime pattern, e.g. ${now:%Y-%m-%d}");
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[256];
        const std::size_t n = std::strftime(buf, sizeof buf, a[0].as_string().c_str(), &tm);
        return ConfigNode::string(std::string(buf, n));
      },
      true);
}

std::optional<std::string> ComposeResult::choice(std::string_view group) const {
  for (const auto& c : choices)
    if (c.key == group) return c.option;
  return std::nullopt;
}

ResolverRegistry ComposeResult::resolvers() const {
  ResolverRegistry r = ResolverRegistry::with_builtins();
  add_hydra_resolvers(r, hydra);
  return r;
}

ConfigNode ComposeResult::resolved() const {
  ConfigNode copy = config;
  resolve_in_place(copy, resolvers());
  return copy;
}

namespace {

void strip_defaults(ConfigNode& n) {
  if (!n.is_dict()) return;
  n.erase("defaults");
  for (auto& c : n.children()) strip_defaults(c);
}

void restamp(ConfigNode& n, const std::string& prefix) {
  if (!prefix.empty()) {
    Provenance p = n.provenance();
    p.key_path = p.key_path.empty() ? prefix : prefix + "." + p.key_path;
    n.set_provenance(std::move(p));
  }
  for (auto& c : n.children()) restamp(c, prefix);
}

void validate_run_mode(const std::vector<Override>& overrides) {
  for (const auto& o : overrides) {
    if (!o.is_sweep()) continue;
    if (o.sweep->kind == Sweep::Kind::kSimpleChoice) {
      throw OverrideError(fmt::format(
          "Ambiguous value for argument '{}'\n1. To use it as a list, use key=[value1,value2]\n2. To use it as string, "
          "quote the value: key=\\'value1,value2\\'\n3. To sweep over it, add --multirun to your command line",
          o.input));
    }
    throw OverrideError(fmt::format("Sweep parameters '{}' requires --multirun", o.input));
  }
}

ComposeResult compose_with(const ConfigRepository& repo, const ComposeOptions& options,
                           const std::vector<Override>& overrides, int job_num, bool multirun) {
  const std::string name = strip_yaml_suffix(options.config_name);
  if (!repo.config_exists(name)) {
    std::string msg =
        fmt::format("Cannot find primary config '{}'. Check that it's in your config search path.\nSearch path:", name);
    for (const auto& s : repo.search_path()) msg += "\n\t" + s.to_string();
    throw ConfigError(msg);
  }
  ComposeResult result;
  DefaultsList dl = create_defaults_list(repo, name, overrides, /*with_hydra=*/true, options.skip_missing);
  ConfigNode cfg = ConfigNode::dict();
  for (const auto& d : dl.defaults) {
    const LoadedConfig* loaded = repo.load(d.config_path);
    if (!loaded) throw ConfigError(fmt::format("Could not load '{}'", d.config_path));
    ConfigNode content = loaded->content;
    restamp(content, d.package);
    if (!d.primary && d.config_path != "hydra/config" && content.find_path("hydra.searchpath")) {
      throw ConfigError(fmt::format("In '{}': Overriding hydra.searchpath is only supported from the primary config",
                                    d.config_path));
    }
    ConfigNode wrapped;
    if (d.package.empty()) {
      wrapped = std::move(content);
    } else {
      wrapped = ConfigNode::dict();
      wrapped.set_path(d.package, std::move(content));
    }
    try {
      merge_into(cfg, std::move(wrapped));
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("In '{}': Validation error while composing config:\n{}", d.config_path, e.what()));
    }
  }
  strip_defaults(cfg);

  // The hydra node before overrides: runtime facts.
  ConfigNode& hydra = cfg.find("hydra") ? *cfg.find("hydra") : cfg.set("hydra", ConfigNode::dict());
  hydra.set_path("runtime.choices", ConfigNode::dict());
  for (const auto& c : dl.choices) {
    hydra.at("runtime.choices").set(c.key, c.option ? ConfigNode::string(*c.option) : ConfigNode::null_value());
  }
  std::error_code ec;
  hydra.set_path("runtime.cwd", ConfigNode::string(fs::current_path(ec).string()));
  ConfigNode sources = ConfigNode::list();
  for (const auto& s : repo.search_path()) {
    ConfigNode e = ConfigNode::dict();
    e.set("path", ConfigNode::string(s.path));
    e.set("provider", ConfigNode::string(s.provider));
    sources.push_back(std::move(e));
  }
  hydra.set_path("runtime.config_sources", std::move(sources));
  hydra.set_path("job.config_name", ConfigNode::string(name));
  hydra.set_path("mode", ConfigNode::string(multirun ? "MULTIRUN" : "RUN"));
  if (multirun) {
    hydra.set_path("job.num", ConfigNode::integer(job_num));
    hydra.set_path("job.id", ConfigNode::string(std::to_string(job_num)));
  }
  ConfigNode task = ConfigNode::list(), hydra_ovs = ConfigNode::list();
  std::vector<std::string> dirname_parts;
  for (const auto& o : overrides) {
    if (o.is_hydra_override()) {
      hydra_ovs.push_back(ConfigNode::string(o.input));
    } else {
      task.push_back(ConfigNode::string(o.input));
      dirname_parts.push_back(o.input);
    }
  }
  hydra.set_path("overrides.task", std::move(task));
  hydra.set_path("overrides.hydra", std::move(hydra_ovs));
  std::sort(dirname_parts.begin(), dirname_parts.end());
  hydra.set_path("job.override_dirname", ConfigNode::string(join(dirname_parts, ",")));

  ResolverRegistry registry = ResolverRegistry::with_builtins();
  add_hydra_resolvers(registry, *cfg.find("hydra"));
  for (const auto& o : dl.config_overrides) apply_override(cfg, o, registry);

  if (const ConfigNode* h = cfg.find("hydra")) result.hydra = *h;
  cfg.erase("hydra");
  result.config = std::move(cfg);
  result.choices = std::move(dl.choices);
  result.defaults = std::move(dl.defaults);
  result.defaults_tree = std::move(dl.tree);
  result.search_path = repo.search_path();
  result.overrides = overrides;
  result.warnings = std::move(dl.warnings);
  return result;
}

}  // namespace

ComposeResult compose(const ComposeOptions& options) {
  ConfigRepository repo(options.config_path, options.config_dirs);
  const auto overrides = parse_overrides(options.overrides);
  validate_run_mode(overrides);
  return compose_with(repo, options, overrides, 0, false);
}

std::vector<std::vector<Override>> expand_sweeps(const std::vector<Override>& overrides, const ConfigRepository& repo) {
  std::vector<std::pair<std::string, std::vector<Override>>> axes;
  for (const auto& o : overrides) {
    std::string prefix;
    if (o.type == OverrideType::kDelete) prefix = "~";
    if (o.type == OverrideType::kAdd) prefix = "+";
    if (o.type == OverrideType::kForceAdd) prefix = "++";
    const std::string key = prefix + o.key_element();
    std::vector<Override> axis;
    if (!o.is_sweep()) {
      axis.push_back(o);
    } else {
      if (o.is_hydra_override())
        throw OverrideError(fmt::format("Sweeping over Hydra's configuration is not supported : '{}'", o.input));
      Sweep s = *o.sweep;
      if (s.kind == Sweep::Kind::kInterval) {
        throw OverrideError(fmt::format(
            "The basic sweeper cannot enumerate interval() sweeps: '{}' (use choice() or range())", o.input));
      }
      if (s.kind == Sweep::Kind::kGlob) {
        for (const auto& name : repo.group_options_recursive(o.key)) {
          auto match = [&](const std::vector<std::string>& globs) {
            for (const auto& g : globs)
              if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
            return false;
          };
          if (match(s.glob_include) && !match(s.glob_exclude)) {
            s.values.push_back(ConfigNode::string(name));
            s.texts.push_back(name);
          }
        }
      }
      std::vector<std::size_t> order(s.values.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      if (s.shuffle) {
        std::random_device rd;
        std::mt19937 g(rd());
        std::shuffle(order.begin(), order.end(), g);
      }
      for (std::size_t i : order) {
        Override job = o;
        job.sweep.reset();
        job.value = s.values[i];
        job.has_value = true;
        job.input = key + "=" + s.texts[i];
        axis.push_back(std::move(job));
      }
    }
    bool replaced = false;
    for (auto& [k, v] : axes) {
      if (k == key) {
        v = axis;
        replaced = true;
      }
    }
    if (!replaced) axes.emplace_back(key, std::move(axis));
  }
  std::vector<std::vector<Override>> jobs(1);
  for (const auto& [k, axis] : axes) {
    std::vector<std::vector<Override>> next;
    for (const auto& prefix : jobs) {
      for (const auto& choice : axis) {
        auto job = prefix;
        job.push_back(choice);
        next.push_back(std::move(job));
      }
    }
    jobs = std::move(next);
  }
  return jobs;
}

std::vector<SweepJob> compose_multirun(const ComposeOptions& options) {
  ConfigRepository repo(options.config_path, options.config_dirs);
  const auto overrides = parse_overrides(options.overrides);
  const auto jobs = expand_sweeps(overrides, repo);
  std::vector<SweepJob> out;
  out.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SweepJob job;
    for (const auto& o : jobs[i]) job.overrides.push_back(o.input);
    job.result = compose_with(repo, options, jobs[i], static_cast<int>(i), true);
    out.push_back(std::move(job));
  }
  return out;
}

}  // namespace bignlp::config
