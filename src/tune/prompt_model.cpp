#include "bignlp/tune/prompt_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::tune {
namespace {

constexpr const char* kWord = "model.language_model.embedding.word_embeddings.weight";
constexpr const char* kPosition = "model.language_model.embedding.position_embeddings.weight";

std::vector<std::int32_t> host_ints(const TensorView& v, const char* what) {
  BIGNLP_CHECK(v.defined() && v.dtype() == DType::kI32, "PromptModel: batch.{} must be int32", what);
  std::vector<std::int32_t> out(static_cast<std::size_t>(v.numel()));
  ops::OpContext host;
  ops::copy(host, v, TensorView(out.data(), DType::kI32, v.shape()));
  return out;
}

}  // namespace

PromptStyle parse_prompt_style(const std::string& s) {
  if (s == "p-tuning") return PromptStyle::kPTuning;
  if (s == "prompt-tuning") return PromptStyle::kPromptTuning;
  if (s == "inference") return PromptStyle::kInference;
  throw ConfigError(fmt::format("model.virtual_prompt_style: '{}' is not p-tuning, prompt-tuning or inference", s));
}

const char* prompt_style_name(PromptStyle s) {
  return s == PromptStyle::kPTuning ? "p-tuning" : s == PromptStyle::kPromptTuning ? "prompt-tuning" : "inference";
}

std::string prompt_table_key(const std::string& task) { return "prompt_table." + task + ".prompt_embeddings.weight"; }

struct PromptModel::Acts final : model::Activations {
  std::unique_ptr<model::Activations> base;
  std::int64_t batch = 0, seq = 0, hidden = 0;
  // Virtual positions of new-task rows: (sequence-first row, task, prompt row).
  std::vector<std::tuple<std::int64_t, int, std::int64_t>> virtual_rows;
  std::map<int, PromptEncoderPass> passes;  // p-tuning: per new task in the batch
};

PromptModel::PromptModel(PromptModelConfig config, std::unique_ptr<model::Model> base, const ops::OpContext& ctx)
    : config_(std::move(config)), base_(std::move(base)), ctx_(ctx) {
  BIGNLP_CHECK(base_ != nullptr, "PromptModel needs a base model");
  if (base_->is_encoder_decoder())
    throw ConfigError("prompt learning here takes a decoder-only (GPT) base model; T5/mT5 prompt learning is not built");
  if (base_->parallel_context().tp_size() != 1 || base_->parallel_context().pp_size() != 1)
    throw ConfigError(fmt::format("model.tensor_model_parallel_size / pipeline_model_parallel_size: prompt learning runs "
                                  "one rank per model replica (TP 1, PP 1), got TP {} PP {}",
                                  base_->parallel_context().tp_size(), base_->parallel_context().pp_size()));
  for (const auto& p : base_->parameters().params())
    BIGNLP_CHECK(!p.trainable, "the base model of prompt learning must be frozen ({} is trainable)", p.name);
  word_ = base_->parameters().find(kWord);
  position_ = base_->parameters().find(kPosition);
  if (word_ == nullptr || position_ == nullptr)
    throw ConfigError(fmt::format("prompt learning needs a base model with learned word and position embeddings ({}, "
                                  "{}); the {} model has none",
                                  kWord, kPosition, base_->family()));
  const std::int64_t h = word_->shape[1], n = config_.virtual_tokens;
  BIGNLP_CHECK(n > 0, "prompt learning needs virtual tokens");
  bool any_new_encoder_task = false;
  for (const auto& t : config_.tasks) any_new_encoder_task |= t.is_new && config_.style == PromptStyle::kPTuning;
  if (any_new_encoder_task) {
    config_.encoder.hidden = h;
    config_.encoder.virtual_tokens = n;
    encoder_ = std::make_unique<PromptEncoder>(config_.encoder, store_);
  }
  for (const auto& t : config_.tasks) {
    if (t.is_new && config_.style == PromptStyle::kPTuning) {
      tables_.push_back(nullptr);
      continue;
    }
    if (t.is_new && config_.style == PromptStyle::kInference)
      throw ConfigError(fmt::format("model.new_tasks: task '{}' cannot be learnt with virtual_prompt_style inference", t.name));
    model::Parameter p;
    p.name = prompt_table_key(t.name);
    p.shape = Shape{n, h};
    p.init = model::ParamInit::kZeros;
    p.trainable = t.is_new;
    tables_.push_back(&store_.add(std::move(p)));
  }
  store_.set_trainable([](const model::Parameter& p) { return p.trainable; });
  store_.allocate(*ctx_.allocator, DType::kF32);
  store_.zero_grad(ctx_);
}

