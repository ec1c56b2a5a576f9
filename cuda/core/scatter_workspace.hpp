// The pool memory one deterministic scatter (scatter.hpp, scatter_cells) takes, as one
// function of its targets: Simulation::estimate_memory() and Simulation::reserve_adjoint()
// size the context's pool with it, so a change of the scatter's workspace is made here once
// and the memory estimate follows. Plain C++ (host/src includes it too).
#pragma once

#include <cstddef>
#include <vector>

namespace dfluid::detail {

/// Fixed-point workspace per target element (scatter.hpp): the 64-bit sum, then the sizing
/// words (largest exponent, number of contributions; 32 bits each), in one pool block.
constexpr std::size_t kFixedBytesPerElement = 16;

/// The pool blocks one scatter_cells() call with Accumulation::Deterministic takes on the GPU
/// path (and with Accumulation::FixedPoint on either path), all held together while it runs,
/// in the order it takes them: one block per target that is set, `target_elements[t]` being
/// the span of target t's view in elements (View::offset of its last element + 1), of
/// kFixedBytesPerElement per element (dfluid::scatter_workspace_bytes gives the same per
/// target for a context). Accumulation::Atomic takes none. The CPU path's coloured slabs take
/// none either, but the simulation reserves them there too, so that its counters hold what
/// the GPU holds.
inline std::vector<std::size_t> scatter_workspace_bytes(
    const std::vector<std::size_t>& target_elements) {
  std::vector<std::size_t> blocks;
  for (std::size_t n : target_elements)
    if (n > 0) blocks.push_back(kFixedBytesPerElement * n);
  return blocks;
}

}  // namespace dfluid::detail
