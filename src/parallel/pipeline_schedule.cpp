#include "bignlp/parallel/pipeline_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "bignlp/core/check.h"

namespace bignlp::parallel {

namespace {

Action act(ActionKind k, int mb, int chunk = 0) { return Action{k, mb, chunk}; }

// Python's modulo (non-negative for a positive divisor), as the reference schedule relies on it.
int pmod(int a, int n) { return ((a % n) + n) % n; }

}  // namespace

std::vector<Action> one_f_one_b_schedule(int pp_size, int stage, int num_microbatches, bool forward_only) {
  BIGNLP_CHECK(pp_size >= 1 && stage >= 0 && stage < pp_size && num_microbatches >= 1,
               "1F1B schedule: stage {} of {} with {} micro-batches", stage, pp_size, num_microbatches);
  const bool first = stage == 0, last = stage == pp_size - 1;
  const int m = num_microbatches;
  std::vector<Action> a;
  if (forward_only) {
    for (int i = 0; i < m; ++i) {
      if (!first) a.push_back(act(ActionKind::kRecvForward, i));
      a.push_back(act(ActionKind::kForward, i));
      if (!last) a.push_back(act(ActionKind::kSendForward, i));
    }
    return a;
  }
  const int warmup = std::min(pp_size - stage - 1, m);
  const int remaining = m - warmup;
  for (int i = 0; i < warmup; ++i) {
    if (!first) a.push_back(act(ActionKind::kRecvForward, i));
    a.push_back(act(ActionKind::kForward, i));
    if (!last) a.push_back(act(ActionKind::kSendForward, i));
  }
  if (remaining > 0 && !first) a.push_back(act(ActionKind::kRecvForward, warmup));
  for (int i = 0; i < remaining; ++i) {
    a.push_back(act(ActionKind::kForward, warmup + i));
    if (!last) {
      a.push_back(act(ActionKind::kSendForward, warmup + i));  // send_forward_recv_backward
      a.push_back(act(ActionKind::kRecvBackward, i));
    }
    a.push_back(act(ActionKind::kBackward, i));
    if (!first) {
      a.push_back(act(ActionKind::kSendBackward, i));
      if (i != remaining - 1) a.push_back(act(ActionKind::kRecvForward, warmup + i + 1));  // send_backward_recv_forward
    }
  }
  for (int i = remaining; i < m; ++i) {
    if (!last) a.push_back(act(ActionKind::kRecvBackward, i));
    a.push_back(act(ActionKind::kBackward, i));
    if (!first) a.push_back(act(ActionKind::kSendBackward, i));
  }
  return a;
}

std::vector<Action> interleaved_schedule(int pp_size, int stage, int num_microbatches, int num_chunks, bool forward_only) {
  const int p = pp_size, r = stage, vp = num_chunks, m = num_microbatches;
  BIGNLP_CHECK(p >= 2 && r >= 0 && r < p && vp >= 1 && m >= 1,
               "interleaved schedule: stage {} of {} with {} chunks and {} micro-batches", r, p, vp, m);
  if (m % p != 0) {
    throw ConfigError(fmt::format(
        "the interleaved pipeline schedule needs the number of micro-batches per step ({}) to be a multiple of "
        "model.pipeline_model_parallel_size ({})",
        m, p));
  }
  const int total = m * vp;
  const auto chunk_fwd = [&](int k) { return pmod(k, p * vp) / p; };
  const auto chunk_bwd = [&](int k) { return vp - 1 - chunk_fwd(k); };
  const auto mb = [&](int k) { return (k / (p * vp)) * p + pmod(k, p); };
  const auto first_virtual = [&](int c) { return r == 0 && c == 0; };
  const auto last_virtual = [&](int c) { return r == p - 1 && c == vp - 1; };

  int warmup = 0;
  bool all_warmup = false;
  if (forward_only) {
    warmup = total;
  } else if (m == p) {
    warmup = total;
    all_warmup = true;
  } else {
    warmup = std::min((p - r - 1) * 2 + (vp - 1) * p, total);
  }
  const int remaining = total - warmup;

  std::vector<Action> a;
  if (r != 0) a.push_back(act(ActionKind::kRecvForward, mb(0), chunk_fwd(0)));
  for (int k = 0; k < warmup; ++k) {
    const int c = chunk_fwd(k);
    a.push_back(act(ActionKind::kForward, mb(k), c));
    const int next_c = chunk_fwd(k + 1);
    bool recv_prev = !(r == 0 && next_c == 0) && k != total - 1;
    if (!last_virtual(c)) a.push_back(act(ActionKind::kSendForward, mb(k), c));
    if (recv_prev) a.push_back(act(ActionKind::kRecvForward, mb(k + 1), next_c));
    if (k == warmup - 1 && !forward_only && !all_warmup && r != p - 1) {
      a.push_back(act(ActionKind::kRecvBackward, mb(0), chunk_bwd(0)));
    }
  }
  for (int k = 0; k < remaining; ++k) {
    const int fk = k + warmup, bk = k;
    const int cf = chunk_fwd(fk), cb = chunk_bwd(bk);
    a.push_back(act(ActionKind::kForward, mb(fk), cf));
    a.push_back(act(ActionKind::kBackward, mb(bk), cb));
    bool recv_prev = true;
    int next_fc = 0, next_fc_mb = 0;
    if (r == 0) {
      // Stage 0 is ahead of the last stage by p - 1 virtual steps.
      next_fc = chunk_fwd(fk - (p - 1));
      if (next_fc == vp - 1) recv_prev = false;
      next_fc += 1;
      next_fc_mb = mb(fk - (p - 1));
    } else {
      next_fc = chunk_fwd(fk + 1);
      next_fc_mb = mb(fk + 1);
    }
    bool recv_next = true;
    int next_bc = 0, next_bc_mb = 0;
    if (r == p - 1) {
      // The last stage is ahead of stage 0 by p - 1 virtual steps.
      next_bc = chunk_bwd(bk - (p - 1));
      if (next_bc == 0) recv_next = false;
      next_bc -= 1;
      next_bc_mb = mb(bk - (p - 1));
    } else {
      next_bc = chunk_bwd(bk + 1);
      next_bc_mb = mb(bk + 1);
    }
    if (k == remaining - 1) recv_prev = false;
    if (!last_virtual(cf)) a.push_back(act(ActionKind::kSendForward, mb(fk), cf));
    if (!first_virtual(cb)) a.push_back(act(ActionKind::kSendBackward, mb(bk), cb));
    if (recv_prev) a.push_back(act(ActionKind::kRecvForward, next_fc_mb, next_fc));
    if (recv_next) a.push_back(act(ActionKind::kRecvBackward, next_bc_mb, next_bc));
  }
  if (forward_only) return a;
  if (all_warmup && r != p - 1) a.push_back(act(ActionKind::kRecvBackward, mb(0), chunk_bwd(0)));
  for (int k = remaining; k < total; ++k) {
    const int cb = chunk_bwd(k);
    a.push_back(act(ActionKind::kBackward, mb(k), cb));
    const int next_bc = chunk_bwd(k + 1);
    bool recv_next = !(r == p - 1 && next_bc == vp - 1) && k != total - 1;
    if (!first_virtual(cb)) a.push_back(act(ActionKind::kSendBackward, mb(k), cb));
    if (recv_next) a.push_back(act(ActionKind::kRecvBackward, mb(k + 1), next_bc));
  }
  return a;
}

std::vector<Action> pipeline_schedule(int pp_size, int stage, int num_microbatches, int num_chunks, bool forward_only) {
  if (pp_size == 1) {
    BIGNLP_CHECK(num_chunks == 1, "virtual pipeline chunks need pipeline parallelism (pp size 1, {} chunks)", num_chunks);
    std::vector<Action> a;
    for (int i = 0; i < num_microbatches; ++i) {
      a.push_back(act(ActionKind::kForward, i));
      if (!forward_only) a.push_back(act(ActionKind::kBackward, i));
    }
    return a;
  }
  if (num_chunks == 1) return one_f_one_b_schedule(pp_size, stage, num_microbatches, forward_only);
  return interleaved_schedule(pp_size, stage, num_microbatches, num_chunks, forward_only);
}

std::string to_string(const Action& a, bool show_chunk) {
  const char* k = "";
  switch (a.kind) {
    case ActionKind::kRecvForward: k = "RF"; break;
    case ActionKind::kForward: k = "F"; break;
    case ActionKind::kSendForward: k = "SF"; break;
    case ActionKind::kRecvBackward: k = "RB"; break;
    case ActionKind::kBackward: k = "B"; break;
    case ActionKind::kSendBackward: k = "SB"; break;
  }
  return show_chunk ? fmt::format("{}{}.{}", k, a.microbatch, a.chunk) : fmt::format("{}{}", k, a.microbatch);
}

std::string to_string(const std::vector<Action>& actions, bool show_chunk) {
  std::string s;
  for (const auto& a : actions) {
    if (!s.empty()) s += ' ';
    s += to_string(a, show_chunk);
  }
  return s;
}

// ------------------------------------------------------------------------------------------------
// Simulation

namespace {

using Label = std::pair<int, int>;          // (micro-batch, chunk)
using Channel = std::tuple<int, int, int>;  // (src stage, dst stage, backward?)

// Runs the p action lists against each other, one batch of consecutive communication actions at a
// time per stage, and records every message by channel: what was sent (labelled as the receiver
// names it) and what was expected, in posting order.
class ScheduleSimulator {
 public:
  ScheduleSimulator(const std::vector<std::vector<Action>>& schedules, int num_microbatches, int num_chunks,
                    bool forward_only, ValidationMode mode)
      : schedules_(schedules),
        p_(static_cast<int>(schedules.size())),
        m_(num_microbatches),
        vp_(num_chunks),
        forward_only_(forward_only),
        mode_(mode),
        show_chunk_(num_chunks > 1),
        stages_(schedules.size()) {}

