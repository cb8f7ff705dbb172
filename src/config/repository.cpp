#include "bignlp/config/repository.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <system_error>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::config {
namespace {

// bignlp's own `hydra/` group: the shape of Hydra's built-in configs, trimmed to what bignlp uses.
// `override hydra/job_logging: stdout` in conf/config.yaml selects one of these.
const std::map<std::string, std::string, std::less<>> kHydraConfigs = {
    {"hydra/config", R"(# @package hydra
defaults:
  - output: default
  - launcher: basic
  - sweeper: basic
  - help: default
  - hydra_help: default
  - hydra_logging: default
  - job_logging: default
  - _self_
mode: null
searchpath: []
output_subdir: .hydra
overrides:
  hydra: []
  task: []
job:
  name: bignlp
  chdir: null
  override_dirname: ''
  config_name: config
  env_set: {}
  env_copy: []
  config:
    override_dirname:
      kv_sep: '='
      item_sep: ','
      exclude_keys: []
  num: 0
runtime:
  version: 0.1.0
  cwd: ''
  output_dir: ${hydra.run.dir}
  config_sources: []
  choices: {}
verbose: false
)"},
    {"hydra/output/default", R"(# @package hydra
run:
  dir: outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}
sweep:
  dir: multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}
  subdir: ${hydra.job.num}
)"},
    {"hydra/launcher/basic", "_target_: basic\n"},
    {"hydra/sweeper/basic", "_target_: basic\nmax_batch_size: null\nparams: null\n"},
    {"hydra/help/default", R"(app_name: ${hydra.job.name}
header: '${hydra.help.app_name} composes the configuration in conf/ and runs the pipeline stages it selects.'
footer: 'Use --info to see the search path, the defaults tree and where values come from.'
)"},
    {"hydra/hydra_help/default", "hydra_help: ''\n"},
    {"hydra/hydra_logging/default", R"(version: 1
formatters:
  simple:
    format: '[%(asctime)s][HYDRA] %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: simple
    stream: ext://sys.stdout
root:
  level: INFO
  handlers:
  - console
disable_existing_loggers: false
)"},
    {"hydra/hydra_logging/disabled", "version: 1\nroot:\n  level: ERROR\ndisable_existing_loggers: true\n"},
    {"hydra/hydra_logging/none", "version: 1\nroot: null\ndisable_existing_loggers: false\n"},
    {"hydra/job_logging/default", R"(version: 1
formatters:
  simple:
    format: '[%(asctime)s][%(name)s][%(levelname)s] - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: simple
    stream: ext://sys.stdout
  file:
    class: logging.FileHandler
    formatter: simple
    filename: ${hydra.runtime.output_dir}/${hydra.job.name}.log
root:
  level: INFO
  handlers:
  - console
  - file
disable_existing_loggers: false
)"},
    {"hydra/job_logging/stdout", R"(version: 1
formatters:
  simple:
    format: '[%(asctime)s][%(name)s][%(levelname)s] - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: simple
    stream: ext://sys.stdout
root:
  level: INFO
  handlers:
  - console
disable_existing_loggers: false
)"},
    {"hydra/job_logging/disabled", "version: 1\nroot:\n  level: ERROR\ndisable_existing_loggers: true\n"},
    {"hydra/job_logging/none", "version: 1\nroot: null\ndisable_existing_loggers: false\n"},
};

std::string display_path(const fs::path& p) {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  const fs::path abs = fs::absolute(p, ec).lexically_normal();
  if (!ec) {
    const fs::path rel = abs.lexically_relative(cwd);
    if (!rel.empty() && *rel.begin() != "..") return rel.string();
  }
  return abs.string();
}

// Hydra's header rule: blank lines and "# @key value" lines at the top; anything else ends it.
std::optional<std::string> package_header(const std::string& text, const std::string& file) {
  std::optional<std::string> package;
  for (const auto& raw : split(text, '\n')) {
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    std::string_view rest = line;
    if (rest.front() != '#') break;
    rest.remove_prefix(1);
    rest = trim(rest);
    if (rest.empty() || rest.front() != '@') break;
    std::vector<std::string> parts;
    for (const auto& p : split(rest, ' '))
      if (!p.empty()) parts.push_back(p);
    if (parts.size() < 2) throw ConfigError(fmt::format("{}: expected header format '# @KEY VALUE', got '{}'", file, line));
    if (parts.size() > 2) throw ConfigError(fmt::format("{}: too many components in the header '{}'", file, line));
    if (parts[0] == "@package") package = parts[1];
  }
  return package;
}

bool has_yaml_file(const fs::path& dir, std::string_view config_path) {
  std::error_code ec;
  return fs::is_regular_file(dir / (std::string(config_path) + ".yaml"), ec);
}

}  // namespace

const std::map<std::string, std::string, std::less<>>& builtin_hydra_configs() { return kHydraConfigs; }

