// The pool memory one deterministic scatter (scatter.hpp, scatter_cells) takes, as one
// function of its targets: Simulation::estimate_memory() and Simulation::reserve_adjoint()
// size the context's pool with it, so a change of the scatter's workspace is made here once
// and the memory estimate follows. Plain C++ (host/src includes it too).
#pragma once

#include <cstddef>
#include <vector>

namespace dfluid::detail {

/// The pool blocks one scatter_cells() call with Accumulation::Deterministic takes on the GPU
/// path, all held together while it runs, in the order it takes them: one block per target
/// that is set, `target_elements[t]` being the span of target t's view in elements
/// (View::offset of its last element + 1). Today: a 64-bit fixed-point accumulator per
/// element. Accumulation::Atomic takes none. The CPU path takes none either, but the
/// simulation reserves them there too, so that its counters hold what the GPU holds.
inline std::vector<std::size_t> scatter_workspace_bytes(
    const std::vector<std::size_t>& target_elements) {
  std::vector<std::size_t> blocks;
  for (std::size_t n : target_elements)
    if (n > 0) blocks.push_back(sizeof(unsigned long long) * n);
  return blocks;
}

}  // namespace dfluid::detail
