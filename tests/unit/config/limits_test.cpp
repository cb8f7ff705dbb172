// Resource limits of the config core (docs/config.md "Limits"): a few KB of hostile YAML or of
// interpolations must stop with an error naming the file and the key, not exhaust memory or time.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"

namespace bignlp::config {
namespace {

ConfigNode load(const std::string& text, const std::string& name) {
  YamlLoadOptions o;
  o.display_name = name;
  return load_yaml_string(text, o);
}

// The "billion laughs" document: nine levels of nine aliases, 9^9 strings, under 1 KB of text.
std::string alias_bomb() {
  std::string t = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  const std::string names = "abcdefghi";
  for (std::size_t i = 1; i < names.size(); ++i) {
    const char p = names[i - 1];
    t += fmt::format("{0}: &{0} [*{1},*{1},*{1},*{1},*{1},*{1},*{1},*{1},*{1}]\n", names[i], p);
  }
  return t;
}

TEST(ConfigLimits, YamlAliasBombStopsWithTheFileAndKey) {
  const std::string text = alias_bomb();
  ASSERT_LT(text.size(), 4096u);
  try {
    load(text, "conf/bomb.yaml");
    FAIL() << "an alias bomb loaded";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("conf/bomb.yaml:", 0), 0u) << m;
    EXPECT_NE(m.find("more than 1000000 nodes"), std::string::npos) << m;
    // The key path of the alias that crossed the limit (a list slot under one of the levels).
    EXPECT_TRUE(m.find(": f.") != std::string::npos || m.find(": g.") != std::string::npos ||
                m.find(": h.") != std::string::npos || m.find(": i.") != std::string::npos)
        << m;
  }
}

TEST(ConfigLimits, OrdinaryAliasesAndMergeKeysStillLoad) {
  const ConfigNode n = load("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3, z: 4}\nl: [*b, *b]\n", "ok.yaml");
  EXPECT_EQ(n.find_path("c.x")->as_int(), 1);
  EXPECT_EQ(n.find_path("c.y")->as_int(), 3);
  EXPECT_EQ(n.find("c")->keys(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(n.find_path("l.1.y")->as_int(), 2);
}

TEST(ConfigLimits, DuplicateKeysInALargeMappingAreFoundByHash) {
  // 300 000 keys: a scan of every earlier key per key (the old check) takes minutes here.
  std::string text;
  const int n = 300000;
  for (int i = 0; i < n; ++i) text += fmt::format("k{}: {}\n", i, i);
  const ConfigNode big = load(text, "big.yaml");
  EXPECT_EQ(big.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(big.find("k299999")->as_int(), 299999);
  EXPECT_EQ(big.key_at(12345), "k12345");
  text += "k17: again\n";
  try {
    load(text, "big.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("big.yaml:{}:1: <root>: duplicate key 'k17' (first defined at line "
                                                     "18)",
                                                     n + 1)),
              std::string::npos)
        << e.what();
  }
}

std::string doubling(const char* first, int levels) {
  std::string t = fmt::format("a0: {}\n", first);
  for (int i = 1; i <= levels; ++i) t += fmt::format("a{0}: ${{a{1}}}${{a{1}}}\n", i, i - 1);
  return t;
}

TEST(ConfigLimits, DoublingInterpolationsStopWithTheFileAndKey) {
  // Text doubling: "xx...x" of 2^40 characters.
  {
    ConfigNode n = load(doubling("xxxxxxxxxxxxxxxx", 40), "conf/double.yaml");
    try {
      resolve_in_place(n, ResolverRegistry::with_builtins());
      FAIL() << "a doubling interpolation resolved";
    } catch (const InterpolationError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind("conf/double.yaml:", 0), 0u) << m;
      EXPECT_NE(m.find(": a"), std::string::npos) << m;  // the key
      EXPECT_NE(m.find("grows past 16 MiB"), std::string::npos) << m;
    }
  }
  // A few levels are fine.
  ConfigNode ok = load(doubling("x", 10), "ok.yaml");
  resolve_in_place(ok, ResolverRegistry::with_builtins());
  EXPECT_EQ(ok.find("a10")->as_string(), std::string(1024, 'x'));
}

}  // namespace
}  // namespace bignlp::config
