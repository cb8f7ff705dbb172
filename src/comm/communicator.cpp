#include "bignlp/comm/communicator.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"

namespace bignlp::comm {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

namespace {
class DoneWork final : public Work {
 public:
  void wait(std::chrono::milliseconds) override {}
  bool completed() override { return true; }
};
}  // namespace

WorkPtr completed_work() { return std::make_shared<DoneWork>(); }

namespace {
class BatchWork final : public Work {
 public:
  explicit BatchWork(std::vector<WorkPtr> works) : works_(std::move(works)) {}
  void wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& w : works_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      w->wait(std::max(left, std::chrono::milliseconds(0)));
    }
  }
  bool completed() override {
    for (auto& w : works_) {
      if (!w->completed()) return false;
    }
    return true;
  }

 private:
  std::vector<WorkPtr> works_;
};
}  // namespace

WorkPtr Communicator::batch_send_recv(const std::vector<P2pOp>& ops) {
  std::vector<WorkPtr> works;
  works.reserve(ops.size());
  // Receives first: a backend whose sends wait for the matching receive never blocks on them.
  for (const auto& op : ops) {
    if (op.kind == P2pOp::Kind::kRecv) works.push_back(recv_async(op.tensor, op.peer));
  }
  for (const auto& op : ops) {
    if (op.kind == P2pOp::Kind::kSend) works.push_back(send_async(op.tensor, op.peer));
  }
  return std::make_shared<BatchWork>(std::move(works));
}

std::string Communicator::describe() const {
  return fmt::format("group '{}' [ranks {}]", name(), fmt::join(global_ranks(), ","));
}

void check_collective_tensor(const Communicator& comm, const char* op, const char* what, const TensorView& t) {
  BIGNLP_CHECK(t.defined(), "{} on {}: {} is empty", op, comm.describe(), what);
  BIGNLP_CHECK(t.is_contiguous(), "{} on {}: {} must be contiguous, got {}", op, comm.describe(), what,
               t.to_string());
  BIGNLP_CHECK(t.device() == comm.device(), "{} on {}: {} is on {}, the {} backend needs {}", op, comm.describe(),
               what, t.device().to_string(), comm.backend(), comm.device().to_string());
  BIGNLP_CHECK(t.dtype() != DType::kU16, "{} on {}: {} has dtype uint16, which collectives do not reduce", op,
               comm.describe(), what);
}

void check_reduce_dtype(const Communicator& comm, const char* op, const TensorView& t, ReduceOp reduce) {
  BIGNLP_CHECK(reduce != ReduceOp::kAvg || is_floating(t.dtype()), "{} on {}: reduce op avg needs a floating dtype, got {}",
               op, comm.describe(), dtype_name(t.dtype()));
}

}  // namespace bignlp::comm
