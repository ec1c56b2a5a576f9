// Compiler portability for code shared by the CUDA and the CPU path.
//
// Per-cell arithmetic is written once as DFLUID_HD functions. Under nvcc they
// compile for host and device; under a plain C++ compiler the qualifiers
// expand to nothing, so the CPU path builds without the CUDA toolkit.
#pragma once

#include <cstdint>

#include "dfluid/build_config.hpp"

#if defined(__CUDACC__)
#define DFLUID_HD __host__ __device__
#define DFLUID_FORCEINLINE __forceinline__
#else
#define DFLUID_HD
#define DFLUID_FORCEINLINE inline
#endif

namespace dfluid {

/// Flat index into a field; 64-bit so that 1024^3 grids cannot overflow.
using Index = std::int64_t;

}  // namespace dfluid
