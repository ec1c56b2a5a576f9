// dfluid-bench --cavity: the lid-driven cavity (no-slip walls, a lid moving at speed 1) run
// to its steady state and compared with Ghia, Ghia & Shin (1982), Tables I and II, along the
// centrelines (data/ghia1982_cavity.txt).
#pragma once

#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

struct CavityOptions {
  std::vector<int> sizes{128};                ///< cells per side
  std::vector<int> reynolds{100, 400, 1000};  ///< U L / nu; the table has 100, 400, 1000
  double courant = 1.0;                       ///< dt = courant * dx / U
  double max_time = 0;                        ///< 0: 40 + Re / 10 lid-crossing times
  double check = -1;  ///< > 0: exit status 3 when a deviation exceeds it (for tests)
};

/// Runs every size and Reynolds number, prints the maximum deviation from the table
/// (fractions of the lid speed) and returns the exit status.
int run_cavity(const Context& ctx, const CavityOptions& options);

}  // namespace dfluid::bench
