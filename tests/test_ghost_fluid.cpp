// A no-slip face-fraction body at its true surface (ghost fluid; core/stencil.hpp,
// NoSlipObstacle::face_distance): implicit diffusion's transposes and wall-velocity gradient,
// circular Couette flow against its exact solution (second order, where the staircase is
// first order at best), Stokes flow through a periodic array of cylinders against Sangani &
// Acrivos (1982) (pressure and shear force on the body), a rollout's drag and rotation-rate
// gradients against central differences, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "adjoint_test_util.hpp"
#include "face_fraction_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/face_fractions.hpp"

using namespace dfluid;
using dfluid::testing::dotv;
using dfluid::testing::fill_random;
using dfluid::testing::node_values;
using dfluid::testing::tight_solver;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Values f(x, y, z, component) at the face centres of every component of a MAC velocity.
template <class F>
MacVelocity<double> face_values(const Context& ctx, const Grid& g, F f) {
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < g.dim; ++a) {
    const std::array<int, 3> e = u[a].extents();
    std::vector<double> v;
    for (int k = 0; k < e[2]; ++k)
      for (int j = 0; j < e[1]; ++j)
        for (int i = 0; i < e[0]; ++i) {
          double x[3] = {(i + 0.5) * g.dx, (j + 0.5) * g.dx, (k + 0.5) * g.dx};
          x[a] -= 0.5 * g.dx;
          v.push_back(f(g.origin[0] + x[0], g.origin[1] + x[1], g.origin[2] + x[2], a));
        }
    u[a].assign(ctx, v);
  }
  return u;
}

/// A body in the grids below: a sphere (a circle in 2D) off the grid's symmetry planes, and
/// in the 2D one a ramp along the bottom too.
std::vector<double> test_body(const Grid& g) {
  const double L = g.n[0] * g.dx;
  return node_values(g, [&](double x, double y, double z) {
    const double dz = g.dim > 2 ? z - 0.47 * L : 0.0;
    const double ball =
        std::sqrt((x - 0.43 * L) * (x - 0.43 * L) + (y - 0.56 * L) * (y - 0.56 * L) + dz * dz) -
        0.23 * L;
    if (g.dim > 2) return ball;
    return std::min(ball, (y - 0.1 * L - 0.21 * x) / std::hypot(1.0, 0.21));
  });
}

std::vector<Grid> test_grids() {
  using dfluid::testing::with_boundary;
  constexpr auto W = BoundaryKind::Wall, P = BoundaryKind::Periodic, N = BoundaryKind::NoSlip,
                 O = BoundaryKind::Open;
  return {with_boundary(Grid::make_2d(14, 12, 0.1), {{W, O}, {N, W}}),
          with_boundary(Grid::make_2d(13, 13, 0.1), {{P, P}, {P, P}}),
          with_boundary(Grid::make_3d(8, 9, 7, 0.1), {{W, N}, {P, P}, {O, W}})};
}

}  // namespace

// Implicit diffusion with a ghost-fluid body is linear (at rest) and its adjoint is the same
// solve: <J x, y> = <x, J^T y> to 1e-12, with periodic, wall, no-slip and open sides.
TEST(GhostFluidDiffusion, ImplicitAdjointTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : test_grids()) {
    SCOPED_TRACE(g.describe());
    const MacVelocity<double> dist = face_center_distance<double>(ctx, g, test_body(g));
    const NoSlipObstacle<double> body{nullptr, nullptr, nullptr, &dist};
    const double nu = 0.7, dt = 0.05;
    dfluid::testing::expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          EXPECT_TRUE(diffuse_implicit(ctx, x, nu, dt, o, tight_solver(), {}, body).converged);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          fill(ctx, o, 0.0);
          EXPECT_TRUE(diffuse_implicit_adjoint(ctx, y, nu, dt, o, tight_solver(), body).converged);
        },
        1e-12);
  }
}

