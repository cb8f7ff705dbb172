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
#include <map>
#include <thread>
#include <vector>

#include "bignlp/core/error.h"

namespace bignlp::comm {

namespace {

enum Op : std::uint8_t { kSet = 1, kGet = 2, kAdd = 3, kCheck = 4 };
enum Status : std::uint8_t { kOk = 0, kTimeout = 1 };

// Blocking full read/write; false when the peer closed or an error occurred.
bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool read_all(int fd, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
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

}  // namespace

struct TcpStore::Server {
  int listen_fd = -1;
  std::thread accept_thread;
  std::vector<std::thread> clients;
  std::vector<int> client_fds;
  std::mutex mutex;
  std::condition_variable cv;
  std::map<std::string, std::vector<char>> data;
  std::atomic<bool> stop{false};

  void serve(int fd) {
    for (;;) {
      std::uint8_t op = 0;
      std::uint32_t klen = 0;
      std::uint64_t vlen = 0;
      if (!read_all(fd, &op, 1) || !read_all(fd, &klen, 4)) break;
      std::string key(klen, '\0');
      if (!read_all(fd, key.data(), klen) || !read_all(fd, &vlen, 8)) break;
      std::vector<char> value(vlen);
      if (vlen > 0 && !read_all(fd, value.data(), vlen)) break;

      std::uint8_t status = kOk;
      std::vector<char> reply;
      if (op == kSet) {
        {
          std::lock_guard lock(mutex);
          data[key] = std::move(value);
        }
        cv.notify_all();
      } else if (op == kGet) {
        std::uint64_t timeout_ms = 0;
        if (value.size() == 8) std::memcpy(&timeout_ms, value.data(), 8);
        std::unique_lock lock(mutex);
        const bool found = cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                       [&] { return stop.load() || data.count(key) > 0; });
        if (found && data.count(key)) {
          reply = data[key];
        } else {
          status = kTimeout;
        }
      } else if (op == kAdd) {
        std::int64_t delta = 0;
        if (value.size() == 8) std::memcpy(&delta, value.data(), 8);
        std::int64_t now = 0;
        {
          std::lock_guard lock(mutex);
          auto& v = data[key];
          if (v.size() == 8) std::memcpy(&now, v.data(), 8);
          now += delta;
          v.assign(reinterpret_cast<const char*>(&now), reinterpret_cast<const char*>(&now) + 8);
        }
        cv.notify_all();
        put(reply, now);
      } else if (op == kCheck) {
        // value: the keys, each u32 length + bytes.
        bool all = true;
        std::size_t pos = 0;
        std::lock_guard lock(mutex);
        while (pos + 4 <= value.size()) {
          std::uint32_t n = 0;
          std::memcpy(&n, value.data() + pos, 4);
          pos += 4;
          if (!data.count(std::string(value.data() + pos, n))) all = false;
          pos += n;
        }
        reply.push_back(all ? 1 : 0);
      } else {
        break;
      }
      const std::uint64_t rlen = reply.size();
      if (!write_all(fd, &status, 1) || !write_all(fd, &rlen, 8) || (rlen > 0 && !write_all(fd, reply.data(), rlen))) {
        break;
      }
    }
    std::lock_guard lock(mutex);
    for (int& c : client_fds) {
      if (c == fd) c = -1;
    }
    ::close(fd);
  }
};

TcpStore::TcpStore(const TcpStoreOptions& options) : options_(options), port_(options.port) {
  if (options_.is_server) {
    server_ = std::make_unique<Server>();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw RuntimeError(fmt::format("tcp store: socket(): {}", std::strerror(errno)));
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<std::uint16_t>(options_.port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1024) != 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      throw RuntimeError(fmt::format("tcp store: cannot listen on port {}: {} (is another job using it? set a "
                                     "different master port)",
                                     options_.port, err));
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    server_->listen_fd = fd;
    Server* s = server_.get();
    s->accept_thread = std::thread([s] {
      while (!s->stop) {
        pollfd p{s->listen_fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int c = ::accept4(s->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard lock(s->mutex);
        s->client_fds.push_back(c);
        s->clients.emplace_back([s, c] { s->serve(c); });
      }
    });
  }

  // Connect (with retries: the server may not be up yet).
  const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
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
    if (std::chrono::steady_clock::now() >= deadline) {
      throw RuntimeError(fmt::format("tcp store: no store at {}:{} after {:.0f}s ({}): is the master rank running "
                                     "and the port reachable?",
                                     options_.host, port_, options_.connect_timeout.count() / 1000.0, last_error));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
  if (server_) {
    server_->stop = true;
    server_->cv.notify_all();
    server_->accept_thread.join();
    {
      std::lock_guard lock(server_->mutex);
      for (int c : server_->client_fds) {
        if (c >= 0) ::shutdown(c, SHUT_RDWR);
      }
    }
    for (auto& t : server_->clients) t.join();
    ::close(server_->listen_fd);
  }
}

std::vector<char> TcpStore::request(std::uint8_t op, const std::string& key, const std::vector<char>& value,
                                    std::uint8_t* status) {
  std::lock_guard lock(mutex_);
  std::vector<char> msg;
  msg.push_back(static_cast<char>(op));
  put(msg, static_cast<std::uint32_t>(key.size()));
  msg.insert(msg.end(), key.begin(), key.end());
  put(msg, static_cast<std::uint64_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  std::uint64_t rlen = 0;
  if (!write_all(fd_, msg.data(), msg.size()) || !read_all(fd_, status, 1) || !read_all(fd_, &rlen, 8)) {
    throw RuntimeError(fmt::format("tcp store {}:{}: connection lost (did the master rank exit?)", options_.host, port_));
  }
  std::vector<char> reply(rlen);
  if (rlen > 0 && !read_all(fd_, reply.data(), rlen)) {
    throw RuntimeError(fmt::format("tcp store {}:{}: connection lost", options_.host, port_));
  }
  return reply;
}

void TcpStore::set(const std::string& key, const std::vector<char>& value) {
  std::uint8_t status = 0;
  request(kSet, key, value, &status);
}

std::vector<char> TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::vector<char> arg;
  put(arg, static_cast<std::uint64_t>(timeout.count()));
  std::uint8_t status = 0;
  auto reply = request(kGet, key, arg, &status);
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
  auto reply = request(kAdd, key, arg, &status);
  std::int64_t v = 0;
  if (reply.size() == 8) std::memcpy(&v, reply.data(), 8);
  return v;
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  std::vector<char> arg;
  for (const auto& k : keys) {
    put(arg, static_cast<std::uint32_t>(k.size()));
    arg.insert(arg.end(), k.begin(), k.end());
  }
  std::uint8_t status = 0;
  auto reply = request(kCheck, "", arg, &status);
  return !reply.empty() && reply[0] == 1;
}

}  // namespace bignlp::comm
