// Helpers shared by the tests that measure a Simulation (memory estimate, context counters).
#pragma once

#include "dfluid/simulation.hpp"

namespace dfluid::test {

/// A plain smoke step: dt 0.5, buoyancy 0.3, MGPCG to 1e-4 (the other settings default).
inline StepConfig smoke_config() {
  StepConfig cfg;
  cfg.dt = 0.5;
  cfg.buoyancy = 0.3;
  cfg.pressure.rel_tol = 1e-4;
  return cfg;
}

}  // namespace dfluid::test
