// Box-side velocity boundaries (issue 14): no-slip and moving walls, velocity inflow and
// outflow. Transpose tests of every operator that sees them (projection, diffusion,
// advection), finite-difference checks of the step's gradient with respect to the inflow
// profile and the wall velocity, plane Poiseuille and Couette flow against their analytic
// profiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
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
constexpr auto MW = BoundaryKind::MovingWall;
constexpr auto IN = BoundaryKind::Inflow;
constexpr auto OF = BoundaryKind::Outflow;

/// The grids of the transpose tests: every new kind on some side, in 2D and 3D, with a
/// closed box holding inflow (its net inflow is then a null-space component).
std::vector<Grid> boundary_grids() {
  const Grid g2 = Grid::make_2d(9, 7, 0.3), g3 = Grid::make_3d(5, 6, 4, 0.25);
  return {
      with_boundary(g2, {{IN, OF}, {NS, MW}}),
      with_boundary(g2, {{IN, IN}, {W, NS}}),  // closed box with two inflow sides
      with_boundary(g2, {{NS, OF}, {IN, O}}),
      with_boundary(g2, {{P, P}, {NS, MW}}),
      with_boundary(g3, {{IN, OF}, {NS, MW}, {MW, W}}),
      with_boundary(g3, {{P, P}, {IN, OF}, {NS, NS}}),
  };
}

std::string side_list(const Grid& g) {
  return g.describe();
}

}  // namespace

// ---------------------------------------------------------------------------
// Kinds and the prescribed values

TEST(VelocityBoundary, KindsParseAndPrint) {
  for (BoundaryKind k :
       {BoundaryKind::Wall, BoundaryKind::Open, BoundaryKind::Periodic, NS, MW, IN, OF})
    EXPECT_EQ(parse_boundary_kind(to_string(k)), k);
  EXPECT_EQ(parse_boundary_kind("free-slip"), BoundaryKind::Wall);
  EXPECT_EQ(parse_boundary_kind("wall"), BoundaryKind::Wall);  // compatibility: free slip
  try {
    parse_boundary_kind("sticky");
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no-slip"), std::string::npos) << e.what();
  }
  Grid g = with_boundary(Grid::make_2d(8, 6, 0.1), {{IN, OF}, {NS, NS}});
  EXPECT_FALSE(g.pressure_has_null_space());  // outflow is p = 0
  g.set_boundary(0, IN, NS);
  EXPECT_TRUE(g.pressure_has_null_space());
}

