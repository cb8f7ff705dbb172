// TcpStore: a Store served over TCP by the master rank; every rank (the master too) is a client.
//
// The server runs on a thread of the master process (one thread per connection; a blocking get
// waits on the server side, so clients do not poll). Clients connect with retries until the
// connect timeout: ranks start in any order. Protocol, little-endian: request = u8 op, u32 key
// length, key, u64 value length, value; response = u8 status (0 ok, 1 timeout), u64 length, bytes.
// The server stops when the master's TcpStore is destroyed; programs keep the master's store alive
// until the other ranks are done with it (a barrier at the end of set-up).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "bignlp/comm/store.h"

namespace bignlp::comm {

struct TcpStoreOptions {
  std::string host = "127.0.0.1";  ///< the master's address (clients connect here)
  int port = 0;                    ///< 0 on the server: pick a free port (see port())
  bool is_server = false;          ///< this process runs the server (the master rank)
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(120);
};

class TcpStore final : public Store {
 public:
  /// Starts the server (is_server) and connects. Throws RuntimeError naming host:port on failure
  /// ("cannot bind", or "no store at host:port after 120 s: is the master rank running?").
  explicit TcpStore(const TcpStoreOptions& options);
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  /// The port the server listens on (useful with port 0).
  int port() const { return port_; }

  using Store::set;
  void set(const std::string& key, const std::vector<char>& value) override;
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  struct Server;
  std::vector<char> request(std::uint8_t op, const std::string& key, const std::vector<char>& value, std::uint8_t* status);

  TcpStoreOptions options_;
  int port_ = 0;
  std::unique_ptr<Server> server_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace bignlp::comm
