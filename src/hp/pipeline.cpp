#include "bignlp/hp/pipeline.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/hp/memory_check.h"

namespace bignlp::hp {

namespace fs = std::filesystem;
using config::ConfigNode;

SearchPlan plan_search(const TrainSettings& s, const ConfigNode& templ) {
  SearchPlan plan;
  plan.settings = s;
  plan.base = generate_base_config(s, templ);
  plan.model = search_model(plan.base, s);
  plan.grid = calculate_tp_pp_mbs_grid(s.family, plan.base.size_in_b, plan.model.layers, s.seq_length,
                                       s.gpu_memory_gb, s.grid);
  plan.search_nodes = s.search_num_nodes.value_or(s.num_nodes);
  plan.memory_limit_gb = s.memory_limit_gb.value_or(double(s.gpu_memory_gb));
  const ConfigNode* acc = plan.base.config.find_path("trainer.accelerator");
  const bool cpu = acc != nullptr && acc->is_string() && acc->as_string() == "cpu";
  const auto cands = generate_candidates(plan.model, plan.grid, Cluster{s.num_nodes, s.gpus_per_node},
                                         s.grid.act_ckpt_layers, /*raw=*/false, /*partial_checkpointing=*/false);
  for (const Candidate& c : cands) {
    PlannedCandidate p;
    p.candidate = c;
    p.name = candidate_name(plan.model, plan.search_nodes, c);
    p.config = candidate_config(plan.base, s, plan.model, plan.search_nodes, c);
    p.config.set_path("trainer.log_every_n_steps", ConfigNode::integer(1));  // one timing line per step
    try {
      const MemoryBreakdown m = estimate_training_memory(p.config, s.vocab_size, cpu ? 0.0 : 1.0);
      p.estimated_gb = m.total_bytes() / (1024.0 * 1024.0 * 1024.0);
      p.fits = p.estimated_gb <= plan.memory_limit_gb;
    } catch (const ConfigError& e) {
      p.memory_error = e.what();
      p.fits = false;
    }
    plan.candidates.push_back(std::move(p));
  }
  return plan;
}

void write_plan(const SearchPlan& plan) {
  const fs::path logs = plan.settings.logs;
  for (const char* d : {"candidate_configs", "training_logs", "final_result"}) fs::create_directories(logs / d);
  config::write_yaml_file(logs / fmt::format("base_cfg_{}b.yaml", plan.base.size_label), plan.base.config);
  for (const auto& c : plan.candidates) {
    if (c.fits) config::write_yaml_file(logs / "candidate_configs" / (c.name + ".yaml"), c.config);
  }
}

ResultRow result_row(const SearchPlan& plan, const PlannedCandidate& pc) {
  const Candidate& c = pc.candidate;
  ResultRow r;
  r.model_name = std::string(to_string(plan.settings.family));
  r.model_size = plan.base.size_label;
  r.seq_length = plan.settings.seq_length;
  r.tp = c.tp;
  r.pp = c.pp;
  r.mbs = c.mbs;
  r.act_ckpt_layers = c.act_ckpt_layers;
  r.act_ckpt_micro_batches = c.num_micro_batches_with_partial_activation_checkpoints;
  r.act_ckpt_layers_per_pipeline = c.activations_checkpoint_layers_per_pipeline;
  const bool t5 = is_encoder_decoder(plan.settings.family);
  r.num_layers = plan.model.layers * (t5 ? 2 : 1);
  r.hidden_size = plan.base.params.hidden_size;
  const ConfigNode* ffn = plan.base.config.find_path(t5 ? "model.encoder.ffn_hidden_size" : "model.ffn_hidden_size");
  if (ffn != nullptr && ffn->is_int()) r.ffn_hidden_size = static_cast<int>(ffn->as_int());
  else r.ffn_hidden_size = 4 * r.hidden_size;
  r.gbs = plan.base.batch.gbs;
  r.nodes = plan.search_nodes;
  r.gpus_per_node = plan.settings.gpus_per_node;
  if (pc.memory_error.empty()) r.estimated_memory_gb = pc.estimated_gb;
  r.config_name = fmt::format("tp{}_pp{}_mbs{}_act_{}_num_mbs_act_{}_act_per_pipe_{}", c.tp, c.pp, c.mbs,
                              c.act_ckpt_layers ? fmt::format("{}", *c.act_ckpt_layers) : "None",
                              r.act_ckpt_micro_batches ? fmt::format("{}", *r.act_ckpt_micro_batches) : "None",
                              r.act_ckpt_layers_per_pipeline ? fmt::format("{}", *r.act_ckpt_layers_per_pipeline)
                                                             : "None");
  return r;
}

namespace {

std::string last_nonempty_line(const std::string& text) {
  std::size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return "";
  std::size_t begin = text.rfind('\n', end);
  return text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

std::string line_containing(const std::string& text, std::string_view needle) {
  const auto at = text.find(needle);
  if (at == std::string::npos) return "";
  const auto b = text.rfind('\n', at);
  const auto e = text.find('\n', at);
  return text.substr(b == std::string::npos ? 0 : b + 1, (e == std::string::npos ? text.size() : e) -
                                                             (b == std::string::npos ? 0 : b + 1));
}

FlopsShape flops_shape(const SearchPlan& plan) {
  FlopsShape f;
  f.family = plan.settings.family;
  f.gbs = plan.base.batch.gbs;
  f.seq = plan.settings.seq_length;
  f.hidden = plan.base.params.hidden_size;
  f.vocab = plan.settings.vocab_size;
  const bool t5 = is_encoder_decoder(f.family);
  f.layers = plan.model.layers * (t5 ? 2 : 1);
  const ConfigNode* ffn = plan.base.config.find_path(t5 ? "model.encoder.ffn_hidden_size" : "model.ffn_hidden_size");
  f.ffn = (ffn != nullptr && ffn->is_int()) ? double(ffn->as_int()) : 4.0 * f.hidden;
  const ConfigNode* dec = plan.base.config.find_path("model.data.seq_length_dec");
  f.seq_dec = (dec != nullptr && dec->is_int()) ? double(dec->as_int()) : 128.0;
  return f;
}

}  // namespace

Collected collect_results(const SearchPlan& plan) {
  const fs::path logs = plan.settings.logs;
  const fs::path final_dir = logs / "final_result";
  fs::create_directories(final_dir);
  Collected out;
  const double flops = model_flops_per_step(flops_shape(plan));
  const double gpus = double(plan.search_nodes) * plan.settings.gpus_per_node;
  for (const auto& pc : plan.candidates) {
    ResultRow row = result_row(plan, pc);
    if (!pc.fits) {
      row.error_message = pc.memory_error.empty()
                              ? fmt::format("not launched: estimated {:.2f} GiB per GPU exceeds the {} GiB limit",
                                            pc.estimated_gb, plan.memory_limit_gb)
                              : "not launched: " + pc.memory_error;
      out.failed.push_back(std::move(row));
      continue;
    }
    const fs::path dir = logs / "training_logs" / pc.name;
    if (!fs::is_directory(dir)) continue;
    std::string out_text, err_text;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      const std::string name = p.filename().string();
      if (!name.starts_with("log-")) continue;
      if (name.ends_with(".out")) out_text += read_file(p);
      if (name.ends_with(".err")) err_text += read_file(p);
    }
    const auto times = parse_step_times(out_text);
    const auto mean = mean_step_time(times);
    const std::string oom = line_containing(err_text, "out of memory");
    if (!oom.empty()) {
      row.error_message = oom;
    } else if (!mean) {
      const std::string last = last_nonempty_line(err_text);
      row.error_message = fmt::format("{} step time(s) in the log, more than 6 are needed{}", times.size(),
                                      last.empty() ? std::string() : "; last error line: " + last);
    }
    if (!row.error_message.empty()) {
      out.failed.push_back(std::move(row));
      continue;
    }
    row.time_per_step = *mean;
    row.samples_per_second = round_to(plan.base.batch.gbs / *mean, 2);
    row.tflops_aggregate = round_to(flops / *mean / 1e12, 2);
    row.tflops_per_gpu = round_to(flops / *mean / 1e12 / gpus, 2);
    out.summary.push_back(std::move(row));
  }
  sort_by_time(out.summary);
  out.summary_csv = final_dir / fmt::format("final_summary_{}nodes.csv", plan.search_nodes);
  out.failed_csv = final_dir / fmt::format("failed_jobs_{}nodes.csv", plan.search_nodes);
  write_file_atomic(out.summary_csv, summary_csv(out.summary));
  write_file_atomic(out.failed_csv, failed_csv(out.failed));
  if (!out.summary.empty()) {
    const std::string best_config = out.summary.front().config_name;
    for (const auto& pc : plan.candidates) {
      if (result_row(plan, pc).config_name != best_config || !pc.fits) continue;
      out.best = pc.name;
      // The base config (full run: steps, time, checkpoints) with the winning layout.
      ConfigNode cfg = plan.base.config;
      for (const char* key :
           {"model.tensor_model_parallel_size", "model.pipeline_model_parallel_size", "model.micro_batch_size",
            "model.activations_checkpoint_num_layers", "model.num_micro_batches_with_partial_activation_checkpoints",
            "model.activations_checkpoint_layers_per_pipeline", "model.virtual_pipeline_model_parallel_size",
            "model.activations_checkpoint_granularity", "model.activations_checkpoint_method",
            "model.encoder.activations_checkpoint_num_layers", "model.decoder.activations_checkpoint_num_layers"}) {
        if (const ConfigNode* v = pc.config.find_path(key)) cfg.set_path(key, *v);
      }
      out.optimal_config = final_dir / fmt::format("optimal_config_{}b_{}nodes.yaml", plan.base.size_label,
                                                   plan.search_nodes);
      config::write_yaml_file(out.optimal_config, cfg);
      break;
    }
  }
  return out;
}

}  // namespace bignlp::hp
