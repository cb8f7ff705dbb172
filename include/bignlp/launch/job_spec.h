// JobSpec: one job of a stage as plain data, the contract between stages and renderers.
//
// A stage turns its resolved config into JobSpecs (a data-preparation stage into several, one per
// step); a renderer turns a JobSpec into a script for Slurm, BCP or this machine; a Submitter
// runs or submits it. A JobSpec holds no behaviour, reads no clock, environment or file, and is
// compared field by field in tests.
//
// Commands are argument vectors, never shell text: renderers quote every word (shell.h), so no
// config value can become a command. A command group runs once per task (nodes x
// ntasks_per_node tasks, like one `srun`); the commands of a group run in order inside each task
// and the first failure ends the task. Groups run one after another; a failed group ends the job.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bignlp/launch/array_spec.h"

namespace bignlp::launch {

/// One program run: argv[0] is the program (a path, or a name found on PATH).
using Command = std::vector<std::string>;

/// Commands run by every task of one step.
struct CommandGroup {
  std::vector<Command> commands;
  int nodes = 0;            ///< 0: all nodes of the job
  int ntasks_per_node = 0;  ///< 0: the job's ntasks_per_node
  bool operator==(const CommandGroup&) const = default;
};

/// A container image for pyxis (`srun --container-image`), with its bind mounts.
struct ContainerSpec {
  std::string image;
  std::vector<std::string> mounts;  ///< "SRC:DST[:FLAGS]" each, in order, no duplicates
  bool operator==(const ContainerSpec&) const = default;
};

/// Slurm scheduling options that come from conf/cluster/bcm.yaml (and the stage's run section).
struct SlurmOptions {
  std::optional<std::string> partition;
  std::optional<std::string> account;
  bool exclusive = false;
  std::optional<int> gpus_per_node;
  std::optional<int> gpus_per_task;
  std::optional<int> cpus_per_task;
  std::optional<std::string> mem;      ///< already in Slurm syntax ("0", "64GB", "512MB")
  bool overcommit = false;
  std::vector<std::string> srun_args;  ///< extra words for every srun
  std::map<std::string, std::string> extra_directives;  ///< more `#SBATCH --key=value`
  bool operator==(const SlurmOptions&) const = default;
};

/// Base Command Platform options.
struct BcpOptions {
  std::optional<std::string> launcher;  ///< bcprun --launcher, e.g. "mpirun --allow-run-as-root"
  bool operator==(const BcpOptions&) const = default;
};

struct JobSpec {
  std::string stage;            ///< "training", or "data_preparation" for every data step
  std::string step;             ///< data-preparation step ("download", ...); empty otherwise
  std::string name;             ///< job name as the scheduler shows it (cluster prefix included)
  std::filesystem::path dir;    ///< where the script and the logs go
  std::filesystem::path config_file;  ///< the resolved stage config the commands read

  int nodes = 1;
  int ntasks_per_node = 1;
  std::string time_limit;       ///< Slurm time syntax ("4:00:00", "7-00:00:00"); empty: none
  std::string dependency;       ///< "singleton", "afterok:12", "aftercorr:12", or empty
  std::optional<ArraySpec> array;

  std::vector<std::pair<std::string, std::string>> env;  ///< exported in this order
  std::optional<std::filesystem::path> wandb_api_key_file;  ///< read in the job at run time
  std::vector<CommandGroup> groups;

  std::optional<ContainerSpec> container;
  SlurmOptions slurm;
  BcpOptions bcp;

  bool operator==(const JobSpec&) const = default;

  /// `<dir>/<name>_submission.sh`.
  std::filesystem::path script_path() const;
  /// Slurm pattern of the stdout (`err` false) or stderr log: `<dir>/log-<name>_%j.out`, or
  /// `_%A_%a` for arrays.
  std::string log_pattern(bool err) const;
  /// The log of one concrete job: `%j` replaced by `job_id`, `%A` by `job_id` and `%a` by
  /// `array_index` (arrays).
  std::filesystem::path log_path(bool err, const std::string& job_id, int array_index = -1) const;
  /// Number of tasks of `group`: its nodes x ntasks_per_node, defaulting to the job's.
  int group_tasks(const CommandGroup& group) const;
};

}  // namespace bignlp::launch
