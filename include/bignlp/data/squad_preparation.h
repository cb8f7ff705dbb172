// SQuAD v1.1 / XQuAD for T5/mT5 fine-tuning (tuning.md §2.1, §2.3): the download and the
// text-to-text conversion into line-aligned `<stem>_src.txt` / `<stem>_tgt.txt` files that the
// fine_tuning stage trains and validates on (data/sequence_to_sequence_dataset.h reads them).
//
// Layout under the SQuAD directory (`<data_dir>/squad_data`):
//   v1.1/train-v1.1.json, v1.1/dev-v1.1.json          from rajpurkar.github.io/SQuAD-explorer
//   xquad/xquad.<lang>.json for en es de el ru tr ar vi th zh hi (that order)   from deepmind/xquad
// and the conversions beside each file: v1.1/train-v1.1_src.txt, ..._tgt.txt, ...
//
// Download: data::download_file (libcurl: resume of a .part, retries, progress in the log), then
// the sha256 of every file is printed and checked against the pin when there is one: a mirror
// (`mirror`, a URL or directory laid out as above, for offline clusters) may hold a SHA256SUMS file
// (`sha256sum` format, paths relative to the mirror) which pins its files; the public hosts have no
// pins in bignlp. A mismatching file is removed and the run fails. Deliberate difference from the
// launcher: a file is skipped when it is there complete (checked against its pin), not a whole
// version when its directory exists (tuning.md §10.15), so an interrupted download resumes.
//
// Conversion (byte-exact with the launcher's preprocess_squad_for_fine_tuning): per question of
// data[] -> paragraphs[] -> qas[] in file order, a source line
//   "Title: " + title + " Paragraph: " + context + " Question: " + question + "\n"
// and a target line answer + "\n", where each real newline inside a field becomes the two
// characters '\' 'n' and nothing else is escaped (UTF-8 written raw). Train mode writes one pair
// per answer, dev mode one per question with its first answer; questions without answers are
// skipped. A pair whose two outputs both exist is not rewritten; outputs are written atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/download.h"  // sha256_file

namespace bignlp::data {

/// One file of a SQuAD-family dataset: where it comes from and where it goes (relative path).
struct SquadFile {
  std::string url;            ///< public URL
  std::string relative_path;  ///< under the SQuAD directory, e.g. "v1.1/train-v1.1.json"
};

/// The files of `version` ("v1.1" or "xquad"; throws ConfigError otherwise), in the launcher's order.
std::vector<SquadFile> squad_files(const std::string& version);

struct SquadDownloadOptions {
  /// Empty: the public URLs. Otherwise a base URL (file://, http(s)://) or a local directory whose
  /// <relative_path> files replace the public ones (an optional SHA256SUMS there pins them).
  std::string mirror;
  int max_attempts = 6;
};

/// Downloads the files of `version` into `squad_dir` (see the file comment). Throws IoError for a
/// failed transfer, DataError for a checksum mismatch (the file is removed).
void download_squad(const std::filesystem::path& squad_dir, const std::string& version,
                    const SquadDownloadOptions& options, const Logger& log);

enum class SquadSplitMode { kTrain, kDev };

/// Lines written by a conversion.
struct SquadConversionStats {
  std::size_t examples = 0;   ///< line pairs written
  bool skipped = false;       ///< both outputs existed already
};

/// The source/target files of a SQuAD JSON file: "<path without .json>_src.txt" / "_tgt.txt".
std::filesystem::path squad_src_path(const std::filesystem::path& json_path);
std::filesystem::path squad_tgt_path(const std::filesystem::path& json_path);

/// Converts one SQuAD-format file (see the file comment). Throws DataError naming the file and the
/// JSON path of a malformed entry (e.g. "data[3].paragraphs[0].qas[2].answers[0].text").
SquadConversionStats convert_squad_for_fine_tuning(const std::filesystem::path& json_path, SquadSplitMode mode,
                                                   const Logger& log);

/// The fine_tuning stage's data preparation for run.task_name `task` ("squad": SQuAD v1.1; "xquad":
/// SQuAD v1.1 train plus XQuAD): downloads what the task reads into `squad_dir` and converts
/// train-v1.1.json (train mode), dev-v1.1.json and the xquad files (dev mode).
void prepare_squad_for_fine_tuning(const std::filesystem::path& squad_dir, const std::string& task,
                                   const SquadDownloadOptions& options, const Logger& log);

}  // namespace bignlp::data
