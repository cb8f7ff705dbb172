#include "bignlp/tune/prompt_encoder.h"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/ops/ops.h"

namespace bignlp::tune {
namespace {

using model::Parameter;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Megatron's bias-GeLU (tanh form) and its derivative.
float gelu(float x) {
  return 0.5f * x * (1.0f + std::tanh(0.79788456f * x * (1.0f + 0.044715f * x * x)));
}
float gelu_grad(float x) {
  const float t = std::tanh(0.79788456f * x * (1.0f + 0.044715f * x * x));
  return 0.5f * x * ((1.0f - t * t) * (0.79788456f + 0.1070322243f * x * x)) + 0.5f * (1.0f + t);
}

/// y (n, out) = x (n, in) W^T (+ b).
std::vector<float> linear(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>* b,
                          std::int64_t n, std::int64_t in, std::int64_t out) {
  std::vector<float> y(static_cast<std::size_t>(n * out));
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = b != nullptr ? (*b)[o] : 0.0;
      const float* wr = &w[static_cast<std::size_t>(o * in)];
      const float* xr = &x[static_cast<std::size_t>(r * in)];
      for (std::int64_t i = 0; i < in; ++i) acc += static_cast<double>(wr[i]) * xr[i];
      y[static_cast<std::size_t>(r * out + o)] = static_cast<float>(acc);
    }
  return y;
}

Parameter& add_param(model::ParameterStore& store, const std::string& name, Shape shape) {
  Parameter p;
  p.name = "prompt_encoder." + name;
  p.shape = std::move(shape);
  p.init = model::ParamInit::kZeros;  // drawn by PromptEncoder::initialize
  p.weight_decay = true;              // NeMo's prompt models: one group, decay on every parameter
  return store.add(std::move(p));
}

}  // namespace

std::vector<float> host_values(const ops::OpContext& ctx, const Parameter& p) {
  std::vector<float> v(static_cast<std::size_t>(p.numel()));
  ops::copy(ctx, p.value, TensorView(v.data(), DType::kF32, p.shape));
  return v;
}

void add_host_grad(const ops::OpContext& ctx, Parameter& p, const std::vector<float>& g) {
  if (!p.trainable) return;
  BIGNLP_CHECK(static_cast<std::int64_t>(g.size()) == p.numel(), "gradient of {} has {} elements, expected {}", p.name,
               g.size(), p.numel());
  if (p.grad.device().is_cpu()) {
    auto* d = p.grad.data<float>();
    for (std::size_t i = 0; i < g.size(); ++i) d[i] += g[i];
    return;
  }
  std::vector<float> cur(g.size());
  ops::copy(ctx, p.grad, TensorView(cur.data(), DType::kF32, p.shape));
  for (std::size_t i = 0; i < g.size(); ++i) cur[i] += g[i];
  ops::copy(ctx, TensorView(cur.data(), DType::kF32, p.shape), p.grad);
}

EncoderType parse_encoder_type(const std::string& name) {
  if (name == "lstm") return EncoderType::kLstm;
  if (name == "mlp") return EncoderType::kMlp;
  if (name == "tpmlp") return EncoderType::kTpMlp;
  throw ConfigError(fmt::format("p_tuning.encoder_type: '{}' is not lstm, mlp or tpmlp (NeMo's biglstm fails at "
                                "construction there, so it is not offered)",
                                name));
}

const char* encoder_type_name(EncoderType t) {
  return t == EncoderType::kLstm ? "lstm" : t == EncoderType::kMlp ? "mlp" : "tpmlp";
}

std::int64_t PromptEncoderConfig::effective_encoder_hidden() const {
  if (encoder_hidden > 0) return encoder_hidden;
  return type == EncoderType::kTpMlp ? 2048 : hidden / 2;
}

