#include "bignlp/config/override_parser.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp::config {
namespace {

// Python-str of the parsed value plus its kind.
std::string value_of(const std::string& text) {
  const Override o = parse_override(text);
  EXPECT_FALSE(o.is_sweep()) << text;
  return std::string(kind_name(o.value.kind())) + ":" + o.value.to_python_str();
}

TEST(OverrideParserTest, KeysPrefixesAndPackages) {
  Override o = parse_override("trainer.num_nodes=2", 3);
  EXPECT_EQ(o.type, OverrideType::kChange);
  EXPECT_EQ(o.key, "trainer.num_nodes");
  EXPECT_EQ(o.index, 3);
  EXPECT_EQ(parse_override("+a.b=1").type, OverrideType::kAdd);
  EXPECT_EQ(parse_override("++a.b=1").type, OverrideType::kForceAdd);
  o = parse_override("~a.b");
  EXPECT_EQ(o.type, OverrideType::kDelete);
  EXPECT_FALSE(o.has_value);
  EXPECT_TRUE(parse_override("~a.b=1").has_value);
  o = parse_override("db@backup=mysql");
  EXPECT_EQ(o.key, "db");
  EXPECT_EQ(*o.package, "backup");
  EXPECT_EQ(o.key_element(), "db@backup");
  o = parse_override("server/db@=sqlite");
  EXPECT_EQ(o.key, "server/db");
  EXPECT_EQ(*o.package, "");
  EXPECT_EQ(parse_override("list.0=5").key, "list.0");
  EXPECT_EQ(parse_override("a.b-c=1").key, "a.b-c");
  EXPECT_EQ(parse_override("$x.y=1").key, "$x.y");
  EXPECT_TRUE(parse_override("hydra.run.dir=x").is_hydra_override());
  EXPECT_TRUE(parse_override("hydra/job_logging=none").is_hydra_override());
  EXPECT_EQ(parse_override("choice=reverse").key, "choice");
}

TEST(OverrideParserTest, PrimitiveValues) {
  EXPECT_EQ(value_of("k="), "string:");
  EXPECT_EQ(value_of("k= \tvalue \t"), "string:value");
  EXPECT_EQ(value_of("k=value \t 123"), "string:value \t 123");
  EXPECT_EQ(value_of("k=null"), "null:None");
  EXPECT_EQ(value_of("k=NuLL"), "null:None");
  EXPECT_EQ(value_of("k=True"), "bool:True");
  EXPECT_EQ(value_of("k=fAlse"), "bool:False");
  EXPECT_EQ(value_of("k=10"), "int:10");
  EXPECT_EQ(value_of("k=1_000"), "int:1000");
  EXPECT_EQ(value_of("k=+1"), "int:1");
  EXPECT_EQ(value_of("k=007"), "string:007");
  EXPECT_EQ(value_of("k=3.14"), "float:3.14");
  EXPECT_EQ(value_of("k=1e-05"), "float:1e-05");
  EXPECT_EQ(value_of("k=inf"), "float:inf");
  EXPECT_EQ(value_of("k=-NaN"), "float:nan");
  EXPECT_EQ(value_of("k=."), "string:.");
  EXPECT_EQ(value_of("k=123abc"), "string:123abc");
  EXPECT_EQ(value_of("k=value-1.0"), "string:value-1.0");
  EXPECT_EQ(value_of("k=c:\\foo\\a-b.txt"), "string:c:\\foo\\a-b.txt");
  EXPECT_EQ(value_of("k=a\\,b\\ c\\=d\\(e\\)"), "string:a,b c=d(e)");
  EXPECT_EQ(value_of("k=${a.b}"), "string:${a.b}");
  EXPECT_EQ(value_of("k=xyz_${a}"), "string:xyz_${a}");
  EXPECT_EQ(value_of("k=${oc.env:USER,me}"), "string:${oc.env:USER,me}");
  EXPECT_EQ(value_of("k=/path/to/file.txt"), "string:/path/to/file.txt");
}

TEST(OverrideParserTest, QuotedValuesAreStrings) {
  EXPECT_EQ(value_of("k='1,2,3'"), "string:1,2,3");
  EXPECT_EQ(value_of("k='true'"), "string:true");
  EXPECT_EQ(value_of("k=\"null\""), "string:null");
  EXPECT_EQ(value_of("k='[1,2]'"), "string:[1,2]");
  EXPECT_EQ(value_of("k='${a}'"), "string:${a}");
  EXPECT_EQ(value_of("k='abc\\\\'"), "string:abc\\");
  EXPECT_EQ(value_of("k='foo \\\\\\'bar'"), "string:foo \\'bar");
  EXPECT_EQ(value_of("k='a\\b'"), "string:a\\b");
  EXPECT_EQ(value_of("k='foo\\\\bar'"), "string:foo\\\\bar");
  EXPECT_EQ(value_of("k=\"it's\""), "string:it's");
}

TEST(OverrideParserTest, ListsAndDicts) {
  EXPECT_EQ(value_of("k=[]"), "list:[]");
  EXPECT_EQ(value_of("k=[1, [a, b], {k: v}]"), "list:[1, ['a', 'b'], {'k': 'v'}]");
  EXPECT_EQ(value_of("k={a:10,b:{c:[1,2]}}"), "dict:{'a': 10, 'b': {'c': [1, 2]}}");
  EXPECT_EQ(value_of("k={white spaces: 1}"), "dict:{'white spaces': 1}");
  EXPECT_EQ(value_of("k={null: 1, 123: 2}"), "dict:{'None': 1, '123': 2}");
  EXPECT_EQ(value_of("k=[ 'a' , \"b\" ]"), "list:['a', 'b']");
}

TEST(OverrideParserTest, Sweeps) {
  Override o = parse_override("a=1,2,3");
  ASSERT_TRUE(o.is_sweep());
  EXPECT_EQ(o.sweep->kind, Sweep::Kind::kSimpleChoice);
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"1", "2", "3"}));
  o = parse_override("k=[a,b],[c,d]");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"[a,b]", "[c,d]"}));
  o = parse_override("k=choice('a','b')");
  EXPECT_EQ(o.sweep->kind, Sweep::Kind::kChoice);
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"'a'", "'b'"}));
  EXPECT_EQ(o.sweep->values[0].as_string(), "a");
  o = parse_override("k=range(1,4)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"1", "2", "3"}));
  o = parse_override("k=range(0,10,3.3)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"0.0", "3.3", "6.6", "9.9"}));
  o = parse_override("k=range(-5,step=-1)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"0", "-1", "-2", "-3", "-4"}));
  o = parse_override("k=range(start=1,stop=10,step=4)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"1", "5", "9"}));
  o = parse_override("k=choice(True,'True',1.1,'1.5')");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"True", "'True'", "1.1", "'1.5'"}));
  o = parse_override("k=sort(3,1,2)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"1", "2", "3"}));
  o = parse_override("k=sort(3,1,2,reverse=true)");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"3", "2", "1"}));
  o = parse_override("k=interval(0,1)");
  EXPECT_EQ(o.sweep->kind, Sweep::Kind::kInterval);
  o = parse_override("db=glob(*sql*,exclude=[oracle])");
  EXPECT_EQ(o.sweep->kind, Sweep::Kind::kGlob);
  EXPECT_EQ(o.sweep->glob_include, (std::vector<std::string>{"*sql*"}));
  EXPECT_EQ(o.sweep->glob_exclude, (std::vector<std::string>{"oracle"}));
  o = parse_override("k=tag(a,b,choice(1,2))");
  EXPECT_EQ(o.sweep->tags, (std::vector<std::string>{"a", "b"}));
}

