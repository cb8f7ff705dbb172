// ModelFamilyRegistry: which model families exist and how each is built from its config.
//
// A family is a name ("gpt"; "t5" and "mt5" join with the encoder-decoder engine) and a builder
// from the family's typed config in JSON form (NeMo's model.* key names, as checkpoints record it)
// to this rank's Model. Adding a family means one entry here (ModelFamilyRegistry::builtin), its
// block spec (block_spec.h) and its batch/data code; the trainer, evaluation, inference and export
// only see model::Model. The registry is a value: builtin() returns the families compiled into
// bignlp, tests add their own to a copy. No global state.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/model/model.h"

namespace bignlp::model {

struct ModelFamily {
  std::string name;         ///< registry key, e.g. "gpt"
  std::string description;  ///< one line for listings and errors
  /// Builds this rank's model from the family's config JSON and allocates its parameters on
  /// ctx.device (ctx.allocator required), freezing those `trainable` (when set) returns false for.
  /// Throws ConfigError for an invalid config.
  std::function<std::unique_ptr<Model>(const nlohmann::json& config, const ops::OpContext& ctx,
                                       const parallel::ParallelContext& parallel, const ParameterPredicate& trainable)>
      build;
};

class ModelFamilyRegistry {
 public:
  /// The families built into bignlp.
  static ModelFamilyRegistry builtin();

  /// Adds a family; throws RuntimeError when the name is taken.
  void add(ModelFamily family);
  /// The family called `name`; throws ConfigError listing the known families otherwise.
  const ModelFamily& get(std::string_view name) const;
  bool contains(std::string_view name) const;
  /// Registered names in registration order.
  std::vector<std::string> names() const;

  /// get(family).build(config, ctx, parallel, trainable).
  std::unique_ptr<Model> build(std::string_view family, const nlohmann::json& config, const ops::OpContext& ctx,
                               const parallel::ParallelContext& parallel = {},
                               const ParameterPredicate& trainable = {}) const;

 private:
  std::vector<ModelFamily> families_;
};

}  // namespace bignlp::model
