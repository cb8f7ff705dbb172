// YAML/JSON emission (yaml.h). The YAML writer follows PyYAML's emitter as OmegaConf.to_yaml drives
// it (block style, best_width 80, best_indent 2, allow_unicode, sort_keys off) so that `bignlp --cfg`
// prints what Hydra prints: same quoting decisions, same line folding, same indentation.
#include <fmt/format.h>

#include <cmath>

#include "bignlp/config/yaml.h"
#include "pyformat.h"
#include "yaml_scalar.h"

namespace bignlp::config {
namespace {

// ---- UTF-8 <-> code points ------------------------------------------------------------------------

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    char32_t cp;
    std::size_t n;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if ((c >> 5) == 0x6 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      n = 2;
    } else if ((c >> 4) == 0xE && i + 2 < s.size()) {
      cp = ((c & 0x0F) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3F);
      n = 3;
    } else if ((c >> 3) == 0x1E && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
           ((static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) | (static_cast<unsigned char>(s[i + 3]) & 0x3F);
      n = 4;
    } else {
      cp = 0xFFFD;  // invalid byte: shown as the replacement character
      n = 1;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_break(char32_t c) { return c == U'\n' || c == 0x85 || c == 0x2028 || c == 0x2029; }
bool is_blank_or_end(char32_t c) { return c == 0 || c == U' ' || c == U'\t' || c == U'\r' || is_break(c); }
bool in(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }

struct Analysis {
  bool empty = false, multiline = false;
  bool allow_flow_plain = true, allow_block_plain = true, allow_single_quoted = true, allow_double_quoted = true;
};

// PyYAML Emitter.analyze_scalar with allow_unicode=True.
Analysis analyze(const std::u32string& s) {
  Analysis a;
  if (s.empty()) {
    a.empty = true;
    a.allow_flow_plain = false;
    return a;
  }
  bool block_ind = false, flow_ind = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false;
  if (s.rfind(U"---", 0) == 0 || s.rfind(U"...", 0) == 0) block_ind = flow_ind = true;
  bool preceded_ws = true;
  bool followed_ws = s.size() == 1 || is_blank_or_end(s[1]);
  bool prev_space = false, prev_break = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t ch = s[i];
    if (i == 0) {
      if (in(ch, U"#,[]{}&*!|>'\"%@`")) flow_ind = block_ind = true;
      if (ch == U'?' || ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'-' && followed_ws) flow_ind = block_ind = true;
    } else {
      if (in(ch, U",?[]{}")) flow_ind = true;
      if (ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'#' && preceded_ws) flow_ind = block_ind = true;
    }
    if (is_break(ch)) line_breaks = true;
    // NEL, LS and PS are line breaks for YAML 1.1 (PyYAML, libyaml) but not for YAML 1.2 readers
    // (yaml-cpp, Go's yaml.v3): unlike PyYAML, write them escaped in double quotes so every reader agrees.
    if (ch == 0x85 || ch == 0x2028 || ch == 0x2029) special = true;
    if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) {
      const bool unicode_ok = (ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD) ||
                               (ch >= 0x10000 && ch < 0x10FFFF)) &&
                              ch != 0xFEFF;
      if (!unicode_ok) special = true;
    }
    if (ch == U' ') {
      if (i == 0) leading_space = true;
      if (i == s.size() - 1) trailing_space = true;
      if (prev_break) break_space = true;
      prev_space = true;
      prev_break = false;
    } else if (is_break(ch)) {
      if (i == 0) leading_break = true;
      if (i == s.size() - 1) trailing_break = true;
      if (prev_space) space_break = true;
      prev_space = false;
      prev_break = true;
    } else {
      prev_space = prev_break = false;
    }
    preceded_ws = is_blank_or_end(ch);
    followed_ws = i + 2 >= s.size() || is_blank_or_end(s[i + 2]);
  }
  if (leading_space || leading_break || trailing_space || trailing_break) a.allow_flow_plain = a.allow_block_plain = false;
  if (break_space) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
  // Some readers (yaml-cpp 0.7) lose trailing line breaks of single-quoted scalars when there are
  // two or more of them, or nothing else ("a\n\n" reads back as "a\n", "\n" as ""): unlike
  // PyYAML, write those strings double-quoted so every reader agrees. ("a\n" is fine.)
  if (trailing_break) {
    std::size_t k = 0;
    while (k < s.size() && is_break(s[s.size() - 1 - k])) ++k;
    if (k >= 2 || k == s.size()) a.allow_single_quoted = false;
  }
  if (space_break || special) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
  if (line_breaks) a.allow_flow_plain = a.allow_block_plain = false;
  if (flow_ind) a.allow_flow_plain = false;
  if (block_ind) a.allow_block_plain = false;
  a.multiline = line_breaks;
  return a;
}

bool omegaconf_quotes(std::string_view s) {
  static const char* const kBools[] = {"y",    "Y",    "yes",  "Yes",   "YES",   "n",     "N",  "no",
                                       "No",   "NO",   "true", "True",  "TRUE",  "false", "False", "FALSE",
                                       "on",   "On",   "ON",   "off",   "Off",   "OFF"};
  for (const char* b : kBools)
    if (s == b) return true;
  return py::is_int(s) || py::is_float(s);
}

std::string float_text(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  std::string r = py::float_repr(v);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (r.find('.') == std::string::npos && r.find('e') != std::string::npos) r.replace(r.find('e'), 1, ".0e");
  return r;
}

enum class Style { kPlain, kSingle, kDouble };

struct ScalarText {
  std::u32string text;
  Style style;
  Analysis analysis;
};

ScalarText prepare_scalar(const ConfigNode& n, bool simple_key) {
  ScalarText st;
  std::string text;
  bool is_str = false;
  switch (n.kind()) {
    case NodeKind::kNull: text = "null"; break;
    case NodeKind::kBool: text = n.as_bool() ? "true" : "false"; break;
    case NodeKind::kInt: text = std::to_string(n.as_int()); break;
    case NodeKind::kFloat: text = float_text(n.as_double()); break;
    case NodeKind::kMissing: text = "???"; is_str = true; break;
    case NodeKind::kString: text = n.as_string(); is_str = true; break;
    default: break;
  }
  st.text = decode_utf8(text);
  st.analysis = analyze(st.text);
  if (!is_str) {
    st.style = Style::kPlain;
    return st;
  }
  const bool hint_single = omegaconf_quotes(text);
  const bool implicit = yaml11::resolve_for_dump(text) == yaml11::Tag::kStr;
  const Analysis& a = st.analysis;
  if (!hint_single && implicit && !(simple_key && (a.empty || a.multiline)) && a.allow_block_plain) {
    st.style = Style::kPlain;
  } else if (a.allow_single_quoted && !(simple_key && a.multiline)) {
    st.style = Style::kSingle;
  } else {
    st.style = Style::kDouble;
  }
  return st;
}

ScalarText key_scalar(const std::string& key) { return prepare_scalar(ConfigNode::string(key), true); }

bool is_simple_key(const ScalarText& k) {
  // PyYAML check_simple_key: len("!!str") + len(scalar) < 128, not empty, not multiline.
  return 5 + k.text.size() < 128 && !k.analysis.empty && !k.analysis.multiline;
}

class Writer {
 public:
  std::string out;

