// The conversion and export stage workers on their stage configs (the seed configs' keys).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/export/conversion_stage.h"
#include "bignlp/export/export_stage.h"
#include "bignlp/export/tar.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"stage-test"};
  fs::path checkpoints;
  Logger log = Logger::capturing();
  Fixture() {
    ctx.allocator = &alloc;
    checkpoints = dir.path() / "train" / "results" / "checkpoints";
    // Two checkpoints: step 12 (older) and a "-last" one at step 20 (the latest).
    testing::write_tiny_checkpoint(checkpoints / "megatron_gpt--val_loss=2.00-step=12-consumed_samples=96.0",
                                   dir.path() / "tok", ctx, 1);
    testing::write_tiny_checkpoint(checkpoints / "megatron_gpt--val_loss=1.90-step=20-consumed_samples=160.0-last",
                                   dir.path() / "tok", ctx, 2);
    // write_tiny_checkpoint records step 12 for both: make the second one step 20.
    auto meta = checkpoint::read_checkpoint_metadata(checkpoints / "megatron_gpt--val_loss=1.90-step=20-consumed_samples=160.0-last");
    meta.global_step = 20;
    checkpoint::write_checkpoint_metadata(checkpoints / "megatron_gpt--val_loss=1.90-step=20-consumed_samples=160.0-last", meta);
  }
  std::string conversion_yaml(const std::string& checkpoint_name, int tp, int mp, const std::string& extra = "") {
    return fmt::format(R"(run:
  name: convert_gpt3_tiny
  nodes: 1
  time_limit: "2:00:00"
  dependency: singleton
  ntasks_per_node: 1
  convert_name: convert_nemo
  model_train_name: gpt3_tiny
  train_dir: {0}/train
  results_dir: {0}/train/convert_nemo
  output_path: {0}/train/convert_nemo
  nemo_file_name: megatron_gpt.nemo
model:
  model_type: gpt
  checkpoint_folder: {1}
  checkpoint_name: {2}
  hparams_file: null
  tensor_model_parallel_size: {3}
  pipeline_model_parallel_size: 1
  model_parallel_size: {4}
  vocab_file: {0}/tok/vocab.json
  merge_file: {0}/tok/merges.txt
{5})",
                       dir.path().string(), checkpoints.string(), checkpoint_name, tp, mp, extra);
  }
};

std::vector<std::string> members(const fs::path& archive) {
  TempDir t("members");
  auto m = extract_tar(archive, t.path());
  std::sort(m.begin(), m.end());
  return m;
}

TEST(ConversionStage, LatestCheckpointBecomesANemoWithTheConfiguredLayout) {
  Fixture f;
  const config::ConfigNode root = config::load_yaml_string(f.conversion_yaml("latest", 2, 2));
  const fs::path out = run_conversion_stage(config::ConfigView(root), f.log);
  EXPECT_EQ(out, f.dir.path() / "train" / "convert_nemo" / "megatron_gpt.nemo");
  const auto m = members(out);
  EXPECT_NE(std::find(m.begin(), m.end(), "mp_rank_00/model_weights.ckpt"), m.end());
  EXPECT_NE(std::find(m.begin(), m.end(), "mp_rank_01/model_weights.ckpt"), m.end());
  EXPECT_EQ(std::find(m.begin(), m.end(), "model_weights.ckpt"), m.end());
  // The latest checkpoint (step 20) was converted.
  TempDir t("meta");
  extract_tar(out, t.path());
  EXPECT_NE(read_file(t.path() / "bignlp_metadata.json").find("\"global_step\": 20"), std::string::npos);
}

TEST(ConversionStage, CheckpointNamePatternSelectsByGlob) {
  Fixture f;
  EXPECT_EQ(select_checkpoint(f.checkpoints, "megatron_gpt-*step=12*.ckpt").filename().string(),
            "megatron_gpt--val_loss=2.00-step=12-consumed_samples=96.0");
  EXPECT_EQ(select_checkpoint(f.checkpoints, "megatron_gpt-*last.ckpt").filename().string(),
            "megatron_gpt--val_loss=1.90-step=20-consumed_samples=160.0-last");
  EXPECT_THROW(select_checkpoint(f.checkpoints, "nothing*"), DataError);
}

TEST(ConversionStage, InconsistentModelParallelSizeAndUnknownKeysAreRefusedByName) {
  Fixture f;
  {
    const config::ConfigNode root = config::load_yaml_string(f.conversion_yaml("latest", 2, 4));
    try {
      run_conversion_stage(config::ConfigView(root), f.log);
      FAIL();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("model.model_parallel_size"), std::string::npos) << e.what();
    }
  }
  {
    const config::ConfigNode root = config::load_yaml_string(f.conversion_yaml("latest", 1, 1, "  bogus_key: 3\n"));
    try {
      run_conversion_stage(config::ConfigView(root), f.log);
      FAIL();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("bogus_key"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(f.dir.path() / "train" / "convert_nemo" / "megatron_gpt.nemo"));
}

std::string export_yaml(const fs::path& base, const fs::path& ckpt, bool accuracy, const std::string& accuracy_extra = "") {
  return fmt::format(R"(run:
  name: export_gpt3_tiny
  time_limit: "2:00:00"
  dependency: singleton
  model_train_name: gpt3_tiny
  training_dir: {0}/train
  config_summary: tp2_pp1_fp16_fp16
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
  data_type: fp16
accuracy:
  enabled: {2}
  ntasks_per_node: 8
  batch_size: 64
{3}benchmark:
  enabled: False
  input_len: 60
)",
                     base.string(), ckpt.string(), accuracy ? "True" : "False", accuracy_extra);
}

