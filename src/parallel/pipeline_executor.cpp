#include "bignlp/parallel/pipeline_executor.h"

#include <fmt/format.h>

#include <map>
#include <utility>

#include "bignlp/core/check.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

PipelineExecutor::PipelineExecutor(comm::Communicator* forward_channel, comm::Communicator* backward_channel,
                                   Allocator& allocator)
    : fwd_(forward_channel), bwd_(backward_channel), allocator_(allocator) {}

void PipelineExecutor::run(const std::vector<Action>& actions, int num_chunks, PipelineModel& model) {
  const int p = fwd_ ? fwd_->size() : 1;
  const int r = fwd_ ? fwd_->rank() : 0;
  BIGNLP_CHECK(p == 1 || (bwd_ != nullptr && bwd_->size() == p && bwd_->rank() == r),
               "pipeline executor: the gradient communicator must be a second communicator of the pipeline group");
  const int next = (r + 1) % p, prev = (r + p - 1) % p;
  const auto first_virtual = [&](int c) { return r == 0 && c == 0; };
  const auto last_virtual = [&](int c) { return r == p - 1 && c == num_chunks - 1; };
  using Label = std::pair<int, int>;
  std::map<Label, Buffer> inputs, outputs, out_grads, in_grads;
  std::map<int, std::size_t> last_backward;  // chunk -> index of its last backward
  for (std::size_t i = 0; i < actions.size(); ++i) {
    if (actions[i].kind == ActionKind::kBackward) last_backward[actions[i].chunk] = i;
  }
  const Shape shape = model.boundary_shape();
  const DType dtype = model.boundary_dtype();
  auto take = [&](std::map<Label, Buffer>& from, const Label& l, const char* what) {
    auto it = from.find(l);
    BIGNLP_CHECK(it != from.end(), "pipeline stage {}: no {} for micro-batch {} chunk {}", r, what, l.first, l.second);
    Buffer b = std::move(it->second);
    from.erase(it);
    return b;
  };

  std::size_t i = 0;
  while (i < actions.size()) {
    const Action& a = actions[i];
    const Label l{a.microbatch, a.chunk};
    if (a.kind == ActionKind::kForward) {
      TensorView in, out;
      if (!first_virtual(a.chunk)) {
        auto it = inputs.find(l);
        BIGNLP_CHECK(it != inputs.end(), "pipeline stage {}: forward of micro-batch {} chunk {} has no input", r,
                     a.microbatch, a.chunk);
        in = it->second.view();
      }
      if (!last_virtual(a.chunk)) {
        outputs[l] = Buffer(allocator_, dtype, shape);
        out = outputs[l].view();
      }
      model.forward(a.microbatch, a.chunk, in, out);
      ++i;
      continue;
    }
    if (a.kind == ActionKind::kBackward) {
      Buffer og, ig;
      if (!last_virtual(a.chunk)) og = take(out_grads, l, "output gradient");
      if (!first_virtual(a.chunk)) {
        ig = Buffer(allocator_, dtype, shape);
      }
      model.backward(a.microbatch, a.chunk, og.view(), ig.view(), last_backward[a.chunk] == i);
      inputs.erase(l);
      if (ig.defined()) in_grads[l] = std::move(ig);
      ++i;
      continue;
    }
    // A batch of communication.
    BIGNLP_CHECK(p > 1, "pipeline stage {}: communication action {} without a pipeline communicator", r,
                 to_string(a, num_chunks > 1));
    std::vector<comm::P2pOp> fwd_ops, bwd_ops;
    std::vector<Buffer> sent;
    std::size_t j = i;
    for (; j < actions.size() && actions[j].is_communication(); ++j) {
      const Action& c = actions[j];
      const Label cl{c.microbatch, c.chunk};
      switch (c.kind) {
        case ActionKind::kSendForward:
          sent.push_back(take(outputs, cl, "output to send"));
          fwd_ops.push_back({comm::P2pOp::Kind::kSend, sent.back().view(), next});
          break;
        case ActionKind::kRecvForward:
          inputs[cl] = Buffer(allocator_, dtype, shape);
          fwd_ops.push_back({comm::P2pOp::Kind::kRecv, inputs[cl].view(), prev});
          break;
        case ActionKind::kSendBackward:
          sent.push_back(take(in_grads, cl, "input gradient to send"));
          bwd_ops.push_back({comm::P2pOp::Kind::kSend, sent.back().view(), prev});
          break;
        case ActionKind::kRecvBackward:
          out_grads[cl] = Buffer(allocator_, dtype, shape);
          bwd_ops.push_back({comm::P2pOp::Kind::kRecv, out_grads[cl].view(), next});
          break;
        default: break;
      }
    }
    comm::WorkPtr wf = fwd_ops.empty() ? nullptr : fwd_->batch_send_recv(fwd_ops);
    comm::WorkPtr wb = bwd_ops.empty() ? nullptr : bwd_->batch_send_recv(bwd_ops);
    if (wf) wf->wait(fwd_->timeout());
    if (wb) wb->wait(bwd_->timeout());
    i = j;
  }
  BIGNLP_CHECK(outputs.empty() && in_grads.empty() && out_grads.empty(),
               "pipeline stage {}: the schedule left {} outputs, {} input gradients and {} output gradients unsent/unused",
               r, outputs.size(), in_grads.size(), out_grads.size());
}

}  // namespace bignlp::parallel
