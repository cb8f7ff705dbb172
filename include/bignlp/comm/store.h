// Store: the small key-value service ranks rendezvous through (gloo addresses, NCCL unique ids).
//
// Keys are strings, values bytes. get() blocks until the key exists or the timeout passes (then
// throws RuntimeError naming the key and what is known about who should have set it). add() is
// an atomic counter (used for "everyone arrived" checks). Two implementations: TcpStore (a server
// thread on the master rank, clients elsewhere; tcp_store.h) and FileStore (a directory on a file
// system all ranks share, e.g. the job's results dir; file_store.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace bignlp::comm {

class Store {
 public:
  virtual ~Store() = default;
  /// Sets (or replaces) `key`.
  virtual void set(const std::string& key, const std::vector<char>& value) = 0;
  /// The value of `key`, waiting up to `timeout` for it to be set.
  virtual std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  /// Atomically adds `delta` to the integer at `key` (0 when absent) and returns the new value.
  virtual std::int64_t add(const std::string& key, std::int64_t delta) = 0;
  /// True when every key exists (never blocks).
  virtual bool check(const std::vector<std::string>& keys) = 0;

  void set(const std::string& key, const std::string& value) { set(key, std::vector<char>(value.begin(), value.end())); }
  std::string get_string(const std::string& key, std::chrono::milliseconds timeout) {
    auto v = get(key, timeout);
    return {v.begin(), v.end()};
  }
};

/// Keys seen through a prefix ("<prefix>/<key>"): one store serves several rendezvous.
class PrefixStore final : public Store {
 public:
  PrefixStore(Store& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
  using Store::set;
  void set(const std::string& key, const std::vector<char>& value) override { inner_.set(full(key), value); }
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout) override {
    return inner_.get(full(key), timeout);
  }
  std::int64_t add(const std::string& key, std::int64_t delta) override { return inner_.add(full(key), delta); }
  bool check(const std::vector<std::string>& keys) override {
    std::vector<std::string> f;
    f.reserve(keys.size());
    for (const auto& k : keys) f.push_back(full(k));
    return inner_.check(f);
  }

 private:
  std::string full(const std::string& key) const { return prefix_ + "/" + key; }
  Store& inner_;
  std::string prefix_;
};

}  // namespace bignlp::comm
