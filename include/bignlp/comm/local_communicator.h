// LocalWorld: N ranks as threads of one process, exchanging messages through shared memory.
//
// The backend of the unit and equivalence tests: every parallel layer, schedule and optimizer runs
// here exactly as across processes (the collectives are the CpuCommunicator rings, the same code
// the gloo backend runs), with no network and no GPU. A send copies the message into the
// receiver's mailbox (never blocks); a recv waits for it. abort() wakes every waiting rank with an
// error, so one failing rank ends a test quickly instead of after a timeout.
//
//   LocalWorld world(4);
//   world.run([](Communicator& comm) { ... });   // rank r's body on thread r; rethrows the first error
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "bignlp/comm/communicator.h"

namespace bignlp::comm {

class LocalWorld {
 public:
  /// A world of `size` ranks whose communicators wait at most `timeout` per operation.
  explicit LocalWorld(int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~LocalWorld();
  LocalWorld(const LocalWorld&) = delete;
  LocalWorld& operator=(const LocalWorld&) = delete;

  int size() const;
  /// The world communicator of `rank` (call once per rank; use it from that rank's thread).
  std::unique_ptr<Communicator> communicator(int rank);
  /// Fails every pending and future receive with `reason`.
  void abort(const std::string& reason);

  /// Runs body(rank's world communicator) on `size` threads and joins them. If a rank throws, the
  /// world is aborted and the first error is rethrown, prefixed with "rank r: ".
  void run(const std::function<void(Communicator&)>& body);

  struct State;  ///< shared mailboxes (opaque)

 private:
  std::shared_ptr<State> state_;
};

/// A communicator of one rank (size 1): every collective is a copy or a no-op.
std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace bignlp::comm
