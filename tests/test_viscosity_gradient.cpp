// Gradients with respect to the diffusion coefficients (StepConfig::viscosity and
// StepConfig::scalar_diffusivity): Rollout::run against central finite differences of
// Rollout::loss in double on the CPU path, explicit and implicit diffusion, 2D and 3D, with
// every box-side boundary kind (Inflow, Outflow, NoSlip, MovingWall, free-slip Wall,
// Periodic, Open), a Fixed scalar side and obstacles; every checkpoint plan bitwise equal to
// store-all; the cost (no host wait, no allocation once warm); the errors a user can cause.
//
// Setup as in test_rollout_gradient.cpp: smooth fields, small velocities, semi-Lagrangian
// velocity advection and MacCormack scalar advection without its clamp (a kink), tight solver
// tolerances so that the solves' error does not pollute the differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "counters_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/rollout.hpp"

using namespace dfluid;

namespace {

using BK = BoundaryKind;

// A smooth field: low-frequency sines of the position (cell units), seeded.
Field<double> smooth_field(const Context& ctx, const Grid& g, Location loc, unsigned seed,
                           double amp, double offset = 0) {
  Field<double> f(ctx, g, loc);
  const auto e = f.extents();
  std::vector<double> v(std::size_t(f.size()));
  const double a = 0.3 + 0.11 * (seed % 7), b = 0.4 + 0.07 * (seed % 5), c = 0.2 + 0.05 * seed;
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i)
        v[std::size_t(i + e[0] * (j + e[1] * k))] =
            offset + amp * std::sin(a * i + c) * std::cos(b * j - 0.5 * c) * std::cos(0.37 * k + a);
  f.assign(ctx, v);
  return f;
}

struct Case {
  std::string name;
  Grid g;
  DiffusionMode mode;
  bool obstacle;
};

// 2D: Inflow / Outflow along x, NoSlip / MovingWall (a lid) along y, a solid block inside.
// 3D: Periodic x, free-slip Wall / NoSlip along y, Inflow / Open along z.
Case case_2d(DiffusionMode mode) {
  Grid g = Grid::make_2d(10, 9, 1.0);
  g.set_boundary(0, BK::Inflow, BK::Outflow);
  g.set_boundary(1, BK::NoSlip, BK::MovingWall);
  return {std::string("2D ") + to_string(mode), g, mode, true};
}
Case case_3d(DiffusionMode mode) {
  Grid g = Grid::make_3d(6, 5, 6, 1.0);
  g.set_boundary(0, BK::Periodic, BK::Periodic);
  g.set_boundary(1, BK::Wall, BK::NoSlip);
  g.set_boundary(2, BK::Inflow, BK::Open);
  return {std::string("3D ") + to_string(mode), g, mode, false};
}

constexpr int kSteps = 3;

struct Problem {
  Context ctx = Context::cpu();
  Case c;
  StepConfig cfg;
  VelocityBoundary vb;
  ObstacleMask solid;
  SmokeState<double> init;
  Field<double> target;
  MacVelocity<double> vel_target;

