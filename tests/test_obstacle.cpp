// Obstacle walls (issue 14): no-slip obstacles in diffusion (explicit and implicit), in
// velocity advection's ghost fill and in the projection's pressure cotangent; the force on
// an obstacle as a Rollout loss; the obstacle's wall velocity as a control. Transpose tests
// (double, <= 1e-12), the affine parts' gradients, a discrete Archimedes force and a
// Poiseuille wall-shear balance, rollout finite differences (the viscosity gradient included)
// and checkpoint plans.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

#include "adjoint_test_util.hpp"

using namespace dfluid;

namespace {

using dfluid::testing::dotv;
using dfluid::testing::expect_mac_transpose;
using dfluid::testing::fill_random;
using dfluid::testing::O;
using dfluid::testing::P;
using dfluid::testing::W;
using dfluid::testing::with_boundary;

SolverOptions tight() {
  return dfluid::testing::tight_solver();
}

constexpr auto NS = BoundaryKind::NoSlip;
constexpr auto IN = BoundaryKind::Inflow;
constexpr auto OF = BoundaryKind::Outflow;

/// Solid cells: a block, and (2D) a plate one cell thin, so that some interior faces have
/// fluid on both sides; in 3D a block and a one-cell-thin slab along x.
ObstacleMask make_mask(const Context& ctx, const Grid& g) {
  std::vector<std::uint8_t> m(std::size_t(g.cells()), 0);
  auto at = [&](int i, int j, int k) -> std::uint8_t& {
    return m[std::size_t(i + g.n[0] * (j + g.n[1] * k))];
  };
  if (g.dim == 2) {
    for (int j = 3; j <= 5; ++j)
      for (int i = 4; i <= 6; ++i)
        at(i, j, 0) = 1;
    for (int i = 1; i <= 3; ++i)
      at(i, 7, 0) = 1;  // thin plate
  } else {
    for (int k = 1; k <= 2; ++k)
      for (int j = 2; j <= 3; ++j)
        for (int i = 2; i <= 3; ++i)
          at(i, j, k) = 1;
    for (int i = 1; i <= 4; ++i)
      at(i, 5, 3) = 1;  // thin slab
  }
  ObstacleMask mask(ctx, g, Location::Cell);
  mask.assign(ctx, m);
  return mask;
}

std::vector<Grid> obstacle_grids() {
  const Grid g2 = Grid::make_2d(11, 9, 0.3), g3 = Grid::make_3d(6, 7, 5, 0.25);
  return {
      with_boundary(g2, {{IN, OF}, {NS, W}}),
      with_boundary(g2, {{P, P}, {W, NS}}),
      with_boundary(g3, {{IN, OF}, {NS, W}, {P, P}}),
      with_boundary(g3, {{W, W}, {NS, O}, {W, NS}}),
  };
}

}  // namespace

// ---------------------------------------------------------------------------
// Operators

TEST(ObstacleWall, KindsParseAndPrint) {
  for (ObstacleWallKind k : {ObstacleWallKind::FreeSlip, ObstacleWallKind::NoSlip})
    EXPECT_EQ(parse_obstacle_wall_kind(to_string(k)), k);
  try {
    parse_obstacle_wall_kind("sticky");
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no-slip"), std::string::npos) << e.what();
  }
}

TEST(ObstacleDiffusion, ExplicitAndImplicitTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : obstacle_grids()) {
    SCOPED_TRACE(g.describe());
    const ObstacleMask mask = make_mask(ctx, g);
    const NoSlipObstacle<double> ob{&mask, nullptr};
    const double dt = 0.05, nu = 0.9 / (2 * g.dim) * g.dx * g.dx / dt;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_explicit(ctx, x, nu, dt, o, {}, ob);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o, ob);
        },
        1e-12);
    const double nui = 3 * g.dx * g.dx / dt;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_implicit(ctx, x, nui, dt, o, tight(), {}, ob);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_implicit_adjoint(ctx, y, nui, dt, o, tight(), ob);
        },
        1e-12);
  }
}

