// Fetching the zero-shot tasks' files (machines with internet): the table of public URLs and
// sha256 checksums is conf/eval_task_files.yaml; each entry is downloaded with
// data::download_file (curl, resume, retries), checked against its sha256 when the table pins one
// (the digest is printed either way), and archives (.zip, .tar.gz) are unpacked with unzip / tar
// into the data dir, giving the layout load_task reads (docs/evaluation.md, "Task files").
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/download.h"

namespace bignlp::eval {

/// conf/eval_task_files.yaml of the tree `argv0` was built in (or installed with).
std::filesystem::path default_task_manifest(const std::string& argv0);

/// Downloads the files of `tasks` listed in `manifest` into `data_dir`. Throws ConfigError for a
/// malformed manifest or a task it lacks, IoError/DataError for failed downloads and checksums.
void download_tasks(const std::filesystem::path& manifest, const std::vector<std::string>& tasks,
                    const std::filesystem::path& data_dir, const Logger& log);

using data::sha256_file;  ///< hex sha256 of a file (data/download.h)

}  // namespace bignlp::eval