// The wall velocity enters affinely: <g, out(W) - out(0)> = <diffuse_obstacle_wall_gradient,
// W> (w the adjoint solve's values), to 1e-11 (the difference of two solves to 1e-14).
TEST(GhostFluidDiffusion, WallVelocityGradientMatchesItsAffinePart) {
  Context ctx = Context::cpu();
  for (const Grid& g : test_grids()) {
    SCOPED_TRACE(g.describe());
    const MacVelocity<double> dist = face_center_distance<double>(ctx, g, test_body(g));
    MacVelocity<double> u(ctx, g), wall(ctx, g), gout(ctx, g), a(ctx, g), b(ctx, g), w(ctx, g),
        gw(ctx, g);
    fill_random(ctx, u, 3);
    fill_random(ctx, wall, 7);
    fill_random(ctx, gout, 9);
    const NoSlipObstacle<double> with{nullptr, &wall, nullptr, &dist},
        without{nullptr, nullptr, nullptr, &dist};
    const double nu = 0.9, dt = 0.05;
    diffuse_implicit(ctx, u, nu, dt, a, tight_solver(), {}, with);
    diffuse_implicit(ctx, u, nu, dt, b, tight_solver(), {}, without);
    fill(ctx, w, 0.0);
    diffuse_implicit_adjoint(ctx, gout, nu, dt, w, tight_solver(), without);
    fill(ctx, gw, 0.0);
    diffuse_obstacle_wall_gradient(ctx, w, nu, dt, without, gw);
    const double lhs = dotv(ctx, gout, a) - dotv(ctx, gout, b), rhs = dotv(ctx, gw, wall);
    EXPECT_NEAR(lhs, rhs, 1e-11 * std::abs(lhs));  // two solves' difference (measured 1.2e-12)
    EXPECT_GT(std::abs(lhs), 1e-2);
  }
}

namespace {

/// Circular Couette flow between a cylinder of radius r1 spinning at rate 1 and a fixed
/// outer cylinder of radius r2 about c: u_theta = A r + B / r, and each Cartesian component
/// is harmonic (u = (A + B / r^2) (-(y - cy), x - cx)), so one implicit diffusion step with
/// nu dt >> the domain's diffusion time solves the discrete Laplace problem whose limit it
/// is. Returns the largest error |u - exact| over the faces in the fluid, per unit of the
/// inner wall's speed. staircase: solid cells where the cell centre is in a body.
double couette_error(int n, bool staircase) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  g.set_boundary(0, BoundaryKind::Wall, BoundaryKind::Wall);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Wall);
  const double cx = 0.503, cy = 0.488, r1 = 0.17, r2 = 0.43;
  const double A = -r1 * r1 / (r2 * r2 - r1 * r1), B = r1 * r1 * r2 * r2 / (r2 * r2 - r1 * r1);
  auto level = [&](double x, double y) {
    const double r = std::hypot(x - cx, y - cy);
    return std::min(r - r1, r2 - r);
  };
  // The wall velocity: the inner body spins (rate 1), the outer one is at rest.
  const MacVelocity<double> wall = face_values(ctx, g, [&](double x, double y, double, int a) {
    if (std::hypot(x - cx, y - cy) > 0.5 * (r1 + r2)) return 0.0;
    return a == 0 ? -(y - cy) : x - cx;
  });
  const MacVelocity<double> exact = face_values(ctx, g, [&](double x, double y, double, int a) {
    const double r2_ = (x - cx) * (x - cx) + (y - cy) * (y - cy);
    const double s = A + B / r2_;
    return a == 0 ? -s * (y - cy) : s * (x - cx);
  });
  const MacVelocity<double> dist = face_center_distance<double>(
      ctx, g, node_values(g, [&](double x, double y, double) { return level(x, y); }));
  ObstacleMask mask(ctx, g, Location::Cell);
  {
    std::vector<std::uint8_t> m;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        m.push_back(level((i + 0.5) * g.dx, (j + 0.5) * g.dx) < 0 ? 1 : 0);
    mask.assign(ctx, m);
  }
  const NoSlipObstacle<double> body = staircase
                                          ? NoSlipObstacle<double>{&mask, &wall}
                                          : NoSlipObstacle<double>{nullptr, &wall, nullptr, &dist};
  MacVelocity<double> u0(ctx, g), u(ctx, g);
  fill(ctx, u0, 0.0);
  SolverOptions opt = tight_solver();
  opt.max_iterations = 20000;
  EXPECT_TRUE(diffuse_implicit(ctx, u0, 1.0, 1e9, u, opt, {}, body).converged);
  // Compare where both discretizations have fluid: faces whose centre is at least a cell
  // inside the gap (the staircase's own faces end elsewhere).
  double err = 0;
  for (int a = 0; a < 2; ++a) {
    const std::vector<double> got = u[a].to_vector(ctx), want = exact[a].to_vector(ctx),
                              d = dist[a].to_vector(ctx);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (d[i] > g.dx) err = std::max(err, std::abs(got[i] - want[i]));
  }
  return err / r1;
}

}  // namespace

