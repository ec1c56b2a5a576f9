// Context::counters(): what the work on a context costs the GPU (kernel launches, host
// waits, allocations, bytes across the bus), counted on the CPU path as the CUDA path would
// perform it. Exact counts for small call sequences, each reasoned from the code; then the
// counts of a warm Simulation step and step_adjoint, checked for stability and printed so
// that later work can turn them into budgets.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/simulation.hpp"
#include "counters_test_util.hpp"
#include "simulation_test_util.hpp"

using namespace dfluid;

namespace {

void expect_events(const ContextCounters& c, std::int64_t launches, std::int64_t waits,
                   std::int64_t allocs, std::int64_t frees, std::int64_t to_dev,
                   std::int64_t to_host) {
  EXPECT_EQ(c.launches, launches);
  EXPECT_EQ(c.host_waits, waits);
  EXPECT_EQ(c.allocations, allocs);
  EXPECT_EQ(c.frees, frees);
  EXPECT_EQ(c.bytes_to_device, to_dev);
  EXPECT_EQ(c.bytes_to_host, to_host);
}

std::string describe(const ContextCounters& c) {
  return "launches=" + std::to_string(c.launches) + " host_waits=" + std::to_string(c.host_waits) +
         " allocations=" + std::to_string(c.allocations) + " frees=" + std::to_string(c.frees) +
         " bytes_to_device=" + std::to_string(c.bytes_to_device) +
         " bytes_to_host=" + std::to_string(c.bytes_to_host);
}

const Grid kGrid = Grid::make_2d(8, 8, 1.0);  // 64 cells
constexpr std::int64_t kCells = 64;
constexpr std::size_t kScratchBytes = sizeof(double) * (1024 + 1);  // a reduction's scratch

}  // namespace

TEST(ContextCounters, FreshContextCountsNothing) {
  Context ctx = Context::cpu();
  expect_events(ctx.counters(), 0, 0, 0, 0, 0, 0);
  EXPECT_EQ(ctx.counters().bytes_held, 0u);
  EXPECT_EQ(ctx.counters().peak_bytes, 0u);
}

TEST(ContextCounters, FieldIsOneAllocationAndOneFree) {
  Context ctx = Context::cpu();
  {
    // Field -> one Buffer -> one allocate_bytes on the context; the zero fill is a memset
    // (cudaMemsetAsync on the GPU), not a kernel: no launch.
    Field<float> f(ctx, kGrid);
    expect_events(ctx.counters(), 0, 0, 1, 0, 0, 0);
    EXPECT_EQ(ctx.counters().bytes_held, std::size_t(kCells) * sizeof(float));
  }
  // ~Buffer -> one deallocate_bytes.
  expect_events(ctx.counters(), 0, 0, 1, 1, 0, 0);
  EXPECT_EQ(ctx.counters().bytes_held, 0u);
  EXPECT_EQ(ctx.counters().peak_bytes, std::size_t(kCells) * sizeof(float));
}

TEST(ContextCounters, FillIsOneLaunchAndNoWait) {
  Context ctx = Context::cpu();
  Field<float> f(ctx, kGrid);
  ctx.reset_counters();
  fill(ctx, f, 2.0f);  // one for_each_cell
  expect_events(ctx.counters(), 1, 0, 0, 0, 0, 0);
  axpy(ctx, 1.0f, f, f);  // one for_each_cell
  scale(ctx, f, 0.5f);    // one for_each_cell
  expect_events(ctx.counters(), 3, 0, 0, 0, 0, 0);
}

