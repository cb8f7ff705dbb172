// Built-in resolvers: OmegaConf's oc.* family and the three the NeMo launcher configs use.
#include <fmt/format.h>

#include <cmath>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/yaml.h"
#include "pyformat.h"

namespace bignlp::config {
namespace {

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

std::string type_name(const ConfigNode& v) {
  switch (v.kind()) {
    case NodeKind::kNull: return "NoneType";
    case NodeKind::kBool: return "bool";
    case NodeKind::kInt: return "int";
    case NodeKind::kFloat: return "float";
    case NodeKind::kString: return "str";
    case NodeKind::kMissing: return "str";
    case NodeKind::kDict: return "dict";
    case NodeKind::kList: return "list";
  }
  return "?";
}

void arity(const std::string& name, const std::vector<ConfigNode>& args, std::size_t min, std::size_t max) {
  if (args.size() < min || args.size() > max) {
    const std::string want = min == max ? std::to_string(min) : fmt::format("{} to {}", min, max);
    throw ConfigError(fmt::format("{} takes {} argument{}, got {}", name, want, max == 1 ? "" : "s", args.size()));
  }
}

const std::string& string_arg(const std::string& name, const ConfigNode& v, const char* what) {
  if (!v.is_string())
    throw ConfigError(fmt::format("{}: {} must be a string, got {} of type {}", name, what, py::repr(v), type_name(v)));
  return v.as_string();
}

bool is_number(const ConfigNode& v) { return v.is_int() || v.is_float() || v.is_bool(); }
double num(const ConfigNode& v) {
  if (v.is_bool()) return v.as_bool() ? 1.0 : 0.0;
  return v.as_double();
}
long long inum(const ConfigNode& v) { return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int(); }

void numeric_args(const std::string& name, const std::vector<ConfigNode>& args) {
  arity(name, args, 2, 2);
  for (const auto& a : args) {
    if (!is_number(a))
      throw ConfigError(fmt::format("{}: arguments must be numbers, got {} of type {}", name, py::repr(a), type_name(a)));
  }
}

ConfigNode divide(const std::string& name, const std::vector<ConfigNode>& args, bool ceil) {
  numeric_args(name, args);
  const double b = num(args[1]);
  if (b == 0.0) throw ConfigError(fmt::format("{}: division by zero", name));
  const double q = num(args[0]) / b;
  const double r = ceil ? std::ceil(q) : std::floor(q);
  if (!std::isfinite(r) || std::fabs(r) > 9.2e18) throw ConfigError(fmt::format("{}: result out of range", name));
  return ConfigNode::integer(static_cast<std::int64_t>(r));
}

// ---- the built-in resolvers ------------------------------------------------------------------

// ${oc.env:NAME[,default]}
ConfigNode oc_env(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  arity("oc.env", args, 1, 2);
  const std::string& key = string_arg("oc.env", args[0], "the variable name");
  if (auto v = ctx.getenv(key)) return ConfigNode::string(*v);
  if (args.size() == 2) {
    if (args[1].is_null()) return ConfigNode::null_value();
    return ConfigNode::string(py::str(args[1]));
  }
  throw ConfigError(fmt::format("Environment variable '{}' not found", key));
}

// ${oc.select:key[,default]}
ConfigNode oc_select(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  arity("oc.select", args, 1, 2);
  const std::string& key = string_arg("oc.select", args[0], "the key");
  if (auto v = ctx.select(key)) return *v;
  return args.size() == 2 ? args[1] : ConfigNode::null_value();
}

// ${oc.decode:text}: the text read as an override value.
ConfigNode oc_decode(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  arity("oc.decode", args, 1, 1);
  if (args[0].is_null()) return ConfigNode::null_value();
  if (!args[0].is_string()) {
    throw ConfigError(fmt::format("oc.decode can only take strings or None as input, but {} is of type {}",
                                  py::repr(args[0]), type_name(args[0])));
  }
  return ctx.decode(args[0].as_string());
}

// ${oc.create:obj}: a dict or list, or the YAML text of one.
ConfigNode oc_create(const std::vector<ConfigNode>& args, ResolverContext&) {
  arity("oc.create", args, 1, 1);
  const ConfigNode& obj = args[0];
  if (obj.is_container()) return obj;
  if (obj.is_string()) {
    YamlLoadOptions opt;
    opt.display_name = "<oc.create>";
    ConfigNode v = load_yaml_string(obj.as_string(), opt);
    if (v.is_container()) return v;
    if (v.is_null()) return ConfigNode::dict();
    if (v.is_string()) {
      ConfigNode d = ConfigNode::dict();
      d.set(v.as_string(), ConfigNode::null_value());
      return d;
    }
    throw ConfigError(fmt::format("oc.create: the YAML text {} does not describe a dict or a list",
                                  py::repr(obj)));
  }
  throw ConfigError(fmt::format("oc.create: cannot create a config from {} of type {}", py::repr(obj), type_name(obj)));
}

// The dict that oc.dict.keys / oc.dict.values name by key; `full_path` receives its full key.
const ConfigNode& dict_input(const std::string& name, const std::vector<ConfigNode>& args, ResolverContext& ctx,
                             std::string* full_path) {
  arity(name, args, 1, 1);
  if (!args[0].is_string()) {
    throw ConfigError(fmt::format("{} requires a string as input, but obtained {} of type: {}", name,
                                  py::repr(args[0]), type_name(args[0])));
  }
  const ConfigNode* node = ctx.find_node(args[0].as_string(), full_path);
  if (!node) {
    if (auto v = ctx.select(args[0].as_string())) {
      throw ConfigError(fmt::format("{} cannot be applied to objects of type: {}", name, type_name(*v)));
    }
    throw ConfigError(fmt::format("Key not found: '{}'", args[0].as_string()));
  }
  if (!node->is_dict())
    throw ConfigError(fmt::format("{} cannot be applied to objects of type: {}", name, type_name(*node)));
  return *node;
}

// ${oc.dict.keys:key}
ConfigNode oc_dict_keys(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  std::string full;
  const ConfigNode& d = dict_input("oc.dict.keys", args, ctx, &full);
  ConfigNode out = ConfigNode::list();
  for (const auto& k : d.keys()) out.push_back(ConfigNode::string(k));
  return out;
}

// ${oc.dict.values:key}: interpolations to the values, so they resolve where they are.
ConfigNode oc_dict_values(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  std::string full;
  const ConfigNode& d = dict_input("oc.dict.values", args, ctx, &full);
  std::string key = args[0].as_string();
  // The list sits one level below the node's parent: a relative key needs one more dot.
  if (!key.empty() && key[0] == '.') key = "." + key;
  ConfigNode out = ConfigNode::list();
  for (const auto& k : d.keys()) out.push_back(ConfigNode::string(fmt::format("${{{}.{}}}", key, k)));
  return out;
}

// ${oc.deprecated:new_key[,message]}: the value of new_key, with a warning.
ConfigNode oc_deprecated(const std::vector<ConfigNode>& args, ResolverContext& ctx) {
  arity("oc.deprecated", args, 1, 2);
  const std::string& key = string_arg("oc.deprecated", args[0], "the interpolation key");
  std::string message = "'$OLD_KEY' is deprecated. Change your code and config to use '$NEW_KEY'";
  if (args.size() == 2) message = string_arg("oc.deprecated", args[1], "the message");
  std::string full;
  if (!ctx.find_node(key, &full) && !ctx.select(key)) {
    throw ConfigError(fmt::format("In oc.deprecated resolver at '{}': Key not found: '{}'", ctx.node_path(), key));
  }
  if (full.empty()) full = key;
  std::string msg = message;
  for (std::size_t pos; (pos = msg.find("$OLD_KEY")) != std::string::npos;) msg.replace(pos, 8, ctx.node_path());
  for (std::size_t pos; (pos = msg.find("$NEW_KEY")) != std::string::npos;) msg.replace(pos, 8, full);
  ctx.warn(msg);
  auto v = ctx.select(key);
  return v ? *v : ConfigNode::null_value();
}

// ${multiply:a,b}
ConfigNode multiply(const std::vector<ConfigNode>& args, ResolverContext&) {
  arity("multiply", args, 2, 2);
  // Python's a * b: a string or list times an int repeats it.
  for (int s = 0; s < 2; ++s) {
    const ConfigNode& seq = args[static_cast<std::size_t>(s)];
    const ConfigNode& count = args[static_cast<std::size_t>(1 - s)];
    if (!seq.is_string() && !seq.is_list()) continue;
    if (!count.is_int() && !count.is_bool()) {
      throw ConfigError(fmt::format("multiply: can't multiply sequence by non-int of type '{}'", type_name(count)));
    }
    const long long n = inum(count);
    if (n > 0 && (seq.is_string() ? seq.as_string().size() : seq.size()) * static_cast<std::size_t>(n) > (1u << 26))
      throw ConfigError("multiply: the repeated sequence would be too large");
    if (seq.is_string()) {
      std::string out;
      for (long long i = 0; i < n; ++i) out += seq.as_string();
      return ConfigNode::string(out);
    }
    ConfigNode out = ConfigNode::list();
    for (long long i = 0; i < n; ++i)
      for (const auto& e : seq.children()) out.push_back(e);
    return out;
  }
  numeric_args("multiply", args);
  if (args[0].is_float() || args[1].is_float()) return ConfigNode::floating(num(args[0]) * num(args[1]));
  const i128 p = static_cast<i128>(inum(args[0])) * static_cast<i128>(inum(args[1]));
  if (p > INT64_MAX || p < INT64_MIN) throw ConfigError("multiply: result does not fit in 64 bits");
  return ConfigNode::integer(static_cast<std::int64_t>(p));
}

// ${divide_ceil:a,b} and ${divide_floor:a,b}: integer quotients.
ConfigNode divide_ceil(const std::vector<ConfigNode>& args, ResolverContext&) {
  return divide("divide_ceil", args, true);
}
ConfigNode divide_floor(const std::vector<ConfigNode>& args, ResolverContext&) {
  return divide("divide_floor", args, false);
}

}  // namespace

ResolverRegistry ResolverRegistry::with_builtins() {
  ResolverRegistry r;
  r.add("oc.env", oc_env);
  r.add("oc.select", oc_select);
  r.add("oc.decode", oc_decode);
  r.add("oc.create", oc_create);
  r.add("oc.dict.keys", oc_dict_keys);
  r.add("oc.dict.values", oc_dict_values);
  r.add("oc.deprecated", oc_deprecated);
  r.add("multiply", multiply);
  r.add("divide_ceil", divide_ceil);
  r.add("divide_floor", divide_floor);
  return r;
}

}  // namespace bignlp::config