// Circular Couette flow: the ghost-fluid wall converges at second order (max norm) and is
// far more accurate than the staircase, whose wall sits up to half a cell off.
TEST(GhostFluidDiffusion, CircularCouetteConvergesAtSecondOrder) {
  const double g32 = couette_error(32, false), g64 = couette_error(64, false);
  const double s32 = couette_error(32, true), s64 = couette_error(64, true);
  std::printf(
      "[ couette  ] max |u - exact| / (Omega r1): ghost fluid %.3e (32) %.3e (64) "
      "order %.2f; staircase %.3e %.3e order %.2f\n",
      g32, g64, std::log2(g32 / g64), s32, s64, std::log2(s32 / s64));
  EXPECT_GT(std::log2(g32 / g64), 1.7);
  EXPECT_LT(g64, 2e-3);
  EXPECT_LT(g64 * 5, s64);
}

namespace {

struct ArrayResult {
  double flow_drag;   ///< f L^2 / (mu U): the drag per cell that drives the flow U
  double force_drag;  ///< (F + f pi R^2) / (mu U), F from obstacle_force
  double balance;     ///< F / (the force applied to the fluid): 1 at a steady state
};

/// Stokes flow through a periodic square array of cylinders (solid fraction 0.1, unit cell
/// of side L = 1 with n cells across) driven by a body force f along x on the fluid, to a
/// steady state: no advection, implicit diffusion, the incremental pressure correction (its
/// steady state does not depend on dt; 150 steps of 0.005 reach it to about 1e-4). U: the
/// superficial velocity (the flux through the cell over its side). Sangani & Acrivos drive
/// the flow by a mean pressure gradient G instead, which also pushes the cylinder's volume:
/// their drag per cell is G L^2, so here f L^2, or the body's force plus f pi R^2.
ArrayResult periodic_array(int n) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const double R = std::sqrt(0.1 / kPi), c = 0.5, nu = 1.0, f = 1.0;
  const std::vector<double> phi = circle_node_distance(g, {c, c, 0}, R);
  const MacVelocity<double> W = face_open_fractions<double>(ctx, g, phi);
  const MacVelocity<double> dist = face_center_distance<double>(ctx, g, phi);
  StepConfig cfg;
  cfg.order = {StepPart::Forces, StepPart::Diffuse, StepPart::Project};
  cfg.dt = 0.005;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = nu;
  cfg.pressure_correction = PressureCorrection::Incremental;
  cfg.pressure.rel_tol = 1e-12;
  cfg.diffusion_solver.rel_tol = 1e-12;
  Simulation<double> sim(ctx, g, cfg);
  sim.set_obstacle_fractions(W, dist);
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
  // The force acts on the fluid: on the faces whose centre is in the fluid.
  const MacVelocity<double> force = face_values(ctx, g, [&](double x, double y, double, int a) {
    return a == 0 && std::hypot(x - c, y - c) > R ? f : 0.0;
  });
  SmokeState<double> s(ctx, g, {});
  StepControls<double> controls;
  controls.force = &force;
  for (int k = 0; k < 150; ++k)
    sim.step(s, controls);
  const double F = sim.obstacle_force(s)[0];
  double flux = 0, applied = 0;  // sum of W u and of the force over the x faces, times dx^2
  const std::vector<double> u = s.velocity[0].to_vector(ctx), w = W[0].to_vector(ctx),
                            fx = force[0].to_vector(ctx);
  for (std::size_t i = 0; i < u.size(); ++i) {
    flux += w[i] * u[i] * g.dx * g.dx;
    applied += fx[i] * g.dx * g.dx;
  }
  return {f / (nu * flux), (F + f * kPi * R * R) / (nu * flux), F / applied};
}

}  // namespace

