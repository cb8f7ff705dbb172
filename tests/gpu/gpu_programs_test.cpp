// The programs on a GPU, end to end, against the same programs on the CPU (label gpu; every test
// skips without a CUDA device):
// - bignlp-train --device cuda follows --device cpu step by step (fp32 with TF32 GEMMs, and bf16),
//   prints MFU when the device is in the peak table, and runs with the NCCL backend on one rank;
// - a gpt3/126m-shaped model (12 x 768, 12 heads, the GPT-2 vocabulary size) trained through
//   bignlp-train on the GPU follows the CPU run within bf16 tolerance;
// - checkpoints move between devices: saved on the GPU, resumed on the CPU (and back), continuing
//   as the uninterrupted run does; a GPU-saved checkpoint loads bit-identically on both devices;
// - bignlp-evaluate scores the same on the GPU as on the CPU;
// - `bignlp stages=[training] cluster_type=local training=gpt3/tiny training.trainer.accelerator=gpu`
//   trains on the GPU through the launcher's local executor, as the CPU run does;
// - the NCCL backend takes host tensors (the staged path the trainer's scalar reductions use).
// The programs come from BIGNLP_TEST_BIN_DIR (scripts/gpu_checks.sh points it at a GPU bundle) or
// this build's bin/; the launcher's conf/ from BIGNLP_TEST_SOURCE_DIR or this source tree.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/comm/file_store.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/ops/ops.h"
#include "byte_vocab.h"
#if defined(BIGNLP_WITH_NCCL)
#include "bignlp/comm/nccl_communicator.h"
#endif

