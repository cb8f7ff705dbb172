// Loading a FasterTransformer GPT model repository (what bignlp-export writes, formats.md §6) into
// the GPT family's model::Model: the inverse of export/fastertransformer.h.
//
//   <repo>/<name>/config.pbtxt           Triton model config: default_model_filename, parameters
//                                        (data_type, int8_mode, tensor_para_size, ...)
//   <repo>/<name>/<version>/<T>-gpu/     config.ini ([gpt]) and the raw weight files of T inference
//                                        ranks; vocab.json + merges.txt or tokenizer.model
// `open_ft_repository` takes any of the three levels: the repository (one model in it, or the one
// named), the model directory, or the weights folder. The highest numbered version directory is
// used; the weights folder is config.pbtxt's default_model_filename, else the only "*-gpu" folder.
// Re-assembly (exact): each 2-D weight file is [in, out] and is transposed back to NeMo's [out, in];
// the T rank files are concatenated on the axis the exporter split; the fused QKV [h, 3, h/T] per
// rank ([3, h, h/T] in "unfusedQKV-" folders), all Q heads then K then V, goes back to NeMo's
// row order (head, (q, k, v), head_dim); the bias [3, h/T] likewise. The word embedding rows are
// the padded vocabulary of config.ini (vocab_size); the model's real vocabulary V is the
// tokenizer's (its ids), or all rows when the repository holds no tokenizer (FT: padded rows are
// sampleable). The model's own padding (its tensor-parallel size) keeps the rows both share.
// What config.ini cannot express in the GPT family is refused naming the key (e.g.
// layernorm_type post_layernorm, use_attention_linear_bias, prompt tables, a separate lm_head);
// config.ini records no activation: FT computes GeLU with the tanh approximation, and so does the
// loaded model. int8_mode 1 in config.pbtxt is refused (no int8 weight-only GEMMs here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bignlp/data/tokenizer.h"
#include "bignlp/model/gpt_config.h"
#include "bignlp/model/model_family.h"
#include "bignlp/tensor/dtype.h"

namespace bignlp::infer {

struct FtRepository {
  std::filesystem::path model_dir;    ///< <repo>/<name> (empty when opened at the weights folder)
  std::filesystem::path weights_dir;  ///< <model_dir>/<version>/<T>-gpu
  std::string model_name;             ///< config.pbtxt name, else the model directory's name
  // config.ini [gpt]
  int tensor_para_size = 1;
  std::int64_t head_num = 0, size_per_head = 0, inter_size = 0, max_pos_seq_len = 0, padded_vocab = 0;
  int num_layer = 0;
  DType weight_data_type = DType::kF32;
  float layernorm_eps = 1e-6f;  ///< FT's default when config.ini does not say
  std::int64_t start_id = 0, end_id = 0;
  bool fused_qkv = true;        ///< false in "unfusedQKV-<T>-gpu" folders
  /// config.pbtxt `parameters` (string values), empty without config.pbtxt.
  std::map<std::string, std::string> parameters;
};

/// Finds and reads the model (see the file comment). `model_name` picks a model of a repository
/// holding several. Throws DataError naming the file (and line) for malformed or unsupported
/// contents, IoError for missing files.
FtRepository open_ft_repository(const std::filesystem::path& dir, const std::string& model_name = {});

/// The tokenizer the weights folder holds (GPT-2 BPE vocab.json + merges.txt, or a SentencePiece
/// tokenizer.model), or null when it holds none.
std::unique_ptr<data::Tokenizer> load_ft_tokenizer(const FtRepository& repo);

/// The compute precision config.pbtxt's data_type asks for (fp32, fp16, bf16), or nullopt.
std::optional<model::Precision> ft_data_type(const FtRepository& repo);

/// The GPT config of the repository's model for `tensor_model_parallel_size` ranks, with
/// vocabulary `vocab_size` (<= the padded rows) and `precision`.
model::GptConfig ft_gpt_config(const FtRepository& repo, std::int64_t vocab_size, int tensor_model_parallel_size,
                               model::Precision precision);

/// The repository's model built by `registry` (family "gpt") for `parallel` (any TP x PP whose TP
/// divides the heads and the FFN size) with this rank's share of the re-assembled weights.
/// Precision: `precision`, else config.pbtxt's data_type, else fp32. The vocabulary: the
/// tokenizer's when there is one, else the padded rows. Throws DataError naming the weight file
/// for a missing file or one whose size is not the expected shape's.
std::unique_ptr<model::Model> load_model_from_ft_repository(
    const FtRepository& repo, const ops::OpContext& ctx, std::optional<model::Precision> precision = std::nullopt,
    const parallel::ParallelContext& parallel = {},
    const model::ModelFamilyRegistry& registry = model::ModelFamilyRegistry::builtin());

/// What bignlp-generate and bignlp-serve run: a bignlp checkpoint (`checkpoint`) or a
/// FasterTransformer repository (`model_repo`, model `repo_model_name` of it), exactly one given.
struct InferenceModel {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<data::Tokenizer> tokenizer;  ///< null when the source records none
  /// The default end id: the repository's config.ini end_id (when a token id of the model), else
  /// the tokenizer's end-of-document (or end-of-sequence) id.
  std::optional<std::int32_t> end_id;
  std::string name;     ///< the repository's model name, else the checkpoint directory's name
  std::string source;   ///< for log lines: "checkpoint X" or "FasterTransformer repository X"
};

/// Loads the model (precision: `precision`; repositories fall back to config.pbtxt's data_type,
/// checkpoints to their own) on one rank or `parallel`'s ranks. Throws UsageError when neither
/// or both sources are given.
InferenceModel load_inference_model(const std::filesystem::path& checkpoint, const std::filesystem::path& model_repo,
                                    const std::string& repo_model_name, const ops::OpContext& ctx,
                                    std::optional<model::Precision> precision,
                                    const parallel::ParallelContext& parallel = {});

}  // namespace bignlp::infer