// Stokes flow through a periodic square array of cylinders at solid fraction 0.1 against
// Sangani & Acrivos (1982, Int. J. Multiphase Flow 8, Table 1: F / (mu U) = 24.83), from the
// flow (the superficial velocity the driving force reaches) and from the body's force
// (pressure plus the ghost-fluid wall's shear); at a steady state the force on the body is
// the force applied to the fluid.
TEST(GhostFluidForce, PeriodicArrayOfCylindersMatchesSanganiAcrivos) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "Release-only: two steady-state runs (7 s in Release); the other tests of "
                  "this file run the same code under the sanitizers";
#endif
  const ArrayResult r24 = periodic_array(24), r48 = periodic_array(48);
  std::printf(
      "[ array    ] F/(mu U), Sangani-Acrivos 24.83: from the flow %.3f (24) %.3f (48); "
      "from the body's force %.3f %.3f; force / applied %.4f %.4f\n",
      r24.flow_drag, r48.flow_drag, r24.force_drag, r48.force_drag, r24.balance, r48.balance);
  const double ref = 24.83;
  EXPECT_NEAR(r48.flow_drag, ref, 0.01 * ref);   // measured +0.05%
  EXPECT_NEAR(r48.force_drag, ref, 0.01 * ref);  // measured -0.1%
  EXPECT_NEAR(r48.balance, 1.0, 0.01);           // measured 0.9998
  EXPECT_NEAR(r24.flow_drag, ref, 0.04 * ref);   // measured -1.5%
  EXPECT_NEAR(r24.force_drag, ref, 0.04 * ref);  // measured -2.7%
  EXPECT_NEAR(r24.balance, 1.0, 0.02);           // measured 0.991
  EXPECT_LT(std::abs(r48.flow_drag - ref), std::abs(r24.flow_drag - ref));
  EXPECT_LT(std::abs(r48.force_drag - ref), std::abs(r24.force_drag - ref));
}

namespace {

constexpr double kDrift[2] = {0.8, -0.5};

/// The uniform velocity v on every face.
MacVelocity<double> uniform_velocity(const Context& ctx, const Grid& g, const double v[2]) {
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < 2; ++a)
    fill(ctx, u[a], v[a]);
  return u;
}

