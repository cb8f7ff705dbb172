// Communicator: the collective and point-to-point operations of one process group, over TensorView.
//
// One interface, three backends: CpuCommunicator over an in-process thread transport
// (local_communicator.h, unit tests) or gloo across processes (gloo_communicator.h), and NCCL on
// GPUs (nccl_communicator.h, builds with BIGNLP_WITH_NCCL). Parallel layers receive the
// communicator of their axis (tp, pp, dp, ...) from a ProcessGrid; there is no global group.
//
// Semantics (all backends):
// - Ranks are group ranks 0..size()-1; global_ranks()[r] is rank r's rank in the world.
// - Tensors must be contiguous and on device(). Supported dtypes: fp32, bf16, fp16, int32, int64
//   (kAvg only for floating types). 16-bit values are reduced in fp32 and rounded per step.
// - Collectives are issued by every member in the same order. Async variants return a Work whose
//   wait() surfaces the operation's error, or throws after the timeout with a message naming the
//   collective, the group and its ranks; tensors must stay alive and untouched until then. Sync
//   variants are async + wait(timeout()).
// - all_gather: out holds size() * in.numel() elements, rank r's input at [r*n, (r+1)*n).
//   reduce_scatter: in holds size() * out.numel() elements; rank r receives the reduction of
//   chunk r. Along dim 0 of a contiguous tensor these are concatenation and splitting.
// - send/recv pair up in order per (sender, receiver): the k-th send from a to b meets the k-th
//   recv on b from a. They are not ordered against collectives of the same communicator.
// - split() makes the communicator of a subgroup; only the members call it, all with the same
//   (members, name), in the same order relative to their other splits.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bignlp/tensor/device.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::comm {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

/// "sum", "avg", "max", "min".
const char* reduce_op_name(ReduceOp op);

/// Default wait timeout of collectives (NCCL/torch use 30 min; CPU tests pass shorter ones).
inline constexpr std::chrono::milliseconds kDefaultCommTimeout = std::chrono::minutes(30);

/// Handle of an operation in flight.
class Work {
 public:
  virtual ~Work() = default;
  /// Blocks until the operation completed. Throws RuntimeError with the operation's error, or on
  /// timeout ("all_reduce on group 'tp' [ranks 0,1] timed out after 5.0s on rank 1 ...").
  virtual void wait(std::chrono::milliseconds timeout) = 0;
  /// True once the operation finished (successfully or not); never blocks.
  virtual bool completed() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

/// A Work that is already complete (size-1 groups, no-ops).
WorkPtr completed_work();

/// One point-to-point transfer of a batch (batch_send_recv).
struct P2pOp {
  enum class Kind { kSend, kRecv };
  Kind kind = Kind::kSend;
  TensorView tensor;
  int peer = 0;  ///< group rank
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This process's rank in the group.
  virtual int rank() const = 0;
  /// Number of members.
  virtual int size() const = 0;
  /// The group's name ("world", "tp", "dp-0", ...), used in error messages.
  virtual const std::string& name() const = 0;
  /// World ranks of the members, indexed by group rank.
  virtual const std::vector<int>& global_ranks() const = 0;
  /// Where tensors must live (CPU for the CPU backends, the rank's GPU for NCCL).
  virtual Device device() const = 0;
  /// "local", "gloo" or "nccl".
  virtual const char* backend() const = 0;

  /// Timeout the sync variants wait with.
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  /// In place: every rank ends with op over all ranks' `tensor`.
  virtual WorkPtr all_reduce_async(const TensorView& tensor, ReduceOp op) = 0;
  /// out (size * n) = concatenation of every rank's in (n).
  virtual WorkPtr all_gather_async(const TensorView& in, const TensorView& out) = 0;
  /// out (n) = op over ranks of chunk `rank()` of in (size * n).
  virtual WorkPtr reduce_scatter_async(const TensorView& in, const TensorView& out, ReduceOp op) = 0;
  /// In place: every rank ends with root's `tensor`.
  virtual WorkPtr broadcast_async(const TensorView& tensor, int root) = 0;
  /// Sends `tensor` to group rank `peer`.
  virtual WorkPtr send_async(const TensorView& tensor, int peer) = 0;
  /// Receives into `tensor` (exactly its size) from group rank `peer`.
  virtual WorkPtr recv_async(const TensorView& tensor, int peer) = 0;
  /// Completes once every member has entered the barrier.
  virtual WorkPtr barrier_async() = 0;
  /// Posts several sends and receives at once and completes when all have (Megatron's
  /// batch_isend_irecv): a stage may send to one neighbour and receive from another, or exchange
  /// with one neighbour in both directions, without deadlock on any backend. The default posts
  /// each with send_async/recv_async.
  virtual WorkPtr batch_send_recv(const std::vector<P2pOp>& ops);

  /// The communicator of the subgroup `members` (group ranks of this communicator, ascending or
  /// not: the order given is the new group's rank order). Only members call it.
  virtual std::unique_ptr<Communicator> split(const std::vector<int>& members, const std::string& name) = 0;

  void all_reduce(const TensorView& tensor, ReduceOp op = ReduceOp::kSum) {
    all_reduce_async(tensor, op)->wait(timeout_);
  }
  void all_gather(const TensorView& in, const TensorView& out) { all_gather_async(in, out)->wait(timeout_); }
  void reduce_scatter(const TensorView& in, const TensorView& out, ReduceOp op = ReduceOp::kSum) {
    reduce_scatter_async(in, out, op)->wait(timeout_);
  }
  void broadcast(const TensorView& tensor, int root) { broadcast_async(tensor, root)->wait(timeout_); }
  void send(const TensorView& tensor, int peer) { send_async(tensor, peer)->wait(timeout_); }
  void recv(const TensorView& tensor, int peer) { recv_async(tensor, peer)->wait(timeout_); }
  void barrier() { barrier_async()->wait(timeout_); }

  /// "group 'tp' [ranks 0,1]": how errors name this group.
  std::string describe() const;

 private:
  std::chrono::milliseconds timeout_ = kDefaultCommTimeout;
};

/// Checks the arguments of a collective (contiguity, device, dtype, sizes); throws RuntimeError
/// naming the collective and the group. Backends call these before doing anything.
void check_collective_tensor(const Communicator& comm, const char* op, const char* what, const TensorView& t);
void check_reduce_dtype(const Communicator& comm, const char* op, const TensorView& t, ReduceOp reduce);

}  // namespace bignlp::comm
