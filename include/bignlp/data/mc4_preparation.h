// The mC4 data preparation flow (mt5/download_mc4), four steps:
//
//   prepare           the file list: a checkout of the (m)C4 dataset repository in git_lfs_dir
//                     (cloned from c4_repo_url with GIT_LFS_SKIP_SMUDGE=1 when absent, so its .json.gz
//                     files are Git LFS pointers that carry each file's size), the files of each
//                     language (multilingual/c4-<lang>.tfrecord-*.json.gz; English from the cleaned
//                     en/c4-train.*.json.gz when use_cleaned_english), balanced by size over
//                     node_array_size download workers -> download_worker_mapping. Also fetches the
//                     SentencePiece model (download_tokenizer_url -> tokenizer_model) and vocab.
//   download          worker a (array index) fetches the files of line a of the mapping from
//                     c4_download_url (resume, retries, size checked against the pointer).
//   setup_preprocess  per language, splits of at most max_split_size GB as folders of symlinks
//                     softlinks_dir/<lang>/<lang>_<NNN>/; the splits balanced by size over
//                     node_array_size x workers_per_node slots -> preprocess_worker_mapping.
//   preprocess        slot s = array index x workers_per_node + local task: each of its splits
//                     becomes preprocessed_dir/<lang>_<NNN>_text_document (SentencePiece, no EOD);
//                     rm_downloaded removes the split's source files afterwards.
// Mapping files: one line per worker, comma-separated entries; the download mapping's entries are
// "<path relative to git_lfs_dir>:<bytes>", the preprocess mapping's are split folders.
// Not handled: ftfy text repair (NeMo's --apply-ftfy).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/download.h"
#include "bignlp/data/progress.h"

namespace bignlp::data {

struct Mc4Config {
  std::filesystem::path mc4_dir;
  std::filesystem::path git_lfs_dir;
  std::string c4_repo_url = "https://huggingface.co/datasets/allenai/c4";
  std::string c4_download_url = "https://huggingface.co/datasets/allenai/c4/resolve/main/";
  std::vector<std::string> languages;    ///< {"all"} for every language in the repository
  bool use_cleaned_english = true;
  std::filesystem::path softlinks_dir;
  std::filesystem::path preprocessed_dir;
  double max_split_size_gb = 200;
  std::filesystem::path download_worker_mapping;
  std::filesystem::path preprocess_worker_mapping;
  bool rm_downloaded = false;
  std::string download_vocab_url;
  std::string download_tokenizer_url;
  std::filesystem::path vocab_save_dir;
  std::filesystem::path tokenizer_model;
  int node_array_size = 20;
  int workers_per_node = 4;
  int workers = 1;                       ///< tokenizing threads per preprocessing task
  DownloadOptions download;
  ProgressMode progress = ProgressMode::kAuto;
};

/// One file of the dataset: path relative to git_lfs_dir, language and size in bytes.
struct Mc4File {
  std::string path;
  std::string language;
  std::uint64_t bytes = 0;
};

/// The files of the configured languages found in git_lfs_dir, in a stable order.
std::vector<Mc4File> mc4_list_files(const Mc4Config& config);

void mc4_prepare(const Mc4Config& config, const Logger& log);
void mc4_download(const Mc4Config& config, int worker, const Logger& log);
void mc4_setup_preprocess(const Mc4Config& config, const Logger& log);
void mc4_preprocess(const Mc4Config& config, int slot, const Logger& log);

/// Reads line `index` of a worker mapping file (empty when the worker has nothing to do).
std::vector<std::string> read_worker_mapping(const std::filesystem::path& mapping, int index);
/// Writes a worker mapping file atomically: one line per worker, entries joined with ','.
void write_worker_mapping(const std::filesystem::path& mapping, const std::vector<std::vector<std::string>>& lines);

}  // namespace bignlp::data
