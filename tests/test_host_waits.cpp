// Host waits outside the pressure solves: there are none. A warm step (and step adjoint)
// waits exactly as often as its pressure solve does on its own, finiteness checks included
// (they run on the device and are read at the solve's convergence read); a rollout gradient
// waits as its steps and step adjoints do, plus one read of all its loss values. Counted with
// Context::counters() (the CPU path counts what the CUDA path would do), against the same
// solves run on their own from the same inputs, so the counts do not depend on how the
// solver waits inside.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "counters_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/projection.hpp"
#include "dfluid/rollout.hpp"
#include "dfluid/simulation.hpp"
#include "simulation_test_util.hpp"

using namespace dfluid;

namespace {

struct Events {
  std::int64_t launches = 0, waits = 0, to_host = 0, to_device = 0;
};

template <class F>
Events count(const Context& ctx, F&& f) {
  const ContextCounters d = test::events_of(ctx, std::forward<F>(f));
  return {d.launches, d.host_waits, d.bytes_to_host, d.bytes_to_device};
}

struct Case {
  int dim;
  bool open_top;
  const char* name;
};

Grid case_grid(const Case& c) {
  Grid g = c.dim == 2 ? Grid::make_2d(24, 20, 1.0) : Grid::make_3d(12, 10, 8, 1.0);
  if (c.open_top) g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  return g;
}

/// A blob of smoke and a swirl, so that every part of the step does something.
void seed_state(const Context& ctx, SmokeState<float>& s) {
  const Grid& g = s.grid();
  std::vector<float> q(std::size_t(g.cells()));
  for (std::size_t i = 0; i < q.size(); ++i)
    q[i] = float((i * 37) % 11) / 10.0f;
  s.scalars[0].assign(ctx, q);
  for (int a = 0; a < g.dim; ++a) {
    std::vector<float> u(std::size_t(s.velocity[a].size()));
    for (std::size_t i = 0; i < u.size(); ++i)
      u[i] = 0.1f * float(int((i * 13 + std::size_t(a) * 5) % 7) - 3);
    s.velocity[a].assign(ctx, u);
  }
}

template <class T>
void copy_state(const Context& ctx, const SmokeState<T>& src, SmokeState<T>& dst) {
  copy(ctx, src.velocity, dst.velocity);
  for (std::size_t i = 0; i < src.scalars.size(); ++i)
    copy(ctx, src.scalars[i], dst.scalars[i]);
  copy(ctx, src.pressure, dst.pressure);
}

template <class T>
void expect_bitwise(const Context& ctx, const Field<T>& a, const Field<T>& b, const char* what) {
  const std::vector<T> x = a.to_vector(ctx), y = b.to_vector(ctx);
  ASSERT_EQ(x.size(), y.size()) << what;
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(x[i], y[i]) << what << " at " << i;
}

class HostWaits : public ::testing::TestWithParam<Case> {};

// A warm step with check_finite on waits exactly as its projection does alone: the parts
// before it (advection, buoyancy) and the input checks add no wait.
TEST_P(HostWaits, WarmStepWaitsOnlyInItsPressureSolve) {
  const Context ctx = Context::cpu();
  const Grid g = case_grid(GetParam());
  StepConfig cfg = test::smoke_config();
  cfg.check_finite = true;
  Simulation<float> sim(ctx, g, cfg);
  StepConfig before_projection = cfg;  // the same parts, without the projection
  before_projection.order = {StepPart::AdvectScalars, StepPart::AdvectVelocity, StepPart::Forces};
  before_projection.check_finite = false;
  Simulation<float> pre(ctx, g, before_projection);
  PressureSolver<float> solver(ctx, g);

  SmokeState<float> state(ctx, g), input(ctx, g), alone(ctx, g);
  seed_state(ctx, state);
  sim.step(state);  // warm-up (pools, pressure for the warm start)
  copy_state(ctx, state, input);
  copy_state(ctx, input, alone);
  pre.step(alone);
  solver.project(ctx, alone.velocity, alone.pressure, float(cfg.dt), cfg.pressure);  // warm-up

  const Events step = count(ctx, [&] { sim.step(state); });
  copy_state(ctx, input, alone);
  pre.step(alone);
  const Events projection = count(ctx, [&] {
    solver.project(ctx, alone.velocity, alone.pressure, float(cfg.dt), cfg.pressure);
  });

  EXPECT_GT(projection.waits, 0);
  EXPECT_EQ(step.waits, projection.waits);
  EXPECT_EQ(step.to_host, projection.to_host);
  EXPECT_EQ(step.to_device, 0);
  for (int a = 0; a < g.dim; ++a)
    expect_bitwise(ctx, state.velocity[a], alone.velocity[a], "velocity");  // the same solve
}

// The same for a warm step adjoint: its only solve is the projection's adjoint (the first part
// adjoint: Project is the last part), and it waits for nothing else. Float-atomic scatters:
// the deterministic scatter's sizing reduction (cuda/core/scatter.hpp) is still a host wait
// per advected array, outside this test's subject.
TEST_P(HostWaits, WarmStepAdjointWaitsOnlyInItsPressureSolve) {
  Context ctx = Context::cpu();
  ctx.set_accumulation(Accumulation::Atomic);
  const Grid g = case_grid(GetParam());
  StepConfig cfg = test::smoke_config();
  Simulation<float> sim(ctx, g, cfg);
  PressureSolver<float> solver(ctx, g);
  SmokeState<float> input(ctx, g);
  seed_state(ctx, input);
  sim.step(input);
  SmokeGradient<float> grad(ctx, g, 1);
  MacVelocity<float> alone(ctx, g);
  auto seed = [&] {
    for (int a = 0; a < g.dim; ++a)
      copy(ctx, input.velocity[a], grad.velocity[a]);  // a cotangent with some shape
    fill(ctx, grad.scalars[0], 1.0f);
  };
  seed();
  sim.step_adjoint(input, {}, grad);  // warm-up
  copy(ctx, input.velocity, alone);
  solver.project_adjoint(ctx, alone, cfg.pressure);  // warm-up

  seed();
  const Events adj = count(ctx, [&] { sim.step_adjoint(input, {}, grad); });
  copy(ctx, input.velocity, alone);
  const Events projection = count(ctx, [&] { solver.project_adjoint(ctx, alone, cfg.pressure); });
  EXPECT_GT(projection.waits, 0);
  EXPECT_EQ(adj.waits, projection.waits);
  EXPECT_EQ(adj.to_host, projection.to_host);
  EXPECT_EQ(adj.to_device, 0);
}

INSTANTIATE_TEST_SUITE_P(Cases, HostWaits,
                         ::testing::Values(Case{2, false, "closed2d"}, Case{2, true, "open2d"},
                                           Case{3, false, "closed3d"}, Case{3, true, "open3d"}),
                         [](const auto& info) { return std::string(info.param.name); });

// A rollout gradient (check_finite on, force controls with effort, an unmasked keyframe at
// step 2 and a masked one at the end) waits as its steps and step adjoints do when run one by
// one from the same states and cotangents, plus one wait that reads its 2 + steps * dim loss
// values (8 bytes each) and the last finiteness checks.
TEST(RolloutHostWaits, GradientWaitsAreItsStepsWaitsPlusOneLossRead) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 12, 1.0);
  const int n = 4;
  Simulation<float> sim(ctx, g, test::smoke_config());
  Rollout<float> rollout(sim);
  SmokeState<float> initial(ctx, g);
  seed_state(ctx, initial);
  Field<float> target(ctx, g), mask(ctx, g);
  std::vector<float> m(std::size_t(g.cells()));
  for (std::size_t i = 0; i < m.size(); ++i)
    m[i] = i % 3 == 0 ? 0.0f : 1.0f;
  mask.assign(ctx, m);
  fill(ctx, target, 0.5f);
  std::vector<MacVelocity<float>> forces;
  for (int k = 0; k < n; ++k) {
    forces.emplace_back(ctx, g);
    fill(ctx, forces.back(), 0.01f * float(k + 1));
  }
  std::vector<StepControls<float>> controls(n);
  for (int k = 0; k < n; ++k)
    controls[k].force = &forces[k];
  RolloutLosses<float> losses;
  ScalarKeyframe<float> early, last;
  early.name = "early";
  early.step = 2;
  early.target = &target;
  early.weight = 0.5;
  last.name = "last";
  last.step = n;
  last.target = &target;
  last.mask = &mask;
  last.weight = 2.0;
  losses.keyframes = {early, last};
  losses.force_effort = 1e-3;

  rollout.run(initial, n, controls, losses);  // warm-up
  RolloutResult<float> r;
  const Events run = count(ctx, [&] { r = rollout.run(initial, n, controls, losses); });

  // The same work one call at a time.
  std::vector<SmokeState<float>> states;
  Events parts;
  auto add = [&](const Events& e) {
    parts.waits += e.waits;
    parts.to_host += e.to_host;
  };
  states.emplace_back(ctx, g);
  copy_state(ctx, initial, states[0]);
  for (int k = 0; k < n; ++k) {
    states.emplace_back(ctx, g);
    copy_state(ctx, states[std::size_t(k)], states[std::size_t(k) + 1]);
    add(count(ctx, [&] { sim.step(states[std::size_t(k) + 1], controls[std::size_t(k)]); }));
  }
  SmokeGradient<float> grad(ctx, g, 1);
  Buffer<double> slot(ctx, 1, ctx.memory_space());
  masked_squared_error_into(ctx, states[n].scalars[0], target, mask, slot.data(), &grad.scalars[0],
                            last.weight);
  std::vector<MacVelocity<float>> grad_force;
  for (int k = 0; k < n; ++k)
    grad_force.emplace_back(ctx, g);
  Field<float> diff(ctx, g);
  double grad_buoyancy = 0;
  sim.set_adjoint_warm_start(true);  // as the rollout's backward pass (warm_adjoint_solves)
  for (int k = n - 1; k >= 0; --k) {
    StepControlGradient<float> cg;
    cg.force = &grad_force[std::size_t(k)];
    // The host accumulator costs one wait (reading the coefficient gradient); the rollout
    // adds it up on the device instead.
    Events e = count(ctx, [&] {
      sim.step_adjoint(states[std::size_t(k)], controls[std::size_t(k)], grad, &cg, &grad_buoyancy);
    });
    e.waits -= 1;
    e.to_host -= 8;
    add(e);
    if (k == early.step) {
      copy(ctx, states[std::size_t(k)].scalars[0], diff);
      axpy(ctx, -1.0f, target, diff);
      axpy(ctx, float(early.weight), diff, grad.scalars[0]);
    }
  }
  const int slots = 1 + 2 + n * g.dim;  // buoyancy gradient, 2 keyframes, force efforts
  std::cout << "[counters] rollout_gradient_2d_16x12_4_steps: host_waits=" << run.waits
            << " (steps and step adjoints alone: " << parts.waits
            << ") bytes_to_host=" << run.to_host << "\n";
  EXPECT_EQ(run.waits, parts.waits + 1);
  EXPECT_EQ(run.to_host, parts.to_host + 8 * slots);
  EXPECT_EQ(run.to_device, 0);
  EXPECT_EQ(r.grad_buoyancy, grad_buoyancy);  // the device sum: bitwise the host's
  // The replay followed the rollout's cotangents exactly (so the solves' waits match).
  expect_bitwise(ctx, r.grad_initial.scalars[0], grad.scalars[0], "grad_initial scalar");
  for (int a = 0; a < g.dim; ++a)
    expect_bitwise(ctx, r.grad_initial.velocity[a], grad.velocity[a], "grad_initial velocity");
}