TEST(ContextCounters, ReductionToTheHostIsTwoLaunchesAndOneWait) {
  Context ctx = Context::cpu();
  Field<float> a(ctx, kGrid), b(ctx, kGrid);
  fill(ctx, a, 1.0f);
  fill(ctx, b, 2.0f);
  ctx.reset_counters();
  // reduce_cells: on the GPU reduce_cells_kernel + reduce_partials_kernel (cuda/core/exec.cpp),
  // then the 8-byte result is copied to pinned host memory and the stream synchronized.
  // The first reduction on a context also allocates its scratch (1024 block partials + the
  // result, gpu_reduce_scratch): one allocation of 8200 bytes, counted on the CPU path too.
  const std::size_t held = ctx.counters().bytes_held;
  EXPECT_EQ(sum(ctx, a), double(kCells));
  expect_events(ctx.counters(), 2, 1, 1, 0, 0, 8);
  EXPECT_EQ(ctx.counters().bytes_held, held + kScratchBytes);
  EXPECT_EQ(dot(ctx, a, b), 2.0 * double(kCells));  // the scratch is reused
  expect_events(ctx.counters(), 4, 2, 1, 0, 0, 16);
  EXPECT_EQ(max_abs(ctx, b), 2.0);
  expect_events(ctx.counters(), 6, 3, 1, 0, 0, 24);
}

TEST(ContextCounters, CopiesAcrossTheBusCountBytesAndWaits) {
  Context ctx = Context::cpu();
  Field<float> f(ctx, kGrid), g(ctx, kGrid);
  ctx.reset_counters();
  // The field lives in the context's memory space (device memory on the GPU path):
  // assign is one host-to-device copy, and copy_bytes synchronizes after a copy with
  // pageable host memory on one side: one host wait.
  f.assign(ctx, std::vector<float>(std::size_t(kCells), 3.0f));
  expect_events(ctx.counters(), 0, 1, 0, 0, kCells * 4, 0);
  // to_vector: one device-to-host copy, one wait.
  const std::vector<float> v = f.to_vector(ctx);
  EXPECT_EQ(v[5], 3.0f);
  expect_events(ctx.counters(), 0, 2, 0, 0, kCells * 4, kCells * 4);
  // copy between two fields of the context's space: device to device, no wait, no bytes
  // across the bus, and no kernel (cudaMemcpyAsync).
  copy(ctx, f, g);
  expect_events(ctx.counters(), 0, 2, 0, 0, kCells * 4, kCells * 4);
}

TEST(ContextCounters, StridedToVectorWaitsOncePerRow) {
  Context ctx = Context::cpu();
  // A 4x3 view with row stride 6 over caller memory in the context's space: to_vector
  // copies row by row (field.cpp), one copy_bytes and so one host wait per row.
  std::vector<float> storage(6 * 3, 1.0f);
  Field<float> w = Field<float>::wrap(Grid::make_2d(4, 3, 1.0), Location::Cell, storage.data(),
                                      MemorySpace::Host, 6);
  ctx.reset_counters();
  const std::vector<float> v = w.to_vector(ctx);
  EXPECT_EQ(v.size(), 12u);
  expect_events(ctx.counters(), 0, 3, 0, 0, 0, 12 * 4);
}

TEST(ContextCounters, SynchronizeIsOneHostWait) {
  Context ctx = Context::cpu();
  ctx.synchronize();
  expect_events(ctx.counters(), 0, 1, 0, 0, 0, 0);
}

TEST(ContextCounters, TemporaryPoolGrowsOnceThenReuses) {
  Context ctx = Context::cpu();
  {
    detail::TempBuffer t(ctx, 1000);  // the pool is empty: one allocation
  }
  expect_events(ctx.counters(), 0, 0, 1, 0, 0, 0);
  EXPECT_EQ(ctx.counters().bytes_held, 1000u);  // the block stays in the pool
  {
    detail::TempBuffer t(ctx, 800);  // the free 1000-byte block fits: no allocation
  }
  expect_events(ctx.counters(), 0, 0, 1, 0, 0, 0);
}

TEST(ContextCounters, ResetZeroesCountsAndKeepsBytesHeld) {
  Context ctx = Context::cpu();
  Field<double> f(ctx, kGrid);
  fill(ctx, f, 1.0);
  (void)sum(ctx, f);
  ctx.reset_counters();
  expect_events(ctx.counters(), 0, 0, 0, 0, 0, 0);
  // The field and the reduction scratch stay held; the peak restarts from them.
  EXPECT_EQ(ctx.counters().bytes_held, std::size_t(kCells) * sizeof(double) + kScratchBytes);
  EXPECT_EQ(ctx.counters().peak_bytes, ctx.counters().bytes_held);
}