  void emit_root(const ConfigNode& n) {
    if (n.is_dict() && !n.empty()) {
      block_mapping(n, 0);
    } else if (n.is_list() && !n.empty()) {
      block_sequence(n, 0);
    } else if (n.is_container()) {
      write_indicator(n.is_dict() ? U"{" : U"[", true, true);
      write_indicator(n.is_dict() ? U"}" : U"]", false);
    } else {
      indent_ = 0;
      scalar(prepare_scalar(n, false), 2, true);
    }
    indent_ = 0;
    write_indent();
  }

 private:
  static constexpr int kBestWidth = 80;
  int column_ = 0;
  bool whitespace_ = true;
  bool indention_ = true;
  int indent_ = 0;

  void write(std::u32string_view s) {
    for (char32_t c : s) append_utf8(out, c);
    column_ += static_cast<int>(s.size());
  }
  void write_indicator(std::u32string_view ind, bool need_ws, bool ws = false, bool indention = false) {
    if (whitespace_ || !need_ws) {
      write(ind);
    } else {
      write(U" ");
      write(ind);
    }
    whitespace_ = ws;
    indention_ = indention_ && indention;
  }
  void write_indent() {
    const int indent = indent_;
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) {
      whitespace_ = true;
      indention_ = true;
      column_ = 0;
      out += '\n';
    }
    if (column_ < indent) {
      whitespace_ = true;
      out.append(static_cast<std::size_t>(indent - column_), ' ');
      column_ = indent;
    }
  }
  void write_line_break(char32_t br = U'\n') {
    whitespace_ = true;
    indention_ = true;
    column_ = 0;
    append_utf8(out, br);
  }

