#include "bignlp/tensor/device.h"

#include <fmt/format.h>

namespace bignlp {

std::string Device::to_string() const { return is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", index); }

}  // namespace bignlp
