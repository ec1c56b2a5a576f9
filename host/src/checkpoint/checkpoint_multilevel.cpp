// Multi-level checkpoint plans: device slots, pinned host slots, disk slots.
//
// Approach (a documented heuristic in the spirit of Stumm & Walther's MultiStage and of
// disk revolve): the run is cut into K = ceil(n/m) segments of m steps (the last one may be
// shorter). The forward sweep advances from state 0 and stores every segment start except the
// last one in an outer slot (host first, disk for the oldest boundaries when host slots run
// out); the last segment is reversed at once with the binomial schedule on the device slots.
// Then, segment by segment backwards, its start is restored from its outer slot and the
// segment is reversed with the binomial schedule on the device slots.
//
// Copies overlap compute when one device slot is given up as a staging buffer: a store
// copies the current state into it (device speed) and the transfer runs on the copy stream
// while the next segment advances; the start of the next segment to reverse is prefetched
// while the current one is reversed. Without staging (one device slot), copies block.
//
// The segment length m and the staging choice are picked by the timeline model (Timeline):
// every m from ceil(n/(outer slots+1)) to n−1 is evaluated in O(n/m) (segments of equal length
// cost the same), O(n log n) in all. make_plan() then compares the chosen plan with the
// single-level plan on all device slots by the full model and keeps the faster one.
// With outer slots ≥ n−1 and copies hidden by compute, m = 1 wins: n−1 advances.
#include <algorithm>
#include <limits>

#include "checkpoint/checkpoint_internal.hpp"
#include "dfluid/checkpoint/binomial.hpp"

namespace dfluid::checkpoint::detail {
namespace {

struct Layout {
  std::int64_t n = 0, m = 0, segments = 0, outer = 0, on_disk = 0;
  // Outer checkpoint j (segment start j·m, 0 ≤ j < K−1): disk for the oldest ones.
  Level level(std::int64_t j) const { return j < on_disk ? Level::Disk : Level::Host; }
  std::int32_t slot(std::int64_t j) const {
    return static_cast<std::int32_t>(j < on_disk ? j : j - on_disk);
  }
};

Layout layout(std::int64_t n, std::int64_t m, const SlotCounts& slots) {
  Layout l;
  l.n = n;
  l.m = m;
  l.segments = (n + m - 1) / m;
  l.outer = l.segments - 1;
  l.on_disk = std::max<std::int64_t>(0, l.outer - slots.host);
  return l;
}

// Predicted seconds of the layout: the same timeline as summarize() applies to the actions,
// with each segment's binomial schedule lumped into one compute interval (its device copies,
// a few microseconds each, are left out here and counted in the final comparison).
double estimate(const Layout& l, std::int64_t revolve_slots, bool staging, const PlanRequest& r) {
  Timeline tl(r.costs, r.size.state_bytes, staging);
  const double step = r.costs.step_seconds;
  const double rev = step * r.costs.reverse_ratio;
  const std::int64_t last = l.n - l.outer * l.m;
  auto segment_seconds = [&](std::int64_t len) {
    return static_cast<double>(numforw(len, revolve_slots)) * step + static_cast<double>(len) * rev;
  };
  const double full = segment_seconds(l.m);
  for (std::int64_t j = 0; j < l.outer; ++j) {
    tl.store(l.level(j), l.slot(j));
    tl.advance(l.m);
  }
  if (staging && l.outer > 0) tl.prefetch(l.level(l.outer - 1), l.slot(l.outer - 1));
  tl.compute(segment_seconds(last));
  for (std::int64_t j = l.outer - 1; j >= 0; --j) {
    tl.restore(l.level(j), l.slot(j));
    if (staging && j > 0) tl.prefetch(l.level(j - 1), l.slot(j - 1));
    tl.compute(full);
  }
  return tl.now();
}

Plan emit(const Layout& l, std::int64_t revolve_slots, bool staging, const PlanRequest& r) {
  Plan plan;
  plan.kind = PlanKind::MultiLevel;
  plan.steps = l.n;
  plan.slots = r.slots;
  plan.revolve_slots = revolve_slots;
  plan.staging = staging;
  plan.segment = l.m;
  plan.size = r.size;
  plan.costs = r.costs;
  ActionEmitter e(plan.actions);
  for (std::int64_t j = 0; j < l.outer; ++j) {
    e.store(l.level(j), l.slot(j), j * l.m);
    e.advance(j * l.m, (j + 1) * l.m);
  }
  if (staging && l.outer > 0) {
    const std::int64_t j = l.outer - 1;
    e.prefetch(l.level(j), l.slot(j), j * l.m);
  }
  e.revolve_segment(l.outer * l.m, l.n - l.outer * l.m, revolve_slots);
  for (std::int64_t j = l.outer - 1; j >= 0; --j) {
    e.restore(l.level(j), l.slot(j), j * l.m);
    e.free(l.level(j), l.slot(j));
    if (staging && j > 0) e.prefetch(l.level(j - 1), l.slot(j - 1), (j - 1) * l.m);
    e.revolve_segment(j * l.m, l.m, revolve_slots);
  }
  return plan;
}

}  // namespace

Plan make_multilevel_plan(const PlanRequest& r) {
  const std::int64_t n = r.steps;
  // More than n − 1 outer slots are never used; clamping keeps the sums below from overflowing.
  const std::int64_t outer_slots = std::min(r.slots.host, n) + std::min(r.slots.disk, n);
  if (n < 2 || outer_slots < 1 || r.slots.device < 1) return Plan{};
  // K − 1 ≤ outer slots  ⇔  m ≥ ceil(n / (outer + 1)); m = n would use no outer slot.
  const std::int64_t m_min = std::max<std::int64_t>(1, (n + outer_slots) / (outer_slots + 1));
  double best = std::numeric_limits<double>::infinity();
  std::int64_t best_m = 0;
  bool best_staging = false;
  for (int variant = 0; variant < 2; ++variant) {
    const bool staging = variant == 1;
    const std::int64_t revolve_slots = staging ? r.slots.device - 1 : r.slots.device;
    if (revolve_slots < 1) continue;
    for (std::int64_t m = m_min; m < n;) {
      const double t = estimate(layout(n, m, r.slots), revolve_slots, staging, r);
      if (t < best) {
        best = t;
        best_m = m;
        best_staging = staging;
      }
      // Every m up to a few thousand; beyond that a geometric grid keeps huge n fast.
      m = m < 4096 ? m + 1 : std::max(m + 1, m + m / 1024);
    }
  }
  if (best_m == 0) return Plan{};
  const std::int64_t revolve_slots = best_staging ? r.slots.device - 1 : r.slots.device;
  return emit(layout(n, best_m, r.slots), revolve_slots, best_staging, r);
}

}  // namespace dfluid::checkpoint::detail
