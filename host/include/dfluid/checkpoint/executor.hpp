// Running a checkpoint plan on a simulator. Whatever owns the states implements
// CheckpointDriver; execute_plan() calls it once per action of the plan, in order (an
// Advance of k steps becomes k advance() calls). The driver never sees the schedule, only
// these calls, and must follow the action semantics of plan.hpp: one "current" state, slots
// per level that hold copies of it, reverse(step) run exactly when the current state is the
// step's input, steps reversed in the order n−1, …, 0.
//
// Implementations:
//  * Rollout<T> (dfluid/rollout.hpp, RolloutOptions::checkpointing): the adjoint rollout of
//    a Simulation. Its driver (host/src/rollout/rollout_checkpoint.cpp) keeps whole SmokeStates in
//    device buffers, pinned host buffers and disk files; reverse(n−1) also steps state n−1
//    forward to state n for the final losses, as plan.hpp describes.
//  * tests/checkpoint_fake_simulator.hpp: a counting fake that checks the semantics;
//    tests/test_checkpoint_driver.cpp: a toy nonlinear rollout with real payloads.
//
// Asynchronous copies (Host and Disk levels): store() to a Host/Disk slot may copy the current
// state into a device staging buffer and return while the transfer runs on the driver's copy
// stream; prefetch() may start the transfer of a slot towards the staging buffer. The driver
// must itself wait (stream event or fence) before it reuses the staging buffer, before a
// restore() of a slot whose store or prefetch is still in flight, and in fence(). A plan
// with Plan::staging == true budgets one device state for that staging buffer; without it the
// driver should copy synchronously. execute_plan() calls fence() for each level at the end.
// A driver may also ignore prefetch() (it is a hint) and copy synchronously everywhere: the
// results are the same, only the overlap of copies with compute is lost.
#pragma once

#include <cstdint>

#include "dfluid/checkpoint/plan.hpp"

namespace dfluid::checkpoint {

class CheckpointDriver {
 public:
  virtual ~CheckpointDriver() = default;
  /// current: state `step` → state `step + 1` (one plain forward step).
  virtual void advance(std::int64_t step) = 0;
  /// Copy the current state (state `step`) into (level, slot).
  virtual void store(Level level, std::int32_t slot, std::int64_t step) = 0;
  /// Copy (level, slot), which holds state `step`, into the current state.
  virtual void restore(Level level, std::int32_t slot, std::int64_t step) = 0;
  /// Run the adjoint of step `step`; the current state is state `step`.
  virtual void reverse(std::int64_t step) = 0;
  /// The slot's content is no longer needed.
  virtual void release(Level /*level*/, std::int32_t /*slot*/) {}
  /// Hint: a restore of (level, slot) follows; start its copy now (Host/Disk only).
  virtual void prefetch(Level /*level*/, std::int32_t /*slot*/, std::int64_t /*step*/) {}
  /// Wait until every asynchronous copy of `level` has completed.
  virtual void fence(Level /*level*/) {}
};

/// Calls the driver for every action of the plan (an Advance of k steps becomes k calls of
/// advance()), then fence() for Host and Disk.
void execute_plan(const Plan& plan, CheckpointDriver& driver);

}  // namespace dfluid::checkpoint
