#include "bignlp/data/numpy_random.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <numeric>

#include "test_support.h"

namespace bignlp::data {
namespace {

TEST(NumpyRandomState, MatchesStdMt19937Stream) {
  NumpyRandomState rng(1234);
  std::mt19937 ref(1234);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(rng.next_uint32(), ref());
}

TEST(NumpyRandomState, IntervalStaysInRange) {
  NumpyRandomState rng(7);
  for (std::uint64_t max : {1ull, 2ull, 5ull, 1000ull, (1ull << 40) + 3}) {
    for (int i = 0; i < 200; ++i) ASSERT_LE(rng.random_interval(max), max);
  }
  EXPECT_EQ(rng.random_interval(0), 0u);
}

// Bit-exact against numpy.random.RandomState for every routine Megatron's pipeline uses.
TEST(NumpyRandomState, MatchesNumpy) {
  BIGNLP_REQUIRE_NUMPY();
  for (std::uint32_t seed : {0u, 1u, 1234u, 4294967295u}) {
    const auto ref = nlohmann::json::parse(testing::numpy_peer("random " + std::to_string(seed)));
    {
      NumpyRandomState rng(seed);
      for (int i = 0; i < 5; ++i) EXPECT_EQ(rng.next_uint32(), ref["uint32"][i].get<std::uint64_t>());
    }
    for (int n : {1, 2, 3, 10, 100, 1000, 65537}) {
      NumpyRandomState rng(seed);
      std::vector<std::int64_t> a(static_cast<std::size_t>(n));
      std::iota(a.begin(), a.end(), 0);
      rng.shuffle(std::span<std::int64_t>(a));
      EXPECT_EQ(nlohmann::json(a), ref["shuffle_" + std::to_string(n)]) << "seed " << seed << " n " << n;
    }
    {
      NumpyRandomState rng(seed);
      std::vector<int> a(20);
      std::iota(a.begin(), a.end(), 0);
      rng.shuffle(std::span<int>(a));
      EXPECT_EQ(nlohmann::json(a), ref["shuffle_list"]);
    }
    {
      NumpyRandomState rng(seed);
      for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(rng.random_sample(), std::stod(ref["random_sample"][i].get<std::string>())) << i;
      }
    }
    for (const char* p : {"0.2", "0.5"}) {
      NumpyRandomState rng(seed);
      std::vector<std::int64_t> g;
      for (int i = 0; i < 50; ++i) g.push_back(rng.geometric(std::stod(p)));
      EXPECT_EQ(nlohmann::json(g), ref[std::string("geometric_") + p]) << "p=" << p;
    }
    {
      NumpyRandomState rng(seed);
      for (int i = 0; i < 5; ++i) EXPECT_EQ(rng.random_interval(1ull << 40), ref["interval_big"][i].get<std::uint64_t>());
    }
  }
}

}  // namespace
}  // namespace bignlp::data
