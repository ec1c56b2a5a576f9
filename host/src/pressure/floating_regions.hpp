// Floating fluid regions: the null space of the pressure Poisson operator.
//
// A fluid region that touches no Open face (a closed box, a pocket sealed by
// obstacles) determines its pressure only up to a constant. The multigrid
// hierarchy labels these regions once, on the host, when it is built, and then
// removes the per-region mean from every iterate on the device.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "dfluid/grid.hpp"

namespace dfluid::detail {

/// Labels connected fluid regions (through faces with a non-zero weight in w) on
/// the host; returns per-cell labels of floating regions (touching no Open
/// face), -1 elsewhere, and the cell count of each floating region in counts.
std::vector<std::int32_t> label_floating_regions(const Grid& g,
                                                 const std::array<std::vector<double>, 3>& w,
                                                 std::vector<double>& counts);

}  // namespace dfluid::detail