// The no-slip ghost in the stencil: a fluid face above a solid row sees -u there (2D, one
// free face in a column of a periodic channel), so its explicit update is exactly
// u + nu dt / h^2 (u_above - 3 u + ... ) as for a NoSlip box side.
TEST(ObstacleDiffusion, GhostMatchesTheNoSlipBoxSide) {
  Context ctx = Context::cpu();
  // The same channel twice: rows 0..5 with NoSlip box sides, and rows 0..7 whose rows 0 and 7
  // are solid no-slip obstacles (the solid surfaces sit where the box sides were).
  const Grid box = with_boundary(Grid::make_2d(6, 6, 0.2), {{P, P}, {NS, NS}});
  const Grid big = with_boundary(Grid::make_2d(6, 8, 0.2), {{P, P}, {W, W}});
  std::vector<std::uint8_t> m(48, 0);
  for (int i = 0; i < 6; ++i)
    m[std::size_t(i)] = m[std::size_t(i + 42)] = 1;
  ObstacleMask mask(ctx, big, Location::Cell);
  mask.assign(ctx, m);
  MacVelocity<double> ub(ctx, box), ob(ctx, box), ug(ctx, big), og(ctx, big);
  fill_random(ctx, ub, 5);
  std::vector<double> x = ub[0].to_vector(ctx), xg(48, 0.0);
  std::copy(x.begin(), x.end(), xg.begin() + 6);
  ug[0].assign(ctx, xg);
  const double dt = 0.05, nu = 0.1;
  diffuse_explicit(ctx, ub, nu, dt, ob);
  diffuse_explicit(ctx, ug, nu, dt, og, {}, NoSlipObstacle<double>{&mask, nullptr});
  const std::vector<double> rb = ob[0].to_vector(ctx), rg = og[0].to_vector(ctx);
  for (std::size_t i = 0; i < rb.size(); ++i)
    EXPECT_NEAR(rg[i + 6], rb[i], 1e-15) << "face " << i;
}

TEST(ObstacleAdvection, GhostFillTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : obstacle_grids()) {
    SCOPED_TRACE(g.describe());
    const ObstacleMask mask = make_mask(ctx, g);
    const NoSlipObstacle<double> ob{&mask, nullptr};
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          obstacle_ghost_fill(ctx, x, ob, o);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          fill(ctx, o, 0.0);
          obstacle_ghost_fill_adjoint(ctx, y, ob, o);
        },
        1e-12);
  }
}

// The wall velocity enters diffusion and the ghost fill affinely: <g, out(W) - out(0)> equals
// the wall gradient's inner product with W.
TEST(ObstacleWallVelocity, AffinePartsMatchTheirGradients) {
  Context ctx = Context::cpu();
  for (const Grid& g : obstacle_grids()) {
    SCOPED_TRACE(g.describe());
    const ObstacleMask mask = make_mask(ctx, g);
    MacVelocity<double> u(ctx, g), wall(ctx, g), gout(ctx, g), a(ctx, g), b(ctx, g), gw(ctx, g),
        w(ctx, g);
    fill_random(ctx, u, 3);
    fill_random(ctx, wall, 7);
    fill_random(ctx, gout, 9);
    const NoSlipObstacle<double> with{&mask, &wall}, without{&mask, nullptr};
    // Ghost fill.
    obstacle_ghost_fill(ctx, u, with, a);
    obstacle_ghost_fill(ctx, u, without, b);
    fill(ctx, gw, 0.0);
    obstacle_ghost_fill_wall_adjoint(ctx, gout, mask, gw);
    double lhs = dotv(ctx, gout, a) - dotv(ctx, gout, b), rhs = dotv(ctx, gw, wall);
    EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs)) << "ghost fill";
    EXPECT_GT(std::abs(lhs), 1e-2);
    // Explicit diffusion: w = grad_out.
    const double dt = 0.05, nu = 0.9 / (2 * g.dim) * g.dx * g.dx / dt;
    diffuse_explicit(ctx, u, nu, dt, a, {}, with);
    diffuse_explicit(ctx, u, nu, dt, b, {}, without);
    fill(ctx, gw, 0.0);
    diffuse_obstacle_wall_gradient(ctx, gout, nu, dt, mask, gw);
    lhs = dotv(ctx, gout, a) - dotv(ctx, gout, b);
    rhs = dotv(ctx, gw, wall);
    EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs)) << "explicit diffusion";
    EXPECT_GT(std::abs(lhs), 1e-2);
    // Implicit diffusion: w = the adjoint solve's values.
    const double nui = 3 * g.dx * g.dx / dt;
    diffuse_implicit(ctx, u, nui, dt, a, tight(), {}, with);
    diffuse_implicit(ctx, u, nui, dt, b, tight(), {}, without);
    fill(ctx, w, 0.0);
    diffuse_implicit_adjoint(ctx, gout, nui, dt, w, tight(), without);
    fill(ctx, gw, 0.0);
    diffuse_obstacle_wall_gradient(ctx, w, nui, dt, mask, gw);
    lhs = dotv(ctx, gout, a) - dotv(ctx, gout, b);
    rhs = dotv(ctx, gw, wall);
    EXPECT_NEAR(lhs, rhs, 1e-11 * std::abs(lhs)) << "implicit diffusion";
  }
}

