#include "bignlp/comm/gloo_communicator.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "bignlp/comm/cpu_communicator.h"
#include "bignlp/comm/transport.h"
#include "bignlp/core/check.h"
#include "bignlp/core/strings.h"

namespace bignlp::comm {

namespace {

// gloo's rendezvous store interface over ours.
class GlooStore final : public gloo::rendezvous::Store {
 public:
  GlooStore(comm::Store& inner, std::chrono::milliseconds timeout) : inner_(inner), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override { inner_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return inner_.get(key, timeout_); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    for (const auto& k : keys) inner_.get(k, timeout);
  }

 private:
  comm::Store& inner_;
  std::chrono::milliseconds timeout_;
};

bool is_timeout(const std::exception& e) { return std::string_view(e.what()).find("Timed out") != std::string_view::npos; }


// A dead peer, noticed without waiting for the collective's timeout. gloo (2022) fails the pending
// receives of a pair whose connection broke, but a send still waiting for the peer's matching
// receive is never woken; and a timed-out wait closes every pair of the context, so waits cannot
// be sliced to poll. Instead each peer we talk to gets a receive posted on the reserved slot,
// which never completes, and a thread blocked on it: when the connection breaks, that receive
// fails, and the thread records why and aborts the waits of every op posted to that peer.
class PeerWatch {
 public:
  PeerWatch(gloo::Context& ctx, int peer) : buf_(ctx.createUnboundBuffer(&byte_, 1)), peer_(peer) {
    buf_->recv(peer, kTransportReservedSlot);
    thread_ = std::thread([this] { watch(); });
  }
  ~PeerWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    buf_->abortWaitRecv();
    thread_.join();
  }
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;

  // Registers an op's buffer for aborting; false when the connection is already gone.
  bool add(gloo::transport::UnboundBuffer* op) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.empty()) return false;
    pending_.insert(op);
    return true;
  }
  void remove(gloo::transport::UnboundBuffer* op) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(op);
  }
  std::string failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

 private:
  void watch() {
    std::string why;
    try {
      // No timeout: gloo's timeout would close the context's pairs.
      if (!buf_->waitRecv(nullptr, std::chrono::hours(24 * 365 * 10))) return;  // aborted: shutting down
      why = fmt::format("gloo: rank {} sent on the reserved slot", peer_);
    } catch (const std::exception& e) {
      why = fmt::format("gloo: the connection to rank {} is gone: {}", peer_, e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    failure_ = why;
    for (auto* op : pending_) {
      op->abortWaitSend();
      op->abortWaitRecv();
    }
  }

  char byte_ = 0;
  std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
  int peer_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::string failure_;
  std::set<gloo::transport::UnboundBuffer*> pending_;
  std::thread thread_;
};

class GlooOp final : public TransportOp {
 public:
  GlooOp(std::unique_ptr<gloo::transport::UnboundBuffer> buf, bool is_send, PeerWatch& watch)
      : buf_(std::move(buf)), send_(is_send), watch_(watch) {
    registered_ = watch_.add(buf_.get());
  }
  ~GlooOp() override {
    if (registered_) watch_.remove(buf_.get());
  }
  bool wait(std::chrono::milliseconds timeout) override {
    if (done_) return true;
    if (!registered_) throw RuntimeError(watch_.failure());
    try {
      // gloo treats 0 as "no time"; keep at least 1 ms so a completed op is still observed.
      const auto t = std::max(timeout, std::chrono::milliseconds(1));
      done_ = send_ ? buf_->waitSend(t) : buf_->waitRecv(t);
    } catch (const gloo::IoException& e) {
      if (is_timeout(e)) return false;
      throw RuntimeError(fmt::format("gloo: {}", e.what()));
    } catch (const gloo::Exception& e) {
      throw RuntimeError(fmt::format("gloo: {}", e.what()));
    }
    if (!done_) {
      const std::string why = watch_.failure();
      throw RuntimeError(why.empty() ? std::string("gloo: the operation was aborted") : why);
    }
    return true;
  }

 private:
  std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
  bool send_;
  PeerWatch& watch_;
  bool registered_ = false;
  bool done_ = false;
};

class GlooTransport final : public Transport {
 public:
  explicit GlooTransport(std::shared_ptr<gloo::Context> ctx) : ctx_(std::move(ctx)) {
    watches_.resize(static_cast<std::size_t>(ctx_->size));
  }
  int rank() const override { return ctx_->rank; }
  int size() const override { return ctx_->size; }
  const char* backend() const override { return "gloo"; }

  std::unique_ptr<TransportOp> send(int peer, std::uint64_t slot, const void* data, std::size_t bytes) override {
    try {
      auto buf = ctx_->createUnboundBuffer(const_cast<void*>(data), bytes);
      buf->send(peer, slot);
      return std::make_unique<GlooOp>(std::move(buf), true, watch(peer));
    } catch (const gloo::Exception& e) {
      throw RuntimeError(fmt::format("gloo: send to rank {}: {}", peer, e.what()));
    }
  }
  std::unique_ptr<TransportOp> recv(int peer, std::uint64_t slot, void* data, std::size_t bytes) override {
    try {
      auto buf = ctx_->createUnboundBuffer(data, bytes);
      buf->recv(peer, slot);
      return std::make_unique<GlooOp>(std::move(buf), false, watch(peer));
    } catch (const gloo::Exception& e) {
      throw RuntimeError(fmt::format("gloo: recv from rank {}: {}", peer, e.what()));
    }
  }

 private:
  // The peer's watch, started on the first message to or from it (ring collectives talk to two).
  PeerWatch& watch(int peer) {
    BIGNLP_CHECK(peer >= 0 && peer < ctx_->size && peer != ctx_->rank, "gloo: no peer rank {} in a world of {}", peer,
                 ctx_->size);
    std::lock_guard<std::mutex> lock(watches_mu_);
    auto& w = watches_[static_cast<std::size_t>(peer)];
    if (!w) w = std::make_unique<PeerWatch>(*ctx_, peer);
    return *w;
  }

  std::shared_ptr<gloo::Context> ctx_;
  std::mutex watches_mu_;
  std::vector<std::unique_ptr<PeerWatch>> watches_;  // destroyed before ctx_
};

}  // namespace

