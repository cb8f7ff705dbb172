#include "bignlp/tensor/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace bignlp {
namespace {

TEST(HalfTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16_from_float(1.0f).bits, 0x3F80);
  EXPECT_EQ(bf16_from_float(-2.0f).bits, 0xC000);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(bf16_from_float(1.00390625f).bits, 0x3F80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up.
  EXPECT_EQ(bf16_from_float(1.01171875f).bits, 0x3F82);
  EXPECT_EQ(bf16_from_float(1.005f).bits, 0x3F81);
  EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(float_from_bf16(bf16_from_float(std::numeric_limits<float>::infinity())),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(float_from_bf16(BFloat16{0x4049}), 3.140625f);
}

TEST(HalfTest, Fp16NormalsSubnormalsAndOverflow) {
  EXPECT_EQ(fp16_from_float(1.0f).bits, 0x3C00);
  EXPECT_EQ(fp16_from_float(-2.5f).bits, 0xC100);
  EXPECT_EQ(fp16_from_float(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(fp16_from_float(65519.0f).bits, 0x7BFF);
  EXPECT_EQ(fp16_from_float(65520.0f).bits, 0x7C00);  // rounds to inf
  EXPECT_EQ(fp16_from_float(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(fp16_from_float(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie -> even (0)
  EXPECT_EQ(fp16_from_float(std::ldexp(1.5f, -25)).bits, 0x0001);
  EXPECT_EQ(fp16_from_float(std::ldexp(1.0f, -14)).bits, 0x0400);  // smallest normal
  // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: even -> 1.
  EXPECT_EQ(fp16_from_float(1.0f + std::ldexp(1.0f, -11)).bits, 0x3C00);
  EXPECT_EQ(fp16_from_float(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3C02);
  EXPECT_EQ(float_from_fp16(Float16{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_EQ(float_from_fp16(Float16{0x3555}), 0.333251953125f);
  EXPECT_EQ(float_from_fp16(Float16{0xFC00}), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(float_from_fp16(fp16_from_float(std::nanf("")))));
}

TEST(HalfTest, Fp16RoundTripsEveryFiniteValue) {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const Float16 h{static_cast<std::uint16_t>(bits)};
    const float f = float_from_fp16(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp16_from_float(f).bits, h.bits) << std::hex << bits;
  }
}

}  // namespace
}  // namespace bignlp