TEST(ExportStage, WritesTheRepositoryAndTheServingCommands) {
  Fixture f;
  const config::ConfigNode root = config::load_yaml_string(export_yaml(f.dir.path(), f.checkpoints, false));
  run_export_stage(config::ConfigView(root), f.log);
  const fs::path model = f.dir.path() / "export" / "model_repo" / "gpt3_tiny";
  EXPECT_TRUE(fs::exists(model / "config.pbtxt"));
  EXPECT_TRUE(fs::exists(model / "1" / "2-gpu" / "model.layers.3.attention.query_key_value.weight.1.bin"));
  EXPECT_NE(read_file(model / "1" / "2-gpu" / "config.ini").find("weight_data_type = fp16"), std::string::npos);
  const std::string repo = fs::absolute(f.dir.path() / "export" / "model_repo").lexically_normal().string();
  const std::string triton = read_file(f.dir.path() / "export" / "serve_tritonserver.sh");
  EXPECT_NE(triton.find("srun --nodes=1 --mpi=pmix"), std::string::npos) << triton;
  EXPECT_NE(triton.find("export CUDA_VISIBLE_DEVICES=0,1 && tritonserver --model-repository " + repo), std::string::npos)
      << triton;
  const std::string serve = read_file(f.dir.path() / "export" / "serve_bignlp.sh");
  EXPECT_NE(serve.find("bignlp-serve --model-repo '" + repo + "'"), std::string::npos) << serve;
  // The script is valid shell.
  EXPECT_EQ(testing::run("bash -n " + (f.dir.path() / "export" / "serve_tritonserver.sh").string()), 0);
}

TEST(ExportStage, AccuracyCheckWithoutItsTestDataIsRefusedByNameBeforeAnythingIsWritten) {
  Fixture f;
  const config::ConfigNode root = config::load_yaml_string(
      export_yaml(f.dir.path(), f.checkpoints, true,
                  fmt::format("  test_data: {0}/nowhere/lambada_test.jsonl\n  output_path: {0}/eval_output.json\n",
                              f.dir.path().string())));
  try {
    run_export_stage(config::ConfigView(root), f.log);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("accuracy.test_data: '" + (f.dir.path() / "nowhere").string()), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(f.dir.path() / "export"));
}

TEST(ExportStage, TritonCommandSpansNodesForLargeLayouts) {
  const std::string s = render_tritonserver_script("/r", 8, 2);
  EXPECT_NE(s.find("srun --nodes=2 "), std::string::npos) << s;
  EXPECT_EQ(s.find("CUDA_VISIBLE_DEVICES"), std::string::npos) << s;
}

}  // namespace
}  // namespace bignlp::exporting

namespace bignlp::exporting {
namespace {

TEST(ConversionStage, HparamsFileBecomesTheModelConfigWithTheLauncherEdits) {
  Fixture f;
  const fs::path hp = f.dir.path() / "train" / "results" / "hparams.yaml";
  const auto meta = checkpoint::read_checkpoint_metadata(f.checkpoints / "megatron_gpt--val_loss=1.90-step=20-consumed_samples=160.0-last");
  std::string yaml = "cfg:\n";
  yaml += fmt::format("  num_layers: {}\n  hidden_size: {}\n", meta.model["num_layers"].get<int>(), meta.model["hidden_size"].get<int>());
  yaml += "  activations_checkpoint_granularity: full\n  activations_checkpoint_method: uniform\n";
  yaml += "  optim:\n    name: distributed_fused_adam\n    lr: 0.0001\n  my_marker_key: 7\n";
  yaml += "  tokenizer:\n    library: megatron\n    type: GPT2BPETokenizer\n    vocab_file: /nowhere/vocab.json\n    merge_file: /nowhere/merges.txt\n";
  write_file_atomic(hp, yaml);
  std::string cfg = f.conversion_yaml("latest", 1, 1);
  const auto pos = cfg.find("  hparams_file: null");
  cfg.replace(pos, 20, "  hparams_file: " + hp.string());
  const fs::path out = run_conversion_stage(config::ConfigView(config::load_yaml_string(cfg)), f.log);
  TempDir t("hp");
  extract_tar(out, t.path());
  const config::ConfigNode mc = config::load_yaml_file(t.path() / "model_config.yaml");
  EXPECT_EQ(mc.at("my_marker_key").as_int(), 7);
  EXPECT_TRUE(mc.at("activations_checkpoint_granularity").is_null());
  EXPECT_TRUE(mc.at("activations_checkpoint_method").is_null());
  EXPECT_EQ(mc.at("optim.name").as_string(), "fused_adam");
  // The stage's vocab_file replaced the hparams' path, packed as an artifact.
  const std::string vocab = mc.at("tokenizer.vocab_file").as_string();
  ASSERT_EQ(vocab.rfind("nemo:", 0), 0u) << vocab;
  EXPECT_EQ(read_file(t.path() / vocab.substr(5)), read_file(f.dir.path() / "tok" / "vocab.json"));
  // hparams that disagree with the checkpoint's shape are refused, naming the file and key.
  write_file_atomic(hp, "cfg:\n  hidden_size: 4096\n");
  try {
    run_conversion_stage(config::ConfigView(config::load_yaml_string(cfg)), f.log);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(hp.string() + ": cfg.hidden_size is 4096"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bignlp::exporting
