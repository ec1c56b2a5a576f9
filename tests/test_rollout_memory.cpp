// Allocations and peak memory of gradient evaluations, counted with Context::counters() on
// the CPU path (which counts what the GPU path allocates and holds):
//  * a warm Simulation::step and step_adjoint allocate and free nothing, also with MacCormack
//    velocity advection and implicit diffusion (their temporaries come from the context's
//    pool, sized by Simulation::reserve_adjoint);
//  * a second Rollout::run into the same result allocates and frees nothing, store-all and
//    checkpointed (device slots; device + pinned host slots), 2D and 3D, and gives the same
//    bits as the first;
//  * checkpoint slots are allocated before the first step, and a failure names the budget;
//  * the peak of a 64^3 checkpointed gradient stays within the device budget given to the
//    planner, and the plan's estimate of that peak matches the measured one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/rollout.hpp"
#include "simulation_test_util.hpp"

using namespace dfluid;
namespace ck = dfluid::checkpoint;

namespace {

/// A step with every temporary the pool serves: MacCormack for scalars (the default) and
/// velocity, implicit diffusion of velocity and scalars, buoyancy.
StepConfig pooled_config() {
  StepConfig cfg = test::smoke_config();
  cfg.velocity_advection.scheme = AdvectionScheme::MacCormack;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.05;
  cfg.scalar_diffusivity = 0.02;
  cfg.diffusion_solver.rel_tol = 1e-6;
  return cfg;
}

/// Smoke in a block around the lower middle of the box, a small swirl in the velocity.
template <class T>
void fill_state(const Context& ctx, SmokeState<T>& s) {
  const Grid& g = s.grid();
  std::vector<T> rho(std::size_t(g.cells()), T(0));
  const int nz = g.dim == 3 ? g.n[2] : 1;
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < g.n[1]; ++j)
      for (int i = 0; i < g.n[0]; ++i)
        if (i > g.n[0] / 4 && i < 3 * g.n[0] / 4 && j > g.n[1] / 8 && j < g.n[1] / 2)
          rho[(std::size_t(k) * g.n[1] + j) * g.n[0] + i] = T(1);
  s.scalars[0].assign(ctx, rho);
  for (int a = 0; a < g.dim; ++a) {
    std::vector<T> u(std::size_t(s.velocity[a].size()));
    for (std::size_t c = 0; c < u.size(); ++c)
      u[c] = T(0.2) * T((c * 7 + std::size_t(a) * 3) % 11) / T(11) - T(0.1);
    s.velocity[a].assign(ctx, u);
  }
}

/// What one rollout needs from its caller, allocated on `ctx` (a context of its own in the
/// peak test, so that the simulation's context counts only what dfluid holds).
template <class T>
struct Inputs {
  SmokeState<T> initial;
  std::vector<MacVelocity<T>> forces;
  std::vector<Field<T>> sources;
  Field<T> target;
  std::vector<StepControls<T>> controls;
  RolloutLosses<T> losses;
  Inputs(const Context& ctx, const Grid& g, int steps)
      : initial(ctx, g), target(ctx, g, Location::Cell) {
    fill_state(ctx, initial);
    std::vector<T> t(std::size_t(g.cells()), T(0));
    for (std::size_t c = 0; c < t.size(); c += 3)
      t[c] = T(0.5);
    target.assign(ctx, t);
    for (int k = 0; k < steps; ++k) {
      forces.emplace_back(ctx, g);
      for (int a = 0; a < g.dim; ++a)
        fill(ctx, forces.back()[a], T(0.01) * T(k + 1));
      sources.emplace_back(ctx, g, Location::Cell);
      fill(ctx, sources.back(), T(0.02));
    }
    for (int k = 0; k < steps; ++k) {
      StepControls<T> c;
      c.force = &forces[std::size_t(k)];
      c.sources = {&sources[std::size_t(k)]};
      controls.push_back(c);
    }
    losses.keyframes.push_back({"final", steps, 0, &target, 1.0, nullptr});
    losses.keyframes.push_back({"middle", steps / 2, 0, &target, 0.5, nullptr});
    losses.force_effort = 1e-3;
    losses.source_effort = 1e-3;
  }
};

template <class T>
std::vector<T> values(const Context& ctx, const Field<T>& f) {
  return f.to_vector(ctx);
}

