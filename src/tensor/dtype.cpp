#include "bignlp/tensor/dtype.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "fp32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "fp16";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU16: return "uint16";
  }
  return "?";
}

DType parse_dtype(std::string_view name) {
  const std::string n = to_lower(trim(name));
  if (n == "fp32" || n == "float32" || n == "float" || n == "32") return DType::kF32;
  if (n == "bf16" || n == "bfloat16") return DType::kBF16;
  if (n == "fp16" || n == "float16" || n == "half" || n == "16") return DType::kF16;
  if (n == "int32") return DType::kI32;
  if (n == "int64") return DType::kI64;
  if (n == "uint16") return DType::kU16;
  throw UsageError(fmt::format("unknown dtype '{}': expected one of fp32, bf16, fp16, int32, int64, uint16", name));
}

}  // namespace bignlp
