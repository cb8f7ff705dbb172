// Philox4x32-10: the counter-based RNG behind every random decision an op makes (dropout masks).
//
// A random value is a pure function of (seed, offset, element index), so a mask does not depend on
// the thread count, on the order elements are visited, or on the device: CUDA kernels include this
// header and produce the same bits as the CPU reference. Nothing is stored between the forward and
// the backward pass (or an activation-checkpoint recomputation): both regenerate the same mask.
//
// Layout of one draw: key = (lo32(seed), hi32(seed)); counter = (lo32(i/4), hi32(i/4), lo32(offset),
// hi32(offset)); element i takes output word i%4 (four consecutive elements share one Philox block).
// Uniform u = (word >> 8) * 2^-24 in [0, 1); dropout keeps an element iff u >= p.
// Known-answer check (Random123): counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
#pragma once

#include <cmath>
#include <cstdint>

#include "bignlp/core/host_device.h"

namespace bignlp {

struct Philox4x32 {
  std::uint32_t v[4];
};

/// Ten rounds of Philox4x32 over `counter` with `key` (Salmon et al. 2011, Random123 constants).
BIGNLP_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  std::uint32_t* c = counter.v;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kW0;
      key1 += kW1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n0 = hi1 ^ c[1] ^ key0;
    const std::uint32_t n2 = hi0 ^ c[3] ^ key1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }
  return counter;
}

/// The four uniform [0, 1) values of the Philox block holding elements 4*block .. 4*block+3.
BIGNLP_HOST_DEVICE inline void philox_uniform4(std::uint64_t seed, std::uint64_t offset, std::uint64_t block,
                                               float out[4]) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                        static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32)}};
  const Philox4x32 r =
      philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  for (int k = 0; k < 4; ++k) out[k] = static_cast<float>(r.v[k] >> 8) * (1.0f / 16777216.0f);
}

/// Uniform [0, 1) value of element `index` in stream (seed, offset).
BIGNLP_HOST_DEVICE inline float philox_uniform(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
  float u[4];
  philox_uniform4(seed, offset, index >> 2, u);
  return u[index & 3];
}

/// True when dropout with probability `p` keeps element `index` of stream (seed, offset).
BIGNLP_HOST_DEVICE inline bool dropout_keep(std::uint64_t seed, std::uint64_t offset, std::uint64_t index, float p) {
  return philox_uniform(seed, offset, index) >= p;
}

}  // namespace bignlp

namespace bignlp {

/// Standard normal value of element `index` in stream (seed, offset), by Box-Muller over one
/// Philox block: elements 2k and 2k+1 share block k (cos and sin branches). Used for weight init,
/// so a tensor-parallel shard can draw exactly its part of the full tensor (global indices).
BIGNLP_HOST_DEVICE inline float philox_normal(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
  float u[4];
  philox_uniform4(seed, offset, index >> 1, u);
  const float radius = sqrtf(-2.0f * logf(1.0f - u[0]));  // 1 - u in (0, 1]: log is finite
  const float angle = 6.283185307179586f * u[1];
  return radius * ((index & 1) ? sinf(angle) : cosf(angle));
}

}  // namespace bignlp
