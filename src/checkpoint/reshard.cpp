#include "bignlp/checkpoint/reshard.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <vector>

#include "bignlp/checkpoint/integrity.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/partition.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt_config.h"
#include "bignlp/model/model_family.h"
#include "bignlp/model/t5.h"
#include "bignlp/sizing/vocab.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/safetensors.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {
namespace {

constexpr const char* kWord = "model.language_model.embedding.word_embeddings.weight";
constexpr const char* kWordCopy = "model.word_embeddings.weight";

/// A full (unsharded) fp32 tensor, row-major.
struct Full {
  Shape shape;
  std::vector<float> data;
  TensorView view() { return TensorView(data.data(), DType::kF32, shape); }
};

/// The model of one (tp rank, pp stage) of a layout, without training state. The communicators
/// only give the layers their TP size and rank; nothing is communicated.
struct ShardModel {
  std::vector<std::unique_ptr<comm::Communicator>> comms;
  std::unique_ptr<model::Model> model;
};

/// The parameter whose weights a shard's parameter holds: itself, or the table a pipeline-stage
/// copy duplicates (GPT's last-stage word embeddings, T5's decoder and head copies).
std::string source_name(const model::Parameter& p) {
  if (p.name == kWordCopy) return kWord;
  const std::string t5 = p.shared ? model::t5_copy_source(p.name) : std::string();
  return t5.empty() ? p.name : t5;
}

/// The checkpoint's family config with another TP size: the key NeMo configs carry, and the padded
/// vocabulary it implies. An encoder-decoder config's pipeline split rank follows the new pipeline
/// size (0 without stages; the launcher's default PP // 2 when the stage count changes).
nlohmann::json config_for_tp(const nlohmann::json& config, int tp, int old_pp = 1, int new_pp = 1) {
  nlohmann::json c = config;
  if (c.contains("pipeline_model_parallel_split_rank") && old_pp != new_pp)
    c["pipeline_model_parallel_split_rank"] = new_pp > 1 ? new_pp / 2 : 0;
  c["tensor_model_parallel_size"] = tp;
  if (c.contains("padded_vocab_size"))
    c["padded_vocab_size"] = sizing::padded_vocab_size(c.at("vocab_size").get<std::int64_t>(),
                                                       c.at("make_vocab_size_divisible_by").get<std::int64_t>(), tp);
  return c;
}

/// The model at fp32 (its weights are its master weights, frozen parameters included), with the
/// parameters named in `frozen` (the tied copy follows the word embedding) frozen.
ShardModel shard_model(const CheckpointState& meta, int tp, int pp, int tp_rank, int pp_rank, const ops::OpContext& ctx,
                       const std::set<std::string>& frozen) {
  ShardModel s;
  nlohmann::json cfg = config_for_tp(meta.model, tp);
  cfg["precision"] = model::precision_name(model::Precision::kFp32);
  parallel::ParallelContext pc;
  pc.grid = comm::ProcessGrid(tp * pp, pp_rank * tp + tp_rank, tp, pp);
  pc.options.virtual_pipeline_size = pp > 1 ? meta.virtual_pp_size : 1;
  if (tp > 1) {
    comm::LocalWorld world(tp);
    for (int r = 0; r < tp; ++r) s.comms.push_back(world.communicator(r));
    pc.tp = s.comms[static_cast<std::size_t>(tp_rank)].get();
  }
  model::ParameterPredicate trainable;
  if (!frozen.empty())
    trainable = [&frozen](const model::Parameter& p) { return frozen.count(source_name(p)) == 0; };
  s.model = model::ModelFamilyRegistry::builtin().build(meta.family, cfg, ctx, pc, trainable);
  return s;
}

/// The TP split dimension of p (-1: whole on every rank).
int split_dim(const model::Parameter& p) { return p.tensor_parallel() ? p.partition_dim : -1; }

}  // namespace

