#include "bignlp/data/npy.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

TEST(Npy, PreambleMatchesNumpy124) {
  // Bytes numpy 1.24 writes for np.save(np.arange(7, dtype=np.int32)): 128-byte preamble.
  const std::string p = npy_preamble("<i4", {7});
  ASSERT_EQ(p.size(), 128u);
  EXPECT_EQ(p.substr(0, 10), std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }";
  EXPECT_EQ(p.substr(10), dict + std::string(117 - dict.size(), ' ') + "\n");
  const std::string dict2 = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }";
  EXPECT_EQ(npy_preamble("<i4", {3, 2}).substr(10), dict2 + std::string(117 - dict2.size(), ' ') + "\n");
}

TEST(Npy, RoundTrip) {
  TempDir dir;
  const std::vector<std::int32_t> v{5, -1, 7, 9, 0, 3};
  write_npy<std::int32_t>(dir.path() / "a.npy", v, {3, 2});
  NpyArray a(dir.path() / "a.npy");
  EXPECT_EQ(a.descr(), "<i4");
  EXPECT_EQ(a.shape(), (std::vector<std::int64_t>{3, 2}));
  const auto vals = a.values<std::int32_t>();
  EXPECT_EQ(std::vector<std::int32_t>(vals.begin(), vals.end()), v);
  EXPECT_THROW(a.values<std::uint32_t>(), DataError);
  fs::resize_file(dir.path() / "a.npy", 130);
  EXPECT_THROW(NpyArray(dir.path() / "a.npy"), DataError);
}

TEST(Npy, ByteIdenticalToNumpySaveAndReadable) {
  BIGNLP_REQUIRE_NUMPY();
  TempDir dir;
  const std::vector<std::uint32_t> v{4, 0, 3, 1, 2};
  write_npy<std::uint32_t>(dir.path() / "ours.npy", v);
  testing::numpy_peer("save-npy " + (dir.path() / "theirs.npy").string() + " uint32 5 0 '[4,0,3,1,2]'");
  EXPECT_EQ(read_file(dir.path() / "ours.npy"), read_file(dir.path() / "theirs.npy"));

  const std::vector<std::int32_t> m{0, 0, 1, 4, 2, 0};
  write_npy<std::int32_t>(dir.path() / "m.npy", m, {3, 2});
  testing::numpy_peer("save-npy " + (dir.path() / "m2.npy").string() + " int32 3 2 '[0,0,1,4,2,0]'");
  EXPECT_EQ(read_file(dir.path() / "m.npy"), read_file(dir.path() / "m2.npy"));
  const auto peer = nlohmann::json::parse(testing::numpy_peer("load-npy " + (dir.path() / "m.npy").string()));
  EXPECT_EQ(peer["shape"], nlohmann::json({3, 2}));
  EXPECT_EQ(peer["values"], nlohmann::json(m));
}

}  // namespace
}  // namespace bignlp::data
