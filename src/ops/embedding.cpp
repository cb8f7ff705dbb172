#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_EMBEDDING
#define BIGNLP_OPS_CUDA_EMBEDDING 0
#endif

namespace bignlp::ops {

using namespace detail;

void embedding_forward(const OpContext& ctx, const TensorView& ids, const TensorView& table, const TensorView& out,
                       std::int64_t vocab_start, bool accumulate) {
  constexpr std::string_view op = "embedding_forward";
  check_on_device(ctx, op, "ids", ids);
  check_on_device(ctx, op, "table", table);
  check_on_device(ctx, op, "out", out);
  check_dtype(op, "ids", ids, {DType::kI32});
  check_rank(op, "ids", ids, 1);
  check_rank(op, "table", table, 2);
  check_float(op, "table", table);
  check_dtype(op, "out", out, {table.dtype()});
  check_shape(op, "out", out, Shape{ids.size(0), table.size(1)});
  check_contiguous(op, "ids", ids);
  check_contiguous(op, "table", table);
  check_contiguous(op, "out", out);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_EMBEDDING, embedding_forward, ctx, ids, table, out, vocab_start, accumulate);
}

void embedding_backward(const OpContext& ctx, const TensorView& ids, const TensorView& dout, const TensorView& dtable,
                        std::int64_t vocab_start) {
  constexpr std::string_view op = "embedding_backward";
  check_on_device(ctx, op, "ids", ids);
  check_on_device(ctx, op, "dout", dout);
  check_on_device(ctx, op, "dtable", dtable);
  check_dtype(op, "ids", ids, {DType::kI32});
  check_rank(op, "ids", ids, 1);
  check_float(op, "dout", dout);
  check_dtype(op, "dtable", dtable, {DType::kF32});
  check_rank(op, "dtable", dtable, 2);
  check_shape(op, "dout", dout, Shape{ids.size(0), dtable.size(1)});
  check_contiguous(op, "ids", ids);
  check_contiguous(op, "dout", dout);
  check_contiguous(op, "dtable", dtable);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_EMBEDDING, embedding_backward, ctx, ids, dout, dtable, vocab_start);
}

}  // namespace bignlp::ops
