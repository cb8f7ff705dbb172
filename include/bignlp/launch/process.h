// Running other programs: sbatch, bash, and the workers of local jobs.
//
// Programs are started with posix_spawnp (PATH lookup, no shell), so arguments are passed as
// they are. Exit codes follow the shell's convention: the program's status, 128 + N when it
// was killed by signal N, and 127 when it could not be started at all.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace bignlp::launch {

/// What a finished program printed and how it ended.
struct CapturedRun {
  int exit_code = 0;
  std::string out;
  std::string err;  ///< also holds the reason when the program could not be started
};

/// Runs `argv` in `cwd` (empty: ours) with our environment, stdin from /dev/null, and returns
/// its output. Never throws for a failing program; throws IoError for pipe/poll failures.
CapturedRun run_captured(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

/// Runs `argv` in `cwd` with our stdin/stdout/stderr and returns its exit code.
int run_inherited(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

/// Shell-style exit code of a waitpid() status.
int exit_code_of(int wait_status);

}  // namespace bignlp::launch