/// A short rollout through a channel past a no-slip face-fraction cylinder spinning at
/// `rate` (a wall velocity), with drag and lift (pressure and shear) as the loss; the initial
/// velocity is perturbed by eps du.
RolloutResult<double> spinning_rollout(const MacVelocity<double>* du, double eps, double rate,
                                       double speed = 0, double nu = 0.01) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(20, 10, 0.05);
  g.set_boundary(0, BoundaryKind::Inflow, BoundaryKind::Outflow);
  g.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::NoSlip);
  StepConfig cfg;
  cfg.dt = 0.04;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = nu;
  cfg.pressure_correction = PressureCorrection::Incremental;
  cfg.pressure = tight_solver();
  cfg.pressure.warm_start = false;
  cfg.diffusion_solver = tight_solver();
  Simulation<double> sim(ctx, g, cfg);
  const std::vector<double> phi = circle_node_distance(g, {0.37, 0.24, 0}, 0.11);
  sim.set_obstacle_fractions(face_open_fractions<double>(ctx, g, phi),
                             face_center_distance<double>(ctx, g, phi));
  // The wall velocity: the spin, plus a translation at `speed` along kDrift (the body moves
  // through the grid without its mask moving: the projection carries its flux).
  MacVelocity<double> spin = rigid_rotation_velocity<double>(ctx, g, {0.37, 0.24, 0}, rate);
  for (int a = 0; a < 2; ++a) {
    MacVelocity<double> drift = uniform_velocity(ctx, g, kDrift);
    axpy(ctx, speed, drift[a], spin[a]);
  }
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, &spin});
  VelocityBoundary vb;
  vb.inflow[0][0].resize(10);
  for (int j = 0; j < 10; ++j)
    vb.inflow[0][0][std::size_t(j)] = 0.6 + 0.3 * std::sin(0.3 * j);
  sim.set_velocity_boundary(vb);
  SmokeState<double> s0(ctx, g, {});
  fill_random(ctx, s0.velocity, 17);
  if (du)
    for (int a = 0; a < 2; ++a)
      axpy(ctx, eps, (*du)[a], s0.velocity[a]);
  RolloutLosses<double> losses;
  losses.obstacle_forces.emplace_back();  // drag on every state
  ObstacleForceLoss<double> lift;
  lift.name = "lift";
  lift.steps = {2, 4};
  lift.direction = {0.0, 1.0, 0.0};
  lift.weight = 0.7;
  losses.obstacle_forces.push_back(lift);
  RolloutOptions opt;
  opt.obstacle_wall_velocity_gradient = true;
  opt.viscosity_gradient = true;
  Rollout<double> ro(sim);
  return ro.run(s0, 4, {}, losses, opt);
}

}  // namespace

// The rollout's gradients through steps with the ghost-fluid wall (its viscous terms, its
// shear in the force) against central differences: the initial velocity along a random
// direction, and the rotation rate (d loss / d rate = <grad wall velocity, the rotation at
// rate 1>); 1e-6 relative.
TEST(GhostFluidRollout, DragAndRotationGradientsMatchFiniteDifferences) {
  Context ctx = Context::cpu();
  const double rate = 1.5;
  const RolloutResult<double> ref = spinning_rollout(nullptr, 0, rate);
  const Grid& g = ref.grad_initial.velocity.grid();
  MacVelocity<double> du(ctx, g);
  fill_random(ctx, du, 5);
  const double h = 1e-5;
  const double fd_u =
      (spinning_rollout(&du, h, rate).loss - spinning_rollout(&du, -h, rate).loss) / (2 * h);
  const double ad_u = dotv(ctx, ref.grad_initial.velocity, du);
  const double fd_rate =
      (spinning_rollout(nullptr, 0, rate + h).loss - spinning_rollout(nullptr, 0, rate - h).loss) /
      (2 * h);
  const double ad_rate = dotv(ctx, ref.grad_obstacle_wall_velocity,
                              rigid_rotation_velocity<double>(ctx, g, {0.37, 0.24, 0}, 1.0));
  std::printf("[ rollout  ] initial velocity: grad . du = % .12e  fd = % .12e\n", ad_u, fd_u);
  std::printf("[ rollout  ] rotation rate:    grad      = % .12e  fd = % .12e\n", ad_rate, fd_rate);
  EXPECT_NEAR(ad_u, fd_u, 1e-6 * std::abs(fd_u));
  EXPECT_NEAR(ad_rate, fd_rate, 1e-6 * std::abs(fd_rate));
  EXPECT_GT(std::abs(fd_rate), 1e-4);
  EXPECT_GT(std::abs(ref.loss_terms.at("drag")), 1e-2);
}

