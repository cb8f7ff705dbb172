// bignlp-train as the launcher runs it: a saved stage config (NeMo keys), overrides, resume,
// SIGTERM, config errors with file:line, the device choice (trainer.accelerator / --device) and
// its errors, and the CPU losses of a fixed run against tests/golden/train (recorded before the
// device choice existed; scripts/update_golden.sh train rewrites them).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/model/gpt.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/ops/peak_throughput.h"
#include "byte_vocab.h"

namespace bignlp {
namespace {

namespace fs = std::filesystem;

using test_support::write_byte_vocab;

fs::path write_corpus(const fs::path& dir) {
  const fs::path prefix = dir / "corpus_text_document";
  data::IndexedDatasetBuilder b(prefix, data::TokenDType::kUint16);
  std::mt19937 rng(3);
  for (int d = 0; d < 80; ++d) {
    std::vector<std::int32_t> doc;
    std::int32_t tok = 97 + static_cast<std::int32_t>(rng() % 26);
    for (int i = 0; i < 30 + static_cast<int>(rng() % 30); ++i) {
      doc.push_back(tok);
      tok = 97 + (tok - 97 + 7) % 26;
    }
    doc.push_back(256);
    b.add_item(doc);
    b.end_document();
  }
  b.finalize();
  return prefix;
}

std::string stage_config(const fs::path& dir, const fs::path& prefix, int max_steps) {
  return fmt::format(R"(run:
  name: gpt3_test
  results_dir: {dir}
  time_limit: "0:10:00"
  dependency: singleton
trainer:
  num_nodes: 1
  devices: 1
  accelerator: cpu
  precision: 32
  logger: False
  enable_checkpointing: False
  replace_sampler_ddp: False
  max_epochs: null
  max_steps: {steps}
  max_time: "00:00:10:00"
  log_every_n_steps: 2
  val_check_interval: 4
  limit_val_batches: 1
  limit_test_batches: 1
  accumulate_grad_batches: 1
  gradient_clip_val: 1.0
exp_manager:
  explicit_log_dir: {dir}/results
  exp_dir: null
  name: megatron_gpt
  create_wandb_logger: False
  resume_if_exists: True
  resume_ignore_no_checkpoint: True
  create_checkpoint_callback: True
  checkpoint_callback_params:
    monitor: val_loss
    save_top_k: 2
    mode: min
    always_save_nemo: False
    filename: "megatron_gpt--{{val_loss:.2f}}-{{step}}-{{consumed_samples}}"
    model_parallel_size: 1
  log_step_timing: True
model:
  micro_batch_size: 2
  global_batch_size: 4
  tensor_model_parallel_size: 1
  pipeline_model_parallel_size: 1
  encoder_seq_length: 16
  max_position_embeddings: 16
  num_layers: 2
  hidden_size: 32
  ffn_hidden_size: 128
  num_attention_heads: 4
  init_method_std: 0.02
  hidden_dropout: 0.1
  kv_channels: null
  apply_query_key_layer_scaling: True
  layernorm_epsilon: 1e-5
  make_vocab_size_divisible_by: 128
  bias_activation_fusion: True
  activations_checkpoint_granularity: full
  activations_checkpoint_method: uniform
  activations_checkpoint_num_layers: 1
  tokenizer:
    library: megatron
    type: GPT2BPETokenizer
    model: null
    vocab_file: {dir}/vocab.json
    merge_file: {dir}/merges.txt
  native_amp_init_scale: 4294967296
  native_amp_growth_interval: 1000
  hysteresis: 2
  fp32_residual_connection: False
  megatron_amp_O2: False
  seed: 1234
  optim:
    name: fused_adam
    lr: 5e-3
    weight_decay: 0.01
    betas: [0.9, 0.95]
    sched:
      name: CosineAnnealing
      warmup_steps: 2
      constant_steps: 0
      min_lr: 5e-4
  data:
    data_impl: mmap
    splits_string: "90,10,0"
    seq_length: 16
    skip_warmup: True
    num_workers: 0
    dataloader_type: single
    reset_position_ids: False
    reset_attention_mask: False
    eod_mask_loss: False
    index_mapping_dir: null
    data_prefix:
      - 1.0
      - {prefix}
)",
                     fmt::arg("dir", dir.string()), fmt::arg("steps", max_steps), fmt::arg("prefix", prefix.string()));
}

struct Output {
  int status = -1;
  std::string text;
};

/// The programs under test: BIGNLP_TEST_BIN_DIR when set (e.g. another build, to record the golden
/// losses with it), else this build's bin/.
std::string bin_dir() {
  const char* d = std::getenv("BIGNLP_TEST_BIN_DIR");
  return d != nullptr && *d != '\0' ? d : BIGNLP_BIN_DIR;
}

/// `env`: variable assignments put before the program ("WANDB_MODE=disabled").
Output run(const std::string& args, const std::string& env = "") {
  const std::string cmd = fmt::format("{} {}/bignlp-train {} 2>&1", env, bin_dir(), args);
  Output out;
  std::FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.text.append(buf, n);
  const int st = pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

class TrainMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_byte_vocab(dir_.path());
    prefix_ = write_corpus(dir_.path());
    write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", stage_config(dir_.path(), prefix_, 8));
  }
  std::string cfg_args() const { return fmt::format("--config-path {} --config-name gpt3_test_hydra.yaml", dir_.path().string()); }
  TempDir dir_{"train-main"};
  fs::path prefix_;
};

