#include "bignlp/config/compose.h"

#include <gtest/gtest.h>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"

namespace bignlp::config {
namespace {

constexpr const char* kDefaults = "tests/data/conf_fixtures/defaults";
constexpr const char* kLauncher = "tests/data/conf_fixtures/launcher";

ComposeResult run(const std::string& name, std::vector<std::string> overrides = {}, const char* dir = kDefaults) {
  ComposeOptions o;
  o.config_path = dir;
  o.config_name = name;
  o.overrides = std::move(overrides);
  return compose(o);
}

std::string yaml(const std::string& name, std::vector<std::string> overrides = {}) {
  return to_yaml(run(name, std::move(overrides)).config);
}

std::string error(const std::string& name, std::vector<std::string> overrides = {}, const char* dir = kDefaults) {
  try {
    (void)run(name, std::move(overrides), dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ComposeTest, SelfPositionDecidesWhoWins) {
  EXPECT_EQ(yaml("self_first"), "x: 1\ndb:\n  host: localhost\n  port: 3306\n");
  EXPECT_EQ(yaml("self_last"), "db:\n  host: from_primary\n  port: 3306\nx: 1\n");
  const auto r = run("no_self");
  EXPECT_EQ(to_yaml(r.config), "db:\n  host: localhost\n  port: 1\n");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("Defaults list is missing `_self_`"), std::string::npos);
}

TEST(ComposeTest, NestedDefaultsAreRelativeToTheirGroup) {
  const auto r = run("nested");
  EXPECT_EQ(to_yaml(r.config), "server:\n  db:\n    engine: innodb\n  name: apache\n");
  EXPECT_EQ(r.choice("server"), "apache");
  EXPECT_EQ(r.choice("server/db"), "mysql");
  EXPECT_EQ(to_yaml(run("nested", {"server/db=sqlite"}).config), "server:\n  db:\n    engine: lite\n  name: apache\n");
}

TEST(ComposeTest, PackagesFromEntriesAndHeaders) {
  EXPECT_EQ(yaml("pkg"), "backup:\n  host: localhost\n  port: 3306\ndb:\n  file: x.db\nflat:\n  host: localhost\n  port: 3306\n");
  EXPECT_EQ(yaml("pkg", {"db@backup=sqlite"}), "backup:\n  file: x.db\ndb:\n  file: x.db\nflat:\n  host: localhost\n  port: 3306\n");
  EXPECT_EQ(yaml("header"), "global_key: 1\n");
}

TEST(ComposeTest, OptionalNullMissingAndOptionLists) {
  EXPECT_EQ(yaml("optional"), "x: 1\n");
  EXPECT_EQ(yaml("null_group"), "x: 1\n");
  EXPECT_EQ(yaml("null_group", {"db=sqlite"}), "db:\n  file: x.db\nx: 1\n");
  EXPECT_EQ(yaml("missing_group", {"db=mysql"}), "db:\n  host: localhost\n  port: 3306\n");
  EXPECT_EQ(error("missing_group"), "You must specify 'db', e.g, db=<OPTION>\nAvailable options:\n\tglobal_header\n\tmysql\n\tsqlite");
  EXPECT_EQ(yaml("multi"), "db:\n  host: localhost\n  port: 3306\n  file: x.db\n");
  EXPECT_EQ(yaml("self_first", {"db=[sqlite,mysql]"}), "x: 1\ndb:\n  host: localhost\n  file: x.db\n  port: 3306\n");
}

TEST(ComposeTest, ExperimentOverridesAGroupDeclaredElsewhere) {
  const auto r = run("self_first", {"+experiment=exp1"});
  EXPECT_EQ(to_yaml(r.config), "x: 2\ndb:\n  host: from_primary\n  file: x.db\n");
  EXPECT_EQ(r.choice("db"), "sqlite");
  EXPECT_EQ(r.choice("experiment"), "exp1");
  // The command line wins over an `override` in a config.
  EXPECT_EQ(to_yaml(run("self_first", {"+experiment=exp1", "db=mysql"}).config), "x: 2\ndb:\n  host: localhost\n  port: 3306\n");
}

TEST(ComposeTest, InterpolatedChoices) {
  EXPECT_EQ(yaml("interp"),
            "db:\n  host: localhost\n  port: 3306\nserver:\n  db:\n    engine: innodb\n  name: apache\napp:\n  combo: mysql+apache\n");
}

TEST(ComposeTest, GroupOverrideErrors) {
  EXPECT_EQ(error("self_first", {"db=postgres"}),
            "tests/data/conf_fixtures/defaults/self_first.yaml:3:5: In 'self_first': Could not find 'db/postgres'\n\nAvailable options in 'db':\n\tglobal_header\n\tmysql\n\tsqlite\n"
            "\nConfig search path:\n\tprovider=hydra, path=builtin://hydra\n\tprovider=main, path=file://" +
                std::filesystem::absolute(kDefaults).lexically_normal().string());
  EXPECT_EQ(error("plain", {"db=mysql"}),
            "Could not override 'db'. No match in the defaults list.\nTo append to your default list use +db=mysql");
  EXPECT_EQ(error("self_first", {"~db=sqlite"}), "Could not delete 'db=sqlite'. No match in the defaults list");
  EXPECT_EQ(yaml("self_first", {"~db"}), "x: 1\ndb:\n  host: from_primary\n");
  EXPECT_EQ(yaml("self_first", {"~db=mysql"}), "x: 1\ndb:\n  host: from_primary\n");
  EXPECT_EQ(error("self_first", {"++db=mysql"}), "force-add of config groups is not supported: '++db=mysql'");
  EXPECT_EQ(error("self_first", {"db=1"}), "Config group override must be a string or a list. Got int (in 'db=1')");
  EXPECT_EQ(error("self_first", {"nogroup@pkg=x"}),
            "Override nogroup@pkg=x looks like a config group override, but config group 'nogroup' does not exist.");
  EXPECT_EQ(error("override_before"),
            "tests/data/conf_fixtures/defaults/override_before.yaml:3:5: In override_before: Override 'db : sqlite' is defined before 'db: mysql'.\nOverrides must be at the end of the "
            "defaults list");
  EXPECT_EQ(error("duplicate"), "tests/data/conf_fixtures/defaults/duplicate.yaml:2:5: Multiple values for db. To override a value use 'override db: sqlite'");
  EXPECT_EQ(error("self_pkg"), "tests/data/conf_fixtures/defaults/self_pkg.yaml:2:5: In 'self_pkg': _self_@PACKAGE is not supported");
  EXPECT_EQ(error("two_self"), "Duplicate _self_ defined in two_self");
  EXPECT_NE(error("nope").find("Cannot find primary config 'nope'. Check that it's in your config search path."), std::string::npos);
  EXPECT_EQ(error("list_top"), "tests/data/conf_fixtures/defaults/list_top.yaml: a config file must contain a dict at the top level, got a list");
  EXPECT_EQ(error("bad_yaml"), "tests/data/conf_fixtures/defaults/bad_yaml.yaml:2:1: malformed YAML: while parsing a flow sequence (line 1, column 4): did not find expected ',' or ']'");
  EXPECT_NE(error("merge_conflict").find("In 'merge_conflict': Validation error while composing config:\n"), std::string::npos);
}

TEST(ComposeTest, ConfigOverrides) {
  EXPECT_EQ(yaml("plain", {"a=2", "b.d=[3]", "+b.e={f: 1}", "++a=3", "~b.c"}), "a: 3\nb:\n  d:\n  - 3\n  e:\n    f: 1\n");
  EXPECT_EQ(yaml("plain", {"b.d.0=9"}), "a: 1\nb:\n  c: ${a}\n  d:\n  - 9\n  - 2\n");
  EXPECT_EQ(yaml("plain", {"b={c: 5}"}), "a: 1\nb:\n  c: 5\n  d:\n  - 1\n  - 2\n");
  EXPECT_EQ(yaml("plain", {"b=7"}), "a: 1\nb: 7\n");
  EXPECT_EQ(yaml("plain", {"+x.y.z=1"}), "a: 1\nb:\n  c: ${a}\n  d:\n  - 1\n  - 2\nx:\n  'y':\n    z: 1\n");
  EXPECT_EQ(yaml("plain", {"a=${b.d}"}), "a: ${b.d}\nb:\n  c: ${a}\n  d:\n  - 1\n  - 2\n");
  EXPECT_EQ(error("plain", {"aa=1"}), "Could not override 'aa'.\nTo append to your config use +aa=1\nKey 'aa' is not in struct\n    full_key: aa\nDid you mean 'a'?");
  EXPECT_EQ(error("plain", {"+a=5"}),
            "Could not append to config. An item is already at 'a'.\nEither remove + prefix: 'a=5'\nOr add a second + to "
            "add or override 'a': '++a=5'");
  EXPECT_EQ(error("plain", {"~nope"}), "Could not delete from config. 'nope' does not exist.");
  EXPECT_EQ(error("plain", {"~a=2"}), "Could not delete from config. The value of 'a' is 1 and not 2.");
  EXPECT_EQ(error("plain", {"b={zz: 1}"}),
            "Could not override 'b'.\nTo append to your config use +b={zz: 1}\nKey 'zz' is not in struct\n    full_key: b.zz");
  EXPECT_EQ(error("plain", {"b=[1]"}), "Error merging override b=[1]\nCannot merge DictConfig with ListConfig");
  EXPECT_EQ(error("plain", {"a=1,2"}),
            "Ambiguous value for argument 'a=1,2'\n1. To use it as a list, use key=[value1,value2]\n2. To use it as string, "
            "quote the value: key=\\'value1,value2\\'\n3. To sweep over it, add --multirun to your command line");
  EXPECT_EQ(error("plain", {"a=range(1,3)"}), "Sweep parameters 'a=range(1,3)' requires --multirun");
}

TEST(ComposeTest, OverrideValuesCarryTheirProvenance) {
  const auto r = run("plain", {"a=2"});
  const Provenance& p = r.config.at("a").provenance();
  EXPECT_EQ(p.location(), "override #1 'a=2'");
  ASSERT_TRUE(p.previous);
  EXPECT_EQ(p.previous->location(), "tests/data/conf_fixtures/defaults/plain.yaml:1:4");
}

TEST(ComposeTest, LauncherShapedConfigResolvesWithHydraChoices) {
  const auto r = run("config", {"launcher_scripts_path=/opt/x", "training=gpt3/5b"}, kLauncher);
  EXPECT_EQ(r.choice("training"), "gpt3/5b");
  EXPECT_EQ(r.choice("hydra/job_logging"), "stdout");
  const ConfigNode c = r.resolved();
  EXPECT_EQ(c.at("training_config").as_string(), "gpt3/5b");
  EXPECT_EQ(c.at("training.run.results_dir").as_string(), "/opt/x/results/gpt3_5b");
  EXPECT_EQ(c.at("training.model.ffn_hidden_size").as_int(), 16384);
  EXPECT_EQ(c.at("evaluation.run.nodes").as_int(), 2);
  EXPECT_FALSE(r.config.contains("hydra"));
  EXPECT_EQ(r.hydra.at("run.dir").as_string(), ".");
  EXPECT_EQ(to_yaml(r.hydra.at("overrides.task")), "- launcher_scripts_path=/opt/x\n- training=gpt3/5b\n");
  EXPECT_EQ(r.defaults.front().config_path, "hydra/output/default");
  EXPECT_EQ(r.defaults.front().package, "hydra");
  bool primary_self = false;
  for (const auto& d : r.defaults) primary_self = primary_self || (d.config_path == "config" && d.is_self && d.primary);
  EXPECT_TRUE(primary_self);
}

TEST(ComposeTest, MultirunIsTheCartesianProductLastVaryingFastest) {
  ComposeOptions o;
  o.config_path = kDefaults;
  o.config_name = "self_first";
  o.overrides = {"x=1,2", "db=mysql,sqlite"};
  const auto jobs = compose_multirun(o);
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[0].overrides, (std::vector<std::string>{"x=1", "db=mysql"}));
  EXPECT_EQ(jobs[1].overrides, (std::vector<std::string>{"x=1", "db=sqlite"}));
  EXPECT_EQ(jobs[3].overrides, (std::vector<std::string>{"x=2", "db=sqlite"}));
  EXPECT_EQ(to_yaml(jobs[3].result.config), "x: 2\ndb:\n  host: from_primary\n  file: x.db\n");
  EXPECT_EQ(jobs[2].result.hydra.at("job.num").as_int(), 2);
  o.overrides = {"db=glob(*l*,exclude=global_*)", "x=range(0,2)"};
  const auto g = compose_multirun(o);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0].overrides, (std::vector<std::string>{"db=mysql", "x=0"}));
  EXPECT_EQ(g[3].overrides, (std::vector<std::string>{"db=sqlite", "x=1"}));
  o.overrides = {"x=interval(0,1)"};
  EXPECT_THROW(compose_multirun(o), OverrideError);
  o.overrides = {"hydra.run.dir=a,b"};
  EXPECT_THROW(compose_multirun(o), OverrideError);
}

TEST(ComposeTest, SearchPathAndConfigDirs) {
  ComposeOptions o;
  o.config_path = kDefaults;
  o.config_name = "plain";
  o.config_dirs = {"tests/data/conf_fixtures/launcher"};
  o.overrides = {"+cluster=bcp"};
  const auto r = compose(o);
  EXPECT_EQ(r.search_path.size(), 3u);
  EXPECT_EQ(r.search_path[2].provider, "command-line");
  EXPECT_EQ(r.config.at("cluster.gpus_per_node").as_int(), 8);
  o.config_dirs = {"tests/data/nonexistent_dir"};
  EXPECT_THROW(compose(o), ConfigError);
  ComposeOptions p;
  p.config_path = "tests/data/nonexistent_dir";
  EXPECT_THROW(compose(p), ConfigError);
}

}  // namespace
}  // namespace bignlp::config
