#include "bignlp/config/override_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#include "interpolation_grammar.h"
#include "pyformat.h"
#include "scalar_lexer.h"

namespace bignlp::config {
namespace {

constexpr const char* kGrammarDoc = "See docs/config.md#override-grammar (Hydra's override grammar) for details";

using lexer::is_id_start;
using lexer::is_ws;
using lexer::TokenType;
constexpr lexer::Dialect kHydra = lexer::Dialect::kHydra;
bool is_id_char(char c) { return lexer::is_id_char(c, kHydra); }

struct PVEntry;

// A parsed value before conversion: keeps what Hydra keeps (quoted strings, sweeps).
struct PV {
  enum Kind { kNode, kQuoted, kList, kDict, kChoice, kRange, kInterval, kGlob, kExtend };
  Kind kind = kNode;
  ConfigNode node;
  char quote = '\'';
  std::vector<PV> items;
  std::vector<PVEntry> entries;
  bool simple_form = false;
  bool shuffle = false;
  std::vector<std::string> tags;
  ConfigNode start, stop, step;  // range
  double i_start = 0, i_end = 0;
  std::vector<std::string> g_include, g_exclude;

  bool is_sweep() const { return kind == kChoice || kind == kRange || kind == kInterval || kind == kGlob; }
};

struct PVEntry {
  PV first;   // key
  PV second;  // value
};

PV node_pv(ConfigNode n) {
  PV v;
  v.node = std::move(n);
  return v;
}

__extension__ typedef __int128 i128;

// value = mantissa * 10^exp from Python's shortest repr of a finite double.
bool to_decimal(double v, i128& mantissa, int& exp) {
  if (!std::isfinite(v)) return false;
  std::string r = py::float_repr(v);
  bool neg = false;
  if (!r.empty() && r[0] == '-') {
    neg = true;
    r.erase(0, 1);
  }
  int e = 0;
  const auto epos = r.find('e');
  if (epos != std::string::npos) {
    e = std::atoi(r.c_str() + epos + 1);
    r.resize(epos);
  }
  i128 m = 0;
  int frac = 0;
  bool after_dot = false;
  for (char c : r) {
    if (c == '.') {
      after_dot = true;
      continue;
    }
    m = m * 10 + (c - '0');
    if (after_dot) ++frac;
    if (m > (static_cast<i128>(1) << 100)) return false;
  }
  mantissa = neg ? -m : m;
  exp = e - frac;
  return true;
}

bool decimal_pair(double a, double b, i128& am, i128& bm, int& emin) {
  int ae, be;
  if (!to_decimal(a, am, ae) || !to_decimal(b, bm, be)) return false;
  emin = std::min(ae, be);
  for (int k = ae; k > emin; --k) {
    if (am > (static_cast<i128>(1) << 100) || am < -(static_cast<i128>(1) << 100)) return false;
    am *= 10;
  }
  for (int k = be; k > emin; --k) {
    if (bm > (static_cast<i128>(1) << 100) || bm < -(static_cast<i128>(1) << 100)) return false;
    bm *= 10;
  }
  return true;
}

double decimal_to_double(i128 m, int exp) {
  const bool neg = m < 0;
  if (neg) m = -m;
  std::string digits;
  if (m == 0) digits = "0";
  while (m > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
    m /= 10;
  }
  const std::string text = (neg ? "-" : "") + digits + "e" + std::to_string(exp);
  return std::strtod(text.c_str(), nullptr);
}

struct Fail {
  std::string message;
  std::size_t at;
};

// The arguments of a function call: positional ones in order, then keyword ones (name=value).
struct Arguments {
  std::vector<PV> positional;
  std::vector<std::pair<std::string, PV>> named;

  const PV* find(const std::string& name) const {
    for (const auto& [k, v] : named)
      if (k == name) return &v;
    return nullptr;
  }
};

const char* pv_type_name(const PV& v) {
  switch (v.kind) {
    case PV::kQuoted: return "str";
    case PV::kList: return "list";
    case PV::kDict: return "dict";
    case PV::kChoice: return "ChoiceSweep";
    case PV::kRange: return "RangeSweep";
    case PV::kInterval: return "IntervalSweep";
    case PV::kGlob: return "Glob";
    case PV::kExtend: return "ListExtension";
    case PV::kNode: break;
  }
  switch (v.node.kind()) {
    case NodeKind::kNull: return "NoneType";
    case NodeKind::kBool: return "bool";
    case NodeKind::kInt: return "int";
    case NodeKind::kFloat: return "float";
    default: return "str";
  }
}

// QuotedString.with_quotes: the text re-quoted so it parses back to the same string.
std::string with_quotes(const std::string& text, char q) {
  std::string out(1, q);
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\\') {
      std::size_t k = 0;
      while (i + k < text.size() && text[i + k] == '\\') ++k;
      const bool before_quote = i + k == text.size() || text[i + k] == q;
      out.append(before_quote ? 2 * k : k, '\\');
      i += k;
      continue;
    }
    if (text[i] == q) out += '\\';
    out += text[i++];
  }
  out += q;
  return out;
}

std::string element_text(const PV& v);

