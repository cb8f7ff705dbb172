// Helpers shared by the launch tests: the stand-in worker, and parsing of its record lines.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace bignlp::launch::testing {

/// A link named `name` (e.g. "bignlp-train") to bignlp-test-worker inside `dir`; returns its path.
inline std::filesystem::path worker_as(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  const auto link = dir / name;
  if (!std::filesystem::exists(link)) {
    std::filesystem::create_symlink(std::filesystem::path(BIGNLP_BIN_DIR) / "bignlp-test-worker", link);
  }
  return link;
}

/// One line of the worker's record file: the event and its key=value fields (args: the rest).
struct Record {
  std::string event;
  std::map<std::string, std::string> f;
};

inline std::vector<Record> read_records(const std::filesystem::path& file) {
  std::vector<Record> out;
  if (!std::filesystem::exists(file)) return out;
  for (const std::string& line : split(read_file(file), '\n')) {
    if (line.empty()) continue;
    Record r;
    const auto args = line.find(" args=");
    const std::string head = line.substr(0, args);
    if (args != std::string::npos) r.f["args"] = line.substr(args + 6);
    const auto parts = split(head, ' ');
    r.event = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const auto eq = parts[i].find('=');
      if (eq != std::string::npos) r.f[parts[i].substr(0, eq)] = parts[i].substr(eq + 1);
    }
    out.push_back(std::move(r));
  }
  return out;
}

/// Arguments the worker wrote to BIGNLP_TEST_ARGV (NUL-terminated each).
inline std::vector<std::string> read_argv(const std::filesystem::path& file) {
  std::vector<std::string> out;
  const std::string all = read_file(file);
  std::size_t start = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i] == '\0') {
      out.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace bignlp::launch::testing
