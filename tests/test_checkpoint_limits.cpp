// Checkpoint plans at the size limit: the action-count bound of max_plan_actions() against
// the plans make_plan() builds, the refusal of requests beyond kMaxPlanActions before
// anything is allocated, and slot counts far larger than any plan can use.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "dfluid/checkpoint.hpp"
#include "dfluid/error.hpp"

namespace ck = dfluid::checkpoint;

namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

ck::PlanRequest request(std::int64_t n, std::int64_t device, std::int64_t host = 0,
                        std::int64_t disk = 0, ck::Strategy strategy = ck::Strategy::Auto) {
  ck::PlanRequest r;
  r.steps = n;
  r.slots.device = device;
  r.slots.host = host;
  r.slots.disk = disk;
  r.size.state_bytes = 34'000'000;
  r.strategy = strategy;
  return r;
}

std::string message_of(const ck::PlanRequest& r) {
  try {
    ck::make_plan(r);
  } catch (const dfluid::InvalidArgument& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

// The bound of plan.hpp holds for every kind of plan, and a single-level plan has exactly
// 3n − 2 + 2·(stores) actions (n ≥ 2), which is what makes the bound O(1).
TEST(CheckpointLimits, ActionCountBoundHolds) {
  const ck::Strategy strategies[] = {ck::Strategy::Auto, ck::Strategy::Revolve,
                                     ck::Strategy::StoreAll, ck::Strategy::RecomputeFromStart,
                                     ck::Strategy::MultiLevel};
  for (std::int64_t n : {1, 2, 3, 7, 10, 64, 100, 1000, 5000}) {
    for (std::int64_t device : {1, 2, 3, 5, 20, 6000}) {
      for (std::int64_t host : {0, 1, 4, 100, 10000}) {
        for (ck::Strategy strategy : strategies) {
          const ck::PlanRequest r = request(n, device, host, 0, strategy);
          if (strategy == ck::Strategy::MultiLevel && (host == 0 || n < 2)) continue;
          if (strategy == ck::Strategy::StoreAll && device < n - 1) continue;
          const ck::Plan plan = ck::make_plan(r);
          const auto count = static_cast<std::int64_t>(plan.actions.size());
          EXPECT_LE(count, ck::max_plan_actions(r))
              << "n " << n << " device " << device << " host " << host;
          if (plan.kind != ck::PlanKind::MultiLevel && n >= 2) {
            const ck::PlanSummary s = ck::summarize(plan);
            EXPECT_EQ(count, 3 * n - 2 + 2 * s.stores[0]) << "n " << n << " device " << device;
            EXPECT_LE(count, 5 * n - 4);
            EXPECT_GE(count, 3 * n);
          }
        }
      }
    }
  }
}

// dfluid-plan --steps 1000000000 --slots 2 used to build a list of 3·10⁹ actions (72 GB)
// and abort. The request is refused from the bound alone: nothing is built or allocated.
TEST(CheckpointLimits, HugeStepCountsAreRefusedBeforeBuilding) {
  const std::string what = message_of(request(1'000'000'000, 2));
  EXPECT_NE(what.find("1000000000 steps"), std::string::npos) << what;
  EXPECT_NE(what.find("2 device"), std::string::npos) << what;
  EXPECT_NE(what.find("kMaxPlanActions"), std::string::npos) << what;
  EXPECT_NE(what.find("2e+07"), std::string::npos) << what;  // the limit
  // Every strategy, and step counts whose bound would overflow 64 bits.
  for (ck::Strategy strategy : {ck::Strategy::Auto, ck::Strategy::StoreAll, ck::Strategy::Revolve,
                                ck::Strategy::RecomputeFromStart, ck::Strategy::MultiLevel}) {
    for (std::int64_t n : {std::int64_t{1'000'000'000}, kInt64Max / 2, kInt64Max}) {
      const ck::PlanRequest r = request(n, kInt64Max, kInt64Max, kInt64Max, strategy);
      EXPECT_GT(ck::max_plan_actions(r), ck::kMaxPlanActions);
      if (n > kInt64Max / 5) EXPECT_EQ(ck::max_plan_actions(r), kInt64Max);  // saturated
      EXPECT_THROW(ck::make_plan(r), dfluid::InvalidArgument);
      EXPECT_THROW(ck::make_plan(request(n, 2, 0, 0, strategy)), dfluid::InvalidArgument);
    }
  }
}

TEST(CheckpointLimits, LimitIsWhereTheBoundCrossesIt) {
  // Device slots only: 5n − 4 actions at most, so n = kMaxPlanActions / 5 is the last
  // step count accepted (not built here: that takes about a second).
  const std::int64_t n_max = ck::kMaxPlanActions / 5;
  EXPECT_LE(ck::max_plan_actions(request(n_max, 10)), ck::kMaxPlanActions);
  EXPECT_GT(ck::max_plan_actions(request(n_max + 1, 10)), ck::kMaxPlanActions);
  EXPECT_THROW(ck::make_plan(request(n_max + 1, 10)), dfluid::InvalidArgument);
  // With host slots Auto builds a single-level and a multi-level plan: the limit halves.
  EXPECT_GT(ck::max_plan_actions(request(n_max / 2 + 1, 10, 20)), ck::kMaxPlanActions);
  EXPECT_LE(ck::max_plan_actions(request(n_max / 2 - 10, 10, 20)), ck::kMaxPlanActions);
  // The other strategies with host slots build one plan.
  EXPECT_LE(ck::max_plan_actions(request(n_max, 10, 20, 0, ck::Strategy::Revolve)),
            ck::kMaxPlanActions);
}

// Slot counts far beyond the step count (a huge --host-bytes for a small state) are fine:
// a plan uses at most one slot per step, and nothing is sized by the offered slots.
TEST(CheckpointLimits, HugeSlotCountsAreNotAllocated) {
  for (ck::Strategy strategy :
       {ck::Strategy::Auto, ck::Strategy::MultiLevel, ck::Strategy::StoreAll}) {
    const ck::PlanRequest r = request(50, kInt64Max, kInt64Max, kInt64Max, strategy);
    const ck::Plan plan = ck::make_plan(r);
    const ck::PlanSummary s = ck::summarize(plan);
    EXPECT_EQ(s.reverses, 50);
    EXPECT_EQ(s.advances, 49);
  }
  // A byte budget of 2^64 − 1 bytes for 1-byte states saturates instead of wrapping.
  const ck::MemoryBudget budget{~std::size_t{0}, ~std::size_t{0}, ~std::size_t{0}};
  const ck::SlotCounts slots = ck::slots_from_budget(budget, ck::StateSize{1, 0});
  EXPECT_EQ(slots.device, kInt64Max);
  EXPECT_EQ(slots.host, kInt64Max);
  EXPECT_EQ(slots.disk, kInt64Max);
}

TEST(CheckpointLimits, CostModelMustBeFinite) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {inf, -inf, nan, 0.0, -1.0}) {
    ck::PlanRequest r = request(100, 5);
    r.costs.step_seconds = bad;
    EXPECT_NE(message_of(r).find("step time"), std::string::npos) << bad;
    r = request(100, 5);
    r.costs.host_bandwidth = bad;
    EXPECT_NE(message_of(r).find("host bandwidth"), std::string::npos) << bad;
    r = request(100, 5);
    r.costs.disk_bandwidth = bad;
    EXPECT_NE(message_of(r).find("disk bandwidth"), std::string::npos) << bad;
    r = request(100, 5);
    r.costs.device_bandwidth = bad;
    EXPECT_NE(message_of(r).find("device bandwidth"), std::string::npos) << bad;
    if (bad == 0.0) continue;  // an adjoint step may be free in the model
    r = request(100, 5);
    r.costs.reverse_ratio = bad;
    EXPECT_NE(message_of(r).find("reverse ratio"), std::string::npos) << bad;
  }
}
