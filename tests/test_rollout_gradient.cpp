// Rollout gradients (verification ladder rung 2): Simulation::step_adjoint and
// Rollout::run against central finite differences along random directions, in
// double on the CPU path; bitwise determinism; bad input; GPU against CPU.
//
// Setup: smooth random-ish fields, small velocities (departure points stay well
// inside the domain), buoyancy on, tight pressure tolerance (rel 1e-13) so the
// solver's error does not pollute the differences. MacCormack runs with its
// clamp off: the clamp is a kink (min/max selection) where central differences
// are not meaningful; the semi-Lagrangian cases cover the plain interpolation
// (itself piecewise linear: kinks only where a departure point crosses a cell
// centre, which random directions of size 1e-6 essentially never hit).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/rollout.hpp"
#include "rollout_test_util.hpp"

using namespace dfluid;

namespace {

constexpr int kSteps = 10;

std::vector<double> random_values(std::size_t n, unsigned seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v)
    x = d(rng);
  return v;
}

Field<double> random_field(const Context& ctx, const Grid& g, Location loc, unsigned seed,
                           double lo, double hi) {
  Field<double> f(ctx, g, loc);
  f.assign(ctx, random_values(std::size_t(f.size()), seed, lo, hi));
  return f;
}

MacVelocity<double> random_mac(const Context& ctx, const Grid& g, unsigned seed, double amp) {
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < g.dim; ++a)
    u[a].assign(ctx, random_values(std::size_t(u[a].size()), seed + 17 * a, -amp, amp));
  return u;
}

// A smooth field: a sum of low-frequency sines of the position (cell units).
Field<double> smooth_field(const Context& ctx, const Grid& g, Location loc, unsigned seed,
                           double amp, double offset = 0) {
  Field<double> f(ctx, g, loc);
  const auto e = f.extents();
  std::vector<double> r = random_values(12, seed, 0, 1);
  std::vector<double> v(std::size_t(f.size()));
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i) {
        const double x = i / double(g.n[0]), y = j / double(g.n[1]),
                     z = g.dim == 3 ? k / double(g.n[2]) : 0.0;
        const double s =
            std::sin(2 * M_PI * (x * (1 + r[0]) + r[1])) *
                std::cos(2 * M_PI * (y * (1 + r[2]) + r[3])) +
            0.5 * std::sin(2 * M_PI * (x * r[4] + y * (1 + r[5]) + z * (1 + r[6]) + r[7]));
        v[(std::size_t(k) * e[1] + j) * e[0] + i] = offset + amp * s;
      }
  f.assign(ctx, v);
  return f;
}

MacVelocity<double> smooth_mac(const Context& ctx, const Grid& g, unsigned seed, double amp) {
  MacVelocity<double> u(ctx, g);
  const Location locs[3] = {Location::FaceX, Location::FaceY, Location::FaceZ};
  for (int a = 0; a < g.dim; ++a)
    u[a] = smooth_field(ctx, g, locs[a], seed + 31 * a, amp);
  return u;
}

/// Step k's force and (scalar 0's) source, for every step.
template <class T>
std::vector<StepControls<T>> controls_of(const std::vector<MacVelocity<T>>& forces,
                                         const std::vector<Field<T>>& sources) {
  std::vector<StepControls<T>> c(kSteps);
  for (int k = 0; k < kSteps; ++k) {
    c[k].force = &forces[k];
    c[k].sources = {&sources[k]};
  }
  return c;
}

// Everything a rollout-gradient check needs; controls and losses point into it.
struct Problem {
  Context ctx;
  Grid g;
  StepConfig cfg;
  SmokeState<double> init;
  std::vector<MacVelocity<double>> forces;
  std::vector<Field<double>> sources;  // scalar 0 only
  Field<double> target, mid_target, mask, user_weight;
  MacVelocity<double> vel_target;
  bool with_user = true;