PromptEncoder::PromptEncoder(const PromptEncoderConfig& config, model::ParameterStore& store) : config_(config) {
  const std::int64_t n = config_.virtual_tokens, h = config_.hidden, eh = config_.effective_encoder_hidden();
  if (n <= 0 || h <= 0 || eh <= 0) throw ConfigError("p_tuning: the encoder needs virtual tokens and hidden sizes above 0");
  embedding_ = &add_param(store, "embedding.weight", Shape{n, h});
  auto add_linear = [&](const std::string& prefix, std::int64_t in, std::int64_t out) {
    Linear l;
    l.weight = &add_param(store, prefix + ".weight", Shape{out, in});
    l.bias = &add_param(store, prefix + ".bias", Shape{out});
    linears_.push_back(l);
  };
  switch (config_.type) {
    case EncoderType::kLstm: {
      if (config_.num_layers < 1) throw ConfigError("p_tuning.num_layers: the LSTM needs at least 1 layer");
      for (int l = 0; l < config_.num_layers; ++l) {
        const std::int64_t in = l == 0 ? h : 2 * eh;
        std::vector<LstmDir> dirs;
        for (const char* suffix : {"", "_reverse"}) {
          LstmDir d;
          d.w_ih = &add_param(store, fmt::format("lstm_head.weight_ih_l{}{}", l, suffix), Shape{4 * eh, in});
          d.w_hh = &add_param(store, fmt::format("lstm_head.weight_hh_l{}{}", l, suffix), Shape{4 * eh, eh});
          d.b_ih = &add_param(store, fmt::format("lstm_head.bias_ih_l{}{}", l, suffix), Shape{4 * eh});
          d.b_hh = &add_param(store, fmt::format("lstm_head.bias_hh_l{}{}", l, suffix), Shape{4 * eh});
          dirs.push_back(d);
        }
        lstm_.push_back(dirs);
      }
      add_linear("mlp_head.0", 2 * eh, 2 * eh);
      add_linear("mlp_head.2", 2 * eh, h);
      break;
    }
    case EncoderType::kMlp: {
      if (config_.num_layers < 2) throw ConfigError("p_tuning.num_layers: the mlp encoder needs at least 2 layers");
      add_linear("mlp_head.0", h, eh);
      for (int l = 1; l < config_.num_layers - 1; ++l) add_linear(fmt::format("mlp_head.{}", 2 * l), eh, eh);
      add_linear(fmt::format("mlp_head.{}", 2 * (config_.num_layers - 1)), eh, h);
      break;
    }
    case EncoderType::kTpMlp:
      add_linear("tpmlp.first", h, eh);
      add_linear("tpmlp.second", eh, h);
      break;
  }
}

std::vector<Parameter*> PromptEncoder::parameters() const {
  std::vector<Parameter*> out{embedding_};
  for (const auto& layer : lstm_)
    for (const auto& d : layer) out.insert(out.end(), {d.w_ih, d.w_hh, d.b_ih, d.b_hh});
  for (const auto& l : linears_) out.insert(out.end(), {l.weight, l.bias});
  return out;
}

void PromptEncoder::initialize(const ops::OpContext& ctx, model::ParameterStore& store, std::uint64_t seed) const {
  const std::int64_t eh = config_.effective_encoder_hidden();
  for (Parameter* p : parameters()) {
    std::mt19937_64 gen(seed ^ model::fnv1a64(p->name));
    std::vector<float> v(static_cast<std::size_t>(p->numel()));
    if (p == embedding_) {
      std::normal_distribution<float> d(0.0f, 1.0f);
      for (auto& x : v) x = d(gen);
    } else if (config_.type == EncoderType::kTpMlp) {
      std::normal_distribution<float> d(0.0f, config_.init_std);
      const bool bias = p->shape.rank() == 1;
      for (auto& x : v) x = bias ? 0.0f : d(gen);
    } else {
      // PyTorch: LSTM U(+-1/sqrt(hidden)); Linear weight and bias U(+-1/sqrt(fan_in)).
      const bool is_lstm = p->name.find("lstm_head") != std::string::npos;
      std::int64_t fan = is_lstm ? eh : 0;
      if (!is_lstm) {
        for (const auto& l : linears_)
          if (l.weight == p || l.bias == p) fan = l.weight->shape[1];
      }
      const float bound = 1.0f / std::sqrt(static_cast<float>(fan));
      std::uniform_real_distribution<float> d(-bound, bound);
      for (auto& x : v) x = d(gen);
    }
    store.assign(ctx, *p, TensorView(v.data(), DType::kF32, p->shape));
  }
}

