// The flash-attention kernels' fragment arithmetic (kernels/flash_layout.h) against a CPU model of
// the PTX instructions they use, so the index math is checked without a GPU:
//   ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8i..8i+7 give the row addresses of
//     matrix i; lane l receives elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of each matrix
//     (transposed: (2(l%4), l/4) and (2(l%4)+1, l/4));
//   mma.sync.aligned.m16n8k16.row.col: with g = l/4, t = l%4, A registers hold (g, 2t..2t+1),
//     (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..); B registers (k = 2t..2t+1, n = g), (k = 2t+8.., n = g);
//     C/D (g, 2t..2t+1), (g+8, 2t..2t+1).
// Each test runs one of the kernels' three operand patterns on random tiles and compares with a
// plain matrix product. Values are floats (the 16-bit rounding is not what is tested here).
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <set>
#include <vector>

#include "kernels/flash_layout.h"

namespace bignlp::kernels::flash {
namespace {

using Pair2 = std::array<float, 2>;
using Frag4 = std::array<std::array<Pair2, 4>, 32>;  // [lane][register]

/// ldmatrix.x4: addr[lane] is the element offset of the row lane supplies.
Frag4 ldmatrix_x4(const std::vector<float>& smem, const std::array<int, 32>& addr, bool trans) {
  Frag4 out{};
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      auto m = [&](int r, int c) { return smem.at(static_cast<std::size_t>(addr[8 * i + r] + c)); };
      const int g = lane / 4, t = lane % 4;
      out[lane][i] = trans ? Pair2{m(2 * t, g), m(2 * t + 1, g)} : Pair2{m(g, 2 * t), m(g, 2 * t + 1)};
    }
  return out;
}

using Acc = std::array<std::array<float, 4>, 32>;  // one 16x8 accumulator tile: [lane][element]

/// d += a (16x16, registers [lane][0..3]) * b (16x8, registers [lane][0..1]).
void mma(Acc& d, const std::array<std::array<Pair2, 4>, 32>& a, const std::array<std::array<Pair2, 2>, 32>& b) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < 2; ++j) {
      A[g][2 * t + j] = a[lane][0][j];
      A[g + 8][2 * t + j] = a[lane][1][j];
      A[g][2 * t + 8 + j] = a[lane][2][j];
      A[g + 8][2 * t + 8 + j] = a[lane][3][j];
      B[2 * t + j][g] = b[lane][0][j];
      B[2 * t + 8 + j][g] = b[lane][1][j];
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; ++e) {
      const int r = g + (e >> 1) * 8, c = 2 * t + (e & 1);
      float s = 0.0f;
      for (int k = 0; k < 16; ++k) s += A[r][k] * B[k][c];
      d[lane][e] += s;
    }
  }
}

/// The two B fragments (n tiles) of an x4 load: registers {0,1} and {2,3}.
std::array<std::array<std::array<Pair2, 2>, 32>, 2> split_b(const Frag4& f) {
  std::array<std::array<std::array<Pair2, 2>, 32>, 2> out{};
  for (int lane = 0; lane < 32; ++lane) {
    out[0][lane] = {f[lane][0], f[lane][1]};
    out[1][lane] = {f[lane][2], f[lane][3]};
  }
  return out;
}

std::vector<float> random_matrix(int rows, int cols, std::mt19937& rng) {
  std::vector<float> m(static_cast<std::size_t>(rows * cols));
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& x : m) x = d(rng);
  return m;
}

/// A row-major matrix written into a swizzled tile of kRowElems-element rows.
template <int kRowElems>
std::vector<float> to_tile(const std::vector<float>& m, int rows) {
  std::vector<float> tile(static_cast<std::size_t>(rows * kRowElems), 0.0f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < kRowElems; ++c) tile[swizzle_elem<kRowElems>(r, c)] = m[static_cast<std::size_t>(r * kRowElems + c)];
  return tile;
}

template <int HS>
void check_scores() {
  // S (16 x 64) = Q (16 x HS) K^T, K (64 x HS): the forward's Q K^T (and the backward's K Q^T, V dO^T).
  std::mt19937 rng(HS);
  constexpr int kKeys = 64;
  const auto q = random_matrix(16, HS, rng), k = random_matrix(kKeys, HS, rng);
  const auto sq = to_tile<HS>(q, 16), sk = to_tile<HS>(k, kKeys);
  std::array<Acc, kKeys / 8> s{};
  for (int ks = 0; ks < HS / 16; ++ks) {
    std::array<int, 32> aa{};
    for (int l = 0; l < 32; ++l) aa[l] = swizzle<HS>(a_row(l), ks * 2 + a_chunk(l));
    const Frag4 a = ldmatrix_x4(sq, aa, false);
    for (int nt = 0; nt < kKeys / 8; nt += 2) {
      std::array<int, 32> ba{};
      for (int l = 0; l < 32; ++l) ba[l] = swizzle<HS>(nt * 8 + b_row(l), ks * 2 + b_chunk(l));
      const auto b = split_b(ldmatrix_x4(sk, ba, false));
      mma(s[nt], a, b[0]);
      mma(s[nt + 1], a, b[1]);
    }
  }
  for (int nt = 0; nt < kKeys / 8; ++nt)
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < 4; ++e) {
        const int r = acc_row(l, e), c = nt * 8 + acc_col(l, e);
        double ref = 0.0;
        for (int d = 0; d < HS; ++d) ref += static_cast<double>(q[r * HS + d]) * k[c * HS + d];
        ASSERT_NEAR(s[nt][l][e], ref, 1e-4) << "HS " << HS << " tile " << nt << " lane " << l << " e " << e;
      }
}

