// The convective outflow side (BoundaryKind::ConvectiveOutflow, issue 14): the kind and its
// parameter, the transpose of its update (convective_outflow_values) and of every operator
// that distinguishes sides on grids that have it (projection, explicit and implicit
// diffusion, advection), central differences of a step and a rollout, and what it is for:
// a vortex leaves through it with less reflection than through a zero-gradient (p = 0)
// Outflow side.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "dfluid/dfluid.hpp"

#include "adjoint_test_util.hpp"

using namespace dfluid;

namespace {

using dfluid::testing::dotv;
using dfluid::testing::expect_mac_transpose;
using dfluid::testing::fill_random;
using dfluid::testing::P;
using dfluid::testing::W;
using dfluid::testing::with_boundary;

constexpr auto NS = BoundaryKind::NoSlip;
constexpr auto IN = BoundaryKind::Inflow;
constexpr auto OF = BoundaryKind::Outflow;
constexpr auto CO = BoundaryKind::ConvectiveOutflow;

SolverOptions tight() {
  return dfluid::testing::tight_solver();
}

/// Grids with a convective side: against an inflow, two of them, in 2D and 3D.
std::vector<Grid> convective_grids() {
  const Grid g2 = Grid::make_2d(9, 7, 0.3), g3 = Grid::make_3d(5, 6, 4, 0.25);
  return {
      with_boundary(g2, {{IN, CO}, {NS, NS}}),
      with_boundary(g2, {{CO, CO}, {IN, W}}),
      with_boundary(g3, {{IN, CO}, {NS, W}, {P, P}}),
      with_boundary(g3, {{W, NS}, {CO, IN}, {NS, CO}}),
  };
}

std::vector<double> random_values(std::size_t n, unsigned seed) {
  std::vector<double> v(n);
  unsigned s = seed;
  for (double& x : v) {
    s = s * 1664525u + 1013904223u;
    x = double(s >> 8) / double(1u << 24) - 0.5;
  }
  return v;
}

}  // namespace

