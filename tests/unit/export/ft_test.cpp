// FasterTransformer export: every weight file read back with numpy (tests/python/ft_reference.py)
// and re-assembled equals the source tensor, for inference TP 1, 2, 4 from training TP 1 and 2
// (x PP 2); config.ini and config.pbtxt against golden files; refusal to overwrite.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bignlp/checkpoint/layout.h"
#include "bignlp/core/error.h"
#include "bignlp/export/fastertransformer.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;
using testing::python_script;
using testing::run;

/// Compares `text` with tests/golden/export/<name>; BIGNLP_UPDATE_GOLDEN=1 rewrites the file.
void expect_golden(const std::string& name, const std::string& text) {
  const fs::path file = fs::path(BIGNLP_SOURCE_DIR) / "tests" / "golden" / "export" / name;
  if (const char* u = std::getenv("BIGNLP_UPDATE_GOLDEN"); u != nullptr && std::string(u) == "1") {
    write_file_atomic(file, text);
    return;
  }
  ASSERT_TRUE(fs::exists(file)) << file << " is missing (BIGNLP_UPDATE_GOLDEN=1 writes it)";
  EXPECT_EQ(read_file(file), text) << "differs from " << file;
}

struct Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"ft-test"};
  std::unique_ptr<model::GptModel> model;
  fs::path ckpt;
  Logger log = Logger::capturing();
  Fixture() {
    ctx.allocator = &alloc;
    ckpt = dir.path() / "ckpt";
    model = testing::write_tiny_checkpoint(ckpt, dir.path() / "tok", ctx);
  }
  /// The full tensors and config, for the Python check.
  fs::path source() {
    const fs::path out = dir.path() / "source.safetensors";
    SafetensorsWriter w;
    for (auto& p : model->parameters().params()) w.add(p.name, p.master);
    w.set_metadata("config", model->config_json().dump());
    w.write(out);
    return out;
  }
};

class FtLayoutTest : public ::testing::TestWithParam<std::tuple<int, int, const char*, bool>> {};

TEST_P(FtLayoutTest, EveryWeightFileReassemblesToTheSourceTensor) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and numpy is not installed";
  const auto [train_tp, infer_tp, dtype, fused] = GetParam();
  Fixture f;
  fs::path src = f.ckpt;
  if (train_tp != 1) {
    src = f.dir.path() / "src";
    checkpoint::reshard_checkpoint(f.ckpt, src, train_tp, 2, f.log);
  }
  FtExportOptions o;
  o.model_name = "gpt_tiny";
  o.tensor_para_size = infer_tp;
  o.weight_data_type = parse_dtype(dtype);
  o.fused_qkv = fused;
  o.processes = 2;
  const fs::path repo = f.dir.path() / "repo";
  export_fastertransformer(src, repo, o, f.log);
  const fs::path wdir = repo / "gpt_tiny" / "1" / ft_weights_folder(o);
  ASSERT_TRUE(fs::exists(repo / "gpt_tiny" / "config.pbtxt"));
  EXPECT_EQ(read_file(wdir / "vocab.json"), read_file(f.dir.path() / "tok" / "vocab.json"));
  EXPECT_EQ(run(fmt::format("/usr/bin/python3 {} {} {} {} {} {}", python_script("ft_reference.py"), wdir.string(),
                            f.source().string(), infer_tp, dtype, fused ? 1 : 0)),
            0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, FtLayoutTest,
                         ::testing::Values(std::tuple{1, 1, "fp32", true}, std::tuple{1, 2, "fp32", true},
                                           std::tuple{1, 4, "fp32", true}, std::tuple{2, 1, "fp32", true},
                                           std::tuple{2, 2, "fp32", true}, std::tuple{2, 4, "fp32", true},
                                           std::tuple{2, 4, "fp16", true}, std::tuple{1, 2, "fp32", false}));

TEST(FtExport, ConfigIniAndConfigPbtxtMatchTheirGoldenFiles) {
  Fixture f;
  FtExportOptions o;
  o.model_name = "gpt3_126m";
  o.tensor_para_size = 2;
  o.weight_data_type = DType::kF16;
  o.max_batch_size = 1;
  const fs::path repo = f.dir.path() / "repo";
  export_fastertransformer(f.ckpt, repo, o, f.log);
  expect_golden("config.ini", read_file(repo / "gpt3_126m" / "1" / "2-gpu" / "config.ini"));
  // The checkpoint path is absolute: golden with a placeholder.
  std::string pbtxt = read_file(repo / "gpt3_126m" / "config.pbtxt");
  const std::string abs = fs::absolute(repo).lexically_normal().string();
  for (auto pos = pbtxt.find(abs); pos != std::string::npos; pos = pbtxt.find(abs)) pbtxt.replace(pos, abs.size(), "<REPO>");
  expect_golden("config.pbtxt", pbtxt);
}

TEST(FtExport, RefusesToOverwriteUnlessTold) {
  Fixture f;
  FtExportOptions o;
  o.model_name = "m";
  const fs::path repo = f.dir.path() / "repo";
  export_fastertransformer(f.ckpt, repo, o, f.log);
  write_file_atomic(repo / "m" / "marker", "x");
  EXPECT_THROW(export_fastertransformer(f.ckpt, repo, o, f.log), ConfigError);
  EXPECT_TRUE(fs::exists(repo / "m" / "marker"));
  o.overwrite = true;
  export_fastertransformer(f.ckpt, repo, o, f.log);
  EXPECT_FALSE(fs::exists(repo / "m" / "marker"));
  EXPECT_TRUE(fs::exists(repo / "m" / "1" / "1-gpu" / "model.wte.bin"));
}

TEST(FtExport, TensorParaSizeThatDoesNotDivideTheHeadsIsRefusedWithNothingWritten) {
  Fixture f;
  FtExportOptions o;
  o.model_name = "m";
  o.tensor_para_size = 3;
  const fs::path repo = f.dir.path() / "repo";
  EXPECT_THROW(export_fastertransformer(f.ckpt, repo, o, f.log), ConfigError);
  EXPECT_FALSE(fs::exists(repo / "m"));
}

}  // namespace
}  // namespace bignlp::exporting