TEST_F(TrainMainTest, TrainsLogsCheckpointsAndResumesWithOverrides) {
  const Output first = run(cfg_args());
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_NE(first.text.find("global_step: 8 | consumed_samples: 32 | reduced_train_loss: "), std::string::npos)
      << first.text;
  EXPECT_NE(first.text.find("| val_loss: "), std::string::npos);
  const fs::path results = dir_.path() / "results";
  EXPECT_NE(read_file(results / "hparams.yaml").find("cfg:\n  micro_batch_size: 2"), std::string::npos);
  auto latest = checkpoint::find_latest_checkpoint(results / "checkpoints");
  ASSERT_TRUE(latest);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*latest).global_step, 8);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*latest).model.at("vocab_size"), 257);
  {
    // The metadata carries the complete model: section of the stage config, resolved.
    const checkpoint::CheckpointState meta = checkpoint::read_checkpoint_metadata(*latest);
    EXPECT_EQ(meta.family, "gpt");
    EXPECT_EQ(meta.model_config.at("micro_batch_size"), 2);
    EXPECT_EQ(meta.model_config.at("optim").at("sched").at("name"), "CosineAnnealing");
    EXPECT_EQ(meta.model_config.at("tokenizer").at("vocab_file"), (dir_.path() / "vocab.json").string());
    EXPECT_TRUE(meta.model_config.at("kv_channels").is_null());
    EXPECT_EQ(meta.model_config.at("data").at("data_prefix").size(), 2u);
  }
  // A larger max_steps on the command line continues from step 8.
  const Output second = run(cfg_args() + " trainer.max_steps=12");
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_NE(second.text.find("resumed from"), std::string::npos) << second.text;
  EXPECT_EQ(second.text.find("global_step: 2 |"), std::string::npos);
  EXPECT_NE(second.text.find("global_step: 12 | consumed_samples: 48"), std::string::npos);
}

TEST_F(TrainMainTest, SigtermSavesACheckpointAndExitsCleanly) {
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", stage_config(dir_.path(), prefix_, 100000));
  const std::string bin = fmt::format("{}/bignlp-train", bin_dir());
  const std::string cp = dir_.path().string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execl(bin.c_str(), bin.c_str(), "--config-path", cp.c_str(), "--config-name", "gpt3_test_hydra.yaml", nullptr);
    _exit(127);
  }
  // Wait for the first checkpoint (step 4), then signal.
  const fs::path ckdir = dir_.path() / "results" / "checkpoints";
  for (int i = 0; i < 600 && !checkpoint::find_latest_checkpoint(ckdir); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(checkpoint::find_latest_checkpoint(ckdir)) << "no checkpoint appeared";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const auto meta = checkpoint::read_checkpoint_metadata(*checkpoint::find_latest_checkpoint(ckdir));
  EXPECT_GE(meta.global_step, 4);
  EXPECT_LT(meta.global_step, 100000);
  EXPECT_EQ(meta.consumed_samples, meta.global_step * 4);
}