  std::vector<StepControls<double>> controls() const { return controls_of(forces, sources); }
  RolloutLosses<double> losses() const {
    RolloutLosses<double> L;
    ScalarKeyframe<double> kf;
    kf.name = "final density";
    kf.step = kSteps;
    kf.target = &target;
    kf.weight = 2.0;
    L.keyframes.push_back(kf);
    kf.name = "masked mid density";
    kf.step = 5;
    kf.target = &mid_target;
    kf.mask = &mask;
    kf.weight = 1.5;
    L.keyframes.push_back(kf);
    kf.name = "temperature";
    kf.step = 8;
    kf.scalar = 1;
    kf.target = &target;
    kf.mask = nullptr;
    kf.weight = 0.7;
    L.keyframes.push_back(kf);
    VelocityTarget<double> vt;
    vt.name = "final velocity";
    vt.step = kSteps;
    vt.target = &vel_target;
    vt.weight = 3.0;
    L.velocity_targets.push_back(vt);
    vt.name = "mid velocity";
    vt.step = 7;
    L.velocity_targets.push_back(vt);
    L.force_effort = 0.1;
    L.source_effort = 0.05;
    if (with_user) {
      // A cubic of the density at step 3: value sum w q^3 / 3, gradient w q^2.
      L.user.push_back(dfluid::testing::cubic_user_loss(ctx, user_weight, {3}));
    }
    return L;
  }
};

Problem make_problem(const Context& ctx, const Grid& g, StepConfig cfg) {
  Problem p{ctx, g, std::move(cfg), SmokeState<double>(ctx, g, {"density", "temperature"})};
  p.init.velocity = smooth_mac(ctx, g, 1, 0.3);
  p.init.scalars[0] = smooth_field(ctx, g, Location::Cell, 2, 0.4, 0.5);
  p.init.scalars[1] = smooth_field(ctx, g, Location::Cell, 3, 0.2, 0.1);
  for (int k = 0; k < kSteps; ++k) {
    p.forces.push_back(smooth_mac(ctx, g, 100 + 7 * k, 0.05));
    p.sources.push_back(smooth_field(ctx, g, Location::Cell, 200 + 7 * k, 0.05));
  }
  p.target = smooth_field(ctx, g, Location::Cell, 4, 0.3, 0.4);
  p.mid_target = smooth_field(ctx, g, Location::Cell, 5, 0.3, 0.4);
  p.mask = random_field(ctx, g, Location::Cell, 6, 0.0, 1.0);
  p.user_weight = random_field(ctx, g, Location::Cell, 7, -1.0, 1.0);
  p.vel_target = smooth_mac(ctx, g, 8, 0.2);
  return p;
}

StepConfig smooth_config(AdvectionScheme scheme, Backtrace bt = Backtrace::Euler) {
  StepConfig cfg;
  cfg.dt = 1.0;
  cfg.scalar_advection.scheme = scheme;
  cfg.scalar_advection.backtrace = bt;
  cfg.scalar_advection.maccormack_clamp = false;
  cfg.velocity_advection.scheme = scheme;
  cfg.velocity_advection.backtrace = bt;
  cfg.velocity_advection.maccormack_clamp = false;
  cfg.buoyancy = 0.3;
  cfg.pressure.rel_tol = 1e-13;
  cfg.pressure.max_iterations = 1000;
  cfg.diffusion_solver.rel_tol = 1e-13;
  cfg.diffusion_solver.max_iterations = 1000;
  return cfg;
}

double rollout_loss(Problem& p) {
  Simulation<double> sim(p.ctx, p.g, p.cfg);
  Rollout<double> r(sim);
  return r.loss(p.init, kSteps, p.controls(), p.losses());
}

RolloutResult<double> rollout_grad(Problem& p) {
  Simulation<double> sim(p.ctx, p.g, p.cfg);
  Rollout<double> r(sim);
  return r.run(p.init, kSteps, p.controls(), p.losses());
}