  explicit Problem(const Case& cs) : c(cs), init(ctx, cs.g, {"density", "temperature"}) {
    const Grid& g = c.g;
    const bool implicit = c.mode == DiffusionMode::Implicit;
    cfg.dt = 1.0;
    cfg.scalar_advection.maccormack_clamp = false;
    cfg.velocity_advection.scheme = AdvectionScheme::SemiLagrangian;
    cfg.buoyancy = 0.3;
    cfg.buoyancy_scalar = 1;
    cfg.up_axis = g.dim == 3 ? 2 : 1;
    cfg.diffusion = c.mode;
    // Implicit: beyond the explicit limit (1/(2 dim) in these units).
    cfg.viscosity = implicit ? 0.4 : 0.05;
    cfg.scalar_diffusivity = implicit ? 0.3 : 0.03;
    cfg.scalar_advection.boundary.kind[0][0] = ScalarBoundaryKind::Fixed;  // an affine part
    cfg.scalar_advection.boundary.value[0][0] = 0.2;
    cfg.pressure.rel_tol = 1e-13;
    cfg.pressure.max_iterations = 1000;
    cfg.diffusion_solver.rel_tol = 1e-14;
    cfg.diffusion_solver.max_iterations = 1000;
    const int in_axis = g.dim == 3 ? 2 : 0;
    const std::size_t nf = VelocityBoundary::side_faces(g, in_axis);
    vb.inflow[in_axis][0].resize(nf);
    for (std::size_t f = 0; f < nf; ++f)
      vb.inflow[in_axis][0][f] = 0.2 + 0.1 * std::sin(1.3 * double(f));
    if (g.dim == 2) vb.wall.v[1][1] = {0.3, 0.0, 0.0};
    solid = ObstacleMask(ctx, g);
    std::vector<std::uint8_t> m(std::size_t(solid.size()), 0);
    if (c.obstacle)
      for (int j = 3; j < 5; ++j)
        for (int i = 4; i < 6; ++i)
          m[std::size_t(i + g.n[0] * j)] = 1;
    solid.assign(ctx, m);
    for (int a = 0; a < g.dim; ++a)
      init.velocity[a] = smooth_field(ctx, g, face_location(a), 1 + 5 * unsigned(a), 0.2);
    init.scalars[0] = smooth_field(ctx, g, Location::Cell, 2, 0.4, 0.5);
    init.scalars[1] = smooth_field(ctx, g, Location::Cell, 3, 0.2, 0.1);
    target = smooth_field(ctx, g, Location::Cell, 4, 0.3, 0.4);
    vel_target = MacVelocity<double>(ctx, g);
    for (int a = 0; a < g.dim; ++a)
      vel_target[a] = smooth_field(ctx, g, face_location(a), 8 + unsigned(a), 0.2);
  }

  RolloutLosses<double> losses() const {
    RolloutLosses<double> L;
    ScalarKeyframe<double> kf;
    kf.step = kSteps;
    kf.target = &target;
    L.keyframes.push_back(kf);
    kf.name = "temperature";
    kf.scalar = 1;
    kf.step = kSteps - 1;
    L.keyframes.push_back(kf);
    VelocityTarget<double> vt;
    vt.step = kSteps;
    vt.target = &vel_target;
    vt.weight = 3.0;
    L.velocity_targets.push_back(vt);
    return L;
  }

  Simulation<double> simulation(const StepConfig& config) const {
    Simulation<double> sim(ctx, c.g, config, c.obstacle ? &solid : nullptr);
    sim.set_velocity_boundary(vb);
    return sim;
  }
  double loss(const StepConfig& config) const {
    Simulation<double> sim = simulation(config);
    Rollout<double> r(sim);
    return r.loss(init, kSteps, {}, losses());
  }
  RolloutResult<double> run(RolloutOptions opt = {}) const {
    opt.viscosity_gradient = true;
    opt.scalar_diffusivity_gradient = true;
    Simulation<double> sim = simulation(cfg);
    Rollout<double> r(sim);
    return r.run(init, kSteps, {}, losses(), opt);
  }
};

// Central difference of the loss in one coefficient (relative step 1e-5) against the gradient.
double fd_error(const Problem& p, double StepConfig::*member, double grad, const char* what) {
  StepConfig c = p.cfg;
  const double x = c.*member, h = 1e-5 * x;
  c.*member = x + h;
  const double lp = p.loss(c);
  c.*member = x - h;
  const double lm = p.loss(c);
  const double fd = (lp - lm) / (2 * h);
  const double err = std::abs(fd - grad) / std::abs(grad);
  std::printf("  %-10s %-20s grad = % .12e  fd = % .12e  rel err = %.2e\n", p.c.name.c_str(), what,
              grad, fd, err);
  return err;
}

