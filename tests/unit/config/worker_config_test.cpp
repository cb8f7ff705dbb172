#include "bignlp/config/worker_config.h"

#include <gtest/gtest.h>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::config {
namespace {

TEST(WorkerConfigTest, ExtractsConfigArgumentsAndLeavesTheRest) {
  std::vector<std::string> args = {"--config-path", "/r/gpt3_5b", "--workers=4", "--config-name=gpt3_5b_hydra.yaml",
                                   "trainer.num_nodes=2",  "+rank=${oc.env:RANK}", "-v",  "~model.x",
                                   "--output", "out.bin"};
  const auto a = extract_worker_config_args(args);
  EXPECT_EQ(a.config_path, "/r/gpt3_5b");
  EXPECT_EQ(a.config_name, "gpt3_5b_hydra.yaml");
  EXPECT_EQ(a.overrides, (std::vector<std::string>{"trainer.num_nodes=2", "+rank=${oc.env:RANK}", "~model.x"}));
  EXPECT_EQ(args, (std::vector<std::string>{"--workers=4", "-v", "--output", "out.bin"}));
  std::vector<std::string> short_form = {"-cp", "d", "-cn=n"};
  const auto b = extract_worker_config_args(short_form);
  EXPECT_EQ(b.config_path, "d");
  EXPECT_EQ(b.config_name, "n");
  std::vector<std::string> bad = {"--config-name"};
  EXPECT_THROW(extract_worker_config_args(bad), UsageError);
}

TEST(WorkerConfigTest, LoadsTheSavedConfigAppliesOverridesAndResolves) {
  TempDir dir;
  write_file_atomic(dir.path() / "gpt3_5b_hydra.yaml", "trainer:\n  num_nodes: 8\nmodel:\n  hidden_size: 4096\n");
  WorkerConfigArgs a;
  a.config_path = dir.path();
  a.config_name = "gpt3_5b_hydra";
  a.overrides = {"trainer.num_nodes=2", "+model.ffn='${multiply:4,${model.hidden_size}}'"};
  const ConfigNode root = load_worker_config(a);
  EXPECT_EQ(root.at("trainer.num_nodes").as_int(), 2);
  EXPECT_EQ(root.at("model.ffn").as_int(), 16384);
  EXPECT_EQ(root.at("trainer.num_nodes").provenance().location(), "override #1 'trainer.num_nodes=2'");

  a.overrides = {"trainer.num_node=2"};
  try {
    (void)load_worker_config(a);
    FAIL();
  } catch (const OverrideError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Could not override 'trainer.num_node'.\nTo append to your config use +trainer.num_node=2\nKey 'num_node' is "
              "not in struct\n    full_key: trainer.num_node\nDid you mean 'trainer.num_nodes'?");
  }
  a.overrides = {"db@pkg=x"};
  EXPECT_THROW(load_worker_config(a), OverrideError);
  a.overrides = {};
  a.config_name = "missing.yaml";
  EXPECT_THROW(load_worker_config(a), ConfigError);
  a.config_name = "";
  EXPECT_THROW(load_worker_config(a), UsageError);
}

}  // namespace
}  // namespace bignlp::config