// Central difference along a random direction of the fields `x` against
// <grad, d>. Returns the relative error.
double fd_error(Problem& p, std::vector<Field<double>*> x, std::vector<const Field<double>*> grad,
                unsigned seed, const char* what) {
  const Context& ctx = p.ctx;
  std::vector<Field<double>> dir;
  double ad = 0, scale = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    dir.push_back(
        random_field(ctx, x[i]->grid(), x[i]->location(), seed + 13 * unsigned(i), -1, 1));
    ad += dot(ctx, *grad[i], dir.back());
    scale = std::max(scale, max_abs(ctx, *x[i]));
  }
  const double h = 1e-6 * std::max(scale, 0.1);
  for (std::size_t i = 0; i < x.size(); ++i)
    axpy(ctx, h, dir[i], *x[i]);
  const double lp = rollout_loss(p);
  for (std::size_t i = 0; i < x.size(); ++i)
    axpy(ctx, -2 * h, dir[i], *x[i]);
  const double lm = rollout_loss(p);
  for (std::size_t i = 0; i < x.size(); ++i)
    axpy(ctx, h, dir[i], *x[i]);
  const double fd = (lp - lm) / (2 * h);
  const double err = std::abs(fd - ad) / std::max(std::abs(ad), 1e-12);
  std::printf("  %-18s <grad,d> = % .12e  fd = % .12e  rel err = %.2e\n", what, ad, fd, err);
  return err;
}

void check_all_gradients(Problem& p, double tol = 1e-6) {
  RolloutResult<double> r = rollout_grad(p);
  // The loss of run() and of the forward-only loss() agree.
  EXPECT_NEAR(r.loss, rollout_loss(p), 1e-12 * std::abs(r.loss));
  for (const auto& rep : r.forward_reports)
    EXPECT_TRUE(rep.pressure.converged);
  for (const auto& rep : r.adjoint_reports)
    EXPECT_TRUE(rep.pressure.converged);
  const int D = p.g.dim;
  std::vector<Field<double>*> x;
  std::vector<const Field<double>*> gr;
  for (int a = 0; a < D; ++a) {
    x.push_back(&p.init.velocity[a]);
    gr.push_back(&r.grad_initial.velocity[a]);
  }
  EXPECT_LE(fd_error(p, x, gr, 1000, "initial velocity"), tol);
  for (int i = 0; i < 2; ++i)
    EXPECT_LE(fd_error(p, {&p.init.scalars[i]}, {&r.grad_initial.scalars[i]}, 2000 + i,
                       i == 0 ? "initial density" : "initial temperature"),
              tol);
  x.clear();
  gr.clear();
  for (int k = 0; k < kSteps; ++k)
    for (int a = 0; a < D; ++a) {
      x.push_back(&p.forces[k][a]);
      gr.push_back(&r.grad_force[k][a]);
    }
  EXPECT_LE(fd_error(p, x, gr, 3000, "forces (all steps)"), tol);
  EXPECT_LE(fd_error(p, {&p.forces[4][0]}, {&r.grad_force[4][0]}, 3500, "force step 4, x"), tol);
  x.clear();
  gr.clear();
  for (int k = 0; k < kSteps; ++k) {
    x.push_back(&p.sources[k]);
    gr.push_back(&r.grad_source[k][0]);
  }
  EXPECT_LE(fd_error(p, x, gr, 4000, "sources (all)"), tol);
  // Buoyancy coefficient.
  const double b = p.cfg.buoyancy, h = 1e-6 * std::abs(b);
  p.cfg.buoyancy = b + h;
  const double lp = rollout_loss(p);
  p.cfg.buoyancy = b - h;
  const double lm = rollout_loss(p);
  p.cfg.buoyancy = b;
  const double fd = (lp - lm) / (2 * h);
  const double err = std::abs(fd - r.grad_buoyancy) / std::abs(r.grad_buoyancy);
  std::printf("  %-18s grad = % .12e  fd = % .12e  rel err = %.2e\n", "buoyancy", r.grad_buoyancy,
              fd, err);
  EXPECT_LE(err, tol);
}

