// Single-level binomial checkpointing (Revolve): advance counts against the reference.
// Reference: A. Griewank and A. Walther, "Algorithm 799: revolve", ACM TOMS 26(1), 2000: the
// closed form numforw(n, s) = t·n − C(s+t, s+1), its table rows, and the exact recurrence.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "checkpoint_fake_simulator.hpp"
#include "dfluid/checkpoint.hpp"
#include "dfluid/error.hpp"

namespace ck = dfluid::checkpoint;

namespace {

constexpr int kMaxN = 300;
constexpr int kMaxS = 20;

// E(n, s) by the exact recurrence of the reference (memoized DP), E[n][s].
const std::vector<std::vector<std::int64_t>>& recurrence() {
  static const auto table = [] {
    std::vector<std::vector<std::int64_t>> e(kMaxN + 1, std::vector<std::int64_t>(kMaxS + 1, 0));
    for (int n = 1; n <= kMaxN; ++n)
      e[n][1] = std::int64_t{n} * (n - 1) / 2;
    for (int s = 2; s <= kMaxS; ++s) {
      for (int n = 2; n <= kMaxN; ++n) {
        std::int64_t best = -1;
        for (int i = 1; i < n; ++i) {
          const std::int64_t v = i + e[i][s] + e[n - i][s - 1];
          if (best < 0 || v < best) best = v;
        }
        e[n][s] = best;
      }
    }
    return e;
  }();
  return table;
}

ck::Plan revolve_plan(std::int64_t n, std::int64_t s) {
  ck::PlanRequest r;
  r.steps = n;
  r.slots.device = s;
  r.strategy = ck::Strategy::Revolve;
  return ck::make_plan(r);
}

struct Row {
  std::int64_t n, s, t, numforw;
};
// numforw(n, s) for rows computed from the closed form of Griewank & Walther (2000).
const Row kTable[] = {{10, 3, 2, 15},    {10, 1, 9, 45},      {10, 9, 1, 9},
                      {100, 10, 3, 222}, {1000, 10, 4, 3636}, {10000, 20, 4, 37976}};

}  // namespace

TEST(RevolveBinomial, TableRows) {
  for (const Row& row : kTable) {
    EXPECT_EQ(ck::repetitions(row.n, row.s), row.t) << "n=" << row.n << " s=" << row.s;
    EXPECT_EQ(ck::numforw(row.n, row.s), row.numforw) << "n=" << row.n << " s=" << row.s;
  }
}

TEST(RevolveBinomial, EdgeCases) {
  for (std::int64_t n = 1; n <= 50; ++n) {
    EXPECT_EQ(ck::numforw(n, 1), n * (n - 1) / 2);
    for (std::int64_t s = std::max<std::int64_t>(1, n - 1); s <= n + 3; ++s) {
      EXPECT_EQ(ck::numforw(n, s), n - 1) << "n=" << n << " s=" << s;
    }
  }
  EXPECT_EQ(ck::numforw(100000, 1), std::int64_t{100000} * 99999 / 2);
  EXPECT_THROW(ck::numforw(0, 3), dfluid::InvalidArgument);
  EXPECT_THROW(ck::numforw(5, 0), dfluid::InvalidArgument);
}

TEST(RevolveBinomial, ClosedFormMatchesRecurrence) {
  const auto& e = recurrence();
  for (int n = 1; n <= kMaxN; ++n) {
    for (int s = 1; s <= kMaxS; ++s) {
      ASSERT_EQ(ck::numforw(n, s), e[n][s]) << "n=" << n << " s=" << s;
    }
  }
}

