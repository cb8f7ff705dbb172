// Config benchmark: compose + resolve a large, launcher-shaped config tree with bignlp's config core
// and, in the same run, with Debian's Python OmegaConf 2.2.2 doing the same work on the same files
// (load every config of the final defaults list, Hydra's own configs included, embed each at its
// package, merge in order, apply the overrides, drop `hydra`, resolve). The Python side does not
// read defaults lists or build the defaults tree (bignlp does), so the ratio understates the gap to
// Hydra. Prints figures and the ratio; checks only that both produced the same YAML.
//
//   bench_config [--groups N] [--options N] [--iters N] [--peer-iters N] [--no-peer] [--write-tree DIR]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "bignlp/config/compose.h"
#include "bignlp/config/repository.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;
using bignlp::config::ComposeOptions;
using bignlp::config::ConfigNode;

namespace {

// One option of a stage group, shaped like a NeMo Megatron stage config: run/trainer/exp_manager/
// model with relative and absolute interpolations and the launcher's resolvers.
std::string stage_option(const std::string& group, int option, int size_class) {
  const int hidden = 768 * (1 + option) * size_class;
  std::string s = fmt::format(
      "run:\n"
      "  name: {g}_{o}\n"
      "  results_dir: ${{base_results_dir}}/${{.name}}\n"
      "  time_limit: '1-00:00:00'\n"
      "  dependency: singleton\n"
      "  log_dir: ${{.results_dir}}/logs\n"
      "trainer:\n"
      "  num_nodes: {nodes}\n"
      "  devices: 8\n"
      "  accelerator: gpu\n"
      "  precision: bf16\n"
      "  max_steps: ${{divide_ceil:${{.max_samples}}, ${{{g}.model.global_batch_size}}}}\n"
      "  max_samples: 300000000\n"
      "  val_check_interval: ${{divide_floor:${{.max_steps}}, 100}}\n"
      "  limit_val_batches: 50\n"
      "  log_every_n_steps: 10\n"
      "  world_size: ${{multiply:${{.num_nodes}}, ${{.devices}}}}\n"
      "exp_manager:\n"
      "  explicit_log_dir: ${{{g}.run.results_dir}}/results\n"
      "  exp_dir: null\n"
      "  name: megatron_{g}\n"
      "  create_wandb_logger: false\n"
      "  wandb_logger_kwargs:\n"
      "    project: nemo_{g}\n"
      "    name: ${{{g}.run.name}}\n"
      "  resume_if_exists: true\n"
      "  create_checkpoint_callback: true\n"
      "  checkpoint_callback_params:\n"
      "    monitor: val_loss\n"
      "    save_top_k: 10\n"
      "    mode: min\n"
      "    filename: 'megatron_{g}--{{val_loss:.2f}}-{{step}}'\n"
      "    model_parallel_size: ${{multiply:${{{g}.model.tensor_model_parallel_size}}, "
      "${{{g}.model.pipeline_model_parallel_size}}}}\n"
      "model:\n"
      "  micro_batch_size: 2\n"
      "  global_batch_size: {gbs}\n"
      "  tensor_model_parallel_size: {tp}\n"
      "  pipeline_model_parallel_size: {pp}\n"
      "  encoder_seq_length: 2048\n"
      "  max_position_embeddings: ${{.encoder_seq_length}}\n"
      "  num_layers: {layers}\n"
      "  hidden_size: {hidden}\n"
      "  ffn_hidden_size: ${{multiply:4, ${{.hidden_size}}}}\n"
      "  num_attention_heads: {heads}\n"
      "  kv_channels: ${{divide_floor:${{.hidden_size}}, ${{.num_attention_heads}}}}\n"
      "  init_method_std: 0.02\n"
      "  hidden_dropout: 0.1\n"
      "  layernorm_epsilon: 1.0e-05\n"
      "  make_vocab_size_divisible_by: 128\n"
      "  nodes_needed: ${{divide_ceil:${{multiply:${{.tensor_model_parallel_size}}, "
      "${{.pipeline_model_parallel_size}}}}, 8}}\n"
      "  tokenizer:\n"
      "    library: megatron\n"
      "    type: GPT2BPETokenizer\n"
      "    vocab_file: ${{data_dir}}/bpe/vocab.json\n"
      "    merge_file: ${{data_dir}}/bpe/merges.txt\n"
      "  optim:\n"
      "    name: distributed_fused_adam\n"
      "    lr: 1.6e-4\n"
      "    weight_decay: 0.1\n"
      "    betas: [0.9, 0.95]\n"
      "    sched:\n"
      "      name: CosineAnnealing\n"
      "      warmup_steps: ${{divide_floor:${{{g}.trainer.max_steps}}, 100}}\n"
      "      constant_steps: 0\n"
      "      min_lr: ${{multiply:${{..lr}}, 0.1}}\n"
      "  data:\n"
      "    data_impl: mmap\n"
      "    splits_string: '99990,8,2'\n"
      "    seq_length: ${{..encoder_seq_length}}\n"
      "    index_mapping_dir: ${{{g}.run.results_dir}}/index\n"
      "    data_prefix:\n",
      fmt::arg("g", group), fmt::arg("o", option), fmt::arg("nodes", 1 << option), fmt::arg("gbs", 256 * (1 + option)),
      fmt::arg("tp", 1 << option), fmt::arg("pp", 1 + option), fmt::arg("layers", 12 * (1 + option)),
      fmt::arg("hidden", hidden), fmt::arg("heads", 12 * (1 + option)));
  for (int i = 0; i < 30; ++i) {
    s += "    - 0.033\n";
    s += fmt::format("    - ${{data_dir}}/my-gpt3_{:02d}_text_document\n", i);
  }
  return s;
}

std::string primary(int groups) {
  std::string s = "defaults:\n  - _self_\n";
  for (int g = 0; g < groups; ++g) s += fmt::format("  - stage{}: family{}/option1\n", g, g % 3);
  s += "\nlauncher_scripts_path: /opt/bignlp\n"
       "data_dir: ${launcher_scripts_path}/data\n"
       "base_results_dir: ${launcher_scripts_path}/results\n"
       "container: nvcr.io/nvidia/bignlp:latest\n"
       "cluster_type: bcm\n"
       "env_vars:\n  NCCL_DEBUG: null\n  TRANSFORMERS_OFFLINE: 1\n"
       "user: ${oc.env:BIGNLP_BENCH_USER,nobody}\n"
       "stages:\n";
  for (int g = 0; g < groups; ++g) s += fmt::format("  - stage{}\n", g);
  return s;
}

void write_tree(const fs::path& conf, int groups, int options) {
  bignlp::write_file_atomic(conf / "config.yaml", primary(groups));
  for (int g = 0; g < groups; ++g) {
    for (int o = 0; o < options; ++o) {
      const std::string group = fmt::format("stage{}", g);
      bignlp::write_file_atomic(conf / group / fmt::format("family{}", g % 3) / fmt::format("option{}.yaml", o),
                                stage_option(group, o, 1 + g % 4));
    }
  }
}

std::size_t count(const ConfigNode& n, std::size_t& interpolations) {
  if (n.is_container()) {
    std::size_t c = 0;
    for (const auto& child : n.children()) c += count(child, interpolations);
    return c;
  }
  if (n.is_interpolation()) ++interpolations;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int groups = 12, options = 3, iters = 50, peer_iters = 3;
  bool no_peer = false;
  std::string write_tree_to;
  CLI::App app{"bench_config: compose + resolve a large config, bignlp vs Python OmegaConf"};
  app.add_option("--groups", groups, "stage groups in the primary defaults list");
  app.add_option("--options", options, "options per group");
  app.add_option("--iters", iters, "bignlp iterations");
  app.add_option("--peer-iters", peer_iters, "OmegaConf iterations");
  app.add_flag("--no-peer", no_peer, "skip the Python peer");
  app.add_option("--write-tree", write_tree_to, "only write the generated conf/ tree to this directory");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!write_tree_to.empty()) {
      write_tree(fs::path(write_tree_to) / "conf", groups, options);
      return 0;
    }
    bignlp::TempDir dir("bignlp-bench-config");
    const fs::path conf = dir.path() / "conf";
    write_tree(conf, groups, options);
    ComposeOptions opt;
    opt.config_path = conf;
    opt.overrides = {"stage0.trainer.num_nodes=4", "+stage1.model.extra=${stage0.model.hidden_size}"};

