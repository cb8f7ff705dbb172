#include "bignlp/comm/cpu_communicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "bignlp/core/check.h"
#include "bignlp/core/strings.h"
#include "bignlp/tensor/half.h"

namespace bignlp::comm {

namespace {

using Clock = std::chrono::steady_clock;

// Slot layout: [63..44] group tag (20 bits) | [43] kind | [42..0] sequence.
constexpr std::uint64_t kP2pBit = std::uint64_t{1} << 43;
constexpr std::uint64_t kSeqMask = kP2pBit - 1;
constexpr int kStepBits = 12;  // messages per collective: < 4096 (ring of up to 2048 ranks)

std::uint64_t make_slot(std::uint64_t tag, std::uint64_t kind_bit, std::uint64_t seq) {
  return (tag << 44) | kind_bit | (seq & kSeqMask);
}

// [begin, begin+count) elements of chunk c when numel is split into n near-equal chunks.
struct Range {
  std::int64_t begin = 0;
  std::int64_t count = 0;
};
Range chunk_range(std::int64_t numel, int n, int c) {
  const std::int64_t base = numel / n, rem = numel % n;
  return {c * base + std::min<std::int64_t>(c, rem), base + (c < rem ? 1 : 0)};
}

template <typename T, typename F>
void reduce_typed(void* dst, const void* src, std::int64_t n, F f) {
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  for (std::int64_t i = 0; i < n; ++i) d[i] = f(d[i], s[i]);
}

template <typename T>
void reduce_arith(void* dst, const void* src, std::int64_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: return reduce_typed<T>(dst, src, n, [](T a, T b) { return static_cast<T>(a + b); });
    case ReduceOp::kMax: return reduce_typed<T>(dst, src, n, [](T a, T b) { return a < b ? b : a; });
    case ReduceOp::kMin: return reduce_typed<T>(dst, src, n, [](T a, T b) { return b < a ? b : a; });
  }
}

template <typename H, typename ToF, typename FromF>
void reduce_half(void* dst, const void* src, std::int64_t n, ReduceOp op, ToF to_f, FromF from_f) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return reduce_typed<H>(dst, src, n, [&](H a, H b) { return from_f(to_f(a) + to_f(b)); });
    case ReduceOp::kMax:
      return reduce_typed<H>(dst, src, n, [&](H a, H b) { return to_f(a) < to_f(b) ? b : a; });
    case ReduceOp::kMin:
      return reduce_typed<H>(dst, src, n, [&](H a, H b) { return to_f(b) < to_f(a) ? b : a; });
  }
}

// dst[i] = dst[i] (op) src[i].
void reduce_into(DType dtype, void* dst, const void* src, std::int64_t n, ReduceOp op) {
  switch (dtype) {
    case DType::kF32: return reduce_arith<float>(dst, src, n, op);
    case DType::kI32: return reduce_arith<std::int32_t>(dst, src, n, op);
    case DType::kI64: return reduce_arith<std::int64_t>(dst, src, n, op);
    case DType::kBF16: return reduce_half<BFloat16>(dst, src, n, op, float_from_bf16, bf16_from_float);
    case DType::kF16: return reduce_half<Float16>(dst, src, n, op, float_from_fp16, fp16_from_float);
    case DType::kU16: break;
  }
  BIGNLP_CHECK(false, "no reduction for dtype {}", dtype_name(dtype));
}

// data[i] /= divisor for floating dtypes.
void divide(DType dtype, void* data, std::int64_t n, int divisor) {
  const float inv = 1.0f / static_cast<float>(divisor);
  switch (dtype) {
    case DType::kF32: {
      float* d = static_cast<float*>(data);
      for (std::int64_t i = 0; i < n; ++i) d[i] /= static_cast<float>(divisor);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<BFloat16*>(data);
      for (std::int64_t i = 0; i < n; ++i) d[i] = bf16_from_float(float_from_bf16(d[i]) * inv);
      return;
    }
    case DType::kF16: {
      auto* d = static_cast<Float16*>(data);
      for (std::int64_t i = 0; i < n; ++i) d[i] = fp16_from_float(float_from_fp16(d[i]) * inv);
      return;
    }
    default: BIGNLP_CHECK(false, "avg needs a floating dtype, got {}", dtype_name(dtype));
  }
}