TEST(FlashLayoutTest, ScoresFromPlainLoads) {
  check_scores<64>();
  check_scores<128>();
}

template <int HS>
void check_pv() {
  // O (16 x HS) = P (16 x 64, held as score accumulators) V (64 x HS): the forward's P V (and the
  // backward's P^T dO, dS^T Q).
  std::mt19937 rng(HS + 1);
  constexpr int kKeys = 64;
  const auto p = random_matrix(16, kKeys, rng), v = random_matrix(kKeys, HS, rng);
  const auto sv = to_tile<HS>(v, kKeys);
  std::array<Acc, kKeys / 8> pacc{};
  for (int nt = 0; nt < kKeys / 8; ++nt)
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < 4; ++e) pacc[nt][l][e] = p[acc_row(l, e) * kKeys + nt * 8 + acc_col(l, e)];
  std::array<Acc, HS / 8> o{};
  for (int kk = 0; kk < kKeys / 16; ++kk) {
    std::array<std::array<Pair2, 4>, 32> a{};
    for (int l = 0; l < 32; ++l)
      for (int r = 0; r < 4; ++r) {
        const auto& acc = pacc[2 * kk + a_from_acc_tile(r)][l];
        a[l][r] = {acc[a_from_acc_elem(r)], acc[a_from_acc_elem(r) + 1]};
      }
    for (int dt = 0; dt < HS / 8; dt += 2) {
      std::array<int, 32> ba{};
      for (int l = 0; l < 32; ++l) ba[l] = swizzle<HS>(kk * 16 + bt_row(l), dt + bt_chunk(l));
      const auto b = split_b(ldmatrix_x4(sv, ba, true));
      mma(o[dt], a, b[0]);
      mma(o[dt + 1], a, b[1]);
    }
  }
  for (int dt = 0; dt < HS / 8; ++dt)
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < 4; ++e) {
        const int r = acc_row(l, e), c = dt * 8 + acc_col(l, e);
        double ref = 0.0;
        for (int j = 0; j < kKeys; ++j) ref += static_cast<double>(p[r * kKeys + j]) * v[j * HS + c];
        ASSERT_NEAR(o[dt][l][e], ref, 1e-4) << "HS " << HS << " tile " << dt << " lane " << l << " e " << e;
      }
}

TEST(FlashLayoutTest, AccumulatorsAsAOperandTimesTransposedLoads) {
  check_pv<64>();
  check_pv<128>();
}

template <int HS>
void check_dq() {
  // The backward's dQ = dS K: four warps store their dS^T rows (16 keys x 64 queries each, from
  // accumulators) key-major into a swizzled tile; warp w then multiplies query rows 16w.. of dS,
  // loaded transposed, by K (64 keys x HS).
  std::mt19937 rng(HS + 2);
  constexpr int kKeys = 64, kQueries = 64;
  const auto ds = random_matrix(kQueries, kKeys, rng), k = random_matrix(kKeys, HS, rng);  // ds[q][key]
  const auto sk = to_tile<HS>(k, kKeys);
  std::vector<float> sds(static_cast<std::size_t>(kKeys * kQueries), -99.0f);
  for (int w = 0; w < 4; ++w)
    for (int nt = 0; nt < kQueries / 8; ++nt)
      for (int l = 0; l < 32; ++l)
        for (int half = 0; half < 2; ++half) {
          // The kernel packs elements (half*2, half*2+1) of the accumulator into one 32-bit store.
          const int key = 16 * w + acc_row(l, half * 2);
          const int dst = swizzle_elem<kQueries>(key, nt * 8 + acc_col(l, 0));
          ASSERT_EQ(acc_col(l, 1), acc_col(l, 0) + 1);
          ASSERT_EQ(acc_col(l, 0) % 2, 0) << "32-bit stores stay aligned and inside one chunk";
          sds[dst] = ds[(nt * 8 + acc_col(l, 0)) * kKeys + key];
          sds[dst + 1] = ds[(nt * 8 + acc_col(l, 1)) * kKeys + key];
        }
  for (float x : sds) ASSERT_NE(x, -99.0f) << "every dS^T element stored";
  for (int w = 0; w < 4; ++w) {
    const int m0 = 16 * w;
    for (int d0 = 0; d0 < HS; d0 += 64) {
      std::array<Acc, 8> dq{};
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        std::array<int, 32> aa{};
        for (int l = 0; l < 32; ++l) aa[l] = swizzle<kQueries>(kk * 16 + at_row(l), (m0 >> 3) + at_chunk(l));
        const Frag4 a = ldmatrix_x4(sds, aa, true);
        for (int dt = 0; dt < 8; dt += 2) {
          std::array<int, 32> ba{};
          for (int l = 0; l < 32; ++l) ba[l] = swizzle<HS>(kk * 16 + bt_row(l), (d0 >> 3) + dt + bt_chunk(l));
          const auto b = split_b(ldmatrix_x4(sk, ba, true));
          mma(dq[dt], a, b[0]);
          mma(dq[dt + 1], a, b[1]);
        }
      }
      for (int dt = 0; dt < 8; ++dt)
        for (int l = 0; l < 32; ++l)
          for (int e = 0; e < 4; ++e) {
            const int qr = m0 + acc_row(l, e), c = d0 + dt * 8 + acc_col(l, e);
            double ref = 0.0;
            for (int j = 0; j < kKeys; ++j) ref += static_cast<double>(ds[qr * kKeys + j]) * k[j * HS + c];
            ASSERT_NEAR(dq[dt][l][e], ref, 1e-4) << "HS " << HS << " warp " << w << " lane " << l;
          }
    }
  }
}