std::vector<float> PromptEncoder::forward(const ops::OpContext& ctx, const std::vector<float>& taskname_rows,
                                          PromptEncoderPass& pass) const {
  const std::int64_t n = config_.virtual_tokens, h = config_.hidden, eh = config_.effective_encoder_hidden();
  pass = PromptEncoderPass{};
  pass.x = host_values(ctx, *embedding_);
  const std::int64_t rows = static_cast<std::int64_t>(taskname_rows.size()) / h;
  pass.overwritten = std::min(rows, n);
  std::copy(taskname_rows.begin(), taskname_rows.begin() + pass.overwritten * h, pass.x.begin());
  std::vector<float> cur = pass.x;
  std::int64_t width = h;
  for (const auto& layer : lstm_) {
    pass.lstm_in.push_back(cur);
    std::vector<float> out(static_cast<std::size_t>(n * 2 * eh));
    for (int dir = 0; dir < 2; ++dir) {
      const LstmDir& d = layer[static_cast<std::size_t>(dir)];
      const std::vector<float> w_ih = host_values(ctx, *d.w_ih), w_hh = host_values(ctx, *d.w_hh),
                               b_ih = host_values(ctx, *d.b_ih), b_hh = host_values(ctx, *d.b_hh);
      std::vector<float> xz = linear(cur, w_ih, &b_ih, n, width, 4 * eh);  // input part of every step
      std::vector<float> gates(static_cast<std::size_t>(n * 4 * eh)), cells(static_cast<std::size_t>(n * eh)),
          hs(static_cast<std::size_t>(n * eh));
      std::vector<float> hprev(static_cast<std::size_t>(eh), 0.0f), cprev(static_cast<std::size_t>(eh), 0.0f);
      for (std::int64_t s = 0; s < n; ++s) {
        const std::int64_t t = dir == 0 ? s : n - 1 - s;
        std::vector<float> z(xz.begin() + t * 4 * eh, xz.begin() + (t + 1) * 4 * eh);
        const std::vector<float> hz = linear(hprev, w_hh, &b_hh, 1, eh, 4 * eh);
        for (std::int64_t k = 0; k < 4 * eh; ++k) z[k] += hz[k];
        float* g = &gates[static_cast<std::size_t>(t * 4 * eh)];
        for (std::int64_t k = 0; k < eh; ++k) {
          const float i = sigmoid(z[k]), f = sigmoid(z[eh + k]), gg = std::tanh(z[2 * eh + k]), o = sigmoid(z[3 * eh + k]);
          g[k] = i;
          g[eh + k] = f;
          g[2 * eh + k] = gg;
          g[3 * eh + k] = o;
          const float c = f * cprev[k] + i * gg;
          cells[static_cast<std::size_t>(t * eh + k)] = c;
          hs[static_cast<std::size_t>(t * eh + k)] = o * std::tanh(c);
        }
        std::copy(cells.begin() + t * eh, cells.begin() + (t + 1) * eh, cprev.begin());
        std::copy(hs.begin() + t * eh, hs.begin() + (t + 1) * eh, hprev.begin());
      }
      for (std::int64_t t = 0; t < n; ++t)
        std::copy(hs.begin() + t * eh, hs.begin() + (t + 1) * eh, out.begin() + t * 2 * eh + dir * eh);
      pass.gates.push_back(std::move(gates));
      pass.cells.push_back(std::move(cells));
      pass.hs.push_back(std::move(hs));
    }
    cur = std::move(out);
    width = 2 * eh;
  }
  for (std::size_t l = 0; l < linears_.size(); ++l) {
    const Linear& lin = linears_[l];
    pass.mlp_in.push_back(cur);
    const std::vector<float> w = host_values(ctx, *lin.weight), b = host_values(ctx, *lin.bias);
    const std::int64_t out_w = lin.weight->shape[0];
    std::vector<float> y = linear(cur, w, &b, n, width, out_w);
    if (l + 1 < linears_.size()) {
      pass.pre_act.push_back(y);
      for (auto& v : y) v = config_.type == EncoderType::kTpMlp ? gelu(v) : std::max(v, 0.0f);
    }
    cur = std::move(y);
    width = out_w;
  }
  return cur;
}