  void block_mapping(const ConfigNode& n, int ind) {
    for (std::size_t i = 0; i < n.size(); ++i) {
      indent_ = ind;
      write_indent();
      const ScalarText key = key_scalar(n.key_at(i));
      if (is_simple_key(key)) {
        scalar(key, ind + 2, /*split=*/false);
        indent_ = ind;
        write_indicator(U":", false);
        value(n.child_at(i), ind, /*mapping_context=*/true);
      } else {
        write_indicator(U"?", true, false, true);
        scalar(prepare_scalar(ConfigNode::string(n.key_at(i)), false), ind + 2, true);
        indent_ = ind;
        write_indent();
        write_indicator(U":", true, false, true);
        value(n.child_at(i), ind, true);
      }
    }
  }

  void block_sequence(const ConfigNode& n, int ind) {
    for (std::size_t i = 0; i < n.size(); ++i) {
      indent_ = ind;
      write_indent();
      write_indicator(U"-", true, false, true);
      value(n[i], ind, /*mapping_context=*/false);
    }
  }

  void value(const ConfigNode& v, int ind, bool mapping_context) {
    if (v.is_container() && v.empty()) {
      write_indicator(v.is_dict() ? U"{" : U"[", true, true);
      write_indicator(v.is_dict() ? U"}" : U"]", false);
      return;
    }
    if (v.is_dict()) {
      block_mapping(v, ind + 2);
      return;
    }
    if (v.is_list()) {
      const bool indentless = mapping_context && !indention_;
      block_sequence(v, indentless ? ind : ind + 2);
      return;
    }
    scalar(prepare_scalar(v, false), ind + 2, true);
  }

  void scalar(const ScalarText& st, int cont_indent, bool split) {
    const int saved = indent_;
    indent_ = cont_indent;
    switch (st.style) {
      case Style::kPlain: write_plain(st.text, split); break;
      case Style::kSingle: write_single_quoted(st.text, split); break;
      case Style::kDouble: write_double_quoted(st.text, split); break;
    }
    indent_ = saved;
  }

  void write_plain(const std::u32string& text, bool split) {
    if (text.empty()) return;
    if (!whitespace_) write(U" ");
    whitespace_ = false;
    indention_ = false;
    bool spaces = false, breaks = false;
    std::size_t start = 0, end = 0;
    while (end <= text.size()) {
      const char32_t ch = end < text.size() ? text[end] : 0;
      if (spaces) {
        if (ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth && split) {
            write_indent();
            whitespace_ = false;
            indention_ = false;
          } else {
            write(std::u32string_view(text).substr(start, end - start));
          }
          start = end;
        }
      } else if (breaks) {
        if (!is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (std::size_t k = start; k < end; ++k) write_line_break(text[k]);
          write_indent();
          whitespace_ = false;
          indention_ = false;
          start = end;
        }
      } else {
        if (ch == 0 || ch == U' ' || is_break(ch)) {
          write(std::u32string_view(text).substr(start, end - start));
          start = end;
        }
      }
      if (ch != 0) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
  }

  void write_single_quoted(const std::u32string& text, bool split) {
    write_indicator(U"'", true);
    bool spaces = false, breaks = false;
    std::size_t start = 0, end = 0;
    while (end <= text.size()) {
      const bool at_end = end == text.size();
      const char32_t ch = at_end ? 0 : text[end];
      if (spaces) {
        if (at_end || ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth && split && start != 0 && end != text.size()) {
            write_indent();
          } else {
            write(std::u32string_view(text).substr(start, end - start));
          }
          start = end;
        }
      } else if (breaks) {
        if (at_end || !is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (std::size_t k = start; k < end; ++k) write_line_break(text[k]);
          write_indent();
          start = end;
        }
      } else {
        if (at_end || ch == U' ' || is_break(ch) || ch == U'\'') {
          if (start < end) {
            write(std::u32string_view(text).substr(start, end - start));
            start = end;
          }
        }
      }
      if (!at_end && ch == U'\'') {
        write(U"''");
        start = end + 1;
      }
      if (!at_end) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
    write_indicator(U"'", false);
  }

