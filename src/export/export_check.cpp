#include "bignlp/export/export_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/eval/evaluator.h"
#include "bignlp/eval/tasks.h"
#include "bignlp/infer/engine.h"
#include "bignlp/infer/ft_repository.h"
#include "bignlp/tensor/allocator.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

/// Rounds every weight of `m` through `dtype` (what a weight file of that type holds).
void round_weights(model::Model& m, DType dtype) {
  if (dtype == DType::kF32) return;
  const ops::OpContext& ctx = m.context();
  for (auto& p : m.parameters().params()) {
    const Shape s = p.shape;
    std::vector<std::uint16_t> narrow(static_cast<std::size_t>(p.numel()));
    std::vector<float> back(static_cast<std::size_t>(p.numel()));
    ops::copy(ctx, p.master.defined() ? p.master : p.value, TensorView(narrow.data(), dtype, s));
    ops::copy(ops::OpContext::cpu(), TensorView(narrow.data(), dtype, s), TensorView(back.data(), DType::kF32, s));
    m.parameters().assign(ctx, p, TensorView(back.data(), DType::kF32, s));
  }
}

struct Side {
  double generation_acc = 0.0;
  std::int64_t hits = 0;
  nlohmann::json eval_metrics = nlohmann::json::object();
  std::vector<std::vector<std::int32_t>> generations;
};

Side run_side(model::Model& m, const data::Tokenizer& tok, const eval::Task& task, const AccuracyCheckOptions& o,
              const Logger& log) {
  Side side;
  const std::int64_t capacity = std::min<std::int64_t>(o.max_seq_len, m.max_sequence_length());
  const eval::TokenizedTask tt = eval::tokenize_task(task, tok, capacity);
  infer::EngineOptions eo;
  eo.max_batch_size = std::max<std::int64_t>(o.batch_size, o.beam_width);
  eo.capacity = capacity;
  infer::Engine engine(m, eo);
  std::vector<infer::GenerationRequest> requests;
  std::vector<std::vector<std::int32_t>> labels;
  for (const auto& doc : tt.doc_requests) {
    const eval::LoglikelihoodRequest& r = tt.requests.at(doc.at(0).at(0));
    infer::GenerationRequest g;
    const auto label_len = static_cast<std::int64_t>(r.continuation.size());
    if (label_len >= capacity)
      throw DataError(fmt::format("a LAMBADA label of {} tokens leaves no room for its context in max_seq_len {}",
                                  label_len, capacity));
    const std::int64_t keep = std::min<std::int64_t>(static_cast<std::int64_t>(r.context.size()), capacity - label_len);
    g.prompt.assign(r.context.end() - keep, r.context.end());
    g.params.max_new_tokens = label_len;
    g.params.beam_width = o.beam_width;
    g.params.top_k = o.top_k;
    g.params.top_p = o.top_p;
    requests.push_back(std::move(g));
    labels.push_back(r.continuation);
  }
  const auto results = engine.generate(requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].error.empty()) throw RuntimeError(fmt::format("LAMBADA document {}: {}", i + 1, results[i].error));
    side.hits += results[i].beams.at(0).tokens == labels[i];
  }
  side.generation_acc = results.empty() ? 0.0 : 100.0 * static_cast<double>(side.hits) / static_cast<double>(results.size());
  eval::EvalOptions evo;
  evo.batch_size = o.batch_size;
  evo.bootstrap_iters = 1000;
  const eval::TaskReport report = eval::evaluate_task(m, tok, task, evo, log);
  for (const auto& [name, value] : report.metrics)
    if (value) side.eval_metrics[name] = *value;
  // The greedy generation compared token for token.
  std::vector<infer::GenerationRequest> greedy;
  for (std::size_t i = 0; i < requests.size() && static_cast<std::int64_t>(i) < o.generation_prompts; ++i) {
    infer::GenerationRequest g;
    const std::int64_t room = capacity - o.generation_tokens;
    if (room < 1) throw ConfigError(fmt::format("max_seq_len {} leaves no room for {} generated tokens", capacity, o.generation_tokens));
    const auto& ctx = requests[i].prompt;
    const std::int64_t keep = std::min<std::int64_t>(static_cast<std::int64_t>(ctx.size()), room);
    g.prompt.assign(ctx.end() - keep, ctx.end());
    g.params.max_new_tokens = o.generation_tokens;
    greedy.push_back(std::move(g));
  }
  for (const auto& r : engine.generate(greedy)) side.generations.push_back(r.beams.at(0).tokens);
  return side;
}