// The projection's pressure p = -(1/dt) A^+ D u is linear in u: its transpose (the pressure
// cotangent of step_adjoint) is -(1/dt) D^T A^+ on the faces the divergence reads.
TEST(ObstacleProjection, PressureCotangentTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : obstacle_grids()) {
    SCOPED_TRACE(g.describe());
    const ObstacleMask mask = make_mask(ctx, g);
    PressureSolver<double> solver(ctx, g, &mask);
    const double dt = 0.07;
    MacVelocity<double> u(ctx, g), gu(ctx, g);
    fill_random(ctx, u, 13);
    Field<double> p(ctx, g, Location::Cell), gp(ctx, g, Location::Cell), y(ctx, g, Location::Cell);
    fill_random(ctx, gp, 17);
    MacVelocity<double> uc(ctx, g);
    copy(ctx, u, uc);
    solver.project(ctx, uc, p, dt, tight());
    solver.solve(ctx, gp, y, tight());
    fill(ctx, gu, 0.0);
    add_divergence_transpose(ctx, y, &mask, -1.0 / dt, gu);
    const double lhs = dot(ctx, gp, p), rhs = dotv(ctx, u, gu);
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << lhs << " vs " << rhs;
    EXPECT_GT(std::abs(lhs), 1e-3);
  }
}

// ---------------------------------------------------------------------------
// The force on an obstacle against analytic values

// Hydrostatics: a uniform body force -g (y) in a closed box with a solid block of bw x bh
// cells. The projection leaves u = 0 and p = -g y + c on the fluid, so the pressure force on
// the block is g times the volume of the fixed y faces of its columns, (bh + 1) h per column:
// F_y = g bw h (bh + 1) h (the discrete Archimedes force; g times the block's area bw bh h^2
// plus one cell row, which vanishes as h -> 0), F_x = 0.
TEST(ObstacleForce, DiscreteArchimedes) {
  Context ctx = Context::cpu();
  const double h = 0.1, gy = 9.81;
  for (ObstacleWallKind kind : {ObstacleWallKind::FreeSlip, ObstacleWallKind::NoSlip}) {
    const Grid g = Grid::make_2d(12, 10, h);
    std::vector<std::uint8_t> m(120, 0);
    const int bw = 3, bh = 2;
    for (int j = 4; j < 4 + bh; ++j)
      for (int i = 5; i < 5 + bw; ++i)
        m[std::size_t(i + 12 * j)] = 1;
    ObstacleMask mask(ctx, g, Location::Cell);
    mask.assign(ctx, m);
    StepConfig cfg;
    cfg.dt = 0.1;
    cfg.order = {StepPart::Forces, StepPart::Project};
    cfg.pressure = tight();
    cfg.pressure.warm_start = false;
    Simulation<double> sim(ctx, g, cfg, &mask);
    sim.set_obstacle_wall({kind, nullptr});
    SmokeState<double> s(ctx, g, {});
    MacVelocity<double> f(ctx, g);
    fill(ctx, f[1], -gy);
    StepControls<double> c;
    c.force = &f;
    sim.step(s, c);
    const std::array<double, 3> F = sim.obstacle_force(s);
    EXPECT_NEAR(F[1], gy * bw * h * (bh + 1) * h, 1e-10);
    EXPECT_NEAR(F[0], 0.0, 1e-10);
  }
}