/// Bitwise equality of two results' loss and gradients.
template <class T>
void expect_same_bits(const Context& ctx, const RolloutResult<T>& a, const RolloutResult<T>& b,
                      const std::string& what) {
  EXPECT_EQ(std::memcmp(&a.loss, &b.loss, sizeof(double)), 0) << what;
  EXPECT_EQ(std::memcmp(&a.grad_buoyancy, &b.grad_buoyancy, sizeof(double)), 0) << what;
  const int dim = a.grad_initial.velocity.dim();
  for (int d = 0; d < dim; ++d)
    EXPECT_EQ(values(ctx, a.grad_initial.velocity[d]), values(ctx, b.grad_initial.velocity[d]))
        << what;
  EXPECT_EQ(values(ctx, a.grad_initial.scalars[0]), values(ctx, b.grad_initial.scalars[0])) << what;
  ASSERT_EQ(a.grad_force.size(), b.grad_force.size()) << what;
  for (std::size_t k = 0; k < a.grad_force.size(); ++k)
    for (int d = 0; d < dim; ++d)
      EXPECT_EQ(values(ctx, a.grad_force[k][d]), values(ctx, b.grad_force[k][d])) << what;
  for (std::size_t k = 0; k < a.grad_source.size(); ++k)
    EXPECT_EQ(values(ctx, a.grad_source[k][0]), values(ctx, b.grad_source[k][0])) << what;
  EXPECT_EQ(values(ctx, a.final_state.scalars[0]), values(ctx, b.final_state.scalars[0])) << what;
}

void expect_no_allocation(const ContextCounters& before, const ContextCounters& after,
                          const std::string& what) {
  EXPECT_EQ(after.allocations - before.allocations, 0) << what;
  EXPECT_EQ(after.frees - before.frees, 0) << what;
  EXPECT_EQ(after.bytes_held, before.bytes_held) << what;
}

template <class T>
void check_warm_step(const Grid& g, const StepConfig& cfg, const std::string& what) {
  Context ctx = Context::cpu();
  Simulation<T> sim(ctx, g, cfg);
  SmokeState<T> state(ctx, g), input(ctx, g);
  fill_state(ctx, state);
  SmokeGradient<T> grad(ctx, g, 1);
  sim.step(state);  // cold: the pool takes the implicit solves' blocks
  ContextCounters c0 = ctx.counters();
  sim.step(state);
  expect_no_allocation(c0, ctx.counters(), what + ": warm step");

  detail::copy_bytes(ctx, input.scalars[0].data(), ctx.memory_space(), state.scalars[0].data(),
                     ctx.memory_space(), sizeof(T) * std::size_t(g.cells()));
  for (int a = 0; a < g.dim; ++a)
    copy(ctx, state.velocity[a], input.velocity[a]);
  fill(ctx, grad.scalars[0], T(1));
  sim.step_adjoint(input, {}, grad);  // cold: replay buffers, the pool's further blocks
  const SimulationMemory est = Simulation<T>::estimate_memory(ctx, g, cfg, 1);
  EXPECT_EQ(detail::temp_pool_bytes(ctx), est.pool) << what;
  c0 = ctx.counters();
  fill(ctx, grad.scalars[0], T(1));
  sim.step_adjoint(input, {}, grad);
  expect_no_allocation(c0, ctx.counters(), what + ": warm step_adjoint");
  c0 = ctx.counters();
  sim.step(state);
  expect_no_allocation(c0, ctx.counters(), what + ": step after step_adjoint");
}

}  // namespace

TEST(RolloutMemory, WarmStepAndAdjointAllocateNothing) {
  check_warm_step<float>(Grid::make_2d(24, 20, 1.0), test::smoke_config(), "2D default");
  check_warm_step<float>(Grid::make_2d(24, 20, 1.0), pooled_config(), "2D pooled");
  check_warm_step<double>(Grid::make_3d(10, 12, 8, 1.0), pooled_config(), "3D pooled");
}

TEST(RolloutMemory, PoolIsTrimmedToTheEstimate) {
  // Blocks another operator left in the pool are freed by reserve_adjoint: the pool then holds
  // what estimate_memory() counts, no more.
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 16, 1.0);
  Simulation<float> sim(ctx, g, pooled_config());
  { detail::TempBuffer big(ctx, 1 << 20); }
  EXPECT_EQ(detail::temp_pool_bytes(ctx), std::size_t{1} << 20);
  sim.reserve_adjoint(1);
  const SimulationMemory est = Simulation<float>::estimate_memory(ctx, g, pooled_config(), 1);
  EXPECT_EQ(detail::temp_pool_bytes(ctx), est.pool);
  EXPECT_LT(est.pool, std::size_t{1} << 20);
  // In place: nothing more happens.
  const ContextCounters c0 = ctx.counters();
  sim.reserve_adjoint(1);
  expect_no_allocation(c0, ctx.counters(), "second reserve_adjoint");
}