namespace bignlp {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
std::string bin_dir() { return env_or("BIGNLP_TEST_BIN_DIR", BIGNLP_BIN_DIR); }
std::string source_dir() { return env_or("BIGNLP_TEST_SOURCE_DIR", BIGNLP_SOURCE_DIR); }

struct Output {
  int status = -1;
  std::string text;
};

Output shell(const std::string& cmd) {
  Output out;
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.text.append(buf, n);
  const int st = pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

/// Documents of a learnable pattern (each token the previous + 7 mod `span`, from `base`), ending
/// in the EOD id.
fs::path write_corpus(const fs::path& prefix, int docs, std::int32_t base, std::int32_t span, std::int32_t eod) {
  fs::create_directories(prefix.parent_path());
  data::IndexedDatasetBuilder b(prefix, data::TokenDType::kUint16);
  std::mt19937 rng(11);
  for (int d = 0; d < docs; ++d) {
    std::vector<std::int32_t> doc;
    std::int32_t tok = static_cast<std::int32_t>(rng() % static_cast<unsigned>(span));
    const int len = 60 + static_cast<int>(rng() % 120);
    for (int i = 0; i < len; ++i) {
      doc.push_back(base + tok);
      tok = (tok + 7) % span;
    }
    doc.push_back(eod);
    b.add_item(doc);
    b.end_document();
  }
  b.finalize();
  return prefix;
}

/// What a training run looks like (the keys of a NeMo training stage config).
struct RunSpec {
  fs::path results;
  fs::path vocab_dir;
  fs::path prefix;
  std::string precision = "32";
  int layers = 2, hidden = 128, heads = 2;  // head size 64: the tensor-core attention kernels in 16 bits
  int seq = 128, mbs = 2, gbs = 4;
  int steps = 6, val_every = 3, log_every = 1;
  double dropout = 0.1;
  double lr = 1e-3;
  bool checkpoints = true;
};

std::string stage_config(const RunSpec& r) {
  return fmt::format(R"(run:
  name: gpu_test
  results_dir: {results}
trainer:
  num_nodes: 1
  devices: 1
  accelerator: gpu
  precision: {precision}
  max_steps: {steps}
  log_every_n_steps: {log_every}
  val_check_interval: {val_every}
  limit_val_batches: 1
  gradient_clip_val: 1.0
exp_manager:
  explicit_log_dir: {results}
  resume_if_exists: True
  resume_ignore_no_checkpoint: True
  create_checkpoint_callback: {ckpt}
  checkpoint_callback_params:
    monitor: val_loss
    save_top_k: 1
    mode: min
model:
  micro_batch_size: {mbs}
  global_batch_size: {gbs}
  encoder_seq_length: {seq}
  max_position_embeddings: {seq}
  num_layers: {layers}
  hidden_size: {hidden}
  ffn_hidden_size: {ffn}
  num_attention_heads: {heads}
  init_method_std: 0.02
  hidden_dropout: {dropout}
  attention_dropout: {dropout}
  make_vocab_size_divisible_by: 128
  tokenizer:
    library: megatron
    type: GPT2BPETokenizer
    vocab_file: {vocab}/vocab.json
    merge_file: {vocab}/merges.txt
  seed: 1234
  optim:
    name: fused_adam
    lr: {lr}
    weight_decay: 0.01
    betas: [0.9, 0.95]
    sched:
      name: CosineAnnealing
      warmup_steps: 2
      min_lr: {min_lr}
  data:
    splits_string: "90,10,0"
    seq_length: {seq}
    data_prefix: [1.0, {prefix}]
)",
                     fmt::arg("results", r.results.string()), fmt::arg("precision", r.precision),
                     fmt::arg("steps", r.steps), fmt::arg("log_every", r.log_every), fmt::arg("val_every", r.val_every),
                     fmt::arg("ckpt", r.checkpoints ? "True" : "False"), fmt::arg("mbs", r.mbs), fmt::arg("gbs", r.gbs),
                     fmt::arg("seq", r.seq), fmt::arg("layers", r.layers), fmt::arg("hidden", r.hidden),
                     fmt::arg("ffn", 4 * r.hidden), fmt::arg("heads", r.heads), fmt::arg("dropout", r.dropout),
                     fmt::arg("vocab", r.vocab_dir.string()), fmt::arg("lr", r.lr), fmt::arg("min_lr", r.lr / 10),
                     fmt::arg("prefix", r.prefix.string()));
}

/// One row of metrics.csv: step -> (reduced_train_loss, val_loss or NaN, grad_norm, mfu or NaN).
using Metrics = std::map<int, std::array<double, 4>>;

Metrics read_metrics(const fs::path& csv) {
  Metrics m;
  std::istringstream in(read_file(csv));
  std::string line;
  std::getline(in, line);
  auto num = [](const std::string& s) { return s.empty() ? std::nan("") : std::stod(s); };
  while (std::getline(in, line)) {
    const auto f = split(line, ',');  // global_step,consumed_samples,loss,lr,timing,tokens/s,tflops,mfu,grad_norm,loss_scale,val_loss
    if (f.size() == 11) m[std::stoi(f[0])] = {std::stod(f[2]), num(f[10]), std::stod(f[8]), num(f[7])};
  }
  return m;
}

/// Writes the stage config of `r` and runs bignlp-train on it with `flags`, config `overrides`
/// and environment assignments `env` ("NAME=value ...").
Output train(const RunSpec& r, const std::string& flags, const std::string& overrides = "", const std::string& env = "") {
  fs::create_directories(r.results);
  const fs::path cfg = r.results.parent_path() / (r.results.filename().string() + "_hydra.yaml");
  write_file_atomic(cfg, stage_config(r));
  return shell(fmt::format("{} {}/bignlp-train --config-path {} --config-name {} {} {}", env, bin_dir(),
                           cfg.parent_path().string(), cfg.filename().string(), flags, overrides));
}

/// |gpu - cpu| <= tol * max(1, |cpu|) for the losses of every step both runs logged (and the val losses).
void expect_losses_close(const Metrics& gpu, const Metrics& cpu, double tol, const std::string& what) {
  ASSERT_FALSE(cpu.empty()) << what;
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (const auto& [step, c] : cpu) {
    ASSERT_TRUE(gpu.count(step)) << what << ": step " << step << " missing on the GPU";
    const auto& g = gpu.at(step);
    std::printf("%s step %d: loss gpu %.6f cpu %.6f%s\n", what.c_str(), step, g[0], c[0],
                std::isnan(c[1]) ? "" : fmt::format(", val gpu {:.6f} cpu {:.6f}", g[1], c[1]).c_str());
    EXPECT_NEAR(g[0], c[0], tol * std::max(1.0, std::abs(c[0]))) << what << ": train loss at step " << step;
    EXPECT_EQ(std::isnan(g[1]), std::isnan(c[1])) << what << ": validation at step " << step;
    if (!std::isnan(c[1])) {
      EXPECT_NEAR(g[1], c[1], tol * std::max(1.0, std::abs(c[1]))) << what << ": val loss at step " << step;
    }
  }
}

class GpuPrograms : public ::testing::Test {
 protected:
  void SetUp() override {
    inventory_ = ops::probe_devices(process_environment());
    if (inventory_.cuda_devices == 0) GTEST_SKIP() << "no CUDA device (" << inventory_.cuda_status << ")";
    test_support::write_byte_vocab(dir_.path() / "bpe", 0);
    prefix_ = write_corpus(dir_.path() / "data" / "corpus_text_document", 400, 97, 26, 256);
  }
  RunSpec spec(const std::string& name) const {
    RunSpec r;
    r.results = dir_.path() / name;
    r.vocab_dir = dir_.path() / "bpe";
    r.prefix = prefix_;
    return r;
  }