// Plane Poiseuille flow between two solid rows (no-slip obstacles; periodic x): at steady
// state the wall shear balances the body force on the fluid, F_x = f L H, and each wall
// carries half. The shear is the diffusion stencil's ghost flux, so the balance is exact
// (to the solver tolerance), whatever the resolution.
TEST(ObstacleForce, PoiseuilleWallShearBalancesTheBodyForce) {
  Context ctx = Context::cpu();
  const int nx = 4, ny = 10;
  const double h = 0.125, f = 0.5, nu = 0.1;
  const Grid g = with_boundary(Grid::make_2d(nx, ny + 2, h), {{P, P}, {W, W}});
  std::vector<std::uint8_t> m(std::size_t(nx * (ny + 2)), 0);
  for (int i = 0; i < nx; ++i)
    m[std::size_t(i)] = m[std::size_t(i + nx * (ny + 1))] = 1;
  ObstacleMask mask(ctx, g, Location::Cell);
  mask.assign(ctx, m);
  StepConfig cfg;
  cfg.dt = 10.0;  // implicit: each step cuts the transient by ~1 + nu dt pi^2 / H^2
  cfg.viscosity = nu;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.diffusion_solver = tight();
  cfg.pressure = tight();
  cfg.order = {StepPart::Forces, StepPart::Diffuse, StepPart::Project};
  Simulation<double> sim(ctx, g, cfg, &mask);
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
  SmokeState<double> s(ctx, g, {});
  MacVelocity<double> force(ctx, g);
  fill(ctx, force[0], f);
  StepControls<double> c;
  c.force = &force;
  for (int n = 0; n < 12; ++n)
    sim.step(s, c);
  const double L = nx * h, H = ny * h;
  const std::array<double, 3> F = sim.obstacle_force(s);
  EXPECT_NEAR(F[0], f * L * H, 1e-9 * f * L * H);
  EXPECT_NEAR(F[1], 0.0, 1e-9);
  // The profile is the box-side no-slip one: parabolic up to the ghost's shift f h^2/(8 nu).
  const std::vector<double> u = s.velocity[0].to_vector(ctx);
  for (int j = 1; j <= ny; ++j) {
    const double y = (j - 0.5) * h;
    EXPECT_NEAR(u[std::size_t(j * nx)], f / (2 * nu) * y * (H - y) + f * h * h / (8 * nu), 1e-9)
        << "row " << j;
  }
}

// ---------------------------------------------------------------------------
// Errors

