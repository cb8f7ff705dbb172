#include "bignlp/config/yaml.h"

#include <gtest/gtest.h>

#include <cmath>

#include "bignlp/config/interpolate.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::config {
namespace {

struct TypingCase {
  const char* text;
  NodeKind kind;
  const char* python;  // Python str() of the value OmegaConf 2.2.2 loads
};

TEST(YamlTest, ScalarTypingFollowsOmegaConfYaml11Rules) {
  const TypingCase cases[] = {
      {"true", NodeKind::kBool, "True"},      {"False", NodeKind::kBool, "False"},   {"YES", NodeKind::kBool, "True"},
      {"no", NodeKind::kBool, "False"},       {"On", NodeKind::kBool, "True"},       {"off", NodeKind::kBool, "False"},
      {"tRue", NodeKind::kString, "tRue"},    {"y", NodeKind::kString, "y"},         {"n", NodeKind::kString, "n"},
      {"null", NodeKind::kNull, "None"},      {"~", NodeKind::kNull, "None"},        {"NULL", NodeKind::kNull, "None"},
      {"nUll", NodeKind::kString, "nUll"},    {"1_000", NodeKind::kInt, "1000"},     {"0x1F", NodeKind::kInt, "31"},
      {"017", NodeKind::kInt, "15"},          {"0b11", NodeKind::kInt, "3"},         {"1:30", NodeKind::kInt, "90"},
      {"190:20:30", NodeKind::kInt, "685230"}, {"0o17", NodeKind::kString, "0o17"}, {"+5", NodeKind::kInt, "5"},
      {"-0", NodeKind::kInt, "0"},            {"09", NodeKind::kString, "09"},       {"1.5", NodeKind::kFloat, "1.5"},
      {".5", NodeKind::kFloat, "0.5"},        {"1.", NodeKind::kFloat, "1.0"},       {"-2.5E+2", NodeKind::kFloat, "-250.0"},
      {"1_0.5", NodeKind::kFloat, "10.5"},    {"1e3", NodeKind::kFloat, "1000.0"},   {"2E-2", NodeKind::kFloat, "0.02"},
      {"1e+5", NodeKind::kFloat, "100000.0"}, {".inf", NodeKind::kFloat, "inf"},     {"-.Inf", NodeKind::kFloat, "-inf"},
      {"+.INF", NodeKind::kFloat, "inf"},     {".nan", NodeKind::kFloat, "nan"},     {"1:30.5", NodeKind::kFloat, "90.5"},
      {"6e-4", NodeKind::kFloat, "0.0006"},   {"2020-01-01", NodeKind::kString, "2020-01-01"},
      {"???", NodeKind::kMissing, "???"},     {"${a.b}", NodeKind::kString, "${a.b}"}, {"cost $5", NodeKind::kString, "cost $5"},
      {"inf", NodeKind::kString, "inf"},      {"1e", NodeKind::kString, "1e"},
  };
  for (const auto& c : cases) {
    const ConfigNode v = parse_yaml_scalar(c.text);
    EXPECT_EQ(v.kind(), c.kind) << c.text;
    EXPECT_EQ(v.to_python_str(), c.python) << c.text;
    // The same text as a mapping value through the loader.
    const ConfigNode doc = load_yaml_string(std::string("v: ") + c.text + "\n");
    EXPECT_EQ(doc.at("v").kind(), c.kind) << c.text;
  }
}

TEST(YamlTest, QuotedAndBlockScalarsAreStrings) {
  const ConfigNode d = load_yaml_string("a: '123'\nb: \"true\"\nc: 'null'\nd: |\n  1\ne: '??\?'\nf: !!str 12\ng: !!float 3\n");
  EXPECT_EQ(d.at("a").as_string(), "123");
  EXPECT_EQ(d.at("b").as_string(), "true");
  EXPECT_EQ(d.at("c").as_string(), "null");
  EXPECT_EQ(d.at("d").as_string(), "1\n");
  EXPECT_TRUE(d.at("e").is_missing());
  EXPECT_EQ(d.at("f").as_string(), "12");
  EXPECT_EQ(d.at("g").as_double(), 3.0);
}

TEST(YamlTest, EmptyValuesEmptyDocumentsAnchorsAndMergeKeys) {
  EXPECT_TRUE(load_yaml_string("").is_dict());
  EXPECT_TRUE(load_yaml_string("# only a comment\n").is_dict());
  const ConfigNode d = load_yaml_string("a:\nbase: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nr: *b\n");
  EXPECT_TRUE(d.at("a").is_null());
  EXPECT_EQ(to_yaml(d.at("m")), "x: 1\n'y': 3\n");
  EXPECT_EQ(d.at("r"), d.at("base"));
}

TEST(YamlTest, ProvenanceHasFileLineColumnAndKeyPath) {
  YamlLoadOptions opt;
  opt.display_name = "conf/training/gpt3/5b.yaml";
  opt.key_prefix = "training";
  const ConfigNode d = load_yaml_string("run:\n  name: x\nmodel:\n  layers: [1, 2]\n", opt);
  const Provenance& p = d.at("model.layers.1").provenance();
  EXPECT_EQ(p.file, "conf/training/gpt3/5b.yaml");
  EXPECT_EQ(p.line, 4);
  EXPECT_EQ(p.column, 15);
  EXPECT_EQ(p.key_path, "training.model.layers.1");
  EXPECT_EQ(d.at("run.name").provenance().location(), "conf/training/gpt3/5b.yaml:2:9");
}

TEST(YamlTest, ErrorsNameFileLineAndKey) {
  YamlLoadOptions opt;
  opt.display_name = "bad.yaml";
  try {
    (void)load_yaml_string("a: 1\na: 2\n", opt);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "bad.yaml:2:1: <root>: duplicate key 'a' (first defined at line 1)");
  }
  try {
    (void)load_yaml_string("a: [1, 2\n", opt);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "bad.yaml:2:1: malformed YAML: while parsing a flow sequence (line 1, column 4): did not find expected ',' or ']'");
  }
  try {
    (void)load_yaml_string("x:\n  y: ${a\n", opt);
    FAIL();
  } catch (const InterpolationError& e) {
    EXPECT_EQ(e.kind(), InterpolationErrorKind::kGrammar);
    EXPECT_EQ(std::string(e.what()).rfind("bad.yaml:2:6: x.y: malformed interpolation: ", 0), 0u) << e.what();
  }
  EXPECT_THROW((void)load_yaml_string("a: !!int x\n", opt), ConfigError);
  EXPECT_THROW((void)load_yaml_string("a: 99999999999999999999\n", opt), ConfigError);
  EXPECT_THROW((void)load_yaml_file("/nonexistent/x.yaml"), IoError);
}