std::string node_text(const ConfigNode& n) {
  switch (n.kind()) {
    case NodeKind::kNull: return "null";
    case NodeKind::kString: return escape_override_value(n.as_string());
    case NodeKind::kList: {
      std::string s = "[";
      for (std::size_t i = 0; i < n.size(); ++i) s += (i ? "," : "") + node_text(n[i]);
      return s + "]";
    }
    case NodeKind::kDict: {
      std::string s = "{";
      for (std::size_t i = 0; i < n.size(); ++i)
        s += (i ? "," : "") + escape_override_value(n.key_at(i)) + ":" + node_text(n.child_at(i));
      return s + "}";
    }
    default: return py::str(n);
  }
}

std::string element_text(const PV& v) {
  switch (v.kind) {
    case PV::kNode: return node_text(v.node);
    case PV::kQuoted: return with_quotes(v.node.as_string(), v.quote);
    case PV::kList: {
      std::string s = "[";
      for (std::size_t i = 0; i < v.items.size(); ++i) s += (i ? "," : "") + element_text(v.items[i]);
      return s + "]";
    }
    case PV::kDict: {
      std::string s = "{";
      for (std::size_t i = 0; i < v.entries.size(); ++i)
        s += (i ? "," : "") + element_text(v.entries[i].first) + ":" + element_text(v.entries[i].second);
      return s + "}";
    }
    default: return "<sweep>";
  }
}

ConfigNode to_node(const PV& v, std::size_t at) {
  switch (v.kind) {
    case PV::kNode:
    case PV::kQuoted:
      return v.node;
    case PV::kList: {
      ConfigNode out = ConfigNode::list();
      for (const auto& i : v.items) out.push_back(to_node(i, at));
      return out;
    }
    case PV::kDict: {
      ConfigNode out = ConfigNode::dict();
      for (const auto& e : v.entries) {
        const ConfigNode key = to_node(e.first, at);
        out.set(key.is_string() ? key.as_string() : py::str(key), to_node(e.second, at));
      }
      return out;
    }
    default:
      throw Fail{fmt::format("a {} cannot be used inside a value", pv_type_name(v)), at};
  }
}

// Python's ordering for sort(): numbers with numbers, strings with strings.
bool py_less(const PV& a, const PV& b, std::size_t at) {
  const ConfigNode& x = a.node;
  const ConfigNode& y = b.node;
  auto num = [](const ConfigNode& n) { return n.is_bool() ? (n.as_bool() ? 1.0 : 0.0) : n.as_double(); };
  const bool xn = a.kind == PV::kNode && (x.is_int() || x.is_float() || x.is_bool());
  const bool yn = b.kind == PV::kNode && (y.is_int() || y.is_float() || y.is_bool());
  const bool xs = (a.kind == PV::kQuoted || (a.kind == PV::kNode && x.is_string()));
  const bool ys = (b.kind == PV::kQuoted || (b.kind == PV::kNode && y.is_string()));
  if (xn && yn) return num(x) < num(y);
  if (xs && ys) return x.as_string() < y.as_string();
  throw Fail{fmt::format("'<' not supported between instances of '{}' and '{}'", pv_type_name(b), pv_type_name(a)), at};
}

class OverrideParser {
 public:
  explicit OverrideParser(std::string_view s) : s_(s), lex_(s, kHydra) {}

  Override parse() {
    Override ov;
    ov.input = std::string(s_);
    // Prefix.
    if (peek() == '~') {
      ov.type = OverrideType::kDelete;
      ++pos_;
    } else if (peek() == '+') {
      ++pos_;
      ov.type = OverrideType::kAdd;
      if (peek() == '+') {
        ++pos_;
        ov.type = OverrideType::kForceAdd;
      }
    }
    key(ov);
    if (pos_ >= s_.size()) {
      if (ov.type != OverrideType::kDelete) fail(fmt::format("missing '=' after the key '{}'", ov.key_element()));
      return ov;
    }
    if (peek() != '=') fail(fmt::format("unexpected '{}' in the key", peek()));
    ++pos_;
    skip_ws();
    ov.has_value = true;
    PV v = value();
    if (pos_ < s_.size()) fail(fmt::format("extraneous input '{}' expecting <EOF>", s_.substr(pos_)));
    fill(ov, v);
    return ov;
  }

 private:
  std::string_view s_;
  lexer::ScalarLexer lex_;
  std::size_t pos_ = 0;
  int depth_ = 0;

  [[noreturn]] void fail(const std::string& msg) const { throw Fail{msg, pos_}; }
  char peek(std::size_t k = 0) const { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; }
  void skip_ws() { pos_ += lex_.ws_len(pos_); }
  bool at_ws_then(char c) const {
    const std::size_t k = lex_.ws_len(pos_);
    return pos_ + k < s_.size() && s_[pos_ + k] == c;
  }
  // Consumes WS? <c> when the input continues with it.
  bool accept_ws_then(char c) {
    if (!at_ws_then(c)) return false;
    skip_ws();
    ++pos_;
    return true;
  }
  // After an item of a list, dict or argument list: true when a ',' (and the blanks after it) was
  // consumed and another item follows, false when `closer` was consumed. Anything else fails with
  // `missing` at the end of the input, else with "unexpected '<c>' <where>".
  bool next_item(char closer, const std::string& missing, std::string_view where) {
    if (accept_ws_then(',')) {
      skip_ws();
      return true;
    }
    if (accept_ws_then(closer)) return false;
    if (pos_ >= s_.size()) fail(missing);
    fail(fmt::format("unexpected '{}' {}", peek(), where));
  }

