#include "bignlp/model/parameters.h"

#include <algorithm>
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
  const bool trainable = spec.trainable;
  params_.push_back(std::move(spec));
  if (trainable && trainable_numel_ == numel_) {
    // Every parameter so far is trainable: append (the layout stays registration order).
    params_.back().offset = numel_;
    numel_ += params_.back().numel();
    trainable_numel_ = numel_;
  } else {
    lay_out();
  }
  return params_.back();
}

void ParameterStore::set_trainable(const ParameterPredicate& trainable) {
  BIGNLP_CHECK(!allocated_, "set_trainable() after the store was allocated");
  for (auto& p : params_) p.trainable = trainable(p);
  lay_out();
}

void ParameterStore::lay_out() {
  std::int64_t offset = 0;
  for (auto& p : params_)
    if (p.trainable) {
      p.offset = offset;
      offset += p.numel();
    }
  trainable_numel_ = offset;
  for (auto& p : params_)
    if (!p.trainable) {
      p.offset = offset;
      offset += p.numel();
    }
  numel_ = offset;
}

std::vector<parallel::FlatRange> ParameterStore::trainable_ranges() const {
  std::vector<parallel::FlatRange> out;
  for (const auto& p : params_)
    if (p.trainable) out.push_back({p.offset, p.offset + p.numel()});
  return out;
}

Parameter* ParameterStore::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void ParameterStore::allocate(Allocator& allocator, DType compute,
                              std::optional<std::vector<parallel::FlatRange>> master_ranges) {
  BIGNLP_CHECK(!allocated_, "parameter store allocated twice");
  BIGNLP_CHECK(is_floating(compute), "compute dtype must be floating, got {}", dtype_name(compute));
  compute_ = compute;
  master_complete_ = compute == DType::kF32 || !master_ranges;
  master_ranges_.clear();
  master_offsets_.clear();
  if (master_complete_) {
    master_ranges_.push_back({0, trainable_numel_});
    master_offsets_.push_back(0);
  } else {
    std::int64_t kept = 0;
    for (const auto& r : *master_ranges) {
      BIGNLP_CHECK(r.begin >= 0 && r.begin < r.end && r.end <= trainable_numel_,
                   "master range [{}, {}) is not inside the trainable elements [0, {})", r.begin, r.end,
                   trainable_numel_);
      for (const auto& o : master_ranges_)
        BIGNLP_CHECK(o.intersect(r).size() == 0, "master ranges [{}, {}) and [{}, {}) overlap", o.begin, o.end,
                     r.begin, r.end);
      master_ranges_.push_back(r);
      master_offsets_.push_back(kept);
      kept += r.size();
    }
  }
  value_ = Buffer(allocator, compute, Shape{numel_});
  grad_ = Buffer(allocator, DType::kF32, Shape{trainable_numel_});
  std::int64_t largest_frozen = 0;
  for (const auto& p : params_)
    if (!p.trainable) largest_frozen = std::max(largest_frozen, p.numel());
  if (largest_frozen > 0) frozen_grad_ = Buffer(allocator, DType::kF32, Shape{largest_frozen});
  if (compute != DType::kF32) {
    std::int64_t kept = 0;
    for (const auto& r : master_ranges_) kept += r.size();
    master_ = Buffer(allocator, DType::kF32, Shape{kept});
  }
  for (auto& p : params_) {
    p.value = value_.view().slice(0, p.offset, p.numel()).reshape(p.shape);
    if (p.trainable) {
      p.grad = grad_.view().slice(0, p.offset, p.numel()).reshape(p.shape);
      p.master = master_complete_ ? flat_master().slice(0, p.offset, p.numel()).reshape(p.shape) : TensorView{};
    } else {
      p.grad = p.numel() > 0 ? frozen_grad_.view().slice(0, 0, p.numel()).reshape(p.shape) : TensorView{};
      p.master = TensorView{};
    }
  }
  allocated_ = true;
}

TensorView ParameterStore::flat_master() const {
  if (compute_ != DType::kF32) return master_.view();
  return trainable_numel_ == numel_ ? value_.view() : value_.view().slice(0, 0, trainable_numel_);
}

TensorView ParameterStore::master_range(const parallel::FlatRange& r) const {
  for (std::size_t i = 0; i < master_ranges_.size(); ++i) {
    const parallel::FlatRange& k = master_ranges_[i];
    if (r.begin >= k.begin && r.end <= k.end)
      return flat_master().slice(0, master_offsets_[i] + r.begin - k.begin, r.size());
  }
  BIGNLP_CHECK(false, "the store keeps no master weights for elements [{}, {})", r.begin, r.end);
  return {};
}

void ParameterStore::assign(const ops::OpContext& ctx, Parameter& p, const TensorView& src) {
  BIGNLP_CHECK(allocated_, "assign() before allocate()");
  BIGNLP_CHECK(src.numel() == p.numel() && src.dtype() == DType::kF32 && src.is_contiguous(),
               "assign '{}': expected {} contiguous fp32 elements, got {}", p.name, p.numel(), src.to_string());
  if (!p.trainable) {
    ops::copy(ctx, src.reshape(p.shape), p.value);  // no master: the compute copy is all there is
    return;
  }
  if (master_complete_) {
    // The master first, then the compute copy rounded from it (what sync_values_from_master does).
    ops::copy(ctx, src.reshape(p.shape), p.master);
    if (compute_ != DType::kF32) ops::copy(ctx, p.master, p.value);
    return;
  }
  const TensorView flat = src.reshape(Shape{p.numel()});
  ops::copy(ctx, flat.reshape(p.shape), p.value);
  const parallel::FlatRange whole{p.offset, p.offset + p.numel()};
  for (const auto& k : master_ranges_) {
    const parallel::FlatRange part = k.intersect(whole);
    if (part.size() > 0) ops::copy(ctx, flat.slice(0, part.begin - p.offset, part.size()), master_range(part));
  }
}

void ParameterStore::initialize(const ops::OpContext& ctx, std::uint64_t seed, const InitFixup& fixup) {
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
    const TensorView drawn(host.data(), DType::kF32, p.shape);
    const bool fix = &p == fixup.param && fixup.apply;
    if (p.master.defined()) {
      ops::copy(ctx, drawn, p.master);
      if (fix) fixup.apply(p.master);
      continue;
    }
    if (!fix) {
      assign(ctx, p, drawn);
      continue;
    }
    // Master shards only, or a frozen parameter: the fixed-up weights pass through a device
    // buffer of their size.
    BIGNLP_CHECK(ctx.allocator != nullptr, "initialize(): the fix-up of '{}' needs ctx.allocator", p.name);
    Buffer full(*ctx.allocator, DType::kF32, p.shape);
    ops::copy(ctx, drawn, full);
    fixup.apply(full.view());
    assign(ctx, p, full.view());
  }
  if (master_complete_) sync_values_from_master(ctx);
}

void ParameterStore::zero_grad(const ops::OpContext& ctx) { ops::fill(ctx, grad_.view(), 0.0); }

void ParameterStore::sync_values_from_master(const ops::OpContext& ctx) {
  BIGNLP_CHECK(master_complete_, "sync_values_from_master() needs the master weights of every element");
  if (compute_ != DType::kF32) ops::copy(ctx, master_.view(), value_.view().slice(0, 0, trainable_numel_));
}

}  // namespace bignlp::model