void check_case(const Case& cs) {
  SCOPED_TRACE(cs.name);
  const Problem p(cs);
  const RolloutResult<double> r = p.run();
  EXPECT_NEAR(r.loss, p.loss(p.cfg), 1e-12 * std::abs(r.loss));
  EXPECT_GT(std::abs(r.grad_viscosity), 1e-4);
  EXPECT_GT(std::abs(r.grad_scalar_diffusivity), 1e-4);
  EXPECT_LE(fd_error(p, &StepConfig::viscosity, r.grad_viscosity, "viscosity"), 1e-6);
  EXPECT_LE(fd_error(p, &StepConfig::scalar_diffusivity, r.grad_scalar_diffusivity, "diffusivity"),
            1e-6);
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

}  // namespace

TEST(ViscosityGradient, MatchesFiniteDifferences2DExplicit) {
  check_case(case_2d(DiffusionMode::Explicit));
}
TEST(ViscosityGradient, MatchesFiniteDifferences2DImplicit) {
  check_case(case_2d(DiffusionMode::Implicit));
}
TEST(ViscosityGradient, MatchesFiniteDifferences3DExplicit) {
  check_case(case_3d(DiffusionMode::Explicit));
}
TEST(ViscosityGradient, MatchesFiniteDifferences3DImplicit) {
  check_case(case_3d(DiffusionMode::Implicit));
}

// The derivative at a zero coefficient: the step skips the diffusion but the gradient is
// dt <lambda, lap(u)>, the one-sided derivative, against a forward difference.
TEST(ViscosityGradient, AtZeroViscosityMatchesForwardDifference) {
  Problem p(case_2d(DiffusionMode::Explicit));
  p.cfg.viscosity = 0;
  const RolloutResult<double> r = p.run();
  StepConfig c = p.cfg;
  const double h = 1e-7;
  c.viscosity = h;
  const double fd = (p.loss(c) - p.loss(p.cfg)) / h;
  std::printf("  nu = 0: grad = % .12e  forward difference = % .12e\n", r.grad_viscosity, fd);
  EXPECT_NEAR(r.grad_viscosity, fd, 1e-5 * std::abs(fd));
}

// Every checkpoint plan gives the store-all coefficient gradients to the bit.
TEST(ViscosityGradient, CheckpointPlansBitwiseEqualStoreAll) {
  for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
    Problem p(case_2d(mode));
    const RolloutResult<double> ref = p.run();
    struct Plan {
      const char* name;
      checkpoint::Strategy strategy;
      int device, host;
    };
    for (const Plan& pl : {Plan{"store-all", checkpoint::Strategy::StoreAll, kSteps - 1, 0},
                           Plan{"revolve", checkpoint::Strategy::Revolve, 1, 0},
                           Plan{"recompute", checkpoint::Strategy::RecomputeFromStart, 1, 0},
                           Plan{"multilevel", checkpoint::Strategy::MultiLevel, 1, 1}}) {
      SCOPED_TRACE(std::string(to_string(mode)) + " " + pl.name);
      RolloutOptions o;
      o.checkpointing.enabled = true;
      o.checkpointing.strategy = pl.strategy;
      o.checkpointing.slots.device = pl.device;
      o.checkpointing.slots.host = pl.host;
      const RolloutResult<double> r = p.run(o);
      EXPECT_TRUE(same_bits(ref.grad_viscosity, r.grad_viscosity))
          << ref.grad_viscosity << " vs " << r.grad_viscosity;
      EXPECT_TRUE(same_bits(ref.grad_scalar_diffusivity, r.grad_scalar_diffusivity))
          << ref.grad_scalar_diffusivity << " vs " << r.grad_scalar_diffusivity;
      EXPECT_TRUE(same_bits(ref.grad_buoyancy, r.grad_buoyancy));
      EXPECT_TRUE(same_bits(ref.loss, r.loss));
    }
  }
}