TEST(VelocityBoundary, ValidateNamesTheSideAndTheFix) {
  const Grid open = with_boundary(Grid::make_2d(8, 6, 0.1), {{IN, OF}, {NS, MW}});
  VelocityBoundary vb;
  vb.inflow[0][0].assign(6, 1.0);
  vb.wall.v[1][1] = {1.0, 0.0, 0.0};
  EXPECT_NO_THROW(vb.validate(open));
  auto expect_msg = [](const Grid& g, const VelocityBoundary& b, const std::string& part) {
    try {
      b.validate(g);
      FAIL() << "no throw, expected " << part;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  VelocityBoundary bad = vb;
  bad.inflow[0][0].assign(5, 1.0);
  expect_msg(open, bad, "has 5 values, the side has 6 faces");
  bad = vb;
  bad.inflow[1][0].assign(8, 1.0);
  expect_msg(open, bad, "side y-low is no-slip, not inflow");
  bad = vb;
  bad.wall.v[1][0] = {0.5, 0, 0};
  expect_msg(open, bad, "side y-low is no-slip, not moving-wall");
  bad = vb;
  bad.inflow[0][0][2] = std::nan("");
  expect_msg(open, bad, "not finite");
  // A closed box: the net inflow must vanish.
  const Grid closed = with_boundary(Grid::make_2d(8, 6, 0.1), {{IN, IN}, {NS, MW}});
  VelocityBoundary in2 = vb;
  in2.inflow[0][1].assign(6, 1.0);  // +x through both: in on the left, out on the right
  EXPECT_NO_THROW(in2.validate(closed));
  in2.inflow[0][1].assign(6, -1.0);  // into the box on both sides
  expect_msg(closed, in2, "x-low (6.000000), x-high (6.000000)");
  expect_msg(closed, in2, "Outflow");
}

// ---------------------------------------------------------------------------
// Projection: inflow faces are kept and counted in the divergence

TEST(VelocityBoundaryProjection, TransposeWithEveryNewKind) {
  Context ctx = Context::cpu();
  for (const Grid& g : boundary_grids()) {
    SCOPED_TRACE(side_list(g));
    PressureSolver<double> solver(ctx, g);
    Field<double> p(ctx, g);
    MacVelocity<double> x(ctx, g), y(ctx, g), px(ctx, g), pty(ctx, g);
    fill_random(ctx, x, 31);
    fill_random(ctx, y, 32);
    if (g.pressure_has_null_space() && g.boundary[0][0] == IN && g.boundary[0][1] == IN) {
      // project() refuses a net inflow through a closed box: x leaves through x-high what
      // enters through x-low (y, the adjoint's input, keeps its null-space component).
      std::vector<double> ux = x[0].to_vector(ctx);
      const int nxf = g.n[0] + 1;
      for (int j = 0; j < g.n[1]; ++j)
        ux[std::size_t(j * nxf + nxf - 1)] = ux[std::size_t(j * nxf)];
      x[0].assign(ctx, ux);
    }
    copy(ctx, x, px);
    copy(ctx, y, pty);
    solver.project(ctx, px, p, 1.0, tight());
    solver.project_adjoint(ctx, pty, tight());
    const double a = dotv(ctx, px, y), b = dotv(ctx, x, pty);
    EXPECT_LE(std::abs(a - b), 1e-12 * std::abs(a)) << a << " vs " << b;
    EXPECT_GT(std::abs(a), 1e-2);
  }
}

TEST(VelocityBoundaryProjection, KeepsTheInflowAndIsDivergenceFree) {
  Context ctx = Context::cpu();
  // Closed box with a balanced inflow (in on the left, out on the right: the same +x
  // profile), and an open one with an outflow side.
  for (BoundaryKind right : {IN, OF}) {
    const Grid g = with_boundary(Grid::make_2d(16, 12, 1.0 / 16), {{IN, right}, {NS, NS}});
    SCOPED_TRACE(g.describe());
    PressureSolver<double> solver(ctx, g);
    MacVelocity<double> u(ctx, g);
    fill_random(ctx, u, 5);
    std::vector<double> prof(12);
    for (int j = 0; j < 12; ++j)
      prof[std::size_t(j)] = 4 * (j + 0.5) / 12 * (1 - (j + 0.5) / 12);
    set_side_faces(ctx, u, 0, 0, prof.data());
    if (right == IN) set_side_faces(ctx, u, 0, 1, prof.data());
    Field<double> p(ctx, g);
    solver.project(ctx, u, p, 1.0, tight());
    EXPECT_LE(max_abs_divergence(ctx, u), 1e-10);
    const std::vector<double> ux = u[0].to_vector(ctx);
    for (int j = 0; j < 12; ++j) {
      EXPECT_EQ(ux[std::size_t(j * 17)], prof[std::size_t(j)]);  // kept bit for bit
      if (right == IN) EXPECT_EQ(ux[std::size_t(j * 17 + 16)], prof[std::size_t(j)]);
    }
    // The no-slip walls' normal faces are fixed at 0.
    const std::vector<double> uy = u[1].to_vector(ctx);
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(uy[std::size_t(i)], 0.0);
      EXPECT_EQ(uy[std::size_t(12 * 16 + i)], 0.0);
    }
  }
}

// ---------------------------------------------------------------------------
// Diffusion: fixed tangential ghosts on no-slip/moving/inflow sides, held normal faces

namespace {

WallVelocity some_wall_velocity(const Grid& g) {
  WallVelocity w;
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (g.boundary[a][s] == MW)
        for (int c = 0; c < g.dim; ++c)
          if (c != a) w.v[a][s][c] = 0.7 - 0.4 * c + 0.3 * s;
  return w;
}

}  // namespace

TEST(VelocityBoundaryDiffusion, ExplicitAndImplicitTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : boundary_grids()) {
    SCOPED_TRACE(g.describe());
    const double dt = 0.05, nu = 0.9 / (2 * g.dim) * g.dx * g.dx / dt;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_explicit(ctx, x, nu, dt, o);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o);
        },
        1e-12);
    const double nui = 3 * g.dx * g.dx / dt;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_implicit(ctx, x, nui, dt, o, tight());
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_implicit_adjoint(ctx, y, nui, dt, o, tight());
        },
        1e-12);
  }
}