  ops::DeviceInventory inventory_;
  TempDir dir_{"gpu-programs"};
  fs::path prefix_;
};

TEST_F(GpuPrograms, TinyTrainingOnTheGpuFollowsTheCpu) {
  // fp32 runs TF32 GEMMs on the GPU (10-bit mantissas): 5e-3; bf16 rounds both sides to 8 bits: 2e-2.
  for (const auto& [precision, tol] : std::vector<std::pair<std::string, double>>{{"32", 5e-3}, {"bf16", 2e-2}}) {
    SCOPED_TRACE("precision " + precision);
    RunSpec c = spec("cpu" + precision), g = spec("gpu" + precision);
    c.precision = g.precision = precision;
    const Output cpu = train(c, "--device cpu");
    ASSERT_EQ(cpu.status, 0) << cpu.text;
    const Output gpu = train(g, "--device cuda");
    ASSERT_EQ(gpu.status, 0) << gpu.text;
    std::printf("%s", gpu.text.c_str());
    expect_losses_close(read_metrics(g.results / "metrics.csv"), read_metrics(c.results / "metrics.csv"), tol,
                        "tiny " + precision);
    EXPECT_NE(gpu.text.find("device cuda:0 ("), std::string::npos) << gpu.text;
    // MFU is printed exactly when the device is in the peak table.
    const bool known = gpu.text.find("MFU against") != std::string::npos;
    EXPECT_EQ(known, gpu.text.find("no MFU") == std::string::npos) << gpu.text;
    EXPECT_EQ(gpu.text.find("| MFU: ") != std::string::npos, known) << gpu.text;
    EXPECT_EQ(cpu.text.find("MFU"), std::string::npos) << cpu.text;
    if (known) {
      EXPECT_FALSE(std::isnan(read_metrics(g.results / "metrics.csv").begin()->second[3])) << "mfu column";
    }
    // The checkpoint written on the GPU is a normal checkpoint (fp32 master weights on the host).
    const auto ckpt = checkpoint::find_latest_checkpoint(g.results / "checkpoints");
    ASSERT_TRUE(ckpt);
    EXPECT_EQ(checkpoint::read_checkpoint_metadata(*ckpt).global_step, 6);
  }
}

TEST_F(GpuPrograms, NcclBackendOnOneRankTrainsAsTheSingleRankWorld) {
  // --comm-backend nccl on one rank: a real NCCL communicator (TCP store, compute stream); the
  // trainer exchanges nothing, the program's closing barrier goes through NCCL.
  RunSpec a = spec("plain"), b = spec("nccl");
  a.steps = b.steps = 3;
  const Output plain = train(a, "--device cuda");
  ASSERT_EQ(plain.status, 0) << plain.text;
  std::mt19937 rng(std::random_device{}());
  const int port = 20000 + static_cast<int>(rng() % 20000);
  const Output nccl = train(b, "--device cuda --comm-backend nccl", "", fmt::format("MASTER_PORT={}", port));
  ASSERT_EQ(nccl.status, 0) << nccl.text;
  expect_losses_close(read_metrics(b.results / "metrics.csv"), read_metrics(a.results / "metrics.csv"), 1e-4,
                      "nccl vs single-rank");
}

TEST_F(GpuPrograms, Gpt126mShapedTrainingOnTheGpuFollowsTheCpu) {
  // gpt3/126m's model (12 layers, hidden 768, 12 heads, vocabulary 50257 padded to 50304) in bf16,
  // at sequence 512 so that the CPU run takes about a minute; 4 steps of 2 micro-batches.
  test_support::write_byte_vocab(dir_.path() / "bpe50k", 50000);
  const fs::path prefix = write_corpus(dir_.path() / "data50k" / "corpus_text_document", 200, 1000, 40000, 50256);
  RunSpec c = spec("cpu126m"), g = spec("gpu126m");
  for (RunSpec* r : {&c, &g}) {
    r->vocab_dir = dir_.path() / "bpe50k";
    r->prefix = prefix;
    r->precision = "bf16";
    r->layers = 12;
    r->hidden = 768;
    r->heads = 12;
    r->seq = 512;
    r->mbs = 1;
    r->gbs = 2;
    r->steps = 4;
    r->val_every = 0;
    r->checkpoints = false;
    r->lr = 6e-4;
  }
  const Output cpu = train(c, "--device cpu");
  ASSERT_EQ(cpu.status, 0) << cpu.text;
  const Output gpu = train(g, "--device cuda");
  ASSERT_EQ(gpu.status, 0) << gpu.text;
  std::printf("%s", gpu.text.c_str());
  const Metrics mg = read_metrics(g.results / "metrics.csv"), mc = read_metrics(c.results / "metrics.csv");
  ASSERT_EQ(mc.size(), 4u);
  // bf16 through 12 layers: 2e-2 of a loss near 10 (the parity suite's 126m tolerance).
  expect_losses_close(mg, mc, 2e-2 * std::max(1.0, mc.begin()->second[0] / 10.0), "126m bf16");
  EXPECT_LT(mg.rbegin()->second[0], mg.begin()->second[0]) << "the GPU run does not learn";
}

TEST_F(GpuPrograms, CheckpointsMoveBetweenTheGpuAndTheCpu) {
  // Four steps on each device (trainer.max_steps=4), each results folder copied once; then every
  // copy resumes to step 8 (trainer.max_steps=8) on the GPU or the CPU. Steps 5-8 on a device
  // follow that device's own continuation whichever device wrote the checkpoint.
  auto make = [&](const std::string& name) {
    RunSpec r = spec(name);
    r.steps = 8;
    r.val_every = 2;
    return r;
  };
  const RunSpec gpu_first = make("gpu_first"), cpu_first = make("cpu_first");
  ASSERT_EQ(train(gpu_first, "--device cuda", "trainer.max_steps=4").status, 0);
  ASSERT_EQ(train(cpu_first, "--device cpu", "trainer.max_steps=4").status, 0);
  const RunSpec g2c = make("g2c"), c2g = make("c2g");
  fs::copy(gpu_first.results, g2c.results, fs::copy_options::recursive);
  fs::copy(cpu_first.results, c2g.results, fs::copy_options::recursive);

  // A GPU-saved checkpoint loads bit-identically on both devices (device <-> host copies are exact).
  const auto saved = checkpoint::find_latest_checkpoint(gpu_first.results / "checkpoints");
  ASSERT_TRUE(saved);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*saved).global_step, 4);
  {
    const ops::DeviceRuntime cpu_rt(Device::cpu(), {});
    const ops::DeviceRuntime gpu_rt(Device::cuda(0), process_environment());
    auto on_cpu = checkpoint::load_model_from_checkpoint(*saved, cpu_rt.context());
    auto on_gpu = checkpoint::load_model_from_checkpoint(*saved, gpu_rt.context());
    auto& pc = on_cpu->parameters().params();
    auto& pg = on_gpu->parameters().params();
    ASSERT_EQ(pc.size(), pg.size());
    for (std::size_t i = 0; i < pc.size(); ++i) {
      std::vector<float> host(static_cast<std::size_t>(pg[i].numel()));
      ops::copy(gpu_rt.context(), pg[i].master, TensorView(host.data(), DType::kF32, pg[i].shape));
      EXPECT_EQ(std::memcmp(host.data(), pc[i].master.raw(), host.size() * sizeof(float)), 0) << pc[i].name;
    }
  }

  const Output gpu_then_gpu = train(gpu_first, "--device cuda");
  const Output gpu_then_cpu = train(g2c, "--device cpu");
  const Output cpu_then_cpu = train(cpu_first, "--device cpu");
  const Output cpu_then_gpu = train(c2g, "--device cuda");
  for (const Output* o : {&gpu_then_gpu, &gpu_then_cpu, &cpu_then_cpu, &cpu_then_gpu}) {
    ASSERT_EQ(o->status, 0) << o->text;
    EXPECT_NE(o->text.find("resumed from"), std::string::npos) << o->text;
    EXPECT_EQ(o->text.find("global_step: 4 |"), std::string::npos) << "steps 1-4 ran again\n" << o->text;
  }
  auto tail = [](const fs::path& results) {
    Metrics out;
    for (const auto& [s, v] : read_metrics(results / "metrics.csv"))
      if (s > 4) out[s] = v;
    return out;
  };
  ASSERT_EQ(tail(g2c.results).size(), 4u);
  expect_losses_close(tail(g2c.results), tail(cpu_first.results), 5e-3, "GPU checkpoint, CPU steps 5-8");
  expect_losses_close(tail(c2g.results), tail(gpu_first.results), 5e-3, "CPU checkpoint, GPU steps 5-8");
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*checkpoint::find_latest_checkpoint(g2c.results / "checkpoints")).global_step, 8);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*checkpoint::find_latest_checkpoint(c2g.results / "checkpoints")).consumed_samples,
            8 * 4);
}

