#include "bignlp/checkpoint/partition.h"

#include <fmt/format.h>

#include <cstring>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::checkpoint {
namespace {

bool split(int dim, int tp_size) { return dim >= 0 && tp_size > 1; }

/// (outer, inner): the products of the extents before and after `dim`.
std::pair<std::int64_t, std::int64_t> around(const Shape& s, int dim) {
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (int d = dim + 1; d < s.rank(); ++d) inner *= s[d];
  return {outer, inner};
}

void check_host(const TensorView& t, const char* what) {
  BIGNLP_CHECK(t.device().is_cpu() && t.is_contiguous(), "{}: expected a contiguous host tensor, got {}", what,
               t.to_string());
}

/// Copies the blocks of shard `tp_rank` between `full` and `shard`; to_shard selects the direction.
void copy_blocks(const TensorView& full, int dim, int tp_size, int tp_rank, const TensorView& shard, bool to_shard,
                 const char* what) {
  check_host(full, what);
  check_host(shard, what);
  BIGNLP_CHECK(full.dtype() == shard.dtype(), "{}: dtypes differ ({} and {})", what, full.to_string(), shard.to_string());
  BIGNLP_CHECK(tp_rank >= 0 && tp_rank < std::max(1, tp_size), "{}: tp_rank {} outside [0, {})", what, tp_rank, tp_size);
  const Shape expected = tp_shard_shape(full.shape(), dim, tp_size);
  BIGNLP_CHECK(shard.shape() == expected, "{}: the shard of {} along dim {} over {} ranks is {}, got {}", what,
               full.shape().to_string(), dim, tp_size, expected.to_string(), shard.shape().to_string());
  const std::size_t esize = dtype_size(full.dtype());
  auto* f = static_cast<char*>(full.raw());
  auto* s = static_cast<char*>(shard.raw());
  if (!split(dim, tp_size)) {
    if (to_shard)
      std::memcpy(s, f, full.nbytes());
    else
      std::memcpy(f, s, full.nbytes());
    return;
  }
  const auto [outer, inner] = around(shard.shape(), dim);
  const std::int64_t local = shard.shape()[dim];
  const std::size_t block = static_cast<std::size_t>(local * inner) * esize;
  for (std::int64_t o = 0; o < outer; ++o) {
    char* fb = f + static_cast<std::size_t>((o * local * tp_size + tp_rank * local) * inner) * esize;
    char* sb = s + static_cast<std::size_t>(o) * block;
    if (to_shard)
      std::memcpy(sb, fb, block);
    else
      std::memcpy(fb, sb, block);
  }
}

constexpr std::string_view kLayers = "layers.";

/// Position and length of the layer number in `name` (after a "layers." path element).
std::optional<std::pair<std::size_t, std::size_t>> layer_number(std::string_view name) {
  std::size_t at = 0;
  while ((at = name.find(kLayers, at)) != std::string_view::npos) {
    const std::size_t begin = at + kLayers.size();
    std::size_t end = begin;
    while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
    const bool element = at == 0 || name[at - 1] == '.';
    if (element && end > begin && (end == name.size() || name[end] == '.')) return std::make_pair(begin, end - begin);
    at = begin;
  }
  return std::nullopt;
}

}  // namespace

Shape tp_full_shape(const Shape& shard, int dim, int tp_size) {
  Shape s = shard;
  if (split(dim, tp_size)) s.set(dim, shard[dim] * tp_size);
  return s;
}

Shape tp_shard_shape(const Shape& full, int dim, int tp_size) {
  if (!split(dim, tp_size)) return full;
  BIGNLP_CHECK(dim < full.rank(), "partition dim {} outside a tensor of shape {}", dim, full.to_string());
  if (full[dim] % tp_size != 0)
    throw ConfigError(fmt::format("a tensor of shape {} cannot be split over {} tensor-parallel ranks along dim {} ({} "
                                  "is not divisible by {})",
                                  full.to_string(), tp_size, dim, full[dim], tp_size));
  Shape s = full;
  s.set(dim, full[dim] / tp_size);
  return s;
}