  // Advances every stage as far as it can until all are done; throws on a deadlock.
  void run() {
    for (;;) {
      bool progress = false, all_done = true;
      for (int r = 0; r < p_; ++r) {
        progress = advance(r) || progress;
        if (stages_[idx(r)].pc < schedules_[idx(r)].size()) all_done = false;
      }
      if (all_done) return;
      if (!progress) throw_deadlock();
    }
  }

  // Every message sent was received and every receive was sent, per channel.
  void check_message_counts() {
    for (const auto& [ch, labels] : sent_) {
      if (received_[ch].size() != labels.size()) {
        throw RuntimeError(
            fmt::format("pipeline schedule: stage {} sends {} {} messages to stage {}, which receives {}",
                        std::get<0>(ch), labels.size(), std::get<2>(ch) ? "backward" : "forward",
                        std::get<1>(ch), received_[ch].size()));
      }
    }
    for (const auto& [ch, labels] : received_) {
      if (sent_[ch].size() != labels.size()) {
        throw RuntimeError(fmt::format("pipeline schedule: stage {} expects {} messages from stage {}, which sends {}",
                                       std::get<1>(ch), labels.size(), std::get<0>(ch), sent_[ch].size()));
      }
    }
  }

  // Every stage ran the forward (and backward) of every (micro-batch, chunk).
  void check_compute_counts() const {
    const std::size_t want = static_cast<std::size_t>(m_ * vp_);
    for (int r = 0; r < p_; ++r) {
      const StageState& s = stages_[idx(r)];
      if (s.forwards.size() != want || (!forward_only_ && s.backwards.size() != want)) {
        throw RuntimeError(
            fmt::format("pipeline schedule: stage {} runs {} forwards and {} backwards, expected {} each", r,
                        s.forwards.size(), s.backwards.size(), want));
      }
    }
  }