// Real kills at random moments of a run that saves a checkpoint every step (and deletes those past
// save_top_k): whenever the process dies, every checkpoint the program would pick up loads
// completely, and the next run resumes from the newest one.
TEST_F(TrainMainTest, SigkillAtAnyMomentNeverLeavesABrokenCheckpoint) {
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", stage_config(dir_.path(), prefix_, 100000));
  const std::string bin = fmt::format("{}/bignlp-train", bin_dir());
  const std::string cp = dir_.path().string();
  const fs::path ckdir = dir_.path() / "results" / "checkpoints";
  ops::DeviceRuntimeOptions cpu_options;
  cpu_options.cpu_threads = 1;
  const ops::DeviceRuntime runtime(Device::cpu(), {}, cpu_options);
  const ops::OpContext& ctx = runtime.context();
  std::mt19937 rng(7);
  std::int64_t last_step = 0;
  int kills_leaving_a_temporary = 0;
  for (int round = 0; round < 8; ++round) {
    const fs::path log = dir_.path() / fmt::format("round{}.log", round);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stdout);
      dup2(fileno(stdout), fileno(stderr));
      execl(bin.c_str(), bin.c_str(), "--config-path", cp.c_str(), "--config-name", "gpt3_test_hydra.yaml", "--threads",
            "1", "trainer.val_check_interval=1", nullptr);
      _exit(127);
    }
    // Once this run has saved past the last round's step, kill it a random moment later.
    // (The run may replace or drop the checkpoint between our listing and reading it.)
    for (int i = 0; i < 1500; ++i) {
      try {
        const auto latest = checkpoint::find_latest_checkpoint(ckdir);
        if (latest && checkpoint::read_checkpoint_metadata(*latest).global_step > last_step) break;
      } catch (const Error&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << " ended by itself:\n" << read_file(log);
    if (round > 0) {
      EXPECT_NE(read_file(log).find(fmt::format("(step {},", last_step)), std::string::npos)
          << "round " << round << " did not resume from step " << last_step << ":\n" << read_file(log);
    }
    for (const auto& e : fs::directory_iterator(ckdir))
      if (e.path().filename().string().rfind(".tmp-", 0) == 0) ++kills_leaving_a_temporary;
    for (const auto& ck : checkpoint::list_checkpoints(ckdir)) {
      try {
        EXPECT_NE(checkpoint::load_model_from_checkpoint(ck, ctx), nullptr);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "round " << round << ": " << ck << " does not load: " << e.what();
      }
    }
    const auto latest = checkpoint::find_latest_checkpoint(ckdir);
    ASSERT_TRUE(latest) << read_file(log);
    const std::int64_t step = checkpoint::read_checkpoint_metadata(*latest).global_step;
    EXPECT_GT(step, last_step);
    last_step = step;
  }
  RecordProperty("kills_that_left_a_hidden_temporary", kills_leaving_a_temporary);
  const Output done = run(cfg_args() + fmt::format(" trainer.max_steps={} --threads 1", last_step + 2));
  ASSERT_EQ(done.status, 0) << done.text;
  EXPECT_NE(done.text.find(fmt::format("(step {},", last_step)), std::string::npos) << done.text;
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*checkpoint::find_latest_checkpoint(ckdir)).global_step, last_step + 2);
}

