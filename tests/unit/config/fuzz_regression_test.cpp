// Replays the fuzz corpus and every crash input found by the libFuzzer targets
// (tests/data/fuzz/<target>/*) through the same code the targets run: nothing may crash or throw
// anything but bignlp::Error (which the bodies absorb).
#include <gtest/gtest.h>

#include <filesystem>

#include "../../../tools/fuzz/config_fuzz_bodies.h"
#include "bignlp/core/file_io.h"

namespace fs = std::filesystem;

namespace bignlp::config {
namespace {

template <class Body>
std::size_t replay(const std::string& target, Body body) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path("tests/data/fuzz") / target, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string data = read_file(e.path());
    EXPECT_NO_THROW(body(data)) << e.path().string();
    ++n;
  }
  return n;
}

TEST(FuzzRegressionTest, OverrideParserInputs) { EXPECT_GT(replay("fuzz_override_parser", fuzz::override_parser), 10u); }
TEST(FuzzRegressionTest, InterpolationInputs) { EXPECT_GT(replay("fuzz_interpolation", fuzz::interpolation), 10u); }
TEST(FuzzRegressionTest, YamlRoundTripInputs) { EXPECT_GE(replay("fuzz_yaml_roundtrip", fuzz::yaml_roundtrip), 3u); }

TEST(FuzzRegressionTest, DeepNestingIsAnErrorNotACrash) {
  EXPECT_THROW(validate_interpolation(std::string(5000, '$') + std::string(5000, '{')), Error);
  std::string deep;
  for (int i = 0; i < 3000; ++i) deep += "${a.";
  EXPECT_THROW(validate_interpolation(deep), Error);
  EXPECT_THROW(parse_override("k=" + std::string(5000, '[')), Error);
  EXPECT_THROW(load_yaml_string(std::string(3000, '[') + std::string(3000, ']')), Error);
  // k0 -> k1 -> ... -> k1999: resolving k0 first needs the whole chain at once.
  std::string chain;
  for (int i = 0; i < 1999; ++i) chain += "k" + std::to_string(i) + ": ${k" + std::to_string(i + 1) + "}\n";
  chain += "k1999: 1\n";
  ConfigNode root = load_yaml_string(chain);
  EXPECT_THROW(resolve_in_place(root, ResolverRegistry::with_builtins()), Error);
}

}  // namespace
}  // namespace bignlp::config