namespace {

template <class T>
void check_warm_rollout(const Grid& g, int steps, const RolloutOptions& opt,
                        const std::string& what) {
  Context ctx = Context::cpu();
  Simulation<T> sim(ctx, g, pooled_config());
  Inputs<T> in(ctx, g, steps);
  Rollout<T> rollout(sim);
  RolloutResult<T> r;
  rollout.run(in.initial, steps, in.controls, in.losses, opt, r);
  const RolloutResult<T> first = rollout.run(in.initial, steps, in.controls, in.losses, opt);
  const ContextCounters c0 = ctx.counters();
  rollout.run(in.initial, steps, in.controls, in.losses, opt, r);
  expect_no_allocation(c0, ctx.counters(), what + ": warm Rollout::run");
  expect_same_bits(ctx, first, r, what);
  if (opt.checkpointing.enabled) {
    ASSERT_TRUE(r.checkpointing.has_value()) << what;
    EXPECT_EQ(r.checkpointing->performed.advances, r.checkpointing->summary.advances) << what;
  }
}

RolloutOptions revolve(int device_slots) {
  RolloutOptions o;
  o.checkpointing.enabled = true;
  o.checkpointing.strategy = ck::Strategy::Revolve;
  o.checkpointing.slots.device = device_slots;
  return o;
}

RolloutOptions two_level(int device_slots, int host_slots) {
  RolloutOptions o = revolve(device_slots);
  o.checkpointing.strategy = ck::Strategy::MultiLevel;
  o.checkpointing.slots.host = host_slots;
  return o;
}

}  // namespace

TEST(RolloutMemory, WarmGradientAllocatesNothing2D) {
  const Grid g = Grid::make_2d(20, 16, 1.0);
  check_warm_rollout<float>(g, 6, RolloutOptions{}, "2D store-all");
  check_warm_rollout<float>(g, 6, revolve(2), "2D revolve");
  check_warm_rollout<float>(g, 8, two_level(3, 2), "2D device + host");
}

TEST(RolloutMemory, WarmGradientAllocatesNothing3D) {
  const Grid g = Grid::make_3d(8, 10, 6, 1.0);
  check_warm_rollout<double>(g, 4, RolloutOptions{}, "3D store-all");
  check_warm_rollout<double>(g, 5, revolve(2), "3D revolve");
  check_warm_rollout<double>(g, 6, two_level(3, 2), "3D device + host");
}

namespace {

// An allocator hook that refuses the allocations of exactly `bytes` after the first `allow`.
struct Refuse {
  static std::size_t bytes, allow, seen;
  static void* allocate(std::size_t n, MemorySpace s, void*) {
    if (n == bytes && seen++ >= allow) return nullptr;
    return default_allocator().allocate(n, s, nullptr);
  }
  static void deallocate(void* p, std::size_t n, MemorySpace s, void*) {
    default_allocator().deallocate(p, n, s, nullptr);
  }
};
std::size_t Refuse::bytes = 0, Refuse::allow = 0, Refuse::seen = 0;

}  // namespace