// The wall velocity enters diffusion affinely: <g, out(U) - out(0)> is exactly the
// gradient's inner product with U (up to rounding and the implicit solve's tolerance).
TEST(VelocityBoundaryDiffusion, WallVelocityGradientIsTheAffinePart) {
  Context ctx = Context::cpu();
  for (const Grid& g : boundary_grids()) {
    const WallVelocity wall = some_wall_velocity(g);
    bool moving = false;
    for (int a = 0; a < g.dim; ++a)
      moving = moving || g.boundary[a][0] == MW || g.boundary[a][1] == MW;
    if (!moving) continue;
    SCOPED_TRACE(g.describe());
    const double dt = 0.05;
    MacVelocity<double> u(ctx, g), gout(ctx, g), o1(ctx, g), o0(ctx, g), w(ctx, g);
    fill_random(ctx, u, 3);
    fill_random(ctx, gout, 4);
    auto inner = [&](const WallVelocity& gw) {
      double s = 0;
      for (int a = 0; a < 3; ++a)
        for (int side = 0; side < 2; ++side)
          for (int c = 0; c < 3; ++c)
            s += gw.v[a][side][c] * wall.v[a][side][c];
      return s;
    };
    for (bool implicit : {false, true}) {
      const double nu = (implicit ? 3.0 : 0.15) * g.dx * g.dx / dt;
      if (implicit) {
        diffuse_implicit(ctx, u, nu, dt, o1, tight(), wall);
        diffuse_implicit(ctx, u, nu, dt, o0, tight());
        fill(ctx, w, 0.0);
        diffuse_implicit_adjoint(ctx, gout, nu, dt, w, tight());
      } else {
        diffuse_explicit(ctx, u, nu, dt, o1, wall);
        diffuse_explicit(ctx, u, nu, dt, o0);
        copy(ctx, gout, w);
      }
      const double diff = dotv(ctx, gout, o1) - dotv(ctx, gout, o0);
      const double grad = inner(diffuse_wall_velocity_gradient(ctx, w, nu, dt));
      EXPECT_NEAR(grad, diff, 1e-10 * std::max(1.0, std::abs(diff)))
          << (implicit ? "implicit" : "explicit");
      EXPECT_GT(std::abs(diff), 1e-3);
    }
  }
}

// ---------------------------------------------------------------------------
// Advection: the advected components' tangential ghosts mirror the wall

TEST(VelocityBoundaryAdvection, TransposeOfTheLinearPart) {
  Context ctx = Context::cpu();
  for (const Grid& g : boundary_grids()) {
    SCOPED_TRACE(g.describe());
    MacVelocity<double> carrier(ctx, g);
    fill_random(ctx, carrier, 9);
    const double dt = 1.3 * g.dx;  // departure points up to ~1.3 cells away, many clamped
    AdvectionOptions sl, rk2, mc;
    rk2.backtrace = Backtrace::RK2;
    mc.scheme = AdvectionScheme::MacCormack;
    mc.maccormack_clamp = false;  // linear in q
    for (const AdvectionOptions& opt : {sl, rk2, mc})
      expect_mac_transpose(
          ctx, g,
          [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
            advect(ctx, x, carrier, dt, o, opt);
          },
          [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
            advect_adjoint(ctx, carrier, carrier, dt, y, o,
                           static_cast<MacVelocity<double>*>(nullptr), opt);
          },
          1e-12);
  }
}

// A uniform tangential velocity next to a no-slip wall: the advected value half a cell
// from the wall interpolates towards the wall velocity (ghost = 2U - u), not the interior.
TEST(VelocityBoundaryAdvection, GhostMirrorsTheWallVelocity) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_2d(8, 8, 1.0), {{P, P}, {NS, MW}});
  MacVelocity<double> u(ctx, g), carrier(ctx, g), out(ctx, g);
  fill(ctx, u[0], 1.0);
  // The carrier pushes everything down by a quarter cell: v = -0.25 (only the y faces that
  // are not on the walls matter for the departure point of interior samples).
  fill(ctx, carrier[1], -0.25);
  AdvectionOptions opt;
  opt.wall_velocity.v[1][1] = {3.0, 0.0, 0.0};
  advect(ctx, u, carrier, 1.0, out, opt);
  const std::vector<double> ux = out[0].to_vector(ctx);
  // Row j = 7 (centre y = 7.5) departs from y = 7.75, between the centre 7.5 (value 1) and
  // the ghost at 8.5 (2 * 3 - 1 = 5): 1 + 0.25 * 4 = 2.
  EXPECT_NEAR(ux[std::size_t(7 * 8 + 3)], 2.0, 1e-14);
  EXPECT_NEAR(ux[std::size_t(3 * 8 + 3)], 1.0, 1e-14);
}