  void write_double_quoted(const std::u32string& text, bool split) {
    write_indicator(U"\"", true);
    std::size_t start = 0, end = 0;
    while (end <= text.size()) {
      const bool at_end = end == text.size();
      const char32_t ch = at_end ? 0 : text[end];
      if (at_end || in(ch, U"\"\\\x85\u2028\u2029\uFEFF") ||
          !((ch >= 0x20 && ch <= 0x7E) || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD))) {
        if (start < end) {
          write(std::u32string_view(text).substr(start, end - start));
          start = end;
        }
        if (!at_end) {
          std::string data;
          switch (ch) {
            case 0: data = "\\0"; break;
            case 0x07: data = "\\a"; break;
            case 0x08: data = "\\b"; break;
            case 0x09: data = "\\t"; break;
            case 0x0A: data = "\\n"; break;
            case 0x0B: data = "\\v"; break;
            case 0x0C: data = "\\f"; break;
            case 0x0D: data = "\\r"; break;
            case 0x1B: data = "\\e"; break;
            case U'"': data = "\\\""; break;
            case U'\\': data = "\\\\"; break;
            case 0x85: data = "\\N"; break;
            case 0xA0: data = "\\_"; break;
            case 0x2028: data = "\\L"; break;
            case 0x2029: data = "\\P"; break;
            default:
              if (ch <= 0xFF) data = fmt::format("\\x{:02X}", static_cast<unsigned>(ch));
              else if (ch <= 0xFFFF) data = fmt::format("\\u{:04X}", static_cast<unsigned>(ch));
              else data = fmt::format("\\U{:08X}", static_cast<unsigned>(ch));
          }
          out += data;
          column_ += static_cast<int>(data.size());
          start = end + 1;
        }
      }
      if (end > 0 && end + 1 < text.size() && (ch == U' ' || start >= end) &&
          column_ + static_cast<int>(end - start) > kBestWidth && split) {
        std::u32string data = (start < end ? text.substr(start, end - start) : std::u32string()) + U"\\";
        if (start < end) start = end;
        write(data);
        write_indent();
        whitespace_ = false;
        indention_ = false;
        if (text[start] == U' ') write(U"\\");
      }
      ++end;
    }
    write_indicator(U"\"", false);
  }
};

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_value(std::string& out, const ConfigNode& n, int indent, int level) {
  const auto newline = [&](int lvl) {
    if (indent > 0) {
      out += '\n';
      out.append(static_cast<std::size_t>(indent * lvl), ' ');
    }
  };
  switch (n.kind()) {
    case NodeKind::kNull: out += "null"; return;
    case NodeKind::kBool: out += n.as_bool() ? "true" : "false"; return;
    case NodeKind::kInt: out += std::to_string(n.as_int()); return;
    case NodeKind::kFloat: {
      const double v = n.as_double();
      if (std::isnan(v)) out += "NaN";
      else if (std::isinf(v)) out += v > 0 ? "Infinity" : "-Infinity";
      else out += py::float_repr(v);
      return;
    }
    case NodeKind::kString: json_string(out, n.as_string()); return;
    case NodeKind::kMissing: out += "\"???\""; return;
    case NodeKind::kList:
    case NodeKind::kDict: {
      const bool dict = n.is_dict();
      if (n.empty()) {
        out += dict ? "{}" : "[]";
        return;
      }
      out += dict ? '{' : '[';
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (i) out += indent > 0 ? "," : ", ";
        newline(level + 1);
        if (dict) {
          json_string(out, n.key_at(i));
          out += ": ";
        }
        json_value(out, n.child_at(i), indent, level + 1);
      }
      newline(level);
      out += dict ? '}' : ']';
      return;
    }
  }
}

}  // namespace

std::string to_yaml(const ConfigNode& node) {
  Writer w;
  w.emit_root(node);
  return w.out;
}

std::string scalar_to_yaml(const ConfigNode& node) {
  std::string y = to_yaml(node);
  if (!y.empty() && y.back() == '\n') y.pop_back();
  return y;
}

std::string to_json(const ConfigNode& node, int indent) {
  std::string out;
  json_value(out, node, indent, 0);
  if (indent > 0) out += '\n';
  return out;
}

}  // namespace bignlp::config
