// 16-bit floating-point storage types and their conversions to and from fp32.
//
// BFloat16 (1 sign, 8 exponent, 7 mantissa bits) and Float16 (IEEE binary16: 1, 5, 10) are plain
// 16-bit storage records: arithmetic happens in fp32 (convert, compute, round back), which is what
// every op here does. float -> 16-bit rounds to nearest, ties to even; NaN stays NaN; Float16
// overflows to +-inf and keeps subnormals. The functions are usable from CUDA kernels so device
// code rounds exactly like the CPU reference.
#pragma once

#include <cstdint>
#include <cstring>

#include "bignlp/core/host_device.h"

namespace bignlp {

/// bfloat16 storage: the upper 16 bits of an fp32.
struct BFloat16 {
  std::uint16_t bits = 0;
};

/// IEEE 754 binary16 storage.
struct Float16 {
  std::uint16_t bits = 0;
};

BIGNLP_HOST_DEVICE inline std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

BIGNLP_HOST_DEVICE inline float float_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/// fp32 -> bf16, round to nearest even. Example: 1.00390625f (0x3F808000) -> 0x3F80 (tie, even).
BIGNLP_HOST_DEVICE inline BFloat16 bf16_from_float(float f) {
  const std::uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return BFloat16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
  const std::uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return BFloat16{static_cast<std::uint16_t>(rounded >> 16)};
}

BIGNLP_HOST_DEVICE inline float float_from_bf16(BFloat16 h) {
  return float_from_bits(static_cast<std::uint32_t>(h.bits) << 16);
}

/// fp32 -> fp16, round to nearest even, with subnormals; |f| >= 65520 becomes inf.
BIGNLP_HOST_DEVICE inline Float16 fp16_from_float(float f) {
  std::uint32_t x = float_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) return Float16{static_cast<std::uint16_t>(sign | (x > 0x7F800000u ? 0x7E00u : 0x7C00u))};
  if (x >= 0x477FF000u) return Float16{static_cast<std::uint16_t>(sign | 0x7C00u)};
  if (x < 0x38800000u) {
    // Below the smallest normal (2^-14): a subnormal multiple of 2^-24, or zero.
    if (x <= 0x33000000u) return Float16{static_cast<std::uint16_t>(sign)};
    const std::uint32_t e = x >> 23;
    const std::uint32_t m = (x & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - e;
    std::uint32_t h = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return Float16{static_cast<std::uint16_t>(sign | h)};
  }
  std::uint32_t h = (x - 0x38000000u) >> 13;
  const std::uint32_t rem = x & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return Float16{static_cast<std::uint16_t>(sign | h)};
}

BIGNLP_HOST_DEVICE inline float float_from_fp16(Float16 h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
  const std::uint32_t exp = (h.bits >> 10) & 0x1Fu;
  const std::uint32_t man = h.bits & 0x3FFu;
  if (exp == 0x1Fu) return float_from_bits(sign | 0x7F800000u | (man << 13));
  if (exp != 0) return float_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return float_from_bits(sign);
  // Subnormal: value = man * 2^-24.
  const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

}  // namespace bignlp
