// YAML loading with OmegaConf's typing (yaml.h). yaml-cpp parses; we type scalars ourselves because
// yaml-cpp knows YAML 1.2 core types only, and we add merge keys and duplicate-key errors.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "pyformat.h"
#include "yaml_scalar.h"

namespace bignlp::config {
namespace {

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

ConfigError load_error(const std::string& file, const YAML::Mark& mark, const std::string& msg) {
  if (mark.line >= 0) return ConfigError(fmt::format("{}:{}:{}: {}", file, mark.line + 1, mark.column + 1, msg));
  return ConfigError(fmt::format("{}: {}", file, msg));
}

// PyYAML's construct_yaml_int.
bool construct_int(std::string_view text, std::int64_t& out) {
  std::string v;
  for (char c : text)
    if (c != '_') v += c;
  int sign = 1;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1;
    v.erase(0, 1);
  }
  auto parse = [&](std::string_view digits, int base, u128& acc) {
    acc = 0;
    if (digits.empty()) return false;
    for (char c : digits) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      if (d >= base) return false;
      acc = acc * static_cast<unsigned>(base) + static_cast<unsigned>(d);
      if (acc > (static_cast<u128>(1) << 64)) return false;
    }
    return true;
  };
  u128 acc = 0;
  if (v == "0") {
    acc = 0;
  } else if (v.rfind("0b", 0) == 0) {
    if (!parse(std::string_view(v).substr(2), 2, acc)) return false;
  } else if (v.rfind("0x", 0) == 0) {
    if (!parse(std::string_view(v).substr(2), 16, acc)) return false;
  } else if (!v.empty() && v[0] == '0') {
    if (!parse(v, 8, acc)) return false;
  } else if (v.find(':') != std::string::npos) {
    u128 base = 1;
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
      const auto c = v.find(':', start);
      parts.push_back(v.substr(start, c == std::string::npos ? std::string::npos : c - start));
      if (c == std::string::npos) break;
      start = c + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      u128 d;
      if (!parse(*it, 10, d)) return false;
      acc += d * base;
      base *= 60;
      if (acc > (static_cast<u128>(1) << 64)) return false;
    }
  } else {
    if (!parse(v, 10, acc)) return false;
  }
  if (sign > 0) {
    if (acc > static_cast<u128>(INT64_MAX)) return false;
    out = static_cast<std::int64_t>(acc);
  } else {
    if (acc > static_cast<u128>(INT64_MAX) + 1) return false;
    out = acc == static_cast<u128>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<std::int64_t>(acc);
  }
  return true;
}

// PyYAML's construct_yaml_float.
double construct_float(std::string_view text) {
  std::string v;
  for (char c : text)
    if (c != '_') v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double sign = 1.0;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1.0;
    v.erase(0, 1);
  }
  if (v == ".inf") return sign * HUGE_VAL;
  if (v == ".nan") return std::nan("");
  if (v.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
      const auto c = v.find(':', start);
      parts.push_back(v.substr(start, c == std::string::npos ? std::string::npos : c - start));
      if (c == std::string::npos) break;
      start = c + 1;
    }
    double base = 1.0, value = 0.0;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      value += std::strtod(it->c_str(), nullptr) * base;
      base *= 60.0;
    }
    return sign * value;
  }
  return sign * std::strtod(v.c_str(), nullptr);
}

// yaml-cpp 0.7 decodes the escapes "\_" and "\N" of double-quoted scalars to the raw Latin-1 bytes
// 0xA0 and 0x85 instead of UTF-8. The input was checked to be UTF-8, so any byte that does not
// start a valid sequence came from such an escape: re-encode it as the code point it stands for.
std::string repair_utf8(const std::string& s) {
  bool clean = true;
  for (unsigned char c : s) clean = clean && c < 0x80;
  if (clean) return s;
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
      ++i;
    }
  }
  return out;
}

class Loader {
 public:
  Loader(std::string file, const YamlLoadOptions& opt) : file_(std::move(file)), opt_(opt) {}

  ConfigNode convert(const YAML::Node& n, const std::string& path, const YAML::Mark& key_mark) {
    struct Nest {
      int& d;
      explicit Nest(int& depth) : d(depth) { ++d; }
      ~Nest() { --d; }
    } nest(depth_);
    if (depth_ > kMaxDepth) {
      throw load_error(file_, n.Mark(), fmt::format("nested more than {} levels deep (a recursive alias?)", kMaxDepth));
    }
    YAML::Mark mark = n.Mark();
    if (mark.line < 0 || (n.IsNull() && key_mark.line >= 0 && mark.line != key_mark.line)) mark = key_mark;
    ConfigNode out;
    switch (n.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out = ConfigNode::null_value();
        if (n.Tag() == "tag:yaml.org,2002:str" || n.Tag() == "!") out = ConfigNode::string("");
        break;
      case YAML::NodeType::Scalar:
        out = scalar(n, path, mark);
        break;
      case YAML::NodeType::Sequence: {
        out = ConfigNode::list();
        std::size_t i = 0;
        for (const auto& child : n) {
          out.push_back(convert(child, child_path(path, std::to_string(i)), child.Mark()));
          ++i;
        }
        break;
      }
      case YAML::NodeType::Map:
        out = mapping(n, path);
        break;
    }
    out.set_provenance(Provenance::from_file(file_, mark.line >= 0 ? mark.line + 1 : 0,
                                             mark.line >= 0 ? mark.column + 1 : 0, child_path(opt_.key_prefix, path)));
    return out;
  }