TEST_F(TrainMainTest, ConfigErrorsNameFileLineAndKey) {
  int n = 0;
  auto record = [&](const Output& out) { RecordProperty("message_" + std::to_string(n++), out.text); };
  Output o = run(cfg_args() + " model.global_batch_size=5");
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("model.global_batch_size: 5 is not divisible by model.micro_batch_size 2"), std::string::npos)
      << o.text;
  EXPECT_NE(o.text.find("override"), std::string::npos) << o.text;
  o = run(cfg_args() + " +model.unexpected_knob=3");
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("unknown key in training"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("model.unexpected_knob"), std::string::npos) << o.text;
  o = run(cfg_args() + " +model.activations_checkpoint_layers_per_pipeline=2");
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("model.activations_checkpoint_layers_per_pipeline: 2 (override"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("is not supported: only null"), std::string::npos) << o.text;
  o = run(cfg_args() + " --stage fine_tuning");
  record(o);
  EXPECT_EQ(o.status, 1);
  // A pre-training config given to the fine-tuning stage: its first missing key is named.
  EXPECT_NE(o.text.find("model.data.validation_ds.src_file_name: required key is missing"), std::string::npos) << o.text;
  o = run(cfg_args() + " model.hidden_size=abc");
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("model.hidden_size"), std::string::npos) << o.text;
  // A value from the file: the message starts with file:line:col.
  std::string text = stage_config(dir_.path(), prefix_, 8);
  text.replace(text.find("fp32_residual_connection: False"), 31, "fp32_residual_connection: True ");
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", text);
  o = run(cfg_args());
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("gpt3_test_hydra.yaml:69:"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("model.fp32_residual_connection: True is not supported"), std::string::npos) << o.text;
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", stage_config(dir_.path(), prefix_, 8));
  o = run(cfg_args() + " model.data.data_prefix=[]");
  record(o);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("model.data.data_prefix"), std::string::npos) << o.text;
}

/// (global_step, reduced_train_loss, val_loss or NaN, grad_norm) of every row of metrics.csv.
std::vector<std::array<double, 4>> metric_rows(const fs::path& csv) {
  std::vector<std::array<double, 4>> rows;
  std::istringstream in(read_file(csv));
  std::string line;
  std::getline(in, line);  // header: global_step,consumed_samples,reduced_train_loss,lr,...,grad_norm,loss_scale,val_loss
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(line, ',');
    if (f.size() != 11) continue;
    rows.push_back({std::stod(f[0]), std::stod(f[2]), f[10].empty() ? std::nan("") : std::stod(f[10]), std::stod(f[8])});
  }
  return rows;
}

bool gpu_usable() {
  const ops::DeviceInventory inv = ops::probe_devices(process_environment());
  return inv.cuda_built && inv.cuda_devices > 0;
}