std::string py_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

nlohmann::json check_export_accuracy(const fs::path& source, const fs::path& model_dir, const AccuracyCheckOptions& o,
                                     const Logger& log) {
  if (!fs::is_regular_file(o.test_data))
    throw IoError(fmt::format("{}: the LAMBADA test file is missing; fetch it with bignlp-evaluate --download --tasks "
                              "lambada --data-dir DIR and point accuracy.test_data at DIR/lambada_test.jsonl",
                              o.test_data.string()));
  if (o.batch_size < 1 || o.max_seq_len < 2 || o.beam_width < 1)
    throw ConfigError("accuracy: batch_size and runtime.beam_width must be >= 1, runtime.max_seq_len >= 2");
  // eval::load_task reads <dir>/lambada_test.jsonl.
  TempDir data("export-lambada");
  fs::create_symlink(fs::absolute(o.test_data), data.path() / "lambada_test.jsonl");
  const eval::Task task = eval::load_task("lambada", data.path(), eval::TaskStyle::kLauncher, o.limit);

  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const infer::FtRepository repo = infer::open_ft_repository(model_dir);
  const model::Precision precision = infer::ft_data_type(repo).value_or(model::Precision::kFp32);
  auto exported = infer::load_model_from_ft_repository(repo, ctx, precision);
  const auto tok = infer::load_ft_tokenizer(repo);
  if (!tok) throw DataError(fmt::format("{}: no tokenizer files; the LAMBADA check needs them", repo.weights_dir.string()));
  auto src = checkpoint::load_model_from_checkpoint(source, ctx, precision);
  round_weights(*src, repo.weight_data_type);
  if (src->vocab_size() != exported->vocab_size())
    throw DataError(fmt::format("{}: the exported model has {} vocabulary ids, the source checkpoint {} ({})",
                                repo.weights_dir.string(), exported->vocab_size(), src->vocab_size(), source.string()));
  log.info("accuracy check: LAMBADA ({} documents) on {} and on {}", task.docs.size(), model_dir.string(), source.string());
  const Side a = run_side(*exported, *tok, task, o, log);
  const Side b = run_side(*src, *tok, task, o, log);
  const bool acc_equal = a.hits == b.hits && a.eval_metrics == b.eval_metrics;
  const bool gen_equal = a.generations == b.generations;
  nlohmann::json report;
  auto side_json = [&](const Side& s) {
    nlohmann::json j = {{"accuracy", s.generation_acc}, {"hits", s.hits}, {"lm_eval", s.eval_metrics}};
    return j;
  };
  report["task"] = "lambada";
  report["documents"] = task.docs.size();
  report["exported"] = side_json(a);
  report["exported"]["model"] = fs::absolute(model_dir).lexically_normal().string();
  report["source"] = side_json(b);
  report["source"]["checkpoint"] = fs::absolute(source).lexically_normal().string();
  report["source"]["weights_rounded_to"] = dtype_name(repo.weight_data_type);
  report["compute_precision"] = model::precision_name(precision);
  report["runtime"] = {{"max_seq_len", o.max_seq_len}, {"beam_width", o.beam_width}, {"sampling_top_k", o.top_k},
                       {"sampling_top_p", o.top_p}, {"batch_size", o.batch_size}};
  report["greedy_generation"] = {{"prompts", a.generations.size()},
                                 {"tokens", o.generation_tokens},
                                 {"equal", gen_equal},
                                 {"exported", a.generations},
                                 {"source", b.generations}};
  report["accuracy_equal"] = acc_equal;
  write_file_atomic(o.output_path, report.dump(2) + "\n");
  if (!o.runtime_ini.empty())
    write_file_atomic(o.runtime_ini,
                      fmt::format("[ft_instance_hyperparameter]\nmax_batch_size = {}\nmax_seq_len = {}\nbeam_width = {}\n"
                                  "top_k = {}\ntop_p = {}\ntensor_para_size = {}\npipeline_para_size = 1\n"
                                  "data_type = {}\nint8_mode = 0\nmodel_dir = {}\nis_half = {}\n\n",
                                  o.batch_size, o.max_seq_len, o.beam_width, o.top_k, o.top_p, repo.tensor_para_size,
                                  model::precision_name(precision) == "16" ? "fp16"
                                  : precision == model::Precision::kBf16 ? "bf16"
                                                                         : "fp32",
                                  repo.weights_dir.string(), py_bool(precision == model::Precision::kFp16)));
  log.info("LAMBADA accuracy: exported {:.2f} ({} hits), source {:.2f} ({} hits); greedy generation {}",
           a.generation_acc, a.hits, b.generation_acc, b.hits, gen_equal ? "equal" : "DIFFERS");
  if (!acc_equal || !gen_equal)
    throw RuntimeError(fmt::format("the exported model does not compute what the source checkpoint computes: {}{}(report: {})",
                                   acc_equal ? "" : "LAMBADA results differ; ",
                                   gen_equal ? "" : "greedy generations differ; ", o.output_path.string()));
  return report;
}

