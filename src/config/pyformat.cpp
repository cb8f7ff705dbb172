#include "pyformat.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "bignlp/config/node.h"

namespace bignlp::config::py {

std::string float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form: "d.ddde[+-]x".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = false;
  if (sci[0] == '-') {
    negative = true;
    sci.erase(0, 1);
  }
  const auto e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::atoi(sci.c_str() + e_pos + 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  // Python's 'r' format: decimal point position decpt = exponent + 1; scientific when
  // decpt <= -4 or decpt > 16.
  const int decpt = exponent + 1;
  std::string out;
  if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += ebuf;
  } else if (decpt <= 0) {
    out = "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
    out = digits + std::string(static_cast<std::size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
  }
  return negative ? "-" + out : out;
}

std::string str_repr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

namespace {

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view strip(std::string_view t) {
  while (!t.empty() && is_py_space(t.front())) t.remove_prefix(1);
  while (!t.empty() && is_py_space(t.back())) t.remove_suffix(1);
  return t;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// digits with single underscores between digits: 1_000 ok, 1__0 / _1 / 1_ not.
std::size_t scan_digit_part(std::string_view t, std::size_t i) {
  if (i >= t.size() || !is_digit(t[i])) return i;
  std::size_t j = i + 1;
  while (j < t.size()) {
    if (is_digit(t[j])) {
      ++j;
    } else if (t[j] == '_' && j + 1 < t.size() && is_digit(t[j + 1])) {
      j += 2;
    } else {
      break;
    }
  }
  return j;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

bool is_int(std::string_view text) {
  auto t = strip(text);
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) t.remove_prefix(1);
  if (t.empty()) return false;
  // Python int() with base 10 also accepts leading zeros ("007") and underscores.
  return scan_digit_part(t, 0) == t.size();
}

bool is_float(std::string_view text) {
  auto t = strip(text);
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) t.remove_prefix(1);
  if (t.empty()) return false;
  if (iequals(t, "inf") || iequals(t, "infinity") || iequals(t, "nan")) return true;
  std::size_t i = scan_digit_part(t, 0);
  const bool int_digits = i > 0;
  bool frac_digits = false;
  if (i < t.size() && t[i] == '.') {
    const std::size_t j = scan_digit_part(t, i + 1);
    frac_digits = j > i + 1;
    i = j;
  }
  if (!int_digits && !frac_digits) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
    const std::size_t k = scan_digit_part(t, j);
    if (k == j) return false;
    i = k;
  }
  return i == t.size();
}

double parse_float(std::string_view text) {
  std::string clean;
  for (char c : strip(text))
    if (c != '_') clean += c;
  std::string_view body = clean;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  double v;
  if (iequals(body, "inf") || iequals(body, "infinity")) {
    v = HUGE_VAL;
  } else if (iequals(body, "nan")) {
    v = std::nan("");
  } else {
    v = std::strtod(std::string(body).c_str(), nullptr);
  }
  return neg ? -v : v;
}

std::string repr(const ConfigNode& node) {
  if (node.is_string()) return str_repr(node.as_string());
  if (node.is_missing()) return "'?\?\?'";
  return str(node);
}

std::string str(const ConfigNode& node) {
  switch (node.kind()) {
    case NodeKind::kNull:
      return "None";
    case NodeKind::kBool:
      return node.as_bool() ? "True" : "False";
    case NodeKind::kInt:
      return std::to_string(node.as_int());
    case NodeKind::kFloat:
      return float_repr(node.as_double());
    case NodeKind::kString:
      return node.as_string();
    case NodeKind::kMissing:
      return "???";
    case NodeKind::kList: {
      std::string out = "[";
      for (std::size_t i = 0; i < node.size(); ++i) {
        if (i) out += ", ";
        out += repr(node[i]);
      }
      return out + "]";
    }
    case NodeKind::kDict: {
      std::string out = "{";
      for (std::size_t i = 0; i < node.size(); ++i) {
        if (i) out += ", ";
        out += str_repr(node.key_at(i)) + ": " + repr(node.child_at(i));
      }
      return out + "}";
    }
  }
  return {};
}

}  // namespace bignlp::config::py
