// Checkpoint plans beyond single-level Revolve: byte budgets, multi-level plans (device,
// pinned host, disk), the plan report and plan validation.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "checkpoint_fake_simulator.hpp"
#include "dfluid/checkpoint.hpp"
#include "dfluid/error.hpp"

namespace ck = dfluid::checkpoint;

namespace {

constexpr std::size_t kSmoke128 = std::size_t{34} * 1000 * 1000;  // ≈ 128³ smoke state, float

ck::PlanSummary run_checked(const ck::Plan& plan) {
  dfluid_test::CountingSimulator sim(plan.steps, plan.slots);
  ck::execute_plan(plan, sim);
  EXPECT_EQ(sim.failures, 0) << sim.first_failure;
  EXPECT_TRUE(sim.complete());
  const ck::PlanSummary s = ck::summarize(plan);
  EXPECT_EQ(s.advances, sim.advances);
  EXPECT_EQ(s.reverses, plan.steps);
  for (int l = 0; l < ck::kLevelCount; ++l) {
    EXPECT_EQ(s.peak_held[l], sim.peak_held[l]);
    EXPECT_LE(s.peak_held[l], plan.slots[ck::Level(l)]);
  }
  return s;
}

ck::PlanRequest request(std::int64_t n, std::int64_t device, std::int64_t host,
                        std::int64_t disk = 0, std::size_t state = kSmoke128) {
  ck::PlanRequest r;
  r.steps = n;
  r.slots.device = device;
  r.slots.host = host;
  r.slots.disk = disk;
  r.size.state_bytes = state;
  return r;
}

double single_level_seconds(ck::PlanRequest r) {
  r.slots.host = r.slots.disk = 0;
  r.strategy = ck::Strategy::Revolve;
  return ck::predict_seconds(ck::make_plan(r));
}

}  // namespace

TEST(CheckpointBudget, SlotsFromBytes) {
  ck::StateSize size{1000, 2500};
  ck::MemoryBudget budget{12600, 5999, 3000};
  const ck::SlotCounts slots = ck::slots_from_budget(budget, size);
  EXPECT_EQ(slots.device, 10);  // (12600 − 2500) / 1000
  EXPECT_EQ(slots.host, 5);
  EXPECT_EQ(slots.disk, 3);
  EXPECT_EQ(ck::minimum_device_bytes(size), 3500u);
  budget.device_bytes = 3500;
  EXPECT_EQ(ck::slots_from_budget(budget, size).device, 1);
}

