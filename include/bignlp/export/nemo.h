// .nemo archives (formats.md §5.1): export of a bignlp checkpoint, import back into one.
//
// Export writes an uncompressed POSIX tar (members named "./...", as NeMo's tarfile arcname ".")
//   ./model_config.yaml          the checkpoint's `model:` section (its typed family config when
//                                the checkpoint has none, e.g. an import), resolved, with
//                                `target` (the NeMo model class of the family), `nemo_version`,
//                                the output's tensor/pipeline parallel sizes, and each tokenizer
//                                file (tokenizer.vocab_file, merge_file, model) copied in as
//                                "<32 hex>_<basename>" and referenced as "nemo:<32 hex>_<basename>"
//   ./model_weights.ckpt                          TP = PP = 1, or
//   ./mp_rank_XX/model_weights.ckpt               PP = 1, or
//   ./tp_rank_XX_pp_rank_XXX/model_weights.ckpt   PP > 1
//                                a torch.save state dict (torch_file.h) of fp32 tensors under
//                                NeMo's names, transformer layers numbered LOCAL to their stage
//   ./bignlp_metadata.json       the checkpoint's metadata (step, typed config, ...) so that an
//                                import gives back the same checkpoint; NeMo ignores it
// The tensors of each output rank come from the checkpoint one full tensor at a time
// (checkpoint/layout.h), split for the output layout (partition.h): resharding happens on the way,
// the padded vocabulary rows are cut or zero-filled for the new TP size, and no second copy of the
// model is held. Everything is staged beside the output and renamed into place at the end.
//
// Import unpacks an archive (uncompressed or gzip), reads model_config.yaml, checks the rank
// folders its parallel sizes imply, and reads each rank's model_weights.ckpt (zip torch.save files,
// through the restricted pickle reader) into a bignlp checkpoint of the same layout; every
// parameter the family's model has for that rank must be present with its shape, and a tensor the
// model does not have is an error (both name the file and tensor). The family and its typed config
// come from bignlp_metadata.json when present; otherwise from model_config.yaml's `target`, which
// for NeMo's own GPT archives gives the GPT config (NeMo defaults for keys the file lacks; the
// vocabulary size from the tokenizer's vocab file, else the embedding rows). Tokenizer artifacts are
// copied into <checkpoint>/artifacts/ and recorded by absolute path.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "bignlp/core/logging.h"

namespace bignlp::exporting {

inline constexpr const char* kNemoVersion = "1.17.0";

struct NemoExportOptions {
  int tensor_model_parallel_size = 0;    ///< 0: the checkpoint's
  int pipeline_model_parallel_size = 0;  ///< 0: the checkpoint's
  /// Tokenizer files to pack instead of the checkpoint's (keys vocab_file, merge_file, model).
  std::map<std::string, std::string> tokenizer_files;
  bool overwrite = false;                ///< replace an existing output file
  /// The model_config.yaml base (a `model:` section) instead of the checkpoint's (null: the checkpoint's).
  nlohmann::json model_config;
};

struct ConversionStats {
  std::uint64_t tensor_bytes = 0;  ///< fp32 bytes of the tensors written
  std::uint64_t file_bytes = 0;    ///< size of the output
};

/// The NeMo model class (`target`) of a bignlp family; throws ConfigError for unknown families.
std::string nemo_target_for_family(const std::string& family);

/// Writes checkpoint `checkpoint` as the .nemo file `output`. Throws ConfigError (layout, existing
/// output without overwrite), DataError (unreadable checkpoint), IoError.
ConversionStats export_nemo(const std::filesystem::path& checkpoint, const std::filesystem::path& output,
                            const NemoExportOptions& options, const Logger& log);

/// Reads the .nemo file `nemo` into the new bignlp checkpoint directory `output` (refused when it
/// exists). Throws DataError naming the archive, rank file and tensor; IoError.
void import_nemo(const std::filesystem::path& nemo, const std::filesystem::path& output, const Logger& log);

}  // namespace bignlp::exporting
