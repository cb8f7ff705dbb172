#include "yaml_scalar.h"

#include <string>

namespace bignlp::config::yaml11 {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }
bool hexdigit(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Small cursor helpers emulating the regular expressions of PyYAML's resolver.
struct Cur {
  std::string_view t;
  std::size_t i = 0;
  bool end() const { return i >= t.size(); }
  char peek() const { return end() ? '\0' : t[i]; }
  bool eat(char c) {
    if (!end() && t[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  void sign() {
    if (peek() == '+' || peek() == '-') ++i;
  }
  // [0-9][0-9_]*
  bool dec_run() {
    if (!digit(peek())) return false;
    ++i;
    while (digit(peek()) || peek() == '_') ++i;
    return true;
  }
  // [0-9_]*
  void dec_us() {
    while (digit(peek()) || peek() == '_') ++i;
  }
  // [0-9]+
  bool digits() {
    if (!digit(peek())) return false;
    while (digit(peek())) ++i;
    return true;
  }
  // (?::[0-5]?[0-9])+
  bool sexagesimal() {
    bool any = false;
    for (;;) {
      const std::size_t save = i;
      if (!eat(':')) break;
      if (peek() >= '0' && peek() <= '5' && i + 1 < t.size() && digit(t[i + 1])) {
        i += 2;
      } else if (digit(peek())) {
        ++i;
      } else {
        i = save;
        break;
      }
      any = true;
    }
    return any;
  }
};

bool one_of(std::string_view t, std::initializer_list<std::string_view> words) {
  for (auto w : words)
    if (t == w) return true;
  return false;
}

}  // namespace

bool is_bool(std::string_view t) {
  return one_of(t, {"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",
                    "On", "ON", "off", "Off", "OFF"});
}

bool is_null(std::string_view t) { return one_of(t, {"~", "null", "Null", "NULL", ""}); }

bool is_int(std::string_view t) {
  // [-+]?0b[0-1_]+
  {
    Cur c{t};
    c.sign();
    if (c.eat('0') && c.eat('b')) {
      std::size_t n = 0;
      while (c.peek() == '0' || c.peek() == '1' || c.peek() == '_') ++c.i, ++n;
      if (n > 0 && c.end()) return true;
    }
  }
  // [-+]?0[0-7_]+
  {
    Cur c{t};
    c.sign();
    if (c.eat('0')) {
      std::size_t n = 0;
      while ((c.peek() >= '0' && c.peek() <= '7') || c.peek() == '_') ++c.i, ++n;
      if (n > 0 && c.end()) return true;
    }
  }
  // [-+]?(?:0|[1-9][0-9_]*)
  {
    Cur c{t};
    c.sign();
    if (c.eat('0')) {
      if (c.end()) return true;
    } else if (c.peek() >= '1' && c.peek() <= '9') {
      c.dec_run();
      if (c.end()) return true;
    }
  }
  // [-+]?0x[0-9a-fA-F_]+
  {
    Cur c{t};
    c.sign();
    if (c.eat('0') && c.eat('x')) {
      std::size_t n = 0;
      while (hexdigit(c.peek()) || c.peek() == '_') ++c.i, ++n;
      if (n > 0 && c.end()) return true;
    }
  }
  // [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
  {
    Cur c{t};
    c.sign();
    if (c.peek() >= '1' && c.peek() <= '9') {
      c.dec_run();
      if (c.sexagesimal() && c.end()) return true;
    }
  }
  return false;
}

namespace {

// [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
bool float_sexagesimal(std::string_view t) {
  Cur c{t};
  c.sign();
  if (!c.dec_run()) return false;
  if (!c.sexagesimal()) return false;
  if (!c.eat('.')) return false;
  c.dec_us();
  return c.end();
}

// [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
bool float_special(std::string_view t) {
  std::string_view s = t;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  if (one_of(s, {".inf", ".Inf", ".INF"})) return true;
  return one_of(t, {".nan", ".NaN", ".NAN"});
}

// exponent: [eE] sign_required? [0-9]+
bool exponent(Cur& c, bool sign_optional) {
  const std::size_t save = c.i;
  if (!(c.eat('e') || c.eat('E'))) return false;
  if (c.peek() == '+' || c.peek() == '-') {
    ++c.i;
  } else if (!sign_optional) {
    c.i = save;
    return false;
  }
  if (!c.digits()) {
    c.i = save;
    return false;
  }
  return true;
}

}  // namespace

bool is_float_std(std::string_view t) {
  // [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
  {
    Cur c{t};
    c.sign();
    if (c.dec_run() && c.eat('.')) {
      c.dec_us();
      if (c.end()) return true;
      if (exponent(c, false) && c.end()) return true;
    }
  }
  // \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
  {
    Cur c{t};
    if (c.eat('.') && c.dec_run()) {
      if (c.end()) return true;
      if (exponent(c, false) && c.end()) return true;
    }
  }
  return float_sexagesimal(t) || float_special(t);
}

bool is_float_omegaconf(std::string_view t) {
  // [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
  {
    Cur c{t};
    c.sign();
    if (c.dec_run() && c.eat('.')) {
      c.dec_us();
      if (c.end()) return true;
      if (exponent(c, true) && c.end()) return true;
    }
  }
  // [-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
  {
    Cur c{t};
    c.sign();
    if (c.dec_run() && exponent(c, true) && c.end()) return true;
  }
  // \.[0-9_]+(?:[eE][-+][0-9]+)?
  {
    Cur c{t};
    if (c.eat('.') && (digit(c.peek()) || c.peek() == '_')) {
      c.dec_us();
      if (c.end()) return true;
      if (exponent(c, false) && c.end()) return true;
    }
  }
  return float_sexagesimal(t) || float_special(t);
}

bool is_timestamp(std::string_view t) {
  // YYYY-MM-DD
  auto d = [&](std::size_t i) { return i < t.size() && digit(t[i]); };
  if (t.size() == 10 && d(0) && d(1) && d(2) && d(3) && t[4] == '-' && d(5) && d(6) && t[7] == '-' && d(8) && d(9))
    return true;
  // YYYY-M?M-D?D(T|t|[ \t]+)H?H:MM:SS(.frac)?([ \t]*(Z|[-+]H?H(:MM)?))?
  Cur c{t};
  for (int k = 0; k < 4; ++k)
    if (!digit(c.peek())) return false;
    else ++c.i;
  if (!c.eat('-')) return false;
  if (!digit(c.peek())) return false;
  ++c.i;
  if (digit(c.peek())) ++c.i;
  if (!c.eat('-')) return false;
  if (!digit(c.peek())) return false;
  ++c.i;
  if (digit(c.peek())) ++c.i;
  if (c.peek() == 'T' || c.peek() == 't') {
    ++c.i;
  } else {
    std::size_t n = 0;
    while (c.peek() == ' ' || c.peek() == '\t') ++c.i, ++n;
    if (n == 0) return false;
  }
  if (!digit(c.peek())) return false;
  ++c.i;
  if (digit(c.peek())) ++c.i;
  if (!c.eat(':') || !d(c.i) || !d(c.i + 1)) return false;
  c.i += 2;
  if (!c.eat(':') || !d(c.i) || !d(c.i + 1)) return false;
  c.i += 2;
  if (c.eat('.')) c.digits(), (void)0;
  if (c.end()) return true;
  while (c.peek() == ' ' || c.peek() == '\t') ++c.i;
  if (c.eat('Z')) return c.end();
  if (!(c.eat('+') || c.eat('-'))) return false;
  if (!digit(c.peek())) return false;
  ++c.i;
  if (digit(c.peek())) ++c.i;
  if (c.eat(':')) {
    if (!d(c.i) || !d(c.i + 1)) return false;
    c.i += 2;
  }
  return c.end();
}

Tag resolve_for_load(std::string_view t) {
  // PyYAML checks the resolvers registered for the first character, in registration order:
  // bool, float, int, merge, null, (timestamp removed by OmegaConf), value, OmegaConf's float.
  const char first = t.empty() ? '\0' : t[0];
  if (std::string_view("yYnNtTfFoO").find(first) != std::string_view::npos && !t.empty() && is_bool(t))
    return Tag::kBool;
  const bool numeric_first = !t.empty() && std::string_view("-+0123456789.").find(first) != std::string_view::npos;
  if (numeric_first && is_float_std(t)) return Tag::kFloat;
  if (!t.empty() && first != '.' && numeric_first && is_int(t)) return Tag::kInt;
  if (t == "<<") return Tag::kMerge;
  if ((t.empty() || first == '~' || first == 'n' || first == 'N') && is_null(t)) return Tag::kNull;
  if (t == "=") return Tag::kValue;
  if (numeric_first && is_float_omegaconf(t)) return Tag::kFloat;
  return Tag::kStr;
}

Tag resolve_for_dump(std::string_view t) {
  const char first = t.empty() ? '\0' : t[0];
  if (std::string_view("yYnNtTfFoO").find(first) != std::string_view::npos && !t.empty() && is_bool(t))
    return Tag::kBool;
  const bool numeric_first = !t.empty() && std::string_view("-+0123456789.").find(first) != std::string_view::npos;
  if (numeric_first && is_float_std(t)) return Tag::kFloat;
  if (!t.empty() && first != '.' && numeric_first && is_int(t)) return Tag::kInt;
  if (t == "<<") return Tag::kMerge;
  if ((t.empty() || first == '~' || first == 'n' || first == 'N') && is_null(t)) return Tag::kNull;
  if (!t.empty() && digit(first) && is_timestamp(t)) return Tag::kTimestamp;
  if (t == "=") return Tag::kValue;
  // What our loader reads as a float must not be written plain ('.____' would come back as 0.0).
  if (numeric_first && is_float_omegaconf(t)) return Tag::kFloat;
  return Tag::kStr;
}

}  // namespace bignlp::config::yaml11