TEST(ConvectiveOutflow, KindParsesAndValidatesItsSpeed) {
  EXPECT_EQ(parse_boundary_kind(to_string(CO)), CO);
  EXPECT_EQ(parse_boundary_kind("convective"), CO);
  EXPECT_TRUE(boundary_is_closed(CO));  // Neumann for the pressure, faces held
  EXPECT_FALSE(boundary_is_open(CO));
  EXPECT_FALSE(boundary_fixes_tangential(CO));  // tangential velocity: zero gradient
  const Grid g = with_boundary(Grid::make_2d(8, 6, 0.1), {{IN, CO}, {NS, NS}});
  VelocityBoundary vb;
  vb.inflow[0][0].assign(6, 1.0);  // a net inflow: the convective side takes it
  auto expect_msg = [&](const VelocityBoundary& b, const std::string& part) {
    try {
      b.validate(g);
      FAIL() << "no throw, expected " << part;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_msg(vb, "side x-high is convective-outflow: its outflow_speed U_c = 0");
  vb.outflow_speed[0][1] = 1.0;
  EXPECT_NO_THROW(vb.validate(g));
  VelocityBoundary bad = vb;
  bad.outflow_speed[1][0] = 0.5;
  expect_msg(bad, "side y-low is no-slip, not convective-outflow");
  // A Simulation that never got the speed says so when it steps.
  Context ctx = Context::cpu();
  StepConfig cfg;
  cfg.dt = 0.01;
  Simulation<double> sim(ctx, g, cfg);
  SmokeState<double> s(ctx, g, {});
  try {
    sim.step(s);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("x-high is convective-outflow"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("outflow_speed"), std::string::npos) << e.what();
  }
}

// The update is linear in (u, profiles): <J x, y> = <x, J^T y>, and it balances the mass.
TEST(ConvectiveOutflow, UpdateTransposeAndMassBalance) {
  Context ctx = Context::cpu();
  for (const Grid& g : convective_grids()) {
    SCOPED_TRACE(g.describe());
    MacVelocity<double> u(ctx, g), gu(ctx, g);
    fill_random(ctx, u, 5);
    fill(ctx, gu, 0.0);
    std::vector<Buffer<double>> bufs;
    ConvectiveOutflowSides<double> fwd, adj;
    std::vector<std::vector<double>> in_vals(6), out_cot(6);
    double net_in = 0;
    for (int a = 0; a < g.dim; ++a)
      for (int s = 0; s < 2; ++s) {
        const std::size_t m = VelocityBoundary::side_faces(g, a);
        const int k = 2 * a + s;
        if (g.boundary[a][s] == IN) {
          in_vals[std::size_t(k)] = random_values(m, 7u + unsigned(k));
          for (double v : in_vals[std::size_t(k)])
            net_in += s ? -v : v;
          bufs.emplace_back(ctx, Index(m), ctx.memory_space());
          std::copy(in_vals[std::size_t(k)].begin(), in_vals[std::size_t(k)].end(),
                    bufs.back().data());
          fwd.inflow[a][s] = bufs.back().data();
          bufs.emplace_back(ctx, Index(m), ctx.memory_space());
          std::fill(bufs.back().data(), bufs.back().data() + m, 0.0);
          adj.inflow[a][s] = bufs.back().data();
        } else if (g.boundary[a][s] == CO) {
          fwd.courant[a][s] = adj.courant[a][s] = 0.4 + 0.9 * k;
          bufs.emplace_back(ctx, Index(m), ctx.memory_space());
          fwd.values[a][s] = bufs.back().data();
          out_cot[std::size_t(k)] = random_values(m, 17u + unsigned(k));
          bufs.emplace_back(ctx, Index(m), ctx.memory_space());
          std::copy(out_cot[std::size_t(k)].begin(), out_cot[std::size_t(k)].end(),
                    bufs.back().data());
          adj.values[a][s] = bufs.back().data();
        }
      }
    convective_outflow_values(ctx, u, fwd);
    double lhs = 0, net_out = 0;
    for (int a = 0; a < g.dim; ++a)
      for (int s = 0; s < 2; ++s)
        if (fwd.values[a][s]) {
          const std::vector<double>& c = out_cot[std::size_t(2 * a + s)];
          for (std::size_t i = 0; i < c.size(); ++i) {
            lhs += fwd.values[a][s][i] * c[i];
            net_out += s ? fwd.values[a][s][i] : -fwd.values[a][s][i];
          }
        }
    // The net outward flux of the convective faces equals the profiles' net inflow.
    EXPECT_NEAR(net_out, net_in, 1e-12 * (1 + std::abs(net_in)));
    convective_outflow_values_adjoint(ctx, adj, gu);
    double rhs = dotv(ctx, u, gu);
    for (int a = 0; a < g.dim; ++a)
      for (int s = 0; s < 2; ++s)
        if (adj.inflow[a][s]) {
          const std::vector<double>& v = in_vals[std::size_t(2 * a + s)];
          for (std::size_t i = 0; i < v.size(); ++i)
            rhs += v[i] * adj.inflow[a][s][i];
        }
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << lhs << " vs " << rhs;
    EXPECT_GT(std::abs(lhs), 1e-2);
  }
}

// A uniform outflow is a fixed point of the update: u_b = u_i = U stays U.
TEST(ConvectiveOutflow, UniformOutflowIsKept) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_2d(8, 5, 0.1), {{IN, CO}, {P, P}});
  MacVelocity<double> u(ctx, g);
  fill(ctx, u[0], 1.5);
  fill(ctx, u[1], 0.0);
  Buffer<double> in(ctx, 5, ctx.memory_space()), out(ctx, 5, ctx.memory_space());
  std::fill(in.data(), in.data() + 5, 1.5);
  ConvectiveOutflowSides<double> cs;
  cs.courant[0][1] = 2.0;
  cs.values[0][1] = out.data();
  cs.inflow[0][0] = in.data();
  convective_outflow_values(ctx, u, cs);
  for (int j = 0; j < 5; ++j)
    EXPECT_NEAR(out.data()[j], 1.5, 1e-14);
}

// ---------------------------------------------------------------------------
// The operators that distinguish sides, on grids with a convective side