std::int64_t PromptModel::num_parameters() const {
  std::int64_t total = 0;
  for (const auto& p : store_.params()) total += p.numel();
  return total;
}

nlohmann::json PromptModel::config_json() const {
  nlohmann::json j;
  j["virtual_prompt_style"] = prompt_style_name(config_.style);
  j["total_virtual_tokens"] = config_.virtual_tokens;
  j["pseudo_token_start"] = config_.pseudo_start;
  j["pad_id"] = config_.pad_id;
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : config_.tasks)
    tasks.push_back({{"taskname", t.name}, {"taskname_ids", t.taskname_ids}, {"new", t.is_new}});
  j["tasks"] = tasks;
  if (encoder_) {
    j["p_tuning"] = {{"encoder_type", encoder_type_name(config_.encoder.type)},
                     {"num_layers", config_.encoder.num_layers},
                     {"encoder_hidden", config_.encoder.effective_encoder_hidden()},
                     {"init_std", config_.encoder.init_std}};
  }
  j["base"] = config_.base_pointer;
  return j;
}

void PromptModel::set_table(const std::string& task, const std::vector<float>& rows) {
  model::Parameter* p = store_.find(prompt_table_key(task));
  if (p == nullptr) throw ConfigError(fmt::format("task '{}' has no prompt table", task));
  if (static_cast<std::int64_t>(rows.size()) != p->numel())
    throw DataError(fmt::format("the prompt table of task '{}' has {} values, expected {} ({})", task, rows.size(),
                                p->numel(), p->shape.to_string()));
  store_.assign(ctx_, *p, TensorView(const_cast<float*>(rows.data()), DType::kF32, p->shape));
}

void PromptModel::initialize(std::uint64_t seed) {
  if (encoder_) encoder_->initialize(ctx_, store_, seed);
  const std::int64_t n = config_.virtual_tokens, h = word_->shape[1];
  for (std::size_t i = 0; i < config_.tasks.size(); ++i) {
    const PromptTaskSpec& t = config_.tasks[i];
    model::Parameter* p = tables_[i];
    if (p == nullptr || !t.is_new) continue;
    std::vector<float> rows(static_cast<std::size_t>(n * h));
    if (!t.init_text_ids.empty()) {
      // NeMo's "text" init: the init text's word embeddings, tiled and truncated to n rows.
      const std::vector<float> table = host_values(ctx_, *word_);
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int32_t id = t.init_text_ids[static_cast<std::size_t>(r) % t.init_text_ids.size()];
        std::copy(table.begin() + id * h, table.begin() + (id + 1) * h, rows.begin() + r * h);
      }
    } else {
      // xavier_normal_: std = sqrt(2 / (n + h)).
      std::mt19937_64 gen(seed ^ model::fnv1a64(p->name));
      std::normal_distribution<float> d(0.0f, std::sqrt(2.0f / static_cast<float>(n + h)));
      for (auto& v : rows) v = d(gen);
    }
    store_.assign(ctx_, *p, TensorView(rows.data(), DType::kF32, p->shape));
  }
}

std::vector<float> PromptModel::table_rows(int task) const {
  const model::Parameter* p = tables_.at(static_cast<std::size_t>(task));
  BIGNLP_CHECK(p != nullptr, "task '{}' has no table (it is p-tuned by the encoder)", config_.tasks[task].name);
  return host_values(ctx_, *p);
}