  // ---- key ----------------------------------------------------------------------------------------
  void key(Override& ov) {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != '=') ++pos_;
    const std::string_view text = s_.substr(start, pos_ - start);
    const std::size_t at = text.find('@');
    const std::string_view main = text.substr(0, at);
    if (main.empty()) throw Fail{"missing key before '='", start};
    check_package_or_group(main, start);
    ov.key = std::string(main);
    if (at != std::string_view::npos) {
      const std::string_view pkg = text.substr(at + 1);
      if (!pkg.empty()) check_package(pkg, start + at + 1);
      ov.package = std::string(pkg);
    }
  }

  // package: ID | KEY_SPECIAL | DOT_PATH ; group: ID ('/' ID)+
  static bool is_key_special(std::string_view t) {
    if (t.empty() || !(is_id_start(t[0]) || t[0] == '$')) return false;
    for (char c : t)
      if (!(is_id_char(c) || c == '$')) return false;
    return true;
  }
  static bool is_int_unsigned(std::string_view t) {
    const std::size_t n = lexer::ScalarLexer(t, kHydra).int_unsigned_len(0);
    return n > 0 && n == t.size();
  }
  static bool is_id(std::string_view t) {
    const std::size_t n = lexer::ScalarLexer(t, kHydra).id_len(0);
    return n > 0 && n == t.size();
  }
  void check_package(std::string_view t, std::size_t at) const {
    std::size_t off = 0;
    for (const auto& part : split(t, '.')) {
      if (!(is_key_special(part) || (t.find('.') != std::string_view::npos && is_int_unsigned(part)))) {
        std::size_t bad = off;
        for (std::size_t i = 0; i < part.size(); ++i) {
          if (!(is_id_char(part[i]) || part[i] == '$')) {
            bad = off + i;
            break;
          }
        }
        throw Fail{fmt::format("invalid key '{}'", t), at + bad};
      }
      off += part.size() + 1;
    }
  }
  void check_package_or_group(std::string_view t, std::size_t at) const {
    if (t.find('/') != std::string_view::npos) {
      std::size_t off = 0;
      for (const auto& part : split(t, '/')) {
        if (!is_id(part)) throw Fail{fmt::format("invalid config group '{}'", t), at + off};
        off += part.size() + 1;
      }
      return;
    }
    check_package(t, at);
  }

  // ---- value --------------------------------------------------------------------------------------
  PV value() {
    if (pos_ >= s_.size()) {
      PV v;
      v.node = ConfigNode::string("");
      return v;
    }
    PV first = element();
    if (!at_ws_then(',')) return first;
    PV sweep;
    sweep.kind = PV::kChoice;
    sweep.simple_form = true;
    sweep.items.push_back(std::move(first));
    while (accept_ws_then(',')) {
      skip_ws();
      sweep.items.push_back(element());
    }
    for (const auto& i : sweep.items)
      if (i.is_sweep()) fail("a sweep cannot be an element of another sweep");
    return sweep;
  }

  PV element() {
    struct Nest {
      OverrideParser& p;
      explicit Nest(OverrideParser& parser) : p(parser) {
        if (++p.depth_ > 100) p.fail("nested more than 100 levels deep");
      }
      ~Nest() { --p.depth_; }
    } nest(*this);
    const char c = peek();
    if (c == '\'' || c == '"') {
      PV v = quoted(c);
      // A quoted value must stand alone.
      const std::size_t k = lex_.ws_len(pos_);
      const char after = pos_ + k < s_.size() ? s_[pos_ + k] : '\0';
      if (after != '\0' && after != ',' && after != ']' && after != '}' && after != ')') {
        pos_ += k;
        fail("a quoted value cannot be concatenated with other characters (quote the whole value)");
      }
      return v;
    }
    if (c == '[') return list_value();
    if (c == '{') return dict_value();
    // Function call: ID WS? '('
    if (const std::size_t n = lex_.id_len(pos_)) {
      const std::size_t k = lex_.ws_len(pos_ + n);
      if (pos_ + n + k < s_.size() && s_[pos_ + n + k] == '(') {
        const std::string name(s_.substr(pos_, n));
        const std::size_t at = pos_;
        pos_ += n + k + 1;
        skip_ws();
        return function(name, at);
      }
    }
    PV v = primitive(false);
    return v;
  }

  // '[' WS? (element (',' element)*)? ']'
  PV list_value() {
    ++pos_;
    skip_ws();
    PV v;
    v.kind = PV::kList;
    if (accept_ws_then(']')) return v;
    do {
      v.items.push_back(element());
    } while (next_item(']', "missing ']'", "in list (expected ',' or ']')"));
    for (const auto& i : v.items)
      if (i.is_sweep()) fail("a sweep cannot be an element of a list");
    return v;
  }

  // '{' WS? (key ':' element (',' key ':' element)*)? '}'
  PV dict_value() {
    ++pos_;
    skip_ws();
    PV v;
    v.kind = PV::kDict;
    if (accept_ws_then('}')) return v;
    do {
      const std::size_t key_at = pos_;
      PV k = primitive(/*dict_key=*/true);
      if (k.kind == PV::kNode && k.node.is_null() && pos_ == key_at) fail("expected a dict key");
      if (!accept_ws_then(':'))
        fail(pos_ >= s_.size() ? "missing ':' after dict key" : fmt::format("unexpected '{}' in dict key", peek()));
      skip_ws();
      PV val = element();
      if (val.is_sweep()) fail("a sweep cannot be a dict value");
      v.entries.push_back(PVEntry{std::move(k), std::move(val)});
    } while (next_item('}', "missing '}'", "in dict (expected ',' or '}')"));
    return v;
  }

  PV quoted(char q) {
    const std::size_t start = pos_;
    ++pos_;
    std::string text;
    for (;;) {
      if (pos_ >= s_.size()) throw Fail{fmt::format("unterminated quoted string (missing closing {})", q), start};
      const char c = s_[pos_];
      if (c == q) {
        ++pos_;
        break;
      }
      if (c == '\\') {
        std::size_t k = 0;
        while (pos_ + k < s_.size() && s_[pos_ + k] == '\\') ++k;
        if (pos_ + k < s_.size() && s_[pos_ + k] == q) {
          text.append(k / 2, '\\');
          if (k % 2 == 1) {
            text += q;
            pos_ += k + 1;
          } else {
            pos_ += k;
          }
        } else {
          text.append(k, '\\');
          pos_ += k;
        }
        continue;
      }
      text += c;
      ++pos_;
    }
    PV v;
    v.kind = PV::kQuoted;
    v.quote = q;
    v.node = ConfigNode::string(std::move(text));
    return v;
  }

  // ---- primitives -----------------------------------------------------------------------------
  struct Token {
    TokenType type;
    std::string text;
  };

  // An unquoted value: its tokens (blanks inside kept), read as one scalar when there is one token,
  // else as the text they spell.
  PV primitive(bool dict_key) {
    const std::size_t start = pos_;
    std::vector<Token> toks = primitive_tokens(dict_key);
    // Drop leading/trailing whitespace tokens.
    while (!toks.empty() && toks.back().type == TokenType::kWs) toks.pop_back();
    std::size_t first = 0;
    while (first < toks.size() && toks[first].type == TokenType::kWs) ++first;
    if (first >= toks.size()) {
      if (pos_ == start) {
        if (pos_ >= s_.size()) fail("missing value");
        fail(fmt::format("unexpected '{}'", peek()));
      }
      fail("a value cannot be only whitespace");
    }
    PV v;
    if (toks.size() - first == 1) {
      v.node = token_value(toks[first]);
      return v;
    }
    std::string out;
    for (std::size_t i = first; i < toks.size(); ++i) {
      out += toks[i].type == TokenType::kEsc ? unescaped(toks[i].text) : toks[i].text;
    }
    v.node = ConfigNode::string(std::move(out));
    return v;
  }

  // The tokens of an unquoted value, up to the character that ends it (',', a bracket, '=', or the
  // end; also ':' in a dict key).
  std::vector<Token> primitive_tokens(bool dict_key) {
    std::vector<Token> toks;
    for (;;) {
      if (pos_ >= s_.size()) break;
      const char c = s_[pos_];
      if (is_ws(c)) {
        const std::size_t k = lex_.ws_len(pos_);
        const char after = pos_ + k < s_.size() ? s_[pos_ + k] : '\0';
        if (after == ',' || after == ']' || after == '}' || after == ')' || after == '(' || after == '=') break;
        if (after == ':') {
          if (dict_key) break;
          std::size_t end = pos_ + k + 1;
          end += lex_.ws_len(end);
          toks.push_back(Token{TokenType::kColon, std::string(s_.substr(pos_, end - pos_))});
          pos_ = end;
          continue;
        }
        toks.push_back(Token{TokenType::kWs, std::string(s_.substr(pos_, k))});
        pos_ += k;
        continue;
      }
      if (c == ',' || c == ']' || c == '}' || c == ')' || c == '[' || c == '{' || c == '(' || c == '=') break;
      if (c == '\'' || c == '"') {
        if (toks.empty()) break;
        fail("a quoted value cannot be concatenated with other characters (quote the whole value)");
      }
      if (c == ':') {
        if (dict_key) break;
        std::size_t end = pos_ + 1 + lex_.ws_len(pos_ + 1);
        toks.push_back(Token{TokenType::kColon, std::string(s_.substr(pos_, end - pos_))});
        pos_ = end;
        continue;
      }
      if (c == '$' && peek(1) == '{') {
        if (dict_key) fail("interpolations are not allowed in dict keys");
        const auto close = s_.find('}', pos_ + 2);
        if (close == std::string_view::npos || close == pos_ + 2) fail("unterminated interpolation (missing '}')");
        toks.push_back(Token{TokenType::kInterp, std::string(s_.substr(pos_, close + 1 - pos_))});
        pos_ = close + 1;
        continue;
      }
      if (c == '\\') {
        if (const std::size_t e = lex_.esc_len(pos_)) {
          toks.push_back(Token{TokenType::kEsc, std::string(s_.substr(pos_, e))});
          pos_ += e;
          continue;
        }
      }
      const lexer::Match m = lex_.longest_scalar(pos_);
      if (m.length == 0) fail(fmt::format("token recognition error at: '{}'", c));
      toks.push_back(Token{m.type, std::string(s_.substr(pos_, m.length))});
      pos_ += m.length;
    }
    return toks;
  }

  // "\,\ " -> ", ": the characters after each backslash of an escape token.
  static std::string unescaped(const std::string& esc) {
    std::string out;
    for (std::size_t i = 1; i < esc.size(); i += 2) out += esc[i];
    return out;
  }

  // A value made of one token: null, a number, a bool, or text.
  ConfigNode token_value(const Token& t) const {
    switch (t.type) {
      case TokenType::kId:
      case TokenType::kUnquoted:
      case TokenType::kColon:
      case TokenType::kInterp:
        return ConfigNode::string(t.text);
      case TokenType::kNull:
        return ConfigNode::null_value();
      case TokenType::kInt: {
        long long x;
        if (!lexer::int_token_value(t.text, x)) fail(fmt::format("integer '{}' does not fit in 64 bits", t.text));
        return ConfigNode::integer(x);
      }
      case TokenType::kFloat:
        return ConfigNode::floating(py::parse_float(t.text));
      case TokenType::kBool:
        return ConfigNode::boolean(t.text[0] == 't' || t.text[0] == 'T');
      case TokenType::kEsc:
        return ConfigNode::string(unescaped(t.text));
      case TokenType::kWs:
        break;
    }
    return ConfigNode();
  }

  // ---- functions ------------------------------------------------------------------------------
  // After "name(": the arguments up to ')', then the call.
  PV function(const std::string& name, std::size_t at) {
    Arguments args = arguments(name);
    try {
      return call(name, std::move(args), at);
    } catch (const Fail&) {
      throw;
    } catch (const std::exception& e) {
      throw Fail{fmt::format("{}(): {}", name, e.what()), at};
    }
  }

  // argument (',' argument)* ')' where argument: (ID WS? '=' WS?)? element; keyword arguments last.
  Arguments arguments(const std::string& name) {
    Arguments args;
    if (accept_ws_then(')')) return args;
    const std::string missing = fmt::format("missing ')' to close {}(", name);
    const std::string where = fmt::format("in the arguments of {}()", name);
    do {
      const std::size_t n = lex_.id_len(pos_);
      const std::size_t k = n ? lex_.ws_len(pos_ + n) : 0;
      if (n && pos_ + n + k < s_.size() && s_[pos_ + n + k] == '=') {
        std::string arg(s_.substr(pos_, n));
        pos_ += n + k + 1;
        skip_ws();
        args.named.emplace_back(std::move(arg), element());
      } else {
        if (!args.named.empty()) fail("positional argument follows keyword argument");
        args.positional.push_back(element());
      }
    } while (next_item(')', missing, where));
    return args;
  }

  static std::runtime_error err(const std::string& m) { return std::runtime_error(m); }

  static void check_named(const Arguments& args, std::initializer_list<const char*> allowed) {
    for (const auto& [k, v] : args.named) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) throw err(fmt::format("got an unexpected keyword argument '{}'", k));
    }
  }

  static PV simple_choice(std::vector<PV> args) {
    PV c;
    c.kind = PV::kChoice;
    c.simple_form = true;
    c.items = std::move(args);
    return c;
  }

  // int(...), float(...), str(...), bool(...): one value, or several (a choice) cast one by one.
  static PV cast_call(const std::string& fn, Arguments args) {
    check_named(args, {"value"});
    PV v;
    if (const PV* nv = args.find("value")) {
      if (!args.positional.empty()) throw err("cannot use both position and named arguments");
      v = *nv;
    } else if (args.positional.empty()) {
      throw err("No positional args or value specified");
    } else if (args.positional.size() == 1) {
      v = args.positional[0];
    } else {
      v = simple_choice(std::move(args.positional));
    }
    return cast(fn, v);
  }

  static PV cast(const std::string& fn, const PV& v) {
    PV out = v;
    switch (v.kind) {
      case PV::kList:
      case PV::kChoice:
        for (auto& i : out.items) i = cast(fn, i);
        return out;
      case PV::kDict:
        for (auto& e : out.entries) e.second = cast(fn, e.second);
        return out;
      case PV::kRange:
        if (fn != "int" && fn != "float") throw err("Range can only be cast to int or float");
        out.start = cast(fn, node_pv(v.start)).node;
        out.stop = cast(fn, node_pv(v.stop)).node;
        out.step = cast(fn, node_pv(v.step)).node;
        return out;
      case PV::kInterval:
        if (fn == "str" || fn == "bool") throw err(fmt::format("Intervals cannot be cast to {}", fn));
        return out;
      case PV::kGlob:
      case PV::kExtend:
        throw err(fmt::format("cannot cast a {}", pv_type_name(v)));
      default:
        break;
    }
    out.kind = PV::kNode;
    out.node = cast_scalar(fn, v.node);
    return out;
  }

  // Python's int(), float(), str() and bool() of a scalar, with Hydra's spellings (str(true) is
  // "true"; bool("false") is false).
  static ConfigNode cast_scalar(const std::string& fn, const ConfigNode& n) {
    if (fn == "int") return int_cast(n);
    if (fn == "float") return float_cast(n);
    if (fn == "str") {
      if (n.is_bool()) return ConfigNode::string(n.as_bool() ? "true" : "false");
      if (n.is_null()) throw err("cannot cast null to str");
      return ConfigNode::string(py::str(n));
    }
    return bool_cast(n);
  }

  static ConfigNode int_cast(const ConfigNode& n) {
    if (n.is_int()) return n;
    if (n.is_bool()) return ConfigNode::integer(n.as_bool() ? 1 : 0);
    if (n.is_float()) {
      const double d = n.as_double();
      if (!std::isfinite(d)) throw err(fmt::format("cannot convert float {} to integer", py::float_repr(d)));
      return ConfigNode::integer(static_cast<std::int64_t>(d));
    }
    if (n.is_string()) {
      long long x;
      std::string clean(trim(n.as_string()));
      if (!py::is_int(clean) || !lexer::int_token_value(replace_all(clean, "_", ""), x))
        throw err(fmt::format("invalid literal for int() with base 10: {}", py::str_repr(n.as_string())));
      return ConfigNode::integer(x);
    }
    throw err(fmt::format("cannot cast {} to int", py::str(n)));
  }

  static ConfigNode float_cast(const ConfigNode& n) {
    if (n.is_float()) return n;
    if (n.is_int()) return ConfigNode::floating(static_cast<double>(n.as_int()));
    if (n.is_bool()) return ConfigNode::floating(n.as_bool() ? 1.0 : 0.0);
    if (n.is_string()) {
      if (!py::is_float(n.as_string()))
        throw err(fmt::format("could not convert string to float: {}", py::str_repr(n.as_string())));
      return ConfigNode::floating(py::parse_float(n.as_string()));
    }
    throw err(fmt::format("cannot cast {} to float", py::str(n)));
  }

  static ConfigNode bool_cast(const ConfigNode& n) {
    if (n.is_string()) {
      const std::string l = to_lower(n.as_string());
      if (l == "true") return ConfigNode::boolean(true);
      if (l == "false") return ConfigNode::boolean(false);
      throw err(fmt::format("Cannot cast '{}' to bool", n.as_string()));
    }
    if (n.is_bool()) return n;
    if (n.is_int()) return ConfigNode::boolean(n.as_int() != 0);
    if (n.is_float()) return ConfigNode::boolean(n.as_double() != 0.0);
    throw err("cannot cast null to bool");
  }

  static std::vector<std::string> string_list(const PV& v, const char* what) {
    std::vector<std::string> out;
    auto one = [&](const PV& x) {
      if (x.kind == PV::kQuoted || (x.kind == PV::kNode && x.node.is_string())) {
        out.push_back(x.node.as_string());
      } else {
        throw err(fmt::format("{} must be a string or a list of strings", what));
      }
    };
    if (v.kind == PV::kList) {
      for (const auto& i : v.items) one(i);
    } else {
      one(v);
    }
    return out;
  }

  static PV sort_sweep(PV s, bool reverse, std::size_t at) {
    if (s.kind == PV::kChoice) {
      std::stable_sort(s.items.begin(), s.items.end(), [&](const PV& a, const PV& b) {
        return reverse ? py_less(b, a, at) : py_less(a, b, at);
      });
      return s;
    }
    // Range: materialize and reverse direction when needed.
    const double step = s.step.as_double();
    if ((step > 0) == reverse) {
      std::vector<ConfigNode> values = range_values(s);
      if (values.size() > 1) {
        PV c;
        c.kind = PV::kChoice;
        c.simple_form = false;
        for (auto it = values.rbegin(); it != values.rend(); ++it) c.items.push_back(node_pv(*it));
        return c;
      }
    }
    return s;
  }

  static std::vector<ConfigNode> range_values(const PV& r) {
    std::vector<ConfigNode> out;
    const bool ints = r.start.is_int() && r.stop.is_int() && r.step.is_int();
    if (ints) {
      const long long a = r.start.as_int(), b = r.stop.as_int(), st = r.step.as_int();
      if (st == 0) throw err("range() arg 3 must not be zero");
      for (long long x = a; st > 0 ? x < b : x > b; x += st) {
        out.push_back(ConfigNode::integer(x));
        if (out.size() > 1000000) throw err("range produces more than 1000000 values");
      }
      return out;
    }
    const double a = r.start.as_double(), b = r.stop.as_double(), st = r.step.as_double();
    if (st == 0.0) throw err("range() step must not be zero");
    // Decimal accumulation (start + step*i on the decimal values as written), so that
    // range(0,10,3.3) gives 9.9 and not 9.899999999999999.
    i128 sm = 0, tm = 0;
    int emin = 0;
    const bool exact = decimal_pair(a, st, sm, tm, emin);
    for (long long i = 0;; ++i) {
      double x = a + st * static_cast<double>(i);
      if (exact) {
        const i128 m = sm + tm * static_cast<i128>(i);
        x = decimal_to_double(m, emin);
      }
      if (!(st > 0 ? x < b : x > b)) break;
      out.push_back(ConfigNode::floating(x));
      if (out.size() > 1000000) throw err("range produces more than 1000000 values");
    }
    return out;
  }

  PV call(const std::string& name, Arguments args, std::size_t at) {
    if (name == "int" || name == "float" || name == "str" || name == "bool") return cast_call(name, std::move(args));
    if (name == "choice") return choice_call(std::move(args));
    if (name == "range") return range_call(args);
    if (name == "interval") return interval_call(args);
    if (name == "tag") return tag_call(std::move(args));
    if (name == "shuffle") return shuffle_call(std::move(args));
    if (name == "sort") return sort_call(std::move(args), at);
    if (name == "glob") return glob_call(args);
    if (name == "extend_list") {
      check_named(args, {});
      PV e;
      e.kind = PV::kExtend;
      e.items = std::move(args.positional);
      return e;
    }
    throw Fail{fmt::format("Unknown function '{}' (available: bool, choice, extend_list, float, glob, int, interval, range, "
                           "shuffle, sort, str, tag)",
                           name),
               at};
  }

  // choice(a, b, ...); choice(a, b) written as a simple sweep "a,b" inside is the same choice.
  static PV choice_call(Arguments args) {
    check_named(args, {});
    std::vector<PV>& items = args.positional;
    if (items.empty()) throw err("empty choice is not legal");
    if (items.size() == 1 && items[0].kind == PV::kChoice) {
      if (items[0].simple_form) {
        items[0].simple_form = false;
        return items[0];
      }
      throw err("nesting choices is not supported");
    }
    for (const auto& a : items)
      if (a.is_sweep()) throw err("nesting sweeps is not supported");
    PV c;
    c.kind = PV::kChoice;
    c.items = std::move(items);
    return c;
  }

  // range(stop), range(start, stop[, step]); arguments by position or by name, like Python's.
  static PV range_call(const Arguments& args) {
    check_named(args, {"start", "stop", "step"});
    std::vector<const PV*> slots(3, nullptr);
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      if (i >= 3) throw err(fmt::format("range expected at most 3 arguments, got {}", args.positional.size()));
      slots[i] = &args.positional[i];
    }
    const char* names[] = {"start", "stop", "step"};
    for (int i = 0; i < 3; ++i) {
      if (const PV* p = args.find(names[i])) {
        if (slots[static_cast<std::size_t>(i)])
          throw err(fmt::format("got multiple values for argument '{}'", names[i]));
        slots[static_cast<std::size_t>(i)] = p;
      }
    }
    auto number = [&](const PV* p, const char* what) {
      if (!p || p->kind != PV::kNode || !(p->node.is_int() || p->node.is_float()))
        throw err(fmt::format("{} must be an int or a float", what));
      return p->node;
    };
    if (!slots[0]) throw err("missing required argument 'start'");
    PV r;
    r.kind = PV::kRange;
    if (!slots[1]) {
      r.start = ConfigNode::integer(0);
      r.stop = number(slots[0], "stop");
    } else {
      r.start = number(slots[0], "start");
      r.stop = number(slots[1], "stop");
    }
    r.step = slots[2] ? number(slots[2], "step") : ConfigNode::integer(1);
    (void)range_values(r);  // validates (step 0, size)
    return r;
  }

  // interval(start, end): two numbers.
  static PV interval_call(const Arguments& args) {
    check_named(args, {"start", "end"});
    std::vector<const PV*> slots;
    for (const auto& a : args.positional) slots.push_back(&a);
    if (const PV* p = args.find("start")) slots.insert(slots.begin(), p);
    if (const PV* p = args.find("end")) slots.push_back(p);
    if (slots.size() != 2) throw err("interval() takes exactly 2 arguments (start, end)");
    PV r;
    r.kind = PV::kInterval;
    for (int i = 0; i < 2; ++i) {
      const PV* p = slots[static_cast<std::size_t>(i)];
      if (p->kind != PV::kNode || !(p->node.is_int() || p->node.is_float()))
        throw err("interval bounds must be numbers");
      (i == 0 ? r.i_start : r.i_end) = p->node.as_double();
    }
    return r;
  }

  // tag(t1, t2, ..., sweep): the sweep with these string tags.
  static PV tag_call(Arguments args) {
    check_named(args, {"sweep"});
    std::vector<PV>& items = args.positional;
    if (const PV* s = args.find("sweep")) items.push_back(*s);
    if (items.empty()) throw err("Not enough arguments to tag, must take at least a sweep");
    PV last = items.back();
    if (!last.is_sweep()) throw err("Last argument to tag() must be a choice(), range() or interval()");
    last.tags.clear();
    for (std::size_t i = 0; i + 1 < items.size(); ++i) {
      const PV& t = items[i];
      if (!(t.kind == PV::kQuoted || (t.kind == PV::kNode && t.node.is_string())))
        throw err(fmt::format("tag arguments type must be string, got {}", pv_type_name(t)));
      last.tags.push_back(t.node.as_string());
    }
    return last;
  }

  // shuffle(sweep) marks the sweep shuffled; shuffle(list) shuffles the list now; shuffle(a, b, ...)
  // is a shuffled choice.
  static PV shuffle_call(Arguments args) {
    check_named(args, {"sweep", "list"});
    std::vector<PV>& items = args.positional;
    if (const PV* l = args.find("list")) items = {*l};
    if (const PV* s = args.find("sweep")) items = {*s};
    if (items.size() == 1) {
      PV a = items[0];
      if (a.kind == PV::kChoice || a.kind == PV::kRange) {
        a.shuffle = true;
        return a;
      }
      if (a.kind == PV::kList) {
        std::random_device rd;
        std::mt19937 g(rd());
        std::shuffle(a.items.begin(), a.items.end(), g);
        return a;
      }
      PV l;
      l.kind = PV::kList;
      l.items.push_back(a);
      return l;
    }
    PV c = simple_choice(std::move(items));
    c.shuffle = true;
    return c;
  }

  // sort(sweep | list | a, b, ..., reverse=false), in Python's order.
  static PV sort_call(Arguments args, std::size_t at) {
    check_named(args, {"sweep", "list", "reverse"});
    bool reverse = false;
    if (const PV* r = args.find("reverse")) {
      if (r->kind != PV::kNode || !r->node.is_bool()) throw err("reverse must be a bool");
      reverse = r->node.as_bool();
    }
    std::vector<PV>& items = args.positional;
    if (const PV* l = args.find("list")) items = {*l};
    if (const PV* s = args.find("sweep")) return sort_sweep(*s, reverse, at);
    if (items.size() == 1) {
      PV a = items[0];
      if (a.kind == PV::kChoice || a.kind == PV::kRange) return sort_sweep(a, reverse, at);
      if (a.kind == PV::kList) {
        std::stable_sort(a.items.begin(), a.items.end(), [&](const PV& x, const PV& y) {
          return reverse ? py_less(y, x, at) : py_less(x, y, at);
        });
      }
      return a;
    }
    if (items.empty()) throw err("empty sort input");
    for (const auto& a : items)
      if (!(a.kind == PV::kNode || a.kind == PV::kQuoted) || a.node.is_null()) throw err("Invalid arguments");
    return sort_sweep(simple_choice(std::move(items)), reverse, at);
  }

  // glob(include[, exclude]): each a string or a list of strings.
  static PV glob_call(const Arguments& args) {
    check_named(args, {"include", "exclude"});
    const PV* inc = args.positional.size() > 0 ? &args.positional[0] : args.find("include");
    const PV* exc = args.positional.size() > 1 ? &args.positional[1] : args.find("exclude");
    if (args.positional.size() > 2) throw err("glob() takes at most 2 arguments");
    if (!inc) throw err("missing required argument 'include'");
    PV g;
    g.kind = PV::kGlob;
    g.g_include = string_list(*inc, "include");
    if (exc) g.g_exclude = string_list(*exc, "exclude");
    return g;
  }

  // ---- result -----------------------------------------------------------------------------------
  void fill(Override& ov, const PV& v) {
    if (v.kind == PV::kExtend) {
      if (ov.type != OverrideType::kChange) fail("extend_list() cannot be combined with '+', '++' or '~'");
      ov.type = OverrideType::kExtendList;
      ConfigNode l = ConfigNode::list();
      for (const auto& i : v.items) l.push_back(to_node(i, pos_));
      ov.value = std::move(l);
      return;
    }
    if (!v.is_sweep()) {
      ov.value = to_node(v, pos_);
      return;
    }
    Sweep s;
    s.shuffle = v.shuffle;
    s.tags = v.tags;
    switch (v.kind) {
      case PV::kChoice:
        s.kind = v.simple_form ? Sweep::Kind::kSimpleChoice : Sweep::Kind::kChoice;
        for (const auto& i : v.items) {
          s.values.push_back(to_node(i, pos_));
          s.texts.push_back(element_text(i));
        }
        break;
      case PV::kRange:
        s.kind = Sweep::Kind::kRange;
        for (auto& n : range_values(v)) {
          s.texts.push_back(py::str(n));
          s.values.push_back(std::move(n));
        }
        break;
      case PV::kInterval:
        s.kind = Sweep::Kind::kInterval;
        s.interval_start = v.i_start;
        s.interval_end = v.i_end;
        break;
      case PV::kGlob:
        s.kind = Sweep::Kind::kGlob;
        s.glob_include = v.g_include;
        s.glob_exclude = v.g_exclude;
        break;
      default:
        break;
    }
    ov.sweep = std::move(s);
  }
};

}  // namespace

