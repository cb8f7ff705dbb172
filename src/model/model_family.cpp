#include "bignlp/model/model_family.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/model/gpt.h"
#include "bignlp/model/t5.h"

namespace bignlp::model {

ModelFamilyRegistry ModelFamilyRegistry::builtin() {
  ModelFamilyRegistry r;
  r.add(ModelFamily{"gpt", "Megatron GPT (decoder-only, NeMo MegatronGPTModel)",
                    [](const nlohmann::json& config, const ops::OpContext& ctx, const parallel::ParallelContext& pc,
                       const ParameterPredicate& trainable) {
                      return std::unique_ptr<Model>(std::make_unique<GptModel>(config.get<GptConfig>(), ctx, pc, trainable));
                    }});
  r.add(ModelFamily{"t5", "NeMo Megatron T5 / mT5 (encoder-decoder, MegatronT5Model)",
                    [](const nlohmann::json& config, const ops::OpContext& ctx, const parallel::ParallelContext& pc,
                       const ParameterPredicate& trainable) {
                      return std::unique_ptr<Model>(std::make_unique<T5Model>(config.get<T5Config>(), ctx, pc, trainable));
                    }});
  return r;
}

void ModelFamilyRegistry::add(ModelFamily family) {
  BIGNLP_CHECK(!family.name.empty() && family.build, "a model family needs a name and a builder");
  BIGNLP_CHECK(!contains(family.name), "model family '{}' is registered twice", family.name);
  families_.push_back(std::move(family));
}

bool ModelFamilyRegistry::contains(std::string_view name) const {
  return std::any_of(families_.begin(), families_.end(), [&](const ModelFamily& f) { return f.name == name; });
}

const ModelFamily& ModelFamilyRegistry::get(std::string_view name) const {
  for (const auto& f : families_)
    if (f.name == name) return f;
  throw ConfigError(fmt::format("unknown model family '{}'; known families: {}", name, join(names(), ", ")));
}

std::vector<std::string> ModelFamilyRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& f : families_) out.push_back(f.name);
  return out;
}

std::unique_ptr<Model> ModelFamilyRegistry::build(std::string_view family, const nlohmann::json& config,
                                                  const ops::OpContext& ctx,
                                                  const parallel::ParallelContext& parallel,
                                                  const ParameterPredicate& trainable) const {
  return get(family).build(config, ctx, parallel, trainable);
}

}  // namespace bignlp::model