TEST(FlashLayoutTest, TransposedAOperandFromKeyMajorScores) {
  check_dq<64>();
  check_dq<128>();
}

template <int kRowElems>
void check_swizzle(int rows) {
  // A permutation of each row's chunks, and every ldmatrix phase (8 rows, one logical chunk each)
  // touches 8 distinct 16-byte bank groups: no shared-memory bank conflicts.
  std::set<int> seen;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < kRowElems / 8; ++c) {
      const int off = swizzle<kRowElems>(r, c);
      ASSERT_GE(off, r * kRowElems);
      ASSERT_LT(off, (r + 1) * kRowElems);
      ASSERT_TRUE(seen.insert(off).second);
    }
  for (int r0 = 0; r0 + 8 <= rows; r0 += 8)
    for (int c = 0; c < kRowElems / 8; ++c) {
      std::set<int> groups;
      for (int r = r0; r < r0 + 8; ++r) groups.insert((swizzle<kRowElems>(r, c) * 2 / 16) % 8);
      EXPECT_EQ(groups.size(), 8u) << "rows " << r0 << ".. chunk " << c;
    }
}

TEST(FlashLayoutTest, SwizzleIsAConflictFreePermutation) {
  check_swizzle<64>(128);
  check_swizzle<128>(128);
}

TEST(FlashLayoutTest, EveryLaneRoleCoversEachMatrixRowOnce) {
  // For each role, lanes 8i..8i+7 address the 8 rows of one 8x8 matrix.
  for (auto role : {0, 1, 2, 3}) {
    std::set<std::pair<int, int>> cells;
    for (int l = 0; l < 32; ++l) {
      int r = 0, c = 0;
      switch (role) {
        case 0: r = a_row(l), c = a_chunk(l); break;
        case 1: r = b_row(l), c = b_chunk(l); break;
        case 2: r = bt_row(l), c = bt_chunk(l); break;
        default: r = at_row(l), c = at_chunk(l); break;
      }
      ASSERT_GE(r, 0);
      ASSERT_LT(r, 16);
      ASSERT_GE(c, 0);
      ASSERT_LT(c, 2);
      EXPECT_TRUE(cells.insert({r, c}).second) << "role " << role << " lane " << l;
    }
    EXPECT_EQ(cells.size(), 32u);
  }
}

TEST(FlashLayoutTest, DropoutDecisionsEqualThePhiloxReference) {
  // The kernels' dropout (Philox blocks picked without array indexing, pairs sharing a block) must
  // decide every score element exactly as ops/philox.h's dropout_keep at the op's index
  // ((head * T + i) * T + j), including pairs that straddle two Philox blocks (odd T).
  const float p = 0.3f, keep = 1.0f / (1.0f - p);
  for (int t_len : {7, 64, 200, 2049}) {
    for (std::uint64_t head : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{1} << 20}) {
      for (int i = 0; i < t_len; i += 3) {
        for (int j = 0; j + 1 < t_len; j += 2) {
          const std::uint64_t idx = (head * t_len + i) * t_len + j;
          const float want0 = dropout_keep(11, 22, idx, p) ? keep : 0.0f;
          const float want1 = dropout_keep(11, 22, idx + 1, p) ? keep : 0.0f;
          float d0 = -1.0f, d1 = -1.0f;
          dropout_pair(head, t_len, i, j, p, keep, 11, 22, d0, d1);
          ASSERT_EQ(d0, want0) << "T " << t_len << " i " << i << " j " << j;
          ASSERT_EQ(d1, want1) << "T " << t_len << " i " << i << " j " << j + 1;
          ASSERT_EQ(dropout_factor(head, t_len, i, j, p, keep, 11, 22), want0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace bignlp::kernels::flash
