// Fragment and shared-memory layout of the flash-attention kernels, as host/device functions, so
// the CPU tests (tests/unit/ops/flash_layout_test.cpp) check the very index arithmetic the kernels
// run against a model of the PTX instructions (ldmatrix, mma.sync m16n8k16).
//
// Shared-memory tiles hold rows of kRowElems 16-bit elements in 16-byte chunks of 8; chunk c of row
// r sits at chunk c ^ (r & 7) (XOR swizzle: the 8 rows one ldmatrix phase reads hit 8 different
// bank groups). ldmatrix.x4 reads four 8x8 matrices; lane l supplies the address of row (l & 7) of
// matrix (l >> 3). The functions below give, for a lane, the tile row and the 16-byte chunk (both
// relative to the fragment's origin) it must point at for each operand role:
//   A      16x16 operand, rows = M, k contiguous in smem          (Q in S = Q K^T; K, V in the backward)
//   B      k16 x two n8 tiles, rows = N, k contiguous in smem    (K in S = Q K^T; Q, dO in S^T, dP^T)
//   Bt     k16 x two n8 tiles, rows = K, n contiguous (.trans)   (V in O += P V; dO, Q, K in dV, dK, dQ)
//   At     16x16 operand, rows = K, m contiguous (.trans)        (dS^T stored key-major, for dQ = dS K)
// Accumulator element e (0..3) of a lane in a 16x8 tile: row (l >> 2) + 8 (e >> 1), column
// 2 (l & 3) + (e & 1). The A operand of the next product is built from two adjacent accumulator
// tiles: register r of A takes elements 2 (r & 1) and 2 (r & 1) + 1 of tile (r >> 1).
// Also here: the dropout decision of score element (query i, key j), the Philox index of ops.h.
#pragma once

#include <cstdint>

#include "bignlp/core/host_device.h"
#include "bignlp/ops/philox.h"

namespace bignlp::kernels::flash {

BIGNLP_HOST_DEVICE constexpr int a_row(int lane) { return lane & 15; }
BIGNLP_HOST_DEVICE constexpr int a_chunk(int lane) { return lane >> 4; }
BIGNLP_HOST_DEVICE constexpr int b_row(int lane) { return (lane & 7) + ((lane >> 4) << 3); }
BIGNLP_HOST_DEVICE constexpr int b_chunk(int lane) { return (lane >> 3) & 1; }
BIGNLP_HOST_DEVICE constexpr int bt_row(int lane) { return (lane & 7) + (((lane >> 3) & 1) << 3); }
BIGNLP_HOST_DEVICE constexpr int bt_chunk(int lane) { return lane >> 4; }
BIGNLP_HOST_DEVICE constexpr int at_row(int lane) { return (lane & 7) + ((lane >> 4) << 3); }
BIGNLP_HOST_DEVICE constexpr int at_chunk(int lane) { return (lane >> 3) & 1; }

/// Element offset of (row, 16-byte chunk) in a swizzled tile of kRowElems-element rows.
template <int kRowElems>
BIGNLP_HOST_DEVICE constexpr int swizzle(int row, int chunk) {
  return row * kRowElems + ((chunk ^ (row & 7)) << 3);
}
/// Element offset of (row, column) in the same tile.
template <int kRowElems>
BIGNLP_HOST_DEVICE constexpr int swizzle_elem(int row, int col) {
  return swizzle<kRowElems>(row, col >> 3) + (col & 7);
}

BIGNLP_HOST_DEVICE constexpr int acc_row(int lane, int e) { return (lane >> 2) + (e >> 1) * 8; }
BIGNLP_HOST_DEVICE constexpr int acc_col(int lane, int e) { return (lane & 3) * 2 + (e & 1); }

/// Register r of an A fragment built from accumulator tiles: which of the two tiles, and the
/// first of its two elements.
BIGNLP_HOST_DEVICE constexpr int a_from_acc_tile(int r) { return r >> 1; }
BIGNLP_HOST_DEVICE constexpr int a_from_acc_elem(int r) { return (r & 1) * 2; }

/// u[i] for a run-time i without indexing a register array (which would move it to local memory).
BIGNLP_HOST_DEVICE inline float pick4(const Philox4x32& r, std::uint64_t i) {
  const std::uint32_t w = (i & 3) == 0 ? r.v[0] : (i & 3) == 1 ? r.v[1] : (i & 3) == 2 ? r.v[2] : r.v[3];
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);  // philox_uniform4's mapping
}

/// The Philox block holding element `block` * 4.. of stream (seed, offset) (philox_uniform4's counter).
BIGNLP_HOST_DEVICE inline Philox4x32 philox_block(std::uint64_t seed, std::uint64_t offset, std::uint64_t block) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                        static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32)}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

/// Dropout multiplier of element (query i, key j) of head `head` (global head index).
BIGNLP_HOST_DEVICE inline float dropout_factor(const std::uint64_t head, int t_len, int i, int j, float p,
                                                float keep_scale, std::uint64_t seed, std::uint64_t offset) {
  const std::uint64_t idx = (head * static_cast<std::uint64_t>(t_len) + static_cast<std::uint64_t>(i)) *
                                static_cast<std::uint64_t>(t_len) +
                            static_cast<std::uint64_t>(j);
  return pick4(philox_block(seed, offset, idx >> 2), idx) >= p ? keep_scale : 0.0f;
}

/// Dropout multipliers of elements (i, j) and (i, j+1), sharing one Philox block when they can.
BIGNLP_HOST_DEVICE inline void dropout_pair(const std::uint64_t head, int t_len, int i, int j, float p,
                                             float keep_scale, std::uint64_t seed, std::uint64_t offset, float& d0,
                                             float& d1) {
  const std::uint64_t idx = (head * static_cast<std::uint64_t>(t_len) + static_cast<std::uint64_t>(i)) *
                                static_cast<std::uint64_t>(t_len) +
                            static_cast<std::uint64_t>(j);
  Philox4x32 r = philox_block(seed, offset, idx >> 2);
  d0 = pick4(r, idx) >= p ? keep_scale : 0.0f;
  if (((idx + 1) >> 2) != (idx >> 2)) r = philox_block(seed, offset, (idx + 1) >> 2);
  d1 = pick4(r, idx + 1) >= p ? keep_scale : 0.0f;
}

}  // namespace bignlp::kernels::flash