TEST(ContextCounters, CopiesOfAContextShareCountersTwoContextsDoNot) {
  Context a = Context::cpu();
  Context a2 = a;  // a copy: the same shared state
  Context b = Context::cpu();
  Field<float> f(a2, kGrid);
  fill(a2, f, 1.0f);
  expect_events(a.counters(), 1, 0, 1, 0, 0, 0);
  expect_events(b.counters(), 0, 0, 0, 0, 0, 0);
  a.reset_counters();
  expect_events(a2.counters(), 0, 0, 0, 0, 0, 0);
}

// ---- measurements of a warm step (budgets later) ----

namespace {

void report(const std::string& what, const ContextCounters& c) {
  std::cout << "[counters] " << what << ": " << describe(c) << "\n";
  ::testing::Test::RecordProperty(what + ".launches", std::to_string(c.launches));
  ::testing::Test::RecordProperty(what + ".host_waits", std::to_string(c.host_waits));
  ::testing::Test::RecordProperty(what + ".allocations", std::to_string(c.allocations));
  ::testing::Test::RecordProperty(what + ".frees", std::to_string(c.frees));
}

}  // namespace

// The counts of one warm Simulation<float>::step and step_adjoint on a 32x32 2D grid, both
// run twice from the same input: the counter deltas must be identical (the counts depend
// only on the call sequence, and the pressure solve takes the same iterations from the same
// input). The numbers are printed, not budgeted yet: allocations in a warm step are later
// work, and the README's "Performance" section quotes them.
TEST(ContextCounters, WarmStepAndAdjointCountsAreStable) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(32, 32, 1.0);
  Simulation<float> sim(ctx, g, test::smoke_config());
  SmokeState<float> state(ctx, g), input(ctx, g);
  std::vector<float> smoke(std::size_t(g.cells()), 0.0f);
  for (std::size_t i = 0; i < smoke.size(); i += 7)
    smoke[i] = 1.0f;
  state.scalars[0].assign(ctx, smoke);
  sim.step(state);  // warm-up: the pool and solver scratch grow here

  auto restore = [&] {
    copy(ctx, input.velocity, state.velocity);
    copy(ctx, input.scalars[0], state.scalars[0]);
    copy(ctx, input.pressure, state.pressure);
  };
  copy(ctx, state.velocity, input.velocity);
  copy(ctx, state.scalars[0], input.scalars[0]);
  copy(ctx, state.pressure, input.pressure);

  ContextCounters step[2];
  for (int r = 0; r < 2; ++r) {
    restore();
    const ContextCounters before = ctx.counters();
    sim.step(state);
    step[r] = test::counters_delta(before, ctx.counters());
  }
  EXPECT_EQ(describe(step[0]), describe(step[1]));
  EXPECT_GT(step[0].launches, 0);
  EXPECT_GT(step[0].host_waits, 0);
  EXPECT_EQ(step[0].allocations, step[0].frees);  // nothing kept from a warm step
  report("warm_step_2d_32x32", step[0]);

  SmokeGradient<float> grad(ctx, g, 1);
  auto seed = [&] {
    fill(ctx, grad.velocity, 0.25f);
    fill(ctx, grad.scalars[0], 1.0f);
  };
  seed();
  sim.step_adjoint(input, {}, grad);  // warm-up: replay buffers, pool blocks
  ContextCounters adj[2];
  for (int r = 0; r < 2; ++r) {
    seed();
    const ContextCounters before = ctx.counters();
    sim.step_adjoint(input, {}, grad);
    adj[r] = test::counters_delta(before, ctx.counters());
  }
  EXPECT_EQ(describe(adj[0]), describe(adj[1]));
  EXPECT_GT(adj[0].launches, 0);
  EXPECT_EQ(adj[0].allocations, adj[0].frees);
  report("warm_step_adjoint_2d_32x32", adj[0]);
}

