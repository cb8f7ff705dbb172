// LaunchSettings: the top-level keys of conf/config.yaml (and conf/cluster/bcm.yaml) that every
// stage needs, read once from the composed config and validated.
//
// Stages are pure functions of (stage config, LaunchSettings); nothing below reads the
// environment or the file system. Paths are kept as given (absolute paths are expected; a
// relative one is used relative to where the job runs, its results directory).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/launch/numa.h"
#include "bignlp/launch/renderer.h"

namespace bignlp::launch {

/// conf/cluster/bcm.yaml.
struct ClusterSettings {
  std::optional<std::string> partition;
  std::optional<std::string> account;
  bool exclusive = true;
  std::optional<int> gpus_per_task;
  std::optional<int> gpus_per_node = 8;
  std::string mem = "0";  ///< in Slurm syntax ("0", "64GB", "1536MB"), converted from the config
  bool overcommit = false;
  std::string job_name_prefix = "bignlp-";
  std::vector<std::string> srun_args;
  /// Any other key of the cluster config, as an `#SBATCH` option ("qos", "constraint",
  /// "exclude", ...; '_' becomes '-'; true: a bare flag; false and null: left out).
  std::map<std::string, std::string> extra_directives;
};

struct LaunchSettings {
  std::vector<std::string> stages;
  ClusterType cluster_type = ClusterType::kBcm;
  std::string stage_dependency = "afterok";  ///< afterok or afterany
  bool dry_run = false;
  std::filesystem::path bignlp_path;
  std::optional<std::filesystem::path> bin_dir;  ///< nullopt: programs are found on PATH
  std::filesystem::path data_dir;
  std::filesystem::path base_results_dir;
  std::optional<std::string> container;
  std::vector<std::string> container_mounts;  ///< the non-null entries, as given
  std::vector<std::pair<std::string, std::string>> env_vars;  ///< non-null, in order
  std::optional<std::filesystem::path> wandb_api_key_file;
  /// Memory of one GPU: training stages whose estimated per-GPU memory exceeds it are refused
  /// (hp/memory_check.h); nullopt: no check.
  std::optional<int> gpu_memory_gb;
  NumaSettings numa;
  ClusterSettings cluster;

  /// `program` in bin_dir, or the bare name when programs are found on PATH.
  std::string program(const std::string& name) const;
  /// pyxis mounts: bignlp_path, data_dir, base_results_dir ("X:X"), then container_mounts
  /// ("SRC" becomes "SRC:SRC"; "SRC:DST[:FLAGS]" stays), duplicates dropped.
  std::vector<std::string> pyxis_mounts() const;
};

/// Slurm `--mem` text for the config's `mem`: 0 -> "0", integer N -> "NGB", a fraction x ->
/// "<x*1024 rounded down>MB", text with a unit ("64G", "500MB") unchanged.
std::string slurm_mem(const config::ConfigNode& mem);

/// Reads and checks the top-level keys of `root` (the composed config; interpolations are
/// resolved here, key by key). Throws ConfigError naming the key for bad values.
LaunchSettings read_launch_settings(const config::ConfigNode& root, const config::ResolverRegistry& resolvers);

}  // namespace bignlp::launch
