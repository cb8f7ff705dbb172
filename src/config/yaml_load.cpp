// YAML loading with OmegaConf's typing (yaml.h). libyaml (the parser under PyYAML's C loader, so
// OmegaConf's own) turns the text into events; we type plain scalars ourselves with YAML 1.1's
// resolvers as PyYAML does, and add merge keys and duplicate-key errors.
#include <fmt/format.h>
#include <yaml.h>

#include <cmath>
#include <string>
#include <unordered_map>

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

// A position in the text, 0-based as libyaml reports it; line -1 when unknown.
struct Mark {
  int line = -1;
  int column = -1;
};

// Anchors are numbered in the order they appear (0: none); an alias names the latest of its name.
using AnchorId = std::size_t;

ConfigError load_error(const std::string& file, const Mark& mark, const std::string& msg) {
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

// Builds ConfigNode trees straight from the parser's events (no document graph in between):
// a stack of open containers; map entries are collected and assembled at the map's end, where
// "<<" merge keys are applied (earlier merged maps win, own keys win over merged ones).
class Builder final {
 public:
  Builder(std::string file, const YamlLoadOptions& opt) : file_(std::move(file)), opt_(opt) {}

  bool has_result() const { return have_result_; }
  ConfigNode take_result() { return std::move(result_); }

  void OnNull(const Mark& mark, AnchorId anchor) {
    if (expecting_key()) {
      key("None", mark, false);
      return;
    }
    Mark m = mark;
    if (!stack_.empty() && stack_.back().is_map && stack_.back().key_mark.line >= 0 && m.line != stack_.back().key_mark.line)
      m = stack_.back().key_mark;
    ConfigNode n;
    stamp(n, m, child_path());
    deliver(std::move(n), anchor, 1);
  }

  void OnAlias(const Mark& mark, AnchorId anchor) {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      throw load_error(file_, mark, fmt::format("{}: an alias refers to its own anchor (a recursive alias)", where()));
    }
    if (expecting_key()) {
      const ConfigNode& k = it->second.node;
      if (!k.is_scalar()) throw load_error(file_, mark, fmt::format("{}: only scalar keys are supported", where()));
      key(k.is_string() ? k.as_string() : py_key(k), mark, false);
      return;
    }
    // Each alias is a full copy of its anchor's tree: the copies are counted so that a few KB of
    // nested aliases (an "alias bomb") stop with an error instead of exhausting memory.
    alias_nodes_ += it->second.nodes;
    if (alias_nodes_ > kMaxAliasNodes) {
      throw load_error(file_, mark,
                       fmt::format("{}: the aliases of this file expand to more than {} nodes (nested aliases, a "
                                   "\"billion laughs\" document?); the limit is documented in docs/config.md",
                                   child_path().empty() ? std::string("<root>") : child_path(), kMaxAliasNodes));
    }
    deliver(ConfigNode(it->second.node), 0, it->second.nodes);
  }

  void OnScalar(const Mark& mark, const std::string& tag, AnchorId anchor, const std::string& value) {
    if (expecting_key()) {
      const bool merge = tag == "?" && value == "<<";
      std::string k = value;
      if (tag == "?" && !merge) {
        // Plain keys are typed like values (PyYAML); keys are strings here, shown as Python does.
        const ConfigNode typed = parse_yaml_scalar(k);
        if (!typed.is_string() && !typed.is_missing()) k = py_key(typed);
      }
      if (anchor) anchors_[anchor] = Anchored{ConfigNode::string(k), 1};
      key(std::move(k), mark, merge);
      return;
    }
    const std::string path = child_path();
    ConfigNode n = scalar(value, tag, mark, path);
    stamp(n, mark, path);
    deliver(std::move(n), anchor, 1);
  }

  void OnSequenceStart(const Mark& mark, AnchorId anchor) {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() { close(); }
  void OnMapStart(const Mark& mark, AnchorId anchor) {
    open(mark, anchor, true);
  }
  void OnMapEnd() { close(); }

 private:
  struct Entry {
    std::string key;
    Mark mark;
    ConfigNode value;
  };
  struct Frame {
    bool is_map = false;
    Mark mark;
    AnchorId anchor = 0;
    std::string path;
    ConfigNode list;               // sequences
    std::vector<Entry> entries;    // maps: own entries in order
    std::unordered_map<std::string, std::size_t> entry_index;  // maps: key -> position in entries
    std::size_t nodes = 1;         // nodes in this subtree so far (itself included)
    std::vector<ConfigNode> merges;  // maps: values of "<<" keys
    bool have_key = false;         // a key is waiting for its value
    bool key_is_merge = false;
    std::string key;
    Mark key_mark = Mark{};
  };

  static constexpr std::size_t kMaxDepth = 200;
  static constexpr std::size_t kMaxAliasNodes = 1'000'000;
  struct Anchored {
    ConfigNode node;
    std::size_t nodes = 1;  // size of the tree
  };
  std::string file_;
  const YamlLoadOptions& opt_;
  std::vector<Frame> stack_;
  std::unordered_map<AnchorId, Anchored> anchors_;
  std::size_t alias_nodes_ = 0;  // nodes copied by aliases so far
  ConfigNode result_;
  bool have_result_ = false;

  static std::string py_key(const ConfigNode& n) { return n.is_null() ? std::string("None") : n.to_python_str(); }

  std::string where() const {
    const std::string p = stack_.empty() ? std::string() : stack_.back().path;
    return p.empty() ? std::string("<root>") : p;
  }

  bool expecting_key() const { return !stack_.empty() && stack_.back().is_map && !stack_.back().have_key; }

  std::string child_path() const {
    if (stack_.empty()) return opt_.key_prefix;
    const Frame& f = stack_.back();
    if (f.is_map) return child_key_path(f.path, f.key_is_merge ? std::string("<<") : f.key);
    return child_key_path(f.path, std::to_string(f.list.size()));
  }

  void stamp(ConfigNode& n, const Mark& mark, const std::string& path) const {
    n.set_provenance(Provenance::from_file(file_, mark.line >= 0 ? mark.line + 1 : 0, mark.line >= 0 ? mark.column + 1 : 0,
                                           path));
  }

  void key(std::string k, const Mark& mark, bool merge) {
    Frame& f = stack_.back();
    if (!merge) {
      const auto it = f.entry_index.find(k);
      if (it != f.entry_index.end()) {
        throw load_error(file_, mark,
                         fmt::format("{}: duplicate key '{}' (first defined at line {})", where(), k,
                                     f.entries[it->second].mark.line + 1));
      }
    }
    f.have_key = true;
    f.key_is_merge = merge;
    f.key = std::move(k);
    f.key_mark = mark;
  }

  void open(const Mark& mark, AnchorId anchor, bool is_map) {
    if (expecting_key()) throw load_error(file_, mark, fmt::format("{}: only scalar keys are supported", where()));
    if (stack_.size() >= kMaxDepth) {
      throw load_error(file_, mark, fmt::format("nested more than {} levels deep (a recursive alias?)", kMaxDepth));
    }
    Frame f;
    f.is_map = is_map;
    f.mark = mark;
    f.anchor = anchor;
    f.path = child_path();
    if (!is_map) f.list = ConfigNode::list();
    stack_.push_back(std::move(f));
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    ConfigNode n;
    if (!f.is_map) {
      n = std::move(f.list);
    } else {
      // Later merged maps first, earlier ones over them, own keys over all; a key keeps the place
      // of its first appearance. Hashed, so a mapping of many keys is built in linear time.
      std::vector<std::pair<std::string, ConfigNode>> items;
      std::unordered_map<std::string, std::size_t> at;
      auto put = [&](const std::string& k, ConfigNode v) {
        const auto [it, added] = at.emplace(k, items.size());
        if (added) {
          items.emplace_back(k, std::move(v));
        } else {
          items[it->second].second = std::move(v);
        }
      };
      for (auto m = f.merges.rbegin(); m != f.merges.rend(); ++m) {
        for (std::size_t i = 0; i < m->size(); ++i) put(m->key_at(i), m->child_at(i));
      }
      if (f.merges.empty()) {
        items.reserve(f.entries.size());
        for (auto& e : f.entries) items.emplace_back(std::move(e.key), std::move(e.value));
      } else {
        for (auto& e : f.entries) put(e.key, std::move(e.value));
      }
      n = ConfigNode::dict_of(std::move(items));
    }
    stamp(n, f.mark, f.path);
    deliver(std::move(n), f.anchor, f.nodes);
  }

  void deliver(ConfigNode n, AnchorId anchor, std::size_t nodes) {
    if (anchor) anchors_[anchor] = Anchored{n, nodes};
    if (!stack_.empty()) stack_.back().nodes += nodes;
    if (stack_.empty()) {
      result_ = std::move(n);
      have_result_ = true;
      return;
    }
    Frame& f = stack_.back();
    if (!f.is_map) {
      f.list.push_back(std::move(n));
      return;
    }
    if (f.key_is_merge) {
      const Mark mark = f.key_mark;
      if (n.is_dict()) {
        f.merges.push_back(std::move(n));
      } else if (n.is_list()) {
        // Earlier maps in the list win: applied last.
        for (auto it = n.children().rbegin(); it != n.children().rend(); ++it) {
          if (!it->is_dict()) {
            throw load_error(file_, mark, fmt::format("{}: a '<<' merge key needs a mapping or a list of mappings", where()));
          }
          f.merges.insert(f.merges.begin(), std::move(*it));
        }
      } else {
        throw load_error(file_, mark, fmt::format("{}: a '<<' merge key needs a mapping or a list of mappings", where()));
      }
    } else {
      f.entry_index.emplace(f.key, f.entries.size());
      f.entries.push_back(Entry{std::move(f.key), f.key_mark, std::move(n)});
    }
    f.have_key = false;
    f.key_is_merge = false;
    f.key.clear();
  }

  ConfigNode scalar(const std::string& text, const std::string& tag, const Mark& mark, const std::string& path) {
    ConfigNode out;
    const std::string shown = path.empty() ? std::string("<root>") : path;
    if (tag == "?") {
      out = parse_yaml_scalar(text);
      const auto t = yaml11::resolve_for_load(text);
      if (t == yaml11::Tag::kInt && !out.is_int())
        throw load_error(file_, mark, fmt::format("{}: integer '{}' does not fit in 64 bits", shown, text));
      if (t == yaml11::Tag::kValue)
        throw load_error(file_, mark, fmt::format("{}: the plain value '=' is not allowed in YAML 1.1 (quote it)", shown));
    } else if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      out = text == "???" ? ConfigNode::missing() : ConfigNode::string(text);
    } else if (tag == "tag:yaml.org,2002:int") {
      std::int64_t v;
      if (!yaml11::is_int(text) || !construct_int(text, v))
        throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!int", shown, text));
      out = ConfigNode::integer(v);
    } else if (tag == "tag:yaml.org,2002:float") {
      if (!yaml11::is_float_omegaconf(text) && !yaml11::is_float_std(text) && !yaml11::is_int(text))
        throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!float", shown, text));
      out = ConfigNode::floating(construct_float(text));
    } else if (tag == "tag:yaml.org,2002:bool") {
      if (!yaml11::is_bool(text)) throw load_error(file_, mark, fmt::format("{}: '{}' is not a valid !!bool", shown, text));
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
      out = ConfigNode::boolean(c == 't' || c == 'y' || (c == 'o' && text.size() == 2));
    } else if (tag == "tag:yaml.org,2002:null") {
      out = ConfigNode::null_value();
    } else {
      throw load_error(file_, mark, fmt::format("{}: unsupported YAML tag '{}'", shown, tag));
    }
    if (opt_.validate_interpolations && out.is_interpolation()) {
      try {
        validate_interpolation(out.as_string());
      } catch (const InterpolationError& e) {
        throw InterpolationError(e.kind(), fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1, shown,
                                                       e.what()));
      }
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

// Runs libyaml's parser over `text`, feeding its events to the builder.
void parse_events(const std::string& text, const std::string& name, Builder& builder) {
  struct Parser {
    yaml_parser_t p;
    Parser() {
      if (!yaml_parser_initialize(&p)) throw RuntimeError("libyaml: cannot initialise a parser (out of memory)");
    }
    ~Parser() { yaml_parser_delete(&p); }
  } parser;
  yaml_parser_set_input_string(&parser.p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  std::unordered_map<std::string, AnchorId> anchor_ids;
  AnchorId next_anchor = 1;
  auto anchor_of = [&](const yaml_char_t* a) -> AnchorId {
    if (a == nullptr) return 0;
    const AnchorId id = next_anchor++;
    anchor_ids[reinterpret_cast<const char*>(a)] = id;
    return id;
  };
  for (;;) {
    struct Event {
      yaml_event_t e;
      ~Event() { yaml_event_delete(&e); }
    } ev;
    if (!yaml_parser_parse(&parser.p, &ev.e)) {
      const yaml_parser_t& p = parser.p;
      std::string msg = "malformed YAML: ";
      if (p.context != nullptr) {
        msg += fmt::format("{} (line {}, column {}): ", p.context, p.context_mark.line + 1, p.context_mark.column + 1);
      }
      msg += p.problem != nullptr ? p.problem : "unknown error";
      if (p.error == YAML_MEMORY_ERROR) msg = "malformed YAML: out of memory";
      throw load_error(name, Mark{static_cast<int>(p.problem_mark.line), static_cast<int>(p.problem_mark.column)}, msg);
    }
    const yaml_event_t& e = ev.e;
    const Mark mark{static_cast<int>(e.start_mark.line), static_cast<int>(e.start_mark.column)};
    switch (e.type) {
      case YAML_STREAM_END_EVENT:
        return;
      case YAML_SCALAR_EVENT: {
        const std::string value(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        const AnchorId anchor = anchor_of(e.data.scalar.anchor);
        const bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (e.data.scalar.tag == nullptr && plain && (value.empty() || value == "~" || value == "null" || value == "Null" ||
                                                      value == "NULL")) {
          builder.OnNull(mark, anchor);
          break;
        }
        // "?": a plain scalar, typed by the YAML 1.1 resolvers; "!": quoted or block, a string.
        const std::string tag = e.data.scalar.tag != nullptr ? reinterpret_cast<const char*>(e.data.scalar.tag)
                                : plain                      ? "?"
                                                             : "!";
        builder.OnScalar(mark, tag, anchor, value);
        break;
      }
      case YAML_ALIAS_EVENT: {
        const std::string a = reinterpret_cast<const char*>(e.data.alias.anchor);
        const auto it = anchor_ids.find(a);
        if (it == anchor_ids.end()) throw load_error(name, mark, fmt::format("malformed YAML: found undefined alias '{}'", a));
        builder.OnAlias(mark, it->second);
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
        builder.OnSequenceStart(mark, anchor_of(e.data.sequence_start.anchor));
        break;
      case YAML_SEQUENCE_END_EVENT:
        builder.OnSequenceEnd();
        break;
      case YAML_MAPPING_START_EVENT:
        builder.OnMapStart(mark, anchor_of(e.data.mapping_start.anchor));
        break;
      case YAML_MAPPING_END_EVENT:
        builder.OnMapEnd();
        break;
      default:  // stream and document starts and ends
        break;
    }
  }
}

ConfigNode load_impl(const std::string& text, const std::string& name, const YamlLoadOptions& options) {
  check_characters(text, name);
  // A config file is one document: a later "---" after content is an error, found before parsing.
  bool content = false;
  int line_no = 0;
  for (std::size_t pos = 0; pos <= text.size();) {
    const std::size_t nl = text.find('\n', pos);
    const std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    ++line_no;
    const bool marker = line.substr(0, 3) == "---" &&
                        (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker && content) {
      throw ConfigError(
          fmt::format("{}:{}:1: malformed YAML: expected a single document, found a second one", name, line_no));
    }
    const std::string_view t = trim(line);
    if (!marker && !t.empty() && t[0] != '#') content = true;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  Builder builder(name, options);
  parse_events(text, name, builder);
  ConfigNode out = builder.has_result() ? builder.take_result() : ConfigNode();
  if (out.is_null()) {  // an empty document is {}
    out = ConfigNode::dict();
    out.set_provenance(Provenance::from_file(name, 0, 0, options.key_prefix));
  }
  return out;
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
