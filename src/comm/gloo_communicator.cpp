#include "bignlp/comm/gloo_communicator.h"

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

class GlooOp final : public TransportOp {
 public:
  GlooOp(std::unique_ptr<gloo::transport::UnboundBuffer> buf, bool is_send) : buf_(std::move(buf)), send_(is_send) {}
  bool wait(std::chrono::milliseconds timeout) override {
    if (done_) return true;
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
    if (!done_) throw RuntimeError("gloo: the operation was aborted");
    return true;
  }

 private:
  std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
  bool send_;
  bool done_ = false;
};

class GlooTransport final : public Transport {
 public:
  explicit GlooTransport(std::shared_ptr<gloo::Context> ctx) : ctx_(std::move(ctx)) {}
  int rank() const override { return ctx_->rank; }
  int size() const override { return ctx_->size; }
  const char* backend() const override { return "gloo"; }

  std::unique_ptr<TransportOp> send(int peer, std::uint64_t slot, const void* data, std::size_t bytes) override {
    try {
      auto buf = ctx_->createUnboundBuffer(const_cast<void*>(data), bytes);
      buf->send(peer, slot);
      return std::make_unique<GlooOp>(std::move(buf), true);
    } catch (const gloo::Exception& e) {
      throw RuntimeError(fmt::format("gloo: send to rank {}: {}", peer, e.what()));
    }
  }
  std::unique_ptr<TransportOp> recv(int peer, std::uint64_t slot, void* data, std::size_t bytes) override {
    try {
      auto buf = ctx_->createUnboundBuffer(data, bytes);
      buf->recv(peer, slot);
      return std::make_unique<GlooOp>(std::move(buf), false);
    } catch (const gloo::Exception& e) {
      throw RuntimeError(fmt::format("gloo: recv from rank {}: {}", peer, e.what()));
    }
  }

 private:
  std::shared_ptr<gloo::Context> ctx_;
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
