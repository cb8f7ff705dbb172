// libFuzzer target: config override parser (see config_fuzz_bodies.h). Run with scripts/fuzz.sh fuzz_override_parser <seconds>.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config_fuzz_bodies.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bignlp::config::fuzz::override_parser(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
