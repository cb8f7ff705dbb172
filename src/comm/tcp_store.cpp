#include "bignlp/comm/tcp_store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bignlp/core/error.h"

namespace bignlp::comm {

namespace {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

enum Op : std::uint8_t { kSet = 1, kGet = 2, kAdd = 3, kCheck = 4 };
enum Status : std::uint8_t { kOk = 0, kTimeout = 1, kRefused = 2 };
constexpr std::uint32_t kMagic = 0x5453'4e42;  // "BNST" little-endian
constexpr std::uint32_t kMaxSecretBytes = 1024;

// Waits until fd is readable (or writable) or the deadline passes; false on timeout or error.
bool wait_fd(int fd, short events, const Deadline& deadline) {
  for (;;) {
    int ms = -1;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return false;
      ms = static_cast<int>(std::min<long long>(left, 1 << 30));
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// Full read/write; false when the peer closed, an error occurred or the deadline passed.
bool write_all(int fd, const void* data, std::size_t n, const Deadline& deadline = std::nullopt) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (deadline && !wait_fd(fd, POLLOUT, deadline)) return false;
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool read_all(int fd, void* data, std::size_t n, const Deadline& deadline = std::nullopt) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (deadline && !wait_fd(fd, POLLIN, deadline)) return false;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

template <typename T>
void put(std::vector<char>& buf, T v) {
  const char* p = reinterpret_cast<const char*>(&v);
  buf.insert(buf.end(), p, p + sizeof v);
}

// Compares without an early exit, so the time taken does not tell how much of a guess was right.
bool same_secret(const std::string& given, const std::string& expected) {
  if (given.size() != expected.size()) return false;  // the length is no secret
  unsigned diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

// The IPv4 address `host` names (the first one getaddrinfo returns). Throws RuntimeError.
in_addr resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (gai != 0 || res == nullptr) {
    throw RuntimeError(fmt::format("tcp store: cannot resolve the master address '{}' to listen on: {} (set "
                                   "MASTER_ADDR to this node's address)",
                                   host, gai != 0 ? ::gai_strerror(gai) : "no address"));
  }
  const in_addr a = reinterpret_cast<const sockaddr_in*>(res->ai_addr)->sin_addr;
  ::freeaddrinfo(res);
  return a;
}

}  // namespace

struct TcpStore::Server {
  TcpStoreOptions options;
  int listen_fd = -1;
  std::thread accept_thread;
  std::vector<std::thread> clients;
  std::vector<int> client_fds;
  std::size_t open_connections = 0;
  std::mutex mutex;
  std::condition_variable cv;
  std::unordered_map<std::string, std::vector<char>> data;
  std::atomic<bool> stop{false};

  // The handshake: the magic and the job's secret within the handshake timeout.
  bool authenticate(int fd) const {
    const Deadline deadline = Clock::now() + options.handshake_timeout;
    std::uint32_t magic = 0, len = 0;
    if (!read_all(fd, &magic, 4, deadline) || magic != kMagic) return false;
    if (!read_all(fd, &len, 4, deadline) || len > kMaxSecretBytes) return false;
    std::string secret(len, '\0');
    if (len > 0 && !read_all(fd, secret.data(), len, deadline)) return false;
    const bool ok = same_secret(secret, options.secret);
    const std::uint8_t status = ok ? kOk : kRefused;
    write_all(fd, &status, 1, deadline);
    return ok;
  }

  // One request; false closes the connection (peer gone, malformed or oversized request).
  bool handle(int fd) {
    std::uint8_t op = 0;
    if (!read_all(fd, &op, 1)) return false;
    if (op < kSet || op > kCheck) return false;
    // The rest of a request follows its first byte at once.
    const Deadline deadline = Clock::now() + options.reply_timeout;
    std::uint32_t klen = 0;
    if (!read_all(fd, &klen, 4, deadline) || klen > options.max_key_bytes) return false;
    std::string key(klen, '\0');
    if (klen > 0 && !read_all(fd, key.data(), klen, deadline)) return false;
    std::uint64_t vlen = 0;
    if (!read_all(fd, &vlen, 8, deadline) || vlen > options.max_value_bytes) return false;
    std::vector<char> value(static_cast<std::size_t>(vlen));
    if (vlen > 0 && !read_all(fd, value.data(), value.size(), deadline)) return false;

    std::uint8_t status = kOk;
    std::vector<char> reply;
    if (op == kSet) {
      {
        std::lock_guard lock(mutex);
        data[key] = std::move(value);
      }
      cv.notify_all();
    } else if (op == kGet) {
      if (value.size() != 8) return false;
      std::uint64_t timeout_ms = 0;
      std::memcpy(&timeout_ms, value.data(), 8);
      timeout_ms = std::min<std::uint64_t>(timeout_ms, std::uint64_t{1} << 40);
      std::unique_lock lock(mutex);
      const bool found = cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                     [&] { return stop.load() || data.count(key) > 0; });
      auto it = data.find(key);
      if (found && it != data.end()) {
        reply = it->second;
      } else {
        status = kTimeout;
      }
    } else if (op == kAdd) {
      if (value.size() != 8) return false;
      std::int64_t delta = 0;
      std::memcpy(&delta, value.data(), 8);
      std::int64_t now = 0;
      {
        std::lock_guard lock(mutex);
        auto& v = data[key];
        if (v.size() == 8) std::memcpy(&now, v.data(), 8);
        now = static_cast<std::int64_t>(static_cast<std::uint64_t>(now) + static_cast<std::uint64_t>(delta));
        v.assign(reinterpret_cast<const char*>(&now), reinterpret_cast<const char*>(&now) + 8);
      }
      cv.notify_all();
      put(reply, now);
    } else {  // kCheck; value: the keys, each u32 length + bytes
      bool all = true;
      std::size_t pos = 0;
      std::lock_guard lock(mutex);
      while (pos < value.size()) {
        std::uint32_t n = 0;
        if (value.size() - pos < 4) return false;
        std::memcpy(&n, value.data() + pos, 4);
        pos += 4;
        if (n > value.size() - pos) return false;
        if (!data.count(std::string(value.data() + pos, n))) all = false;
        pos += n;
      }
      reply.push_back(all ? 1 : 0);
    }
    const std::uint64_t rlen = reply.size();
    const Deadline wd = Clock::now() + options.reply_timeout;
    return write_all(fd, &status, 1, wd) && write_all(fd, &rlen, 8, wd) &&
           (rlen == 0 || write_all(fd, reply.data(), rlen, wd));
  }

  void serve(int fd) {
    // Nothing a peer sends may end the process: every error closes this connection only.
    try {
      if (authenticate(fd)) {
        while (!stop && handle(fd)) {
        }
      }
    } catch (...) {
    }
    std::lock_guard lock(mutex);
    for (int& c : client_fds) {
      if (c == fd) c = -1;
    }
    --open_connections;
    ::close(fd);
  }

  // Stops accepting, ends every connection and joins every thread.
  void shutdown() {
    stop = true;
    cv.notify_all();
    if (accept_thread.joinable()) accept_thread.join();
    {
      std::lock_guard lock(mutex);
      for (int c : client_fds) {
        if (c >= 0) ::shutdown(c, SHUT_RDWR);
      }
    }
    for (auto& t : clients) {
      if (t.joinable()) t.join();
    }
    if (listen_fd >= 0) ::close(listen_fd);
    listen_fd = -1;
  }

  void accept_loop() {
    while (!stop) {
      try {
        pollfd p{listen_fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard lock(mutex);
        if (open_connections >= options.max_connections) {
          ::close(c);
          continue;
        }
        try {
          clients.emplace_back([this, c] { serve(c); });
        } catch (...) {
          ::close(c);
          continue;
        }
        ++open_connections;
        client_fds.push_back(c);
      } catch (...) {
      }
    }
  }
};

TcpStore::TcpStore(const TcpStoreOptions& options) : options_(options), port_(options.port) {
  if (options_.is_server) {
    server_ = std::make_unique<Server>();
    server_->options = options_;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw RuntimeError(fmt::format("tcp store: socket(): {}", std::strerror(errno)));
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    try {
      addr.sin_addr = resolve_ipv4(options_.host);  // the MASTER_ADDR interface only
    } catch (...) {
      ::close(fd);
      throw;
    }
    addr.sin_port = htons(static_cast<std::uint16_t>(options_.port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1024) != 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      throw RuntimeError(fmt::format("tcp store: cannot listen on {}:{}: {} (is another job using it? set a "
                                     "different master port; is MASTER_ADDR an address of this node?)",
                                     options_.host, options_.port, err));
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
    listen_address_ = text;
    server_->listen_fd = fd;
    Server* s = server_.get();
    s->accept_thread = std::thread([s] { s->accept_loop(); });
  }

  // Connect (with retries: the server may not be up yet), then present the secret.
  const auto deadline = Clock::now() + options_.connect_timeout;
  std::string last_error = "no attempt";
  for (;;) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port_str = std::to_string(port_);
    const int gai = ::getaddrinfo(options_.host.c_str(), port_str.c_str(), &hints, &res);
    if (gai == 0) {
      for (addrinfo* a = res; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          const int one = 1;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          fd_ = fd;
          break;
        }
        last_error = std::strerror(errno);
        ::close(fd);
      }
      ::freeaddrinfo(res);
    } else {
      last_error = ::gai_strerror(gai);
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) {
      throw RuntimeError(fmt::format("tcp store: no store at {}:{} after {:.0f}s ({}): is the master rank running "
                                     "and the port reachable?",
                                     options_.host, port_, options_.connect_timeout.count() / 1000.0, last_error));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<char> hello;
  put(hello, kMagic);
  put(hello, static_cast<std::uint32_t>(options_.secret.size()));
  hello.insert(hello.end(), options_.secret.begin(), options_.secret.end());
  const Deadline hd = Clock::now() + std::max(options_.handshake_timeout, std::chrono::milliseconds(1000));
  std::uint8_t status = kRefused;
  const bool answered = write_all(fd_, hello.data(), hello.size(), hd) && read_all(fd_, &status, 1, hd);
  if (!answered || status != kOk) {
    ::close(fd_);
    fd_ = -1;
    if (server_) server_->shutdown();
    throw RuntimeError(fmt::format(
        "tcp store {}:{} {} this rank's secret ({}): the ranks of one job must share the same {} (bignlp sets "
        "it); is another job using this port?",
        options_.host, port_, answered ? "refused" : "did not accept", answered ? "wrong secret" : "no answer",
        kStoreSecretEnv));
  }
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
  if (server_) server_->shutdown();
}

void TcpStore::check_sizes(const std::string& key, std::size_t value_size) const {
  if (key.size() > options_.max_key_bytes) {
    throw RuntimeError(fmt::format("tcp store: key '{}...' is {} bytes, over the store's limit of {}",
                                   key.substr(0, 40), key.size(), options_.max_key_bytes));
  }
  if (value_size > options_.max_value_bytes) {
    throw RuntimeError(fmt::format("tcp store: the value of '{}' is {} bytes, over the store's limit of {}",
                                   key.substr(0, 80), value_size, options_.max_value_bytes));
  }
}

std::vector<char> TcpStore::request(std::uint8_t op, const std::string& key, const std::vector<char>& value,
                                    std::uint8_t* status, std::chrono::milliseconds extra_wait) {
  check_sizes(key, value.size());
  std::lock_guard lock(mutex_);
  if (fd_ < 0) throw RuntimeError(fmt::format("tcp store {}:{}: connection lost earlier", options_.host, port_));
  std::vector<char> msg;
  msg.push_back(static_cast<char>(op));
  put(msg, static_cast<std::uint32_t>(key.size()));
  msg.insert(msg.end(), key.begin(), key.end());
  put(msg, static_cast<std::uint64_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  const Deadline deadline = Clock::now() + options_.reply_timeout + extra_wait;
  std::uint64_t rlen = 0;
  auto fail = [&](const char* what) {
    ::close(fd_);
    fd_ = -1;
    return RuntimeError(fmt::format("tcp store {}:{}: {} (did the master rank exit?)", options_.host, port_, what));
  };
  if (!write_all(fd_, msg.data(), msg.size(), deadline)) throw fail("connection lost");
  if (!read_all(fd_, status, 1, deadline) || !read_all(fd_, &rlen, 8, deadline)) {
    throw fail(Clock::now() >= *deadline ? "no reply in time" : "connection lost");
  }
  if (rlen > options_.max_value_bytes) throw fail("reply larger than the store's value limit");
  std::vector<char> reply(static_cast<std::size_t>(rlen));
  if (rlen > 0 && !read_all(fd_, reply.data(), reply.size(), deadline)) throw fail("connection lost");
  return reply;
}

void TcpStore::set(const std::string& key, const std::vector<char>& value) {
  std::uint8_t status = 0;
  request(kSet, key, value, &status, std::chrono::milliseconds(0));
}

std::vector<char> TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::vector<char> arg;
  put(arg, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
  std::uint8_t status = 0;
  auto reply = request(kGet, key, arg, &status, timeout);
  if (status != kOk) {
    throw RuntimeError(fmt::format("tcp store {}:{}: key '{}' was not set within {:.1f}s", options_.host, port_, key,
                                   timeout.count() / 1000.0));
  }
  return reply;
}

std::int64_t TcpStore::add(const std::string& key, std::int64_t delta) {
  std::vector<char> arg;
  put(arg, delta);
  std::uint8_t status = 0;
  auto reply = request(kAdd, key, arg, &status, std::chrono::milliseconds(0));
  std::int64_t v = 0;
  if (reply.size() == 8) std::memcpy(&v, reply.data(), 8);
  return v;
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  std::vector<char> arg;
  for (const auto& k : keys) {
    check_sizes(k, 0);
    put(arg, static_cast<std::uint32_t>(k.size()));
    arg.insert(arg.end(), k.begin(), k.end());
  }
  std::uint8_t status = 0;
  auto reply = request(kCheck, "", arg, &status, std::chrono::milliseconds(0));
  return !reply.empty() && reply[0] == 1;
}

}  // namespace bignlp::comm
