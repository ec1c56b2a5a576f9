// Plan replay and validation, the timeline cost model, and the plan report.
//
// Timeline model. One compute stream runs advances (step_seconds each), adjoint steps
// (step_seconds · reverse_ratio) and device-slot copies (state_bytes / device_bandwidth).
// One copy engine runs Host/Disk transfers (state_bytes / host or disk bandwidth), one at a
// time. With staging, a Host/Disk store costs the compute stream one device copy into the
// staging buffer, after waiting for the buffer to be free; its transfer then overlaps compute.
// A prefetch starts a transfer into the staging buffer (after the slot's own store finished);
// the restore waits for it and costs one device copy. Without staging, transfers block compute.
// Waiting is reported as stall time.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

#include "checkpoint/checkpoint_internal.hpp"
#include "dfluid/checkpoint/binomial.hpp"
#include "dfluid/error.hpp"

namespace dfluid::checkpoint {
namespace detail {

Timeline::Timeline(const CostModel& costs, std::size_t state_bytes, bool staging)
    : costs_(costs), state_bytes_(static_cast<double>(state_bytes)), staging_(staging) {}

double Timeline::copy_seconds(Level level) const {
  switch (level) {
    case Level::Device:
      return state_bytes_ / costs_.device_bandwidth;
    case Level::Host:
      return state_bytes_ / costs_.host_bandwidth;
    case Level::Disk:
      return state_bytes_ / costs_.disk_bandwidth;
  }
  return 0;
}

void Timeline::wait_until(double t) {
  if (t > now_) {
    stall_ += t - now_;
    now_ = t;
  }
}

double& Timeline::ready(Level level, std::int64_t slot) {
  auto& v = ready_[static_cast<int>(level)];
  if (slot >= static_cast<std::int64_t>(v.size())) v.resize(static_cast<std::size_t>(slot) + 1, 0);
  return v[static_cast<std::size_t>(slot)];
}

void Timeline::advance(std::int64_t steps) {
  now_ += static_cast<double>(steps) * costs_.step_seconds;
}

void Timeline::reverse() {
  now_ += costs_.step_seconds * costs_.reverse_ratio;
}

void Timeline::store(Level level, std::int64_t slot) {
  const double dev = copy_seconds(Level::Device);
  if (level == Level::Device) {
    now_ += dev;
    return;
  }
  const double c = copy_seconds(level);
  if (staging_) {
    wait_until(staging_free_);
    now_ += dev;
    const double end = std::max(now_, copy_free_) + c;
    copy_free_ = staging_free_ = ready(level, slot) = end;
  } else {
    wait_until(copy_free_);
    stall_ += c;
    now_ += c;
    copy_free_ = ready(level, slot) = now_;
  }
}

void Timeline::prefetch(Level level, std::int64_t slot) {
  if (level == Level::Device || !staging_) return;
  wait_until(staging_free_);
  const double end = std::max({now_, copy_free_, ready(level, slot)}) + copy_seconds(level);
  copy_free_ = staging_free_ = end;
  pending_ = true;
  pending_level_ = level;
  pending_slot_ = slot;
  pending_ready_ = end;
}

void Timeline::restore(Level level, std::int64_t slot) {
  const double dev = copy_seconds(Level::Device);
  if (level == Level::Device) {
    now_ += dev;
    return;
  }
  const double c = copy_seconds(level);
  if (pending_ && pending_level_ == level && pending_slot_ == slot) {
    wait_until(pending_ready_);
    now_ += dev;
    pending_ = false;
    staging_free_ = now_;
  } else if (staging_) {
    const double start = std::max({now_, copy_free_, staging_free_, ready(level, slot)});
    wait_until(start + c);
    now_ += dev;
    copy_free_ = start + c;
    staging_free_ = now_;
  } else {
    wait_until(std::max({now_, copy_free_, ready(level, slot)}) + c);
    copy_free_ = now_;
  }
}

}  // namespace detail

namespace {

[[noreturn]] void bad(std::size_t index, const Action& a, const std::string& why) {
  throw Error("invalid checkpoint plan: action " + std::to_string(index) + " (" + to_string(a) +
              "): " + why);
}

}  // namespace

PlanSummary summarize(const Plan& plan) {
  PlanSummary s;
  s.kind = plan.kind;
  s.steps = plan.steps;
  s.slots = plan.slots;
  detail::Timeline tl(plan.costs, plan.size.state_bytes, plan.staging);
  // State held by each slot (-1: free), grown as the plan uses slots: a request may offer far
  // more slots than a plan can use (at most one per step), e.g. a huge host budget.
  std::vector<std::int64_t> held[kLevelCount];
  std::int64_t count[kLevelCount] = {0, 0, 0};
  std::int64_t current = 0;
  std::int64_t next_reverse = plan.steps - 1;
  for (std::size_t k = 0; k < plan.actions.size(); ++k) {
    const Action& a = plan.actions[k];
    const int l = static_cast<int>(a.level);
    const bool slotted = a.type == ActionType::Store || a.type == ActionType::Restore ||
                         a.type == ActionType::Prefetch || a.type == ActionType::Free;
    if (slotted) {
      if (l < 0 || l >= kLevelCount || a.slot < 0 || a.slot >= plan.slots[a.level]) {
        bad(k, a, "slot out of range");
      }
      if (a.slot >= static_cast<std::int64_t>(held[l].size())) {
        held[l].resize(static_cast<std::size_t>(a.slot) + 1, -1);
      }
    }
    switch (a.type) {
      case ActionType::Advance:
        if (current != a.step) bad(k, a, "current state is " + std::to_string(current));
        if (a.to_step <= a.step || a.to_step >= plan.steps) bad(k, a, "bad target step");
        s.advances += a.to_step - a.step;
        tl.advance(a.to_step - a.step);
        current = a.to_step;
        break;
      case ActionType::Store:
        if (current != a.step) bad(k, a, "current state is " + std::to_string(current));
        if (held[l][a.slot] >= 0) bad(k, a, "slot is occupied");
        held[l][a.slot] = a.step;
        ++s.stores[l];
        s.peak_held[l] = std::max(s.peak_held[l], ++count[l]);
        tl.store(a.level, a.slot);
        break;
      case ActionType::Restore:
      case ActionType::Prefetch:
        if (held[l][a.slot] != a.step) bad(k, a, "slot does not hold that state");
        if (a.type == ActionType::Prefetch) {
          tl.prefetch(a.level, a.slot);
        } else {
          ++s.restores[l];
          tl.restore(a.level, a.slot);
          current = a.step;
        }
        break;
      case ActionType::Free:
        if (held[l][a.slot] < 0) bad(k, a, "slot is already free");
        held[l][a.slot] = -1;
        --count[l];
        break;
      case ActionType::Reverse:
        if (a.step != next_reverse) bad(k, a, "expected step " + std::to_string(next_reverse));
        if (current != a.step) bad(k, a, "current state is " + std::to_string(current));
        ++s.reverses;
        --next_reverse;
        tl.reverse();
        current = -1;
        break;
    }
  }
  if (next_reverse != -1) {
    throw Error("invalid checkpoint plan: steps 0.." + std::to_string(next_reverse) +
                " are never reversed");
  }
  for (int l = 0; l < kLevelCount; ++l) {
    if (count[l] != 0) throw Error("invalid checkpoint plan: slots left occupied at the end");
  }
  const std::size_t state = plan.size.state_bytes;
  s.peak_device_bytes =
      plan.size.working_bytes +
      (static_cast<std::size_t>(s.peak_held[0]) + (plan.staging ? 1u : 0u)) * state;
  s.peak_host_bytes = static_cast<std::size_t>(s.peak_held[1]) * state;
  s.peak_disk_bytes = static_cast<std::size_t>(s.peak_held[2]) * state;
  s.forward_seconds = static_cast<double>(plan.steps) * plan.costs.step_seconds;
  s.predicted_seconds = tl.now();
  s.stall_seconds = tl.stall();
  s.time_ratio = s.forward_seconds > 0 ? s.predicted_seconds / s.forward_seconds : 0;
  return s;
}

double predict_seconds(const Plan& plan) {
  return summarize(plan).predicted_seconds;
}

namespace {

std::string seconds(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g s", v);
  return buf;
}

std::string per_level(const std::int64_t (&v)[kLevelCount]) {
  return "device " + std::to_string(v[0]) + ", host " + std::to_string(v[1]) + ", disk " +
         std::to_string(v[2]);
}

}  // namespace

std::string describe(const PlanSummary& s, const Plan& plan) {
  std::ostringstream o;
  const std::int64_t slots[kLevelCount] = {s.slots.device, s.slots.host, s.slots.disk};
  o << "plan: " << to_string(s.kind) << "\n";
  o << "steps: " << s.steps << "\n";
  o << "slots: " << per_level(slots) << "\n";
  if (plan.kind == PlanKind::MultiLevel) {
    o << "segment: " << plan.segment << " steps between host/disk checkpoints, "
      << plan.revolve_slots << " device slots per segment"
      << (plan.staging ? ", 1 device slot as copy staging buffer (async copies)"
                       : ", synchronous copies")
      << "\n";
  } else if (s.steps >= 1) {
    o << "binomial optimum: numforw(" << s.steps << ", " << plan.revolve_slots
      << ") = " << numforw(s.steps, std::max<std::int64_t>(1, plan.revolve_slots)) << "\n";
  }
  o << "advances: " << s.advances << "\n";
  o << "adjoint steps: " << s.reverses << "\n";
  o << "stores: " << per_level(s.stores) << "\n";
  o << "restores: " << per_level(s.restores) << "\n";
  o << "peak states: " << per_level(s.peak_held) << "\n";
  if (plan.size.state_bytes > 0) {
    o << "device memory: " << s.peak_device_bytes << " bytes (working " << plan.size.working_bytes
      << " + " << (s.peak_held[0] + (plan.staging ? 1 : 0)) << " states of "
      << plan.size.state_bytes << ")\n";
    o << "host memory: " << s.peak_host_bytes << " bytes\n";
    o << "disk memory: " << s.peak_disk_bytes << " bytes\n";
  } else {
    o << "device memory: " << s.peak_held[0] + (plan.staging ? 1 : 0)
      << " states + working memory (state size not given)\n";
    o << "host memory: " << s.peak_held[1] << " states\n";
    o << "disk memory: " << s.peak_held[2] << " states\n";
  }
  o << "forward pass: " << seconds(s.forward_seconds) << "\n";
  o << "predicted time: " << seconds(s.predicted_seconds) << " (copy stalls "
    << seconds(s.stall_seconds) << ")\n";
  char ratio[64];
  std::snprintf(ratio, sizeof ratio, "%.4g", s.time_ratio);
  o << "time ratio vs forward: " << ratio << "\n";
  return o.str();
}

std::string format_actions(const Plan& plan) {
  std::string out;
  for (const Action& a : plan.actions) {
    out += to_string(a);
    out += '\n';
  }
  return out;
}

}  // namespace dfluid::checkpoint
