#include "bignlp/tensor/tensor.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp {
namespace {

TEST(ShapeTest, NumelStridesAndNegativeIndex) {
  const Shape s{2, 3, 4};
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s.contiguous_strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(s.to_string(), "(2, 3, 4)");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_THROW(s[3], RuntimeError);
  EXPECT_THROW((Shape{1, 2, 3, 4, 5, 6, 7}), RuntimeError);
}

TEST(DTypeTest, NamesAndSizes) {
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI64), 8u);
  EXPECT_EQ(parse_dtype("bf16"), DType::kBF16);
  EXPECT_EQ(parse_dtype("16"), DType::kF16);
  EXPECT_EQ(parse_dtype("float32"), DType::kF32);
  EXPECT_EQ(dtype_name(DType::kU16), "uint16");
  try {
    parse_dtype("fp8");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos);
  }
}

TEST(TensorViewTest, SliceSelectTransposeReshape) {
  std::vector<float> data(24);
  std::iota(data.begin(), data.end(), 0.0f);
  const TensorView t(data.data(), DType::kF32, Shape{2, 3, 4});
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_string(), "fp32(2, 3, 4) cpu");

  const TensorView s = t.slice(1, 1, 2);  // (2, 2, 4)
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.data<float>()[0], 4.0f);
  EXPECT_EQ(s.stride(0), 12);

  const TensorView row = t.select(0, 1);  // (3, 4)
  EXPECT_EQ(row.shape(), (Shape{3, 4}));
  EXPECT_EQ(row.data<float>()[0], 12.0f);
  EXPECT_TRUE(row.is_contiguous());

  const TensorView tr = row.transpose(0, 1);  // (4, 3)
  EXPECT_EQ(tr.shape(), (Shape{4, 3}));
  EXPECT_EQ(tr.stride(0), 1);
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_THROW(tr.reshape(Shape{12}), RuntimeError);

  EXPECT_EQ(t.flatten_2d().shape(), (Shape{6, 4}));
  EXPECT_THROW(t.reshape(Shape{5, 5}), RuntimeError);
  EXPECT_THROW(t.slice(2, 3, 2), RuntimeError);
  EXPECT_THROW(t.data<BFloat16>(), RuntimeError);
  EXPECT_FALSE(TensorView().defined());
}

TEST(BufferTest, OwnsMemoryAndCountsIt) {
  CpuAllocator alloc;
  {
    Buffer a(alloc, DType::kBF16, Shape{1024, 1024});  // 2 MiB: cached after release
    EXPECT_EQ(a.nbytes(), 2u << 20);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.view().raw()) % 64, 0u);
    Buffer b = std::move(a);
    EXPECT_FALSE(a.defined());
    EXPECT_EQ(b.view().dtype(), DType::kBF16);
    EXPECT_EQ(alloc.stats().in_use, 2u << 20);
  }
  EXPECT_EQ(alloc.stats().in_use, 0u);
  EXPECT_EQ(alloc.stats().cached, 2u << 20);
  EXPECT_EQ(alloc.stats().peak_in_use, 2u << 20);
  Buffer again(alloc, DType::kF32, Shape{512, 1024});  // same size: reuses the cached block
  EXPECT_EQ(alloc.stats().cached, 0u);
  alloc.release_cached();
}

}  // namespace
}  // namespace bignlp