namespace {

/// Sets DFLUID_SYNC_LAUNCHES (nullptr: unsets it) for its lifetime, then restores it.
class SyncLaunchesEnv {
 public:
  explicit SyncLaunchesEnv(const char* value) {
    if (const char* old = std::getenv("DFLUID_SYNC_LAUNCHES")) saved_ = old, had_ = true;
    if (value)
      setenv("DFLUID_SYNC_LAUNCHES", value, 1);
    else
      unsetenv("DFLUID_SYNC_LAUNCHES");
  }
  ~SyncLaunchesEnv() {
    if (had_)
      setenv("DFLUID_SYNC_LAUNCHES", saved_.c_str(), 1);
    else
      unsetenv("DFLUID_SYNC_LAUNCHES");
  }

 private:
  std::string saved_;
  bool had_ = false;
};

/// Counters of one warm step of the 32x32 smoke problem on a fresh context made under
/// DFLUID_SYNC_LAUNCHES=`env`.
ContextCounters warm_step_counts(const char* env) {
  SyncLaunchesEnv set(env);
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(32, 32, 1.0);
  Simulation<float> sim(ctx, g, test::smoke_config());
  SmokeState<float> state(ctx, g);
  std::vector<float> smoke(std::size_t(g.cells()), 0.0f);
  for (std::size_t i = 0; i < smoke.size(); i += 7)
    smoke[i] = 1.0f;
  state.scalars[0].assign(ctx, smoke);
  sim.step(state);  // warm-up
  const ContextCounters before = ctx.counters();
  sim.step(state);
  return test::counters_delta(before, ctx.counters());
}

}  // namespace

TEST(ContextSyncLaunches, ReadFromTheEnvironmentWhenAContextIsMade) {
  {
    SyncLaunchesEnv set(nullptr);
    EXPECT_FALSE(Context::cpu().sync_launches());
  }
  {
    SyncLaunchesEnv set("0");
    EXPECT_FALSE(Context::cpu().sync_launches());
  }
  {
    SyncLaunchesEnv set("1");
    Context ctx = Context::cpu();
    EXPECT_TRUE(ctx.sync_launches());
    Context copy = ctx;  // a copy shares the mode
    EXPECT_TRUE(copy.sync_launches());
  }
  // Read when the context is made, not later.
  SyncLaunchesEnv set("1");
  Context made_on = Context::cpu();
  {
    SyncLaunchesEnv off("0");
    EXPECT_TRUE(made_on.sync_launches());
    EXPECT_FALSE(Context::cpu().sync_launches());
  }
}

TEST(ContextSyncLaunches, BadValueIsOneLineNamingTheVariableAndTheValues) {
  for (const char* bad : {"yes", "2", "true", " 1"}) {
    SyncLaunchesEnv set(bad);
    try {
      Context::cpu();
      ADD_FAILURE() << "DFLUID_SYNC_LAUNCHES=" << bad << " was accepted";
    } catch (const InvalidArgument& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("DFLUID_SYNC_LAUNCHES"), std::string::npos) << m;
      EXPECT_NE(m.find(bad), std::string::npos) << m;
      EXPECT_NE(m.find("use 0"), std::string::npos) << m;
      EXPECT_NE(m.find(" or 1"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

// In the launch-checking mode every kernel launch is followed by a wait on the stream (GPU
// path), so a warm step performs the same launches and one more host wait per launch; the
// CPU path counts it the same way.
TEST(ContextSyncLaunches, EveryLaunchBecomesAHostWait) {
  const ContextCounters normal = warm_step_counts("0");
  const ContextCounters synced = warm_step_counts("1");
  ASSERT_GT(normal.launches, 0);
  EXPECT_EQ(synced.launches, normal.launches);
  EXPECT_EQ(synced.host_waits, normal.host_waits + normal.launches);
  EXPECT_EQ(synced.bytes_to_host, normal.bytes_to_host);
  EXPECT_EQ(synced.allocations, normal.allocations);
}