TEST(CheckpointBudget, BelowMinimumIsRefusedNamingTheMinimum) {
  ck::StateSize size{1000, 2500};
  ck::MemoryBudget budget{3499, 0, 0};
  try {
    ck::slots_from_budget(budget, size);
    FAIL() << "expected InvalidArgument";
  } catch (const dfluid::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("3500 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ck::slots_from_budget(budget, ck::StateSize{0, 0}), dfluid::InvalidArgument);
  EXPECT_THROW(ck::request_from_budget(10, budget, size), dfluid::InvalidArgument);
}

TEST(CheckpointPlan, BadRequestsAreRefused) {
  EXPECT_THROW(ck::make_plan(request(0, 3, 0)), dfluid::InvalidArgument);
  EXPECT_THROW(ck::make_plan(request(10, 0, 0)), dfluid::InvalidArgument);
  EXPECT_THROW(ck::make_plan(request(10, 2, -1)), dfluid::InvalidArgument);
  ck::PlanRequest r = request(10, 3, 0);
  r.strategy = ck::Strategy::MultiLevel;
  EXPECT_THROW(ck::make_plan(r), dfluid::InvalidArgument);
  r = request(10, 3, 0);
  r.costs.step_seconds = 0;
  EXPECT_THROW(ck::make_plan(r), dfluid::InvalidArgument);
}

TEST(CheckpointPlan, BudgetToPlan) {
  // 1000 steps, device budget for 10 states of 34 MB plus 100 MB of working memory.
  ck::StateSize size{kSmoke128, 100'000'000};
  ck::MemoryBudget budget{size.working_bytes + 10 * kSmoke128 + 123, 0, 0};
  const ck::Plan plan = ck::make_plan(ck::request_from_budget(1000, budget, size));
  const ck::PlanSummary s = run_checked(plan);
  EXPECT_EQ(s.advances, 3636);
  EXPECT_LE(s.peak_device_bytes, budget.device_bytes);
}

TEST(CheckpointPlan, InvalidPlansAreDetected) {
  ck::Plan plan = ck::make_plan(request(20, 4, 0));
  ck::Plan swapped = plan;
  // Reverse two steps out of order.
  for (std::size_t k = 0; k + 1 < swapped.actions.size(); ++k) {
    if (swapped.actions[k].type == ck::ActionType::Reverse) {
      swapped.actions[k].step -= 1;
      break;
    }
  }
  EXPECT_THROW(ck::summarize(swapped), dfluid::Error);
  ck::Plan truncated = plan;
  truncated.actions.pop_back();
  EXPECT_THROW(ck::summarize(truncated), dfluid::Error);
  ck::Plan narrow = plan;
  narrow.slots.device = 2;  // the plan needs 4
  EXPECT_THROW(ck::summarize(narrow), dfluid::Error);
}

TEST(CheckpointPlan, ReportHasAdvancesLine) {
  const ck::Plan plan = ck::make_plan(request(1000, 10, 0));
  const std::string report = ck::describe(ck::summarize(plan), plan);
  EXPECT_NE(report.find("\nadvances: 3636\n"), std::string::npos) << report;
  EXPECT_NE(report.find("adjoint steps: 1000"), std::string::npos) << report;
  EXPECT_NE(report.find("time ratio vs forward: "), std::string::npos) << report;
  const std::string actions = ck::format_actions(plan);
  EXPECT_NE(actions.find("reverse step 999"), std::string::npos);
}

TEST(CheckpointMultiLevel, HostHoldsEveryStateGivesNMinusOneAdvances) {
  for (std::int64_t device : {1, 2, 4, 10}) {
    const ck::Plan plan = ck::make_plan(request(1000, device, 1000));
    EXPECT_EQ(plan.kind, ck::PlanKind::MultiLevel) << device;
    const ck::PlanSummary s = run_checked(plan);
    EXPECT_EQ(s.advances, 999) << device;
    EXPECT_LE(s.predicted_seconds, single_level_seconds(request(1000, device, 1000)));
  }
}

TEST(CheckpointMultiLevel, NeverSlowerThanSingleLevelRevolve) {
  for (std::int64_t n : {2, 7, 50, 300, 1000}) {
    for (std::int64_t device : {1, 2, 3, 8}) {
      for (std::int64_t host : {1, 5, 40, 2000}) {
        for (double bandwidth : {2e8, 2e10, 1e12}) {
          ck::PlanRequest r = request(n, device, host);
          r.costs.host_bandwidth = bandwidth;
          const ck::Plan plan = ck::make_plan(r);
          const ck::PlanSummary s = run_checked(plan);
          EXPECT_LE(s.predicted_seconds, single_level_seconds(r) * (1 + 1e-12))
              << "n=" << n << " device=" << device << " host=" << host << " bw=" << bandwidth;
          if (plan.kind != ck::PlanKind::MultiLevel) {
            EXPECT_EQ(s.advances, ck::numforw(n, device));
          }
        }
      }
    }
  }
}

TEST(CheckpointMultiLevel, FewHostSlotsBeatDeviceOnly) {
  // 1000 steps, 4 device slots, 30 host slots: fewer advances than numforw(1000, 4).
  const ck::Plan plan = ck::make_plan(request(1000, 4, 30));
  ASSERT_EQ(plan.kind, ck::PlanKind::MultiLevel);
  const ck::PlanSummary s = run_checked(plan);
  EXPECT_LT(s.advances, ck::numforw(1000, 4));
  EXPECT_GT(s.stores[1], 0);
  EXPECT_LE(s.peak_held[1], 30);
}

TEST(CheckpointMultiLevel, SlowCopiesUseFewHostCheckpoints) {
  // 0.34 s per copy against 5 ms steps: a few long segments still beat device-only.
  ck::PlanRequest r = request(1000, 10, 1000);
  r.costs.host_bandwidth = 1e8;
  const ck::Plan plan = ck::make_plan(r);
  const ck::PlanSummary s = run_checked(plan);
  EXPECT_LT(s.predicted_seconds, single_level_seconds(r));
  EXPECT_LT(s.stores[1], 20);
}

TEST(CheckpointMultiLevel, SlowCopiesFallBackToDeviceRevolve) {
  ck::PlanRequest r = request(1000, 10, 1000);
  r.costs.host_bandwidth = 1e6;  // 34 s per copy against 5 ms steps: no copy pays off
  const ck::Plan plan = ck::make_plan(r);
  EXPECT_EQ(plan.kind, ck::PlanKind::Revolve);
  EXPECT_EQ(run_checked(plan).advances, 3636);
}

TEST(CheckpointMultiLevel, DiskTakesTheOverflow) {
  ck::PlanRequest r = request(500, 3, 10, 100);
  r.costs.disk_bandwidth = 1e10;
  const ck::Plan plan = ck::make_plan(r);
  ASSERT_EQ(plan.kind, ck::PlanKind::MultiLevel);
  const ck::PlanSummary s = run_checked(plan);
  EXPECT_GT(s.stores[2], 0);
  EXPECT_LT(s.advances, ck::numforw(500, 3));
  // Explicit multi-level, even where device-only would be faster, still runs correctly.
  r.strategy = ck::Strategy::MultiLevel;
  r.costs.disk_bandwidth = 1e6;
  run_checked(ck::make_plan(r));
}

TEST(CheckpointMultiLevel, AsyncCopiesArePrefetched) {
  const ck::Plan plan = ck::make_plan(request(200, 3, 200));
  ASSERT_TRUE(plan.staging);
  dfluid_test::CountingSimulator sim(plan.steps, plan.slots);
  ck::execute_plan(plan, sim);
  EXPECT_EQ(sim.failures, 0) << sim.first_failure;
  EXPECT_GT(sim.prefetches, 0);
  EXPECT_EQ(sim.fences, 2);
  const ck::PlanSummary s = ck::summarize(plan);
  // The staging buffer is one more device state.
  EXPECT_EQ(s.peak_device_bytes, (static_cast<std::size_t>(s.peak_held[0]) + 1) * kSmoke128);
  EXPECT_EQ(s.peak_host_bytes, static_cast<std::size_t>(s.peak_held[1]) * kSmoke128);
}