// The CPU numbers of a fixed run (dropout, full activation checkpointing, clipping, validation,
// 8 steps) equal those recorded with bignlp-train before GPU training existed: CPU behaviour did
// not change. Recorded here at full precision; the comparison allows 1e-5 relative so that another
// machine's OpenBLAS kernels (a different summation order in a GEMM) do not fail it, while any
// change of initialisation, data order, dropout streams or update rule does.
TEST_F(TrainMainTest, CpuLossesMatchTheRecordedRun) {
  const fs::path golden = fs::path(BIGNLP_SOURCE_DIR) / "tests/golden/train/tiny_cpu_metrics.csv";
  const Output out = run(cfg_args() + " --threads 2");  // the file says trainer.accelerator: cpu
  ASSERT_EQ(out.status, 0) << out.text;
  if (ops::probe_cpu_peak_inputs(2)) {  // MFU against the CPU's estimated peak
    EXPECT_NE(out.text.find("MFU against"), std::string::npos) << out.text;
    EXPECT_NE(out.text.find("(CPU estimate: 2 thread(s)"), std::string::npos) << out.text;
    EXPECT_NE(out.text.find("| MFU: "), std::string::npos) << out.text;
  }
  const auto rows = metric_rows(dir_.path() / "results" / "metrics.csv");
  ASSERT_EQ(rows.size(), 4u) << "log_every_n_steps 2 over 8 steps";
  if (const char* update = std::getenv("BIGNLP_UPDATE_GOLDEN"); update != nullptr && std::string(update) == "1") {
    std::string text = "# global_step,reduced_train_loss,val_loss,grad_norm of the run in tests/unit/cli/train_main_test.cpp\n";
    for (const auto& r : rows) text += fmt::format("{},{:.9g},{:.9g},{:.9g}\n", r[0], r[1], r[2], r[3]);
    fs::create_directories(golden.parent_path());
    write_file_atomic(golden, text);
    GTEST_SKIP() << "wrote " << golden;
  }
  std::vector<std::array<double, 4>> expected;
  std::istringstream in(read_file(golden));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = split(line, ',');
    ASSERT_EQ(f.size(), 4u) << line;
    expected.push_back({std::stod(f[0]), std::stod(f[1]), std::stod(f[2]), std::stod(f[3])});
  }
  ASSERT_EQ(rows.size(), expected.size());
  int exact = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][0], expected[i][0]);
    for (int k = 1; k < 4; ++k) {
      if (std::isnan(expected[i][k])) {
        EXPECT_TRUE(std::isnan(rows[i][k])) << "row " << i << " column " << k;
        continue;
      }
      EXPECT_NEAR(rows[i][k], expected[i][k], 1e-5 * std::abs(expected[i][k])) << "step " << rows[i][0] << " column " << k;
      exact += std::stod(fmt::format("{:.9g}", rows[i][k])) == expected[i][k];
    }
  }
  RecordProperty("exact_values", exact);
}

// trainer.accelerator=cpu (the file) and --device cpu are the same run, bit for bit.
TEST_F(TrainMainTest, DeviceFlagAndAcceleratorKeyChooseTheSameCpuRun) {
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", stage_config(dir_.path(), prefix_, 4));
  const Output by_key = run(cfg_args() + " exp_manager.explicit_log_dir=" + (dir_.path() / "a").string());
  ASSERT_EQ(by_key.status, 0) << by_key.text;
  const Output by_flag = run(cfg_args() + " --device cpu trainer.accelerator=gpu exp_manager.explicit_log_dir=" +
                             (dir_.path() / "b").string());
  ASSERT_EQ(by_flag.status, 0) << "--device overrides trainer.accelerator\n" << by_flag.text;
  const auto a = metric_rows(dir_.path() / "a" / "metrics.csv"), b = metric_rows(dir_.path() / "b" / "metrics.csv");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i][1], b[i][1]);
    EXPECT_EQ(a[i][3], b[i][3]);
  }
  if (!gpu_usable()) {
    // auto (the key absent, or written) is the CPU here, bit for bit.
    const Output by_auto = run(cfg_args() + " trainer.accelerator=auto exp_manager.explicit_log_dir=" +
                               (dir_.path() / "c").string());
    ASSERT_EQ(by_auto.status, 0) << by_auto.text;
    const auto c = metric_rows(dir_.path() / "c" / "metrics.csv");
    ASSERT_EQ(c.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i][1], c[i][1]);
  }
}

