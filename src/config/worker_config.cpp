#include "bignlp/config/worker_config.h"

#include <fmt/format.h>

#include "bignlp/config/compose.h"
#include "bignlp/config/override_parser.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::config {

bool names_worker_config(const std::vector<std::string>& args) {
  for (const std::string& a : args)
    if (a == "-cp" || a == "-cn" || a.rfind("--config-path", 0) == 0 || a.rfind("--config-name", 0) == 0) return true;
  return false;
}

WorkerConfigArgs extract_worker_config_args(std::vector<std::string>& args) {
  WorkerConfigArgs out;
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto take = [&](const std::string& flag) -> std::string {
      if (a.size() > flag.size() && a.compare(0, flag.size() + 1, flag + "=") == 0) return a.substr(flag.size() + 1);
      if (i + 1 >= args.size()) throw UsageError(fmt::format("{} needs a value", flag));
      return args[++i];
    };
    if (a == "--config-path" || starts_with(a, "--config-path=")) {
      out.config_path = take("--config-path");
    } else if (a == "-cp" || starts_with(a, "-cp=")) {
      out.config_path = take("-cp");
    } else if (a == "--config-name" || starts_with(a, "--config-name=")) {
      out.config_name = take("--config-name");
    } else if (a == "-cn" || starts_with(a, "-cn=")) {
      out.config_name = take("-cn");
    } else if (!a.empty() && a[0] != '-' && (a.find('=') != std::string::npos || a[0] == '~')) {
      out.overrides.push_back(a);
    } else {
      rest.push_back(a);
    }
  }
  args = std::move(rest);
  return out;
}

ConfigNode load_worker_config(const WorkerConfigArgs& args, const ResolverRegistry* resolvers) {
  if (args.config_name.empty()) throw UsageError("--config-name is required (the saved stage config, e.g. gpt3_5b_hydra.yaml)");
  std::string name = args.config_name;
  if (!ends_with(name, ".yaml") && !ends_with(name, ".yml")) name += ".yaml";
  const fs::path dir = args.config_path.empty() ? fs::path(".") : args.config_path;
  const fs::path file = dir / name;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw ConfigError(fmt::format("Cannot find the config '{}' (--config-path {} --config-name {})", file.string(),
                                  dir.string(), args.config_name));
  }
  YamlLoadOptions opt;
  opt.display_name = file.string();
  ConfigNode root = load_yaml_file(file, opt);
  if (root.is_null()) root = ConfigNode::dict();
  if (!root.is_dict()) {
    throw ConfigError(fmt::format("{}: a config file must contain a dict at the top level, got a {}", file.string(),
                                  kind_name(root.kind())));
  }
  ResolverRegistry builtins;
  const ResolverRegistry* reg = resolvers;
  if (!reg) {
    builtins = ResolverRegistry::with_builtins();
    reg = &builtins;
  }
  const auto overrides = parse_overrides(args.overrides);
  for (const auto& o : overrides) {
    if (o.is_sweep()) {
      throw OverrideError(fmt::format("Sweep parameters '{}' are not supported by a worker program (use bignlp -m)", o.input));
    }
    apply_override(root, o, *reg);
  }
  resolve_in_place(root, *reg);
  return root;
}

}  // namespace bignlp::config
