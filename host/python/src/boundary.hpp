// Box-side velocity boundaries and obstacle walls across the binding: the side names Python
// uses ("x-low", (0, 0)), inflow profiles and wall velocities in and their gradients out
// (boundary.cpp). simulation.cpp binds the Simulation and Rollout methods that take them.
#pragma once

#include <nanobind/nanobind.h>

#include <array>
#include <string>
#include <utility>

#include "arrays.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/obstacle.hpp"

namespace dfluid::py {

/// A side of g as (axis, side): "x-low", "y-high", ... or a tuple (axis, 0 = low / 1 = high).
/// InvalidArgument naming `name` for anything else or an axis the grid does not have.
std::pair<int, int> parse_side(nb::handle key, const Grid& g, const std::string& name);

/// The array shape (C order) of the faces of side (axis, *) with the normal axis dropped: the
/// layout of an inflow profile, e.g. (ny,) for an x side of a 2D grid, (nz, ny) in 3D.
std::vector<size_t> side_shape(const Grid& g, int axis);

/// VelocityBoundary from Python: `inflow` a dict side -> profile array (float32/float64, the
/// side_shape, copied: the library keeps host values), `wall` a dict side -> velocity
/// (dim numbers). None: empty. Validated by the Simulation.
VelocityBoundary velocity_boundary_from(nb::handle inflow, nb::handle wall, const Grid& g,
                                        nb::handle outflow_speed = nb::handle());

/// The Python object of a VelocityBoundaryGradient on g (class BoundaryGradient).
struct PyBoundaryGradient {
  Grid grid;
  VelocityBoundaryGradient g;
};

/// The direction of an obstacle force from Python: dim (or 3) numbers; unused components 0.
std::array<double, 3> force_direction(nb::handle dir, const Grid& g, const std::string& name);

/// BoundaryGradient, ObstacleWallKind and the module functions of this file.
void bind_boundary(nb::module_& m);

}  // namespace dfluid::py
