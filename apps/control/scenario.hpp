// Scenarios of dfluid-control: the grid, the initial smoke and the target densities.
//
// Embedded defaults need no input files:
//   2D: a round blob of smoke at the centre of a 128² closed box that is to form a shape drawn
//       in code — a ring with a gap ("ring", the default) or a letter ("letter": an S).
//   3D: a ball of smoke at the centre of a 64³ box (128³ on a GPU) that is to form a torus.
// Targets can also come from a picture (2D: "make the smoke form this picture") or from a
// dfluid HDF5 snapshot file (any dimension). Every target is rescaled to the initial smoke's
// total mass: incompressible flow moves smoke but does not create it, so a target with another
// mass could never be matched.
//
// Shapes are drawn with soft edges (a tanh profile two cells wide) so that the target is a
// smooth field the advection can reproduce.
#pragma once

#include <string>
#include <vector>

#include "dfluid/grid.hpp"

namespace dfluid::control {

struct ScenarioOptions {
  int dim = 2;
  int size = 0;            ///< cells per axis (0: 128 in 2D, 64 in 3D or 128 on a GPU)
  std::string shape;       ///< 2D: ring|letter; 3D: torus ("" : ring / torus)
  std::string target_png;  ///< 2D picture file (overrides shape)
  bool png_invert = true;  ///< dark pixels = smoke (a drawing on white paper)
  std::string target_h5;   ///< dfluid snapshot file (overrides shape)
  std::string target_dataset = "density";
  long long target_step = -1;  ///< snapshot step in target_h5 (-1: the last)
  double blob_radius = 0;      ///< initial blob radius in cells (0: size/6)
};

struct Scenario {
  Grid grid;
  std::string description;      ///< one line for the report
  std::vector<double> initial;  ///< initial smoke, cell order (x fastest, y up)
  std::vector<double> target;   ///< target smoke at the keyframes, same order
};

/// The scenario's grid (nothing else is built, so memory can be checked first); throws
/// InvalidArgument for a bad --dim or --size.
Grid scenario_grid(const ScenarioOptions& o, bool on_gpu);

/// Builds the scenario; throws InvalidArgument naming the option for a bad shape, an
/// unreadable picture or snapshot, or a target with no smoke.
Scenario make_scenario(const ScenarioOptions& o, bool on_gpu);

/// Scales `v` so that its sum equals `mass` (throws InvalidArgument when v sums to ≤ 0).
void match_mass(std::vector<double>& v, double mass, const std::string& what);

}  // namespace dfluid::control