TEST_F(GpuPrograms, EvaluateScoresOnTheGpuAsOnTheCpu) {
  RunSpec r = spec("for_eval");
  r.steps = 4;
  r.val_every = 4;
  ASSERT_EQ(train(r, "--device cpu").status, 0);
  const auto ckpt = checkpoint::find_latest_checkpoint(r.results / "checkpoints");
  ASSERT_TRUE(ckpt);
  // 40 requests of varied lengths, some longer than the model's 128 positions (context trimmed).
  std::mt19937 rng(17);
  std::string requests;
  for (int i = 0; i < 40; ++i) {
    std::vector<int> ctx(1 + rng() % 150), cont(1 + rng() % 12);
    int tok = static_cast<int>(rng() % 26);
    for (auto* v : {&ctx, &cont})
      for (auto& t : *v) {
        t = 97 + tok;
        tok = (tok + (rng() % 4 == 0 ? 3 : 7)) % 26;
      }
    requests += nlohmann::json{{"context", ctx}, {"continuation", cont}}.dump() + "\n";
  }
  write_file_atomic(dir_.path() / "requests.jsonl", requests);
  auto evaluate = [&](const std::string& device, const std::string& precision) {
    const fs::path out = dir_.path() / fmt::format("scores_{}_{}.jsonl", device, precision);
    const Output o = shell(fmt::format("{}/bignlp-evaluate --checkpoint {} --loglikelihood {} --output {} --batch-size 8 "
                                       "--precision {} --device {}",
                                       bin_dir(), ckpt->string(), (dir_.path() / "requests.jsonl").string(),
                                       out.string(), precision, device));
    EXPECT_EQ(o.status, 0) << o.text;
    std::vector<std::pair<double, bool>> results;
    std::istringstream in(read_file(out));
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      results.emplace_back(j.at("logprob").get<double>(), j.at("is_greedy").get<bool>());
    }
    return std::make_pair(o, results);
  };
  for (const std::string precision : {"32", "bf16"}) {
    SCOPED_TRACE("precision " + precision);
    const auto [cpu_out, cpu] = evaluate("cpu", precision);
    const auto [gpu_out, gpu] = evaluate("cuda", precision);
    EXPECT_NE(gpu_out.text.find("scoring on cuda:0"), std::string::npos) << gpu_out.text;
    ASSERT_EQ(cpu.size(), 40u);
    ASSERT_EQ(gpu.size(), cpu.size());
    // Precision 32 is exact fp32 on the GPU (no TF32): only the summation order differs.
    const double tol = precision == "32" ? 1e-4 : 3e-2;
    int greedy_differs = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_NEAR(gpu[i].first, cpu[i].first, tol * std::max(1.0, std::abs(cpu[i].first))) << "request " << i;
      greedy_differs += gpu[i].second != cpu[i].second;
    }
    if (precision == "32") {
      EXPECT_EQ(greedy_differs, 0);
    } else {
      EXPECT_LE(greedy_differs, 2) << "bf16 may flip a near-tie";
    }
  }
}