TEST_F(TrainMainTest, DeviceRequestErrorsNameTheKeyAndTheFix) {
  Output o = run(cfg_args() + " trainer.accelerator=tpu");
  EXPECT_EQ(o.status, 1) << o.text;
  EXPECT_NE(o.text.find("trainer.accelerator (override"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("'tpu' is not a device; expected cpu, gpu (or cuda) or auto"), std::string::npos) << o.text;
  o = run(cfg_args() + " --device tpu");
  EXPECT_NE(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("--device"), std::string::npos) << o.text;
  o = run(cfg_args() + " --device cpu --comm-backend nccl");
  EXPECT_EQ(o.status, 1) << o.text;
  EXPECT_NE(o.text.find("--comm-backend nccl moves GPU memory, but this rank computes on the CPU (--device: 'cpu')"),
            std::string::npos)
      << o.text;
  if (gpu_usable()) GTEST_SKIP() << "a GPU is usable here: the errors below are for machines without one";
  // The file says gpu: the message starts with the file, line and column of the key.
  std::string text = stage_config(dir_.path(), prefix_, 8);
  text.replace(text.find("accelerator: cpu"), 16, "accelerator: gpu");
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", text);
  o = run(cfg_args());
  RecordProperty("message_gpu_from_file", o.text);
  EXPECT_EQ(o.status, 1) << o.text;
  EXPECT_NE(o.text.find("gpt3_test_hydra.yaml:9:16: trainer.accelerator: 'gpu' asks for a GPU, but "), std::string::npos)
      << o.text;
  EXPECT_NE(o.text.find("Fix: "), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("training.trainer.accelerator=cpu"), std::string::npos) << o.text;
  EXPECT_FALSE(fs::exists(dir_.path() / "results" / "checkpoints")) << "nothing written before the error";
  o = run(cfg_args() + " trainer.accelerator=cpu --device cuda");
  EXPECT_EQ(o.status, 1) << o.text;
  EXPECT_NE(o.text.find("--device: 'cuda' asks for a GPU, but "), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("or run on the CPU: --device cpu"), std::string::npos) << o.text;
}

// exp_manager.create_wandb_logger writes W&B's offline run (read back by tests/python/wandb_reader.py,
// written from W&B's format description) with the same scalars as metrics.csv and the resolved
// config; save_nemo_on_train_end / always_save_nemo write checkpoints/<exp_manager.name>.nemo
// (torch.load reads it); WANDB_MODE=disabled turns the run off; what cannot be honoured is refused.
TEST_F(TrainMainTest, WandbOfflineRunAndNemoOnTrainEnd) {
  std::string text = stage_config(dir_.path(), prefix_, 8);
  text.replace(text.find("create_wandb_logger: False"), 26,
               "create_wandb_logger: True\n  wandb_logger_kwargs:\n    project: nemo_gpt3\n    name: gpt3_test\n"
               "    tags: [a, b]\n    offline: True");
  text.replace(text.find("always_save_nemo: False"), 23, "always_save_nemo: True\n    save_nemo_on_train_end: True");
  text.replace(text.find("name: megatron_gpt"), 18, "name: my_gpt");
  write_file_atomic(dir_.path() / "gpt3_test_hydra.yaml", text);
  const Output out = run(cfg_args());
  ASSERT_EQ(out.status, 0) << out.text;
  const fs::path results = dir_.path() / "results";
  std::vector<fs::path> runs;
  for (const auto& e : fs::directory_iterator(results / "wandb")) runs.push_back(e.path());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_NE(out.text.find("wandb sync " + runs[0].string()), std::string::npos) << out.text;
  fs::path file;
  for (const auto& e : fs::directory_iterator(runs[0]))
    if (e.path().extension() == ".wandb") file = e.path();
  ASSERT_FALSE(file.empty());
  const fs::path json = dir_.path() / "wandb.json";
  ASSERT_EQ(std::system(fmt::format("/usr/bin/python3 {}/tests/python/wandb_reader.py {} {}", BIGNLP_SOURCE_DIR,
                                    file.string(), json.string()).c_str()),
            0);
  const nlohmann::json j = nlohmann::json::parse(read_file(json));
  EXPECT_EQ(j["run"]["project"], "nemo_gpt3");
  EXPECT_EQ(j["run"]["display_name"], "gpt3_test");
  EXPECT_EQ(j["run"]["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(j["config"]["model"]["hidden_size"], 32);
  EXPECT_EQ(j["config"]["trainer"]["max_steps"], 8);
  EXPECT_EQ(j["config"]["exp_manager"]["wandb_logger_kwargs"]["project"], "nemo_gpt3");
  const auto rows = metric_rows(results / "metrics.csv");
  ASSERT_EQ(rows.size(), 4u);
  ASSERT_EQ(j["history"].size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& h = j["history"][i];
    EXPECT_EQ(h["_step"].get<double>(), rows[i][0]);
    EXPECT_NEAR(h["reduced_train_loss"].get<double>(), rows[i][1], 1e-5 * std::abs(rows[i][1]));
    EXPECT_NEAR(h["grad_norm"].get<double>(), rows[i][3], 1e-5 * std::abs(rows[i][3]));
    if (!std::isnan(rows[i][2])) {
      EXPECT_NEAR(h["val_loss"].get<double>(), rows[i][2], 1e-5 * rows[i][2]);
    }
    for (const char* key : {"lr", "consumed_samples", "train_step_timing", "tokens_per_second"})
      EXPECT_TRUE(h.contains(key)) << key;
  }
  EXPECT_EQ(j["exit"]["exit_code"], 0);
  // The .nemo of the final model: torch.load reads its weights.
  const fs::path nemo = results / "checkpoints" / "my_gpt.nemo";
  ASSERT_TRUE(fs::exists(nemo)) << out.text;
  EXPECT_EQ(std::system(fmt::format("/usr/bin/python3 -c \"import io, sys, tarfile, torch; t = tarfile.open(sys.argv[1], "
                                    "'r:'); sd = torch.load(io.BytesIO(t.extractfile('./model_weights.ckpt').read())); "
                                    "assert 'model.language_model.encoder.layers.1.mlp.dense_4h_to_h.weight' in sd\" {}",
                                    nemo.string()).c_str()),
            0);
  std::size_t nemo_files = 0;
  for (const auto& e : fs::directory_iterator(results / "checkpoints")) nemo_files += e.path().extension() == ".nemo";
  EXPECT_EQ(nemo_files, 1u);
}

TEST_F(TrainMainTest, KeysThatCannotBeHonouredAreRefusedByName) {
  for (const auto& [override, key] : std::vector<std::pair<std::string, std::string>>{
           {"trainer.max_epochs=3", "trainer.max_epochs"},
           {"exp_manager.checkpoint_callback_params.model_parallel_size=2",
            "exp_manager.checkpoint_callback_params.model_parallel_size"},
           {"+model.optim.sched.max_steps=100", "model.optim.sched.max_steps"},
           {"model.data.dataloader_type=cyclic", "model.data.dataloader_type"},
           {"trainer.logger=True", "trainer.logger"},
           {"exp_manager.create_wandb_logger=True +exp_manager.wandb_logger_kwargs.project=p "
            "+exp_manager.wandb_logger_kwargs.reinit=True",
            "exp_manager.wandb_logger_kwargs.reinit"},
           {"exp_manager.create_wandb_logger=True +exp_manager.wandb_logger_kwargs.log_model=True",
            "exp_manager.wandb_logger_kwargs.log_model"},
           {"exp_manager.create_checkpoint_callback=False "
            "+exp_manager.checkpoint_callback_params.save_nemo_on_train_end=True",
            "exp_manager.checkpoint_callback_params.save_nemo_on_train_end"}}) {
    const Output o = run(cfg_args() + " " + override);
    EXPECT_EQ(o.status, 1) << override << "\n" << o.text;
    EXPECT_NE(o.text.find(key), std::string::npos) << override << "\n" << o.text;
  }
  // Equal derived values pass; W&B turned off by WANDB_MODE=disabled writes no run.
  const Output ok = run(cfg_args() + " +model.optim.sched.max_steps=8 exp_manager.create_wandb_logger=True "
                                     "+exp_manager.wandb_logger_kwargs.project=p",
                        "WANDB_MODE=disabled");
  EXPECT_EQ(ok.status, 0) << ok.text;
  EXPECT_NE(ok.text.find("WANDB_MODE=disabled"), std::string::npos) << ok.text;
  EXPECT_FALSE(fs::exists(dir_.path() / "results" / "wandb"));
  EXPECT_TRUE(fs::exists(dir_.path() / "results" / "metrics.csv"));
}

}  // namespace
}  // namespace bignlp
