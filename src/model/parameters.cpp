#include "bignlp/model/parameters.h"

#include <vector>

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/ops/philox.h"

namespace bignlp::model {

std::uint64_t fnv1a64(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

Parameter& ParameterStore::add(Parameter spec) {
  BIGNLP_CHECK(!allocated_, "parameter '{}' registered after the store was allocated", spec.name);
  BIGNLP_CHECK(find(spec.name) == nullptr, "parameter '{}' registered twice", spec.name);
  spec.offset = numel_;
  numel_ += spec.shape.numel();
  params_.push_back(std::move(spec));
  return params_.back();
}

Parameter* ParameterStore::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void ParameterStore::allocate(Allocator& allocator, DType compute) {
  BIGNLP_CHECK(!allocated_, "parameter store allocated twice");
  BIGNLP_CHECK(is_floating(compute), "compute dtype must be floating, got {}", dtype_name(compute));
  compute_ = compute;
  master_ = Buffer(allocator, DType::kF32, Shape{numel_});
  grad_ = Buffer(allocator, DType::kF32, Shape{numel_});
  if (compute != DType::kF32) value_ = Buffer(allocator, compute, Shape{numel_});
  const TensorView value = flat_value();
  for (auto& p : params_) {
    p.master = master_.view().slice(0, p.offset, p.numel()).reshape(p.shape);
    p.grad = grad_.view().slice(0, p.offset, p.numel()).reshape(p.shape);
    p.value = value.slice(0, p.offset, p.numel()).reshape(p.shape);
  }
  allocated_ = true;
}

TensorView ParameterStore::flat_value() const { return compute_ == DType::kF32 ? master_.view() : value_.view(); }

void ParameterStore::initialize(const ops::OpContext& ctx, std::uint64_t seed) {
  BIGNLP_CHECK(allocated_, "initialize() before allocate()");
  std::vector<float> host;
  for (auto& p : params_) {
    host.assign(static_cast<std::size_t>(p.numel()), 0.0f);
    if (p.init == ParamInit::kOnes) {
      std::fill(host.begin(), host.end(), 1.0f);
    } else if (p.init == ParamInit::kNormal) {
      const std::uint64_t stream = fnv1a64(p.name);
      // Global element index of local element i: the shard is a contiguous block along partition_dim.
      const int pd = p.partition_dim;
      const std::int64_t inner = pd < 0 ? 1 : [&] {
        std::int64_t s = 1;
        for (int d = pd + 1; d < p.shape.rank(); ++d) s *= p.shape[d];
        return s;
      }();
      const std::int64_t local_extent = pd < 0 ? 1 : p.shape[pd];
      const std::int64_t full_extent = local_extent * p.tp_size;
      for (std::int64_t i = 0; i < p.numel(); ++i) {
        std::int64_t global = i;
        if (pd >= 0 && p.tp_size > 1) {
          const std::int64_t outer = i / (local_extent * inner);
          const std::int64_t mid = (i / inner) % local_extent + p.tp_rank * local_extent;
          global = (outer * full_extent + mid) * inner + i % inner;
        }
        host[static_cast<std::size_t>(i)] =
            philox_normal(seed, stream, static_cast<std::uint64_t>(global)) * p.init_std;
      }
    }
    ops::copy(ctx, TensorView(host.data(), DType::kF32, p.shape), p.master);
  }
  sync_values_from_master(ctx);
}

void ParameterStore::zero_grad(const ops::OpContext& ctx) { ops::fill(ctx, grad_.view(), 0.0); }

void ParameterStore::sync_values_from_master(const ops::OpContext& ctx) {
  if (compute_ != DType::kF32) ops::copy(ctx, master_.view(), value_.view());
}

}  // namespace bignlp::model
