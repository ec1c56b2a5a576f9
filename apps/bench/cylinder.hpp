// dfluid-bench --cylinder: flow around a cylinder in a channel, the DFG benchmark of Schäfer
// and Turek (1996), case 2D-1 (Re = 20, steady): drag and lift coefficients and the pressure
// difference across the cylinder against the published bounds
// (data/schaefer_turek1996_cylinder.txt), at several resolutions with the observed order.
#pragma once

#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

struct CylinderOptions {
  std::vector<int> sizes{20, 41, 82};  ///< cells across the channel (h = 0.41 / n)
  double courant = 1.0;                ///< dt = courant * h / Um
  double max_time = 30;                ///< stops earlier once steady
  double check = -1;  ///< > 0: exit status 3 when |c_D - 5.58| exceeds it (for tests)
};

/// Runs every size, prints c_D, c_L and dp with their errors against the published
/// intervals and the observed orders, and returns the exit status.
int run_cylinder(const Context& ctx, const CylinderOptions& options);

}  // namespace dfluid::bench