// The boundary gradient (issue 14: inflow profile and moving-wall velocity) is gathered on the
// device and read with the losses: a rollout gradient that asks for it waits exactly as one
// that does not (and as its steps and step adjoints do one by one, plus the loss read), and
// only its slots cross the bus in addition. A step adjoint that returns it on the host
// (StepControlGradient::boundary) waits once more; with boundary_slots it waits as without.
TEST(RolloutHostWaits, BoundaryGradientAddsNoWait) {
  const Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 10, 0.125);
  g.set_boundary(0, BoundaryKind::Inflow, BoundaryKind::Outflow);
  g.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::MovingWall);
  StepConfig cfg;
  cfg.dt = 0.05;
  cfg.diffusion = DiffusionMode::Explicit;
  cfg.viscosity = 0.02;
  cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project};
  VelocityBoundary vb;
  vb.inflow[0][0].assign(10, 0.0);
  for (int j = 0; j < 10; ++j)
    vb.inflow[0][0][std::size_t(j)] = 0.5 + 0.1 * std::sin(0.7 * j);
  vb.wall.v[1][1] = {0.8, 0.0, 0.0};
  Simulation<double> sim(ctx, g, cfg);
  sim.set_velocity_boundary(vb);
  Rollout<double> rollout(sim);
  const int n = 3;
  SmokeState<double> initial(ctx, g, {});
  for (int a = 0; a < 2; ++a) {
    std::vector<double> u(std::size_t(initial.velocity[a].size()));
    for (std::size_t i = 0; i < u.size(); ++i)
      u[i] = 0.3 * std::sin(0.37 * double(i) + a);
    initial.velocity[a].assign(ctx, u);
  }
  MacVelocity<double> target(ctx, g);
  fill(ctx, target, 0.2);
  RolloutLosses<double> losses;
  VelocityTarget<double> vt;
  vt.step = n;
  vt.target = &target;
  losses.velocity_targets.push_back(vt);
  RolloutOptions with, without;
  with.boundary_gradient = true;
  // Cold adjoint solves: the loop below calls two step adjoints per step (device and host
  // accumulators), which a warm start carried from call to call would tell apart.
  with.warm_adjoint_solves = without.warm_adjoint_solves = false;
  rollout.run(initial, n, {}, losses, with);  // warm-up (sizes the result's inflow vectors)
  rollout.run(initial, n, {}, losses, without);
  RolloutResult<double> r_with, r_without;
  rollout.run(initial, n, {}, losses, with, r_with);
  rollout.run(initial, n, {}, losses, without, r_without);
  const Events e_with = count(ctx, [&] { rollout.run(initial, n, {}, losses, with, r_with); });
  const Events e_without =
      count(ctx, [&] { rollout.run(initial, n, {}, losses, without, r_without); });
  const std::size_t slots = VelocityBoundaryGradient::slots(g);
  EXPECT_EQ(slots, 18u + 10u);
  std::cout << "[counters] rollout_boundary_gradient_2d_12x10_3_steps: host_waits=" << e_with.waits
            << " (without the boundary gradient: " << e_without.waits << ")\n";
  EXPECT_EQ(e_with.waits, e_without.waits);
  EXPECT_EQ(e_with.to_host, e_without.to_host + std::int64_t(8 * slots));
  EXPECT_EQ(e_with.to_device, 0);
  EXPECT_EQ(r_with.loss, r_without.loss);
  for (int a = 0; a < g.dim; ++a)
    expect_bitwise(ctx, r_with.grad_initial.velocity[a], r_without.grad_initial.velocity[a],
                   "grad_initial velocity");

  // The same work one call at a time: the steps, the loss's cotangent, the step adjoints.
  std::vector<SmokeState<double>> states;
  Events parts;
  states.emplace_back(ctx, g, std::vector<std::string>{});
  copy_state(ctx, initial, states[0]);
  for (int k = 0; k < n; ++k) {
    states.emplace_back(ctx, g, std::vector<std::string>{});
    copy_state(ctx, states[std::size_t(k)], states[std::size_t(k) + 1]);
    parts.waits += count(ctx, [&] { sim.step(states[std::size_t(k) + 1]); }).waits;
  }
  SmokeGradient<double> grad(ctx, g, 0), grad_host(ctx, g, 0);
  for (int a = 0; a < g.dim; ++a) {
    copy(ctx, states[n].velocity[a], grad.velocity[a]);
    axpy(ctx, -1.0, target[a], grad.velocity[a]);
    copy(ctx, grad.velocity[a], grad_host.velocity[a]);
  }
  Buffer<double> acc(ctx, Index(slots), ctx.memory_space());
  detail::zero_bytes(ctx, acc.data(), acc.bytes(), acc.space());
  VelocityBoundaryGradient host;
  for (int k = n - 1; k >= 0; --k) {
    StepControlGradient<double> cg_dev, cg_host;
    cg_dev.boundary_slots = acc.data();
    cg_host.boundary = &host;
    const Events dev =
        count(ctx, [&] { sim.step_adjoint(states[std::size_t(k)], {}, grad, &cg_dev); });
    const Events on_host =
        count(ctx, [&] { sim.step_adjoint(states[std::size_t(k)], {}, grad_host, &cg_host); });
    parts.waits += dev.waits;
    EXPECT_EQ(on_host.waits, dev.waits + 1) << "step " << k;  // the read of its slots
  }
  EXPECT_EQ(e_with.waits, parts.waits + 1);  // + the read of the losses and the slots
  std::vector<double> v(slots);
  read_doubles(ctx, acc.data(), int(slots), v.data());
  VelocityBoundaryGradient dev;
  dev.add_slots(g, v.data());
  // Bitwise: the rollout's slots summed the same values in the same order.
  EXPECT_EQ(dev.inflow[0][0], r_with.grad_boundary.inflow[0][0]);
  EXPECT_EQ(dev.wall.v[1][1][0], r_with.grad_boundary.wall.v[1][1][0]);
  EXPECT_NE(dev.wall.v[1][1][0], 0.0);
  // The host accumulator sums per step: the same to rounding.
  for (int j = 0; j < 10; ++j)
    EXPECT_NEAR(host.inflow[0][0][std::size_t(j)], dev.inflow[0][0][std::size_t(j)],
                1e-14 * (1 + std::abs(dev.inflow[0][0][std::size_t(j)])));
  EXPECT_NEAR(host.wall.v[1][1][0], dev.wall.v[1][1][0],
              1e-14 * (1 + std::abs(dev.wall.v[1][1][0])));
}

