#include "bignlp/comm/local_communicator.h"

#include <fmt/format.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "bignlp/comm/cpu_communicator.h"
#include "bignlp/comm/transport.h"
#include "bignlp/core/check.h"

namespace bignlp::comm {

// One mailbox per receiving rank: messages keyed by (sender, slot), FIFO per key.
struct LocalWorld::State {
  struct Mailbox {
    std::mutex mutex;
    std::condition_variable cv;
    std::map<std::pair<int, std::uint64_t>, std::deque<std::vector<char>>> messages;
  };
  explicit State(int n, std::chrono::milliseconds t) : size(n), timeout(t), boxes(static_cast<std::size_t>(n)) {}

  int size;
  std::chrono::milliseconds timeout;
  std::vector<Mailbox> boxes;
  std::mutex abort_mutex;
  bool aborted = false;
  std::string abort_reason;

  bool is_aborted(std::string* reason) {
    std::lock_guard lock(abort_mutex);
    if (aborted && reason) *reason = abort_reason;
    return aborted;
  }
};

namespace {

class DoneOp final : public TransportOp {
 public:
  bool wait(std::chrono::milliseconds) override { return true; }
};

class LocalRecvOp final : public TransportOp {
 public:
  LocalRecvOp(std::shared_ptr<LocalWorld::State> s, int self, int peer, std::uint64_t slot, void* data, std::size_t bytes)
      : s_(std::move(s)), self_(self), peer_(peer), slot_(slot), data_(data), bytes_(bytes) {}

  bool wait(std::chrono::milliseconds timeout) override {
    if (done_) return true;
    auto& box = s_->boxes[static_cast<std::size_t>(self_)];
    std::unique_lock lock(box.mutex);
    const auto key = std::make_pair(peer_, slot_);
    std::string reason;
    const bool ready = box.cv.wait_for(lock, timeout, [&] {
      auto it = box.messages.find(key);
      return (it != box.messages.end() && !it->second.empty()) || s_->is_aborted(nullptr);
    });
    auto it = box.messages.find(key);
    if (it == box.messages.end() || it->second.empty()) {
      if (s_->is_aborted(&reason)) throw RuntimeError(fmt::format("the local world was aborted: {}", reason));
      if (!ready) return false;
    }
    std::vector<char> msg = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) box.messages.erase(it);
    BIGNLP_CHECK(msg.size() == bytes_, "message from rank {} has {} bytes, the receive expects {}", peer_, msg.size(),
                 bytes_);
    std::memcpy(data_, msg.data(), bytes_);
    done_ = true;
    return true;
  }

 private:
  std::shared_ptr<LocalWorld::State> s_;
  int self_, peer_;
  std::uint64_t slot_;
  void* data_;
  std::size_t bytes_;
  bool done_ = false;
};

class LocalTransport final : public Transport {
 public:
  LocalTransport(std::shared_ptr<LocalWorld::State> s, int rank) : s_(std::move(s)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_->size; }
  const char* backend() const override { return "local"; }

  std::unique_ptr<TransportOp> send(int peer, std::uint64_t slot, const void* data, std::size_t bytes) override {
    BIGNLP_CHECK(peer >= 0 && peer < s_->size, "send to rank {} outside the local world of {}", peer, s_->size);
    std::string reason;
    if (s_->is_aborted(&reason)) throw RuntimeError(fmt::format("the local world was aborted: {}", reason));
    auto& box = s_->boxes[static_cast<std::size_t>(peer)];
    std::vector<char> msg(bytes);
    if (bytes > 0) std::memcpy(msg.data(), data, bytes);
    {
      std::lock_guard lock(box.mutex);
      box.messages[{rank_, slot}].push_back(std::move(msg));
    }
    box.cv.notify_all();
    return std::make_unique<DoneOp>();
  }

  std::unique_ptr<TransportOp> recv(int peer, std::uint64_t slot, void* data, std::size_t bytes) override {
    BIGNLP_CHECK(peer >= 0 && peer < s_->size, "recv from rank {} outside the local world of {}", peer, s_->size);
    return std::make_unique<LocalRecvOp>(s_, rank_, peer, slot, data, bytes);
  }

 private:
  std::shared_ptr<LocalWorld::State> s_;
  int rank_;
};

}  // namespace

LocalWorld::LocalWorld(int size, std::chrono::milliseconds timeout) {
  BIGNLP_CHECK(size >= 1, "a local world needs at least one rank, got {}", size);
  state_ = std::make_shared<State>(size, timeout);
}

LocalWorld::~LocalWorld() = default;

int LocalWorld::size() const { return state_->size; }

std::unique_ptr<Communicator> LocalWorld::communicator(int rank) {
  BIGNLP_CHECK(rank >= 0 && rank < state_->size, "rank {} outside the local world of {}", rank, state_->size);
  auto comm = std::make_unique<CpuCommunicator>(std::make_shared<LocalTransport>(state_, rank), "world");
  comm->set_timeout(state_->timeout);
  return comm;
}

void LocalWorld::abort(const std::string& reason) {
  {
    std::lock_guard lock(state_->abort_mutex);
    if (state_->aborted) return;
    state_->aborted = true;
    state_->abort_reason = reason;
  }
  for (auto& box : state_->boxes) {
    std::lock_guard lock(box.mutex);
    box.cv.notify_all();
  }
}

void LocalWorld::run(const std::function<void(Communicator&)>& body) {
  const int n = state_->size;
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < n; ++r) comms.push_back(communicator(r));
  std::mutex first_mutex;
  std::string first_error;
  ExitCode first_code = ExitCode::kRuntime;
  bool failed = false;
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(*comms[static_cast<std::size_t>(r)]);
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(first_mutex);
          if (!failed) {
            failed = true;
            first_error = fmt::format("rank {}: {}", r, e.what());
            if (const auto* be = dynamic_cast<const Error*>(&e)) first_code = be->code();
          }
        }
        abort(fmt::format("rank {} failed", r));
      }
    });
  }
  for (auto& t : threads) t.join();
  comms.clear();
  if (failed) throw Error(first_error, first_code);
}

std::unique_ptr<Communicator> make_single_rank_communicator() {
  auto state = std::make_shared<LocalWorld::State>(1, kDefaultCommTimeout);
  return std::make_unique<CpuCommunicator>(std::make_shared<LocalTransport>(state, 0), "world");
}

}  // namespace bignlp::comm