TEST(ObstacleWall, MisuseNamesTheFix) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(8, 6, 0.1);
  StepConfig cfg;
  Simulation<double> plain(ctx, g, cfg);
  auto expect_msg = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      FAIL() << "no throw, expected " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_msg(
      [&] {
        plain.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
      },
      "pass the ObstacleMask");
  SmokeState<double> s(ctx, g, {});
  expect_msg([&] { plain.obstacle_force(s); }, "pass the ObstacleMask");
  const ObstacleMask mask = make_mask(ctx, Grid::make_2d(11, 9, 0.3));
  const Grid g2 = mask.grid();
  Simulation<double> sim(ctx, g2, cfg, &mask);
  MacVelocity<double> wall(ctx, g2), wrong(ctx, Grid::make_2d(5, 5, 0.3));
  expect_msg(
      [&] {
        sim.set_obstacle_wall({ObstacleWallKind::FreeSlip, &wall});
      },
      "set kind = ObstacleWallKind::NoSlip");
  expect_msg([&] { sim.set_obstacle_wall({ObstacleWallKind::NoSlip, &wrong}); }, "wall_velocity");
  expect_msg(
      [&] {
        rigid_rotation_velocity<double>(ctx, Grid::make_1d(8, 0.1), {0, 0, 0}, 1);
      },
      "2D or 3D");
  // Rollout: a force loss on a state without a pressure of a step, or without obstacles.
  SmokeState<double> s2(ctx, g2, {});
  Rollout<double> ro(sim);
  RolloutLosses<double> losses;
  ObstacleForceLoss<double> drag;
  drag.steps = {0};
  losses.obstacle_forces.push_back(drag);
  expect_msg([&] { ro.run(s2, 2, {}, losses); }, "step 0 not in [1, 2]");
  losses.obstacle_forces[0].steps = {1};
  losses.obstacle_forces[0].direction = {0, 0, 1};
  expect_msg([&] { ro.run(s2, 2, {}, losses); }, "direction[2] must be 0");
  Rollout<double> ro_plain(plain);
  losses.obstacle_forces[0].direction = {1, 0, 0};
  expect_msg([&] { ro_plain.run(s, 2, {}, losses); }, "has no obstacles");
}

// ---------------------------------------------------------------------------
// Drag as a Rollout loss: finite differences and checkpoint plans

namespace {

/// A channel (inflow left, outflow right, no-slip top and bottom) with a no-slip block; a
/// drag loss over every state and a lift loss over two.
struct DragProblem {
  Grid g = with_boundary(Grid::make_2d(16, 8, 0.125), {{IN, OF}, {NS, NS}});
  StepConfig cfg;
  VelocityBoundary vb;
  double rate = 0;  ///< rotation rate of the block's wall velocity about its centre
  unsigned seed = 41;
  const MacVelocity<double>* du = nullptr;  ///< optional perturbation of the initial velocity
  double eps = 0;
  bool velocity_loss = false;  ///< 1/2 |u_N|^2 as the loss instead of drag and lift
};

DragProblem drag_problem(DiffusionMode mode) {
  DragProblem p;
  p.cfg.dt = 0.05;
  p.cfg.diffusion = mode;
  p.cfg.viscosity = 0.02;
  p.cfg.pressure = tight();
  p.cfg.pressure.warm_start = false;
  p.cfg.diffusion_solver = tight();
  p.vb.inflow[0][0].resize(8);
  for (int j = 0; j < 8; ++j)
    p.vb.inflow[0][0][std::size_t(j)] = 0.8 + 0.3 * std::sin(1.3 * j);
  return p;
}

ObstacleMask block_mask(const Context& ctx, const Grid& g) {
  std::vector<std::uint8_t> m(std::size_t(g.cells()), 0);
  for (int j = 3; j <= 4; ++j)
    for (int i = 5; i <= 6; ++i)
      m[std::size_t(i + g.n[0] * j)] = 1;
  ObstacleMask mask(ctx, g, Location::Cell);
  mask.assign(ctx, m);
  return mask;
}

RolloutResult<double> drag_rollout(const DragProblem& p, const RolloutOptions& opt) {
  Context ctx = Context::cpu();
  const ObstacleMask mask = block_mask(ctx, p.g);
  Simulation<double> sim(ctx, p.g, p.cfg, &mask);
  sim.set_velocity_boundary(p.vb);
  const MacVelocity<double> wall =
      rigid_rotation_velocity<double>(ctx, p.g, {0.75, 0.5, 0}, p.rate);
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, &wall});
  SmokeState<double> s0(ctx, p.g, {});
  fill_random(ctx, s0.velocity, p.seed);
  for (int a = 0; a < 2; ++a)
    scale(ctx, s0.velocity[a], 0.3);
  if (p.eps != 0)
    for (int a = 0; a < 2; ++a)
      axpy(ctx, p.eps, (*p.du)[a], s0.velocity[a]);
  RolloutLosses<double> losses;
  MacVelocity<double> rest(ctx, p.g);
  fill(ctx, rest, 0.0);
  if (p.velocity_loss) {
    VelocityTarget<double> end;
    end.step = 4;
    end.target = &rest;
    losses.velocity_targets.push_back(end);
  } else {
    ObstacleForceLoss<double> drag;  // every state
    losses.obstacle_forces.push_back(drag);
    ObstacleForceLoss<double> lift;
    lift.name = "lift";
    lift.steps = {2, 4};
    lift.direction = {0.0, 1.0, 0.0};
    lift.weight = 0.7;
    losses.obstacle_forces.push_back(lift);
  }
  Rollout<double> ro(sim);
  return ro.run(s0, 4, {}, losses, opt);
}

}  // namespace