// The loss value of a masked keyframe: the 8-byte sum is all that crosses the bus; the
// gradient stays on the device. Values checked against a host evaluation (fewer than 4096
// cells: the device reduction's order is the serial order, so the sum is bitwise the same).
TEST(MaskedKeyframeLoss, OnlyTheLossScalarCrossesTheBus) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(20, 16, 1.0);
  Field<double> q(ctx, g), t(ctx, g), m(ctx, g), grad(ctx, g);
  std::vector<double> qv(std::size_t(g.cells())), tv(qv.size()), mv(qv.size());
  for (std::size_t i = 0; i < qv.size(); ++i) {
    qv[i] = std::sin(0.3 * double(i));
    tv[i] = 0.25 * std::cos(0.7 * double(i));
    mv[i] = double(i % 4) / 3.0;
  }
  q.assign(ctx, qv);
  t.assign(ctx, tv);
  m.assign(ctx, mv);
  fill(ctx, grad, 1.0);
  Buffer<double> slot(ctx, 1, ctx.memory_space());
  masked_squared_error_into(ctx, q, t, m, slot.data(), &grad, 0.75);  // warm-up (scratch)
  fill(ctx, grad, 1.0);
  double loss = 0;
  const Events e = count(ctx, [&] {
    masked_squared_error_into(ctx, q, t, m, slot.data(), &grad, 0.75);
    read_doubles(ctx, slot.data(), 1, &loss);
  });
  EXPECT_EQ(e.launches, 3);  // the reduction's two kernels, the gradient pass
  EXPECT_EQ(e.waits, 1);
  EXPECT_EQ(e.to_host, 8);
  EXPECT_EQ(e.to_device, 0);
  double want = 0;
  for (std::size_t i = 0; i < qv.size(); ++i) {
    const double d = qv[i] - tv[i];
    want += mv[i] * d * d;
  }
  EXPECT_EQ(loss, want);
  const std::vector<double> gv = grad.to_vector(ctx);
  for (std::size_t i = 0; i < qv.size(); ++i)
    ASSERT_EQ(gv[i], 1.0 + 0.75 * mv[i] * (qv[i] - tv[i])) << i;
}

