// The Pile data preparation flow (gpt3/download_gpt3_pile, t5/download_t5_pile): three steps, each
// run by one worker per shard (the Slurm array index is the shard number).
//
//   download    <the_pile_url><NN>.jsonl.zst -> <data_dir>/<NN>.jsonl.zst (resume, retries, size
//               check); also fetches the tokenizer files (download_vocab_url -> vocab_save_dir/
//               vocab.json or vocab.txt, download_merges_url -> merges_save_dir/merges.txt) when
//               they are missing.
//   extract     <NN>.jsonl.zst -> <NN>.jsonl (streaming zstd, atomic); rm_downloaded removes the .zst.
//   preprocess  <NN>.jsonl (or the .zst when it was not extracted) ->
//               <data_dir>/<output_prefix>_<NN>_text_document.{bin,idx}, --append-eod, the GPT-2 or
//               cased-BERT tokenizer; rm_extracted removes the .jsonl.
// NN is the shard number with two digits. Every step is idempotent: its output already being there
// (or a later step's) makes it a no-op, so a failed array can simply be resubmitted.
#pragma once

#include <filesystem>
#include <string>

#include "bignlp/core/logging.h"
#include "bignlp/data/download.h"
#include "bignlp/data/preprocess.h"
#include "bignlp/data/tokenizer_factory.h"

namespace bignlp::data {

struct PileConfig {
  std::string the_pile_url;              ///< base URL ("https://.../pile/train/")
  std::filesystem::path data_dir;
  std::string output_prefix = "my-gpt3";
  std::string tokenizer_type = "GPT2BPETokenizer";  ///< or BertWordPieceCase (T5)
  std::string download_vocab_url;        ///< empty: the vocab file must already exist
  std::string download_merges_url;
  std::filesystem::path vocab_save_dir;
  std::filesystem::path merges_save_dir;
  bool rm_downloaded = true;
  bool rm_extracted = true;
  bool append_eod = true;
  int workers = 1;                       ///< tokenizing threads
  DownloadOptions download;
  ProgressMode progress = ProgressMode::kAuto;
};

/// "07" for shard 7.
std::string pile_shard_name(int file_number);
/// The tokenizer files the flow uses: vocab_save_dir/vocab.json (GPT-2) or vocab.txt (BERT), and
/// merges_save_dir/merges.txt (GPT-2).
TokenizerSpec pile_tokenizer_spec(const PileConfig& config);
/// <data_dir>/<output_prefix>_<NN>_text_document.
std::filesystem::path pile_dataset_prefix(const PileConfig& config, int file_number);

void pile_download(const PileConfig& config, int file_number, const Logger& log);
void pile_extract(const PileConfig& config, int file_number, const Logger& log);
void pile_preprocess(const PileConfig& config, int file_number, const Logger& log);

/// Downloads `url` to `dest` unless it exists (empty url: it must exist). Shared by the flows.
void fetch_tokenizer_file(const std::string& url, const std::filesystem::path& dest, const DownloadOptions& options,
                          const Logger& log);

}  // namespace bignlp::data
