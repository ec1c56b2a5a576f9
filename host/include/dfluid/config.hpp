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
// Per-cell helpers (stencils, interpolation) must inline into the cell loop: called out of
// line, every sample pays a call and spills its small stencil arrays, several times the
// arithmetic itself on the CPU path. GCC and Clang inline big helpers only when told to.
// Sanitizer builds (DFLUID_NO_FORCE_INLINE) leave the choice to the compiler: instrumented,
// the forced inlining of every sample into every cell loop makes the advection translation
// unit take many minutes to compile, and inlining changes no result (no FMA contraction in
// ISO C++ mode).
#if defined(__GNUC__) && !defined(DFLUID_NO_FORCE_INLINE)
#define DFLUID_FORCEINLINE inline __attribute__((always_inline))
#else
#define DFLUID_FORCEINLINE inline
#endif
#endif

// DFLUID_UNROLL before a loop over a compile-time count (axes of a D-dimensional stencil, its
// 2^D corners): fully unrolled, the small per-sample arrays it indexes (corner offsets,
// weights, coordinates) become registers; left as a loop, a GPU keeps them in local memory
// and a CPU in stack slots, with a store-to-load dependency per step.
#if defined(DFLUID_NO_FORCE_INLINE) && !defined(__CUDACC__)
#define DFLUID_UNROLL  // sanitizer builds: compile time over speed, as for DFLUID_FORCEINLINE
#elif defined(__CUDACC__)
#define DFLUID_UNROLL _Pragma("unroll")
#elif defined(__clang__)
#define DFLUID_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define DFLUID_UNROLL _Pragma("GCC unroll 16")
#else
#define DFLUID_UNROLL
#endif

namespace dfluid {

/// Flat index into a field; 64-bit so that 1024^3 grids cannot overflow.
using Index = std::int64_t;

}  // namespace dfluid
