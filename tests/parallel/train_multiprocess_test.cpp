// bignlp-train as separate processes, one per rank, started with the variables srun (and the
// local executor) set: they meet through the TCP (or file) store, talk over gloo on loopback, and
// train the same model as one process: the per-step losses and the validation loss in
// metrics.csv agree. Also: the launcher/config mismatch error, and a rank that dies.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "byte_vocab.h"

namespace bignlp {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_support::write_byte_vocab;

fs::path write_corpus(const fs::path& dir) {
  const fs::path prefix = dir / "corpus_text_document";
  data::IndexedDatasetBuilder b(prefix, data::TokenDType::kUint16);
  std::mt19937 rng(5);
  for (int d = 0; d < 80; ++d) {
    std::vector<std::int32_t> doc;
    std::int32_t tok = 97 + static_cast<std::int32_t>(rng() % 26);
    for (int i = 0; i < 30 + static_cast<int>(rng() % 30); ++i) {
      doc.push_back(tok);
      tok = 97 + (tok - 97 + 5) % 26;
    }
    doc.push_back(256);
    b.add_item(doc);
    b.end_document();
  }
  b.finalize();
  return prefix;
}

/// The training stage config; `ranks` = trainer.devices. make_vocab_size_divisible_by 256 pads the
/// 257 tokens to 512 for TP 1 and TP 2 alike, so both train the same model.
std::string stage_config(const fs::path& dir, const fs::path& prefix, const fs::path& results, int ranks, int tp,
                         int pp, const std::string& optimizer) {
  return fmt::format(R"(run:
  name: gpt3_mp
  results_dir: {results}
trainer:
  num_nodes: 1
  devices: {ranks}
  accelerator: cpu
  precision: 32
  max_steps: 6
  max_time: null
  log_every_n_steps: 1
  val_check_interval: 3
  limit_val_batches: 1
  limit_test_batches: 1
  accumulate_grad_batches: 1
  gradient_clip_val: 1.0
exp_manager:
  explicit_log_dir: {results}/results
  resume_if_exists: True
  resume_ignore_no_checkpoint: True
  create_checkpoint_callback: True
  checkpoint_callback_params:
    monitor: val_loss
    save_top_k: 1
    mode: min
    filename: "megatron_gpt--{{val_loss:.2f}}-{{step}}-{{consumed_samples}}"
model:
  micro_batch_size: 2
  global_batch_size: 8
  tensor_model_parallel_size: {tp}
  pipeline_model_parallel_size: {pp}
  virtual_pipeline_model_parallel_size: null
  sequence_parallel: False
  encoder_seq_length: 16
  max_position_embeddings: 16
  num_layers: 2
  hidden_size: 32
  ffn_hidden_size: 128
  num_attention_heads: 4
  init_method_std: 0.02
  hidden_dropout: 0.1
  attention_dropout: 0.1
  make_vocab_size_divisible_by: 256
  tokenizer:
    library: megatron
    type: GPT2BPETokenizer
    model: null
    vocab_file: {dir}/vocab.json
    merge_file: {dir}/merges.txt
  seed: 1234
  optim:
    name: {optimizer}
    lr: 5e-3
    weight_decay: 0.01
    betas: [0.9, 0.95]
    bucket_cap_mb: 0.01
    sched:
      name: CosineAnnealing
      warmup_steps: 2
      constant_steps: 0
      min_lr: 5e-4
  data:
    splits_string: "90,10,0"
    seq_length: 16
    data_prefix:
      - 1.0
      - {prefix}
)",
                     fmt::arg("dir", dir.string()), fmt::arg("results", results.string()), fmt::arg("ranks", ranks),
                     fmt::arg("tp", tp), fmt::arg("pp", pp), fmt::arg("optimizer", optimizer),
                     fmt::arg("prefix", prefix.string()));
}

int free_port() {
  comm::TcpStoreOptions so;
  so.is_server = true;
  comm::TcpStore probe(so);
  return probe.port();
}

struct Job {
  std::vector<int> status;           // exit status per rank
  std::vector<std::string> output;   // stdout + stderr per rank
};

