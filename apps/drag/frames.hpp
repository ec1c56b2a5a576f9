// Pictures of dfluid-drag: the vorticity of the flow in the channel (blue: clockwise, red:
// counter-clockwise, the body grey), and the inflow profiles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::drag {

/// Vorticity ω = ∂v/∂x − ∂u/∂y at the cell centres of a 2D MAC velocity (host values of its
/// components, x fastest): central differences of the cell-centred velocity, one-sided at the
/// box sides; 0 in solid cells.
std::vector<double> vorticity(const Grid& g, const std::vector<double>& u,
                              const std::vector<double>& v, const std::vector<std::uint8_t>& solid);

/// The vorticity as a picture, values in [-limit, limit] on a blue-white-red map, solid cells
/// grey, `scale` pixels per cell.
app::Image render_vorticity(const Grid& g, const std::vector<double>& w,
                            const std::vector<std::uint8_t>& solid, double limit, int scale);

/// Pictures stacked top to bottom, each under its caption line.
app::Image stack_vertically(const std::vector<app::Image>& panels,
                            const std::vector<std::string>& captions, int gap = 6);

}  // namespace dfluid::drag