    // Warm up once (and keep the result to compare with the peer).
    auto first = bignlp::config::compose(opt);
    const ConfigNode resolved = first.resolved();
    std::size_t interps = 0;
    const std::size_t values = count(first.config, interps);

    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      auto r = bignlp::config::compose(opt);
      ConfigNode c = r.resolved();
      if (c.size() != resolved.size()) return 1;
    }
    const double ours_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;

    std::cout << fmt::format(
        "config: {} stage groups x {} options, {} config files merged, {} values, {} interpolations\n", groups, options,
        first.defaults.size(), values, interps);
    std::cout << fmt::format("bignlp   compose + resolve:                  {:9.3f} ms/iteration ({} iterations)\n",
                             ours_ms, iters);
    if (no_peer) return 0;

    // The plan for the peer: the configs in merge order with their packages, and the overrides.
    // Hydra's own configs (built into bignlp) are written out so the peer loads them too.
    for (const auto& [path, text] : bignlp::config::builtin_hydra_configs())
      bignlp::write_file_atomic(dir.path() / "hydra_builtin" / (path + ".yaml"), text);
    std::string plan = "{\"files\": [";
    for (std::size_t i = 0; i < first.defaults.size(); ++i) {
      const auto& d = first.defaults[i];
      const fs::path file = d.config_path.rfind("hydra/", 0) == 0 ? dir.path() / "hydra_builtin" / (d.config_path + ".yaml")
                                                                 : conf / (d.config_path + ".yaml");
      plan += fmt::format("{}{{\"path\": \"{}\", \"package\": \"{}\"}}", plan.back() == '[' ? "" : ", ",
                          file.string(), d.package);
    }
    plan += "]}";
    bignlp::write_file_atomic(dir.path() / "plan.json", plan);
    bignlp::write_file_atomic(dir.path() / "ours.yaml", bignlp::config::to_yaml(resolved));
    const std::string cmd = fmt::format("/usr/bin/python3 {}/tools/bench/omegaconf_compose.py {} {} {}", BIGNLP_SOURCE_DIR,
                                        (dir.path() / "plan.json").string(), peer_iters, (dir.path() / "ours.yaml").string());
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
      std::cout << "peer: could not start /usr/bin/python3\n";
      return 0;
    }
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int status = pclose(p);
    if (status != 0) {
      std::cout << "peer: OmegaConf run failed (python3-omegaconf installed?):\n" << out;
      return 0;
    }
    double peer_ms = 0;
    std::string same;
    for (const auto& line : bignlp::split(out, '\n')) {
      if (line.rfind("ms_per_iteration ", 0) == 0) peer_ms = std::atof(line.c_str() + 17);
      if (line.rfind("identical ", 0) == 0) same = line.substr(10);
    }
    std::cout << fmt::format("OmegaConf 2.2.2 load + merge + resolve:     {:9.3f} ms/iteration ({} iterations, Python)\n",
                             peer_ms, peer_iters);
    std::cout << fmt::format("ratio (OmegaConf / bignlp):                 {:9.1f}x\n", peer_ms / ours_ms);
    std::cout << fmt::format("resolved configs identical: {}\n", same);
  } catch (const bignlp::Error& e) {
    std::cerr << e.what() << "\n";
    return e.exit_code();
  }
  return 0;
}