// Deferred checks: no wait to enqueue them, one wait to read them, the first flagged check
// (in enqueue order) named, and nothing left pending after a read.
TEST(DeferredFiniteChecks, FirstFlaggedCheckIsReportedAtTheRead) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(8, 8, 1.0);
  Field<float> good(ctx, g), bad(ctx, g), worse(ctx, g);
  std::vector<float> v(64, 0.0f);
  v[9] = std::numeric_limits<float>::infinity();
  bad.assign(ctx, v);
  v[3] = std::numeric_limits<float>::quiet_NaN();
  worse.assign(ctx, v);
  const Events enqueue = count(ctx, [&] {
    flag_nonfinite(ctx, good, "good");
    flag_nonfinite(ctx, bad, "first bad");
    flag_nonfinite(ctx, worse, "second bad");
  });
  EXPECT_EQ(enqueue.launches, 3);
  EXPECT_EQ(enqueue.waits, 0);
  EXPECT_EQ(enqueue.to_host, 0);
  std::string what;
  const Events read = count(ctx, [&] {
    try {
      raise_nonfinite(ctx);
    } catch (const NonFiniteValue& e) {
      what = e.what();
    }
  });
  EXPECT_EQ(read.waits, 1);
  EXPECT_EQ(what.rfind("first bad: contains NaN or Inf values", 0), 0u) << what;
  const Events again = count(ctx, [&] { raise_nonfinite(ctx); });  // nothing pending: no wait
  EXPECT_EQ(again.waits, 0);
  flag_nonfinite(ctx, good, "good");
  EXPECT_NO_THROW(raise_nonfinite(ctx));
}

