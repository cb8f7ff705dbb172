// Transport: tagged point-to-point byte messages between the ranks of a world, the seam under the
// CPU communicator.
//
// A message is (sender, receiver, slot); a recv names the sender and slot it expects and receives
// exactly one message of exactly the posted size. Posting never blocks; TransportOp::wait() does.
// Implementations: the in-process mailbox (local_communicator.h) and gloo's TCP pairs
// (gloo_communicator.h). CpuCommunicator runs every collective on top of send/recv, so both
// backends share one implementation of the algorithms (rings). Thread-safe: different threads may
// post and wait concurrently as long as they use different slots.
//
// Slots are 64-bit: the communicator packs (group tag, kind, sequence number) into them so that
// groups sharing the transport, and collectives of one group, never see each other's messages.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bignlp::comm {

/// A slot transports may keep for themselves (gloo posts a receive on it per peer to notice a dead
/// connection). The communicator's layout never produces it: it is the world's point-to-point
/// sequence number 2^43 - 1.
inline constexpr std::uint64_t kTransportReservedSlot = (std::uint64_t{1} << 44) - 1;

/// One posted send or recv.
class TransportOp {
 public:
  virtual ~TransportOp() = default;
  /// Blocks until done. Returns false on timeout (the op stays posted); throws RuntimeError when
  /// the transport failed (peer gone, size mismatch, world aborted).
  virtual bool wait(std::chrono::milliseconds timeout) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  /// This process's world rank.
  virtual int rank() const = 0;
  /// World size.
  virtual int size() const = 0;
  /// "local" or "gloo".
  virtual const char* backend() const = 0;
  /// Posts a send of `bytes` at `data` to world rank `peer`; `data` must stay valid until wait().
  virtual std::unique_ptr<TransportOp> send(int peer, std::uint64_t slot, const void* data, std::size_t bytes) = 0;
  /// Posts a receive of exactly `bytes` from world rank `peer` into `data`.
  virtual std::unique_ptr<TransportOp> recv(int peer, std::uint64_t slot, void* data, std::size_t bytes) = 0;
};

}  // namespace bignlp::comm