TEST(OverrideParserTest, CastFunctions) {
  EXPECT_EQ(value_of("k=int(10.5)"), "int:10");
  EXPECT_EQ(value_of("k=int('10')"), "int:10");
  EXPECT_EQ(value_of("k=float(1)"), "float:1.0");
  EXPECT_EQ(value_of("k=str(10.0)"), "string:10.0");
  EXPECT_EQ(value_of("k=str(1e6)"), "string:1000000.0");
  EXPECT_EQ(value_of("k=str(true)"), "string:true");
  EXPECT_EQ(value_of("k=bool('TRUE')"), "bool:True");
  EXPECT_EQ(value_of("k=bool(0)"), "bool:False");
  EXPECT_EQ(value_of("k=int([1.5,'2'])"), "list:[1, 2]");
  EXPECT_EQ(value_of("k=extend_list(1,2)"), "list:[1, 2]");
  EXPECT_EQ(parse_override("k=extend_list(1,2)").type, OverrideType::kExtendList);
  const Override o = parse_override("k=int(choice('1','2'))");
  EXPECT_EQ(o.sweep->texts, (std::vector<std::string>{"1", "2"}));
}

std::string error_of(const std::string& text) {
  try {
    (void)parse_override(text);
  } catch (const OverrideError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(OverrideParserTest, ErrorsEchoTheOverrideWithACaret) {
  EXPECT_EQ(error_of("key=[]aa"),
            "Error parsing override 'key=[]aa'\n    key=[]aa\n          ^\nextraneous input 'aa' expecting <EOF>\n"
            "See docs/config.md#override-grammar (Hydra's override grammar) for details");
  for (const char* bad : {"key=[", "key={' abc ': 0}", "$foo/bar=x", "group@pkg1:pkg2=x", "=1", "key", "+key",
                          "k=choice()", "k=choice(choice(1,2))", "k=sort()", "k=bool('10')", "k=int('10.0')",
                          "k=int(inf)", "k='a'b", "k='unterminated", "k=range(1,step=0)", "k=nope(1)",
                          "k=range(start=1,2)", "k=a=b", "k={${x}:1}"}) {
    EXPECT_NE(error_of(bad), "<no error>") << bad;
  }
  EXPECT_NE(error_of("k=choice()").find("empty choice is not legal"), std::string::npos);
  EXPECT_NE(error_of("k=sort()").find("empty sort input"), std::string::npos);
  EXPECT_NE(error_of("k=bool('10')").find("Cannot cast '10' to bool"), std::string::npos);
}

TEST(OverrideParserTest, EscapeRoundTrips) {
  const std::string tricky = "a b,c:d=e(f)[g]{h}\\i";
  const std::string escaped = escape_override_value(tricky);
  EXPECT_EQ(parse_override("k=" + escaped).value.as_string(), tricky);
}

}  // namespace
}  // namespace bignlp::config
