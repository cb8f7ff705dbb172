// The gloo backend: CPU collectives across processes over TCP (loopback or the cluster network).
//
// make_gloo_communicator() connects a full mesh of TCP pairs between all ranks of the world,
// exchanging addresses through a Store (TcpStore on the master, or a FileStore), and returns the
// world CpuCommunicator over it. Collectives are CpuCommunicator's rings on gloo's unbound-buffer
// send/recv; split() groups reuse the world's connections. gloo's own errors (a peer that died, a
// timeout) surface as RuntimeError naming the operation, the group and the peer.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/store.h"

namespace bignlp::comm {

struct GlooOptions {
  /// Address this rank listens on: a host name or IP that the other ranks can reach
  /// ("127.0.0.1" on one machine; the node's hostname on a cluster).
  std::string hostname = "127.0.0.1";
  /// Network interface instead of hostname (e.g. "ib0"); empty to use hostname.
  std::string interface;
  /// Timeout of connection set-up and of each collective.
  std::chrono::milliseconds timeout = kDefaultCommTimeout;
};

/// The world communicator of `rank` among `size` processes (collective: every rank calls it).
std::unique_ptr<Communicator> make_gloo_communicator(Store& store, int rank, int size, const GlooOptions& options);

/// gloo's own collective algorithms (gloo::allreduce ring, allgather, broadcast) on a connection set
/// of their own: the peer the communication benchmark measures the CpuCommunicator rings against.
/// fp32 only, sum only; collective construction like make_gloo_communicator.
class GlooNativeCollectives {
 public:
  GlooNativeCollectives(Store& store, int rank, int size, const GlooOptions& options);
  ~GlooNativeCollectives();
  void all_reduce_sum(float* data, std::size_t count);
  void all_gather(const float* in, float* out, std::size_t count_per_rank);
  void broadcast(float* data, std::size_t count, int root);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bignlp::comm
