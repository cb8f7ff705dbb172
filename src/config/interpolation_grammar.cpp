#include "interpolation_grammar.h"

#include <fmt/format.h>

namespace bignlp::config::grammar {
namespace {

using lexer::is_ws;

// Characters that may not appear in an INTER_KEY token.
bool is_inter_key_char(char c) { return std::string_view("\\{}()[]:. \t'\"").find(c) == std::string_view::npos; }

std::string show(char c) {
  if (c == '\0') return "end of input";
  return fmt::format("'{}'", c);
}

// Nesting deeper than this (interpolations, lists, dicts, quotes) is refused instead of recursing
// without bound.
constexpr int kMaxDepth = 100;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s), lex_(s, lexer::Dialect::kOmegaConf) {}

  Text text() {
    Text t;
    std::string lit;
    auto flush = [&] {
      if (!lit.empty()) t.parts.push_back(TextPart{std::move(lit), nullptr});
      lit.clear();
    };
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\\') {
        const std::size_t k = run_of('\\', pos_);
        if (starts_with_at(pos_ + k, "${")) {
          lit.append(k / 2, '\\');
          if (k % 2 == 1) {
            lit += "${";
            pos_ += k + 2;
          } else {
            pos_ += k;
            flush();
            t.parts.push_back(TextPart{{}, interpolation()});
          }
        } else {
          lit.append(k, '\\');
          pos_ += k;
        }
      } else if (starts_with_at(pos_, "${")) {
        flush();
        t.parts.push_back(TextPart{{}, interpolation()});
      } else {
        lit += c;
        ++pos_;
      }
    }
    flush();
    return t;
  }

  Element single_element() {
    Element e = element(/*top=*/true);
    if (e.kind == Element::Kind::kEmpty) fail(fmt::format("expected a value, got {}", show(peek())));
    if (pos_ < s_.size()) fail(fmt::format("unexpected {} after the value", show(peek())));
    return e;
  }

 private:
  std::string_view s_;
  lexer::ScalarLexer lex_;
  std::size_t pos_ = 0;
  int depth_ = 0;

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail(fmt::format("nested more than {} levels deep", kMaxDepth));
    }
    ~Nest() { --p.depth_; }
  };

  [[noreturn]] void fail(const std::string& msg) const { throw GrammarError(msg, pos_); }
  [[noreturn]] void fail_at(const std::string& msg, std::size_t at) const { throw GrammarError(msg, at); }

  char peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  bool starts_with_at(std::size_t at, std::string_view w) const { return s_.substr(std::min(at, s_.size())).starts_with(w); }
  std::size_t run_of(char c, std::size_t at) const {
    std::size_t k = 0;
    while (at + k < s_.size() && s_[at + k] == c) ++k;
    return k;
  }
  void skip_ws() { pos_ += lex_.ws_len(pos_); }

  // ---- interpolation mode -------------------------------------------------------------------
  struct Item {
    enum Kind { kDot, kOpen, kClose, kId, kKey, kInterp } kind;
    std::string text;
    InterpPtr interp;
    std::size_t at;
  };

  InterpPtr interpolation() {
    Nest nest(*this);
    const std::size_t start = pos_;
    pos_ += 2;  // "${"
    skip_ws();
    auto result = std::make_shared<Interp>();
    std::vector<Item> items;
    for (;;) {
      if (pos_ >= s_.size()) fail_at(fmt::format("unterminated interpolation '{}' (missing '}}')", s_.substr(start)), pos_);
      const char c = s_[pos_];
      if (c == '}') {
        ++pos_;
        break;
      }
      if (is_ws(c)) {
        const std::size_t k = lex_.ws_len(pos_);
        const char after = pos_ + k < s_.size() ? s_[pos_ + k] : '\0';
        if (after == '}' || after == ':') {
          pos_ += k;
          continue;
        }
        fail("whitespace is not allowed inside an interpolation key");
      }
      if (c == ':') {
        ++pos_;
        skip_ws();
        resolver_name(items, *result, start);
        result->args = sequence('}');
        result->source = std::string(s_.substr(start, pos_ - start));
        return result;
      }
      if (starts_with_at(pos_, "${")) {
        const std::size_t at = pos_;
        items.push_back(Item{Item::kInterp, {}, interpolation(), at});
        continue;
      }
      if (c == '.') {
        items.push_back(Item{Item::kDot, ".", nullptr, pos_++});
        continue;
      }
      if (c == '[') {
        items.push_back(Item{Item::kOpen, "[", nullptr, pos_++});
        continue;
      }
      if (c == ']') {
        items.push_back(Item{Item::kClose, "]", nullptr, pos_++});
        continue;
      }
      const std::size_t id_len = lex_.id_len(pos_);
      std::size_t key_len = 0;
      while (pos_ + key_len < s_.size() && is_inter_key_char(s_[pos_ + key_len]) &&
             !starts_with_at(pos_ + key_len, "${"))
        ++key_len;
      // A key glued to a nested interpolation ("a${b}") yields two adjacent key tokens, which the
      // shape check below rejects, as OmegaConf's grammar does.
      if (id_len == 0 && key_len == 0) fail(fmt::format("unexpected {} in interpolation", show(c)));
      if (key_len > id_len) {
        items.push_back(Item{Item::kKey, std::string(s_.substr(pos_, key_len)), nullptr, pos_});
        pos_ += key_len;
      } else {
        items.push_back(Item{Item::kId, std::string(s_.substr(pos_, id_len)), nullptr, pos_});
        pos_ += id_len;
      }
    }
    node_key(items, *result, start);
    result->source = std::string(s_.substr(start, pos_ - start));
    return result;
  }

  static bool is_key_item(const Item& it) {
    return it.kind == Item::kId || it.kind == Item::kKey || it.kind == Item::kInterp;
  }
  static KeySegment to_segment(const Item& it) { return KeySegment{it.text, it.interp}; }

  void node_key(const std::vector<Item>& items, Interp& out, std::size_t start) {
    std::size_t i = 0;
    while (i < items.size() && items[i].kind == Item::kDot) ++i;
    out.dots = static_cast<int>(i);
    if (i == items.size()) fail_at(fmt::format("empty interpolation key in '{}'", s_.substr(start, pos_ - start)), start);
    bool first = true;
    while (i < items.size()) {
      const Item& it = items[i];
      if (it.kind == Item::kOpen) {
        if (i + 2 >= items.size()) fail_at("unterminated '[' in interpolation key", it.at);
        if (!is_key_item(items[i + 1]) || items[i + 2].kind != Item::kClose)
          fail_at("expected a key between '[' and ']'", it.at);
        out.key.push_back(to_segment(items[i + 1]));
        i += 3;
      } else if (first && is_key_item(it)) {
        out.key.push_back(to_segment(it));
        i += 1;
      } else if (!first && it.kind == Item::kDot) {
        if (i + 1 >= items.size() || !is_key_item(items[i + 1])) fail_at("expected a key after '.'", it.at);
        out.key.push_back(to_segment(items[i + 1]));
        i += 2;
      } else {
        fail_at(fmt::format("unexpected '{}' in interpolation key", it.kind == Item::kInterp ? "${" : it.text), it.at);
      }
      first = false;
    }
  }

  void resolver_name(const std::vector<Item>& items, Interp& out, std::size_t start) {
    out.is_resolver = true;
    if (items.empty()) fail_at("missing resolver name before ':'", start);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Item& it = items[i];
      const bool want_name = i % 2 == 0;
      if (want_name) {
        if (it.kind != Item::kId && it.kind != Item::kInterp)
          fail_at(fmt::format("invalid resolver name (unexpected '{}')", it.kind == Item::kInterp ? "${" : it.text),
                  it.at);
        out.name.push_back(to_segment(it));
      } else if (it.kind != Item::kDot) {
        fail_at(fmt::format("invalid resolver name (unexpected '{}')", it.kind == Item::kInterp ? "${" : it.text), it.at);
      }
    }
    if (items.size() % 2 == 0) fail_at("invalid resolver name (ends with '.')", items.back().at);
  }

  // ---- value mode -----------------------------------------------------------------------------
  // True (without consuming) if the input continues with WS? <c>.
  bool at_ws_then(char c) const {
    const std::size_t k = lex_.ws_len(pos_);
    return pos_ + k < s_.size() && s_[pos_ + k] == c;
  }
  void consume_ws_then(char c) {
    skip_ws();
    if (peek() != c) fail(fmt::format("expected '{}', got {}", c, show(peek())));
    ++pos_;
  }

  std::vector<Element> sequence(char closer) {
    std::vector<Element> out;
    if (at_ws_then(closer)) {
      consume_ws_then(closer);
      return out;
    }
    for (;;) {
      Element e = element(false);
      out.push_back(std::move(e));
      if (at_ws_then(',')) {
        consume_ws_then(',');
        skip_ws();
        if (at_ws_then(closer)) {  // trailing comma: one more empty element
          out.push_back(Element{});
          consume_ws_then(closer);
          return out;
        }
        continue;
      }
      if (at_ws_then(closer)) {
        consume_ws_then(closer);
        return out;
      }
      if (pos_ >= s_.size()) fail(fmt::format("missing '{}'", closer));
      fail(fmt::format("unexpected {} (expected ',' or '{}')", show(s_[pos_]), closer));
    }
  }

  Element element(bool top) {
    Nest nest(*this);
    Element e;
    if (!top && (at_ws_then(',') || at_ws_then('}') || at_ws_then(']'))) return e;  // empty element
    const char c = peek();
    if (c == '\'' || c == '"') {
      e.kind = Element::Kind::kQuoted;
      e.quoted = quoted(c);
      return e;
    }
    if (c == '[') {
      ++pos_;
      skip_ws();
      e.kind = Element::Kind::kList;
      e.items = sequence(']');
      return e;
    }
    if (c == '{' ) {
      ++pos_;
      skip_ws();
      e.kind = Element::Kind::kDict;
      if (at_ws_then('}')) {
        consume_ws_then('}');
        return e;
      }
      for (;;) {
        std::vector<Token> key = primitive_tokens(/*dict_key=*/true);
        if (key.empty()) fail(fmt::format("expected a dict key, got {}", show(peek())));
        if (!at_ws_then(':')) fail(fmt::format("expected ':' after dict key, got {}", show(peek())));
        consume_ws_then(':');
        skip_ws();
        Element v = element(false);
        if (v.kind == Element::Kind::kEmpty) fail(fmt::format("expected a value after ':', got {}", show(peek())));
        e.entries.push_back(DictEntry{std::move(key), std::move(v)});
        if (at_ws_then(',')) {
          consume_ws_then(',');
          skip_ws();
          continue;
        }
        if (at_ws_then('}')) {
          consume_ws_then('}');
          return e;
        }
        fail(fmt::format("unexpected {} in dict (expected ',' or '}}')", show(peek())));
      }
    }
    e.kind = Element::Kind::kPrimitive;
    e.tokens = primitive_tokens(false);
    if (e.tokens.empty()) {
      if (pos_ >= s_.size()) fail("unexpected end of input (expected a value)");
      fail(fmt::format("unexpected {}", show(peek())));
    }
    return e;
  }

  Text quoted(char q) {
    const std::size_t start = pos_;
    ++pos_;
    Text t;
    std::string lit;
    auto flush = [&] {
      if (!lit.empty()) t.parts.push_back(TextPart{std::move(lit), nullptr});
      lit.clear();
    };
    for (;;) {
      if (pos_ >= s_.size()) fail_at(fmt::format("unterminated quoted string (missing closing {})", q), start);
      const char c = s_[pos_];
      if (c == q) {
        ++pos_;
        break;
      }
      if (c == '\\') {
        const std::size_t k = run_of('\\', pos_);
        const char next = pos_ + k < s_.size() ? s_[pos_ + k] : '\0';
        if (next == q) {
          lit.append((k - k % 2) / 2, '\\');
          if (k % 2 == 1) {
            lit += q;
            pos_ += k + 1;
          } else {
            pos_ += k;
          }
        } else if (starts_with_at(pos_ + k, "${")) {
          lit.append(k / 2, '\\');
          if (k % 2 == 1) {
            lit += "${";
            pos_ += k + 2;
          } else {
            pos_ += k;
          }
        } else {
          lit.append(k, '\\');
          pos_ += k;
        }
        continue;
      }
      if (starts_with_at(pos_, "${")) {
        flush();
        t.parts.push_back(TextPart{{}, interpolation()});
        continue;
      }
      lit += c;
      ++pos_;
    }
    flush();
    return t;
  }

  std::vector<Token> primitive_tokens(bool dict_key) {
    std::vector<Token> out;
    for (;;) {
      if (pos_ >= s_.size()) return out;
      const char c = s_[pos_];
      if (is_ws(c)) {
        const std::size_t k = lex_.ws_len(pos_);
        const char after = pos_ + k < s_.size() ? s_[pos_ + k] : '\0';
        if (after == ',' || after == ']' || after == '}') return out;
        if (after == ':') {
          if (dict_key) return out;
          std::size_t end = pos_ + k + 1;
          end += lex_.ws_len(end);
          out.push_back(Token{TokenType::kColon, std::string(s_.substr(pos_, end - pos_)), nullptr});
          pos_ = end;
          continue;
        }
        out.push_back(Token{TokenType::kWs, std::string(s_.substr(pos_, k)), nullptr});
        pos_ += k;
        continue;
      }
      if (c == ',' || c == ']' || c == '}' || c == '[' || c == '{' || c == '\'' || c == '"') return out;
      if (c == ':') {
        if (dict_key) return out;
        std::size_t end = pos_ + 1;
        end += lex_.ws_len(end);
        out.push_back(Token{TokenType::kColon, std::string(s_.substr(pos_, end - pos_)), nullptr});
        pos_ = end;
        continue;
      }
      if (starts_with_at(pos_, "${")) {
        if (dict_key) fail("interpolations are not allowed in dict keys");
        out.push_back(Token{TokenType::kInterp, {}, interpolation()});
        continue;
      }
      if (const std::size_t esc = lex_.esc_len(pos_)) {
        out.push_back(Token{TokenType::kEsc, std::string(s_.substr(pos_, esc)), nullptr});
        pos_ += esc;
        continue;
      }
      const lexer::Match m = lex_.longest_scalar(pos_);
      if (m.length == 0) fail(fmt::format("unexpected {} (quote the value or escape it with '\\')", show(c)));
      out.push_back(Token{m.type, std::string(s_.substr(pos_, m.length)), nullptr});
      pos_ += m.length;
    }
  }
};

}  // namespace

Text parse_text(std::string_view value) { return Parser(value).text(); }

Element parse_single_element(std::string_view value) { return Parser(value).single_element(); }

}  // namespace bignlp::config::grammar
