#include "bignlp/launch/template.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::launch {

TemplateContext& TemplateContext::set(const std::string& name, std::string value) {
  values_[name] = std::move(value);
  return *this;
}
TemplateContext& TemplateContext::set(const std::string& name, bool value) {
  values_[name] = value;
  return *this;
}
TemplateContext& TemplateContext::set(const std::string& name, std::vector<TemplateContext> items) {
  values_[name] = std::move(items);
  return *this;
}
const TemplateValue* TemplateContext::find(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

namespace {

enum class TokenKind { kText, kVariable, kSection, kInverted, kClose };

struct Token {
  TokenKind kind;
  std::string text;  // literal text, or the tag's name
  int line;
};

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits the template into tokens, dropping lines that hold only a section tag or a comment.
std::vector<Token> tokenize(std::string_view text, std::string_view name) {
  std::vector<Token> out;
  std::size_t pos = 0;
  int line = 1;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    const std::size_t end = eol == std::string_view::npos ? text.size() : eol + 1;
    const std::string_view ln = text.substr(pos, end - pos);
    // A standalone tag line: blanks, one {{#x}}/{{^x}}/{{/x}}/{{!x}}, blanks, newline.
    const std::string_view body = trim_ws(ln.substr(0, ln.size() - (ln.ends_with('\n') ? 1 : 0)));
    if (body.size() > 4 && body.starts_with("{{") && body.ends_with("}}") &&
        body.find("{{", 2) == std::string_view::npos &&
        (body[2] == '#' || body[2] == '^' || body[2] == '/' || body[2] == '!')) {
      const std::string tag_name(trim_ws(body.substr(3, body.size() - 5)));
      if (body[2] == '#') out.push_back({TokenKind::kSection, tag_name, line});
      if (body[2] == '^') out.push_back({TokenKind::kInverted, tag_name, line});
      if (body[2] == '/') out.push_back({TokenKind::kClose, tag_name, line});
      pos = end;
      ++line;
      continue;
    }
    std::size_t p = 0;
    while (p < ln.size()) {
      const std::size_t open = ln.find("{{", p);
      if (open == std::string_view::npos) {
        out.push_back({TokenKind::kText, std::string(ln.substr(p)), line});
        break;
      }
      if (open > p) out.push_back({TokenKind::kText, std::string(ln.substr(p, open - p)), line});
      const std::size_t close = ln.find("}}", open + 2);
      if (close == std::string_view::npos) {
        throw RenderError(fmt::format("template '{}' line {}: '{{{{' without a closing '}}}}'", name, line));
      }
      const std::string_view tag = trim_ws(ln.substr(open + 2, close - open - 2));
      if (tag.empty()) throw RenderError(fmt::format("template '{}' line {}: empty tag '{{{{}}}}'", name, line));
      const std::string rest(trim_ws(tag.substr(1)));
      switch (tag[0]) {
        case '#': out.push_back({TokenKind::kSection, rest, line}); break;
        case '^': out.push_back({TokenKind::kInverted, rest, line}); break;
        case '/': out.push_back({TokenKind::kClose, rest, line}); break;
        case '!': break;
        default: out.push_back({TokenKind::kVariable, std::string(tag), line}); break;
      }
      p = close + 2;
    }
    pos = end;
    ++line;
  }
  return out;
}

using Scope = std::vector<const TemplateContext*>;

const TemplateValue& lookup(const Scope& scope, const Token& tok, std::string_view name) {
  for (auto it = scope.rbegin(); it != scope.rend(); ++it) {
    if (const TemplateValue* v = (*it)->find(tok.text)) return *v;
  }
  throw RenderError(fmt::format("template '{}' line {}: unknown name '{}'", name, tok.line, tok.text));
}

// Index of the matching close tag of the section opened at `open`.
std::size_t find_close(const std::vector<Token>& toks, std::size_t open, std::string_view name) {
  int depth = 0;
  for (std::size_t i = open + 1; i < toks.size(); ++i) {
    if (toks[i].kind == TokenKind::kSection || toks[i].kind == TokenKind::kInverted) ++depth;
    if (toks[i].kind == TokenKind::kClose) {
      if (depth == 0) {
        if (toks[i].text != toks[open].text) {
          throw RenderError(fmt::format("template '{}' line {}: '{{{{/{}}}}}' closes '{}' opened on line {}", name,
                                        toks[i].line, toks[i].text, toks[open].text, toks[open].line));
        }
        return i;
      }
      --depth;
    }
  }
  throw RenderError(fmt::format("template '{}' line {}: section '{}' is never closed", name, toks[open].line,
                                toks[open].text));
}

bool truthy(const TemplateValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return !s->empty();
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  return !std::get<std::vector<TemplateContext>>(v).empty();
}

void render_range(const std::vector<Token>& toks, std::size_t begin, std::size_t end, Scope& scope,
                  std::string_view name, std::string& out) {
  for (std::size_t i = begin; i < end; ++i) {
    const Token& tok = toks[i];
    switch (tok.kind) {
      case TokenKind::kText: out += tok.text; break;
      case TokenKind::kVariable: {
        const TemplateValue& v = lookup(scope, tok, name);
        if (const auto* s = std::get_if<std::string>(&v)) {
          out += *s;
        } else if (const auto* b = std::get_if<bool>(&v)) {
          out += *b ? "true" : "false";
        } else {
          throw RenderError(fmt::format("template '{}' line {}: '{}' is a list; use {{{{#{}}}}}...{{{{/{}}}}}", name,
                                        tok.line, tok.text, tok.text, tok.text));
        }
        break;
      }
      case TokenKind::kSection:
      case TokenKind::kInverted: {
        const std::size_t close = find_close(toks, i, name);
        const TemplateValue& v = lookup(scope, tok, name);
        if (tok.kind == TokenKind::kInverted) {
          if (!truthy(v)) render_range(toks, i + 1, close, scope, name, out);
        } else if (const auto* items = std::get_if<std::vector<TemplateContext>>(&v)) {
          for (const TemplateContext& item : *items) {
            scope.push_back(&item);
            render_range(toks, i + 1, close, scope, name, out);
            scope.pop_back();
          }
        } else if (truthy(v)) {
          render_range(toks, i + 1, close, scope, name, out);
        }
        i = close;
        break;
      }
      case TokenKind::kClose:
        throw RenderError(fmt::format("template '{}' line {}: '{{{{/{}}}}}' without an opening section", name,
                                      tok.line, tok.text));
    }
  }
}

}  // namespace

std::string render_template(std::string_view text, const TemplateContext& context, std::string_view template_name) {
  const std::vector<Token> toks = tokenize(text, template_name);
  std::string out;
  Scope scope{&context};
  render_range(toks, 0, toks.size(), scope, template_name, out);
  return out;
}

}  // namespace bignlp::launch
