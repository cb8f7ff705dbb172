// DType: the element type of a tensor, as runtime data.
//
// Models, layers and schedules carry a DType value and dispatch once at the op boundary; only the
// op implementations (and kernels) switch on it. Names are the ones configs and checkpoints use:
// "fp32", "bf16", "fp16", "int32", "int64", "uint16".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bignlp/tensor/half.h"

namespace bignlp {

enum class DType : std::uint8_t { kF32, kBF16, kF16, kI32, kI64, kU16 };

/// Bytes per element: 4, 2, 2, 4, 8, 2.
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU16: return 2;
  }
  return 0;
}

/// "fp32", "bf16", "fp16", "int32", "int64", "uint16".
std::string_view dtype_name(DType t);

/// Parses a dtype name (also "float32", "bfloat16", "float16", "32", "16"); throws UsageError with
/// the accepted names otherwise.
DType parse_dtype(std::string_view name);

/// True for fp32, bf16 and fp16.
constexpr bool is_floating(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

/// The DType of a C++ element type: dtype_of<float>() == DType::kF32.
template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::kBF16; }
template <> constexpr DType dtype_of<Float16>() { return DType::kF16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::kU16; }

}  // namespace bignlp