void reshard_checkpoint(const fs::path& input, const fs::path& output, int tensor_parallel, int pipeline_parallel,
                        const Logger& log) {
  const CheckpointState meta = read_checkpoint_metadata(input);
  if (tensor_parallel < 1 || pipeline_parallel < 1)
    throw ConfigError(fmt::format("--tensor-model-parallel-size and --pipeline-model-parallel-size must be >= 1, got {} "
                                  "and {}", tensor_parallel, pipeline_parallel));
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const bool with_optimizer = meta.has_optimizer_state;
  // 1. Read every old shard into full tensors (weights, and moments under "exp_avg." / "exp_avg_sq.").
  // A parameter whose moments are absent was frozen when the checkpoint was saved; it stays frozen.
  std::map<std::string, Full> full;
  std::set<std::string> frozen;
  for (int pp_rank = 0; pp_rank < meta.pp_size; ++pp_rank) {
    for (int tp_rank = 0; tp_rank < meta.tp_size; ++tp_rank) {
      ShardModel sm = shard_model(meta, meta.tp_size, meta.pp_size, tp_rank, pp_rank, ctx, {});
      const fs::path shard = input / checkpoint_shard_name(tp_rank, pp_rank);
      if (!check_shard_file_size(input, meta, shard / "model.safetensors") && pp_rank == 0 && tp_rank == 0)
        log.warn("{}: written without shard sizes and tensor checksums (an older bignlp); reading it unverified",
                 input.string());
      const SafetensorsReader weights(shard / "model.safetensors");
      const ShardChecksums weight_crc(weights, meta.tensor_checksums);
      std::unique_ptr<SafetensorsReader> moments;
      std::unique_ptr<ShardChecksums> moment_crc;
      if (with_optimizer) {
        check_shard_file_size(input, meta, shard / "optimizer.safetensors");
        moments = std::make_unique<SafetensorsReader>(shard / "optimizer.safetensors");
        moment_crc = std::make_unique<ShardChecksums>(*moments, meta.tensor_checksums);
      }
      std::vector<std::pair<std::string, const SafetensorsReader*>> sources{{"", &weights}};
      if (moments) {
        sources.emplace_back("exp_avg.", moments.get());
        sources.emplace_back("exp_avg_sq.", moments.get());
      }
      for (const auto& p : sm.model->parameters().params()) {
        if (p.shared) continue;  // a pipeline-stage copy of a table another stage holds
        if (moments && moments->find("exp_avg." + p.name) == nullptr && moments->find("exp_avg_sq." + p.name) == nullptr)
          frozen.insert(p.name);
        for (const auto& [prefix, reader] : sources) {
          if (!prefix.empty() && frozen.count(p.name) != 0) continue;
          const SafetensorsReader& r = *reader;
          const std::string name = prefix + p.name;
          const SafetensorsEntry* e = r.find(name);
          if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", r.path().string(), name));
          if (!(e->shape == p.shape))
            throw DataError(fmt::format("{}: tensor '{}' has shape {}, the checkpoint's layout expects {}",
                                        r.path().string(), name, e->shape.to_string(), p.shape.to_string()));
          (reader == &weights ? weight_crc : *moment_crc).verify(name);
          std::vector<float> local(static_cast<std::size_t>(p.numel()));
          const TensorView local_view(local.data(), DType::kF32, p.shape);
          ops::copy(ctx, r.view(name), local_view);  // any float dtype -> fp32
          check_finite(local_view, r.path(), name);
          Full& f = full[name];
          if (f.data.empty()) {
            f.shape = tp_full_shape(p.shape, split_dim(p), p.tp_size);
            f.data.assign(static_cast<std::size_t>(f.shape.numel()), 0.0f);
          }
          tp_concat(local_view, split_dim(p), p.tp_size, p.tp_rank, f.view());
        }
      }
    }
  }
  // 2. The new layout: pad or cut the vocabulary rows, then write every new shard.
  CheckpointState out_meta = meta;
  out_meta.model = config_for_tp(meta.model, tensor_parallel, meta.pp_size, pipeline_parallel);
  out_meta.tp_size = tensor_parallel;
  out_meta.pp_size = pipeline_parallel;
  if (pipeline_parallel == 1) out_meta.virtual_pp_size = 1;
  out_meta.weights_dtype = DType::kF32;
  // The vocabulary padding from the keys every family's config carries (vocab_size,
  // make_vocab_size_divisible_by): any family's vocabulary tables are repadded.
  const std::int64_t vocab = meta.model.at("vocab_size").get<std::int64_t>();
  const std::int64_t multiple = meta.model.at("make_vocab_size_divisible_by").get<std::int64_t>();
  const std::int64_t old_vp = sizing::padded_vocab_size(vocab, multiple, meta.tp_size);
  const std::int64_t new_vp = sizing::padded_vocab_size(vocab, multiple, tensor_parallel);
  if (old_vp != new_vp) {
    log.warn("the padded vocabulary changes from {} to {} rows (make_vocab_size_divisible_by {} x TP {}): padding rows "
             "beyond the {} real tokens are {}",
             old_vp, new_vp, multiple, tensor_parallel, vocab, new_vp < old_vp ? "dropped" : "added as zeros");
    // Vocabulary tables: the word embeddings (GPT's; T5's encoder/decoder tables) and T5's untied
    // output layer and its bias, all vocab-parallel with old_vp rows.
    const auto is_vocab_table = [&](const std::string& name, const Full& f) {
      return f.shape.rank() >= 1 && f.shape[0] == old_vp &&
             (name.ends_with("word_embeddings.weight") || name.rfind("enc_dec_model.tokens_head.", 0) == 0);
    };
    for (auto& [name, tensor] : full) {
      const std::string base = name.rfind("exp_avg_sq.", 0) == 0 ? name.substr(11)
                               : name.rfind("exp_avg.", 0) == 0  ? name.substr(8)
                                                                 : name;
      if (!is_vocab_table(base, tensor)) continue;
      Full repadded;
      repadded.shape = tensor.shape;
      repadded.shape.set(0, new_vp);
      repadded.data.resize(static_cast<std::size_t>(repadded.shape.numel()));
      repad_vocab_rows(tensor.view(), repadded.view());
      tensor = std::move(repadded);
    }
  }
  StagedDirectory stage(output);
  for (int pp_rank = 0; pp_rank < pipeline_parallel; ++pp_rank) {
    for (int tp_rank = 0; tp_rank < tensor_parallel; ++tp_rank) {
      ShardModel sm = shard_model(out_meta, tensor_parallel, pipeline_parallel, tp_rank, pp_rank, ctx, frozen);
      model::ParameterStore& store = sm.model->parameters();
      Buffer m, v;
      if (with_optimizer) {
        m = Buffer(alloc, DType::kF32, Shape{store.trainable_numel()});
        v = Buffer(alloc, DType::kF32, Shape{store.trainable_numel()});
      }
      for (auto& p : store.params()) {
        const std::string source = source_name(p);
        const Shape full_shape = tp_full_shape(p.shape, split_dim(p), p.tp_size);
        auto fill = [&](const std::string& name, const TensorView& dst) {
          auto it = full.find(name);
          if (it == full.end()) throw DataError(fmt::format("{}: no tensor '{}' in any shard", input.string(), name));
          if (!(it->second.shape == full_shape))
            throw DataError(fmt::format("{}: tensor '{}' has full shape {}, the new layout expects {}", input.string(),
                                        name, it->second.shape.to_string(), full_shape.to_string()));
          tp_split(it->second.view(), split_dim(p), p.tp_size, p.tp_rank, dst);
        };
        fill(source, p.value);  // fp32: the master weights of a trainable parameter, all of a frozen one
        if (with_optimizer && p.trainable) {
          fill("exp_avg." + source, m.view().slice(0, p.offset, p.numel()).reshape(p.shape));
          fill("exp_avg_sq." + source, v.view().slice(0, p.offset, p.numel()).reshape(p.shape));
        }
      }
      write_checkpoint_shard(stage.path() / checkpoint_shard_name(tp_rank, pp_rank), store, store.flat_master(),
                             m.view(), v.view(), ctx);
    }
  }
  write_checkpoint_metadata(stage.path(), out_meta);
  stage.commit();
  log.info("resharded {} (TP {} x PP {}) into {} (TP {} x PP {})", input.string(), meta.tp_size, meta.pp_size,
           output.string(), tensor_parallel, pipeline_parallel);
}

}  // namespace bignlp::checkpoint