TEST_F(GpuPrograms, LauncherLocalExecutorTrainsTheTinyPresetOnTheGpu) {
  // The documented one-GPU command, with the data where training=gpt3/tiny expects it.
  const fs::path data = dir_.path() / "launcher_data";
  test_support::write_byte_vocab(data / "bpe", 0);
  write_corpus(data / "demo" / "my-gpt3_demo_text_document", 400, 97, 26, 256);
  auto launch = [&](const std::string& name, const std::string& accelerator) {
    return shell(fmt::format(
        "cd {src} && {bin}/bignlp stages=[training] cluster_type=local training=gpt3/tiny "
        "training.trainer.accelerator={acc} bignlp_path={src} data_dir={data} base_results_dir={results} bin_dir={bin} "
        "training.run.name={name} training.trainer.max_steps=10 training.trainer.val_check_interval=5 "
        "training.trainer.log_every_n_steps=1",
        fmt::arg("src", source_dir()), fmt::arg("bin", bin_dir()), fmt::arg("data", data.string()),
        fmt::arg("results", (dir_.path() / "launcher").string()), fmt::arg("name", name), fmt::arg("acc", accelerator)));
  };
  const Output gpu = launch("tiny_gpu", "gpu");
  ASSERT_EQ(gpu.status, 0) << gpu.text;
  const Output cpu = launch("tiny_cpu", "cpu");
  ASSERT_EQ(cpu.status, 0) << cpu.text;
  const fs::path rg = dir_.path() / "launcher" / "tiny_gpu", rc = dir_.path() / "launcher" / "tiny_cpu";
  std::string logs;
  for (const auto& e : fs::directory_iterator(rg))
    if (starts_with(e.path().filename().string(), "log-")) logs += read_file(e.path());
  std::printf("%s\n", logs.c_str());
  EXPECT_NE(logs.find("device cuda:0 ("), std::string::npos) << logs;
  EXPECT_NE(logs.find("global_step: 10 |"), std::string::npos) << logs;
  EXPECT_NE(read_file(rg / "tiny_gpu_hydra.yaml").find("accelerator: gpu"), std::string::npos);
  // gpt3/tiny is fp32 (TF32 GEMMs on the GPU) with head size 16 (the generic attention kernels).
  expect_losses_close(read_metrics(rg / "results" / "metrics.csv"), read_metrics(rc / "results" / "metrics.csv"), 5e-3,
                      "launcher gpt3/tiny");
  EXPECT_TRUE(checkpoint::find_latest_checkpoint(rg / "results" / "checkpoints"));
}

