#include "bignlp/model/relative_position_bias.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::model {

RelativePositionBias::RelativePositionBias(ParameterStore& store, const RelativePositionBiasSpec& spec, int head_offset,
                                           int local_heads)
    : spec_(spec), head_offset_(head_offset), local_heads_(local_heads > 0 ? local_heads : spec.num_heads) {
  BIGNLP_CHECK(spec.num_buckets > 0 && spec.max_distance > 0 && spec.num_heads > 0,
               "{}: num_buckets, max_distance and num_heads must be positive", spec.name);
  BIGNLP_CHECK(head_offset_ >= 0 && head_offset_ + local_heads_ <= spec.num_heads,
               "{}: heads [{}, {}) outside the {} heads", spec.name, head_offset_, head_offset_ + local_heads_,
               spec.num_heads);
  Parameter w;
  w.name = spec.name + ".weight";
  w.shape = Shape{spec.num_buckets, spec.num_heads};
  w.init = ParamInit::kNormal;
  w.init_std = spec.init_std;
  w.weight_decay = true;
  // Replicated over TP, but each rank reads (and so differentiates) its own heads' columns only:
  // the gradient is a partial sum over TP ranks, to be all-reduced like a sequence-parallel one.
  w.sequence_parallel = local_heads_ < spec.num_heads;
  table_ = &store.add(std::move(w));
}

int RelativePositionBias::bucket(std::int64_t rel, bool bidirectional, int num_buckets, int max_distance) {
  int nb = num_buckets;
  int out = 0;
  std::int64_t n = 0;
  if (bidirectional) {
    nb /= 2;
    if (rel > 0) out = nb;
    n = rel < 0 ? -rel : rel;
  } else {
    n = rel < 0 ? -rel : 0;
  }
  const int max_exact = nb / 2;
  if (n < max_exact) return out + static_cast<int>(n);
  // fp32 as PyTorch computes it (T5 / NeMo): the truncation decides the bucket.
  const float scaled = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                       static_cast<float>(nb - max_exact);
  const int large = max_exact + static_cast<int>(scaled);
  return out + std::min(large, nb - 1);
}

void RelativePositionBias::forward(const ops::OpContext& ctx, std::int64_t query_offset, const TensorView& bias) const {
  BIGNLP_CHECK(bias.rank() == 3 && bias.size(0) == local_heads_ && bias.dtype() == DType::kF32 && bias.is_contiguous(),
               "{}: bias must be a contiguous fp32 ({}, Tq, Tk) tensor, got {}", spec_.name, local_heads_,
               bias.to_string());
  const std::int64_t tq = bias.size(1), tk = bias.size(2), h_all = spec_.num_heads;
  std::vector<float> table(static_cast<std::size_t>(spec_.num_buckets * h_all));
  ops::copy(ctx, table_->value, TensorView(table.data(), DType::kF32, table_->shape));
  std::vector<float> out(static_cast<std::size_t>(local_heads_ * tq * tk));
  for (std::int64_t i = 0; i < tq; ++i)
    for (std::int64_t j = 0; j < tk; ++j) {
      const int b = bucket(j - (query_offset + i), spec_.bidirectional, spec_.num_buckets, spec_.max_distance);
      for (int h = 0; h < local_heads_; ++h)
        out[static_cast<std::size_t>((h * tq + i) * tk + j)] = table[static_cast<std::size_t>(b * h_all + head_offset_ + h)];
    }
  ops::copy(ctx, TensorView(out.data(), DType::kF32, bias.shape()), bias);
}

void RelativePositionBias::backward(const ops::OpContext& ctx, std::int64_t query_offset, const TensorView& dbias) const {
  BIGNLP_CHECK(dbias.rank() == 3 && dbias.size(0) == local_heads_ && dbias.dtype() == DType::kF32,
               "{}: dbias must be an fp32 ({}, Tq, Tk) tensor, got {}", spec_.name, local_heads_, dbias.to_string());
  if (!table_->trainable) return;
  const std::int64_t tq = dbias.size(1), tk = dbias.size(2), h_all = spec_.num_heads;
  std::vector<float> d(static_cast<std::size_t>(dbias.numel()));
  ops::copy(ctx, dbias, TensorView(d.data(), DType::kF32, dbias.shape()));
  // Sums in double, positions in a fixed order: deterministic.
  std::vector<double> acc(static_cast<std::size_t>(spec_.num_buckets * h_all), 0.0);
  for (std::int64_t i = 0; i < tq; ++i)
    for (std::int64_t j = 0; j < tk; ++j) {
      const int b = bucket(j - (query_offset + i), spec_.bidirectional, spec_.num_buckets, spec_.max_distance);
      for (int h = 0; h < local_heads_; ++h)
        acc[static_cast<std::size_t>(b * h_all + head_offset_ + h)] += d[static_cast<std::size_t>((h * tq + i) * tk + j)];
    }
  std::vector<float> grad(acc.begin(), acc.end());
  const TensorView host(grad.data(), DType::kF32, table_->shape);
  if (ctx.device.is_cpu()) {
    ops::add(ctx, table_->grad, host, table_->grad);
    return;
  }
  BIGNLP_CHECK(ctx.allocator != nullptr, "{}: backward on a device needs ctx.allocator", spec_.name);
  Buffer staged(*ctx.allocator, DType::kF32, table_->shape);
  ops::copy(ctx, host, staged);
  ops::add(ctx, table_->grad, staged, table_->grad);
}

}  // namespace bignlp::model