 private:
  static constexpr int kMaxDepth = 200;
  std::string file_;
  const YamlLoadOptions& opt_;
  int depth_ = 0;

  static std::string child_path(const std::string& parent, const std::string& key) { return child_key_path(parent, key); }

  ConfigNode scalar(const YAML::Node& n, const std::string& path, const YAML::Mark& mark) {
    const std::string text = repair_utf8(n.Scalar());
    const std::string& tag = n.Tag();
    ConfigNode out;
    if (tag == "?") {
      out = parse_yaml_scalar(text);
      if (yaml11::resolve_for_load(text) == yaml11::Tag::kInt && !out.is_int())
        throw load_error(file_, mark, fmt::format("{}: integer '{}' does not fit in 64 bits", path, text));
      if (yaml11::resolve_for_load(text) == yaml11::Tag::kValue)
        throw load_error(file_, mark, fmt::format("{}: the plain value '=' is not allowed in YAML 1.1 (quote it)", path));
    } else if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      out = text == "???" ? ConfigNode::missing() : ConfigNode::string(text);
    } else if (tag == "tag:yaml.org,2002:int") {
      std::int64_t v;
      if (!yaml11::is_int(text) || !construct_int(text, v))
        throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!int", path, text));
      out = ConfigNode::integer(v);
    } else if (tag == "tag:yaml.org,2002:float") {
      if (!yaml11::is_float_omegaconf(text) && !yaml11::is_float_std(text) && !yaml11::is_int(text))
        throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!float", path, text));
      out = ConfigNode::floating(construct_float(text));
    } else if (tag == "tag:yaml.org,2002:bool") {
      if (!yaml11::is_bool(text)) throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!bool", path, text));
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
      out = ConfigNode::boolean(c == 't' || c == 'y' || (c == 'o' && text.size() == 2));
    } else if (tag == "tag:yaml.org,2002:null") {
      out = ConfigNode::null_value();
    } else {
      throw load_error(file_, mark, fmt::format("{}: unsupported YAML tag '{}'", path, tag));
    }
    if (opt_.validate_interpolations && out.is_interpolation()) {
      try {
        validate_interpolation(out.as_string());
      } catch (const InterpolationError& e) {
        const std::string key = child_path(opt_.key_prefix, path);
        throw InterpolationError(e.kind(), fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1,
                                                       key.empty() ? "<root>" : key, e.what()));
      }
    }
    return out;
  }

  void add_merged(ConfigNode& out, const YAML::Node& src, const std::string& path, const YAML::Mark& mark) {
    if (src.IsMap()) {
      ConfigNode m = mapping(src, path);
      for (std::size_t i = 0; i < m.size(); ++i) out.set(m.key_at(i), m.child_at(i));
      return;
    }
    throw load_error(file_, mark, fmt::format("{}: a '<<' merge key needs a mapping or a list of mappings", path));
  }

  ConfigNode mapping(const YAML::Node& n, const std::string& path) {
    // Merge keys recurse here without convert(): guard the depth too (a recursive alias loops).
    struct Nest {
      int& d;
      explicit Nest(int& depth) : d(depth) { ++d; }
      ~Nest() { --d; }
    } nest(depth_);
    if (depth_ > kMaxDepth) {
      throw load_error(file_, n.Mark(), fmt::format("nested more than {} levels deep (a recursive alias?)", kMaxDepth));
    }
    ConfigNode out = ConfigNode::dict();
    // Merge keys first ("<<": map or list of maps; earlier maps in the list win), then own keys.
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: it-> returns a temporary proxy
      if (k.IsScalar() && k.Tag() == "?" && k.Scalar() == "<<") {
        const YAML::Node v = it->second;
        if (v.IsSequence()) {
          // PyYAML: earlier maps in the list win, keys of later maps come first.
          std::vector<YAML::Node> items(v.begin(), v.end());
          for (auto r = items.rbegin(); r != items.rend(); ++r) add_merged(out, *r, path, k.Mark());
        } else {
          add_merged(out, v, path, k.Mark());
        }
      }
    }
    std::vector<std::pair<std::string, YAML::Mark>> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: it-> returns a temporary proxy
      std::string key;
      if (k.IsScalar()) {
        if (k.Tag() == "?" && k.Scalar() == "<<") continue;
        key = repair_utf8(k.Scalar());
      } else if (k.IsNull()) {
        key = "None";
      } else {
        throw load_error(file_, k.Mark(), fmt::format("{}: only scalar keys are supported", path.empty() ? "<root>" : path));
      }
      for (const auto& [s, m] : seen) {
        if (s == key) {
          throw load_error(file_, k.Mark(), fmt::format("{}: duplicate key '{}' (first defined at line {})",
                                                        path.empty() ? "<root>" : path, key, m.line + 1));
        }
      }
      seen.emplace_back(key, k.Mark());
      out.set(key, convert(it->second, child_path(path, key), k.Mark()));
    }
    return out;
  }
};

