// Training memory of one rank, estimated from the model's shape and the training layout: the
// static state (weights, gradients, fp32 master weights, Adam moments) and the activations kept for
// backward. An estimate for choosing layouts (the HP tool's pruning), not the allocator's
// accounting: workspaces, fragmentation, communication buffers and the CUDA context are not counted.
//
// State bytes per parameter (megatron-model.md §9; ParameterStore keeps exactly these buffers):
//   precision   weights  gradients  master  Adam m+v   total   distributed optimizer over DP = d
//   fp32        4        4          0       8          16      4 + 4 + 8/d
//   bf16, fp16  2        4 (fp32)   4       8          18      2 + 4 + 12/d
// (at fp32 the weights are the master copy; the distributed optimizer keeps the master weights and
// moments of 1/d of the elements on each DP rank).
//
// Activations of one layer for one micro-batch (Korthikanti et al. 2022, "Reducing Activation
// Recomputation in Large Transformer Models", §4): with s = T, b = B, h = C, a = NH, 16-bit
// activations and 1-byte dropout masks, a GPT layer keeps
//     s*b*h * (34 + 5*a*s/h) bytes
//   attention 11sbh + 5as^2b: QKV input 2sbh; Q, K 4sbh; softmax output 2as^2b, its dropout mask
//             as^2b, dropout output 2as^2b; V 2sbh; dense input 2sbh; dropout mask sbh
//   MLP       19sbh: input 2sbh; GeLU input 8sbh; output-projection input 8sbh; dropout mask sbh
//   norms     4sbh: the two norm inputs.
// Tensor parallelism (t) splits everything but the norm inputs, the attention/MLP inputs and the
// dropout masks after them, 10sbh: sbh * (10 + 24/t + 5as/(ht)); with sequence parallelism those are
// split along the sequence as well: sbh/t * (34 + 5as/h). Selective recomputation keeps none of the
// core attention's scores (the 5as/h term); full recomputation keeps only the layer's input, 2sbh
// (2sbh/t with sequence parallelism). In general, with e = bytes of an activation element (2, or 4
// at fp32), P = NH*HS, F the MLP width and m = 3 for a gated MLP (both branches and their product),
// 2 otherwise:
//   replicated  (2e + 1) s b h per block (norm input, norm output, dropout mask): 2 blocks, 3 with
//               cross-attention
//   split       4e s b P (Q, K, V, dense input) + m e s b F, plus for cross-attention
//               2e s b P + 2e sk b P (Q and dense input on the decoder, K and V over the sk encoder
//               positions)
//   scores      (2e + 1) a s^2 b, plus (2e + 1) a s sk b for cross-attention
// which is 34 and 5 at e = 2, P = h, F = 4h, m = 2. The encoder output that cross-attention reads
// is counted once per stage, not per layer.
//
// Per rank (the 1F1B schedule, megatron-model.md §5.3/5.5): stage r holds min(PP - r, M)
// micro-batches in flight, each with its L/PP layers' activations; interleaved with v chunks, the
// in-flight chunks are min(2 (PP - r - 1) + (v - 1) PP + 1, M v), each of L/(PP v) layers (stage 0:
// L * (1 + (PP-1)/(PP v)) layers' worth, Korthikanti's figure). Full recomputation adds one layer's
// complete activations (recomputed during its backward). The first stage adds the embedding's
// dropout mask per micro-batch in flight; the last stage the output layer: the final norm's input
// and the logits GEMM's input (2e s b h) and the fp32 logits for the loss (4 s b Vp / t).
//
// Worked example (gpt3/126m shape: L 12, C 768, NH 12, T 2048, Vp 50304; B 4, bf16, one rank, no
// recomputation): a layer keeps 2048*4*768 * (34 + 5*12*2048/768) = 6,291,456 * 194 = 1,220,542,464
// bytes; 12 layers 14,646,509,568; embedding mask 6,291,456; output 2*2*6,291,456 + 4*2048*4*50304
// = 1,673,527,296; the state 125,262,336 parameters * 18 = 2,254,722,048; in all 18,581,050,368
// bytes (17.3 GiB).
#pragma once

#include <cstdint>

#include "bignlp/sizing/gpt_shape.h"
#include "bignlp/sizing/layer_shape.h"
#include "bignlp/sizing/layout.h"
#include "bignlp/sizing/t5_shape.h"

namespace bignlp::sizing {

/// Bytes each parameter costs on the rank that holds it (see the table in the file comment).
struct StateBytes {
  double weights = 0;          ///< the compute copy (the weights themselves at fp32)
  double gradients = 0;        ///< fp32 gradients
  double master_weights = 0;   ///< fp32 master copy under mixed precision (0 at fp32)
  double optimizer_state = 0;  ///< Adam's m and v, fp32
  double total() const { return weights + gradients + master_weights + optimizer_state; }
};

/// Throws ConfigError when dp_size < 1.
StateBytes state_bytes_per_parameter(Precision precision, bool distributed_optimizer, int dp_size);

/// Bytes of one stored activation element: 4 at fp32, 2 at bf16 and fp16.
int activation_element_bytes(Precision precision);

/// Bytes one layer keeps for backward for one micro-batch of layout.micro_batch_size sequences of
/// `seq` tokens (`cross_seq`: the encoder positions cross-attention reads, for decoder layers), on
/// one of layout.tp_size ranks, under layout.recompute and layout.sequence_parallel.
double layer_activation_bytes(const LayerShape& layer, std::int64_t seq, std::int64_t cross_seq,
                              const TrainingLayout& layout);

/// One rank's estimate, in bytes.
struct MemoryEstimate {
  std::int64_t parameters = 0;  ///< held by this rank (rank_parameter_count)
  double weight_bytes = 0;
  double gradient_bytes = 0;
  double master_weight_bytes = 0;
  double optimizer_state_bytes = 0;
  double activation_bytes = 0;
  double state_bytes() const { return weight_bytes + gradient_bytes + master_weight_bytes + optimizer_state_bytes; }
  double total_bytes() const { return state_bytes() + activation_bytes; }
};

/// The ranks of pipeline stage `pp_rank` under `layout` (every TP and DP rank of a stage holds the
/// same). Throws ConfigError for a layout the model cannot take (see rank_parameter_count; L % (PP
/// v) with interleaving).
MemoryEstimate memory_per_rank(const GptShape& shape, const TrainingLayout& layout, int pp_rank);
/// As above for T5 (no interleaving: virtual_pipeline_size must be 1).
MemoryEstimate memory_per_rank(const T5Shape& shape, const TrainingLayout& layout, int pp_rank);

}  // namespace bignlp::sizing
