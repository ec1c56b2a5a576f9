// The pool block of one implicit diffusion solve (diffusion.cpp): its size as one function,
// shared with Simulation::estimate_memory() and Simulation::reserve_adjoint(). Plain C++.
#pragma once

#include <cstddef>

namespace dfluid::detail {

/// Arrays of an implicit solve start on this boundary inside its pool block (the alignment
/// cudaMalloc gives a separate allocation, so kernels see the same alignment as before).
constexpr std::size_t kImplicitAlignment = 256;
/// Bytes reserved for the CG scalars (KrylovWorkspace::scalars) at the end of the block.
constexpr std::size_t kImplicitScalarBytes = 14 * sizeof(double);
/// Arrays of a forward solve (right-hand side + r, z, p, q) and of an adjoint solve (its
/// right-hand side, the solution w, r, z, p, q).
constexpr int kImplicitForwardArrays = 5;
constexpr int kImplicitAdjointArrays = 6;

/// Bytes of one array of `array_bytes` rounded up to kImplicitAlignment.
constexpr std::size_t implicit_array_stride(std::size_t array_bytes) {
  return (array_bytes + kImplicitAlignment - 1) / kImplicitAlignment * kImplicitAlignment;
}

/// The one pool block an implicit solve on an array of `array_bytes` takes: `arrays` arrays
/// and the CG scalars.
constexpr std::size_t implicit_workspace_bytes(std::size_t array_bytes, int arrays) {
  return std::size_t(arrays) * implicit_array_stride(array_bytes) + kImplicitScalarBytes;
}

}  // namespace dfluid::detail
