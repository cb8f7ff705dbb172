// Test support: "toy-llama", a model family that exists only in the tests. It is a decoder-only
// model whose block is not GPT's (RMSNorm without bias, SwiGLU, no linear biases), built through
// the same seam as every family: a registry entry and a block spec, nothing in the trainer.
#pragma once

#include "bignlp/model/gpt.h"
#include "bignlp/model/model_family.h"

namespace bignlp::test_support {

/// The toy family's block for a GPT-shaped config (sizes and dropouts from `config`).
inline model::BlockSpec toy_block_spec(const model::GptConfig& config) {
  model::BlockSpec s = model::gpt_block_spec(config);
  s.normalization = model::Normalization::kRmsNorm;
  s.normalization_bias = false;
  s.activation = ops::Activation::kSilu;
  s.gated_linear_unit = true;
  s.bias = false;
  return s;
}

/// The registry entry: builds the toy model from a GptConfig in JSON form.
inline model::ModelFamily toy_decoder_family() {
  return model::ModelFamily{
      "toy-llama", "decoder-only test family: RMSNorm, SwiGLU, no biases",
      [](const nlohmann::json& config, const ops::OpContext& ctx, const parallel::ParallelContext& pc,
         const model::ParameterPredicate& trainable) {
        const auto c = config.get<model::GptConfig>();
        return std::unique_ptr<model::Model>(
            std::make_unique<model::GptModel>("toy-llama", c, toy_block_spec(c), ctx, pc, trainable));
      }};
}

/// The built-in families plus the toy one.
inline model::ModelFamilyRegistry registry_with_toy_family() {
  model::ModelFamilyRegistry r = model::ModelFamilyRegistry::builtin();
  r.add(toy_decoder_family());
  return r;
}

}  // namespace bignlp::test_support