// 4096 checks can be pending; the next one reads them first (one wait), and a NaN found by
// the first of them is reported there.
TEST(DeferredFiniteChecks, ACheckBeyondTheFlagCapacityReadsThePendingOnes) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_1d(2, 1.0);
  Field<double> good(ctx, g), bad(ctx, g);
  bad.assign(ctx, std::vector<double>{1.0, std::numeric_limits<double>::quiet_NaN()});
  const Events fill_up = count(ctx, [&] {
    flag_nonfinite(ctx, bad, "check 0");
    for (int i = 1; i < 4096; ++i)
      flag_nonfinite(ctx, good, "check " + std::to_string(i));
  });
  EXPECT_EQ(fill_up.waits, 0);
  std::string what;
  const Events next = count(ctx, [&] {
    try {
      flag_nonfinite(ctx, good, "check 4096");
    } catch (const NonFiniteValue& e) {
      what = e.what();
    }
  });
  EXPECT_EQ(next.waits, 1);
  EXPECT_EQ(what.rfind("check 0: contains NaN or Inf values", 0), 0u) << what;
  const Events after = count(ctx, [&] { raise_nonfinite(ctx); });  // nothing left pending
  EXPECT_EQ(after.waits, 0);
}

// A step whose order has no pressure solve still reports a non-finite input before it
// returns, with one wait of its own; with the solve, that wait is the solve's.
TEST(DeferredFiniteChecks, StepWithoutProjectionReportsItsInputsBeforeReturning) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(12, 10, 1.0);
  StepConfig cfg = test::smoke_config();
  cfg.order = {StepPart::AdvectScalars, StepPart::Forces};
  Simulation<float> sim(ctx, g, cfg);
  SmokeState<float> s(ctx, g);
  seed_state(ctx, s);
  sim.step(s);
  const Events clean = count(ctx, [&] { sim.step(s); });
  EXPECT_EQ(clean.waits, 1);  // reads the input checks
  EXPECT_EQ(clean.to_host, 0);
  std::vector<float> q = s.scalars[0].to_vector(ctx);
  q[7] = std::numeric_limits<float>::quiet_NaN();
  s.scalars[0].assign(ctx, q);
  try {
    sim.step(s);
    FAIL() << "no throw";
  } catch (const NonFiniteValue& e) {
    EXPECT_NE(std::string(e.what()).find("state scalar 'density'"), std::string::npos) << e.what();
  }
}

}  // namespace
