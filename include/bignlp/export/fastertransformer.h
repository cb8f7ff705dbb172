// FasterTransformer GPT export inside a Triton model repository (formats.md §6, inference-facts §5).
//
//   <repo>/<model_name>/config.pbtxt                  Triton model config (fastertransformer backend)
//   <repo>/<model_name>/1/<T>-gpu/                    T = inference tensor-parallel size
//                                                     ("unfusedQKV-<T>-gpu" without fused QKV)
//       config.ini                                    [gpt] section as Python's configparser writes it
//       model.wte.bin, model.wpe.bin, model.final_layernorm.{weight,bias}.bin
//       model.layers.<L>.<...>[.<rank>].bin           raw little-endian fp32/fp16, no header
//       vocab.json, merges.txt / tokenizer.model      the tokenizer files, copied
// Every 2-D weight but the embeddings is transposed to [in, out]; the fused QKV weight
// [3h, h] (output rows ordered [head, (q,k,v), head_dim], NeMo) becomes [h, 3, h/T] per inference
// rank (all Q heads, then K, then V, of the rank's whole heads), its bias [3, h/T]; unfused: [3, h, h/T].
// Layers are numbered globally (pipeline stages flattened). Column-parallel tensors are split on
// their output axis, row-parallel ones on their input axis, over T ranks; the rest are written once.
// The tensors come from the checkpoint one full tensor at a time (checkpoint/layout.h), so any
// training TP/PP converts to any T that divides the heads and the FFN size (FT's converter needs T
// and the training TP to divide one another; the result is the same where it works).
// The model directory is assembled in a staging directory and renamed into place; an existing one
// is refused unless `overwrite`.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "bignlp/core/logging.h"
#include "bignlp/tensor/dtype.h"

namespace bignlp::exporting {

struct FtExportOptions {
  std::string model_name = "model";
  int tensor_para_size = 1;             ///< inference TP (T)
  int pipeline_para_size = 1;           ///< config.pbtxt pipeline_para_size (chosen at run time by FT)
  DType weight_data_type = DType::kF32; ///< fp32 or fp16 weight files
  bool fused_qkv = true;
  int processes = 1;                    ///< layers converted in parallel (threads)
  // config.pbtxt
  int max_batch_size = 1;
  std::string data_type = "fp16";       ///< runtime compute type: fp32, fp16, bf16
  bool int8_mode = false;
  bool enable_custom_all_reduce = false;
  bool overwrite = false;
};

/// "1-gpu", or "unfusedQKV-1-gpu".
std::string ft_weights_folder(const FtExportOptions& options);

/// config.ini text for a GPT config (the family's JSON config), vocabulary rows, start/end ids.
std::string ft_config_ini(const nlohmann::json& gpt_config, std::int64_t padded_vocab, int tensor_para_size,
                          DType weight_data_type, std::int64_t start_id, std::int64_t end_id);

/// config.pbtxt text (protobuf text format, fields in model_config.proto field-number order and map
/// keys sorted, as Python's text_format writes them) for `model_checkpoint_path`.
std::string ft_config_pbtxt(const FtExportOptions& options, const std::filesystem::path& model_checkpoint_path);

/// Exports GPT checkpoint `checkpoint` into repository `repo` (creates <repo>/<model_name>).
/// Throws ConfigError (non-GPT family, T not dividing heads/FFN, existing output), DataError, IoError.
void export_fastertransformer(const std::filesystem::path& checkpoint, const std::filesystem::path& repo,
                              const FtExportOptions& options, const Logger& log);

}  // namespace bignlp::exporting