std::unique_ptr<PromptModel::Acts> PromptModel::run_forward(const model::Batch& batch, const model::DropoutRng& rng,
                                                             bool training, bool inference_path) {
  auto a = std::make_unique<Acts>();
  BIGNLP_CHECK(batch.tokens.defined() && batch.tokens.rank() == 2, "PromptModel needs (B, T) tokens");
  const std::int64_t B = batch.tokens.size(0), T = batch.tokens.size(1), h = word_->shape[1],
                     n = config_.virtual_tokens, N = B * T;
  a->batch = B;
  a->seq = T;
  a->hidden = h;
  const std::vector<std::int32_t> tokens = host_ints(batch.tokens, "tokens");
  const std::vector<std::int32_t> task_ids = host_ints(batch.task_ids, "task_ids (prompt learning)");
  BIGNLP_CHECK(static_cast<std::int64_t>(task_ids.size()) == B, "batch.task_ids has {} entries for {} rows",
               task_ids.size(), B);
  for (std::int32_t t : task_ids)
    BIGNLP_CHECK(t >= 0 && t < static_cast<std::int32_t>(config_.tasks.size()), "task id {} outside [0, {})", t,
                 config_.tasks.size());
  // Discrete ids (virtual -> pad), sequence-first; labels at virtual ids -> pad (their loss_mask is 0).
  std::vector<std::int32_t> ids(static_cast<std::size_t>(N));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int32_t id = tokens[static_cast<std::size_t>(b * T + t)];
      ids[static_cast<std::size_t>(t * B + b)] = id >= config_.pseudo_start ? config_.pad_id : id;
    }
  Allocator& alloc = *ctx_.allocator;
  Buffer ids_dev(alloc, DType::kI32, Shape{N});
  ops::copy(ctx_, TensorView(ids.data(), DType::kI32, Shape{N}), ids_dev);
  Buffer full(alloc, base_->compute_dtype(), Shape{N, h});
  ops::embedding_forward(ctx_, ids_dev, word_->value, full);
  std::vector<float> emb(static_cast<std::size_t>(N * h));
  ops::copy(ctx_, full, TensorView(emb.data(), DType::kF32, Shape{N, h}));

  // The prompt rows of each task present in the batch.
  const bool pad_names = config_.style == PromptStyle::kPTuning && !inference_path;
  std::size_t longest_name = 0;
  for (std::int32_t t : task_ids) longest_name = std::max(longest_name, config_.tasks[t].taskname_ids.size());
  std::map<int, std::vector<float>> rows_of;
  for (std::int32_t t : task_ids) {
    if (rows_of.count(t) != 0) continue;
    const PromptTaskSpec& spec = config_.tasks[t];
    if (!inference_path && spec.is_new && tables_[t] == nullptr) {
      // p-tuning: the encoder's input rows 0..L-1 are the (padded) task name's word embeddings.
      std::vector<std::int32_t> name = spec.taskname_ids;
      if (pad_names) name.resize(longest_name, config_.pad_id);
      const std::vector<float> word = host_values(ctx_, *word_);
      std::vector<float> name_rows;
      for (std::int32_t id : name) name_rows.insert(name_rows.end(), word.begin() + id * h, word.begin() + (id + 1) * h);
      rows_of[t] = encoder_->forward(ctx_, name_rows, a->passes[t]);
    } else {
      BIGNLP_CHECK(tables_[t] != nullptr, "task '{}' has no prompt table yet (final_tables() makes one)", spec.name);
      rows_of[t] = table_rows(t);
    }
  }
  for (std::int64_t b = 0; b < B; ++b) {
    const int task = task_ids[static_cast<std::size_t>(b)];
    const bool in_order = !inference_path && config_.tasks[task].is_new;
    const std::vector<float>& rows = rows_of[task];
    std::int64_t seen = 0;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int32_t id = tokens[static_cast<std::size_t>(b * T + t)];
      if (id < config_.pseudo_start) continue;
      const std::int64_t r = in_order ? seen : id - config_.pseudo_start;
      ++seen;
      if (r >= n)
        throw DataError(fmt::format("row {} of the batch has a virtual token beyond the {} of task '{}' (id {})", b, n,
                                    config_.tasks[task].name, id));
      const std::int64_t row = t * B + b;
      std::copy(rows.begin() + r * h, rows.begin() + (r + 1) * h, emb.begin() + row * h);
      if (in_order) a->virtual_rows.emplace_back(row, task, r);
    }
    if (in_order && seen != n)
      throw DataError(fmt::format("row {} of the batch has {} virtual tokens; task '{}' needs exactly {}", b, seen,
                                  config_.tasks[task].name, n));
  }
  ops::copy(ctx_, TensorView(emb.data(), DType::kF32, Shape{N, h}), full);
  // + position embeddings.
  std::vector<std::int32_t> positions(static_cast<std::size_t>(N));
  if (batch.position_ids.defined()) {
    const std::vector<std::int32_t> p = host_ints(batch.position_ids, "position_ids");
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t) positions[static_cast<std::size_t>(t * B + b)] = p[static_cast<std::size_t>(b * T + t)];
  } else {
    for (std::int64_t i = 0; i < N; ++i) positions[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i / B);
  }
  Buffer pos_dev(alloc, DType::kI32, Shape{N});
  ops::copy(ctx_, TensorView(positions.data(), DType::kI32, Shape{N}), pos_dev);
  ops::embedding_forward(ctx_, pos_dev, position_->value, full, 0, /*accumulate=*/true);

  // The base model from its first layer; labels at virtual ids replaced by pad (masked anyway).
  model::Batch inner = batch;
  std::vector<std::int32_t> labels;
  Buffer labels_host;
  if (batch.labels.defined()) {
    labels = host_ints(batch.labels, "labels");
    for (auto& l : labels)
      if (l >= config_.pseudo_start) l = config_.pad_id;
    inner.labels = TensorView(labels.data(), DType::kI32, batch.labels.shape());
  }
  std::vector<std::int32_t> base_tokens(tokens);
  for (auto& id : base_tokens)
    if (id >= config_.pseudo_start) id = config_.pad_id;
  inner.tokens = TensorView(base_tokens.data(), DType::kI32, batch.tokens.shape());
  a->base = base_->forward_chunk(0, inner, rng, training, full.view().reshape(Shape{T, B, h}), TensorView{});
  a->loss = a->base->loss;
  return a;
}