#if defined(BIGNLP_WITH_NCCL)
TEST_F(GpuPrograms, NcclTakesHostTensorsThroughStaging) {
  const ops::DeviceRuntime rt(Device::cuda(0), process_environment());
  comm::FileStore store(dir_.path() / "store");
  comm::NcclOptions o;
  o.device = 0;
  o.stream = rt.cuda_stream();
  auto nccl = comm::make_nccl_communicator(store, 0, 1, o);
  // The trainer's scalars: a float loss, an int flag; then a larger host tensor (new staging).
  float loss = 2.5f;
  nccl->all_reduce(TensorView(&loss, DType::kF32, Shape{1}), comm::ReduceOp::kSum);
  EXPECT_EQ(loss, 2.5f);
  std::int32_t flag = 1;
  nccl->all_reduce(TensorView(&flag, DType::kI32, Shape{1}), comm::ReduceOp::kMax);
  EXPECT_EQ(flag, 1);
  std::vector<float> v(5000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  nccl->all_reduce(TensorView(v.data(), DType::kF32, Shape{5000}), comm::ReduceOp::kAvg);
  nccl->broadcast(TensorView(v.data(), DType::kF32, Shape{5000}), 0);
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], static_cast<float>(i) * 0.5f) << i;
  // Device tensors still go straight through, ordered on the compute stream.
  Buffer d(rt.allocator(), DType::kF32, Shape{3});
  ops::fill(rt.context(), d, 4.0);
  nccl->all_reduce(d, comm::ReduceOp::kSum);
  float back[3] = {};
  ops::copy(rt.context(), d, TensorView(back, DType::kF32, Shape{3}));
  EXPECT_EQ(back[2], 4.0f);
  // Host tensors other collectives do not take are refused by name.
  EXPECT_THROW(nccl->all_gather(TensorView(&loss, DType::kF32, Shape{1}), TensorView(&loss, DType::kF32, Shape{1})),
               RuntimeError);
}
#endif

}  // namespace
}  // namespace bignlp