TEST(ObstacleRollout, DragGradientMatchesFiniteDifferencesUnderEveryPlan) {
  Context ctx = Context::cpu();
  const DragProblem p = drag_problem(DiffusionMode::Implicit);
  RolloutOptions store_all;
  store_all.boundary_gradient = true;
  const RolloutResult<double> ref = drag_rollout(p, store_all);
  EXPECT_GT(std::abs(ref.loss_terms.at("drag")), 1e-2);
  EXPECT_GT(std::abs(ref.loss_terms.at("lift")), 1e-4);
  const double h = 1e-5;
  // The initial velocity, along a random direction.
  MacVelocity<double> du(ctx, p.g);
  fill_random(ctx, du, 77);
  DragProblem pp = p, pm = p;
  pp.du = pm.du = &du;
  pp.eps = h;
  pm.eps = -h;
  double fd = (drag_rollout(pp, {}).loss - drag_rollout(pm, {}).loss) / (2 * h);
  const double ad = dotv(ctx, ref.grad_initial.velocity, du);
  EXPECT_NEAR(ad, fd, 1e-6 * std::abs(fd)) << "initial velocity";
  EXPECT_GT(std::abs(fd), 1e-2);
  // The inflow profile.
  for (int j : {1, 6}) {
    DragProblem ip = p, im = p;
    ip.vb.inflow[0][0][std::size_t(j)] += h;
    im.vb.inflow[0][0][std::size_t(j)] -= h;
    fd = (drag_rollout(ip, {}).loss - drag_rollout(im, {}).loss) / (2 * h);
    EXPECT_NEAR(ref.grad_boundary.inflow[0][0][std::size_t(j)], fd,
                1e-6 * std::max(1e-2, std::abs(fd)))
        << "inflow face " << j;
  }
  // Checkpointed plans replay the same steps: bitwise the same gradient.
  for (checkpoint::Strategy st :
       {checkpoint::Strategy::Revolve, checkpoint::Strategy::RecomputeFromStart,
        checkpoint::Strategy::MultiLevel}) {
    RolloutOptions o = store_all;
    o.checkpointing.enabled = true;
    o.checkpointing.strategy = st;
    o.checkpointing.slots.device = 2;
    o.checkpointing.slots.host = st == checkpoint::Strategy::MultiLevel ? 2 : 0;
    const RolloutResult<double> r = drag_rollout(p, o);
    EXPECT_EQ(r.loss, ref.loss);
    for (int a = 0; a < 2; ++a)
      EXPECT_EQ(r.grad_initial.velocity[a].to_vector(ctx),
                ref.grad_initial.velocity[a].to_vector(ctx));
    EXPECT_EQ(r.grad_boundary.inflow[0][0], ref.grad_boundary.inflow[0][0]);
  }
}