namespace {

/// x with the net flux into the box through its held faces (Inflow and ConvectiveOutflow
/// sides) removed from the first held face: PressureSolver::project refuses a closed box
/// with a net inflow. y, the adjoint's input, keeps its null-space component.
void balance_held_faces(const Context& ctx, const Grid& g, MacVelocity<double>& x) {
  double net = 0;
  int first_axis = -1, first_side = 0;
  std::vector<std::vector<double>> v(std::size_t(g.dim));
  for (int a = 0; a < g.dim; ++a)
    v[std::size_t(a)] = x[a].to_vector(ctx);
  auto for_faces = [&](int a, int s, auto f) {  // f(index) over the side's normal faces
    const std::array<int, 3> e = x[a].extents();
    for (int k = 0; k < e[2]; ++k)
      for (int j = 0; j < e[1]; ++j)
        for (int i = 0; i < e[0]; ++i) {
          const int c[3] = {i, j, k};
          if (c[a] == (s == 0 ? 0 : e[a] - 1)) f(std::size_t(i + e[0] * (j + e[1] * k)));
        }
  };
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s) {
      if (!boundary_holds_flux(g.boundary[a][s])) continue;
      if (first_axis < 0) first_axis = a, first_side = s;
      for_faces(a, s, [&](std::size_t i) { net += (s == 0 ? 1 : -1) * v[std::size_t(a)][i]; });
    }
  if (first_axis < 0 || !g.pressure_has_null_space()) return;
  bool done = false;
  for_faces(first_axis, first_side, [&](std::size_t i) {
    if (done) return;
    v[std::size_t(first_axis)][i] -= (first_side == 0 ? 1 : -1) * net;
    done = true;
  });
  x[first_axis].assign(ctx, v[std::size_t(first_axis)]);
}

}  // namespace

TEST(ConvectiveOutflow, OperatorTransposes) {
  Context ctx = Context::cpu();
  for (const Grid& g : convective_grids()) {
    SCOPED_TRACE(g.describe());
    PressureSolver<double> solver(ctx, g);
    Field<double> p(ctx, g);
    {  // the projection, from a balanced x (project() refuses a closed box's net inflow)
      MacVelocity<double> x(ctx, g), y(ctx, g), px(ctx, g), pty(ctx, g);
      fill_random(ctx, x, 11);
      fill_random(ctx, y, 23);
      balance_held_faces(ctx, g, x);
      copy(ctx, x, px);
      solver.project(ctx, px, p, 1.0, tight());
      copy(ctx, y, pty);
      solver.project_adjoint(ctx, pty, tight());
      const double lhs = dotv(ctx, px, y), rhs = dotv(ctx, x, pty);
      EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << lhs << " vs " << rhs;
      EXPECT_GT(std::abs(lhs), 1e-3);
    }
    const double dt = 0.05, nu = 0.9 / (2 * g.dim) * g.dx * g.dx / dt, nui = 3 * nu;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_explicit(ctx, x, nu, dt, o);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o);
        },
        1e-12);
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_implicit(ctx, x, nui, dt, o, tight());
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_implicit_adjoint(ctx, y, nui, dt, o, tight());
        },
        1e-12);
    MacVelocity<double> carrier(ctx, g);
    fill_random(ctx, carrier, 9);
    AdvectionOptions rk2;
    rk2.backtrace = Backtrace::RK2;
    expect_mac_transpose(
        ctx, g,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          advect(ctx, x, carrier, 1.3 * g.dx, o, rk2);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          advect_adjoint(ctx, carrier, carrier, 1.3 * g.dx, y, o,
                         static_cast<MacVelocity<double>*>(nullptr), rk2);
        },
        1e-12);
  }
}

// ---------------------------------------------------------------------------
// Steps and rollouts: central differences

namespace {

struct Problem {
  Grid g;
  StepConfig cfg;
  VelocityBoundary vb;
};

Problem problem() {
  Problem p;
  p.g = with_boundary(Grid::make_2d(10, 8, 0.125), {{IN, CO}, {NS, NS}});
  p.cfg.dt = 0.06;
  p.cfg.diffusion = DiffusionMode::Implicit;
  p.cfg.viscosity = 0.02;
  p.cfg.pressure = tight();
  p.cfg.pressure.warm_start = false;
  p.cfg.diffusion_solver = tight();
  // Advection after the projection too: it reads the held convective faces.
  p.cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project,
                 StepPart::AdvectVelocity};
  p.vb.inflow[0][0].resize(8);
  for (int j = 0; j < 8; ++j)
    p.vb.inflow[0][0][std::size_t(j)] = 0.8 + 0.3 * std::sin(1.3 * j);
  p.vb.outflow_speed[0][1] = 0.9;  // c = 0.43
  return p;
}

