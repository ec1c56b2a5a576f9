// The smoke problem behind dfluid-bench's rollout-gradient mode.
//
// A closed box (2D or 3D, y up) holding a ball of smoke low in the box; every step adds
// smoke from an inflow source below it (a ball near the floor) and a weak force field
// (a control: horizontal shear that varies with height); the loss is a keyframe at the
// last state (a larger ball higher up) plus a small force effort term. Step: bench_config()
// (MacCormack scalar, semi-Lagrangian velocity, buoyancy, MGPCG to 1e-4).
//
// Every step's controls point at the same force and source fields: the backward pass
// still computes one force gradient per step (N face fields, the gradient outputs), but
// the inputs stay at one field each, so that long rollouts on big grids do not need N
// input fields besides.
#pragma once

#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

template <class T>
struct RolloutProblem {
  RolloutProblem(const Context& ctx, const Grid& g, int steps);

  Grid grid;
  int steps;
  SmokeState<T> initial;
  MacVelocity<T> force;                   ///< the control force of every step
  Field<T> inflow;                        ///< the smoke source of every step
  Field<T> target;                        ///< the keyframe at state `steps`
  std::vector<StepControls<T>> controls;  ///< `steps` entries, pointing into this object
  RolloutLosses<T> losses;                ///< points into this object

  RolloutProblem(const RolloutProblem&) = delete;
  RolloutProblem& operator=(const RolloutProblem&) = delete;
};

}  // namespace dfluid::bench
