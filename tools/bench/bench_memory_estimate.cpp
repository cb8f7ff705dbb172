// bench_memory_estimate: the HP tool's per-GPU memory estimate (hp/memory_check.h) next to the
// tensor allocator's measured peak of real CPU training steps (forward + backward + Adam), for a
// few GPT shapes, precisions and recomputation settings (one rank). Prints a table: estimate,
// measured peak, ratio. Figures only (docs/hp_tool.md "Memory model" keeps a copy).
//
//   bench_memory_estimate [--threads N]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <random>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/hp/memory_check.h"
#include "bignlp/model/gpt.h"
#include "bignlp/train/optimizer.h"

namespace {

struct BenchShape {
  int layers, heads;
  std::int64_t hidden, seq, vocab, mbs;
  std::string precision;    // "32", "bf16"
  std::string granularity;  // "none", "full", "selective"
};

bignlp::config::ConfigNode training_config(const BenchShape& s) {
  using bignlp::config::ConfigNode;
  ConfigNode c = ConfigNode::dict();
  auto i = [](std::int64_t v) { return ConfigNode::integer(v); };
  c.set_path("trainer.num_nodes", i(1));
  c.set_path("trainer.devices", i(1));
  c.set_path("trainer.precision", ConfigNode::string(s.precision));
  c.set_path("model.micro_batch_size", i(s.mbs));
  c.set_path("model.global_batch_size", i(s.mbs));
  c.set_path("model.num_layers", i(s.layers));
  c.set_path("model.hidden_size", i(s.hidden));
  c.set_path("model.num_attention_heads", i(s.heads));
  c.set_path("model.encoder_seq_length", i(s.seq));
  c.set_path("model.max_position_embeddings", i(s.seq));
  c.set_path("model.make_vocab_size_divisible_by", i(128));
  c.set_path("model.optim.name", ConfigNode::string("fused_adam"));
  if (s.granularity != "none") {
    c.set_path("model.activations_checkpoint_granularity", ConfigNode::string(s.granularity));
    c.set_path("model.activations_checkpoint_method", ConfigNode::string("uniform"));
    c.set_path("model.activations_checkpoint_num_layers", i(s.layers));
  }
  return c;
}

std::size_t measure(const BenchShape& s, int threads) {
  using namespace bignlp;
  model::GptConfig c;
  c.vocab_size = s.vocab;
  c.seq_length = s.seq;
  c.num_layers = s.layers;
  c.hidden_size = s.hidden;
  c.num_attention_heads = s.heads;
  c.hidden_dropout = 0.1f;
  c.attention_dropout = 0.1f;
  c.precision = model::parse_precision(s.precision);
  if (s.granularity == "full")
    c.activations_checkpoint = {model::CheckpointGranularity::kFull, model::CheckpointMethod::kUniform, 1};
  if (s.granularity == "selective")
    c.activations_checkpoint = {model::CheckpointGranularity::kSelective, model::CheckpointMethod::kUniform, 1};
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu(threads);
  ctx.allocator = &alloc;
  model::GptModel model(c, ctx);
  model.initialize(1234);
  train::AdamOptimizer opt(model.parameters(), train::OptimizerConfig{"fused_adam", 1e-4, 0.9, 0.95, 1e-8, 0.1}, ctx);
  std::mt19937 rng(1);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(s.mbs * s.seq)), labels(tokens.size());
  for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % s.vocab);
  for (auto& t : labels) t = static_cast<std::int32_t>(rng() % s.vocab);
  const model::Batch batch{.tokens = TensorView(tokens.data(), DType::kI32, Shape{s.mbs, s.seq}),
                           .labels = TensorView(labels.data(), DType::kI32, Shape{s.mbs, s.seq})};
  for (int step = 0; step < 2; ++step) {
    model.parameters().zero_grad(ctx);
    (void)model.train_micro_batch(batch, model::DropoutRng{1, model::dropout_offset(step, 0, 1)}, 1.0f);
    opt.step(1e-4, 1.0, 1.0);
  }
  return alloc.stats().peak_in_use;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HP-tool memory estimate vs the allocator's measured peak (CPU)"};
  int threads = 0;
  app.add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);
  const std::vector<BenchShape> shapes = {
      {2, 4, 64, 128, 50257, 4, "32", "none"},      {4, 8, 256, 256, 50257, 2, "32", "none"},
      {4, 8, 256, 512, 8192, 4, "32", "none"},      {4, 8, 256, 512, 8192, 4, "32", "selective"},
      {4, 8, 256, 512, 8192, 4, "32", "full"},      {8, 12, 384, 256, 50257, 2, "32", "none"},
      {4, 8, 256, 512, 8192, 4, "bf16", "none"},    {4, 8, 256, 512, 8192, 4, "bf16", "full"},
      {12, 12, 768, 512, 50257, 1, "32", "none"},
  };
  std::printf("%-44s %12s %12s %8s\n", "shape (L/C/NH/T/V, MBS, precision, recompute)", "estimate MiB",
              "measured MiB", "est/meas");
  for (const BenchShape& s : shapes) {
    const auto est = bignlp::hp::estimate_training_memory(training_config(s), s.vocab, 0.0);
    const double measured = double(measure(s, threads));
    const double e = est.total_bytes();
    const std::string name = fmt::format("L{} C{} NH{} T{} V{}, MBS {}, {}, {}", s.layers, s.hidden, s.heads, s.seq,
                                         s.vocab, s.mbs, s.precision, s.granularity);
    std::printf("%-44s %12.1f %12.1f %8.3f\n", name.c_str(), e / 1048576.0, measured / 1048576.0, e / measured);
    std::fflush(stdout);
  }
  return 0;
}