/// Starts `ranks` bignlp-train processes with the local executor's Slurm variables; waits (or
/// kills after `limit`).
Job launch(const fs::path& config_dir, int ranks, const std::string& extra_args, int kill_rank = -1,
           std::chrono::seconds limit = 180s) {
  const std::string bin = fmt::format("{}/bignlp-train", BIGNLP_BIN_DIR);
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    const fs::path log = config_dir / fmt::format("rank{}.log", r);
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stdout);
      dup2(fileno(stdout), fileno(stderr));  // one file offset for both streams
      std::vector<std::string> env;
      for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        if (!starts_with(kv, "SLURM_") && !starts_with(kv, "RANK=") && !starts_with(kv, "WORLD_SIZE=") &&
            !starts_with(kv, "MASTER_") && !starts_with(kv, "BIGNLP_STORE_SECRET="))
          env.push_back(kv);
      }
      for (const auto& kv : std::vector<std::string>{
               fmt::format("SLURM_PROCID={}", r), fmt::format("SLURM_NTASKS={}", ranks), fmt::format("SLURM_LOCALID={}", r),
               "SLURM_NNODES=1", "SLURM_JOB_ID=77", "SLURM_JOB_NODELIST=localhost", fmt::format("MASTER_PORT={}", port),
               fmt::format("BIGNLP_STORE_SECRET=test-{}", port),
               "OMP_NUM_THREADS=1"})
        env.push_back(kv);
      std::vector<char*> envp;
      for (auto& kv : env) envp.push_back(kv.data());
      envp.push_back(nullptr);
      std::vector<std::string> args{bin, "--config-path", config_dir.string(), "--config-name", "gpt3_mp_hydra.yaml",
                                    "--threads", "1"};
      std::istringstream extra(extra_args);
      for (std::string a; extra >> a;) args.push_back(a);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execve(bin.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  if (kill_rank >= 0) {
    // Once training runs (rank 0 printed its first step; a loaded machine may take a while to get
    // there), kill the rank: the others must notice and fail, not hang.
    const fs::path log0 = config_dir / "rank0.log";
    for (int i = 0; i < 1200; ++i) {
      std::error_code ec;
      if (fs::exists(log0, ec) && read_file(log0).find("global_step: 1 |") != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
    kill(pids[static_cast<std::size_t>(kill_rank)], SIGKILL);
  }
  Job job;
  job.status.assign(static_cast<std::size_t>(ranks), -1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int left = ranks;
  while (left > 0) {
    for (int r = 0; r < ranks; ++r) {
      if (job.status[static_cast<std::size_t>(r)] != -1 || pids[static_cast<std::size_t>(r)] == 0) continue;
      int st = 0;
      if (waitpid(pids[static_cast<std::size_t>(r)], &st, WNOHANG) == pids[static_cast<std::size_t>(r)]) {
        job.status[static_cast<std::size_t>(r)] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        --left;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (pid_t p : pids) kill(p, SIGKILL);
      for (pid_t p : pids) waitpid(p, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  for (int r = 0; r < ranks; ++r) job.output.push_back(read_file(config_dir / fmt::format("rank{}.log", r)));
  return job;
}

/// metrics.csv of a results dir: step -> (reduced_train_loss, val_loss or NaN).
std::map<int, std::pair<double, double>> metrics(const fs::path& results) {
  std::map<int, std::pair<double, double>> out;
  const auto lines = split(read_file(results / "results" / "metrics.csv"), '\n');
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = split(lines[i], ',');
    out[std::stoi(f[0])] = {std::stod(f[2]), f.back().empty() ? std::nan("") : std::stod(f.back())};
  }
  return out;
}

class TrainMultiprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_byte_vocab(dir_.path());
    prefix_ = write_corpus(dir_.path());
  }
  fs::path configure(const std::string& name, int ranks, int tp, int pp, const std::string& optimizer = "fused_adam") {
    const fs::path d = dir_.path() / name;
    fs::create_directories(d);
    write_file_atomic(d / "gpt3_mp_hydra.yaml", stage_config(dir_.path(), prefix_, d, ranks, tp, pp, optimizer));
    return d;
  }
  void expect_same_metrics(const fs::path& ref, const fs::path& got) {
    const auto a = metrics(ref), b = metrics(got);
    ASSERT_EQ(a.size(), 6u);
    ASSERT_EQ(b.size(), a.size());
    for (const auto& [step, v] : a) {
      EXPECT_NEAR(b.at(step).first, v.first, 2e-5 * v.first) << "step " << step;
      if (!std::isnan(v.second)) {
        EXPECT_NEAR(b.at(step).second, v.second, 2e-5 * v.second) << "val at step " << step;
      }
    }
  }
  TempDir dir_{"train-mp"};
  fs::path prefix_;
};

TEST_F(TrainMultiprocessTest, FourProcessesTp2Pp2MatchOneProcess) {
  const fs::path one = configure("one", 1, 1, 1);
  const Job single = launch(one, 1, "");
  ASSERT_EQ(single.status[0], 0) << single.output[0];
  const fs::path four = configure("four", 4, 2, 2);
  const Job job = launch(four, 4, "");
  for (int r = 0; r < 4; ++r) ASSERT_EQ(job.status[static_cast<std::size_t>(r)], 0) << "rank " << r << ":\n" << job.output[r];
  expect_same_metrics(one, four);
  // Only rank 0 prints the metric lines; it names its grid position.
  EXPECT_NE(job.output[0].find("global_step: 6 | consumed_samples: 48"), std::string::npos) << job.output[0];
  EXPECT_NE(job.output[0].find("rank 0 of 4 (tp 0/2 pp 0/2 dp 0/1) over gloo"), std::string::npos) << job.output[0];
  EXPECT_EQ(job.output[3].find("global_step:"), std::string::npos) << job.output[3];
  // One checkpoint shard per (tp, pp) rank.
  const auto ckpt = checkpoint::find_latest_checkpoint(four / "results" / "checkpoints");
  ASSERT_TRUE(ckpt);
  for (const char* shard : {"tp_rank_00_pp_rank_000", "tp_rank_01_pp_rank_000", "tp_rank_00_pp_rank_001",
                            "tp_rank_01_pp_rank_001"})
    EXPECT_TRUE(fs::exists(*ckpt / shard / "model.safetensors")) << shard;

  // bignlp-convert --reshard brings the checkpoint to one rank, which continues like the
  // one-process run does from its own checkpoint.
  const fs::path resumed = configure("resumed", 1, 1, 1);
  const std::string cmd = fmt::format(
      "{}/bignlp-convert --reshard --input {} --output {} --tensor-model-parallel-size 1 "
      "--pipeline-model-parallel-size 1 2>&1",
      BIGNLP_BIN_DIR, ckpt->string(), (resumed / "results" / "checkpoints" / ckpt->filename()).string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ASSERT_EQ(launch(one, 1, "trainer.max_steps=8").status[0], 0);
  const Job cont = launch(resumed, 1, "trainer.max_steps=8");
  ASSERT_EQ(cont.status[0], 0) << cont.output[0];
  EXPECT_NE(cont.output[0].find("resumed from"), std::string::npos) << cont.output[0];
  const auto a = metrics(one), b = metrics(resumed);
  for (int step : {7, 8}) {
    ASSERT_TRUE(a.count(step) && b.count(step)) << step;
    EXPECT_NEAR(b.at(step).first, a.at(step).first, 5e-5 * a.at(step).first) << "step " << step;
  }
}

TEST_F(TrainMultiprocessTest, TwoProcessesDataParallelDistributedOptimizerOverAFileStore) {
  const fs::path one = configure("one", 1, 1, 1, "distributed_fused_adam");
  ASSERT_EQ(launch(one, 1, "").status[0], 0);
  const fs::path two = configure("two", 2, 1, 1, "distributed_fused_adam");
  const Job job = launch(two, 2, "--rendezvous file");
  for (int r = 0; r < 2; ++r) ASSERT_EQ(job.status[static_cast<std::size_t>(r)], 0) << job.output[r];
  expect_same_metrics(one, two);
}

TEST_F(TrainMultiprocessTest, TaskCountMustMatchTheConfig) {
  const fs::path d = configure("mismatch", 4, 2, 2);
  const Job job = launch(d, 2, "");
  EXPECT_EQ(job.status[0], 1);
  EXPECT_NE(job.output[0].find("trainer.num_nodes x trainer.devices = 1 x 4 = 4 ranks, but the launcher started 2 "
                               "(SLURM_NTASKS)"),
            std::string::npos)
      << job.output[0];
}

TEST_F(TrainMultiprocessTest, ADeadRankFailsTheOthersWithAnErrorNamingIt) {
  // Data parallel with the distributed optimizer: the survivor waits in a reduce-scatter, the
  // norm's all-reduce or the parameter all-gather when its peer dies.
  const fs::path d = configure("dead", 2, 1, 1, "distributed_fused_adam");
  write_file_atomic(d / "gpt3_mp_hydra.yaml",
                    replace_all(read_file(d / "gpt3_mp_hydra.yaml"), "max_steps: 6", "max_steps: 100000"));
  const Job job = launch(d, 2, "", /*kill_rank=*/1, 120s);
  EXPECT_EQ(job.status[1], 128 + SIGKILL);
  EXPECT_NE(job.status[0], 0);
  EXPECT_NE(job.status[0], -1) << "rank 0 hung instead of failing";
  const auto error = job.output[0].rfind("bignlp-train:");
  ASSERT_NE(error, std::string::npos) << "rank 0 exited with status " << job.status[0] << " and no error:\n"
                                      << job.output[0];
  EXPECT_NE(job.output[0].find("rank 1", error), std::string::npos) << job.output[0];
  RecordProperty("rank0_error", job.output[0].substr(error));
}

/// Runs a command line, returning its exit status and output.
std::pair<int, std::string> shell(const std::string& cmd) {
  std::string out;
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// The whole path a user takes: `bignlp stages=[training] cluster_type=local training=gpt3/tiny`
// with a TP 2 x PP 2 layout starts 4 bignlp-train processes through the launcher's local executor,
// which train the model the one-rank run trains.
TEST_F(TrainMultiprocessTest, LauncherLocalExecutorRunsTheTinyPresetOnFourRanks) {
  const fs::path data = dir_.path() / "data";
  fs::create_directories(data / "bpe");
  fs::create_directories(data / "demo");
  write_byte_vocab(data / "bpe");
  for (const char* ext : {".bin", ".idx"})
    fs::copy_file(prefix_.string() + ext, (data / "demo" / "my-gpt3_demo_text_document").string() + ext);
  auto run_launcher = [&](const std::string& name, const std::string& layout) {
    const std::string cmd = fmt::format(
        "cd {src} && {bin}/bignlp stages=[training] cluster_type=local training=gpt3/tiny data_dir={data} "
        "base_results_dir={results} bin_dir={bin} training.run.name={name} training.trainer.max_steps=4 "
        "training.trainer.val_check_interval=2 training.trainer.limit_val_batches=1 "
        "training.trainer.log_every_n_steps=1 training.model.encoder_seq_length=32 "
        "training.model.max_position_embeddings=32 training.model.data.seq_length=32 "
        "training.model.make_vocab_size_divisible_by=256 training.model.optim.name=distributed_fused_adam "
        "training.model.optim.sched.warmup_steps=1 {layout}",
        fmt::arg("src", BIGNLP_SOURCE_DIR), fmt::arg("bin", BIGNLP_BIN_DIR), fmt::arg("data", data.string()),
        fmt::arg("results", (dir_.path() / "launcher").string()), fmt::arg("name", name), fmt::arg("layout", layout));
    return shell(cmd);
  };
  const auto one = run_launcher("tiny_one", "");
  ASSERT_EQ(one.first, 0) << one.second;
  const auto four = run_launcher("tiny_four",
                                 "training.trainer.devices=4 training.model.tensor_model_parallel_size=2 "
                                 "training.model.pipeline_model_parallel_size=2");
  ASSERT_EQ(four.first, 0) << four.second;
  const fs::path r1 = dir_.path() / "launcher" / "tiny_one", r4 = dir_.path() / "launcher" / "tiny_four";
  const auto a = metrics(r1), b = metrics(r4);
  ASSERT_EQ(a.size(), 4u) << read_file(r1 / "results" / "metrics.csv");
  ASSERT_EQ(b.size(), 4u) << read_file(r4 / "results" / "metrics.csv");
  for (const auto& [step, v] : a) {
    EXPECT_NEAR(b.at(step).first, v.first, 2e-5 * v.first) << "step " << step;
    if (!std::isnan(v.second)) {
      EXPECT_NEAR(b.at(step).second, v.second, 2e-5 * v.second) << "val at step " << step;
    }
  }
  // The saved stage config and the submission script show the 4-rank layout.
  EXPECT_NE(read_file(r4 / "tiny_four_hydra.yaml").find("tensor_model_parallel_size: 2"), std::string::npos);
  const auto ckpt = checkpoint::find_latest_checkpoint(r4 / "results" / "checkpoints");
  ASSERT_TRUE(ckpt);
  EXPECT_TRUE(fs::exists(*ckpt / "tp_rank_01_pp_rank_001" / "optimizer.safetensors"));
}

}  // namespace
}  // namespace bignlp