template <class F>
void expect_bitwise(const Context& ctx, const F& a, const F& b, const char* what) {
  std::vector<double> va = a.to_vector(ctx), vb = b.to_vector(ctx);
  ASSERT_EQ(va.size(), vb.size());
  for (std::size_t i = 0; i < va.size(); ++i)
    ASSERT_EQ(std::memcmp(&va[i], &vb[i], sizeof(double)), 0) << what << " entry " << i;
}

}  // namespace

TEST(StepAdjoint, MatchesFiniteDifferencesOfOneStep) {
  // One step, every part incl. explicit diffusion, gradient of <w, step(x)>.
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  StepConfig cfg = smooth_config(AdvectionScheme::MacCormack);
  cfg.diffusion = DiffusionMode::Explicit;
  cfg.viscosity = 0.05;
  cfg.scalar_diffusivity = 0.03;
  Simulation<double> sim(ctx, g, cfg);
  Problem p = make_problem(ctx, g, cfg);
  SmokeGradient<double> w(ctx, g, 2);
  w.velocity = random_mac(ctx, g, 50, 1.0);
  w.scalars[0] = random_field(ctx, g, Location::Cell, 51, -1, 1);
  w.scalars[1] = random_field(ctx, g, Location::Cell, 52, -1, 1);
  auto objective = [&](SmokeState<double> s) {
    sim.step(s, p.controls()[0]);
    double v = 0;
    for (int a = 0; a < 2; ++a)
      v += dot(ctx, w.velocity[a], s.velocity[a]);
    for (int i = 0; i < 2; ++i)
      v += dot(ctx, w.scalars[i], s.scalars[i]);
    return v;
  };
  auto clone = [&](const SmokeState<double>& s) {
    SmokeState<double> c(ctx, g, s.scalar_names);
    copy(ctx, s.velocity, c.velocity);
    for (int i = 0; i < 2; ++i)
      copy(ctx, s.scalars[i], c.scalars[i]);
    return c;
  };
  SmokeGradient<double> grad(ctx, g, 2);
  copy(ctx, w.velocity, grad.velocity);
  for (int i = 0; i < 2; ++i)
    copy(ctx, w.scalars[i], grad.scalars[i]);
  MacVelocity<double> gf(ctx, g);
  Field<double> gs(ctx, g, Location::Cell);
  StepControlGradient<double> cg;
  cg.force = &gf;
  cg.sources = {&gs};
  double gb = 0;
  sim.step_adjoint(p.init, p.controls()[0], grad, &cg, &gb);
  // Direction in the initial state.
  MacVelocity<double> du = random_mac(ctx, g, 60, 1.0);
  Field<double> dq = random_field(ctx, g, Location::Cell, 61, -1, 1);
  const double h = 1e-6;
  SmokeState<double> sp = clone(p.init), sm = clone(p.init);
  for (int a = 0; a < 2; ++a) {
    axpy(ctx, h, du[a], sp.velocity[a]);
    axpy(ctx, -h, du[a], sm.velocity[a]);
  }
  axpy(ctx, h, dq, sp.scalars[0]);
  axpy(ctx, -h, dq, sm.scalars[0]);
  const double fd = (objective(std::move(sp)) - objective(std::move(sm))) / (2 * h);
  double ad = dot(ctx, grad.scalars[0], dq);
  for (int a = 0; a < 2; ++a)
    ad += dot(ctx, grad.velocity[a], du[a]);
  std::printf("  one step: <grad,d> = %.12e fd = %.12e rel err %.2e\n", ad, fd,
              std::abs(fd - ad) / std::abs(ad));
  EXPECT_LE(std::abs(fd - ad), 1e-6 * std::abs(ad));
  // The step is linear in the force: its gradient is exactly dt * (adjoint after forces).
  EXPECT_GT(max_abs(ctx, gf[0]), 0.0);
  EXPECT_GT(max_abs(ctx, gs), 0.0);
  EXPECT_NE(gb, 0.0);
}

TEST(RolloutGradient, SemiLagrangianWalls2D) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  Problem p = make_problem(ctx, g, smooth_config(AdvectionScheme::SemiLagrangian));
  check_all_gradients(p);
}

