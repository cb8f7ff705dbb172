#include "bignlp/launch/template.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp::launch {
namespace {

TEST(Template, SubstitutesVariables) {
  TemplateContext c;
  c.set("a", "x").set("b", "y");
  EXPECT_EQ(render_template("{{a}}-{{ b }}!", c, "t"), "x-y!");
}

TEST(Template, ListsRepeatWithElementScopeAndOuterLookup) {
  TemplateContext c;
  c.set("outer", "o");
  c.set("items", std::vector<TemplateContext>{TemplateContext().set("v", "1"), TemplateContext().set("v", "2")});
  EXPECT_EQ(render_template("{{#items}}[{{v}}{{outer}}]{{/items}}", c, "t"), "[1o][2o]");
}

TEST(Template, StandaloneTagLinesDisappear) {
  TemplateContext c;
  c.set("items", std::vector<TemplateContext>{TemplateContext().set("v", "a"), TemplateContext().set("v", "b")});
  c.set("flag", false);
  const std::string tmpl = "start\n{{! a comment }}\n{{#items}}\nline {{v}}\n{{/items}}\n  {{#flag}}  \nhidden\n{{/flag}}\nend\n";
  EXPECT_EQ(render_template(tmpl, c, "t"), "start\nline a\nline b\nend\n");
}

TEST(Template, FlagsTextAndInvertedSections) {
  TemplateContext c;
  c.set("yes", true).set("no", false).set("text", "t").set("empty", "").set("none", std::vector<TemplateContext>{});
  EXPECT_EQ(render_template("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{^no}}n{{/no}}{{#text}}{{text}}{{/text}}"
                            "{{#empty}}E{{/empty}}{{^empty}}e{{/empty}}{{^none}}0{{/none}}",
                            c, "t"),
            "Ynte0");
}

TEST(Template, ErrorsNameTemplateAndLine) {
  TemplateContext c;
  try {
    render_template("ok\n{{missing}}\n", c, "slurm.sbatch.tmpl");
    FAIL();
  } catch (const RenderError& e) {
    EXPECT_STREQ(e.what(), "template 'slurm.sbatch.tmpl' line 2: unknown name 'missing'");
  }
  c.set("s", true);
  EXPECT_THROW(render_template("{{#s}}open", c, "t"), RenderError);
  EXPECT_THROW(render_template("{{#s}}x{{/t}}", c, "t"), RenderError);
  EXPECT_THROW(render_template("x{{/s}}", c, "t"), RenderError);
  EXPECT_THROW(render_template("{{s", c, "t"), RenderError);
}

TEST(Template, ValuesAreInsertedVerbatimNotReinterpreted) {
  TemplateContext c;
  c.set("v", "{{v}} {{#x}}");
  EXPECT_EQ(render_template("[{{v}}]", c, "t"), "[{{v}} {{#x}}]");
}

}  // namespace
}  // namespace bignlp::launch
