// FileStore: a Store kept as files in a directory that every rank can see (a shared results dir).
//
// One file per key (the key hex-encoded as its name), written atomically (temp + rename), so a
// reader sees a complete value or none. get() polls with a growing interval (1 ms .. 50 ms).
// add() serialises through an flock()ed counter file. Suitable for rendezvous (a few keys per
// rank), not for traffic; a job's store directory should be fresh (stale keys of an earlier run
// would be read as current: the caller puts the job id in the path).
#pragma once

#include <filesystem>

#include "bignlp/comm/store.h"

namespace bignlp::comm {

class FileStore final : public Store {
 public:
  /// Uses (and creates) `dir`.
  explicit FileStore(std::filesystem::path dir);

  using Store::set;
  void set(const std::string& key, const std::vector<char>& value) override;
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path path_of(const std::string& key) const;
  std::filesystem::path dir_;
};

}  // namespace bignlp::comm
