// TcpStore: a Store served over TCP by the master rank; every rank (the master too) is a client.
//
// The server runs on a thread of the master process (one thread per connection; a blocking get
// waits on the server side, so clients do not poll). Clients connect with retries until the
// connect timeout: ranks start in any order. The server stops when the master's TcpStore is
// destroyed; programs keep the master's store alive until the other ranks are done with it.
//
// Security: the server listens on the address `host` resolves to (the MASTER_ADDR interface), not
// on every interface, and every connection must first present the job's secret (a random token
// the launcher puts in each task's environment as BIGNLP_STORE_SECRET); a connection that does not
// within `handshake_timeout` is closed. Keys and values have size caps (checked before anything
// is allocated), and no request, however malformed, can end the server: a bad connection is closed.
//
// Protocol, little-endian. Handshake: u32 magic "BNST", u32 secret length, secret -> u8 status
// (0 ok, 2 refused, then the server closes). Request: u8 op, u32 key length, key, u64 value length,
// value -> u8 status (0 ok, 1 timeout), u64 length, bytes.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "bignlp/comm/store.h"

namespace bignlp::comm {

/// The environment variable that carries the job's store secret to every task.
inline constexpr const char* kStoreSecretEnv = "BIGNLP_STORE_SECRET";

struct TcpStoreOptions {
  std::string host = "127.0.0.1";  ///< the master's address: clients connect here, the server binds here
  int port = 0;                    ///< 0 on the server: pick a free port (see port())
  bool is_server = false;          ///< this process runs the server (the master rank)
  std::string secret;              ///< the job's token; client and server must agree
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(120);
  /// The server closes a connection that has not presented its secret within this time.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
  /// A reply must arrive within this (plus a get's own timeout) or the client throws.
  std::chrono::milliseconds reply_timeout = std::chrono::seconds(120);
  std::size_t max_key_bytes = 4096;
  std::size_t max_value_bytes = std::size_t{64} << 20;  ///< 64 MiB
  std::size_t max_connections = 4096;                   ///< more at once are closed on accept
};

class TcpStore final : public Store {
 public:
  /// Starts the server (is_server) and connects. Throws RuntimeError naming host:port on failure
  /// ("cannot listen", "no store at host:port after 120 s: is the master rank running?", "refused
  /// this rank's secret").
  explicit TcpStore(const TcpStoreOptions& options);
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  /// The port the server listens on (useful with port 0).
  int port() const { return port_; }
  /// The server's listening address (dotted quad); "" on a client.
  const std::string& listen_address() const { return listen_address_; }

  using Store::set;
  void set(const std::string& key, const std::vector<char>& value) override;
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  struct Server;
  std::vector<char> request(std::uint8_t op, const std::string& key, const std::vector<char>& value, std::uint8_t* status,
                            std::chrono::milliseconds extra_wait);
  void check_sizes(const std::string& key, std::size_t value_size) const;

  TcpStoreOptions options_;
  int port_ = 0;
  std::string listen_address_;
  std::unique_ptr<Server> server_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace bignlp::comm