std::string seconds(std::chrono::milliseconds ms) { return fmt::format("{:.1f}s", ms.count() / 1000.0); }

}  // namespace

std::uint64_t group_tag(const std::string& name, const std::vector<int>& members) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  for (unsigned char ch : name) mix(ch);
  for (int m : members) {
    mix(0xFF);
    for (int i = 0; i < 4; ++i) mix((static_cast<std::uint32_t>(m) >> (8 * i)) & 0xFF);
  }
  const std::uint64_t tag = (h ^ (h >> 20) ^ (h >> 40)) & 0xFFFFF;
  return tag == 0 ? 1 : tag;
}

// ------------------------------------------------------------------------------------------------
// Tasks and the worker thread

struct CpuCommunicator::Task {
  const char* op = "";
  std::vector<TensorView> tensors;
  ReduceOp reduce = ReduceOp::kSum;
  int root = 0;
  Body body = nullptr;
  std::uint64_t slot_base = 0;
  int step = 0;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};

  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  std::string waiting_for = "not started (queued behind earlier operations)";

  void set_waiting(std::string what) {
    std::lock_guard lock(mutex);
    waiting_for = std::move(what);
  }
};

struct CpuCommunicator::Worker {
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Task>> queue;
  bool stop = false;
};

namespace {

class TaskWork final : public Work {
 public:
  TaskWork(std::shared_ptr<void> keep, std::mutex& m, std::condition_variable& cv, const bool& done,
           const std::exception_ptr& error, const std::string& waiting, std::string what)
      : keep_(std::move(keep)), m_(m), cv_(cv), done_(done), error_(error), waiting_(waiting), what_(std::move(what)) {}

  void wait(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
      throw RuntimeError(fmt::format("{} timed out after {}; {}", what_, seconds(timeout), waiting_));
    }
    if (error_) std::rethrow_exception(error_);
  }
  bool completed() override {
    std::lock_guard lock(m_);
    return done_;
  }

 private:
  std::shared_ptr<void> keep_;
  std::mutex& m_;
  std::condition_variable& cv_;
  const bool& done_;
  const std::exception_ptr& error_;
  const std::string& waiting_;
  std::string what_;
};

class P2pWork final : public Work {
 public:
  P2pWork(std::unique_ptr<TransportOp> op, std::string what) : op_(std::move(op)), what_(std::move(what)) {}
  void wait(std::chrono::milliseconds timeout) override {
    if (done_) return;
    bool ok = false;
    try {
      ok = op_->wait(timeout);
    } catch (const std::exception& e) {
      throw RuntimeError(fmt::format("{} failed: {}", what_, e.what()));
    }
    if (!ok) throw RuntimeError(fmt::format("{} timed out after {}", what_, seconds(timeout)));
    done_ = true;
  }
  bool completed() override {
    if (!done_) {
      try {
        done_ = op_->wait(std::chrono::milliseconds(0));
      } catch (...) {
        return true;
      }
    }
    return done_;
  }

 private:
  std::unique_ptr<TransportOp> op_;
  std::string what_;
  bool done_ = false;
};

}  // namespace

CpuCommunicator::CpuCommunicator(std::shared_ptr<Transport> transport, std::string name)
    : transport_(std::move(transport)), name_(std::move(name)) {
  BIGNLP_CHECK(transport_ != nullptr, "CpuCommunicator needs a transport");
  members_.resize(static_cast<std::size_t>(transport_->size()));
  for (int r = 0; r < transport_->size(); ++r) members_[static_cast<std::size_t>(r)] = r;
  rank_ = transport_->rank();
  tag_ = 0;
  send_seq_.assign(members_.size(), 0);
  recv_seq_.assign(members_.size(), 0);
}