TEST(RolloutGradient, MacCormackNoClampPeriodic2D) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  g.set_boundary(BoundaryKind::Periodic);
  Problem p = make_problem(ctx, g, smooth_config(AdvectionScheme::MacCormack));
  check_all_gradients(p);
}

TEST(RolloutGradient, MacCormackRK2ImplicitDiffusionOpenTop2D) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  StepConfig cfg = smooth_config(AdvectionScheme::MacCormack, Backtrace::RK2);
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.1;
  cfg.scalar_diffusivity = 0.05;
  Problem p = make_problem(ctx, g, cfg);
  check_all_gradients(p);
}

TEST(RolloutGradient, ReorderedPartsExplicitDiffusion2D) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  StepConfig cfg = smooth_config(AdvectionScheme::SemiLagrangian, Backtrace::RK2);
  cfg.order = {StepPart::Forces,        StepPart::Project, StepPart::AdvectVelocity,
               StepPart::AdvectScalars, StepPart::Diffuse, StepPart::Project};
  cfg.diffusion = DiffusionMode::Explicit;
  cfg.viscosity = 0.05;
  cfg.scalar_diffusivity = 0.05;
  cfg.buoyancy_scalar = 1;  // temperature drives the flow
  Problem p = make_problem(ctx, g, cfg);
  check_all_gradients(p);
}

TEST(RolloutGradient, SemiLagrangianMixed3D) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(6, 6, 6, 1.0);
  g.set_boundary(2, BoundaryKind::Periodic, BoundaryKind::Periodic);
  StepConfig cfg = smooth_config(AdvectionScheme::SemiLagrangian);
  cfg.up_axis = 2;
  cfg.buoyancy_scalar = 1;
  Problem p = make_problem(ctx, g, cfg);
  check_all_gradients(p);
}

TEST(RolloutGradient, TwoRunsGiveBitwiseIdenticalGradients) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  Problem p = make_problem(ctx, g, smooth_config(AdvectionScheme::MacCormack));
  p.cfg.scalar_advection.maccormack_clamp = true;
  RolloutResult<double> a = rollout_grad(p), b = rollout_grad(p);
  EXPECT_EQ(std::memcmp(&a.loss, &b.loss, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&a.grad_buoyancy, &b.grad_buoyancy, sizeof(double)), 0);
  for (int c = 0; c < 2; ++c)
    expect_bitwise(ctx, a.grad_initial.velocity[c], b.grad_initial.velocity[c], "grad velocity");
  for (int i = 0; i < 2; ++i)
    expect_bitwise(ctx, a.grad_initial.scalars[i], b.grad_initial.scalars[i], "grad scalar");
  for (int k = 0; k < kSteps; ++k) {
    for (int c = 0; c < 2; ++c)
      expect_bitwise(ctx, a.grad_force[k][c], b.grad_force[k][c], "force");
    expect_bitwise(ctx, a.grad_source[k][0], b.grad_source[k][0], "source");
  }
  // Loss terms are reported by name.
  EXPECT_EQ(a.loss_terms.count("final density"), 1u);
  EXPECT_EQ(a.loss_terms.count("force_effort"), 1u);
  EXPECT_EQ(a.loss_terms.count("cubic"), 1u);
}

