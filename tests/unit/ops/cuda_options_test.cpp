// Host-side pieces of the CUDA backend that need no GPU: the environment switch and the device
// count (CUDA builds only; the CPU build has neither).
#include <gtest/gtest.h>

#if defined(BIGNLP_WITH_CUDA)
#include "bignlp/core/error.h"
#include "bignlp/ops/cuda_context.h"

namespace bignlp::ops {
namespace {

TEST(CudaOptionsTest, SyncCheckComesFromTheEnvironmentMap) {
  CudaContextOptions base;
  base.sync_check = false;
  EXPECT_TRUE(cuda_options_from_environment({{"BIGNLP_SYNC_CHECK", "1"}}, base).sync_check);
  EXPECT_TRUE(cuda_options_from_environment({{"BIGNLP_SYNC_CHECK", "on"}}, base).sync_check);
  base.sync_check = true;
  EXPECT_FALSE(cuda_options_from_environment({{"BIGNLP_SYNC_CHECK", "0"}}, base).sync_check);
  EXPECT_TRUE(cuda_options_from_environment({{"OTHER", "0"}}, base).sync_check) << "absent: unchanged";
  EXPECT_THROW(cuda_options_from_environment({{"BIGNLP_SYNC_CHECK", "maybe"}}, base), UsageError);
}

TEST(CudaOptionsTest, DeviceCountNeverThrows) {
  int n = -1;
  EXPECT_NO_THROW(n = cuda_device_count());
  EXPECT_GE(n, 0);
}

TEST(CudaOptionsTest, AContextForAMissingDeviceIsARuntimeError) {
  CudaContextOptions o;
  o.device = cuda_device_count();  // one past the last
  EXPECT_THROW(CudaContext ctx(o), RuntimeError);
}

}  // namespace
}  // namespace bignlp::ops
#endif
