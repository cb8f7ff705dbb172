// BIGNLP_HOST_DEVICE: marks small inline functions that both host code and CUDA kernels call
// (dtype conversions, the counter-based RNG), so the CPU reference and a kernel share one
// definition and agree bit for bit. Expands to nothing outside nvcc.
#pragma once

#if defined(__CUDACC__)
#define BIGNLP_HOST_DEVICE __host__ __device__
#else
#define BIGNLP_HOST_DEVICE
#endif