// ---------------------------------------------------------------------------
// The step: gradients with respect to the inflow profile and the wall velocity

namespace {

struct StepProblem {
  Grid g;
  StepConfig cfg;
  VelocityBoundary vb;
};

StepProblem step_problem(DiffusionMode mode) {
  StepProblem p;
  p.g = with_boundary(Grid::make_2d(10, 8, 0.125), {{IN, OF}, {NS, MW}});
  p.cfg.dt = 0.06;
  p.cfg.diffusion = mode;
  p.cfg.viscosity = 0.02;
  p.cfg.pressure = tight();
  p.cfg.pressure.warm_start = false;
  p.cfg.diffusion_solver = tight();
  // Advection after the projection too: it reads the inflow faces and the wall ghosts.
  p.cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project,
                 StepPart::AdvectVelocity};
  p.vb.inflow[0][0].resize(8);
  for (int j = 0; j < 8; ++j)
    p.vb.inflow[0][0][std::size_t(j)] = 0.8 + 0.3 * std::sin(1.3 * j);
  p.vb.wall.v[1][1] = {0.9, 0.0, 0.0};
  return p;
}

constexpr int kSteps = 3;

/// L = <w, u after kSteps steps> from a fixed random start.
double two_step_loss(const StepProblem& p, const MacVelocity<double>& w) {
  Context ctx = Context::cpu();
  Simulation<double> sim(ctx, p.g, p.cfg);
  sim.set_velocity_boundary(p.vb);
  SmokeState<double> s(ctx, p.g, {});
  fill_random(ctx, s.velocity, 41);
  for (int k = 0; k < kSteps; ++k)
    sim.step(s);
  return dotv(ctx, s.velocity, w);
}

}  // namespace

TEST(VelocityBoundaryStep, GradientMatchesFiniteDifferences) {
  for (DiffusionMode mode : {DiffusionMode::Explicit, DiffusionMode::Implicit}) {
    SCOPED_TRACE(to_string(mode));
    const StepProblem p = step_problem(mode);
    Context ctx = Context::cpu();
    MacVelocity<double> w(ctx, p.g);
    fill_random(ctx, w, 43);
    // Forward, keeping the step inputs; then two step adjoints.
    Simulation<double> sim(ctx, p.g, p.cfg);
    sim.set_velocity_boundary(p.vb);
    std::vector<SmokeState<double>> states;
    states.emplace_back(ctx, p.g, std::vector<std::string>{});
    fill_random(ctx, states[0].velocity, 41);
    for (int k = 1; k < kSteps; ++k) {
      states.emplace_back(ctx, p.g, std::vector<std::string>{});
      copy(ctx, states[std::size_t(k - 1)].velocity, states[std::size_t(k)].velocity);
      sim.step(states[std::size_t(k)]);
    }
    SmokeGradient<double> grad(ctx, p.g, 0);
    copy(ctx, w, grad.velocity);
    VelocityBoundaryGradient gb;
    StepControlGradient<double> cg;
    cg.boundary = &gb;
    for (int k = kSteps - 1; k >= 0; --k)
      sim.step_adjoint(states[std::size_t(k)], {}, grad, &cg);
    ASSERT_EQ(gb.inflow[0][0].size(), 8u);
    // Central differences (the loss is smooth here: no departure point on a grid plane;
    // the same numbers to 8 digits for h from 1e-3 to 1e-7).
    const double h = 1e-5;
    double scale = 0;
    for (double v : gb.inflow[0][0])
      scale = std::max(scale, std::abs(v));
    for (int j : {0, 3, 7}) {
      StepProblem pp = p, pm = p;
      pp.vb.inflow[0][0][std::size_t(j)] += h;
      pm.vb.inflow[0][0][std::size_t(j)] -= h;
      const double fd = (two_step_loss(pp, w) - two_step_loss(pm, w)) / (2 * h);
      EXPECT_NEAR(gb.inflow[0][0][std::size_t(j)], fd, 1e-6 * scale) << "inflow face " << j;
    }
    StepProblem pp = p, pm = p;
    pp.vb.wall.v[1][1][0] += h;
    pm.vb.wall.v[1][1][0] -= h;
    const double fd = (two_step_loss(pp, w) - two_step_loss(pm, w)) / (2 * h);
    EXPECT_NEAR(gb.wall.v[1][1][0], fd, 1e-6 * std::max(1.0, std::abs(fd))) << "wall velocity";
    EXPECT_GT(std::abs(fd), 1e-3);
  }
}