// The coefficient gradients are added on the device: explicit diffusion adds no host wait
// to a step adjoint (implicit adds the waits of the replayed solves: their convergence
// checks), and a warm call allocates nothing.
TEST(ViscosityGradient, NoHostWaitAndNoAllocationWhenWarm) {
  for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
    SCOPED_TRACE(to_string(mode));
    Problem p(case_2d(mode));
    Simulation<double> sim = p.simulation(p.cfg);
    SmokeGradient<double> grad(p.ctx, p.c.g, 2);
    Buffer<double> acc(p.ctx, 2, p.ctx.memory_space());
    StepControlGradient<double> cg, none;
    cg.viscosity = acc.data();
    cg.scalar_diffusivity = acc.data() + 1;
    auto adjoint = [&](const StepControlGradient<double>& g) {
      for (int a = 0; a < p.c.g.dim; ++a)
        copy(p.ctx, p.vel_target[a], grad.velocity[a]);
      copy(p.ctx, p.target, grad.scalars[0]);
      copy(p.ctx, p.target, grad.scalars[1]);
      return sim.step_adjoint(p.init, {}, grad, &g);
    };
    adjoint(cg);  // first call: allocates the snapshots
    const StepReport rep = adjoint(none);
    const ContextCounters without = test::events_of(p.ctx, [&] { adjoint(none); });
    const ContextCounters with = test::events_of(p.ctx, [&] { adjoint(cg); });
    EXPECT_EQ(with.allocations, 0);
    if (mode == DiffusionMode::Explicit) {
      EXPECT_EQ(with.host_waits, without.host_waits);
    } else {
      // The replay's forward solves: the velocity components' and the scalars'.
      EXPECT_GE(with.host_waits, without.host_waits);
      EXPECT_GT(rep.diffusion.iterations, 0);
    }
    double v[2];
    read_doubles(p.ctx, acc.data(), 2, v);
    EXPECT_NE(v[0], 0.0);
    EXPECT_NE(v[1], 0.0);
  }
}

TEST(ViscosityGradient, ErrorsNameTheOptionAndTheFix) {
  Problem p(case_2d(DiffusionMode::Explicit));
  p.cfg.diffusion = DiffusionMode::None;
  try {
    p.run();
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("RolloutOptions::viscosity_gradient"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Explicit or Implicit"), std::string::npos);
  }
  Problem q(case_2d(DiffusionMode::Implicit));
  q.cfg.order = {StepPart::AdvectVelocity, StepPart::Project};
  Simulation<double> sim = q.simulation(q.cfg);
  SmokeGradient<double> grad(q.ctx, q.c.g, 2);
  Buffer<double> acc(q.ctx, 1, q.ctx.memory_space());
  StepControlGradient<double> cg;
  cg.scalar_diffusivity = acc.data();
  try {
    sim.step_adjoint(q.init, {}, grad, &cg);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("control_grad.scalar_diffusivity"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("no Diffuse part"), std::string::npos);
  }
  EXPECT_THROW(sim.set_viscosity(-1.0), InvalidArgument);
  EXPECT_THROW(sim.set_viscosity(0.0), InvalidArgument);  // would switch the diffusion off
  EXPECT_THROW(sim.set_scalar_diffusivity(std::nan("")), InvalidArgument);
  sim.set_viscosity(0.5);
  EXPECT_EQ(sim.config().viscosity, 0.5);
}

// A user loss on a state without scalars (the Mosaic adapter's rollout: velocity only): its
// gradient reaches the initial velocity, the adjoint of the last step applied to it.
TEST(RolloutUserLoss, StateWithoutScalars) {
  Problem p(case_2d(DiffusionMode::Implicit));
  SmokeState<double> init(p.ctx, p.c.g, {});
  copy(p.ctx, p.init.velocity, init.velocity);
  StepConfig cfg = p.cfg;
  cfg.buoyancy = 0;
  Simulation<double> sim = p.simulation(cfg);
  RolloutLosses<double> L;
  UserLoss<double> u;
  u.steps = {1};
  const MacVelocity<double>* w = &p.vel_target;
  const Context ctx = p.ctx;
  u.fn = [w, ctx](int, const SmokeState<double>& s, SmokeGradient<double>& g) {
    copy(ctx, *w, g.velocity);
    return dot(ctx, s.velocity[0], (*w)[0]) + dot(ctx, s.velocity[1], (*w)[1]);
  };
  L.user.push_back(u);
  Rollout<double> rollout(sim);
  RolloutOptions o;
  o.viscosity_gradient = true;
  const RolloutResult<double> r = rollout.run(init, 1, {}, L, o);
  // The same through one step adjoint.
  SmokeGradient<double> g(p.ctx, p.c.g, 0);
  copy(p.ctx, p.vel_target, g.velocity);
  Buffer<double> acc(p.ctx, 1, p.ctx.memory_space());
  StepControlGradient<double> cg;
  cg.viscosity = acc.data();
  sim.step_adjoint(init, {}, g, &cg);
  double nu_grad = 0;
  read_doubles(p.ctx, acc.data(), 1, &nu_grad);
  EXPECT_TRUE(same_bits(r.grad_viscosity, nu_grad));
  for (int a = 0; a < 2; ++a) {
    const std::vector<double> x = r.grad_initial.velocity[a].to_vector(p.ctx),
                              y = g.velocity[a].to_vector(p.ctx);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(double)), 0) << "component " << a;
  }
  EXPECT_GT(max_abs(p.ctx, r.grad_initial.velocity[0]), 0.0);
}

