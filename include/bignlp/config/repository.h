// ConfigRepository: the config search path and what it holds.
//
// The search path is, in order: bignlp's built-in `hydra/` configs (provider "hydra"), the primary
// config directory (--config-path, provider "main") and each --config-dir (provider
// "command-line"). A config path is a '/'-separated name without ".yaml" ("training/gpt3/5b");
// the first source holding it wins. A group is a directory ("training", "training/gpt3"); its
// options are the union over all sources. Loaded configs are cached (the repository is not
// thread-safe; compose one config per repository at a time).
//
// Loading splits a file into its content, its `defaults:` list and its `# @package` header (among
// the leading comment/blank lines). A config file must contain a dict.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/node.h"

namespace bignlp::config {

/// One entry of the search path, shown as Hydra shows it ("provider=main, path=file:///abs/conf").
struct SearchPathEntry {
  std::string provider;          ///< "hydra", "main", "command-line"
  std::string path;              ///< "file:///abs/dir" or "builtin://hydra"
  std::filesystem::path dir;     ///< the directory (empty for built-in sources)
  std::string to_string() const { return "provider=" + provider + ", path=" + path; }
};

/// A config file split into its parts.
struct LoadedConfig {
  std::string config_path;                    ///< "training/gpt3/5b"
  std::string file;                           ///< where it was read from (for messages)
  ConfigNode content;                         ///< the file's dict without `defaults`
  std::optional<ConfigNode> defaults;         ///< the `defaults:` value, when present
  std::optional<std::string> package_header;  ///< from "# @package X"
  std::size_t source_index = 0;               ///< index into search_path()
};

class ConfigRepository {
 public:
  /// `primary_dir` may be empty (no main source). Throws ConfigError when a directory does not
  /// exist ("Primary config directory not found..." / "Additional config directory '...' not
  /// found").
  ConfigRepository(const std::filesystem::path& primary_dir, const std::vector<std::filesystem::path>& extra_dirs);
  ~ConfigRepository();
  ConfigRepository(ConfigRepository&&) noexcept;
  ConfigRepository& operator=(ConfigRepository&&) noexcept;

  const std::vector<SearchPathEntry>& search_path() const { return search_path_; }

  bool group_exists(std::string_view group) const;
  bool config_exists(std::string_view config_path) const;
  /// Options directly in `group` (file names without .yaml), sorted, union over sources.
  std::vector<std::string> group_options(std::string_view group) const;
  /// Options in `group` and its subgroups, as paths relative to it ("gpt3/126m"), sorted.
  std::vector<std::string> group_options_recursive(std::string_view group) const;
  /// Subgroups directly in `group` ("" = top level), sorted.
  std::vector<std::string> subgroups(std::string_view group) const;

  /// The config at `config_path`, nullptr if no source has it. Throws ConfigError for malformed
  /// files (YAML errors, non-dict content, a `defaults` that is not a list).
  const LoadedConfig* load(std::string_view config_path) const;

 private:
  std::vector<SearchPathEntry> search_path_;
  mutable std::map<std::string, std::unique_ptr<LoadedConfig>, std::less<>> cache_;
};

/// Text of bignlp's built-in `hydra/...` configs (config path -> YAML), exposed for tests.
const std::map<std::string, std::string, std::less<>>& builtin_hydra_configs();

}  // namespace bignlp::config