ConfigRepository::ConfigRepository(const fs::path& primary_dir, const std::vector<fs::path>& extra_dirs) {
  search_path_.push_back(SearchPathEntry{"hydra", "builtin://hydra", {}});
  std::error_code ec;
  if (!primary_dir.empty()) {
    const fs::path abs = fs::absolute(primary_dir, ec).lexically_normal();
    if (!fs::is_directory(abs, ec)) {
      throw ConfigError(fmt::format(
          "Primary config directory not found.\nCheck that the config directory '{}' exists and readable", abs.string()));
    }
    search_path_.push_back(SearchPathEntry{"main", "file://" + abs.string(), abs});
  }
  for (const auto& d : extra_dirs) {
    const fs::path abs = fs::absolute(d, ec).lexically_normal();
    if (!fs::is_directory(abs, ec))
      throw ConfigError(fmt::format("Additional config directory '{}' not found", abs.string()));
    search_path_.push_back(SearchPathEntry{"command-line", "file://" + abs.string(), abs});
  }
}

ConfigRepository::~ConfigRepository() = default;
ConfigRepository::ConfigRepository(ConfigRepository&&) noexcept = default;
ConfigRepository& ConfigRepository::operator=(ConfigRepository&&) noexcept = default;

bool ConfigRepository::group_exists(std::string_view group) const {
  if (group.empty()) return true;
  const std::string prefix = std::string(group) + "/";
  for (const auto& s : search_path_) {
    if (s.dir.empty()) {
      for (const auto& [k, v] : kHydraConfigs)
        if (k.rfind(prefix, 0) == 0) return true;
    } else {
      std::error_code ec;
      if (fs::is_directory(s.dir / std::string(group), ec)) return true;
    }
  }
  return false;
}

bool ConfigRepository::config_exists(std::string_view config_path) const {
  for (const auto& s : search_path_) {
    if (s.dir.empty()) {
      if (kHydraConfigs.count(config_path)) return true;
    } else if (has_yaml_file(s.dir, config_path)) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> ConfigRepository::group_options(std::string_view group) const {
  std::set<std::string> out;
  const std::string prefix = group.empty() ? std::string() : std::string(group) + "/";
  for (const auto& s : search_path_) {
    if (s.dir.empty()) {
      for (const auto& [k, v] : kHydraConfigs) {
        if (k.rfind(prefix, 0) == 0 && k.find('/', prefix.size()) == std::string::npos) out.insert(k.substr(prefix.size()));
      }
      continue;
    }
    std::error_code ec;
    const fs::path dir = s.dir / std::string(group);
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec) && e.path().extension() == ".yaml") out.insert(e.path().stem().string());
    }
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> ConfigRepository::subgroups(std::string_view group) const {
  std::set<std::string> out;
  const std::string prefix = group.empty() ? std::string() : std::string(group) + "/";
  for (const auto& s : search_path_) {
    if (s.dir.empty()) {
      for (const auto& [k, v] : kHydraConfigs) {
        if (k.rfind(prefix, 0) != 0) continue;
        const auto slash = k.find('/', prefix.size());
        if (slash != std::string::npos) out.insert(k.substr(prefix.size(), slash - prefix.size()));
      }
      continue;
    }
    std::error_code ec;
    const fs::path dir = s.dir / std::string(group);
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_directory(ec) && !name.empty() && name[0] != '.' && name != "__pycache__") out.insert(name);
    }
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> ConfigRepository::group_options_recursive(std::string_view group) const {
  std::vector<std::string> out = group_options(group);
  for (const auto& sub : subgroups(group)) {
    const std::string path = group.empty() ? sub : std::string(group) + "/" + sub;
    for (const auto& o : group_options_recursive(path)) out.push_back(sub + "/" + o);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const LoadedConfig* ConfigRepository::load(std::string_view config_path) const {
  if (auto it = cache_.find(config_path); it != cache_.end()) return it->second.get();
  std::string text;
  std::string file;
  std::size_t source_index = 0;
  bool found = false;
  for (std::size_t i = 0; i < search_path_.size() && !found; ++i) {
    const auto& s = search_path_[i];
    if (s.dir.empty()) {
      if (auto it = kHydraConfigs.find(config_path); it != kHydraConfigs.end()) {
        text = it->second;
        file = "builtin://" + std::string(config_path) + ".yaml";
        source_index = i;
        found = true;
      }
    } else if (has_yaml_file(s.dir, config_path)) {
      const fs::path p = s.dir / (std::string(config_path) + ".yaml");
      text = read_file(p);
      file = display_path(p);
      source_index = i;
      found = true;
    }
  }
  if (!found) return nullptr;
  auto loaded = std::make_unique<LoadedConfig>();
  loaded->config_path = std::string(config_path);
  loaded->file = file;
  loaded->source_index = source_index;
  loaded->package_header = package_header(text, file);
  YamlLoadOptions opt;
  opt.display_name = file;
  ConfigNode root = load_yaml_string(text, opt);
  if (!root.is_dict()) {
    throw ConfigError(fmt::format("{}: a config file must contain a dict at the top level, got a {}", file,
                                  kind_name(root.kind())));
  }
  if (const ConfigNode* d = root.find("defaults")) {
    if (!d->is_list()) {
      throw ConfigError(fmt::format("{}Invalid defaults list in '{}', defaults must be a list (got {})",
                                    d->provenance().error_prefix(), config_path, kind_name(d->kind())));
    }
    loaded->defaults = *d;
    root.erase("defaults");
  }
  loaded->content = std::move(root);
  const LoadedConfig* out = loaded.get();
  cache_.emplace(std::string(config_path), std::move(loaded));
  return out;
}

}  // namespace bignlp::config
