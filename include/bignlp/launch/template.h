// A tiny template engine for job scripts (a subset of mustache).
//
//   {{name}}                 the value of `name` (text is inserted as is: values are prepared,
//                            and shell-quoted where needed, by the renderer, never here)
//   {{#name}}...{{/name}}    a list: the block once per element, with the element's values in
//                            scope; a flag: the block once when true; text: once when non-empty
//   {{^name}}...{{/name}}    the block once when `name` is false, empty or an empty list
//   {{! comment }}           nothing
// A line holding only a section tag or a comment (and blanks) disappears entirely, so templates
// can put tags on lines of their own. Names are looked up in the innermost element first, then
// outwards. Unknown names, unclosed or mismatched sections are RenderErrors naming the template
// and line: a template mistake never renders silently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bignlp::launch {

class TemplateContext;

/// A value in a template context: text, a flag, or a list of nested contexts.
using TemplateValue = std::variant<std::string, bool, std::vector<TemplateContext>>;

/// Named values for one template rendering (or one list element).
class TemplateContext {
 public:
  TemplateContext& set(const std::string& name, std::string value);
  TemplateContext& set(const std::string& name, const char* value) { return set(name, std::string(value)); }
  TemplateContext& set(const std::string& name, bool value);
  TemplateContext& set(const std::string& name, std::vector<TemplateContext> items);
  /// nullptr when `name` is not set here.
  const TemplateValue* find(std::string_view name) const;

 private:
  std::map<std::string, TemplateValue, std::less<>> values_;
};

/// Renders `text` (named `template_name` in error messages) with `context`. Pure.
std::string render_template(std::string_view text, const TemplateContext& context, std::string_view template_name);

}  // namespace bignlp::launch