std::string escape_override_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\()[]{}:=, \t").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

Override parse_override(std::string_view text, int index) {
  try {
    OverrideParser p(text);
    Override ov = p.parse();
    ov.index = index;
    return ov;
  } catch (const Fail& f) {
    std::string shown(text);
    for (char& c : shown)
      if (c == '\t' || c == '\n') c = ' ';
    const std::size_t at = std::min(f.at, text.size());
    throw OverrideError(fmt::format("Error parsing override '{}'\n    {}\n    {}^\n{}\n{}", text, shown,
                                    std::string(at, ' '), f.message, kGrammarDoc));
  }
}

std::vector<Override> parse_overrides(const std::vector<std::string>& args) {
  std::vector<Override> out;
  out.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) out.push_back(parse_override(args[i], static_cast<int>(i + 1)));
  return out;
}

std::string Override::key_element() const { return package ? key + "@" + *package : key; }

bool Override::is_hydra_override() const {
  return key.rfind("hydra.", 0) == 0 || key.rfind("hydra/", 0) == 0 || key == "hydra";
}

std::string Override::value_text() const {
  const auto eq = input.find('=');
  if (eq == std::string::npos) return {};
  return std::string(trim(std::string_view(input).substr(eq + 1)));
}

}  // namespace bignlp::config