std::string benchmark_export(const fs::path& model_dir, const BenchmarkOptions& o, const Logger& log) {
  if (o.input_len < 1 || o.output_len < 1)
    throw ConfigError(fmt::format("benchmark: input_len ({}) and output_len ({}) must be >= 1", o.input_len, o.output_len));
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const infer::FtRepository repo = infer::open_ft_repository(model_dir);
  auto m = infer::load_model_from_ft_repository(repo, ctx);
  if (o.input_len + o.output_len > m->max_sequence_length())
    throw ConfigError(fmt::format("benchmark: input_len {} + output_len {} exceed the model's {} positions", o.input_len,
                                  o.output_len, m->max_sequence_length()));
  const std::int64_t id_range = std::min<std::int64_t>(m->vocab_size(), 51200);
  std::string csv = "batch_size,tensor_para_size,pipeline_para_size,input_len,output_len,latency_ms,throughput_per_gpu\n";
  for (std::int64_t b : o.batch_sizes) {
    if (b < 1) throw ConfigError(fmt::format("benchmark.batch_sizes: {} is not a batch size", b));
    std::mt19937_64 rng(1234);
    std::uniform_int_distribution<std::int64_t> pick(0, id_range - 1);
    std::vector<infer::GenerationRequest> reqs(static_cast<std::size_t>(b));
    for (auto& r : reqs) {
      for (std::int64_t t = 0; t < o.input_len; ++t) r.prompt.push_back(static_cast<std::int32_t>(pick(rng)));
      r.params.max_new_tokens = o.output_len;
    }
    infer::EngineOptions eo;
    eo.max_batch_size = b;
    eo.capacity = o.input_len + o.output_len;
    infer::Engine engine(*m, eo);
    for (int w = 0; w < o.warmup; ++w) engine.generate(reqs);
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < o.runs; ++r) engine.generate(reqs);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / std::max(1, o.runs);
    const double throughput = static_cast<double>(b) / ms * 1000.0;
    csv += fmt::format("{},{},{},{},{},{:.3f},{:.3f}\n", b, 1, 1, o.input_len, o.output_len, ms, throughput);
    log.info("benchmark: batch {} latency {:.1f} ms, {:.2f} sentences/s", b, ms, throughput);
  }
  if (!o.output_csv.empty()) write_file_atomic(o.output_csv, csv);
  return csv;
}

}  // namespace bignlp::exporting