CpuCommunicator::CpuCommunicator(std::shared_ptr<Transport> transport, std::vector<int> members, std::string name)
    : transport_(std::move(transport)), members_(std::move(members)), name_(std::move(name)) {
  BIGNLP_CHECK(transport_ != nullptr, "CpuCommunicator needs a transport");
  BIGNLP_CHECK(!members_.empty(), "group '{}' has no members", name_);
  BIGNLP_CHECK(members_.size() <= 2048, "group '{}' has {} members; the CPU backend supports up to 2048", name_,
               members_.size());
  auto it = std::find(members_.begin(), members_.end(), transport_->rank());
  BIGNLP_CHECK(it != members_.end(), "world rank {} is not a member of group '{}' [ranks {}]", transport_->rank(),
               name_, fmt::join(members_, ","));
  for (int m : members_) {
    BIGNLP_CHECK(m >= 0 && m < transport_->size(), "group '{}': rank {} is outside the world of {} ranks", name_, m,
                 transport_->size());
  }
  rank_ = static_cast<int>(it - members_.begin());
  tag_ = group_tag(name_, members_);
  send_seq_.assign(members_.size(), 0);
  recv_seq_.assign(members_.size(), 0);
}

CpuCommunicator::~CpuCommunicator() {
  if (!worker_) return;
  {
    std::lock_guard lock(worker_->mutex);
    worker_->stop = true;
  }
  worker_->cv.notify_all();
  worker_->thread.join();
}

const char* CpuCommunicator::backend() const { return transport_->backend(); }

std::uint64_t CpuCommunicator::next_collective_slot() {
  return make_slot(tag_, 0, (collective_seq_++) << kStepBits);
}

WorkPtr CpuCommunicator::submit(const char* op, std::vector<TensorView> tensors, ReduceOp reduce, int root, Body body) {
  auto task = std::make_shared<Task>();
  task->op = op;
  task->tensors = std::move(tensors);
  task->reduce = reduce;
  task->root = root;
  task->body = body;
  task->slot_base = next_collective_slot();
  task->timeout = timeout();
  const std::string what = fmt::format("{} on {} (rank {})", op, describe(), rank_);
  auto work = std::make_shared<TaskWork>(task, task->mutex, task->cv, task->done, task->error, task->waiting_for, what);
  if (size() == 1) {
    run_task(*task);
    return work;
  }
  if (!worker_) {
    worker_ = std::make_unique<Worker>();
    Worker* w = worker_.get();
    w->thread = std::thread([this, w] {
      for (;;) {
        std::shared_ptr<Task> next;
        {
          std::unique_lock lock(w->mutex);
          w->cv.wait(lock, [&] { return w->stop || !w->queue.empty(); });
          if (w->queue.empty()) return;
          next = w->queue.front();
          w->queue.pop_front();
        }
        run_task(*next);
      }
    });
  }
  {
    std::lock_guard lock(worker_->mutex);
    worker_->queue.push_back(task);
  }
  worker_->cv.notify_one();
  return work;
}

void CpuCommunicator::run_task(Task& task) {
  task.deadline = Clock::now() + task.timeout;
  task.set_waiting("running");
  std::exception_ptr error;
  try {
    task.body(*this, task);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(task.mutex);
    task.done = true;
    task.error = error;
    task.waiting_for = error ? "failed" : "done";
    task.tensors.clear();
  }
  task.cv.notify_all();
}

void CpuCommunicator::wait_op(Task& t, TransportOp& op, const char* what, int peer) {
  const auto now = Clock::now();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t.deadline - now);
  const std::string detail = fmt::format("waiting for {} rank {} (world rank {})", what, peer,
                                         members_[static_cast<std::size_t>(peer)]);
  t.set_waiting(detail);
  bool ok = false;
  try {
    ok = op.wait(std::max(left, std::chrono::milliseconds(0)));
  } catch (const std::exception& e) {
    throw RuntimeError(fmt::format("{} on {} failed on rank {} while {}: {}", t.op, describe(), rank_, detail, e.what()));
  }
  if (!ok) {
    throw RuntimeError(fmt::format("{} on {} timed out after {} on rank {} {}", t.op, describe(), seconds(t.timeout),
                                   rank_, detail));
  }
}