std::int64_t tp_full_index(const Shape& shard, int dim, int tp_size, int tp_rank, std::int64_t i) {
  if (!split(dim, tp_size)) return i;
  const std::int64_t inner = around(shard, dim).second;
  const std::int64_t local = shard[dim];
  const std::int64_t outer = i / (local * inner);
  const std::int64_t mid = (i / inner) % local + tp_rank * local;
  return (outer * local * tp_size + mid) * inner + i % inner;
}

void tp_split(const TensorView& full, int dim, int tp_size, int tp_rank, const TensorView& shard) {
  copy_blocks(full, dim, tp_size, tp_rank, shard, /*to_shard=*/true, "tp_split");
}

void tp_concat(const TensorView& shard, int dim, int tp_size, int tp_rank, const TensorView& full) {
  copy_blocks(full, dim, tp_size, tp_rank, shard, /*to_shard=*/false, "tp_concat");
}

void repad_vocab_rows(const TensorView& src, const TensorView& dst) {
  check_host(src, "repad_vocab_rows");
  check_host(dst, "repad_vocab_rows");
  BIGNLP_CHECK(src.dtype() == dst.dtype() && src.rank() >= 1 && src.rank() == dst.rank(),
               "repad_vocab_rows: {} and {} differ in dtype or rank", src.to_string(), dst.to_string());
  for (int d = 1; d < src.rank(); ++d)
    BIGNLP_CHECK(src.size(d) == dst.size(d), "repad_vocab_rows: {} and {} differ beyond dim 0", src.to_string(),
                 dst.to_string());
  const std::size_t row = dst.size(0) > 0 ? dst.nbytes() / static_cast<std::size_t>(dst.size(0)) : 0;
  const std::size_t kept = static_cast<std::size_t>(std::min(src.size(0), dst.size(0))) * row;
  std::memcpy(dst.raw(), src.raw(), kept);
  std::memset(static_cast<char*>(dst.raw()) + kept, 0, dst.nbytes() - kept);
}

LayerLocation locate_layer(const parallel::StagePlan& plan, int layer) {
  if (layer < 0 || layer >= plan.num_layers())
    throw ConfigError(fmt::format("layer {} is outside the model's {} layers", layer, plan.num_layers()));
  const auto [stage, chunk] = plan.owner(layer);
  return {stage, chunk, layer - plan.layers(stage, chunk).begin};
}

int global_layer(const parallel::StagePlan& plan, const LayerLocation& where) {
  const parallel::LayerRange r = plan.layers(where.stage, where.chunk);
  if (where.local_index < 0 || where.local_index >= r.size())
    throw ConfigError(fmt::format("local layer {} is outside stage {} chunk {}, which holds {} layers", where.local_index,
                                  where.stage, where.chunk, r.size()));
  return r.begin + where.local_index;
}

std::optional<int> layer_index_of(std::string_view name) {
  const auto at = layer_number(name);
  if (!at) return std::nullopt;
  return std::stoi(std::string(name.substr(at->first, at->second)));
}

std::string with_layer_index(std::string_view name, int index) {
  std::string out(name);
  if (const auto at = layer_number(name)) out.replace(at->first, at->second, std::to_string(index));
  return out;
}

std::string to_local_layer_name(std::string_view name, const parallel::StagePlan& plan) {
  const auto layer = layer_index_of(name);
  if (!layer) return std::string(name);
  return with_layer_index(name, locate_layer(plan, *layer).local_index);
}

std::string to_global_layer_name(std::string_view local_name, const parallel::StagePlan& plan, int stage, int chunk) {
  const auto local = layer_index_of(local_name);
  if (!local) return std::string(local_name);
  return with_layer_index(local_name, global_layer(plan, {stage, chunk, *local}));
}

}  // namespace bignlp::checkpoint