TEST(VelocityBoundaryStep, MacCormackWallGradientIsRefusedWithTheFix) {
  StepProblem p = step_problem(DiffusionMode::Explicit);
  p.cfg.velocity_advection.scheme = AdvectionScheme::MacCormack;
  Context ctx = Context::cpu();
  Simulation<double> sim(ctx, p.g, p.cfg);
  sim.set_velocity_boundary(p.vb);
  SmokeState<double> s(ctx, p.g, {});
  SmokeGradient<double> grad(ctx, p.g, 0);
  VelocityBoundaryGradient gb;
  StepControlGradient<double> cg;
  cg.boundary = &gb;
  try {
    sim.step_adjoint(s, {}, grad, &cg);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("SemiLagrangian"), std::string::npos) << e.what();
  }
}

TEST(VelocityBoundaryStep, ClosedBoxWithNetInflowIsRefused) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_2d(8, 6, 0.1), {{IN, NS}, {NS, NS}});
  Simulation<double> sim(ctx, g, StepConfig{});
  VelocityBoundary vb;
  vb.inflow[0][0].assign(6, 1.0);
  try {
    sim.set_velocity_boundary(vb);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("x-low"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------
// Validation against analytic solutions

namespace {

/// Steady channel flow between no-slip walls y = 0 and y = H (periodic x), driven by a
/// body force f (x) and/or a moving top wall U: implicit diffusion with a large dt
/// converges in a few steps. Returns u at the cell centres of column 0.
std::vector<double> steady_channel(int ny, double f, double U, double nu) {
  Context ctx = Context::cpu();
  const double H = 1.0;
  const Grid g = with_boundary(Grid::make_2d(4, ny, H / ny), {{P, P}, {NS, U != 0 ? MW : NS}});
  StepConfig cfg;
  cfg.dt = 10.0;  // nu dt pi^2 / H^2 ~ 10: each step cuts the transient by ~11
  cfg.viscosity = nu;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.diffusion_solver = tight();
  cfg.pressure = tight();
  Simulation<double> sim(ctx, g, cfg);
  VelocityBoundary vb;
  vb.wall.v[1][1] = {U, 0, 0};
  sim.set_velocity_boundary(vb);
  SmokeState<double> s(ctx, g, {});
  MacVelocity<double> force(ctx, g);
  fill(ctx, force[0], f);
  StepControls<double> c;
  c.force = &force;
  for (int n = 0; n < 16; ++n)
    sim.step(s, c);
  const std::vector<double> ux = s.velocity[0].to_vector(ctx);  // 4 faces a row (periodic)
  std::vector<double> col(ux.size() / 4);
  for (int j = 0; j < ny; ++j)
    col[std::size_t(j)] = ux[std::size_t(j * 4)];
  return col;
}

}  // namespace

// Plane Poiseuille flow: u(y) = f / (2 nu) y (H - y). The 3-point Laplacian is exact on a
// parabola, and the no-slip ghost (ghost = -u_0, zero on the wall by linear extrapolation)
// shifts the discrete solution by exactly f h^2 / (8 nu) (h = H / ny), i.e. (h / H)^2 of
// the peak: 9.8e-4 at 32 cells across, within the 1e-3.
TEST(VelocityBoundaryValidation, PoiseuilleIsParabolic) {
  const int ny = 32;
  const double f = 1.0, nu = 0.1, H = 1.0, h = H / ny;
  const std::vector<double> u = steady_channel(ny, f, 0.0, nu);
  const double peak = f * H * H / (8 * nu);
  double max_rel = 0, max_shift_err = 0;
  for (int j = 0; j < ny; ++j) {
    const double y = (j + 0.5) * h;
    const double exact = f / (2 * nu) * y * (H - y);
    max_rel = std::max(max_rel, std::abs(u[std::size_t(j)] - exact) / peak);
    max_shift_err =
        std::max(max_shift_err, std::abs(u[std::size_t(j)] - exact - f * h * h / (8 * nu)));
  }
  EXPECT_LE(max_rel, 1e-3);
  EXPECT_LE(max_shift_err, 1e-9 * peak);  // the discrete solution, to the solver's precision
}

// Plane Couette flow: a moving top wall U drags a linear profile u = U y / H, which the
// ghost rule reproduces exactly.
TEST(VelocityBoundaryValidation, CouetteIsLinear) {
  const int ny = 16;
  const double U = 0.75;
  const std::vector<double> u = steady_channel(ny, 0.0, U, 0.1);
  for (int j = 0; j < ny; ++j)
    EXPECT_NEAR(u[std::size_t(j)], U * (j + 0.5) / ny, 1e-10) << "row " << j;
}

// The lid-driven cavity against Ghia, Ghia & Shin (1982) is AppBench.CavityRe100Grid32
// (tests/bench_cavity.cmake): dfluid-bench --cavity, which also makes the README's 128x128 figures.

// ---------------------------------------------------------------------------
// Rollout: the boundary values as a control, under store-all and checkpoint plans

namespace {

/// A 5-step rollout of the step problem with a velocity target at the end.
RolloutResult<double> boundary_rollout(const StepProblem& p, const RolloutOptions& opt) {
  Context ctx = Context::cpu();
  Simulation<double> sim(ctx, p.g, p.cfg);
  sim.set_velocity_boundary(p.vb);
  SmokeState<double> s0(ctx, p.g, {});
  fill_random(ctx, s0.velocity, 41);
  MacVelocity<double> target(ctx, p.g);
  fill_random(ctx, target, 47);
  RolloutLosses<double> losses;
  VelocityTarget<double> vt;
  vt.step = 5;
  vt.target = &target;
  losses.velocity_targets.push_back(vt);
  Rollout<double> ro(sim);
  return ro.run(s0, 5, {}, losses, opt);
}

}  // namespace

TEST(VelocityBoundaryRollout, GradientMatchesFiniteDifferencesUnderEveryPlan) {
  const StepProblem p = step_problem(DiffusionMode::Implicit);
  RolloutOptions store_all;
  store_all.boundary_gradient = true;
  const RolloutResult<double> ref = boundary_rollout(p, store_all);
  ASSERT_EQ(ref.grad_boundary.inflow[0][0].size(), 8u);
  const double h = 1e-5;
  for (int j : {1, 6}) {
    StepProblem pp = p, pm = p;
    pp.vb.inflow[0][0][std::size_t(j)] += h;
    pm.vb.inflow[0][0][std::size_t(j)] -= h;
    const double fd = (boundary_rollout(pp, {}).loss - boundary_rollout(pm, {}).loss) / (2 * h);
    EXPECT_NEAR(ref.grad_boundary.inflow[0][0][std::size_t(j)], fd,
                1e-6 * std::max(1.0, std::abs(fd)))
        << "inflow face " << j;
  }
  StepProblem pp = p, pm = p;
  pp.vb.wall.v[1][1][0] += h;
  pm.vb.wall.v[1][1][0] -= h;
  const double fd = (boundary_rollout(pp, {}).loss - boundary_rollout(pm, {}).loss) / (2 * h);
  EXPECT_NEAR(ref.grad_boundary.wall.v[1][1][0], fd, 1e-6 * std::max(1.0, std::abs(fd)));
  // Checkpointed plans replay the same steps: bitwise the same gradient.
  for (checkpoint::Strategy st :
       {checkpoint::Strategy::Revolve, checkpoint::Strategy::RecomputeFromStart,
        checkpoint::Strategy::MultiLevel}) {
    RolloutOptions o = store_all;
    o.checkpointing.enabled = true;
    o.checkpointing.strategy = st;
    o.checkpointing.slots.device = 2;
    o.checkpointing.slots.host = st == checkpoint::Strategy::MultiLevel ? 2 : 0;
    const RolloutResult<double> r = boundary_rollout(p, o);
    EXPECT_EQ(r.loss, ref.loss);
    EXPECT_EQ(r.grad_boundary.inflow[0][0], ref.grad_boundary.inflow[0][0]);
    EXPECT_EQ(r.grad_boundary.wall.v[1][1][0], ref.grad_boundary.wall.v[1][1][0]);
  }
}
