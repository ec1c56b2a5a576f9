// dfluid-bench --cylinder: flow around a cylinder in a channel, the DFG benchmark of Schäfer
// and Turek (1996), case 2D-1 (Re = 20, steady): drag and lift coefficients and the pressure
// difference across the cylinder, or case 2D-2 (Re = 100, periodic vortex shedding): the
// maximum drag and lift coefficients over a period, the Strouhal number and the pressure
// difference, against the published bounds (data/schaefer_turek1996_cylinder.txt), at
// several resolutions with the observed order.
#pragma once

#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

struct CylinderOptions {
  std::string case_name = "2D-1";      ///< "2D-1" (Re = 20) or "2D-2" (Re = 100)
  std::vector<int> sizes{20, 41, 82};  ///< cells across the channel (h = 0.41 / n)
  double courant = 1.0;                ///< dt = courant * h / Um
  bool convective_outflow = false;     ///< the x = 2.2 side ConvectiveOutflow (U_c = Ubar)
  bool incremental_pressure = false;   ///< StepConfig::pressure_correction = Incremental
  /// The cylinder as face fractions with its no-slip wall at its true distance (ghost fluid,
  /// Simulation::set_obstacle_fractions with the face distance) instead of the staircase.
  bool face_fractions = false;
  double max_time = 0;  ///< the time cap (0: 30); stops earlier once steady / periodic
  /// > 0: exit status 3 (for tests) when, in 2D-1, |c_D - 5.58| exceeds it; in 2D-2, when
  /// the shedding is not periodic by the time cap or St lies further than it from its bounds.
  double check = -1;
};

/// Runs every size of the case, prints its quantities with their errors against the published
/// intervals and the observed orders, and returns the exit status (InvalidArgument for an
/// unknown case).
int run_cylinder(const Context& ctx, const CylinderOptions& options);

}  // namespace dfluid::bench
