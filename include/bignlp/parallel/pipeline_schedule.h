// Pipeline schedules as data: a pure function of (pp size, stage, micro-batches, chunks) returning
// the stage's list of actions, which PipelineExecutor runs. Written as Megatron's phases
// (megatron-model.md 5.3 and 5.5; apex fwd_bwd_pipelining_{without,with}_interleaving).
//
// 1F1B (vp = 1), stage r of p, M micro-batches: warmup = min(p - r - 1, M) forwards, then 1F1B
// pairs (forward of micro-batch warmup+i, backward of micro-batch i), then the remaining
// backwards. At most p - r micro-batches are in flight on stage r.
//
// Interleaved (vp chunks per stage, M % p == 0): M*vp virtual micro-batches; virtual step k runs
// chunk (k mod p*vp) div p forward (vp-1 minus that backward) on micro-batch
// (k div p*vp)*p + k mod p; warmup = min((p-r-1)*2 + (vp-1)*p, M*vp), everything when M == p.
//
// Communication actions name the (micro-batch, chunk) of the tensor on THIS stage: SendForward is
// the output of (mb, c), RecvForward the input of (mb, c), SendBackward the input gradient of
// (mb, c), RecvBackward the output gradient of (mb, c). Forward messages go to stage r+1 (the last
// stage's chunk c sends to stage 0's chunk c+1), backward messages to stage r-1 (stage 0's chunk c
// to the last stage's chunk c-1). Consecutive communication actions form one batch that is posted
// together (Megatron's combined send/recv calls); compute actions separate batches.
//
// Example (p = 2, M = 4, 1F1B), as to_string prints it:
//   stage 0: F0 SF0 F1 SF1 RB0 B0 F2 SF2 RB1 B1 F3 SF3 RB2 B2 RB3 B3
//   stage 1: RF0 F0 B0 SB0 RF1 F1 B1 SB1 RF2 F2 B2 SB2 RF3 F3 B3 SB3
#pragma once

#include <string>
#include <vector>

namespace bignlp::parallel {

enum class ActionKind { kRecvForward, kForward, kSendForward, kRecvBackward, kBackward, kSendBackward };

struct Action {
  ActionKind kind = ActionKind::kForward;
  int microbatch = 0;
  int chunk = 0;
  bool is_communication() const { return kind != ActionKind::kForward && kind != ActionKind::kBackward; }
  friend bool operator==(const Action&, const Action&) = default;
};

/// The 1F1B schedule of `stage` (forward_only: M forwards with their sends and receives).
std::vector<Action> one_f_one_b_schedule(int pp_size, int stage, int num_microbatches, bool forward_only = false);

/// The interleaved schedule of `stage` with `num_chunks` model chunks per stage. Requires
/// num_microbatches % pp_size == 0 (as Megatron) and pp_size >= 2.
std::vector<Action> interleaved_schedule(int pp_size, int stage, int num_microbatches, int num_chunks,
                                         bool forward_only = false);

/// 1F1B for num_chunks == 1, interleaved otherwise; pp_size 1 gives F0 B0 F1 B1 ... (no pipeline).
std::vector<Action> pipeline_schedule(int pp_size, int stage, int num_microbatches, int num_chunks,
                                      bool forward_only = false);

/// "F3" / "SB2" (1 chunk), "F3.1" / "RF0.1" (chunk shown when num_chunks > 1).
std::string to_string(const Action& a, bool show_chunk);
std::string to_string(const std::vector<Action>& actions, bool show_chunk);

/// How a batch of communication actions completes in the simulation.
enum class ValidationMode {
  kBatch,                     ///< all posted at once; done when every counterpart is posted (gloo, threads)
  kActivationsThenGradients,  ///< the activation ops complete before the gradient ops are posted (the
                              ///< executor's two NCCL groups, issued in that order on one stream)
};

/// Checks the schedules of all p stages together, by simulation: every send meets a receive on the
/// neighbour that names the same tensor ((mb, c) -> (mb, c) or, across the wrap, (mb, c+1) /
/// (mb, c-1)), in the same order per direction; every forward and backward of every
/// (micro-batch, chunk) runs exactly once, after its input (or gradient) arrived and, for a
/// backward, after its forward; and the schedules cannot deadlock when each batch of communication
/// blocks as `mode` says. Throws RuntimeError describing the first problem.
void validate_schedules(const std::vector<std::vector<Action>>& schedules, int num_microbatches, int num_chunks,
                        bool forward_only = false, ValidationMode mode = ValidationMode::kBatch);

}  // namespace bignlp::parallel