// RolloutOptions::warm_adjoint_solves (the default): each step adjoint's pressure solve starts
// from the previous one's solution. Fewer solver iterations than cold solves, the same
// gradients within the solver's tolerance, and the Simulation's own setting is restored.
TEST(RolloutGradient, WarmAdjointSolvesAgreeWithColdInFewerIterations) {
  // A smooth problem (a smoke blob rising for 16 steps, one keyframe at the end): the
  // cotangents of consecutive steps are close, the case the warm start is for.
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(32, 28, 1.0);
  StepConfig cfg = smooth_config(AdvectionScheme::MacCormack);
  cfg.dt = 0.5;
  cfg.pressure.rel_tol = 1e-6;
  Problem p = make_problem(ctx, g, cfg);
  RolloutLosses<double> losses;
  losses.keyframes.push_back(p.losses().keyframes[0]);
  losses.keyframes[0].step = 16;
  Simulation<double> sim(ctx, g, p.cfg);
  Rollout<double> rollout(sim);
  RolloutOptions warm, cold;
  cold.warm_adjoint_solves = false;
  const RolloutResult<double> rw = rollout.run(p.init, 16, {}, losses, warm);
  EXPECT_FALSE(sim.adjoint_warm_start());  // restored
  const RolloutResult<double> rc = rollout.run(p.init, 16, {}, losses, cold);
  int iw = 0, ic = 0;
  for (int k = 0; k < 16; ++k) {
    EXPECT_TRUE(rw.adjoint_reports[k].pressure.converged);
    iw += rw.adjoint_reports[k].pressure.iterations;
    ic += rc.adjoint_reports[k].pressure.iterations;
  }
  std::cout << "[adjoint solves] 16 steps: " << iw << " iterations warm, " << ic << " cold\n";
  EXPECT_LT(iw, ic);
  EXPECT_EQ(rw.loss, rc.loss);  // the forward pass is the same
  for (int c = 0; c < 2; ++c) {
    const std::vector<double> a = rw.grad_initial.velocity[c].to_vector(ctx);
    const std::vector<double> b = rc.grad_initial.velocity[c].to_vector(ctx);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    EXPECT_GT(den, 0);
    EXPECT_LE(std::sqrt(num / den), 1e-4);
  }
  // Two warm runs: bitwise the same (the kept pressures are cleared at the start of each).
  const RolloutResult<double> rw2 = rollout.run(p.init, 16, {}, losses, warm);
  for (int c = 0; c < 2; ++c)
    expect_bitwise(ctx, rw.grad_initial.velocity[c], rw2.grad_initial.velocity[c], "warm again");
  // A Simulation its user switched on stays on after a run.
  sim.set_adjoint_warm_start(true);
  rollout.run(p.init, 16, {}, losses, cold);
  EXPECT_TRUE(sim.adjoint_warm_start());
}

TEST(RolloutGradient, RejectsBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 14, 1.0);
  Problem p = make_problem(ctx, g, smooth_config(AdvectionScheme::SemiLagrangian));
  Simulation<double> sim(ctx, g, p.cfg);
  Rollout<double> r(sim);
  // A keyframe beyond the last state.
  RolloutLosses<double> L = p.losses();
  L.keyframes[0].step = kSteps + 1;
  try {
    r.run(p.init, kSteps, p.controls(), L);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("final density"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("step 11"), std::string::npos) << e.what();
  }
  L = p.losses();
  L.velocity_targets[1].step = -1;
  EXPECT_THROW(r.run(p.init, kSteps, p.controls(), L), InvalidArgument);
  L = p.losses();
  L.user[0].steps = {kSteps + 3};
  EXPECT_THROW(r.run(p.init, kSteps, p.controls(), L), InvalidArgument);
  // A force control on the wrong grid.
  Grid g2 = Grid::make_2d(10, 14, 1.0);
  MacVelocity<double> wrong(ctx, g2);
  std::vector<StepControls<double>> c = p.controls();
  c[3].force = &wrong;
  EXPECT_THROW(r.run(p.init, kSteps, c, p.losses()), ShapeMismatch);
  Field<double> wrong_src(ctx, g, Location::FaceX);
  c = p.controls();
  c[2].sources = {&wrong_src};
  EXPECT_THROW(r.run(p.init, kSteps, c, p.losses()), ShapeMismatch);
  // A mask of the wrong shape.
  L = p.losses();
  Field<double> wrong_mask(ctx, g2, Location::Cell);
  L.keyframes[1].mask = &wrong_mask;
  EXPECT_THROW(r.run(p.init, kSteps, p.controls(), L), ShapeMismatch);
  // Controls of the wrong length.
  c = p.controls();
  c.pop_back();
  EXPECT_THROW(r.run(p.init, kSteps, c, p.losses()), InvalidArgument);
  // A NaN entering the backward pass at state 6 is reported at the adjoint of step 5.
  L = p.losses();
  UserLoss<double> bad;
  bad.name = "nan";
  bad.steps = {6};
  bad.fn = [&ctx](int, const SmokeState<double>&, SmokeGradient<double>& gr) {
    std::vector<double> v = gr.scalars[0].to_vector(ctx);
    v[40] = std::nan("");
    gr.scalars[0].assign(ctx, v);
    return 0.0;
  };
  L.user.push_back(bad);
  try {
    r.run(p.init, kSteps, p.controls(), L);
    FAIL() << "no throw";
  } catch (const NonFiniteValue& e) {
    EXPECT_NE(std::string(e.what()).find("step 5"), std::string::npos) << e.what();
  }
}