TEST(YamlTest, EmitsOmegaConfToYamlShape) {
  const ConfigNode d = load_yaml_string(
      "s: '123'\nb: 'yes'\nn: 'null'\nt: '2020-01-01'\nh: '0x1F'\ncolon: 'a: b'\nurl: a:b\nhash: 'a #b'\n"
      "lead: ' x'\nempty: ''\nmissing: ???\ninterp: ${a}\nf1: 1e-5\nf2: 1.0\nbig: 1e16\ninf: .inf\nnan: .nan\n"
      "quote: \"it's\"\ntab: \"a\\tb\"\nml: \"l1\\nl2\"\nl: [1, [2, 3], {k: v}]\ned: {}\nel: []\nnested: {x: {y: 1}}\n");
  EXPECT_EQ(to_yaml(d),
            "s: '123'\nb: 'yes'\n'n': 'null'\nt: '2020-01-01'\nh: '0x1F'\ncolon: 'a: b'\nurl: a:b\nhash: 'a #b'\n"
            "lead: ' x'\nempty: ''\nmissing: ???\ninterp: ${a}\nf1: 1.0e-05\nf2: 1.0\nbig: 1.0e+16\n'inf': .inf\n"
            "'nan': .nan\nquote: it's\ntab: \"a\\tb\"\nml: 'l1\n\n  l2'\nl:\n- 1\n- - 2\n  - 3\n- k: v\ned: {}\nel: []\n"
            "nested:\n  x:\n    'y': 1\n");
  EXPECT_EQ(to_yaml(ConfigNode::dict()), "{}\n");
}

TEST(YamlTest, LongPlainStringsFoldAtWidth80LikePyYaml) {
  std::string words;
  for (int i = 0; i < 20; ++i) words += "word ";
  words += "x";
  ConfigNode d = ConfigNode::dict();
  d.set("a", ConfigNode::string(words));
  EXPECT_EQ(to_yaml(d),
            "a: word word word word word word word word word word word word word word word word\n  word word word "
            "word x\n");
}

TEST(YamlTest, JsonEmission) {
  const ConfigNode d = load_yaml_string("a: 1\nb: [x, 1.5, null, true]\nc: {}\nd: ???\ne: .inf\n");
  EXPECT_EQ(to_json(d, 0), "{\"a\": 1, \"b\": [\"x\", 1.5, null, true], \"c\": {}, \"d\": \"???\", \"e\": Infinity}");
  EXPECT_EQ(to_json(load_yaml_string("a: [1]\n")), "{\n  \"a\": [\n    1\n  ]\n}\n");
}

TEST(YamlTest, WriteYamlFileIsAtomicAndRoundTrips) {
  TempDir dir;
  const ConfigNode d = load_yaml_string("a: 1\nb: {c: '007', d: [1.5, ~]}\n");
  write_yaml_file(dir.path() / "sub" / "out.yaml", d);
  EXPECT_EQ(load_yaml_file(dir.path() / "sub" / "out.yaml"), d);
}

}  // namespace
}  // namespace bignlp::config
