// CpuCommunicator: the Communicator of host tensors, with every collective built from the
// point-to-point messages of a Transport (in-process mailbox or gloo).
//
// Algorithms (n = group size, chunks of near-equal element counts, ring neighbours r-1 -> r -> r+1):
//   reduce_scatter  n-1 ring steps; chunk c ends fully reduced on rank c
//   all_gather      n-1 ring steps
//   all_reduce      reduce_scatter + all_gather (every rank ends with bit-identical values)
//   broadcast       root sends to every member;  barrier  a 1-element all_reduce
// Reductions run in a fixed order per chunk, so results do not depend on timing. 16-bit floats are
// widened to fp32 for each addition and rounded back (as NCCL does).
//
// Async collectives run on one worker thread per communicator, in issue order; sync ones run on
// the calling thread once the worker is idle (same order). send/recv are posted directly on the
// transport. Subgroups (split) share the parent's transport: ranks are translated and a group tag
// derived from (name, members) keeps their messages apart; no new connections are made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/transport.h"

namespace bignlp::comm {

class CpuCommunicator final : public Communicator {
 public:
  /// The world group over `transport` (members 0..size-1), called `name`.
  explicit CpuCommunicator(std::shared_ptr<Transport> transport, std::string name = "world");
  /// A subgroup: `members` are world ranks and must include transport->rank().
  CpuCommunicator(std::shared_ptr<Transport> transport, std::vector<int> members, std::string name);
  ~CpuCommunicator() override;
  CpuCommunicator(const CpuCommunicator&) = delete;
  CpuCommunicator& operator=(const CpuCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  const std::string& name() const override { return name_; }
  const std::vector<int>& global_ranks() const override { return members_; }
  Device device() const override { return Device::cpu(); }
  const char* backend() const override;

  WorkPtr all_reduce_async(const TensorView& tensor, ReduceOp op) override;
  WorkPtr all_gather_async(const TensorView& in, const TensorView& out) override;
  WorkPtr reduce_scatter_async(const TensorView& in, const TensorView& out, ReduceOp op) override;
  WorkPtr broadcast_async(const TensorView& tensor, int root) override;
  WorkPtr send_async(const TensorView& tensor, int peer) override;
  WorkPtr recv_async(const TensorView& tensor, int peer) override;
  WorkPtr barrier_async() override;
  std::unique_ptr<Communicator> split(const std::vector<int>& members, const std::string& name) override;

 private:
  struct Worker;
  struct Task;
  using Body = void (*)(CpuCommunicator&, Task&);
  WorkPtr submit(const char* op, std::vector<TensorView> tensors, ReduceOp reduce, int root, Body body);
  void run_task(Task& task);
  static void run_all_reduce(CpuCommunicator& c, Task& t);
  static void run_all_gather(CpuCommunicator& c, Task& t);
  static void run_reduce_scatter(CpuCommunicator& c, Task& t);
  static void run_broadcast(CpuCommunicator& c, Task& t);
  void ring_reduce_scatter(Task& t, char* data, DType dtype, std::int64_t numel, ReduceOp op);
  void ring_all_gather(Task& t, char* data, DType dtype, std::int64_t numel);
  void exchange(Task& t, int send_peer, const void* send_data, std::size_t send_bytes, int recv_peer,
                void* recv_data, std::size_t recv_bytes);
  void wait_op(Task& t, class TransportOp& op, const char* what, int peer);
  std::uint64_t next_collective_slot();

  std::shared_ptr<Transport> transport_;
  std::vector<int> members_;
  std::string name_;
  int rank_ = 0;
  std::uint64_t tag_ = 0;
  std::uint64_t collective_seq_ = 0;
  std::vector<std::uint64_t> send_seq_, recv_seq_;
  std::unique_ptr<Worker> worker_;
};

/// The 20-bit group tag of (name, members): FNV-1a, never 0 (0 is the world).
std::uint64_t group_tag(const std::string& name, const std::vector<int>& members);

}  // namespace bignlp::comm