 private:
  // One posted communication: the index of its message on the channel, and of its action.
  struct Op {
    Channel channel;
    std::size_t index;
    bool is_send;
    std::size_t action = 0;  // index in the stage's list
  };
  struct StageState {
    std::size_t pc = 0;
    int phase = 0;  // strict mode: 1 = activation ops posted, 2 = gradient ops posted
    bool posted = false;
    std::size_t batch_end = 0;
    std::vector<Op> ops;
    std::set<Label> inputs, grads, forwards, backwards;
  };

  static std::size_t idx(int r) { return static_cast<std::size_t>(r); }
  static bool is_gradient(const Action& a) {
    return a.kind == ActionKind::kSendBackward || a.kind == ActionKind::kRecvBackward;
  }

  [[noreturn]] void fail(int stage, const Action& a, const std::string& why) const {
    throw RuntimeError(fmt::format("pipeline schedule, stage {} action {}: {}", stage, to_string(a, show_chunk_), why));
  }

  // Runs stage r's actions until it blocks on communication or ends; true when anything happened.
  bool advance(int r) {
    StageState& s = stages_[idx(r)];
    const auto& list = schedules_[idx(r)];
    bool progress = false;
    while (s.pc < list.size()) {
      const Action& a = list[s.pc];
      if (!a.is_communication()) {
        check_compute(r, s, a);
        ++s.pc;
        progress = true;
        continue;
      }
      if (!s.posted) {
        s.batch_end = s.pc;
        while (s.batch_end < list.size() && list[s.batch_end].is_communication()) ++s.batch_end;
        // Default: the whole batch at once. Strict: activations first, gradients after those completed.
        post_batch(r, s, /*gradients=*/mode_ == ValidationMode::kBatch, /*activations=*/true);
        s.posted = true;
        s.phase = 1;
        progress = true;
      }
      if (!complete(s)) break;
      if (mode_ == ValidationMode::kActivationsThenGradients && s.phase == 1) {
        s.phase = 2;
        const bool any = post_batch(r, s, /*gradients=*/true, /*activations=*/false);
        progress = true;
        if (any && !complete(s)) break;
      }
      finish_batch(r, s);
      progress = true;
    }
    return progress;
  }

