// Internal pieces of the checkpoint scheduler shared by host/src/checkpoint_*.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "dfluid/checkpoint/plan.hpp"

namespace dfluid::checkpoint::detail {

/// Appends actions and tracks the current state (-1: undefined), so that restores are only
/// emitted where the current state is not already the one needed.
class ActionEmitter {
 public:
  explicit ActionEmitter(std::vector<Action>& out) : out_(out) {}

  std::int64_t current() const { return current_; }
  void advance(std::int64_t from, std::int64_t to);
  void store(Level level, std::int32_t slot, std::int64_t step);
  void restore(Level level, std::int32_t slot, std::int64_t step);
  void prefetch(Level level, std::int32_t slot, std::int64_t step);
  void free(Level level, std::int32_t slot);
  void reverse(std::int64_t step);
  /// Restore state `step` from device slot `slot` unless it is already current.
  void bring(std::int64_t step, std::int32_t slot);

  /// Reverses steps [start, start+len) with the binomial (Revolve) schedule on device slots
  /// 0..slots−1. Precondition: current == start. Uses ≤ slots slots, frees them all, and
  /// performs exactly numforw(len, slots) advances. Iterative: no recursion depth limit.
  void revolve_segment(std::int64_t start, std::int64_t len, std::int64_t slots);

 private:
  std::vector<Action>& out_;
  std::int64_t current_ = 0;
};

/// The timeline cost model (see checkpoint_summary.cpp): a compute stream and one copy
/// engine for Host/Disk transfers; with staging, transfers overlap compute through one
/// device staging buffer, without it they block compute.
class Timeline {
 public:
  Timeline(const CostModel& costs, std::size_t state_bytes, bool staging);
  void compute(double seconds) { now_ += seconds; }
  void advance(std::int64_t steps);
  void reverse();
  void store(Level level, std::int64_t slot);
  void restore(Level level, std::int64_t slot);
  void prefetch(Level level, std::int64_t slot);
  double now() const { return now_; }
  double stall() const { return stall_; }

 private:
  double copy_seconds(Level level) const;
  void wait_until(double t);
  double& ready(Level level, std::int64_t slot);

  CostModel costs_;
  double state_bytes_;
  bool staging_;
  double now_ = 0, stall_ = 0;
  double copy_free_ = 0, staging_free_ = 0;
  bool pending_ = false;
  Level pending_level_ = Level::Host;
  std::int64_t pending_slot_ = -1;
  double pending_ready_ = 0;
  std::vector<double> ready_[kLevelCount];
};

/// Best multi-level plan by the cost model, or an empty plan (no actions) when none applies.
Plan make_multilevel_plan(const PlanRequest& request);

}  // namespace dfluid::checkpoint::detail
