// Pictures of the control run: the smoke next to the target. 2D fields are drawn as they
// are; 3D fields as the slice through the middle of the z axis and the maximum-intensity
// projection along z.
#pragma once

#include <string>
#include <vector>

#include "common/image.hpp"
#include "dfluid/grid.hpp"

namespace dfluid::control {

/// Panels (with captions) for `smoke` next to `target`, both cell fields on g.
app::Image smoke_and_target(const Grid& g, const std::vector<double>& smoke,
                            const std::vector<double>& target, const std::string& smoke_caption,
                            double vmax);

}  // namespace dfluid::control
