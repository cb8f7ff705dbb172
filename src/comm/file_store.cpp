#include "bignlp/comm/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::comm {

namespace fs = std::filesystem;

FileStore::FileStore(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw IoError(fmt::format("cannot create the store directory '{}': {}", dir_.string(), ec.message()));
}

fs::path FileStore::path_of(const std::string& key) const {
  std::string name = "k_";
  for (unsigned char c : key) name += fmt::format("{:02x}", c);
  return dir_ / name;
}

void FileStore::set(const std::string& key, const std::vector<char>& value) {
  write_file_atomic(path_of(key), std::string_view(value.data(), value.size()));
}

std::vector<char> FileStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto path = path_of(key);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto interval = std::chrono::milliseconds(1);
  for (;;) {
    std::error_code ec;
    if (fs::exists(path, ec)) {
      const std::string s = read_file(path);
      return {s.begin(), s.end()};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw RuntimeError(fmt::format("file store '{}': key '{}' was not set within {:.1f}s", dir_.string(), key,
                                     timeout.count() / 1000.0));
    }
    std::this_thread::sleep_for(interval);
    interval = std::min(interval * 2, std::chrono::milliseconds(50));
  }
}

std::int64_t FileStore::add(const std::string& key, std::int64_t delta) {
  const auto path = path_of(key);
  const auto lock_path = path.string() + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot open '{}': {}", lock_path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX) != 0) {
    ::close(fd);
    throw IoError(fmt::format("cannot lock '{}': {}", lock_path, std::strerror(errno)));
  }
  std::int64_t value = 0;
  try {
    std::error_code ec;
    if (fs::exists(path, ec)) value = std::stoll(read_file(path));
    value += delta;
    write_file_atomic(path, std::to_string(value));
  } catch (...) {
    ::flock(fd, LOCK_UN);
    ::close(fd);
    throw;
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return value;
}

bool FileStore::check(const std::vector<std::string>& keys) {
  return std::all_of(keys.begin(), keys.end(), [&](const std::string& k) {
    std::error_code ec;
    return fs::exists(path_of(k), ec);
  });
}

}  // namespace bignlp::comm