  // Posts the batch's gradient and/or activation actions; true when it posted any.
  bool post_batch(int r, StageState& s, bool gradients, bool activations) {
    const auto& list = schedules_[idx(r)];
    bool any = false;
    for (std::size_t i = s.pc; i < s.batch_end; ++i) {
      if (is_gradient(list[i]) ? gradients : activations) {
        s.ops.push_back(post(r, s, list[i]));
        s.ops.back().action = i;
        any = true;
      }
    }
    return any;
  }

  // Every posted op has its counterpart: a send was received, a receive was sent.
  bool complete(const StageState& s) {
    return std::all_of(s.ops.begin(), s.ops.end(), [&](const Op& op) {
      return op.is_send ? received_[op.channel].size() > op.index : sent_[op.channel].size() > op.index;
    });
  }

  // The batch completed: each receive got the tensor it names; the stage moves past the batch.
  void finish_batch(int r, StageState& s) {
    const auto& list = schedules_[idx(r)];
    for (const Op& op : s.ops) {
      if (op.is_send) continue;
      const Action& c = list[op.action];
      const Label l{c.microbatch, c.chunk};
      const Label expect = sent_[op.channel][op.index];
      if (expect != l) {
        fail(r, c, fmt::format("receives the tensor the neighbour sent as micro-batch {} chunk {}", expect.first,
                               expect.second));
      }
      (c.kind == ActionKind::kRecvForward ? s.inputs : s.grads).insert(l);
    }
    s.pc = s.batch_end;
    s.posted = false;
    s.ops.clear();
  }