void CpuCommunicator::exchange(Task& t, int send_peer, const void* send_data, std::size_t send_bytes, int recv_peer,
                               void* recv_data, std::size_t recv_bytes) {
  BIGNLP_CHECK(t.step < (1 << kStepBits), "{}: too many messages in one collective", t.op);
  const std::uint64_t slot = t.slot_base + static_cast<std::uint64_t>(t.step++);
  std::unique_ptr<TransportOp> recv_op, send_op;
  try {
    if (recv_bytes > 0) recv_op = transport_->recv(members_[static_cast<std::size_t>(recv_peer)], slot, recv_data, recv_bytes);
    if (send_bytes > 0) send_op = transport_->send(members_[static_cast<std::size_t>(send_peer)], slot, send_data, send_bytes);
  } catch (const std::exception& e) {
    throw RuntimeError(fmt::format(
        "{} on {} failed on rank {} posting a receive from rank {} (world rank {}) and a send to rank {} (world rank "
        "{}): {}",
        t.op, describe(), rank_, recv_peer, members_[static_cast<std::size_t>(recv_peer)], send_peer,
        members_[static_cast<std::size_t>(send_peer)], e.what()));
  }
  if (send_op) wait_op(t, *send_op, "the send to", send_peer);
  if (recv_op) wait_op(t, *recv_op, "a message from", recv_peer);
}

void CpuCommunicator::ring_reduce_scatter(Task& t, char* data, DType dtype, std::int64_t numel, ReduceOp op) {
  const int n = size(), r = rank_;
  const std::size_t es = dtype_size(dtype);
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  std::vector<char> scratch(static_cast<std::size_t>(chunk_range(numel, n, 0).count) * es);
  for (int s = 0; s < n - 1; ++s) {
    const Range send = chunk_range(numel, n, (r - s - 1 + 2 * n) % n);
    const Range recv = chunk_range(numel, n, (r - s - 2 + 2 * n) % n);
    exchange(t, next, data + send.begin * static_cast<std::int64_t>(es), static_cast<std::size_t>(send.count) * es, prev,
             scratch.data(), static_cast<std::size_t>(recv.count) * es);
    reduce_into(dtype, data + recv.begin * static_cast<std::int64_t>(es), scratch.data(), recv.count, op);
  }
}

void CpuCommunicator::ring_all_gather(Task& t, char* data, DType dtype, std::int64_t numel) {
  const int n = size(), r = rank_;
  const auto es = static_cast<std::int64_t>(dtype_size(dtype));
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  for (int s = 0; s < n - 1; ++s) {
    const Range send = chunk_range(numel, n, (r - s + n) % n);
    const Range recv = chunk_range(numel, n, (r - s - 1 + n) % n);
    exchange(t, next, data + send.begin * es, static_cast<std::size_t>(send.count * es), prev, data + recv.begin * es,
             static_cast<std::size_t>(recv.count * es));
  }
}

void CpuCommunicator::run_all_reduce(CpuCommunicator& c, Task& t) {
  const TensorView& x = t.tensors[0];
  char* data = static_cast<char*>(x.raw());
  const int n = c.size();
  if (n > 1) c.ring_reduce_scatter(t, data, x.dtype(), x.numel(), t.reduce);
  if (t.reduce == ReduceOp::kAvg) {
    const Range own = chunk_range(x.numel(), n, c.rank_);
    divide(x.dtype(), data + own.begin * static_cast<std::int64_t>(dtype_size(x.dtype())), own.count, n);
  }
  if (n > 1) c.ring_all_gather(t, data, x.dtype(), x.numel());
}

void CpuCommunicator::run_all_gather(CpuCommunicator& c, Task& t) {
  const TensorView& in = t.tensors[0];
  const TensorView& out = t.tensors[1];
  char* data = static_cast<char*>(out.raw());
  std::memmove(data + static_cast<std::size_t>(c.rank_) * in.nbytes(), in.raw(), in.nbytes());
  if (c.size() > 1) c.ring_all_gather(t, data, out.dtype(), out.numel());
}

