#include "bignlp/model/transformer_layer.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/core/check.h"
#include "bignlp/parallel/mappings.h"

namespace bignlp::model {
namespace {

LinearSpec spec(const std::string& name, std::int64_t in, std::int64_t out, float std, LinearPartition part,
                const parallel::ParallelContext& pc) {
  return LinearSpec{name, in, out, std, true, part, pc.tp, pc.sequence_parallel(), pc.options.async_tp_allreduce};
}

float scaled_std(const GptConfig& c) {
  return c.use_scaled_init_method ? c.init_method_std / std::sqrt(2.0f * static_cast<float>(c.num_layers))
                                  : c.init_method_std;
}

}  // namespace

std::string layer_prefix(int layer_index) { return fmt::format("model.language_model.encoder.layers.{}", layer_index); }

TransformerLayer::TransformerLayer(const GptConfig& c, ParameterStore& store, int layer_index,
                                   const parallel::ParallelContext& pc)
    : config_(&c),
      layer_index_(layer_index),
      parallel_(pc),
      tp_size_(pc.tp != nullptr ? pc.tp->size() : 1),
      local_heads_(c.num_attention_heads / (pc.tp != nullptr ? pc.tp->size() : 1)),
      ln1_(store, layer_prefix(layer_index) + ".input_layernorm", c.hidden_size, c.layernorm_epsilon,
           pc.sequence_parallel()),
      qkv_(store, spec(layer_prefix(layer_index) + ".self_attention.query_key_value", c.hidden_size,
                       3 * c.projection_size(), c.init_method_std, LinearPartition::kColumn, pc)),
      dense_(store, spec(layer_prefix(layer_index) + ".self_attention.dense", c.projection_size(), c.hidden_size,
                         scaled_std(c), LinearPartition::kRow, pc)),
      ln2_(store, layer_prefix(layer_index) + ".post_attention_layernorm", c.hidden_size, c.layernorm_epsilon,
           pc.sequence_parallel()),
      fc1_(store, spec(layer_prefix(layer_index) + ".mlp.dense_h_to_4h", c.hidden_size, c.ffn_size(),
                       c.init_method_std, LinearPartition::kColumn, pc)),
      fc2_(store, spec(layer_prefix(layer_index) + ".mlp.dense_4h_to_h", c.ffn_size(), c.hidden_size, scaled_std(c),
                       LinearPartition::kRow, pc)) {
  BIGNLP_CHECK(c.num_attention_heads % tp_size_ == 0, "{} attention heads do not split over {} tensor-parallel ranks",
               c.num_attention_heads, tp_size_);
}

std::int64_t TransformerLayer::local_rows(const LayerPass& pass) const {
  return parallel_.sequence_parallel() ? pass.rows() / tp_size_ : pass.rows();
}

ops::AttentionParams TransformerLayer::attention_params(const LayerPass& pass) const {
  ops::AttentionParams p;
  p.num_heads = static_cast<int>(local_heads_);
  p.causal = true;
  p.head_offset = static_cast<int>(local_heads_) * (tp_size_ > 1 ? parallel_.tp->rank() : 0);
  p.total_heads = config_->num_attention_heads;
  if (pass.training && config_->attention_dropout > 0.0f)
    p.dropout = ops::DropoutParams{config_->attention_dropout, pass.seed,
                                   pass.offset_base + 1 + 3 * static_cast<std::uint64_t>(layer_index_), 0};
  return p;
}

ops::DropoutParams TransformerLayer::hidden_dropout(const LayerPass& pass, int site) const {
  if (!pass.training || config_->hidden_dropout <= 0.0f) return ops::DropoutParams{};
  // Under sequence parallelism this rank's rows start at row r*N/t of the full tensor.
  const std::uint64_t first =
      parallel_.sequence_parallel()
          ? static_cast<std::uint64_t>(parallel::sp_row_offset(*parallel_.tp, pass.rows()) * config_->hidden_size)
          : 0;
  return ops::DropoutParams{config_->hidden_dropout, pass.seed,
                            pass.offset_base + 1 + 3 * static_cast<std::uint64_t>(layer_index_) + site, first};
}

void TransformerLayer::forward(const ops::OpContext& ctx, const LayerPass& pass, const TensorView& x_in,
                               const TensorView& x_out, TransformerLayerActivations& a,
                               ActivationStorage storage) const {
  BIGNLP_CHECK(ctx.allocator != nullptr, "TransformerLayer::forward needs ctx.allocator for activations");
  Allocator& alloc = *ctx.allocator;
  const DType dt = x_in.dtype();
  // n: rows of the full sequence (attention, the TP-split projections); nl: rows of the residual
  // stream on this rank (n/t under sequence parallelism). proj, f, nh: this rank's shares.
  const std::int64_t n = pass.rows(), nl = local_rows(pass), c = config_->hidden_size,
                     proj = config_->projection_size() / tp_size_, f = config_->ffn_size() / tp_size_,
                     nh = local_heads_;
  a.ln1_out = Buffer(alloc, dt, Shape{nl, c});
  a.ln1_mean = Buffer(alloc, DType::kF32, Shape{nl});
  a.ln1_rstd = Buffer(alloc, DType::kF32, Shape{nl});
  ln1_.forward(ctx, x_in, a.ln1_out, a.ln1_mean, a.ln1_rstd);
  a.qkv = Buffer(alloc, dt, Shape{pass.seq, pass.batch, 3 * proj});
  qkv_.forward(ctx, a.ln1_out, a.qkv.view().reshape(Shape{n, 3 * proj}));
  a.attn = Buffer(alloc, dt, Shape{pass.seq, pass.batch, proj});
  a.lse = Buffer(alloc, DType::kF32, Shape{pass.batch, nh, pass.seq});
  ops::attention_forward(ctx, a.qkv, a.attn, a.lse, attention_params(pass));
  {
    Buffer proj_out(alloc, dt, Shape{nl, c});
    dense_.forward(ctx, a.attn.view().reshape(Shape{n, proj}), proj_out);
    a.x1 = Buffer(alloc, dt, Shape{nl, c});
    ops::dropout_forward(ctx, proj_out, a.x1, hidden_dropout(pass, 1), x_in);
  }
  a.ln2_out = Buffer(alloc, dt, Shape{nl, c});
  a.ln2_mean = Buffer(alloc, DType::kF32, Shape{nl});
  a.ln2_rstd = Buffer(alloc, DType::kF32, Shape{nl});
  ln2_.forward(ctx, a.x1, a.ln2_out, a.ln2_mean, a.ln2_rstd);
  a.fc1 = Buffer(alloc, dt, Shape{n, f});
  fc1_.forward(ctx, a.ln2_out, a.fc1);
  a.act = Buffer(alloc, dt, Shape{n, f});
  ops::gelu_forward(ctx, a.fc1, a.act, config_->activation);
  {
    Buffer mlp_out(alloc, dt, Shape{nl, c});
    fc2_.forward(ctx, a.act, mlp_out);
    ops::dropout_forward(ctx, mlp_out, x_out, hidden_dropout(pass, 2), a.x1);
  }
  if (storage == ActivationStorage::kNone) {
    a.clear();
  } else if (storage == ActivationStorage::kNoCoreAttention) {
    a.attn = Buffer();
    a.lse = Buffer();
  }
}

void TransformerLayer::backward(const ops::OpContext& ctx, const LayerPass& pass, const TensorView& x_in,
                                TransformerLayerActivations& a, const TensorView& dx) const {
  BIGNLP_CHECK(a.qkv.defined() && a.fc1.defined(), "layer {} backward without saved activations", layer_index_);
  Allocator& alloc = *ctx.allocator;
  const DType dt = x_in.dtype();
  const std::int64_t n = pass.rows(), nl = local_rows(pass), c = config_->hidden_size,
                     proj = config_->projection_size() / tp_size_, f = config_->ffn_size() / tp_size_,
                     nh = local_heads_;
  // MLP branch.
  {
    Buffer d_out(alloc, dt, Shape{nl, c});
    ops::dropout_backward(ctx, dx, d_out, hidden_dropout(pass, 2));
    Buffer d_act(alloc, dt, Shape{n, f});
    fc2_.backward(ctx, a.act, d_out, d_act);
    a.act = Buffer();
    ops::gelu_backward(ctx, a.fc1, d_act, d_act, config_->activation);
    a.fc1 = Buffer();
    Buffer d_ln2(alloc, dt, Shape{nl, c});
    fc1_.backward(ctx, a.ln2_out, d_act, d_ln2);
    a.ln2_out = Buffer();
    ln2_.backward(ctx, a.x1, a.ln2_mean, a.ln2_rstd, d_ln2, dx, /*accumulate=*/true);
    a.x1 = Buffer();
    a.ln2_mean = Buffer();
    a.ln2_rstd = Buffer();
  }
  // Attention branch; selective checkpointing recomputes the core attention here.
  if (!a.attn.defined()) {
    a.attn = Buffer(alloc, dt, Shape{pass.seq, pass.batch, proj});
    a.lse = Buffer(alloc, DType::kF32, Shape{pass.batch, nh, pass.seq});
    ops::attention_forward(ctx, a.qkv, a.attn, a.lse, attention_params(pass));
  }
  Buffer d_proj(alloc, dt, Shape{nl, c});
  ops::dropout_backward(ctx, dx, d_proj, hidden_dropout(pass, 1));
  Buffer d_attn(alloc, dt, Shape{pass.seq, pass.batch, proj});
  dense_.backward(ctx, a.attn.view().reshape(Shape{n, proj}), d_proj, d_attn.view().reshape(Shape{n, proj}));
  d_proj = Buffer();
  Buffer d_qkv(alloc, dt, Shape{pass.seq, pass.batch, 3 * proj});
  ops::attention_backward(ctx, a.qkv, a.attn, a.lse, d_attn, d_qkv, attention_params(pass));
  a.attn = Buffer();
  a.lse = Buffer();
  d_attn = Buffer();
  Buffer d_ln1(alloc, dt, Shape{nl, c});
  qkv_.backward(ctx, a.ln1_out, d_qkv.view().reshape(Shape{n, 3 * proj}), d_ln1);
  a.qkv = Buffer();
  ln1_.backward(ctx, x_in, a.ln1_mean, a.ln1_rstd, d_ln1, dx, /*accumulate=*/true);
  a.clear();
}

}  // namespace bignlp::model
