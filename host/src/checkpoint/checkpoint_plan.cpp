// Checkpoint plans: budgets, the action emitter, the binomial (Revolve) schedule, make_plan.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "checkpoint/checkpoint_internal.hpp"
#include "dfluid/checkpoint/binomial.hpp"
#include "dfluid/checkpoint/plan.hpp"
#include "dfluid/error.hpp"

namespace dfluid::checkpoint {

const char* to_string(Level level) {
  switch (level) {
    case Level::Device:
      return "device";
    case Level::Host:
      return "host";
    case Level::Disk:
      return "disk";
  }
  return "?";
}

const char* to_string(ActionType type) {
  switch (type) {
    case ActionType::Advance:
      return "advance";
    case ActionType::Store:
      return "store";
    case ActionType::Restore:
      return "restore";
    case ActionType::Prefetch:
      return "prefetch";
    case ActionType::Free:
      return "free";
    case ActionType::Reverse:
      return "reverse";
  }
  return "?";
}

const char* to_string(PlanKind kind) {
  switch (kind) {
    case PlanKind::StoreAll:
      return "store-all";
    case PlanKind::RecomputeFromStart:
      return "recompute-from-start";
    case PlanKind::Revolve:
      return "revolve";
    case PlanKind::MultiLevel:
      return "multi-level";
  }
  return "?";
}

std::string to_string(const Action& a) {
  const std::string where = std::string(to_string(a.level)) + " slot " + std::to_string(a.slot);
  switch (a.type) {
    case ActionType::Advance:
      return "advance " + std::to_string(a.step) + " -> " + std::to_string(a.to_step);
    case ActionType::Store:
      return "store state " + std::to_string(a.step) + " to " + where;
    case ActionType::Restore:
      return "restore state " + std::to_string(a.step) + " from " + where;
    case ActionType::Prefetch:
      return "prefetch state " + std::to_string(a.step) + " from " + where;
    case ActionType::Free:
      return "free " + where;
    case ActionType::Reverse:
      return "reverse step " + std::to_string(a.step);
  }
  return "?";
}

std::int64_t& SlotCounts::operator[](Level level) {
  return level == Level::Device ? device : level == Level::Host ? host : disk;
}
std::int64_t SlotCounts::operator[](Level level) const {
  return level == Level::Device ? device : level == Level::Host ? host : disk;
}

std::size_t minimum_device_bytes(const StateSize& size) {
  if (size.state_bytes == 0) throw InvalidArgument("checkpoint budget: state_bytes must be > 0");
  return size.state_bytes + size.working_bytes;
}

SlotCounts slots_from_budget(const MemoryBudget& budget, const StateSize& size) {
  const std::size_t minimum = minimum_device_bytes(size);
  if (budget.device_bytes < minimum) {
    throw InvalidArgument("checkpoint budget: device budget of " +
                          std::to_string(budget.device_bytes) + " bytes is below the minimum of " +
                          std::to_string(minimum) + " bytes (one state of " +
                          std::to_string(size.state_bytes) + " bytes plus " +
                          std::to_string(size.working_bytes) + " bytes of step working memory)");
  }
  // Saturated: a byte budget over 2^63 states (tiny states, huge budgets) must not wrap.
  auto count = [&size](std::size_t bytes) {
    const std::size_t n = bytes / size.state_bytes;
    constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(std::min(n, kMax));
  };
  SlotCounts slots;
  slots.device = count(budget.device_bytes - size.working_bytes);
  slots.host = count(budget.host_bytes);
  slots.disk = count(budget.disk_bytes);
  return slots;
}

PlanRequest request_from_budget(std::int64_t steps, const MemoryBudget& budget,
                                const StateSize& size, const CostModel& costs) {
  PlanRequest request;
  request.steps = steps;
  request.slots = slots_from_budget(budget, size);
  request.size = size;
  request.costs = costs;
  return request;
}

namespace detail {

void ActionEmitter::advance(std::int64_t from, std::int64_t to) {
  if (to == from) return;
  Action a;
  a.type = ActionType::Advance;
  a.step = from;
  a.to_step = to;
  out_.push_back(a);
  current_ = to;
}

void ActionEmitter::store(Level level, std::int32_t slot, std::int64_t step) {
  out_.push_back(Action{ActionType::Store, level, slot, step, 0});
}

void ActionEmitter::restore(Level level, std::int32_t slot, std::int64_t step) {
  out_.push_back(Action{ActionType::Restore, level, slot, step, 0});
  current_ = step;
}

void ActionEmitter::prefetch(Level level, std::int32_t slot, std::int64_t step) {
  out_.push_back(Action{ActionType::Prefetch, level, slot, step, 0});
}

void ActionEmitter::free(Level level, std::int32_t slot) {
  out_.push_back(Action{ActionType::Free, level, slot, 0, 0});
}

void ActionEmitter::reverse(std::int64_t step) {
  out_.push_back(Action{ActionType::Reverse, Level::Device, -1, step, 0});
  current_ = -1;
}

void ActionEmitter::bring(std::int64_t step, std::int32_t slot) {
  if (current_ != step) restore(Level::Device, slot, step);
}

void ActionEmitter::revolve_segment(std::int64_t start, std::int64_t len, std::int64_t slots) {
  if (len <= 0) return;
  if (len == 1) {  // state `start` is current: nothing to store
    reverse(start);
    return;
  }
  // Frame k of the stack keeps its start state in device slot k; a frame covers the steps
  // [start, start+len) still to be reversed with s slots (its own included).
  struct Frame {
    std::int64_t start, len, s;
  };
  std::vector<Frame> stack;
  stack.reserve(static_cast<std::size_t>(std::min<std::int64_t>(slots, len)) + 1);
  store(Level::Device, 0, start);
  stack.push_back(Frame{start, len, slots});
  while (!stack.empty()) {
    const auto slot = static_cast<std::int32_t>(stack.size() - 1);
    const Frame f = stack.back();
    if (f.len == 0) {
      free(Level::Device, slot);
      stack.pop_back();
      continue;
    }
    if (f.len == 1) {
      bring(f.start, slot);
      reverse(f.start);
      stack.back().len = 0;
      continue;
    }
    if (f.s == 1) {  // one slot: recompute from the segment start for every step
      for (std::int64_t j = f.len - 1; j >= 0; --j) {
        bring(f.start, slot);
        advance(f.start, f.start + j);
        reverse(f.start + j);
      }
      stack.back().len = 0;
      continue;
    }
    // Binomial split: advance i steps, checkpoint, reverse the right part with one slot
    // fewer, then the left part [start, start+i) with all s slots.
    const std::int64_t i = optimal_split(f.len, f.s);
    bring(f.start, slot);
    advance(f.start, f.start + i);
    stack.back().len = i;
    const std::int64_t right = f.len - i;
    if (right == 1) {
      reverse(f.start + i);
    } else {
      store(Level::Device, slot + 1, f.start + i);
      stack.push_back(Frame{f.start + i, right, f.s - 1});
    }
  }
}

}  // namespace detail

namespace {

Plan single_level(const PlanRequest& r, std::int64_t slots, PlanKind kind) {
  Plan plan;
  plan.kind = kind;
  plan.steps = r.steps;
  plan.slots = r.slots;
  plan.revolve_slots = slots;
  plan.size = r.size;
  plan.costs = r.costs;
  detail::ActionEmitter emit(plan.actions);
  emit.revolve_segment(0, r.steps, slots);
  return plan;
}

PlanKind single_level_kind(std::int64_t steps, std::int64_t slots) {
  if (slots >= steps - 1) return PlanKind::StoreAll;
  if (slots == 1) return PlanKind::RecomputeFromStart;
  return PlanKind::Revolve;
}

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

/// a·n + b for n ≥ 0, saturated at INT64_MAX (requests may carry any step count).
std::int64_t saturated(std::int64_t a, std::int64_t n, std::int64_t b) {
  if (n > (kInt64Max - (b > 0 ? b : 0)) / a) return kInt64Max;
  return a * n + b;
}

std::int64_t saturated_sum(std::int64_t x, std::int64_t y) {
  return x > kInt64Max - y ? kInt64Max : x + y;
}

// The bounds of plan.hpp (max_plan_actions).
std::int64_t single_level_bound(std::int64_t n) {
  return n <= 1 ? 1 : saturated(5, n, -4);
}
std::int64_t multilevel_bound(const PlanRequest& r) {
  const std::int64_t n = r.steps;
  if (n < 2) return 0;  // no multi-level plan: make_multilevel_plan returns none
  const std::int64_t outer =
      std::min(n - 1, saturated_sum(std::max<std::int64_t>(0, r.slots.host),
                                    std::max<std::int64_t>(0, r.slots.disk)));
  return saturated_sum(single_level_bound(n), outer);
}

std::string cost_problem(const CostModel& c) {
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(c.step_seconds)) return "step time";
  if (!(std::isfinite(c.reverse_ratio) && c.reverse_ratio >= 0)) return "reverse ratio";
  if (!positive(c.device_bandwidth)) return "device bandwidth";
  if (!positive(c.host_bandwidth)) return "host bandwidth";
  if (!positive(c.disk_bandwidth)) return "disk bandwidth";
  return {};
}

std::string g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::int64_t max_plan_actions(const PlanRequest& r) {
  const bool outer = r.slots.host > 0 || r.slots.disk > 0;
  switch (r.strategy) {
    case Strategy::StoreAll:
    case Strategy::RecomputeFromStart:
    case Strategy::Revolve:
      return single_level_bound(r.steps);
    case Strategy::MultiLevel:
      return multilevel_bound(r);
    case Strategy::Auto:
      break;
  }
  return outer ? saturated_sum(single_level_bound(r.steps), multilevel_bound(r))
               : single_level_bound(r.steps);
}

Plan make_plan(const PlanRequest& r) {
  if (r.steps < 1) {
    throw InvalidArgument("checkpoint plan: steps must be >= 1, got " + std::to_string(r.steps));
  }
  if (r.slots.device < 1) {
    throw InvalidArgument(
        "checkpoint plan: need at least one device slot (it holds the initial "
        "state), got " +
        std::to_string(r.slots.device));
  }
  if (r.slots.host < 0 || r.slots.disk < 0) {
    throw InvalidArgument("checkpoint plan: host and disk slot counts must be >= 0");
  }
  if (const std::string bad = cost_problem(r.costs); !bad.empty()) {
    throw InvalidArgument("checkpoint plan: the cost model's " + bad +
                          " must be finite and > 0 (reverse ratio >= 0)");
  }
  // Refuse before anything is allocated: the list of a plan this large would not fit in
  // memory (see kMaxPlanActions).
  if (const std::int64_t bound = max_plan_actions(r); bound > kMaxPlanActions) {
    throw InvalidArgument(
        "checkpoint plan: " + std::to_string(r.steps) + " steps with " +
        std::to_string(r.slots.device) + " device, " + std::to_string(r.slots.host) + " host and " +
        std::to_string(r.slots.disk) + " disk slots need a list of up to " + g(double(bound)) +
        " actions, more than the limit of " + g(double(kMaxPlanActions)) +
        " (kMaxPlanActions); reverse at most " + std::to_string(kMaxPlanActions / 5) +
        " steps per plan (fewer with host or disk slots)");
  }
  const std::int64_t n = r.steps;
  switch (r.strategy) {
    case Strategy::StoreAll: {
      const std::int64_t need = std::max<std::int64_t>(1, n - 1);
      if (r.slots.device < need) {
        throw InvalidArgument("checkpoint plan: store-all for " + std::to_string(n) +
                              " steps needs " + std::to_string(need) +
                              " device slots (states 0..n-2), have " +
                              std::to_string(r.slots.device));
      }
      return single_level(r, need, PlanKind::StoreAll);
    }
    case Strategy::RecomputeFromStart:
      return single_level(r, 1, PlanKind::RecomputeFromStart);
    case Strategy::Revolve:
      return single_level(r, r.slots.device, PlanKind::Revolve);
    case Strategy::MultiLevel: {
      if (r.slots.host < 1 && r.slots.disk < 1) {
        throw InvalidArgument(
            "checkpoint plan: a multi-level plan needs at least one host or "
            "disk slot, have none");
      }
      Plan multi = detail::make_multilevel_plan(r);
      if (multi.actions.empty()) {
        throw InvalidArgument("checkpoint plan: no multi-level plan for " + std::to_string(n) +
                              " steps (needs at least 2 steps)");
      }
      return multi;
    }
    case Strategy::Auto:
      break;
  }
  Plan single = single_level(r, r.slots.device, single_level_kind(n, r.slots.device));
  if ((r.slots.host < 1 && r.slots.disk < 1) || n < 2) return single;
  Plan multi = detail::make_multilevel_plan(r);
  if (multi.actions.empty()) return single;
  // Separate returns move the winner (a conditional expression would copy its list).
  if (predict_seconds(multi) < predict_seconds(single)) return multi;
  return single;
}

}  // namespace dfluid::checkpoint
