// Device: where a tensor's memory lives (the CPU, or one CUDA device by ordinal).
//
// A plain value. Ops dispatch on the device of their tensors: CPU tensors run the reference
// implementation in src/ops/cpu/, CUDA tensors the kernels (builds with BIGNLP_WITH_CUDA).
#pragma once

#include <string>

namespace bignlp {

enum class DeviceType : unsigned char { kCpu, kCuda };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;  ///< CUDA ordinal; 0 on the CPU

  static constexpr Device cpu() { return Device{DeviceType::kCpu, 0}; }
  static constexpr Device cuda(int ordinal = 0) { return Device{DeviceType::kCuda, ordinal}; }
  constexpr bool is_cpu() const { return type == DeviceType::kCpu; }
  constexpr bool is_cuda() const { return type == DeviceType::kCuda; }
  friend constexpr bool operator==(const Device&, const Device&) = default;

  /// "cpu" or "cuda:N".
  std::string to_string() const;
};

}  // namespace bignlp
