// The export stage's accuracy check and benchmark (export/export_check.h) on the LAMBADA fixture
// (tests/data/eval/lambada_test.jsonl) with a small GPT that has a real GPT-2 BPE tokenizer: the
// stage exports at inference TP 2 with fp16 weight files, reports the same LAMBADA accuracy and
// greedy generation for the exported model and the source, and its generation-based accuracy
// (FT's rule) equals the evaluation library's teacher-forced acc; a repository whose weights were
// altered after export fails the check; the benchmark writes one CSV row per batch size.
#include "bignlp/export/export_check.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "bignlp/export/export_stage.h"
#include "eval_fixture.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;

struct CheckFixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"export-check"};
  fs::path ckpt, lambada;
  Logger log = Logger::capturing();
  CheckFixture() {
    ctx.allocator = &alloc;
    ckpt = dir.path() / "ckpt";
    lambada = fs::path(BIGNLP_SOURCE_DIR) / "tests" / "data" / "eval" / "lambada_test.jsonl";
    test_support::write_small_bpe(dir.path() / "bpe");
    test_support::write_eval_checkpoint(ckpt, dir.path() / "bpe", 9);
  }
  std::string stage_yaml(bool benchmark) const {
    return fmt::format(R"(run:
  name: export_gpt3_tiny
  time_limit: "2:00:00"
  dependency: singleton
  model_train_name: gpt3_tiny
  training_dir: {0}/train
  config_summary: tp2_pp1_fp16_fp32
  results_dir: {0}/export
  model_type: gpt3
model:
  checkpoint_path: {1}
  tensor_model_parallel_size: 2
  weight_data_type: fp16
  processes: 2
  load_checkpoints_to_cpu: False
triton_deployment:
  triton_model_dir: {0}/export/model_repo/gpt3_tiny
  max_batch_size: 1
  pipeline_model_parallel_size: 1
  int8_mode: False
  enable_custom_all_reduce: False
  data_type: fp32
accuracy:
  enabled: True
  ntasks_per_node: 8
  runtime_config_ini_path: {0}/export/ft_runtime.ini
  test_data: {2}
  output_path: {0}/export/eval_output.json
  batch_size: 4
  runtime:
    max_seq_len: 64
    beam_width: 1
    sampling_top_k: 1
    sampling_top_p: 0
benchmark:
  enabled: {3}
  input_len: 6
  output_len: 3
  batch_sizes: [1, 3]
  triton_wait_time: 300
)",
                       dir.path().string(), ckpt.string(), lambada.string(), benchmark ? "True" : "False");
  }
};

TEST(ExportCheck, TheStageReportsEqualAccuracyAndGenerationForTheExportAndItsSource) {
  CheckFixture f;
  const config::ConfigNode root = config::load_yaml_string(f.stage_yaml(true));
  run_export_stage(config::ConfigView(root), f.log);
  const fs::path out = f.dir.path() / "export";
  const auto report = nlohmann::json::parse(read_file(out / "eval_output.json"));
  EXPECT_EQ(report["documents"], 5);
  EXPECT_TRUE(report["accuracy_equal"].get<bool>());
  EXPECT_TRUE(report["greedy_generation"]["equal"].get<bool>());
  EXPECT_EQ(report["source"]["weights_rounded_to"], "fp16");
  EXPECT_EQ(report["exported"]["accuracy"], report["source"]["accuracy"]);
  EXPECT_EQ(report["exported"]["lm_eval"], report["source"]["lm_eval"]);
  // FT's generation rule and lm-eval's teacher-forced greedy check agree document for document,
  // so the accuracies are the same number (lm-eval: a fraction, FT: a percentage).
  EXPECT_NEAR(report["exported"]["accuracy"].get<double>(), 100.0 * report["exported"]["lm_eval"]["acc"].get<double>(),
              1e-9);
  EXPECT_TRUE(report["exported"]["lm_eval"].contains("ppl"));
  ASSERT_EQ(report["greedy_generation"]["exported"].size(), 5u);
  EXPECT_EQ(report["greedy_generation"]["exported"][0].size(), 16u);
  EXPECT_NE(read_file(out / "ft_runtime.ini").find("max_seq_len = 64"), std::string::npos);
  const std::string csv = read_file(out / "benchmark.csv");
  const auto lines = split(csv, '\n');
  ASSERT_GE(lines.size(), 3u) << csv;
  EXPECT_EQ(lines[0], "batch_size,tensor_para_size,pipeline_para_size,input_len,output_len,latency_ms,throughput_per_gpu");
  EXPECT_TRUE(starts_with(lines[1], "1,1,1,6,3,")) << csv;
  EXPECT_TRUE(starts_with(lines[2], "3,1,1,6,3,")) << csv;
}

TEST(ExportCheck, AnAlteredRepositoryFailsTheCheck) {
  CheckFixture f;
  FtExportOptions o;
  o.model_name = "m";
  o.tensor_para_size = 2;
  o.weight_data_type = DType::kF32;
  o.data_type = "fp32";
  const fs::path repo = f.dir.path() / "repo";
  export_fastertransformer(f.ckpt, repo, o, f.log);
  // Swap the two ranks' halves of one FFN weight: the shapes still fit, the model is another.
  const fs::path w = repo / "m" / "1" / "2-gpu";
  const std::string a = read_file(w / "model.layers.0.mlp.dense_h_to_4h.weight.0.bin");
  const std::string b = read_file(w / "model.layers.0.mlp.dense_h_to_4h.weight.1.bin");
  write_file_atomic(w / "model.layers.0.mlp.dense_h_to_4h.weight.0.bin", b);
  write_file_atomic(w / "model.layers.0.mlp.dense_h_to_4h.weight.1.bin", a);
  AccuracyCheckOptions ao;
  ao.test_data = f.lambada;
  ao.output_path = f.dir.path() / "report.json";
  ao.batch_size = 4;
  ao.max_seq_len = 64;
  try {
    check_export_accuracy(f.ckpt, repo / "m", ao, f.log);
    FAIL() << "an altered repository passed";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("does not compute what the source checkpoint computes"), std::string::npos)
        << e.what();
  }
  const auto report = nlohmann::json::parse(read_file(ao.output_path));
  EXPECT_FALSE(report["accuracy_equal"].get<bool>() && report["greedy_generation"]["equal"].get<bool>());
}

}  // namespace
}  // namespace bignlp::exporting