// Rollout::state_size counts the Diffuse snapshots the coefficient gradients take: a
// checkpointed run on a budget of the working memory plus 2 states stays within it, and the
// estimate is the measured peak up to what it knowingly leaves out or adds (as in
// RolloutMemory.PeakWithinBudget64Cubed).
TEST(ViscosityGradient, CheckpointedPeakWithinTheEstimate) {
  for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
    SCOPED_TRACE(to_string(mode));
    const Problem p(case_2d(mode));
    Context ctx = Context::cpu();  // everything the simulation and the rollout hold
    Simulation<double> sim(ctx, p.c.g, p.cfg, &p.solid);
    sim.set_velocity_boundary(p.vb);
    Rollout<double> rollout(sim);
    RolloutOptions opt;
    opt.viscosity_gradient = opt.scalar_diffusivity_gradient = true;
    opt.checkpointing.enabled = true;
    opt.checkpointing.strategy = checkpoint::Strategy::Revolve;
    RolloutOptions without = opt;
    without.viscosity_gradient = without.scalar_diffusivity_gradient = false;
    const checkpoint::StateSize size = rollout.state_size(p.init, kSteps, opt);
    const std::size_t cell = sizeof(double) * std::size_t(p.c.g.cells());
    const std::size_t mac = sizeof(double) * std::size_t(11 * 9 + 10 * 10);
    EXPECT_EQ(size.working_bytes - rollout.state_size(p.init, kSteps, without).working_bytes,
              mac + 2 * cell);  // one Diffuse part: the velocity and both scalars
    opt.checkpointing.budget.device_bytes = size.working_bytes + 2 * size.state_bytes;
    const RolloutPlan plan = rollout.plan(p.init, kSteps, opt);
    const RolloutResult<double> r = rollout.run(p.init, kSteps, {}, p.losses(), opt);
    const std::size_t peak = ctx.counters().peak_bytes;
    EXPECT_LE(peak, opt.checkpointing.budget.device_bytes);
    // Left out: the loss-value slots (3 coefficient gradients, 2 keyframes, 2 velocity-target
    // components); counted but not allocated: the user-loss gradient (no user loss here).
    const std::size_t loss_slots = sizeof(double) * (3 + 2 + 2);
    EXPECT_EQ(plan.summary.peak_device_bytes + loss_slots - peak, mac + 2 * cell);
    EXPECT_NE(r.grad_viscosity, 0.0);
  }
}