/// Calls f(a_array, b_array, name) for every gradient array of two rollout
/// results of the same problem (initial velocity and scalars, per-step forces
/// and sources).
template <class A, class B, class F>
void for_each_gradient(const RolloutResult<A>& a, const RolloutResult<B>& b, F f) {
  for (int c = 0; c < 2; ++c)
    f(a.grad_initial.velocity[c], b.grad_initial.velocity[c], "u");
  for (int i = 0; i < 2; ++i)
    f(a.grad_initial.scalars[i], b.grad_initial.scalars[i], "q");
  for (int k = 0; k < kSteps; ++k) {
    for (int c = 0; c < 2; ++c)
      f(a.grad_force[k][c], b.grad_force[k][c], "force");
    f(a.grad_source[k][0], b.grad_source[k][0], "source");
  }
}

TEST(RolloutGradient, GpuMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Grid g = Grid::make_2d(12, 14, 1.0);
  StepConfig cfg = smooth_config(AdvectionScheme::MacCormack);
  cfg.scalar_advection.maccormack_clamp = true;
  Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  Problem pc = make_problem(cpu, g, cfg), pg = make_problem(gpu, g, cfg);
  RolloutResult<double> rc = rollout_grad(pc), rg = rollout_grad(pg);
  EXPECT_NEAR(rg.loss, rc.loss, 1e-9 * std::abs(rc.loss));
  EXPECT_NEAR(rg.grad_buoyancy, rc.grad_buoyancy, 1e-8 * std::abs(rc.grad_buoyancy));
  auto close = [&](const Field<double>& a, const Field<double>& b, const char* what) {
    std::vector<double> va = a.to_vector(gpu), vb = b.to_vector(cpu);
    double m = 0;
    for (double x : vb)
      m = std::max(m, std::abs(x));
    for (std::size_t i = 0; i < va.size(); ++i)
      ASSERT_NEAR(va[i], vb[i], 1e-8 * m + 1e-14) << what << " entry " << i;
  };
  for_each_gradient(rg, rc, close);
}

namespace {

template <class T, class S>
Field<T> converted(const Context& to, const Context& from, const Field<S>& f) {
  Field<T> out(to, f.grid(), f.location());
  const std::vector<S> v = f.to_vector(from);
  out.assign(to, std::vector<T>(v.begin(), v.end()));
  return out;
}

template <class T, class S>
MacVelocity<T> converted(const Context& to, const Context& from, const MacVelocity<S>& u) {
  MacVelocity<T> out(to, u.grid());
  for (int a = 0; a < u.dim(); ++a)
    out[a] = converted<T>(to, from, u[a]);
  return out;
}

/// The problem's fields in precision T on context `to`, and its losses without
/// the user loss (a double-precision callback).
template <class T>
struct TypedProblem {
  SmokeState<T> init;
  std::vector<MacVelocity<T>> forces;
  std::vector<Field<T>> sources;
  Field<T> target, mid_target, mask;
  MacVelocity<T> vel_target;