namespace {

std::shared_ptr<gloo::Context> connect_gloo(Store& store, int rank, int size, const GlooOptions& options) {
  BIGNLP_CHECK(size >= 1 && rank >= 0 && rank < size, "gloo: rank {} is outside a world of {}", rank, size);
  gloo::transport::tcp::attr attr;
  if (!options.interface.empty()) {
    attr.iface = options.interface;
  } else {
    attr.hostname = options.hostname;
  }
  std::shared_ptr<gloo::Context> ctx;
  try {
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto rctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    rctx->setTimeout(options.timeout);
    GlooStore gstore(store, options.timeout);
    rctx->connectFullMesh(gstore, device);
    ctx = rctx;
  } catch (const std::exception& e) {
    throw RuntimeError(fmt::format("gloo: rank {} of {} could not connect to the other ranks (listening on {}): {}",
                                   rank, size, options.interface.empty() ? options.hostname : options.interface,
                                   e.what()));
  }
  return ctx;
}

}  // namespace

std::unique_ptr<Communicator> make_gloo_communicator(Store& store, int rank, int size, const GlooOptions& options) {
  auto comm = std::make_unique<CpuCommunicator>(std::make_shared<GlooTransport>(connect_gloo(store, rank, size, options)),
                                                "world");
  comm->set_timeout(options.timeout);
  return comm;
}

struct GlooNativeCollectives::Impl {
  std::shared_ptr<gloo::Context> ctx;
  std::uint32_t tag = 0;
};

GlooNativeCollectives::GlooNativeCollectives(Store& store, int rank, int size, const GlooOptions& options)
    : impl_(std::make_unique<Impl>()) {
  PrefixStore prefixed(store, "gloo-native");
  impl_->ctx = connect_gloo(prefixed, rank, size, options);
}

GlooNativeCollectives::~GlooNativeCollectives() = default;

void GlooNativeCollectives::all_reduce_sum(float* data, std::size_t count) {
  gloo::AllreduceOptions o(impl_->ctx);
  o.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
  o.setOutput(data, count);
  o.setReduceFunction([](void* c, const void* a, const void* b, size_t n) {
    auto* out = static_cast<float*>(c);
    const auto* x = static_cast<const float*>(a);
    const auto* y = static_cast<const float*>(b);
    for (size_t i = 0; i < n; ++i) out[i] = x[i] + y[i];
  });
  o.setTag(impl_->tag++);
  gloo::allreduce(o);
}

void GlooNativeCollectives::all_gather(const float* in, float* out, std::size_t count_per_rank) {
  gloo::AllgatherOptions o(impl_->ctx);
  o.setInput(const_cast<float*>(in), count_per_rank);
  o.setOutput(out, count_per_rank * static_cast<std::size_t>(impl_->ctx->size));
  o.setTag(impl_->tag++);
  gloo::allgather(o);
}

void GlooNativeCollectives::broadcast(float* data, std::size_t count, int root) {
  gloo::BroadcastOptions o(impl_->ctx);
  o.setOutput(data, count);
  o.setRoot(root);
  o.setTag(impl_->tag++);
  gloo::broadcast(o);
}

}  // namespace bignlp::comm
