#include "bignlp/core/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace fs = std::filesystem;

namespace bignlp {
namespace {

std::string os_reason() { return std::strerror(errno); }

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}{:04x}", rd(), ::getpid() & 0xffff);
}

}  // namespace

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot read '{}': {}", path.string(), os_reason()));
  std::string data;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size > 0) {
    data.resize(static_cast<std::size_t>(size));
    in.seekg(0, std::ios::beg);
    in.read(data.data(), size);
  }
  if (in.bad()) throw IoError(fmt::format("cannot read '{}': {}", path.string(), os_reason()));
  return data;
}

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("cannot open '{}' to sync it: {}", path.string(), os_reason()));
  const int rc = ::fsync(fd);
  const std::string reason = rc != 0 ? os_reason() : "";
  ::close(fd);
  if (rc != 0) throw IoError(fmt::format("cannot sync '{}': {}", path.string(), reason));
}

void write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IoError(fmt::format("cannot create directory '{}': {}", parent.string(), ec.message()));

  const fs::path tmp = parent / fmt::format(".{}.tmp-{}", path.filename().string(), random_suffix());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw IoError(fmt::format("cannot write '{}': {}", path.string(), os_reason()));
  auto fail = [&](const std::string& what) {
    const std::string reason = os_reason();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("cannot write '{}': {}: {}", path.string(), what, reason));
  };
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) fail("chmod");
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const std::string reason = os_reason();
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("cannot write '{}': close: {}", path.string(), reason));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = os_reason();
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("cannot write '{}': rename: {}", path.string(), reason));
  }
  fsync_path(parent);
}

void rename_directory_atomic(const fs::path& tmp_dir, const fs::path& final_dir, bool replace) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
    if (!replace) throw IoError(fmt::format("cannot move '{}' to '{}': destination exists", tmp_dir.string(), final_dir.string()));
    old = final_dir.parent_path() / (".tmp-old-" + final_dir.filename().string() + "-" + random_suffix());
    fs::rename(final_dir, old, ec);
    if (ec) throw IoError(fmt::format("cannot move '{}' aside: {}", final_dir.string(), ec.message()));
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) throw IoError(fmt::format("cannot move '{}' to '{}': {}", tmp_dir.string(), final_dir.string(), ec.message()));
  fsync_path(final_dir.has_parent_path() ? final_dir.parent_path() : fs::path("."));
  if (!old.empty()) fs::remove_all(old, ec);
}

void remove_directory_atomic(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  const fs::path hidden = dir.parent_path() / (".tmp-removed-" + dir.filename().string() + "-" + random_suffix());
  fs::rename(dir, hidden, ec);
  if (ec) throw IoError(fmt::format("cannot remove '{}' (renaming it aside failed): {}", dir.string(), ec.message()));
  fs::remove_all(hidden, ec);
  if (ec) throw IoError(fmt::format("cannot remove '{}': {}", hidden.string(), ec.message()));
}

fs::path StagedDirectory::staging_path(const fs::path& target, std::string_view suffix) {
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return parent / fmt::format("{}{}-{}", kStagingPrefix, target.filename().string(), suffix);
}

StagedDirectory::StagedDirectory(fs::path target, std::optional<std::string> shared_suffix)
    : target_(std::move(target)), path_(staging_path(target_, shared_suffix ? *shared_suffix : random_suffix())) {
  std::error_code ec;
  if (shared_suffix) fs::remove_all(path_, ec);  // a leftover of an interrupted attempt
  fs::create_directories(path_, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", path_.string(), ec.message()));
}

StagedDirectory::~StagedDirectory() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void StagedDirectory::commit(bool replace) {
  BIGNLP_CHECK(!committed_, "StagedDirectory '{}' committed twice", target_.string());
  fsync_path(path_);
  rename_directory_atomic(path_, target_, replace);
  committed_ = true;
}

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw IoError(fmt::format("cannot create a temporary directory: {}", os_reason()));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace bignlp