// A spinning block (rigid rotation about its centre as its wall velocity): d loss / d rate is
// the inner product of the wall-velocity gradient with the rotation at rate 1.
TEST(ObstacleRollout, RotationRateGradientMatchesFiniteDifferences) {
  Context ctx = Context::cpu();
  for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
    SCOPED_TRACE(to_string(mode));
    DragProblem p = drag_problem(mode);
    p.rate = 0.8;
    RolloutOptions o;
    o.obstacle_wall_velocity_gradient = true;
    const RolloutResult<double> ref = drag_rollout(p, o);
    const MacVelocity<double> unit = rigid_rotation_velocity<double>(ctx, p.g, {0.75, 0.5, 0}, 1.0);
    const double ad = dotv(ctx, ref.grad_obstacle_wall_velocity, unit);
    const double h = 1e-5;
    DragProblem pp = p, pm = p;
    pp.rate += h;
    pm.rate -= h;
    const double fd = (drag_rollout(pp, {}).loss - drag_rollout(pm, {}).loss) / (2 * h);
    EXPECT_NEAR(ad, fd, 1e-6 * std::abs(fd));
    EXPECT_GT(std::abs(fd), 1e-3);
  }
}

// The viscosity gradient with a spinning no-slip block: the obstacle's ghosts 2 U - u and
// its wall velocity's 2 U are part of the Laplacian the diffusion applies, so d/d nu reads
// them too. First through the velocity alone (1/2 |u_N|^2), then with drag and lift as the
// loss, whose viscous part is itself proportional to nu (ObstacleForceCoefficients::
// shear_scale_per_nu).
TEST(ObstacleRollout, ViscosityGradientMatchesFiniteDifferences) {
  for (bool velocity_loss : {true, false})
    for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
      SCOPED_TRACE(std::string(to_string(mode)) + (velocity_loss ? " velocity" : " drag"));
      DragProblem p = drag_problem(mode);
      p.rate = 0.8;
      p.velocity_loss = velocity_loss;
      RolloutOptions o;
      o.viscosity_gradient = true;
      const RolloutResult<double> ref = drag_rollout(p, o);
      const double h = 1e-5;
      DragProblem pp = p, pm = p;
      pp.cfg.viscosity += h;
      pm.cfg.viscosity -= h;
      const double fd = (drag_rollout(pp, {}).loss - drag_rollout(pm, {}).loss) / (2 * h);
      std::printf("  %-8s %-8s grad = % .12e  fd = % .12e  rel err = %.2e\n", to_string(mode),
                  velocity_loss ? "velocity" : "drag", ref.grad_viscosity, fd,
                  std::abs(ref.grad_viscosity - fd) / std::abs(fd));
      EXPECT_NEAR(ref.grad_viscosity, fd, 1e-6 * std::abs(fd));
      EXPECT_GT(std::abs(fd), 1e-2);
    }
}

// Simulation::set_viscosity rebuilds the force coefficients (their viscous part scales with
// nu): the force then equals a Simulation made with the new viscosity.
TEST(ObstacleForce, SetViscosityUpdatesTheViscousForce) {
  Context ctx = Context::cpu();
  DragProblem p = drag_problem(DiffusionMode::Implicit);
  const ObstacleMask mask = block_mask(ctx, p.g);
  const MacVelocity<double> wall = rigid_rotation_velocity<double>(ctx, p.g, {0.75, 0.5, 0}, 0.8);
  auto make = [&](double nu) {
    p.cfg.viscosity = nu;
    auto sim = std::make_unique<Simulation<double>>(ctx, p.g, p.cfg, &mask);
    sim->set_velocity_boundary(p.vb);
    sim->set_obstacle_wall({ObstacleWallKind::NoSlip, &wall});
    return sim;
  };
  auto changed = make(0.02);
  SmokeState<double> s(ctx, p.g, {});
  fill_random(ctx, s.velocity, 5);
  changed->step(s);
  const std::array<double, 3> before = changed->obstacle_force(s);
  changed->set_viscosity(0.05);
  const std::array<double, 3> after = changed->obstacle_force(s),
                              fresh = make(0.05)->obstacle_force(s);
  for (int a = 0; a < 2; ++a)
    EXPECT_EQ(after[a], fresh[a]) << a;
  EXPECT_GT(std::abs(after[0] - before[0]), 1e-3);
}