std::unique_ptr<model::Activations> PromptModel::forward_chunk(int chunk, const model::Batch& batch,
                                                               const model::DropoutRng& rng, bool training,
                                                               const TensorView& input, const TensorView& output) {
  BIGNLP_CHECK(chunk == 0 && !input.defined() && !output.defined(), "PromptModel runs one chunk on one stage");
  return run_forward(batch, rng, training, /*inference_path=*/false);
}

void PromptModel::backward_chunk(model::Activations& acts, float grad_scale, const TensorView&, const TensorView&) {
  auto* a = dynamic_cast<Acts*>(&acts);
  BIGNLP_CHECK(a != nullptr, "PromptModel given another model's activations");
  const std::int64_t N = a->batch * a->seq, h = a->hidden, n = config_.virtual_tokens;
  Buffer din(*ctx_.allocator, base_->compute_dtype(), Shape{N, h});
  base_->backward_chunk(*a->base, grad_scale, TensorView{}, din);
  std::vector<float> d(static_cast<std::size_t>(N * h));
  ops::copy(ctx_, din, TensorView(d.data(), DType::kF32, Shape{N, h}));
  std::map<int, std::vector<float>> dprompt;  // per new task: d(loss)/d(prompt rows), summed over its rows
  for (const auto& [row, task, r] : a->virtual_rows) {
    auto& g = dprompt[task];
    if (g.empty()) g.assign(static_cast<std::size_t>(n * h), 0.0f);
    for (std::int64_t k = 0; k < h; ++k) g[static_cast<std::size_t>(r * h + k)] += d[static_cast<std::size_t>(row * h + k)];
  }
  for (const auto& [task, g] : dprompt) {
    if (tables_[task] == nullptr) {
      encoder_->backward(ctx_, a->passes.at(task), g);
    } else {
      add_host_grad(ctx_, *tables_[task], g);
    }
  }
  a->base.reset();
  if (grad_ready_)
    for (auto& p : store_.params())
      if (p.trainable) grad_ready_(p);
}

model::TokenScores PromptModel::score(const model::Batch& batch) {
  auto a = run_forward(batch, model::DropoutRng{}, /*training=*/false, /*inference_path=*/true);
  return base_->scores_of(*a->base);
}

model::TokenScores PromptModel::scores_of(const model::Activations& head) {
  const auto* a = dynamic_cast<const Acts*>(&head);
  BIGNLP_CHECK(a != nullptr && a->base, "PromptModel given another model's activations");
  return base_->scores_of(*a->base);
}

std::map<std::string, std::vector<float>> PromptModel::final_tables() {
  std::map<std::string, std::vector<float>> out;
  const std::int64_t h = word_->shape[1];
  const std::vector<float> word = encoder_ ? host_values(ctx_, *word_) : std::vector<float>{};
  for (std::size_t i = 0; i < config_.tasks.size(); ++i) {
    const PromptTaskSpec& t = config_.tasks[i];
    if (tables_[i] != nullptr) {
      out[t.name] = table_rows(static_cast<int>(i));
      continue;
    }
    std::vector<float> name_rows;
    for (std::int32_t id : t.taskname_ids) name_rows.insert(name_rows.end(), word.begin() + id * h, word.begin() + (id + 1) * h);
    PromptEncoderPass pass;
    out[t.name] = encoder_->forward(ctx_, name_rows, pass);
  }
  return out;
}

}  // namespace bignlp::tune