// PyYAML's reader accepts UTF-8 only, and only printable characters (tab, newlines and the
// printable ranges of Unicode); anything else is an error before parsing starts.
void check_characters(const std::string& text, const std::string& name) {
  int line = 1, column = 1;
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    std::size_t n = 1;
    char32_t cp = c;
    if (c >= 0x80) {
      if ((c >> 5) == 0x6) n = 2, cp = c & 0x1F;
      else if ((c >> 4) == 0xE) n = 3, cp = c & 0x0F;
      else if ((c >> 3) == 0x1E) n = 4, cp = c & 0x07;
      else n = 0;
      bool ok = n > 0 && i + n <= text.size();
      for (std::size_t k = 1; ok && k < n; ++k) {
        const unsigned char cc = static_cast<unsigned char>(text[i + k]);
        ok = (cc >> 6) == 0x2;
        cp = (cp << 6) | (cc & 0x3F);
      }
      if (ok) ok = !((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)));
      if (!ok) throw ConfigError(fmt::format("{}:{}:{}: malformed YAML: the file is not valid UTF-8", name, line, column));
    }
    const bool printable = cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 ||
                           (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
                           (cp >= 0x10000 && cp <= 0x10FFFF);
    if (!printable) {
      throw ConfigError(fmt::format("{}:{}:{}: malformed YAML: unacceptable character #x{:04x}: special characters are "
                                    "not allowed",
                                    name, line, column, static_cast<unsigned>(cp)));
    }
    if (cp == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
}

ConfigNode load_impl(const std::string& text, const std::string& name, const YamlLoadOptions& options) {
  check_characters(text, name);
  // A config file is one document. (yaml-cpp 0.7's LoadAll can loop forever on some malformed
  // inputs, so a second document is detected from a later "---" line instead.)
  bool content = false;
  int line_no = 0;
  for (const auto& line : split(text, '\n')) {
    ++line_no;
    const bool marker = line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker && content) {
      throw ConfigError(fmt::format("{}:{}:1: malformed YAML: expected a single document, found a second one", name, line_no));
    }
    const std::string_view t = trim(line);
    if (!marker && !t.empty() && t[0] != '#') content = true;
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw load_error(name, e.mark, "malformed YAML: " + e.msg);
  }
  std::vector<YAML::Node> docs{doc};
  ConfigNode out;
  if (docs.empty() || docs[0].IsNull()) {
    out = ConfigNode::dict();
    out.set_provenance(Provenance::from_file(name, 0, 0, options.key_prefix));
    return out;
  }
  Loader loader(name, options);
  try {
    return loader.convert(docs[0], "", YAML::Mark::null_mark());
  } catch (const YAML::Exception& e) {
    throw load_error(name, e.mark, "malformed YAML: " + e.msg);
  }
}

}  // namespace

ConfigNode parse_yaml_scalar(std::string_view text) {
  if (text == "???") return ConfigNode::missing();
  switch (yaml11::resolve_for_load(text)) {
    case yaml11::Tag::kBool: {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
      return ConfigNode::boolean(c == 't' || c == 'y' || (c == 'o' && text.size() == 2));
    }
    case yaml11::Tag::kNull:
      return ConfigNode::null_value();
    case yaml11::Tag::kInt: {
      std::int64_t v;
      if (construct_int(text, v)) return ConfigNode::integer(v);
      return ConfigNode::string(std::string(text));
    }
    case yaml11::Tag::kFloat:
      return ConfigNode::floating(construct_float(text));
    default:
      return ConfigNode::string(std::string(text));
  }
}

ConfigNode load_yaml_file(const std::filesystem::path& path, const YamlLoadOptions& options) {
  const std::string text = read_file(path);
  const std::string name = options.display_name.empty() ? path.string() : options.display_name;
  return load_impl(text, name, options);
}

ConfigNode load_yaml_string(std::string_view text, const YamlLoadOptions& options) {
  const std::string name = options.display_name.empty() ? std::string("<string>") : options.display_name;
  return load_impl(std::string(text), name, options);
}

void write_yaml_file(const std::filesystem::path& path, const ConfigNode& node) {
  write_file_atomic(path, to_yaml(node));
}

}  // namespace bignlp::config