void CpuCommunicator::run_reduce_scatter(CpuCommunicator& c, Task& t) {
  const TensorView& in = t.tensors[0];
  const TensorView& out = t.tensors[1];
  const std::size_t chunk_bytes = out.nbytes();
  if (c.size() == 1) {
    std::memmove(out.raw(), in.raw(), chunk_bytes);
  } else {
    std::vector<char> work(in.nbytes());
    std::memcpy(work.data(), in.raw(), in.nbytes());
    c.ring_reduce_scatter(t, work.data(), in.dtype(), in.numel(), t.reduce);
    std::memcpy(out.raw(), work.data() + static_cast<std::size_t>(c.rank_) * chunk_bytes, chunk_bytes);
  }
  if (t.reduce == ReduceOp::kAvg) divide(out.dtype(), out.raw(), out.numel(), c.size());
}

void CpuCommunicator::run_broadcast(CpuCommunicator& c, Task& t) {
  const TensorView& x = t.tensors[0];
  if (c.size() == 1 || x.nbytes() == 0) return;
  if (c.rank_ == t.root) {
    std::vector<std::unique_ptr<TransportOp>> sends(static_cast<std::size_t>(c.size()));
    const std::uint64_t slot = t.slot_base;
    for (int p = 0; p < c.size(); ++p) {
      if (p == t.root) continue;
      try {
        sends[static_cast<std::size_t>(p)] = c.transport_->send(c.members_[static_cast<std::size_t>(p)], slot, x.raw(), x.nbytes());
      } catch (const std::exception& e) {
        throw RuntimeError(fmt::format("broadcast on {} failed on rank {} sending to rank {}: {}", c.describe(), c.rank_, p,
                                       e.what()));
      }
    }
    for (int p = 0; p < c.size(); ++p) {
      if (p != t.root) c.wait_op(t, *sends[static_cast<std::size_t>(p)], "the send to", p);
    }
  } else {
    std::unique_ptr<TransportOp> op;
    try {
      op = c.transport_->recv(c.members_[static_cast<std::size_t>(t.root)], t.slot_base, x.raw(), x.nbytes());
    } catch (const std::exception& e) {
      throw RuntimeError(fmt::format("broadcast on {} failed on rank {} receiving from rank {}: {}", c.describe(), c.rank_,
                                     t.root, e.what()));
    }
    c.wait_op(t, *op, "a message from", t.root);
  }
}

WorkPtr CpuCommunicator::all_reduce_async(const TensorView& tensor, ReduceOp op) {
  check_collective_tensor(*this, "all_reduce", "tensor", tensor);
  check_reduce_dtype(*this, "all_reduce", tensor, op);
  return submit("all_reduce", {tensor}, op, 0, &CpuCommunicator::run_all_reduce);
}

WorkPtr CpuCommunicator::all_gather_async(const TensorView& in, const TensorView& out) {
  check_collective_tensor(*this, "all_gather", "in", in);
  check_collective_tensor(*this, "all_gather", "out", out);
  BIGNLP_CHECK(in.dtype() == out.dtype(), "all_gather on {}: in is {}, out is {}", describe(), dtype_name(in.dtype()),
               dtype_name(out.dtype()));
  BIGNLP_CHECK(out.numel() == in.numel() * size(), "all_gather on {}: out has {} elements, expected {} x {} = {}",
               describe(), out.numel(), size(), in.numel(), in.numel() * size());
  return submit("all_gather", {in, out}, ReduceOp::kSum, 0, &CpuCommunicator::run_all_gather);
}

WorkPtr CpuCommunicator::reduce_scatter_async(const TensorView& in, const TensorView& out, ReduceOp op) {
  check_collective_tensor(*this, "reduce_scatter", "in", in);
  check_collective_tensor(*this, "reduce_scatter", "out", out);
  check_reduce_dtype(*this, "reduce_scatter", in, op);
  BIGNLP_CHECK(in.dtype() == out.dtype(), "reduce_scatter on {}: in is {}, out is {}", describe(),
               dtype_name(in.dtype()), dtype_name(out.dtype()));
  BIGNLP_CHECK(in.numel() == out.numel() * size(), "reduce_scatter on {}: in has {} elements, expected {} x {} = {}",
               describe(), in.numel(), size(), out.numel(), out.numel() * size());
  return submit("reduce_scatter", {in, out}, op, 0, &CpuCommunicator::run_reduce_scatter);
}