TEST(RolloutMemory, HostSlotsAreAllocatedAndCheckedBeforeTheFirstStep) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 16, 1.0);
  const int steps = 8;
  Simulation<float> sim(ctx, g, test::smoke_config());
  Inputs<float> in(ctx, g, steps);
  Rollout<float> rollout(sim);
  RolloutOptions opt = two_level(3, 2);
  opt.checkpointing.slots = {};
  const ck::StateSize size = rollout.state_size(in.initial, steps, opt);
  opt.checkpointing.budget.device_bytes = size.working_bytes + 3 * size.state_bytes;
  opt.checkpointing.budget.host_bytes = 2 * size.state_bytes;
  const RolloutPlan plan = rollout.plan(in.initial, steps, opt);
  ASSERT_GT(plan.summary.stores[int(ck::Level::Host)], 0);
  // The slots are allocated in a row, device slots (and staging) first: refuse the first
  // host slot. Nothing of a step may have run when the error comes.
  Refuse::bytes = size.state_bytes;
  Refuse::allow = std::size_t(plan.plan.slots.device);
  Refuse::seen = 0;
  const ContextCounters c0 = ctx.counters();
  set_allocator(Allocator{&Refuse::allocate, &Refuse::deallocate, nullptr});
  try {
    rollout.run(in.initial, steps, in.controls, in.losses, opt);
    set_allocator(default_allocator());
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    set_allocator(default_allocator());
    const std::string what = e.what();
    EXPECT_NE(what.find("host checkpoint slot(s)"), std::string::npos) << what;
    EXPECT_NE(what.find("CheckpointOptions::budget.host_bytes = " +
                        format_bytes(opt.checkpointing.budget.host_bytes)),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("; lower CheckpointOptions::budget.host_bytes"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_GT(Refuse::seen, Refuse::allow);
  EXPECT_EQ(ctx.counters().launches, c0.launches);  // no step, no loss, no copy ran
  // With the hook back, the same rollout runs.
  const RolloutResult<float> r = rollout.run(in.initial, steps, in.controls, in.losses, opt);
  EXPECT_EQ(r.checkpointing->performed.advances, r.checkpointing->summary.advances);
}

TEST(RolloutMemory, PeakWithinBudget64Cubed) {
#if defined(__SANITIZE_ADDRESS__)
  // 43 s under ASan/UBSan on CI's 2 cores, most of CI's margin; the Release run keeps it, and
  // RolloutCheckpoint.MemoryStaysWithinThePlannedPeak checks the same accounting here.
  GTEST_SKIP() << "Release-only: the 64^3 peak test (the sanitizer run checks smaller sizes)";
#endif
  // A checkpointed gradient of a 64^3 float smoke rollout on a budget of the working memory
  // plus 3 states (Revolve, 3 slots for 4 steps). Everything the simulation and the rollout
  // hold is on `ctx` (since its creation); the caller's inputs are on a context of their own.
  Context ctx = Context::cpu();
  Context caller = Context::cpu();
  const Grid g = Grid::make_3d(64, 64, 64, 1.0);
  const int steps = 4;
  StepConfig cfg = test::smoke_config();
  Simulation<float> sim(ctx, g, cfg);
  Rollout<float> rollout(sim);
  Inputs<float> in(caller, g, steps);
  RolloutOptions opt;
  opt.checkpointing.enabled = true;
  opt.checkpointing.strategy = ck::Strategy::Revolve;
  const ck::StateSize size = rollout.state_size(in.initial, steps, opt);
  opt.checkpointing.budget.device_bytes = size.working_bytes + 3 * size.state_bytes;
  const RolloutPlan plan = rollout.plan(in.initial, steps, opt);
  EXPECT_EQ(plan.plan.slots.device, 3);
  EXPECT_LE(plan.summary.peak_device_bytes, opt.checkpointing.budget.device_bytes);
  const RolloutResult<float> r = rollout.run(in.initial, steps, in.controls, in.losses, opt);
  const std::size_t peak = ctx.counters().peak_bytes;
  std::cout << "64^3 float, " << steps << " steps, Revolve: budget "
            << opt.checkpointing.budget.device_bytes << " bytes, estimated peak "
            << plan.summary.peak_device_bytes << " bytes, measured peak " << peak << " bytes\n";
  EXPECT_LE(peak, opt.checkpointing.budget.device_bytes);
  // The estimate is the measured peak plus the user-loss gradient (velocity + density), which
  // it counts but the rollout allocates only for a user loss: it neither misses a temporary
  // nor wastes the budget.
  // The run also holds its loss-value slots (8 bytes per term reduced on the device: 2
  // keyframes, per step 3 force components and 1 source effort, and the buoyancy gradient),
  // which the estimate leaves out: their number depends on the losses, which it does not see.
  const std::size_t user_grad = sizeof(float) * std::size_t(3 * 65 * 64 * 64 + 64 * 64 * 64);
  const std::size_t loss_slots =
      sizeof(double) * std::size_t(2 + steps * (3 + 1) + (opt.buoyancy_gradient ? 1 : 0));
  EXPECT_EQ(plan.summary.peak_device_bytes + loss_slots - peak, user_grad);
  EXPECT_TRUE(std::isfinite(r.loss));
}