void PromptEncoder::backward(const ops::OpContext& ctx, const PromptEncoderPass& pass, const std::vector<float>& dout) const {
  const std::int64_t n = config_.virtual_tokens, h = config_.hidden, eh = config_.effective_encoder_hidden();
  std::vector<float> dy = dout;
  for (std::size_t li = linears_.size(); li-- > 0;) {
    const Linear& lin = linears_[li];
    const std::int64_t out_w = lin.weight->shape[0], in_w = lin.weight->shape[1];
    if (li + 1 < linears_.size()) {
      const std::vector<float>& pre = pass.pre_act[li];
      for (std::size_t k = 0; k < dy.size(); ++k)
        dy[k] *= config_.type == EncoderType::kTpMlp ? gelu_grad(pre[k]) : (pre[k] > 0.0f ? 1.0f : 0.0f);
    }
    const std::vector<float>& x = pass.mlp_in[li];
    const std::vector<float> w = host_values(ctx, *lin.weight);
    std::vector<float> dw(static_cast<std::size_t>(out_w * in_w), 0.0f), db(static_cast<std::size_t>(out_w), 0.0f),
        dx(static_cast<std::size_t>(n * in_w), 0.0f);
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t o = 0; o < out_w; ++o) {
        const float g = dy[static_cast<std::size_t>(r * out_w + o)];
        if (g == 0.0f) continue;
        db[o] += g;
        for (std::int64_t i = 0; i < in_w; ++i) {
          dw[static_cast<std::size_t>(o * in_w + i)] += g * x[static_cast<std::size_t>(r * in_w + i)];
          dx[static_cast<std::size_t>(r * in_w + i)] += g * w[static_cast<std::size_t>(o * in_w + i)];
        }
      }
    add_host_grad(ctx, *lin.weight, dw);
    add_host_grad(ctx, *lin.bias, db);
    dy = std::move(dx);
  }
  for (std::size_t l = lstm_.size(); l-- > 0;) {
    const std::vector<float>& x = pass.lstm_in[l];
    const std::int64_t width = l == 0 ? h : 2 * eh;
    std::vector<float> dx(static_cast<std::size_t>(n * width), 0.0f);
    for (int dir = 0; dir < 2; ++dir) {
      const LstmDir& d = lstm_[l][static_cast<std::size_t>(dir)];
      const std::size_t k = l * 2 + static_cast<std::size_t>(dir);
      const std::vector<float>& gates = pass.gates[k];
      const std::vector<float>& cells = pass.cells[k];
      const std::vector<float>& hs = pass.hs[k];
      const std::vector<float> w_ih = host_values(ctx, *d.w_ih), w_hh = host_values(ctx, *d.w_hh);
      std::vector<float> dw_ih(w_ih.size(), 0.0f), dw_hh(w_hh.size(), 0.0f), db(static_cast<std::size_t>(4 * eh), 0.0f);
      std::vector<float> dh_next(static_cast<std::size_t>(eh), 0.0f), dc_next(static_cast<std::size_t>(eh), 0.0f);
      std::vector<float> dz(static_cast<std::size_t>(4 * eh));
      for (std::int64_t s = n - 1; s >= 0; --s) {
        const std::int64_t t = dir == 0 ? s : n - 1 - s;
        const std::int64_t prev = dir == 0 ? t - 1 : t + 1;  // the step before t in processing order
        const bool has_prev = s > 0;
        const float* g = &gates[static_cast<std::size_t>(t * 4 * eh)];
        for (std::int64_t j = 0; j < eh; ++j) {
          const float i = g[j], f = g[eh + j], gg = g[2 * eh + j], o = g[3 * eh + j];
          const float c = cells[static_cast<std::size_t>(t * eh + j)];
          const float cp = has_prev ? cells[static_cast<std::size_t>(prev * eh + j)] : 0.0f;
          const float dh = dy[static_cast<std::size_t>(t * 2 * eh + dir * eh + j)] + dh_next[j];
          const float tc = std::tanh(c);
          const float dc = dc_next[j] + dh * o * (1.0f - tc * tc);
          dz[j] = dc * gg * i * (1.0f - i);
          dz[eh + j] = dc * cp * f * (1.0f - f);
          dz[2 * eh + j] = dc * i * (1.0f - gg * gg);
          dz[3 * eh + j] = dh * tc * o * (1.0f - o);
          dc_next[j] = dc * f;
        }
        std::fill(dh_next.begin(), dh_next.end(), 0.0f);
        for (std::int64_t r = 0; r < 4 * eh; ++r) {
          const float gz = dz[r];
          db[r] += gz;
          if (gz == 0.0f) continue;
          for (std::int64_t c2 = 0; c2 < width; ++c2) {
            dw_ih[static_cast<std::size_t>(r * width + c2)] += gz * x[static_cast<std::size_t>(t * width + c2)];
            dx[static_cast<std::size_t>(t * width + c2)] += gz * w_ih[static_cast<std::size_t>(r * width + c2)];
          }
          if (has_prev)
            for (std::int64_t c2 = 0; c2 < eh; ++c2)
              dw_hh[static_cast<std::size_t>(r * eh + c2)] += gz * hs[static_cast<std::size_t>(prev * eh + c2)];
          for (std::int64_t c2 = 0; c2 < eh; ++c2) dh_next[c2] += gz * w_hh[static_cast<std::size_t>(r * eh + c2)];
        }
      }
      add_host_grad(ctx, *d.w_ih, dw_ih);
      add_host_grad(ctx, *d.w_hh, dw_hh);
      add_host_grad(ctx, *d.b_ih, db);
      add_host_grad(ctx, *d.b_hh, db);
    }
    dy = std::move(dx);
  }
  // dy: gradient of the encoder input; the task-name rows are frozen word embeddings.
  std::vector<float> demb(static_cast<std::size_t>(n * h), 0.0f);
  std::copy(dy.begin() + pass.overwritten * h, dy.end(), demb.begin() + pass.overwritten * h);
  add_host_grad(ctx, *embedding_, demb);
}

}  // namespace bignlp::tune