WorkPtr CpuCommunicator::broadcast_async(const TensorView& tensor, int root) {
  check_collective_tensor(*this, "broadcast", "tensor", tensor);
  BIGNLP_CHECK(root >= 0 && root < size(), "broadcast on {}: root {} is not a rank of the group", describe(), root);
  return submit("broadcast", {tensor}, ReduceOp::kSum, root, &CpuCommunicator::run_broadcast);
}

WorkPtr CpuCommunicator::barrier_async() {
  auto flag = std::make_shared<std::int32_t>(1);
  auto work = submit("barrier", {TensorView(flag.get(), DType::kI32, Shape{1})}, ReduceOp::kSum, 0,
                     &CpuCommunicator::run_all_reduce);
  // Keep the flag alive as long as the work.
  struct Keep final : Work {
    WorkPtr inner;
    std::shared_ptr<std::int32_t> flag;
    void wait(std::chrono::milliseconds t) override { inner->wait(t); }
    bool completed() override { return inner->completed(); }
  };
  auto keep = std::make_shared<Keep>();
  keep->inner = std::move(work);
  keep->flag = std::move(flag);
  return keep;
}

WorkPtr CpuCommunicator::send_async(const TensorView& tensor, int peer) {
  check_collective_tensor(*this, "send", "tensor", tensor);
  BIGNLP_CHECK(peer >= 0 && peer < size() && peer != rank_, "send on {}: peer {} is not another rank of the group",
               describe(), peer);
  const auto p = static_cast<std::size_t>(peer);
  const std::uint64_t slot = make_slot(tag_, kP2pBit, send_seq_[p]++);
  const std::string what = fmt::format("send of {} from rank {} to rank {} on {}", tensor.to_string(), rank_, peer, describe());
  if (tensor.nbytes() == 0) return completed_work();
  try {
    return std::make_shared<P2pWork>(transport_->send(members_[p], slot, tensor.raw(), tensor.nbytes()), what);
  } catch (const std::exception& e) {
    throw RuntimeError(fmt::format("{} failed: {}", what, e.what()));
  }
}

WorkPtr CpuCommunicator::recv_async(const TensorView& tensor, int peer) {
  check_collective_tensor(*this, "recv", "tensor", tensor);
  BIGNLP_CHECK(peer >= 0 && peer < size() && peer != rank_, "recv on {}: peer {} is not another rank of the group",
               describe(), peer);
  const auto p = static_cast<std::size_t>(peer);
  const std::uint64_t slot = make_slot(tag_, kP2pBit, recv_seq_[p]++);
  const std::string what = fmt::format("recv of {} on rank {} from rank {} on {}", tensor.to_string(), rank_, peer, describe());
  if (tensor.nbytes() == 0) return completed_work();
  try {
    return std::make_shared<P2pWork>(transport_->recv(members_[p], slot, tensor.raw(), tensor.nbytes()), what);
  } catch (const std::exception& e) {
    throw RuntimeError(fmt::format("{} failed: {}", what, e.what()));
  }
}

std::unique_ptr<Communicator> CpuCommunicator::split(const std::vector<int>& members, const std::string& name) {
  std::vector<int> world;
  world.reserve(members.size());
  for (int m : members) {
    BIGNLP_CHECK(m >= 0 && m < size(), "split of {} into '{}': rank {} is not a rank of the group", describe(), name, m);
    world.push_back(members_[static_cast<std::size_t>(m)]);
  }
  std::vector<int> sorted = world;
  std::sort(sorted.begin(), sorted.end());
  BIGNLP_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), "split into '{}': duplicate ranks", name);
  auto comm = std::make_unique<CpuCommunicator>(transport_, std::move(world), name);
  comm->set_timeout(timeout());
  return comm;
}

}  // namespace bignlp::comm