RolloutResult<double> rollout(const Problem& p, const RolloutOptions& opt, double eps = 0,
                              const MacVelocity<double>* dir = nullptr) {
  Context ctx = Context::cpu();
  Simulation<double> sim(ctx, p.g, p.cfg);
  sim.set_velocity_boundary(p.vb);
  SmokeState<double> s0(ctx, p.g, {});
  fill_random(ctx, s0.velocity, 41);
  if (dir)
    for (int a = 0; a < p.g.dim; ++a)
      axpy(ctx, eps, (*dir)[a], s0.velocity[a]);
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

TEST(ConvectiveOutflow, RolloutGradientMatchesFiniteDifferencesUnderEveryPlan) {
  const Problem p = problem();
  RolloutOptions store_all;
  store_all.boundary_gradient = true;
  const RolloutResult<double> ref = rollout(p, store_all);
  ASSERT_EQ(ref.grad_boundary.inflow[0][0].size(), 8u);
  const double h = 1e-5;
  // The inflow profile: through the projection and, via the mass balance, the convective
  // faces.
  for (int j : {1, 6}) {
    Problem pp = p, pm = p;
    pp.vb.inflow[0][0][std::size_t(j)] += h;
    pm.vb.inflow[0][0][std::size_t(j)] -= h;
    const double fd = (rollout(pp, {}).loss - rollout(pm, {}).loss) / (2 * h);
    EXPECT_NEAR(ref.grad_boundary.inflow[0][0][std::size_t(j)], fd,
                1e-6 * std::max(1.0, std::abs(fd)))
        << "inflow face " << j;
    EXPECT_GT(std::abs(fd), 1e-3);
  }
  // The initial velocity along a random direction (its boundary faces included: the first
  // step's convective update reads them).
  Context ctx = Context::cpu();
  MacVelocity<double> dir(ctx, p.g);
  fill_random(ctx, dir, 53);
  const double fd = (rollout(p, {}, h, &dir).loss - rollout(p, {}, -h, &dir).loss) / (2 * h);
  const double an = dotv(ctx, ref.grad_initial.velocity, dir);
  EXPECT_NEAR(an, fd, 1e-6 * std::max(1.0, std::abs(fd)));
  EXPECT_GT(std::abs(fd), 1e-3);
  for (checkpoint::Strategy st :
       {checkpoint::Strategy::Revolve, checkpoint::Strategy::RecomputeFromStart,
        checkpoint::Strategy::MultiLevel}) {
    RolloutOptions o = store_all;
    o.checkpointing.enabled = true;
    o.checkpointing.strategy = st;
    o.checkpointing.slots.device = 2;
    o.checkpointing.slots.host = st == checkpoint::Strategy::MultiLevel ? 2 : 0;
    const RolloutResult<double> r = rollout(p, o);
    EXPECT_EQ(r.loss, ref.loss);
    EXPECT_EQ(r.grad_boundary.inflow[0][0], ref.grad_boundary.inflow[0][0]);
  }
}

// ---------------------------------------------------------------------------
// What it is for: a vortex leaving the box

namespace {

/// A strong Gaussian vortex (stream function psi = G exp(-r^2 / r0^2), peak swirl 1.7 U: on
/// one flank the flow runs back into the box) carried by a uniform stream U = 1 from x = 1.5
/// out through the side x = 2 of a channel of height 1, periodic across, 16 cells a unit,
/// semi-Lagrangian RK2 advection and projection, no viscosity, dt = dx (c = U_c dt / dx = 1;
/// small enough to run in well under 2 s under the sanitizers); run to t = 1 (the centre then
/// at x = 2.5). The same run in a box twice as long (its end side an Outflow, 2 units away:
/// its pressure reaches x < 2 damped by about exp(-2 pi 2)) is the reference: whatever the
/// short box holds beyond it is what its side sent back. Returns |u_short - u_long| over the
/// short box's faces / |vortex| at t = 0.
double vortex_reflection(BoundaryKind outlet) {
  Context ctx = Context::cpu();
  const int ny = 16, nx = 32;
  const double h = 1.0 / ny, r0 = 0.15, gamma = 0.3, xc = 1.5, yc = 0.5, dt = h;
  auto psi = [&](int i, int j) {  // at the cell corner (i h, j h)
    const double x = i * h - xc, y = j * h - yc;
    return gamma * std::exp(-(x * x + y * y) / (r0 * r0));
  };
  auto run = [&](int n, BoundaryKind side, double* vortex_norm) {
    const Grid g = with_boundary(Grid::make_2d(n, ny, h), {{IN, side}, {P, P}});
    StepConfig cfg;
    cfg.dt = dt;
    cfg.diffusion = DiffusionMode::None;
    cfg.velocity_advection.backtrace = Backtrace::RK2;
    cfg.pressure = tight();
    cfg.order = {StepPart::AdvectVelocity, StepPart::Project};
    Simulation<double> sim(ctx, g, cfg);
    VelocityBoundary vb;
    vb.inflow[0][0].assign(std::size_t(ny), 1.0);
    if (side == CO) vb.outflow_speed[0][1] = 1.0;
    sim.set_velocity_boundary(vb);
    SmokeState<double> s(ctx, g, {});
    std::vector<double> u(std::size_t((n + 1) * ny)), v(std::size_t(n * ny));
    double norm = 0;
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i <= n; ++i) {
        const double d = (psi(i, j + 1) - psi(i, j)) / h;
        u[std::size_t(i + (n + 1) * j)] = 1.0 + d;
        if (i <= nx) norm += d * d;
      }
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < n; ++i) {
        const double d = -(psi(i + 1, j) - psi(i, j)) / h;
        v[std::size_t(i + n * j)] = d;
        if (i < nx) norm += d * d;
      }
    if (vortex_norm) *vortex_norm = std::sqrt(norm);
    s.velocity[0].assign(ctx, u);
    s.velocity[1].assign(ctx, v);
    const int steps = int(std::lround(1.0 / dt));
    for (int k = 0; k < steps; ++k)
      sim.step(s);
    return std::make_pair(s.velocity[0].to_vector(ctx), s.velocity[1].to_vector(ctx));
  };
  double vortex = 0;
  const auto shortbox = run(nx, outlet, &vortex);
  const auto longbox = run(2 * nx, OF, nullptr);
  double diff = 0;
  for (int j = 0; j < ny; ++j) {
    for (int i = 0; i <= nx; ++i) {
      const double d = shortbox.first[std::size_t(i + (nx + 1) * j)] -
                       longbox.first[std::size_t(i + (2 * nx + 1) * j)];
      diff += d * d;
    }
    for (int i = 0; i < nx; ++i) {
      const double d =
          shortbox.second[std::size_t(i + nx * j)] - longbox.second[std::size_t(i + 2 * nx * j)];
      diff += d * d;
    }
  }
  return std::sqrt(diff) / vortex;
}

}  // namespace

TEST(ConvectiveOutflow, VortexLeavesWithLessReflectionThanZeroGradient) {
  const double zero_gradient = vortex_reflection(OF), convective = vortex_reflection(CO);
  std::printf("vortex reflection: outflow %.4f, convective-outflow %.4f\n", zero_gradient,
              convective);
  // Measured: outflow 0.0099, convective-outflow 0.0036 (0.36 of it). A tenth of this
  // strength: 0.0030 and 0.0010. At c = 1/2 on 24 cells a unit (dt = dx / 2, three times the
  // run time): 0.0165 and 0.0069 (0.42), and 0.0011 against 0.0019 at a tenth of the strength
  // (the Outflow side's error grows as the swirl squared: p = 0 pins the pressure deficit of
  // the core; the convective side's about linearly). Asserted: below half, and the Outflow
  // side's above 5e-3 (a test that compares real reflections).
  EXPECT_LT(convective, 0.5 * zero_gradient);
  EXPECT_GT(zero_gradient, 5e-3);
}