// The same through a body that also translates (a wall velocity with a normal component: the
// projection's solid flux, the pressure's dependence on it through the force loss, the
// closed faces advection samples): the gradients with respect to its speed and to the
// viscosity, 1e-6 relative.
TEST(GhostFluidRollout, TranslationSpeedAndViscosityGradientsMatchFiniteDifferences) {
  Context ctx = Context::cpu();
  const double rate = 1.5, speed = 0.3, h = 1e-5;
  const RolloutResult<double> ref = spinning_rollout(nullptr, 0, rate, speed);
  const Grid& g = ref.grad_initial.velocity.grid();
  const double fd = (spinning_rollout(nullptr, 0, rate, speed + h).loss -
                     spinning_rollout(nullptr, 0, rate, speed - h).loss) /
                    (2 * h);
  const double ad = dotv(ctx, ref.grad_obstacle_wall_velocity, uniform_velocity(ctx, g, kDrift));
  std::printf("[ rollout  ] translation speed: grad = % .12e  fd = % .12e\n", ad, fd);
  EXPECT_NEAR(ad, fd, 1e-6 * std::abs(fd));
  EXPECT_GT(std::abs(fd), 1e-3);
  // The viscosity: the ghost-fluid wall's terms in the viscous step and in the shear force.
  const double nu = 0.01, hn = 1e-7;
  const double fd_nu = (spinning_rollout(nullptr, 0, rate, speed, nu + hn).loss -
                        spinning_rollout(nullptr, 0, rate, speed, nu - hn).loss) /
                       (2 * hn);
  std::printf("[ rollout  ] viscosity: grad = % .12e  fd = % .12e\n", ref.grad_viscosity, fd_nu);
  EXPECT_NEAR(ref.grad_viscosity, fd_nu, 1e-6 * std::abs(fd_nu));
  EXPECT_GT(std::abs(fd_nu), 1e-2);
}

// A body carried with a uniform flow (its wall velocity the flow's) leaves the flow alone: the
// viscous step's wall terms, the projection's solid flux and advection's closed faces all
// agree with it, to round-off, over whole steps; the same body at rest deflects it.
TEST(GhostFluidSimulation, BodyCarriedWithTheFlowLeavesItUniform) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(24, 20, 0.05);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  StepConfig cfg;
  cfg.dt = 0.03;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.02;
  cfg.pressure = tight_solver();
  cfg.diffusion_solver = tight_solver();
  const std::vector<double> phi = circle_node_distance(g, {0.53, 0.47, 0}, 0.21);
  const MacVelocity<double> flow = uniform_velocity(ctx, g, kDrift);
  for (const bool carried : {true, false}) {
    Simulation<double> sim(ctx, g, cfg);
    sim.set_obstacle_fractions(face_open_fractions<double>(ctx, g, phi),
                               face_center_distance<double>(ctx, g, phi));
    sim.set_obstacle_wall({ObstacleWallKind::NoSlip, carried ? &flow : nullptr});
    SmokeState<double> s(ctx, g, {});
    copy(ctx, flow, s.velocity);
    for (int k = 0; k < 5; ++k)
      sim.step(s);
    // The change on the open faces (the closed ones are the body's).
    double change = 0;
    const MacVelocity<double> W = face_open_fractions<double>(ctx, g, phi);
    const MacVelocity<double> d = face_center_distance<double>(ctx, g, phi);
    for (int a = 0; a < 2; ++a) {
      const std::vector<double> u = s.velocity[a].to_vector(ctx), dv = d[a].to_vector(ctx);
      for (std::size_t i = 0; i < u.size(); ++i)
        if (dv[i] > 0) change = std::max(change, std::abs(u[i] - kDrift[a]));
    }
    std::printf("[ carried  ] body %s: max |u - U| on the open faces %.3e\n",
                carried ? "carried with the flow" : "at rest", change);
    if (carried)
      EXPECT_LT(change, 1e-11);
    else
      EXPECT_GT(change, 0.1);
  }
}

