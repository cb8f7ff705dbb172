#include "bignlp/model/transformer_layer.h"

#include <fmt/format.h>

#include <cmath>
#include <span>

#include "bignlp/core/check.h"
#include "bignlp/parallel/mappings.h"

namespace bignlp::model {
namespace {

LinearSpec linear_spec(const std::string& name, std::int64_t in, std::int64_t out, float std, bool bias,
                       LinearPartition part, const parallel::ParallelContext& pc) {
  return LinearSpec{name, in, out, std, bias, part, pc.tp, pc.sequence_parallel(), pc.options.async_tp_allreduce};
}

float scaled_std(const BlockSpec& s) {
  return s.use_scaled_init_method ? s.init_method_std / std::sqrt(2.0f * static_cast<float>(s.num_layers))
                                  : s.init_method_std;
}

NormSpec norm_spec(const BlockSpec& s, const std::string& name, const parallel::ParallelContext& pc) {
  return NormSpec{name, s.hidden_size, s.normalization_epsilon, s.normalization, s.normalization_bias,
                  pc.sequence_parallel()};
}

/// Part `part` of every head of a fused, head-interleaved projection (T, B, NH*parts*HS): a
/// (T, B, NH, HS) view with head stride parts*HS (no copy; the general attention op takes it).
TensorView head_part(const TensorView& fused, std::int64_t heads, int parts, int part) {
  const std::int64_t t = fused.size(0), b = fused.size(1), hs = fused.size(2) / (heads * parts);
  return fused.reshape(Shape{t, b, heads, parts * hs}).slice(3, part * hs, hs);
}

/// Host key lengths of a (B) int32 tensor (empty: every key valid).
std::span<const std::int32_t> lengths_of(const TensorView& t) {
  if (!t.defined()) return {};
  BIGNLP_CHECK(t.device().is_cpu() && t.dtype() == DType::kI32 && t.rank() == 1,
               "attention key lengths must be a host (B) int32 tensor, got {}", t.to_string());
  return {t.data<std::int32_t>(), static_cast<std::size_t>(t.numel())};
}

}  // namespace

std::string layer_prefix(int layer_index) { return BlockNaming::gpt().prefix(layer_index); }

TransformerLayer::TransformerLayer(const BlockSpec& s, ParameterStore& store, int layer_index,
                                   const parallel::ParallelContext& pc)
    : spec_(s),
      layer_index_(layer_index),
      parallel_(pc),
      tp_size_(pc.tp != nullptr ? pc.tp->size() : 1),
      local_heads_(s.num_attention_heads / (pc.tp != nullptr ? pc.tp->size() : 1)),
      norm1_(store, norm_spec(s, s.naming.prefix(layer_index) + ".input_layernorm", pc)),
      qkv_(store, linear_spec(s.naming.prefix(layer_index) + ".self_attention.query_key_value", s.hidden_size,
                              3 * s.projection_size(), s.init_method_std, s.bias, LinearPartition::kColumn, pc)),
      dense_(store, linear_spec(s.naming.prefix(layer_index) + ".self_attention.dense", s.projection_size(),
                                s.hidden_size, scaled_std(s), s.bias, LinearPartition::kRow, pc)),
      norm_cross_(s.cross_attention ? std::optional<Norm>(std::in_place, store,
                                                          norm_spec(s, s.naming.prefix(layer_index) +
                                                                           ".post_attention_layernorm", pc))
                                    : std::nullopt),
      query_cross_(s.cross_attention
                       ? std::optional<Linear>(std::in_place, store,
                                               linear_spec(s.naming.prefix(layer_index) + ".inter_attention.query",
                                                           s.hidden_size, s.projection_size(), s.init_method_std,
                                                           s.bias, LinearPartition::kColumn, pc))
                       : std::nullopt),
      key_value_cross_(s.cross_attention
                           ? std::optional<Linear>(std::in_place, store,
                                                   linear_spec(s.naming.prefix(layer_index) +
                                                                   ".inter_attention.key_value",
                                                               s.hidden_size, 2 * s.projection_size(),
                                                               s.init_method_std, s.bias, LinearPartition::kColumn, pc))
                           : std::nullopt),
      dense_cross_(s.cross_attention
                       ? std::optional<Linear>(std::in_place, store,
                                               linear_spec(s.naming.prefix(layer_index) + ".inter_attention.dense",
                                                           s.projection_size(), s.hidden_size, scaled_std(s), s.bias,
                                                           LinearPartition::kRow, pc))
                       : std::nullopt),
      norm2_(store, norm_spec(s, s.naming.prefix(layer_index) + (s.cross_attention ? ".post_inter_attention_layernorm"
                                                                                    : ".post_attention_layernorm"),
                              pc)),
      fc1_(store, linear_spec(s.naming.prefix(layer_index) + ".mlp.dense_h_to_4h", s.hidden_size, s.ffn_hidden_size,
                              s.init_method_std, s.bias, LinearPartition::kColumn, pc)),
      fc1_2_(s.gated_linear_unit
                 ? std::optional<Linear>(std::in_place, store,
                                         linear_spec(s.naming.prefix(layer_index) + ".mlp.dense_h_to_4h_2",
                                                     s.hidden_size, s.ffn_hidden_size, s.init_method_std, s.bias,
                                                     LinearPartition::kColumn, pc))
                 : std::nullopt),
      fc2_(store, linear_spec(s.naming.prefix(layer_index) + ".mlp.dense_4h_to_h", s.ffn_hidden_size, s.hidden_size,
                              scaled_std(s), s.bias, LinearPartition::kRow, pc)) {
  spec_.validate();
  BIGNLP_CHECK(s.num_attention_heads % tp_size_ == 0, "{} attention heads do not split over {} tensor-parallel ranks",
               s.num_attention_heads, tp_size_);
  BIGNLP_CHECK(!(s.cross_attention && pc.sequence_parallel()),
               "sequence parallelism with cross-attention is not supported");
}

std::vector<Parameter*> TransformerLayer::parameters() const {
  std::vector<Parameter*> out;
  const auto norm = [&](const Norm& n) {
    out.push_back(&n.weight());
    if (n.bias() != nullptr) out.push_back(n.bias());
  };
  const auto linear = [&](const Linear& l) {
    out.push_back(&l.weight());
    if (l.bias() != nullptr) out.push_back(l.bias());
  };
  norm(norm1_);
  linear(qkv_);
  linear(dense_);
  if (spec_.cross_attention) {
    norm(*norm_cross_);
    linear(*query_cross_);
    linear(*key_value_cross_);
    linear(*dense_cross_);
  }
  norm(norm2_);
  linear(fc1_);
  if (fc1_2_) linear(*fc1_2_);
  linear(fc2_);
  return out;
}

std::int64_t TransformerLayer::local_rows(const LayerPass& pass) const {
  return parallel_.sequence_parallel() ? pass.rows() / tp_size_ : pass.rows();
}

bool TransformerLayer::uses_fused_attention(const LayerPass& pass) const {
  return spec_.fused_causal_attention() && !pass.key_lengths.defined() && !pass.position_bias.defined();
}

std::uint64_t TransformerLayer::site_offset(const LayerPass& pass, int site) const {
  return pass.offset_base + 1 +
         static_cast<std::uint64_t>(spec_.dropout_sites_per_layer()) * static_cast<std::uint64_t>(layer_index_) +
         static_cast<std::uint64_t>(site);
}

ops::AttentionParams TransformerLayer::fused_attention_params(const LayerPass& pass) const {
  ops::AttentionParams p;
  p.num_heads = static_cast<int>(local_heads_);
  p.causal = true;
  p.head_offset = static_cast<int>(local_heads_) * (tp_size_ > 1 ? parallel_.tp->rank() : 0);
  p.total_heads = spec_.num_attention_heads;
  if (pass.training && spec_.attention_dropout > 0.0f)
    p.dropout = ops::DropoutParams{spec_.attention_dropout, pass.seed, site_offset(pass, 0), 0};
  return p;
}

ops::GeneralAttentionParams TransformerLayer::attention_params(const LayerPass& pass, bool causal, int site) const {
  ops::GeneralAttentionParams p;
  p.num_heads = static_cast<int>(local_heads_);
  p.scale = spec_.softmax_scale;
  p.causal = causal;
  p.head_offset = static_cast<int>(local_heads_) * (tp_size_ > 1 ? parallel_.tp->rank() : 0);
  p.total_heads = spec_.num_attention_heads;
  if (pass.training && spec_.attention_dropout > 0.0f)
    p.dropout = ops::DropoutParams{spec_.attention_dropout, pass.seed, site_offset(pass, site), 0};
  return p;
}

ops::DropoutParams TransformerLayer::hidden_dropout(const LayerPass& pass, int site) const {
  if (!pass.training || spec_.hidden_dropout <= 0.0f) return ops::DropoutParams{};
  // Under sequence parallelism this rank's rows start at row r*N/t of the full tensor.
  const std::uint64_t first =
      parallel_.sequence_parallel()
          ? static_cast<std::uint64_t>(parallel::sp_row_offset(*parallel_.tp, pass.rows()) * spec_.hidden_size)
          : 0;
  return ops::DropoutParams{spec_.hidden_dropout, pass.seed, site_offset(pass, site), first};
}

TensorView TransformerLayer::self_attention_bias(const ops::OpContext& ctx, const LayerPass& pass,
                                                 Buffer& storage) const {
  if (!pass.position_bias.defined() || !spec_.apply_query_key_layer_scaling || layer_index_ == 0)
    return pass.position_bias;
  // NeMo adds the bias to scores divided by the layer number and multiplies the softmax input by
  // it again: the effective bias of layer l (1-based) is l times the table's.
  storage = Buffer(*ctx.allocator, DType::kF32, pass.position_bias.shape());
  ops::copy(ctx, pass.position_bias, storage);
  ops::scale(ctx, storage, static_cast<float>(layer_index_ + 1));
  return storage.view();
}

void TransformerLayer::self_attention_forward(const ops::OpContext& ctx, const LayerPass& pass,
                                              TransformerLayerActivations& a) const {
  Allocator& alloc = *ctx.allocator;
  const DType dt = a.qkv.dtype();
  const std::int64_t proj = spec_.projection_size() / tp_size_, nh = local_heads_;
  a.attn = Buffer(alloc, dt, Shape{pass.seq, pass.batch, proj});
  a.lse = Buffer(alloc, DType::kF32, Shape{pass.batch, nh, pass.seq});
  if (uses_fused_attention(pass)) {
    ops::attention_forward(ctx, a.qkv, a.attn, a.lse, fused_attention_params(pass));
    return;
  }
  Buffer bias_storage;
  const TensorView bias = self_attention_bias(ctx, pass, bias_storage);
  ops::attention_general_forward(ctx, head_part(a.qkv, nh, 3, 0), head_part(a.qkv, nh, 3, 1), head_part(a.qkv, nh, 3, 2),
                                 bias, lengths_of(pass.key_lengths), a.attn, a.lse,
                                 attention_params(pass, spec_.self_attention_mask == SelfAttentionMask::kCausal, 0));
}

void TransformerLayer::self_attention_backward(const ops::OpContext& ctx, const LayerPass& pass,
                                               TransformerLayerActivations& a, const TensorView& d_attn,
                                               const TensorView& d_qkv) const {
  if (uses_fused_attention(pass)) {
    ops::attention_backward(ctx, a.qkv, a.attn, a.lse, d_attn, d_qkv, fused_attention_params(pass));
    return;
  }
  Allocator& alloc = *ctx.allocator;
  const std::int64_t nh = local_heads_;
  Buffer bias_storage;
  const TensorView bias = self_attention_bias(ctx, pass, bias_storage);
  Buffer dbias;
  if (pass.position_bias_grad.defined()) {
    dbias = Buffer(alloc, DType::kF32, pass.position_bias.shape());
    ops::fill(ctx, dbias, 0.0);
  }
  ops::attention_general_backward(ctx, head_part(a.qkv, nh, 3, 0), head_part(a.qkv, nh, 3, 1), head_part(a.qkv, nh, 3, 2),
                                  bias, lengths_of(pass.key_lengths), a.attn, a.lse, d_attn, head_part(d_qkv, nh, 3, 0),
                                  head_part(d_qkv, nh, 3, 1), head_part(d_qkv, nh, 3, 2), dbias,
                                  attention_params(pass, spec_.self_attention_mask == SelfAttentionMask::kCausal, 0));
  if (dbias.defined()) {
    // d(table) = l * d(effective bias) under query-key layer scaling (see self_attention_bias).
    if (spec_.apply_query_key_layer_scaling && layer_index_ > 0)
      ops::scale(ctx, dbias, static_cast<float>(layer_index_ + 1));
    ops::add(ctx, pass.position_bias_grad, dbias, pass.position_bias_grad);
  }
}

void TransformerLayer::cross_attention_forward(const ops::OpContext& ctx, const LayerPass& pass,
                                               TransformerLayerActivations& a) const {
  BIGNLP_CHECK(pass.encoder_output.defined() && pass.encoder_output.rank() == 3 &&
                   pass.encoder_output.size(1) == pass.batch && pass.encoder_output.size(2) == spec_.hidden_size,
               "layer {}: cross-attention needs the encoder output (Te, {}, {}), got {}", layer_index_, pass.batch,
               spec_.hidden_size, pass.encoder_output.defined() ? pass.encoder_output.to_string() : "nothing");
  Allocator& alloc = *ctx.allocator;
  const DType dt = a.x1.dtype();
  const std::int64_t n = pass.rows(), c = spec_.hidden_size, proj = spec_.projection_size() / tp_size_,
                     nh = local_heads_, te = pass.encoder_output.size(0);
  a.lnc_out = Buffer(alloc, dt, Shape{n, c});
  a.lnc_mean = Buffer(alloc, DType::kF32, Shape{n});
  a.lnc_rstd = Buffer(alloc, DType::kF32, Shape{n});
  norm_cross_->forward(ctx, a.x1, a.lnc_out, a.lnc_mean, a.lnc_rstd);
  a.q_cross = Buffer(alloc, dt, Shape{pass.seq, pass.batch, proj});
  query_cross_->forward(ctx, a.lnc_out, a.q_cross.view().reshape(Shape{n, proj}));
  a.kv_cross = Buffer(alloc, dt, Shape{te, pass.batch, 2 * proj});
  key_value_cross_->forward(ctx, pass.encoder_output.reshape(Shape{te * pass.batch, c}),
                            a.kv_cross.view().reshape(Shape{te * pass.batch, 2 * proj}));
  a.attn_cross = Buffer(alloc, dt, Shape{pass.seq, pass.batch, proj});
  a.lse_cross = Buffer(alloc, DType::kF32, Shape{pass.batch, nh, pass.seq});
  ops::attention_general_forward(ctx, a.q_cross, head_part(a.kv_cross, nh, 2, 0), head_part(a.kv_cross, nh, 2, 1), {},
                                 lengths_of(pass.encoder_lengths), a.attn_cross, a.lse_cross,
                                 attention_params(pass, false, 3));
  Buffer out(alloc, dt, Shape{n, c});
  dense_cross_->forward(ctx, a.attn_cross.view().reshape(Shape{n, proj}), out);
  a.x2 = Buffer(alloc, dt, Shape{n, c});
  ops::dropout_forward(ctx, out, a.x2, hidden_dropout(pass, 4), a.x1);
}

void TransformerLayer::cross_attention_backward(const ops::OpContext& ctx, const LayerPass& pass,
                                                TransformerLayerActivations& a, const TensorView& dx2,
                                                const TensorView& dx1) const {
  // dx2: gradient of x2 (N, C); dx1 receives the gradient of x1 through the cross-attention
  // branch (written); the residual path is added by the caller.
  Allocator& alloc = *ctx.allocator;
  const DType dt = a.x1.dtype();
  const std::int64_t n = pass.rows(), c = spec_.hidden_size, proj = spec_.projection_size() / tp_size_,
                     nh = local_heads_, te = pass.encoder_output.size(0);
  Buffer d_out(alloc, dt, Shape{n, c});
  ops::dropout_backward(ctx, dx2, d_out, hidden_dropout(pass, 4));
  Buffer d_attn(alloc, dt, Shape{pass.seq, pass.batch, proj});
  dense_cross_->backward(ctx, a.attn_cross.view().reshape(Shape{n, proj}), d_out, d_attn.view().reshape(Shape{n, proj}));
  Buffer dq(alloc, dt, Shape{pass.seq, pass.batch, proj});
  Buffer d_kv_fused(alloc, dt, Shape{te, pass.batch, 2 * proj});
  ops::attention_general_backward(ctx, a.q_cross, head_part(a.kv_cross, nh, 2, 0), head_part(a.kv_cross, nh, 2, 1), {},
                                  lengths_of(pass.encoder_lengths), a.attn_cross, a.lse_cross, d_attn, dq,
                                  head_part(d_kv_fused, nh, 2, 0), head_part(d_kv_fused, nh, 2, 1), {},
                                  attention_params(pass, false, 3));
  a.attn_cross = Buffer();
  a.lse_cross = Buffer();
  Buffer d_enc(alloc, dt, Shape{te * pass.batch, c});
  key_value_cross_->backward(ctx, pass.encoder_output.reshape(Shape{te * pass.batch, c}),
                             d_kv_fused.view().reshape(Shape{te * pass.batch, 2 * proj}), d_enc);
  if (pass.encoder_output_grad.defined()) {
    const TensorView acc = pass.encoder_output_grad.reshape(Shape{te * pass.batch, c});
    ops::add(ctx, acc, d_enc, acc);
  }
  a.kv_cross = Buffer();
  Buffer d_lnc(alloc, dt, Shape{n, c});
  query_cross_->backward(ctx, a.lnc_out, dq.view().reshape(Shape{n, proj}), d_lnc);
  a.q_cross = Buffer();
  a.lnc_out = Buffer();
  norm_cross_->backward(ctx, a.x1, a.lnc_mean, a.lnc_rstd, d_lnc, dx1, /*accumulate=*/false);
  a.lnc_mean = Buffer();
  a.lnc_rstd = Buffer();
}

void TransformerLayer::mlp_activation_forward(const ops::OpContext& ctx, TransformerLayerActivations& a) const {
  const ops::Activation act = spec_.activation;
  if (spec_.gated_linear_unit) {
    ops::gated_activation_forward(ctx, a.fc1, a.fc1_2, a.act, act);
  } else if (act == ops::Activation::kGeluTanh || act == ops::Activation::kGeluErf) {
    // The GPT path: the GeLU op (tanh form as Megatron's fused bias-GeLU).
    ops::gelu_forward(ctx, a.fc1, a.act, act == ops::Activation::kGeluTanh ? ops::GeluApprox::kTanh : ops::GeluApprox::kErf);
  } else {
    ops::activation_forward(ctx, a.fc1, a.act, act);
  }
}

TensorView TransformerLayer::mlp_activation_backward(const ops::OpContext& ctx, TransformerLayerActivations& a,
                                                     const TensorView& d_act, TensorView* d_up) const {
  const ops::Activation act = spec_.activation;
  if (spec_.gated_linear_unit) {
    // The gradients overwrite the pre-activations they are computed from (allowed by the op).
    ops::gated_activation_backward(ctx, a.fc1, a.fc1_2, d_act, a.fc1, a.fc1_2, act);
    *d_up = a.fc1_2;
    return a.fc1;
  }
  if (act == ops::Activation::kGeluTanh || act == ops::Activation::kGeluErf) {
    ops::gelu_backward(ctx, a.fc1, d_act, d_act,
                       act == ops::Activation::kGeluTanh ? ops::GeluApprox::kTanh : ops::GeluApprox::kErf);
  } else {
    ops::activation_backward(ctx, a.fc1, d_act, d_act, act);
  }
  return d_act;
}

void TransformerLayer::forward(const ops::OpContext& ctx, const LayerPass& pass, const TensorView& x_in,
                               const TensorView& x_out, TransformerLayerActivations& a,
                               ActivationStorage storage) const {
  BIGNLP_CHECK(ctx.allocator != nullptr, "TransformerLayer::forward needs ctx.allocator for activations");
  // What the pass brings must be what the spec says the block uses: nothing is silently dropped.
  BIGNLP_CHECK(pass.position_bias.defined() == (spec_.position_bias == PositionBias::kRelative),
               "layer {}: the block spec {} a position bias, but the pass {} one", layer_index_,
               spec_.position_bias == PositionBias::kRelative ? "takes" : "takes no",
               pass.position_bias.defined() ? "brings" : "brings no");
  BIGNLP_CHECK(spec_.cross_attention || !pass.encoder_output.defined(),
               "layer {}: the pass brings an encoder output, but the block has no cross-attention", layer_index_);
  Allocator& alloc = *ctx.allocator;
  const DType dt = x_in.dtype();
  // n: rows of the full sequence (attention, the TP-split projections); nl: rows of the residual
  // stream on this rank (n/t under sequence parallelism). proj, f: this rank's shares.
  const std::int64_t n = pass.rows(), nl = local_rows(pass), c = spec_.hidden_size,
                     proj = spec_.projection_size() / tp_size_, f = spec_.ffn_hidden_size / tp_size_;
  a.ln1_out = Buffer(alloc, dt, Shape{nl, c});
  a.ln1_mean = Buffer(alloc, DType::kF32, Shape{nl});
  a.ln1_rstd = Buffer(alloc, DType::kF32, Shape{nl});
  norm1_.forward(ctx, x_in, a.ln1_out, a.ln1_mean, a.ln1_rstd);
  a.qkv = Buffer(alloc, dt, Shape{pass.seq, pass.batch, 3 * proj});
  qkv_.forward(ctx, a.ln1_out, a.qkv.view().reshape(Shape{n, 3 * proj}));
  self_attention_forward(ctx, pass, a);
  {
    Buffer proj_out(alloc, dt, Shape{nl, c});
    dense_.forward(ctx, a.attn.view().reshape(Shape{n, proj}), proj_out);
    a.x1 = Buffer(alloc, dt, Shape{nl, c});
    ops::dropout_forward(ctx, proj_out, a.x1, hidden_dropout(pass, 1), x_in);
  }
  if (spec_.cross_attention) cross_attention_forward(ctx, pass, a);
  const TensorView mlp_in = spec_.cross_attention ? a.x2.view() : a.x1.view();
  a.ln2_out = Buffer(alloc, dt, Shape{nl, c});
  a.ln2_mean = Buffer(alloc, DType::kF32, Shape{nl});
  a.ln2_rstd = Buffer(alloc, DType::kF32, Shape{nl});
  norm2_.forward(ctx, mlp_in, a.ln2_out, a.ln2_mean, a.ln2_rstd);
  a.fc1 = Buffer(alloc, dt, Shape{n, f});
  fc1_.forward(ctx, a.ln2_out, a.fc1);
  if (fc1_2_) {
    a.fc1_2 = Buffer(alloc, dt, Shape{n, f});
    fc1_2_->forward(ctx, a.ln2_out, a.fc1_2);
  }
  a.act = Buffer(alloc, dt, Shape{n, f});
  mlp_activation_forward(ctx, a);
  {
    Buffer mlp_out(alloc, dt, Shape{nl, c});
    fc2_.forward(ctx, a.act, mlp_out);
    ops::dropout_forward(ctx, mlp_out, x_out, hidden_dropout(pass, 2), mlp_in);
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
  const std::int64_t n = pass.rows(), nl = local_rows(pass), c = spec_.hidden_size,
                     proj = spec_.projection_size() / tp_size_, f = spec_.ffn_hidden_size / tp_size_;
  // MLP branch: dx becomes the gradient of the MLP's input (x2 with cross-attention, else x1).
  {
    Buffer d_out(alloc, dt, Shape{nl, c});
    ops::dropout_backward(ctx, dx, d_out, hidden_dropout(pass, 2));
    Buffer d_act(alloc, dt, Shape{n, f});
    fc2_.backward(ctx, a.act, d_out, d_act);
    a.act = Buffer();
    TensorView d_up;
    const TensorView d_fc1 = mlp_activation_backward(ctx, a, d_act, &d_up);
    Buffer d_ln2(alloc, dt, Shape{nl, c});
    fc1_.backward(ctx, a.ln2_out, d_fc1, d_ln2);
    a.fc1 = Buffer();
    if (fc1_2_) {
      Buffer d_ln2_up(alloc, dt, Shape{nl, c});
      fc1_2_->backward(ctx, a.ln2_out, d_up, d_ln2_up);
      ops::add(ctx, d_ln2, d_ln2_up, d_ln2);
      a.fc1_2 = Buffer();
    }
    a.ln2_out = Buffer();
    norm2_.backward(ctx, spec_.cross_attention ? a.x2.view() : a.x1.view(), a.ln2_mean, a.ln2_rstd, d_ln2, dx,
                    /*accumulate=*/true);
    a.x2 = Buffer();
    a.ln2_mean = Buffer();
    a.ln2_rstd = Buffer();
  }
  if (spec_.cross_attention) {
    Buffer d_x1(alloc, dt, Shape{nl, c});
    cross_attention_backward(ctx, pass, a, dx, d_x1);
    ops::add(ctx, dx, d_x1, dx);
  }
  a.x1 = Buffer();
  // Attention branch; selective checkpointing recomputes the core attention here.
  if (!a.attn.defined()) self_attention_forward(ctx, pass, a);
  Buffer d_proj(alloc, dt, Shape{nl, c});
  ops::dropout_backward(ctx, dx, d_proj, hidden_dropout(pass, 1));
  Buffer d_attn(alloc, dt, Shape{pass.seq, pass.batch, proj});
  dense_.backward(ctx, a.attn.view().reshape(Shape{n, proj}), d_proj, d_attn.view().reshape(Shape{n, proj}));
  d_proj = Buffer();
  Buffer d_qkv(alloc, dt, Shape{pass.seq, pass.batch, 3 * proj});
  self_attention_backward(ctx, pass, a, d_attn, d_qkv);
  a.attn = Buffer();
  a.lse = Buffer();
  d_attn = Buffer();
  Buffer d_ln1(alloc, dt, Shape{nl, c});
  qkv_.backward(ctx, a.ln1_out, d_qkv.view().reshape(Shape{n, 3 * proj}), d_ln1);
  a.qkv = Buffer();
  norm1_.backward(ctx, x_in, a.ln1_mean, a.ln1_rstd, d_ln1, dx, /*accumulate=*/true);
  a.clear();
}

void TransformerLayer::cross_key_values(const ops::OpContext& ctx, const TensorView& enc, const TensorView& keys,
                                        const TensorView& values) const {
  BIGNLP_CHECK(spec_.cross_attention, "layer {}: cross_key_values on a block without cross-attention", layer_index_);
  BIGNLP_CHECK(ctx.allocator != nullptr, "TransformerLayer::cross_key_values needs ctx.allocator");
  const std::int64_t te = enc.size(0), proj = spec_.projection_size() / tp_size_, nh = local_heads_, hs = proj / nh;
  BIGNLP_CHECK(enc.rank() == 2 && enc.size(1) == spec_.hidden_size && keys.rank() == 2 && keys.size(0) == te &&
                   keys.size(1) == proj && values.shape() == keys.shape(),
               "layer {}: cross_key_values needs enc (Te, {}) and keys/values (Te, {}), got {}, {} and {}", layer_index_,
               spec_.hidden_size, proj, enc.to_string(), keys.to_string(), values.to_string());
  Buffer kv(*ctx.allocator, enc.dtype(), Shape{te, 1, 2 * proj});
  key_value_cross_->forward(ctx, enc, kv.view().reshape(Shape{te, 2 * proj}));
  ops::copy(ctx, head_part(kv, nh, 2, 0), keys.reshape(Shape{te, 1, nh, hs}));
  ops::copy(ctx, head_part(kv, nh, 2, 1), values.reshape(Shape{te, 1, nh, hs}));
}

void TransformerLayer::forward_cached(const ops::OpContext& ctx, std::span<const DecodeSegment> segs,
                                      const TensorView& x_in, const TensorView& x_out, const TensorView& k_cache,
                                      const TensorView& v_cache, const CachedDecodeExtras& extras) const {
  BIGNLP_CHECK(ctx.allocator != nullptr, "TransformerLayer::forward_cached needs ctx.allocator");
  BIGNLP_CHECK(spec_.self_attention_mask == SelfAttentionMask::kCausal && !parallel_.sequence_parallel(),
               "layer {}: cached (incremental) decoding needs a causal self-attention block without sequence "
               "parallelism",
               layer_index_);
  const bool biased = spec_.position_bias == PositionBias::kRelative;
  BIGNLP_CHECK(biased ? extras.position_bias.size() == segs.size() : extras.position_bias.empty(),
               "layer {}: the block {} a position bias, the cached pass brings {} for {} segments", layer_index_,
               biased ? "takes" : "takes no", extras.position_bias.size(), segs.size());
  BIGNLP_CHECK(!spec_.cross_attention || (extras.cross_keys.defined() && extras.cross_values.defined() &&
                                          extras.cross_slot.size() == segs.size() &&
                                          extras.cross_length.size() == segs.size()),
               "layer {}: cached decoding of a cross-attention block needs the encoded inputs of every segment",
               layer_index_);
  Allocator& alloc = *ctx.allocator;
  const DType dt = x_in.dtype();
  const std::int64_t n = x_in.size(0), c = spec_.hidden_size, proj = spec_.projection_size() / tp_size_,
                     f = spec_.ffn_hidden_size / tp_size_, nh = local_heads_, hs = proj / nh;
  const std::int64_t slots = k_cache.size(0), capacity = k_cache.size(1);
  BIGNLP_CHECK(k_cache.rank() == 3 && k_cache.size(2) == proj && v_cache.shape() == k_cache.shape() &&
                   k_cache.dtype() == dt && v_cache.dtype() == dt,
               "layer {}: KV cache must be two (slots, capacity, {}) {} tensors, got {} and {}", layer_index_, proj,
               dtype_name(dt), k_cache.to_string(), v_cache.to_string());
  Buffer ln1(alloc, dt, Shape{n, c}), mean(alloc, DType::kF32, Shape{n}), rstd(alloc, DType::kF32, Shape{n});
  norm1_.forward(ctx, x_in, ln1, mean, rstd);
  Buffer qkv(alloc, dt, Shape{n, 3 * proj});
  qkv_.forward(ctx, ln1, qkv);
  Buffer attn(alloc, dt, Shape{n, proj});
  std::int64_t row = 0;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const DecodeSegment& s = segs[i];
    BIGNLP_CHECK(s.slot >= 0 && s.slot < slots && s.past >= 0 && s.count >= 1 && s.past + s.count <= capacity &&
                     row + s.count <= n,
                 "layer {}: decode segment (slot {}, past {}, count {}) outside the cache ({} slots x {} positions) "
                 "or the {} rows",
                 layer_index_, s.slot, s.past, s.count, slots, capacity, n);
    const TensorView seg = qkv.view().slice(0, row, s.count).reshape(Shape{s.count, 1, 3 * proj});
    const TensorView kc = k_cache.slice(0, s.slot, 1).reshape(Shape{capacity, 1, proj});
    const TensorView vc = v_cache.slice(0, s.slot, 1).reshape(Shape{capacity, 1, proj});
    ops::copy(ctx, head_part(seg, nh, 3, 1), kc.slice(0, s.past, s.count).reshape(Shape{s.count, 1, nh, hs}));
    ops::copy(ctx, head_part(seg, nh, 3, 2), vc.slice(0, s.past, s.count).reshape(Shape{s.count, 1, nh, hs}));
    Buffer lse(alloc, DType::kF32, Shape{1, nh, s.count});
    ops::GeneralAttentionParams p = attention_params(LayerPass{}, /*causal=*/true, 0);
    p.kv_offset = s.past;
    Buffer bias_storage;
    TensorView bias;
    if (biased) {
      LayerPass bp;
      bp.position_bias = extras.position_bias[i];
      BIGNLP_CHECK(bp.position_bias.rank() == 3 && bp.position_bias.size(0) == nh && bp.position_bias.size(1) == s.count &&
                       bp.position_bias.size(2) == s.past + s.count,
                   "layer {}: segment {} position bias must be ({}, {}, {}), got {}", layer_index_, i, nh, s.count,
                   s.past + s.count, bp.position_bias.to_string());
      bias = self_attention_bias(ctx, bp, bias_storage);
    }
    ops::attention_general_forward(ctx, head_part(seg, nh, 3, 0), kc.slice(0, 0, s.past + s.count),
                                   vc.slice(0, 0, s.past + s.count), bias, {},
                                   attn.view().slice(0, row, s.count).reshape(Shape{s.count, 1, proj}), lse, p);
    row += s.count;
  }
  BIGNLP_CHECK(row == n, "layer {}: decode segments cover {} of {} rows", layer_index_, row, n);
  Buffer x1(alloc, dt, Shape{n, c});
  {
    Buffer proj_out(alloc, dt, Shape{n, c});
    dense_.forward(ctx, attn, proj_out);
    ops::dropout_forward(ctx, proj_out, x1, ops::DropoutParams{}, x_in);
  }
  TensorView mlp_in = x1.view();
  Buffer x2;
  if (spec_.cross_attention) {
    const TensorView ck = extras.cross_keys, cv = extras.cross_values;
    BIGNLP_CHECK(ck.rank() == 3 && ck.size(0) == slots && ck.size(2) == proj && cv.shape() == ck.shape() &&
                     ck.dtype() == dt && cv.dtype() == dt,
                 "layer {}: cross-attention cache must be two ({}, Te, {}) {} tensors, got {} and {}", layer_index_,
                 slots, proj, dtype_name(dt), ck.to_string(), cv.to_string());
    const std::int64_t te_cap = ck.size(1);
    Buffer lnc(alloc, dt, Shape{n, c});
    norm_cross_->forward(ctx, x1, lnc, mean, rstd);
    Buffer q(alloc, dt, Shape{n, proj});
    query_cross_->forward(ctx, lnc, q);
    Buffer cross(alloc, dt, Shape{n, proj});
    row = 0;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const std::int64_t src = extras.cross_slot[i], len = extras.cross_length[i], cnt = segs[i].count;
      BIGNLP_CHECK(src >= 0 && src < slots && len >= 1 && len <= te_cap,
                   "layer {}: segment {} reads encoder slot {} of length {} outside the cross-attention cache ({} slots "
                   "x {} positions)",
                   layer_index_, i, src, len, slots, te_cap);
      const TensorView kc = ck.slice(0, src, 1).reshape(Shape{te_cap, 1, proj}).slice(0, 0, len);
      const TensorView vc = cv.slice(0, src, 1).reshape(Shape{te_cap, 1, proj}).slice(0, 0, len);
      Buffer lse(alloc, DType::kF32, Shape{1, nh, cnt});
      ops::attention_general_forward(ctx, q.view().slice(0, row, cnt).reshape(Shape{cnt, 1, proj}), kc, vc, {}, {},
                                     cross.view().slice(0, row, cnt).reshape(Shape{cnt, 1, proj}), lse,
                                     attention_params(LayerPass{}, /*causal=*/false, 3));
      row += cnt;
    }
    Buffer out(alloc, dt, Shape{n, c});
    dense_cross_->forward(ctx, cross, out);
    x2 = Buffer(alloc, dt, Shape{n, c});
    ops::dropout_forward(ctx, out, x2, ops::DropoutParams{}, x1);
    mlp_in = x2.view();
  }
  Buffer ln2(alloc, dt, Shape{n, c});
  norm2_.forward(ctx, mlp_in, ln2, mean, rstd);
  TransformerLayerActivations a;
  a.fc1 = Buffer(alloc, dt, Shape{n, f});
  fc1_.forward(ctx, ln2, a.fc1);
  if (fc1_2_) {
    a.fc1_2 = Buffer(alloc, dt, Shape{n, f});
    fc1_2_->forward(ctx, ln2, a.fc1_2);
  }
  a.act = Buffer(alloc, dt, Shape{n, f});
  mlp_activation_forward(ctx, a);
  Buffer mlp_out(alloc, dt, Shape{n, c});
  fc2_.forward(ctx, a.act, mlp_out);
  ops::dropout_forward(ctx, mlp_out, x_out, ops::DropoutParams{}, mlp_in);
}

}  // namespace bignlp::model
