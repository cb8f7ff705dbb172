#include "bignlp/config/interpolate.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "bignlp/config/yaml.h"

namespace bignlp::config {
namespace {

ResolverRegistry registry() {
  ResolverRegistry r = ResolverRegistry::with_builtins();
  r.set_environment([](std::string_view name) -> std::optional<std::string> {
    static const std::map<std::string, std::string, std::less<>> env = {
        {"USER", "alice"}, {"PORT", "3308"}, {"EMPTY", ""}, {"LIST", "[1, 2]"}};
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  r.add("id", [](const std::vector<ConfigNode>& a, ResolverContext&) -> ConfigNode {
    if (a.size() == 1) return a[0];
    ConfigNode l = ConfigNode::list();
    for (const auto& x : a) l.push_back(x);
    return l;
  });
  return r;
}

// Resolves `value` placed at key v of a small config and returns Python str() + kind.
std::string eval(const std::string& value, const std::string& extra = "") {
  ConfigNode root = load_yaml_string("x: 5\ns: str\nf: 1.5\nnone: null\nd: {b: 1, b-c: 2, $y: 3}\nl: [10, 20, 30]\n" +
                                     extra, {});
  root.set("v", ConfigNode::string(value));
  const auto v = select(root, "v", registry());
  return fmt::format("{}:{}", kind_name(v->kind()), v->to_python_str());
}

TEST(InterpolationTest, NodeInterpolationKeepsTheTargetType) {
  EXPECT_EQ(eval("${x}"), "int:5");
  EXPECT_EQ(eval("${ x }"), "int:5");
  EXPECT_EQ(eval("${f}"), "float:1.5");
  EXPECT_EQ(eval("${none}"), "null:None");
  EXPECT_EQ(eval("${d}"), "dict:{'b': 1, 'b-c': 2, '$y': 3}");
  EXPECT_EQ(eval("${d.b-c}"), "int:2");
  EXPECT_EQ(eval("${d.$y}"), "int:3");
  EXPECT_EQ(eval("${d[b]}"), "int:1");
  EXPECT_EQ(eval("${[d].b}"), "int:1");
  EXPECT_EQ(eval("${l.1}"), "int:20");
  EXPECT_EQ(eval("${l[2]}"), "int:30");
  EXPECT_EQ(eval("${.x}"), "int:5");  // at the top level '.' is the root
}

TEST(InterpolationTest, StringInterpolationUsesPythonStr) {
  EXPECT_EQ(eval("a_${x}_${f}"), "string:a_5_1.5");
  EXPECT_EQ(eval("${none}/${d}"), "string:None/{'b': 1, 'b-c': 2, '$y': 3}");
  EXPECT_EQ(eval(" ${x}"), "string: 5");
  EXPECT_EQ(eval("${x}}"), "string:5}");
  EXPECT_EQ(eval("$$${x}"), "string:$$5");
  EXPECT_EQ(eval("${b}", "b: true\n"), "bool:True");
  EXPECT_EQ(eval("t${b}", "b: true\n"), "string:tTrue");
}

TEST(InterpolationTest, EscapesFollowTheBackslashRules) {
  EXPECT_EQ(eval("\\${x}"), "string:${x}");
  EXPECT_EQ(eval("\\\\${x}"), "string:\\5");
  EXPECT_EQ(eval("\\\\\\${x}"), "string:\\${x}");
  EXPECT_EQ(eval("C:\\foo_${s}"), "string:C:\\foo_str");
  EXPECT_EQ(eval("C:\\\\foo_${s}"), "string:C:\\\\foo_str");
}

TEST(InterpolationTest, RelativeAndNestedInterpolations) {
  ConfigNode root = load_yaml_string(
      "a:\n  b:\n    x: 1\n    y: ${.x}\n    z: ${..w}\n  w: 2\nlst: [1, '${.0}', '${..a.w}']\n"
      "opts: {p: 10, q: 20}\nchoice: q\nref: .opts\npick: ${opts.${choice}}\npick2: ${opts[${choice}]}\n"
      "rel: ${${ref}.p}\nsrc: {x: 3, y: '${.x}'}\ndst: ${src}\n");
  resolve_in_place(root, registry());
  EXPECT_EQ(to_yaml(root),
            "a:\n  b:\n    x: 1\n    'y': 1\n    z: 2\n  w: 2\nlst:\n- 1\n- 1\n- 2\nopts:\n  p: 10\n  q: 20\nchoice: q\n"
            "ref: .opts\npick: 20\npick2: 20\nrel: 10\nsrc:\n  x: 3\n  'y': 3\ndst:\n  x: 3\n  'y': 3\n");
}

InterpolationErrorKind error_kind(const std::string& yaml, ResolveMode mode = ResolveMode::kStrict) {
  ConfigNode root = load_yaml_string(yaml);
  try {
    ResolveOptions opt;
    opt.mode = mode;
    resolve_in_place(root, registry(), opt);
  } catch (const InterpolationError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error for: " << yaml;
  return InterpolationErrorKind::kGrammar;
}

TEST(InterpolationTest, ErrorKinds) {
  EXPECT_EQ(error_kind("a: ${nope}\n"), InterpolationErrorKind::kKeyNotFound);
  EXPECT_EQ(error_kind("l: [1]\na: ${l.5}\n"), InterpolationErrorKind::kKeyNotFound);
  EXPECT_EQ(error_kind("a: {b: '${...x}'}\n"), InterpolationErrorKind::kKeyNotFound);
  EXPECT_EQ(error_kind("l: [1]\na: ${l.x}\n"), InterpolationErrorKind::kResolution);
  EXPECT_EQ(error_kind("s: 1\na: ${s.x}\n"), InterpolationErrorKind::kResolution);
  EXPECT_EQ(error_kind("i: 2\nl: {2: a}\na: ${l.${i}}\n"), InterpolationErrorKind::kResolution);
  EXPECT_EQ(error_kind("a: ${b}\nb: ${a}\n"), InterpolationErrorKind::kCycle);
  EXPECT_EQ(error_kind("a: ${a}\n"), InterpolationErrorKind::kCycle);
  EXPECT_EQ(error_kind("a: {b: '${a}'}\n"), InterpolationErrorKind::kCycle);
  EXPECT_EQ(error_kind("a: ${foo:1}\n"), InterpolationErrorKind::kUnsupportedResolver);
  EXPECT_EQ(error_kind("a: ${divide_ceil:1,0}\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("a: ${oc.env:NOT_SET_ANYWHERE}\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("m: ???\na: ${m}\n"), InterpolationErrorKind::kToMissing);
  EXPECT_EQ(error_kind("m: ???\na: x_${m}\n"), InterpolationErrorKind::kToMissing);
}

TEST(InterpolationTest, HydraModeWritesMissingAndReinterpretsEscapes) {
  ConfigNode root = load_yaml_string("m: ???\na: ${m}\nb: pre_${m}\nx: 1\nesc: \\${x}\nafter: ${esc}\n");
  resolve_in_place(root, registry());
  EXPECT_EQ(to_yaml(root), "m: ???\na: ???\nb: ???\nx: 1\nesc: ${x}\nafter: 1\n");
  ConfigNode strict = load_yaml_string("x: 1\nesc: \\${x}\nafter: ${esc}\n");
  ResolveOptions opt;
  opt.mode = ResolveMode::kStrict;
  resolve_in_place(strict, registry(), opt);
  EXPECT_EQ(to_yaml(strict), "x: 1\nesc: ${x}\nafter: ${x}\n");
}

TEST(InterpolationTest, ErrorMessagesNameLocationKeyAndHint) {
  YamlLoadOptions opt;
  opt.display_name = "conf/config.yaml";
  ConfigNode root = load_yaml_string("launcher_scripts_path: /x\ndata_dir: ${launcher_scripts_pat}/data\n", opt);
  try {
    resolve_in_place(root, registry());
    FAIL();
  } catch (const InterpolationError& e) {
    EXPECT_STREQ(e.what(),
                 "conf/config.yaml:2:11: data_dir: Interpolation key 'launcher_scripts_pat' not found (did you mean "
                 "'launcher_scripts_path'?) in '${launcher_scripts_pat}/data'");
  }
}

TEST(InterpolationTest, ResolverArgumentsAreTypedLikeOmegaConf) {
  EXPECT_EQ(eval("${id:1_000}"), "int:1000");
  EXPECT_EQ(eval("${id:1_000_}"), "string:1_000_");
  EXPECT_EQ(eval("${id:007}"), "string:007");
  EXPECT_EQ(eval("${id:1.1_1}"), "float:1.11");
  EXPECT_EQ(eval("${id:1_0e1_0}"), "float:100000000000.0");
  EXPECT_EQ(eval("${id:-INF}"), "float:-inf");
  EXPECT_EQ(eval("${id:None}"), "string:None");
  EXPECT_EQ(eval("${id:TrUe}"), "bool:True");
  EXPECT_EQ(eval("${id:NULL}"), "null:None");
  EXPECT_EQ(eval("${id:  a  b  }"), "string:a  b");
  EXPECT_EQ(eval("${id:a, b c}"), "list:['a', 'b c']");
  EXPECT_EQ(eval("${id:a\\,b}"), "string:a,b");
  EXPECT_EQ(eval("${id:'a\\'b'}"), "string:a'b");
  EXPECT_EQ(eval("${id:'a\\\\'}"), "string:a\\");
  EXPECT_EQ(eval("${id:'${x}'}"), "string:5");
  EXPECT_EQ(eval("${id:'x${id:'y'}z'}"), "string:xyz");
  EXPECT_EQ(eval("${id:${x}}"), "int:5");
  EXPECT_EQ(eval("${id:${x}${x}}"), "string:55");
  EXPECT_EQ(eval("${id:[a, [b, c], {d: e}]}"), "list:['a', ['b', 'c'], {'d': 'e'}]");
  EXPECT_EQ(eval("${id:{a: 1, b:: b}}"), "dict:{'a': 1, 'b': ': b'}");
  EXPECT_EQ(eval("${id:[1,,2]}"), "list:[1, '', 2]");
  EXPECT_EQ(eval("${id:a:b}"), "string:a:b");
  EXPECT_EQ(eval("${id:}"), "list:[]");
}

TEST(InterpolationTest, GrammarErrorsAreReportedWithACaret) {
  for (const char* bad : {"${x", "${}", "${.}", "${a .b}", "${id:a=b}", "${id:'x' y}", "${id:{a:}}", "${id:é}",
                          "${oc_${x}:a}", "${te st:x}", "${0:x}", "${id:\"}"}) {
    EXPECT_THROW(validate_interpolation(bad), InterpolationError) << bad;
  }
  try {
    validate_interpolation("${a .b}");
    FAIL();
  } catch (const InterpolationError& e) {
    EXPECT_STREQ(e.what(),
                 "malformed interpolation: whitespace is not allowed inside an interpolation key\n    ${a .b}\n       ^");
  }
  EXPECT_NO_THROW(validate_interpolation("${oc.env:HOME,/tmp}/${a.b[0]}_${..c}"));
}

TEST(InterpolationTest, OcEnv) {
  EXPECT_EQ(eval("${oc.env:USER}"), "string:alice");
  EXPECT_EQ(eval("${oc.env:PORT}"), "string:3308");
  EXPECT_EQ(eval("${oc.env:EMPTY}"), "string:");
  EXPECT_EQ(eval("${oc.env:NOPE,123}"), "string:123");
  EXPECT_EQ(eval("${oc.env:NOPE,true}"), "string:True");
  EXPECT_EQ(eval("${oc.env:NOPE,null}"), "null:None");
  EXPECT_EQ(eval("${oc.env:NOPE,${f}}"), "string:1.5");
  EXPECT_EQ(eval("${oc.decode:${oc.env:PORT}}"), "int:3308");
}

TEST(InterpolationTest, OcSelectDecodeCreateDictKeysValues) {
  EXPECT_EQ(eval("${oc.select:d.b}"), "int:1");
  EXPECT_EQ(eval("${oc.select:nope,fallback}"), "string:fallback");
  EXPECT_EQ(eval("${oc.select:nope}"), "null:None");
  EXPECT_EQ(eval("${oc.select:none,fallback}"), "null:None");
  EXPECT_EQ(eval("${oc.select:m,fb}", "m: ???\n"), "string:fb");
  EXPECT_EQ(eval("${oc.decode:'[a, 1]'}"), "list:['a', 1]");
  EXPECT_EQ(eval("${oc.decode:'{a: 1}'}"), "dict:{'a': 1}");
  EXPECT_EQ(eval("${oc.decode:'  123  '}"), "string:  123  ");
  EXPECT_EQ(eval("${oc.decode:null}"), "null:None");
  EXPECT_EQ(eval("${oc.create:'{a: ${x}}'}"), "dict:{'a': 5}");
  EXPECT_EQ(eval("${oc.dict.keys:d}"), "list:['b', 'b-c', '$y']");
  EXPECT_EQ(eval("${oc.dict.values:d}"), "list:[1, 2, 3]");
  ConfigNode rel = load_yaml_string("g:\n  d: {p: 1, q: 2}\n  vals: ${oc.dict.values:.d}\n");
  resolve_in_place(rel, registry());
  EXPECT_EQ(rel.at("g.vals").to_python_str(), "[1, 2]");
  EXPECT_EQ(error_kind("a: ${oc.decode:1}\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("a: ${oc.dict.keys:l}\nl: [1]\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("a: ${oc.create:5}\n"), InterpolationErrorKind::kResolver);
}

TEST(InterpolationTest, NemoLauncherResolvers) {
  EXPECT_EQ(eval("${multiply:4, 768}"), "int:3072");
  EXPECT_EQ(eval("${multiply:2, ${f}}"), "float:3.0");
  EXPECT_EQ(eval("${divide_ceil:7, 2}"), "int:4");
  EXPECT_EQ(eval("${divide_ceil:-7, 2}"), "int:-3");
  EXPECT_EQ(eval("${divide_floor:-7, 2}"), "int:-4");
  EXPECT_EQ(eval("${divide_floor:7.5, 2}"), "int:3");
  EXPECT_EQ(eval("${multiply:ab, 2}"), "string:abab");  // Python's str * int
  EXPECT_EQ(error_kind("a: ${multiply:a, b}\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("a: ${multiply:a, 1.5}\n"), InterpolationErrorKind::kResolver);
  EXPECT_EQ(error_kind("a: ${divide_floor:1}\n"), InterpolationErrorKind::kResolver);
}

TEST(InterpolationTest, RegistryIsAnObjectWithAddAndReplace) {
  ResolverRegistry r;
  EXPECT_FALSE(r.contains("oc.env"));
  r.add("twice", [](const std::vector<ConfigNode>& a, ResolverContext&) { return ConfigNode::integer(a[0].as_int() * 2); });
  EXPECT_THROW(r.add("twice", nullptr), ConfigError);
  ConfigNode root = load_yaml_string("a: ${twice:21}\n");
  resolve_in_place(root, r);
  EXPECT_EQ(root.at("a").as_int(), 42);
  EXPECT_TRUE(ResolverRegistry::with_builtins().contains("divide_floor"));
}

TEST(InterpolationTest, ResolvedValuesKeepTheInterpolationsLocation) {
  YamlLoadOptions opt;
  opt.display_name = "c.yaml";
  ConfigNode root = load_yaml_string("h: 768\nffn: ${multiply:4, ${h}}\n", opt);
  resolve_in_place(root, registry());
  EXPECT_EQ(root.at("ffn").provenance().location(), "c.yaml:2:6");
  EXPECT_EQ(root.at("ffn").provenance().note, "${multiply:4, ${h}}");
}

}  // namespace
}  // namespace bignlp::config
