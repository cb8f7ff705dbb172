// PromptModel: prompt learning (p-tuning, prompt tuning) around a frozen decoder-only model
// (tuning.md §3.4-§3.8), as a model::Model the one Trainer runs.
//
// Its ParameterStore holds the prompt parameters only: the p-tuning encoder (prompt_encoder.h)
// and the per-task tables "prompt_table.<task>.prompt_embeddings.weight" (n, h). Tables of
// existing tasks (from an earlier prompt-learnt model, model.restore_path) are frozen, so new tasks
// are added without retraining the old ones; the base model's store is entirely frozen (no
// gradient, master or optimizer memory), so the optimizer, checkpoints and gradient clipping see
// the prompt parameters alone.
// Forward of a micro-batch (batch.task_ids required):
//   ids >= pseudo_start are virtual; the base's word embeddings of the other ids (virtual -> pad);
//   rows of NEW tasks: the i-th virtual position (left to right) gets row i of the task's prompt
//   (p-tuning: the encoder's output for that task, its first rows fed from the task name's word
//   embeddings, padded to the longest task name of the batch; prompt tuning: the task's table);
//   every such row must have exactly total_virtual_tokens virtual positions;
//   rows of EXISTING tasks (and every row in scoring): table row (id - pseudo_start);
//   + the base's position embeddings, then the base model from its first layer (its embedding
//   module and embedding dropout bypassed; its hidden/attention dropout active while training).
// The loss is the base's token mean under loss_mask; gradients reach the prompt parameters only.
// One rank per model replica (TP 1, PP 1); data parallelism is the trainer's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/model/model.h"
#include "bignlp/tune/prompt_encoder.h"

namespace bignlp::tune {

enum class PromptStyle { kPTuning, kPromptTuning, kInference };
PromptStyle parse_prompt_style(const std::string& s);  ///< p-tuning, prompt-tuning, inference
const char* prompt_style_name(PromptStyle s);

struct PromptTaskSpec {
  std::string name;
  std::vector<std::int32_t> taskname_ids;   ///< the task name's tokens (p-tuning input)
  bool is_new = true;                       ///< trained in this run; else a frozen table
  std::vector<std::int32_t> init_text_ids;  ///< prompt tuning: init from these words' embeddings (empty: random)
};

struct PromptModelConfig {
  PromptStyle style = PromptStyle::kPTuning;
  std::int64_t virtual_tokens = 0;  ///< n: rows of every table and of the encoder output
  std::int32_t pseudo_start = 0;
  std::int32_t pad_id = 0;
  std::vector<PromptTaskSpec> tasks;  ///< index = task id (batch.task_ids)
  PromptEncoderConfig encoder;        ///< p-tuning (hidden and virtual_tokens filled in by the model)
  nlohmann::json base_pointer;        ///< what config_json() records about the frozen base model
};

class PromptModel final : public model::Model {
 public:
  /// `base`: the frozen base model (every parameter frozen, TP 1, PP 1, decoder-only).
  PromptModel(PromptModelConfig config, std::unique_ptr<model::Model> base, const ops::OpContext& ctx);

  const PromptModelConfig& prompt_config() const { return config_; }
  model::Model& base() { return *base_; }
  const PromptEncoder* encoder() const { return encoder_.get(); }

  /// Sets task `task`'s frozen or trainable table rows (n x h fp32 values).
  void set_table(const std::string& task, const std::vector<float>& rows);
  /// The final prompt table of every task (n x h fp32): new p-tuning tasks through the encoder
  /// (its output for the task; computed without dropout), the others their tables.
  std::map<std::string, std::vector<float>> final_tables();

  // model::Model
  std::string_view family() const override { return "gpt_prompt"; }
  nlohmann::json config_json() const override;
  model::ParameterStore& parameters() override { return store_; }
  const ops::OpContext& context() const override { return ctx_; }
  const parallel::ParallelContext& parallel_context() const override { return base_->parallel_context(); }
  DType compute_dtype() const override { return base_->compute_dtype(); }
  std::int64_t vocab_size() const override { return base_->vocab_size(); }
  std::int64_t max_sequence_length() const override { return base_->max_sequence_length(); }
  std::int64_t num_parameters() const override;
  double flops_per_sample() const override { return base_->flops_per_sample(); }
  /// Draws the trainable prompt parameters (encoder or new tables); frozen tables keep their rows.
  void initialize(std::uint64_t seed) override;
  int num_chunks() const override { return 1; }
  bool chunk_has_head(int) const override { return true; }
  Shape boundary_shape(std::int64_t batch, std::int64_t seq) const override { return base_->boundary_shape(batch, seq); }
  std::unique_ptr<model::Activations> forward_chunk(int chunk, const model::Batch& batch, const model::DropoutRng& rng,
                                                    bool training, const TensorView& input,
                                                    const TensorView& output) override;
  void backward_chunk(model::Activations& acts, float grad_scale, const TensorView& output_grad,
                      const TensorView& input_grad) override;
  void reduce_model_parallel_grads() override {}
  bool needs_model_parallel_reduction(const model::Parameter&) const override { return false; }
  void set_grad_ready_hook(model::GradReadyHook hook) override { grad_ready_ = std::move(hook); }
  /// Scores with every task's table (the inference path).
  model::TokenScores score(const model::Batch& batch) override;
  model::TokenScores scores_of(const model::Activations& head) override;

 private:
  struct Acts;
  std::unique_ptr<Acts> run_forward(const model::Batch& batch, const model::DropoutRng& rng, bool training,
                                    bool inference_path);
  std::vector<float> table_rows(int task) const;

  PromptModelConfig config_;
  std::unique_ptr<model::Model> base_;
  ops::OpContext ctx_;
  model::ParameterStore store_;
  std::unique_ptr<PromptEncoder> encoder_;
  std::vector<model::Parameter*> tables_;  // per task id: its table, or nullptr (new p-tuning task)
  model::Parameter* word_ = nullptr;       // the base's (frozen) word and position embeddings
  model::Parameter* position_ = nullptr;
  model::GradReadyHook grad_ready_;
};

/// The state-dict key of task `task`'s table.
std::string prompt_table_key(const std::string& task);

}  // namespace bignlp::tune