  TypedProblem(const Context& to, const Problem& p)
      : init(to, p.g, {"density", "temperature"}),
        target(converted<T>(to, p.ctx, p.target)),
        mid_target(converted<T>(to, p.ctx, p.mid_target)),
        mask(converted<T>(to, p.ctx, p.mask)),
        vel_target(converted<T>(to, p.ctx, p.vel_target)) {
    init.velocity = converted<T>(to, p.ctx, p.init.velocity);
    for (int i = 0; i < 2; ++i)
      init.scalars[i] = converted<T>(to, p.ctx, p.init.scalars[i]);
    for (int k = 0; k < kSteps; ++k) {
      forces.push_back(converted<T>(to, p.ctx, p.forces[k]));
      sources.push_back(converted<T>(to, p.ctx, p.sources[k]));
    }
  }
  std::vector<StepControls<T>> controls() const { return controls_of(forces, sources); }
  RolloutLosses<T> losses() const {
    RolloutLosses<T> L;
    ScalarKeyframe<T> kf;
    kf.step = kSteps;
    kf.target = &target;
    kf.weight = 2.0;
    L.keyframes.push_back(kf);
    kf.step = 5;
    kf.target = &mid_target;
    kf.mask = &mask;
    L.keyframes.push_back(kf);
    VelocityTarget<T> vt;
    vt.step = kSteps;
    vt.target = &vel_target;
    vt.weight = 3.0;
    L.velocity_targets.push_back(vt);
    L.force_effort = 0.1;
    L.source_effort = 0.05;
    return L;
  }
  RolloutResult<T> gradient(const Context& ctx, const Grid& g, const StepConfig& cfg) const {
    Simulation<T> sim(ctx, g, cfg);
    Rollout<T> r(sim);
    return r.run(init, kSteps, controls(), losses());
  }
};

/// The rollout gradient in float on `fctx` against double on the CPU path
/// (no clamp, so no branch can flip between the precisions): checks the loss
/// and the buoyancy gradient, and returns the worst difference of any
/// gradient array relative to that array's largest entry.
double float_vs_double(const Context& fctx) {
  const Grid g = Grid::make_2d(12, 14, 1.0);
  StepConfig cfg = smooth_config(AdvectionScheme::MacCormack);
  cfg.pressure.rel_tol = 1e-5;  // reachable in float
  cfg.diffusion_solver.rel_tol = 1e-5;
  const Context cpu = Context::cpu();
  const Problem p = make_problem(cpu, g, cfg);
  const TypedProblem<double> pd(cpu, p);
  const TypedProblem<float> pf(fctx, p);
  const RolloutResult<double> rd = pd.gradient(cpu, g, cfg);
  const RolloutResult<float> rf = pf.gradient(fctx, g, cfg);
  EXPECT_NEAR(rf.loss, rd.loss, 1e-4 * std::abs(rd.loss));
  EXPECT_NEAR(rf.grad_buoyancy, rd.grad_buoyancy, 2e-3 * std::abs(rd.grad_buoyancy));
  double worst = 0;
  for_each_gradient(rf, rd, [&](const Field<float>& a, const Field<double>& b, const char* what) {
    const std::vector<float> va = a.to_vector(fctx);
    const std::vector<double> vb = b.to_vector(cpu);
    double m = 0, e = 0;
    for (std::size_t i = 0; i < vb.size(); ++i) {
      m = std::max(m, std::abs(vb[i]));
      e = std::max(e, std::abs(double(va[i]) - vb[i]));
    }
    if (m == 0) {  // a gradient the losses do not reach (the temperature's): exactly 0 in float too
      EXPECT_EQ(e, 0.0) << what;
      return;
    }
    worst = std::max(worst, e / m);
  });
  ::testing::Test::RecordProperty("worst_relative_difference", std::to_string(worst));
  return worst;
}

// Float on the GPU: within 5e-4 of double.
TEST(RolloutGradient, GpuFloatMatchesCpuDouble) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_LE(float_vs_double(Context::create(Device::Cuda)), 5e-4);
}

// The same float rollout on the CPU path: checks the float instantiation of
// every adjoint here, where CI runs (no GPU needed).
TEST(RolloutGradient, CpuFloatMatchesCpuDouble) {
  EXPECT_LT(float_vs_double(Context::cpu()), 1e-4);  // measured: 1e-6
}

}  // namespace