// The plan for every 1 ≤ n ≤ 300, 1 ≤ s ≤ 20, run on the counting fake simulator.
TEST(RevolvePlan, AdvancesEqualRecurrenceForAllSmallCases) {
  const auto& e = recurrence();
  for (int n = 1; n <= kMaxN; ++n) {
    for (int s = 1; s <= kMaxS; ++s) {
      const ck::Plan plan = revolve_plan(n, s);
      ck::SlotCounts capacity;
      capacity.device = s;
      dfluid_test::CountingSimulator sim(n, capacity);
      ck::execute_plan(plan, sim);
      ASSERT_EQ(sim.failures, 0) << sim.first_failure << " n=" << n << " s=" << s;
      ASSERT_TRUE(sim.complete()) << "n=" << n << " s=" << s;
      ASSERT_EQ(sim.advances, e[n][s]) << "n=" << n << " s=" << s;
      ASSERT_LE(sim.peak_held[0], s) << "n=" << n << " s=" << s;
      // The replay in summarize() agrees with the fake simulator.
      const ck::PlanSummary summary = ck::summarize(plan);
      ASSERT_EQ(summary.advances, sim.advances);
      ASSERT_EQ(summary.reverses, n);
      ASSERT_EQ(summary.peak_held[0], sim.peak_held[0]);
    }
  }
}

TEST(RevolvePlan, TableRowsOnFakeSimulator) {
  for (const Row& row : kTable) {
    const ck::Plan plan = revolve_plan(row.n, row.s);
    ck::SlotCounts capacity;
    capacity.device = row.s;
    dfluid_test::CountingSimulator sim(row.n, capacity);
    ck::execute_plan(plan, sim);
    EXPECT_EQ(sim.failures, 0) << sim.first_failure;
    EXPECT_TRUE(sim.complete());
    EXPECT_EQ(sim.advances, row.numforw) << "n=" << row.n << " s=" << row.s;
    EXPECT_LE(sim.peak_held[0], row.s);
  }
}

TEST(RevolvePlan, LargePlansAreFast) {
  const auto t0 = std::chrono::steady_clock::now();
  const ck::Plan p1 = revolve_plan(1000, 10);
  const auto t1 = std::chrono::steady_clock::now();
  const ck::Plan p2 = revolve_plan(100000, 20);
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_LT(std::chrono::duration<double>(t1 - t0).count(), 0.05);
  EXPECT_LT(std::chrono::duration<double>(t2 - t1).count(), 2.0);
  EXPECT_EQ(ck::summarize(p1).advances, 3636);
  EXPECT_EQ(ck::summarize(p2).advances, ck::numforw(100000, 20));
  // Store-all over many steps: no recursion depth problem.
  const ck::Plan p3 = revolve_plan(200000, 200000);
  EXPECT_EQ(ck::summarize(p3).advances, 199999);
}

TEST(RevolvePlan, DegenerateKinds) {
  ck::PlanRequest r;
  r.steps = 50;
  r.slots.device = 49;
  ck::Plan all = ck::make_plan(r);
  EXPECT_EQ(all.kind, ck::PlanKind::StoreAll);
  EXPECT_EQ(ck::summarize(all).advances, 49);
  EXPECT_EQ(ck::summarize(all).peak_held[0], 49);

  r.strategy = ck::Strategy::RecomputeFromStart;
  ck::Plan rec = ck::make_plan(r);
  EXPECT_EQ(rec.kind, ck::PlanKind::RecomputeFromStart);
  EXPECT_EQ(ck::summarize(rec).advances, 50 * 49 / 2);
  EXPECT_EQ(ck::summarize(rec).peak_held[0], 1);

  r.strategy = ck::Strategy::StoreAll;
  r.slots.device = 48;
  EXPECT_THROW(ck::make_plan(r), dfluid::InvalidArgument);

  r.strategy = ck::Strategy::Auto;
  r.slots.device = 1;
  EXPECT_EQ(ck::make_plan(r).kind, ck::PlanKind::RecomputeFromStart);

  r.steps = 1;
  const ck::Plan one = ck::make_plan(r);
  ASSERT_EQ(one.actions.size(), 1u);
  EXPECT_EQ(one.actions[0].type, ck::ActionType::Reverse);
}
