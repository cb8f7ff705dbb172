#include "bignlp/cluster/nodelist.h"

#include <fmt/format.h>

#include <set>

#include "bignlp/core/error.h"

namespace bignlp::cluster {
namespace {

constexpr std::size_t kMaxHosts = 65536;

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// The values of one bracket's contents ("1-8,10", "01-03"), as strings with their padding.
std::vector<std::string> expand_ranges(std::string_view body, std::string_view expr, std::string_view what) {
  auto bad = [&](std::string_view part, std::string_view why) -> ConfigError {
    return ConfigError(fmt::format("{}: '{}' in '{}' {}", what, part, expr, why));
  };
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t comma = body.find(',', start);
    if (comma == std::string_view::npos) comma = body.size();
    const std::string_view part = body.substr(start, comma - start);
    const auto dash = part.find('-');
    const std::string_view lo = dash == std::string_view::npos ? part : part.substr(0, dash);
    const std::string_view hi = dash == std::string_view::npos ? part : part.substr(dash + 1);
    if (!digits(lo) || !digits(hi)) {
      throw bad(part.empty() ? std::string_view("[]") : part,
                "is not a number or a range of numbers (e.g. [1-8,10], [01-16])");
    }
    if (lo.size() > 9 || hi.size() > 9) throw bad(part, "has a number too long for a host name");
    const long a = std::stol(std::string(lo));
    const long b = std::stol(std::string(hi));
    if (b < a) throw bad(part, "is a reversed range (the first number must not exceed the second)");
    if (static_cast<std::size_t>(b - a) >= kMaxHosts) throw bad(part, fmt::format("names more than {} hosts", kMaxHosts));
    // Slurm pads every value to the width of the lower bound when it has a leading zero.
    const std::size_t width = lo.size() > 1 && lo[0] == '0' ? lo.size() : 0;
    for (long v = a; v <= b; ++v) out.push_back(fmt::format("{:0{}}", v, width));
    start = comma + 1;
  }
  return out;
}

// One expression without top-level commas: text with any number of bracket groups.
void expand_one(std::string_view item, std::string_view expr, std::string_view what, std::vector<std::string>& out) {
  std::vector<std::string> acc{""};
  std::size_t i = 0;
  while (i < item.size()) {
    const auto open = item.find('[', i);
    const std::string_view text = item.substr(i, open == std::string_view::npos ? std::string_view::npos : open - i);
    if (text.find(']') != std::string_view::npos) {
      throw ConfigError(fmt::format("{}: '{}' has a ']' without its '['", what, expr));
    }
    for (auto& a : acc) a += text;
    if (open == std::string_view::npos) break;
    const auto close = item.find(']', open);
    if (close == std::string_view::npos) throw ConfigError(fmt::format("{}: '{}' has a '[' without its ']'", what, expr));
    const auto values = expand_ranges(item.substr(open + 1, close - open - 1), expr, what);
    std::vector<std::string> next;
    if (acc.size() * values.size() > kMaxHosts) {
      throw ConfigError(fmt::format("{}: '{}' names more than {} hosts", what, expr, kMaxHosts));
    }
    for (const auto& a : acc) {
      for (const auto& v : values) next.push_back(a + v);
    }
    acc = std::move(next);
    i = close + 1;
  }
  for (auto& a : acc) {
    if (a.empty()) throw ConfigError(fmt::format("{}: '{}' has an empty host name", what, expr));
    out.push_back(std::move(a));
  }
}

}  // namespace

std::vector<std::string> expand_nodelist(std::string_view expr, std::string_view what) {
  if (expr.empty()) throw ConfigError(fmt::format("{}: the node list is empty", what));
  for (char c : expr) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      throw ConfigError(fmt::format("{}: '{}' holds white space; Slurm node lists are written without it "
                                    "(e.g. hpc-pg0-[1-8,10])",
                                    what, expr));
    }
  }
  std::vector<std::string> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= expr.size(); ++i) {
    const char c = i < expr.size() ? expr[i] : ',';
    if (c == '[') {
      if (++depth > 1) throw ConfigError(fmt::format("{}: '{}' nests brackets", what, expr));
    } else if (c == ']') {
      if (--depth < 0) throw ConfigError(fmt::format("{}: '{}' has a ']' without its '['", what, expr));
    } else if (c == ',' && depth == 0) {
      if (i == start) throw ConfigError(fmt::format("{}: '{}' has an empty entry between commas", what, expr));
      expand_one(expr.substr(start, i - start), expr, what, out);
      if (out.size() > kMaxHosts) throw ConfigError(fmt::format("{}: '{}' names more than {} hosts", what, expr, kMaxHosts));
      start = i + 1;
    }
  }
  if (depth != 0) throw ConfigError(fmt::format("{}: '{}' has a '[' without its ']'", what, expr));
  std::set<std::string> seen;
  for (const auto& h : out) {
    if (!seen.insert(h).second) throw ConfigError(fmt::format("{}: '{}' lists host '{}' twice", what, expr, h));
  }
  return out;
}

}  // namespace bignlp::cluster