// fill_closed_faces and its adjoint: <fill(u, U), g> = <u, adj_u(g)> + <U, adj_U(g)>
// (exactly: each face reads one of the two).
TEST(GhostFluidClosedFaces, FillAndItsAdjoint) {
  Context ctx = Context::cpu();
  for (const Grid& g : test_grids()) {
    SCOPED_TRACE(g.describe());
    const MacVelocity<double> W = face_open_fractions<double>(ctx, g, test_body(g));
    MacVelocity<double> u(ctx, g), U(ctx, g), gout(ctx, g), out(ctx, g), gu(ctx, g), gU(ctx, g);
    fill_random(ctx, u, 1);
    fill_random(ctx, U, 2);
    fill_random(ctx, gout, 3);
    fill_closed_faces(ctx, W, u, &U, out);
    fill(ctx, gu, 0.0);
    fill(ctx, gU, 0.0);
    fill_closed_faces_adjoint(ctx, W, gout, gu, &gU);
    const double lhs = dotv(ctx, out, gout), rhs = dotv(ctx, u, gu) + dotv(ctx, U, gU);
    EXPECT_NEAR(lhs, rhs, 1e-13 * std::abs(lhs));
    EXPECT_GT(std::abs(dotv(ctx, U, gU)), 1e-3);  // some faces are closed
  }
}

// What a user can get wrong, each refused with a message that names it.
TEST(GhostFluidErrors, RefusedWithAMessage) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 10, 0.1);
  const std::vector<double> phi = circle_node_distance(g, {0.55, 0.5, 0}, 0.2);
  const MacVelocity<double> W = face_open_fractions<double>(ctx, g, phi);
  const MacVelocity<double> dist = face_center_distance<double>(ctx, g, phi);
  auto expect_message = [](auto f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "not refused: " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  StepConfig cfg;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.01;
  {  // no face distance: no no-slip wall
    Simulation<double> sim(ctx, g, cfg);
    sim.set_obstacle_fractions(W);
    expect_message(
        [&] {
          sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
        },
        "set_obstacle_fractions with the face distance");
    sim.set_obstacle_fractions(W, dist);
    sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
    // A no-slip wall needs the distance, so the overload without it is refused now.
    expect_message([&] { sim.set_obstacle_fractions(W); }, "face_center_distance");
    EXPECT_TRUE(sim.has_obstacle_face_distance());
  }
  {  // explicit diffusion
    StepConfig e = cfg;
    e.diffusion = DiffusionMode::Explicit;
    e.dt = 0.1;  // stable for the explicit step without the body
    Simulation<double> sim(ctx, g, e);
    sim.set_obstacle_fractions(W, dist);
    expect_message(
        [&] {
          sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
        },
        "DiffusionMode::Implicit");
    MacVelocity<double> u(ctx, g), o(ctx, g);
    fill(ctx, u, 0.0);
    expect_message(
        [&] {
          diffuse_explicit(ctx, u, 0.01, 0.01, o, {},
                           NoSlipObstacle<double>{nullptr, nullptr, nullptr, &dist});
        },
        "needs implicit diffusion");
  }
  {  // fractions and distance from different bodies: a fluid face closed
    Simulation<double> sim(ctx, g, cfg);
    const MacVelocity<double> other =
        face_center_distance<double>(ctx, g, circle_node_distance(g, {0.3, 0.5, 0}, 0.2));
    expect_message([&] { sim.set_obstacle_fractions(W, other); },
                   "faces have a positive face_distance");
    EXPECT_FALSE(sim.has_obstacle_fractions());
  }
  {  // a mask and a distance at once
    ObstacleMask m(ctx, g, Location::Cell);
    m.assign(ctx, std::vector<std::uint8_t>(std::size_t(g.cells()), 0));
    MacVelocity<double> u(ctx, g), o(ctx, g);
    fill(ctx, u, 0.0);
    expect_message(
        [&] {
          diffuse_implicit(ctx, u, 0.01, 0.01, o, tight_solver(), {},
                           NoSlipObstacle<double>{&m, nullptr, nullptr, &dist});
        },
        "both a mask and a face_distance");
  }
}
