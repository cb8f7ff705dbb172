#include "bignlp/config/node.h"

#include <gtest/gtest.h>

#include <cmath>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"

namespace bignlp::config {
namespace {

TEST(NodeTest, KeyPathsSplitDotsAndBrackets) {
  EXPECT_EQ(split_key_path("a.b.c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_key_path("a.b[0].c"), (std::vector<std::string>{"a", "b", "0", "c"}));
  EXPECT_EQ(split_key_path("[a][b]"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_key_path("").empty());
  EXPECT_EQ(child_key_path("", "x"), "x");
  EXPECT_EQ(child_key_path("a.b", "x"), "a.b.x");
}

TEST(NodeTest, DictKeepsInsertionOrderAndReplacesInPlace) {
  ConfigNode d = ConfigNode::dict();
  d.set("b", ConfigNode::integer(1));
  d.set("a", ConfigNode::integer(2));
  d.set("b", ConfigNode::string("x"));
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(d.find("b")->as_string(), "x");
  EXPECT_TRUE(d.erase("b"));
  EXPECT_FALSE(d.erase("b"));
  EXPECT_EQ(d.size(), 1u);
}

TEST(NodeTest, SetPathCreatesParentsAndAddressesLists) {
  ConfigNode root = ConfigNode::dict();
  root.set_path("trainer.num_nodes", ConfigNode::integer(2));
  root.set_path("model.layers", ConfigNode::list());
  root.at("model.layers").push_back(ConfigNode::integer(7));
  root.set_path("model.layers.0", ConfigNode::integer(8));
  EXPECT_EQ(root.at("trainer.num_nodes").as_int(), 2);
  EXPECT_EQ(root.at("model.layers[0]").as_int(), 8);
  EXPECT_EQ(root.find_path("model.layers.1"), nullptr);
  EXPECT_THROW(root.set_path("model.layers.3", ConfigNode::integer(1)), ConfigError);
  // A scalar in the way becomes a dict.
  root.set_path("trainer.num_nodes.x", ConfigNode::integer(1));
  EXPECT_TRUE(root.at("trainer.num_nodes").is_dict());
  EXPECT_TRUE(root.erase_path("model.layers.0"));
  EXPECT_EQ(root.at("model.layers").size(), 0u);
}

TEST(NodeTest, AtNamesThePathTheContainerLocationAndTheClosestKey) {
  YamlLoadOptions opt;
  opt.display_name = "conf/x.yaml";
  const ConfigNode root = load_yaml_string("trainer:\n  num_nodes: 2\n  devices: 8\n", opt);
  try {
    (void)root.at("trainer.num_node");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "conf/x.yaml:2:3: trainer.num_node: key 'num_node' not found in 'trainer' (did you mean 'num_nodes'?)");
  }
  EXPECT_THROW((void)root.at("trainer.devices.x"), ConfigError);
  EXPECT_THROW((void)root.at("trainer").as_int(), ConfigError);
}

TEST(NodeTest, MergeFollowsOmegaConf) {
  const ConfigNode a = load_yaml_string("x: {a: 1, b: [1, 2]}\ny: 1\nz: keep\n");
  const ConfigNode b = load_yaml_string("x: {b: [3], c: 2}\ny: null\nz: ???\nw: new\n");
  ConfigNode m = a;
  merge_into(m, b);
  EXPECT_EQ(to_yaml(m), "x:\n  a: 1\n  b:\n  - 3\n  c: 2\n'y': null\nz: keep\nw: new\n");
  ConfigNode bad = load_yaml_string("x: [1]\n");
  EXPECT_THROW(merge_into(m, bad), ConfigError);
}

TEST(NodeTest, MergeKeepsTheReplacedDefinitionAsHistory) {
  YamlLoadOptions o1, o2;
  o1.display_name = "base.yaml";
  o2.display_name = "over.yaml";
  ConfigNode m = load_yaml_string("lr: 1\n", o1);
  merge_into(m, load_yaml_string("\nlr: 2\n", o2));
  const Provenance& p = m.at("lr").provenance();
  EXPECT_EQ(p.location(), "over.yaml:2:5");
  ASSERT_TRUE(p.previous);
  EXPECT_EQ(p.previous->location(), "base.yaml:1:5");
}

TEST(NodeTest, EqualityIgnoresProvenanceButNotKindOrOrder) {
  EXPECT_EQ(load_yaml_string("a: 1\nb: 2\n"), load_yaml_string("a:   1\nb: 2\n"));
  EXPECT_NE(load_yaml_string("a: 1\nb: 2\n"), load_yaml_string("b: 2\na: 1\n"));
  EXPECT_NE(ConfigNode::integer(1), ConfigNode::floating(1.0));
  EXPECT_EQ(ConfigNode::floating(std::nan("")), ConfigNode::floating(std::nan("")));
}

TEST(NodeTest, PythonStrMatchesOmegaConfStringInterpolation) {
  EXPECT_EQ(ConfigNode::floating(1.0).to_python_str(), "1.0");
  EXPECT_EQ(ConfigNode::floating(1e-5).to_python_str(), "1e-05");
  EXPECT_EQ(ConfigNode::floating(1e20).to_python_str(), "1e+20");
  EXPECT_EQ(ConfigNode::floating(1e16).to_python_str(), "1e+16");
  EXPECT_EQ(ConfigNode::floating(1e15).to_python_str(), "1000000000000000.0");
  EXPECT_EQ(ConfigNode::floating(0.1).to_python_str(), "0.1");
  EXPECT_EQ(ConfigNode::floating(-0.0).to_python_str(), "-0.0");
  EXPECT_EQ(ConfigNode::boolean(true).to_python_str(), "True");
  EXPECT_EQ(ConfigNode::null_value().to_python_str(), "None");
  EXPECT_EQ(load_yaml_string("[1, a, null, 'it''s']").to_python_str(), "[1, 'a', None, \"it's\"]");
  EXPECT_EQ(load_yaml_string("{x: 1, y: [2.5]}").to_python_str(), "{'x': 1, 'y': [2.5]}");
}

}  // namespace
}  // namespace bignlp::config