  void check_compute(int r, StageState& s, const Action& a) const {
    const Label l{a.microbatch, a.chunk};
    if (a.microbatch < 0 || a.microbatch >= m_ || a.chunk < 0 || a.chunk >= vp_) fail(r, a, "out of range");
    if (a.kind == ActionKind::kForward) {
      if (!(r == 0 && a.chunk == 0) && !s.inputs.count(l)) fail(r, a, "runs before its input arrived");
      if (!s.forwards.insert(l).second) fail(r, a, "runs twice");
    } else {
      if (forward_only_) fail(r, a, "backward in a forward-only schedule");
      if (!s.forwards.count(l)) fail(r, a, "runs before its forward");
      if (!(r == p_ - 1 && a.chunk == vp_ - 1) && !s.grads.count(l))
        fail(r, a, "runs before its output gradient arrived");
      if (!s.backwards.insert(l).second) fail(r, a, "runs twice");
    }
  }

  // Records one communication action as a message on its channel.
  Op post(int r, const StageState& s, const Action& a) {
    const int p = p_;
    const Label l{a.microbatch, a.chunk};
    switch (a.kind) {
      case ActionKind::kSendForward: {
        if (!s.forwards.count(l)) fail(r, a, "sends an output that was not computed");
        if (r == p - 1 && a.chunk == vp_ - 1) fail(r, a, "the last chunk of the last stage has nothing to send");
        const int dst = (r + 1) % p;
        const Label at_dst = dst == 0 ? Label{a.microbatch, a.chunk + 1} : l;
        const Channel ch{r, dst, 0};
        sent_[ch].push_back(at_dst);
        return {ch, sent_[ch].size() - 1, true};
      }
      case ActionKind::kSendBackward: {
        if (!s.backwards.count(l)) fail(r, a, "sends a gradient that was not computed");
        if (r == 0 && a.chunk == 0) fail(r, a, "the first chunk of the first stage has nothing to send");
        const int dst = (r + p - 1) % p;
        const Label at_dst = r == 0 ? Label{a.microbatch, a.chunk - 1} : l;
        const Channel ch{r, dst, 1};
        sent_[ch].push_back(at_dst);
        return {ch, sent_[ch].size() - 1, true};
      }
      case ActionKind::kRecvForward: {
        if (r == 0 && a.chunk == 0) fail(r, a, "the first chunk of the first stage receives no input");
        const Channel ch{(r + p - 1) % p, r, 0};
        received_[ch].push_back(l);
        return {ch, received_[ch].size() - 1, false};
      }
      case ActionKind::kRecvBackward: {
        if (r == p - 1 && a.chunk == vp_ - 1) fail(r, a, "the last chunk of the last stage receives no gradient");
        const Channel ch{(r + 1) % p, r, 1};
        received_[ch].push_back(l);
        return {ch, received_[ch].size() - 1, false};
      }
      default: break;
    }
    fail(r, a, "not a communication");
  }

  [[noreturn]] void throw_deadlock() const {
    std::string blocked;
    for (int r = 0; r < p_; ++r) {
      const auto& s = stages_[idx(r)];
      const auto& list = schedules_[idx(r)];
      if (s.pc < list.size()) blocked += fmt::format(" stage {} at {};", r, to_string(list[s.pc], show_chunk_));
    }
    throw RuntimeError(fmt::format("pipeline schedule deadlocks:{}", blocked));
  }

  const std::vector<std::vector<Action>>& schedules_;
  const int p_, m_, vp_;
  const bool forward_only_;
  const ValidationMode mode_;
  const bool show_chunk_;
  std::vector<StageState> stages_;
  std::map<Channel, std::vector<Label>> sent_, received_;
};

}  // namespace

void validate_schedules(const std::vector<std::vector<Action>>& schedules, int num_microbatches, int num_chunks,
                        bool forward_only, ValidationMode mode) {
  const int p = static_cast<int>(schedules.size());
  BIGNLP_CHECK(p >= 1, "no schedules");
  ScheduleSimulator simulator(schedules, num_microbatches, num_chunks, forward_only, mode);
  simulator.run();
  simulator.check_message_counts();
  simulator.check_compute_counts();
}

}  // namespace bignlp::parallel
