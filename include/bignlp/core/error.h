// Typed errors of bignlp.
//
// Two regimes (docs/architecture.md): user errors (bad config, bad override, bad input files,
// failed submission) and programmer/runtime errors caught by BIGNLP_CHECK. Both derive from
// bignlp::Error and carry a stable process exit code. Library code never calls exit(): it throws,
// and each program's main() has the one catch that prints what() on stderr and returns exit_code().
//
// what() is the complete, user-facing message (already prefixed with file:line: key.path: where
// known); nothing else is printed.
#pragma once

#include <stdexcept>
#include <string>

namespace bignlp {

/// Process exit codes. Stable: scripts and tests rely on them.
enum class ExitCode : int {
  kSuccess = 0,
  kConfig = 1,      ///< composition/interpolation/validation error (Hydra also exits 1)
  kUsage = 2,       ///< bad command line flags (CLI11 convention)
  kOverride = 3,    ///< an override that does not parse or cannot be applied
  kRender = 4,      ///< a job script could not be rendered
  kSubmit = 5,      ///< sbatch/bcp submission failed
  kIo = 6,          ///< a file could not be read or written
  kData = 7,        ///< corrupt or inconsistent data files
  kRuntime = 8,     ///< a failed runtime check (BIGNLP_CHECK), CUDA/NCCL errors
  kInterrupted = 130,
};

/// Base of every error bignlp throws on purpose.
class Error : public std::runtime_error {
 public:
  Error(std::string message, ExitCode code) : std::runtime_error(std::move(message)), code_(code) {}
  ExitCode code() const noexcept { return code_; }
  int exit_code() const noexcept { return static_cast<int>(code_); }

 private:
  ExitCode code_;
};

#define BIGNLP_DEFINE_ERROR(Name, Code)                                          \
  class Name : public Error {                                                    \
   public:                                                                       \
    explicit Name(std::string message) : Error(std::move(message), Code) {}      \
  }

BIGNLP_DEFINE_ERROR(ConfigError, ExitCode::kConfig);
BIGNLP_DEFINE_ERROR(UsageError, ExitCode::kUsage);
BIGNLP_DEFINE_ERROR(OverrideError, ExitCode::kOverride);
BIGNLP_DEFINE_ERROR(RenderError, ExitCode::kRender);
BIGNLP_DEFINE_ERROR(SubmitError, ExitCode::kSubmit);
BIGNLP_DEFINE_ERROR(IoError, ExitCode::kIo);
BIGNLP_DEFINE_ERROR(DataError, ExitCode::kData);
BIGNLP_DEFINE_ERROR(RuntimeError, ExitCode::kRuntime);

#undef BIGNLP_DEFINE_ERROR

}  // namespace bignlp
