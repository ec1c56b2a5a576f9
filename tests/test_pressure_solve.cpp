// The pressure solve's cost and its null space, held to exact counts with the context
// counters (CPU path: the events the CUDA path performs): host waits per PCG solve,
// kernel launches per V-cycle and per iteration, the null space riding in the
// iteration's own reductions, and results that do not depend on the check interval or
// the CPU thread count.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "counters_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/projection.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;

namespace {

using BK = BoundaryKind;

template <class T>
MacVelocity<T> random_velocity(const Context& ctx, const Grid& g, unsigned seed) {
  MacVelocity<T> u(ctx, g);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (int a = 0; a < g.dim; ++a) {
    std::vector<T> v(std::size_t(u[a].size()));
    for (auto& x : v)
      x = T(dist(rng));
    u[a].assign(ctx, v);
  }
  return u;
}

Grid box(std::array<int, 3> n, int dim, BK side) {
  Grid g = dim == 2 ? Grid::make_2d(n[0], n[1], 1.0 / n[0])
                    : Grid::make_3d(n[0], n[1], n[2], 1.0 / n[0]);
  g.set_boundary(side);
  return g;
}

struct Events {
  std::int64_t launches, waits;
};
template <class F>
Events count(const Context& ctx, F&& f) {
  const ContextCounters d = test::events_of(ctx, std::forward<F>(f));
  return {d.launches, d.host_waits};
}

/// Launches of one V-cycle: precondition() adds one (the scale back to physical units).
template <class T>
std::int64_t vcycle_launches(const Context& ctx, PressureSolver<T>& solver) {
  Field<T> r(ctx, solver.grid()), z(ctx, solver.grid());
  fill(ctx, r, T(1));
  const Events e = count(ctx, [&] { solver.precondition(ctx, r, z, Preconditioner::Multigrid); });
  EXPECT_EQ(e.waits, 0);
  return e.launches - 1;
}

}  // namespace

// A red-black level costs 9 launches (red from zero, black, red, black, restrict;
// prolongation fused with black, red, black, red), each colour sweep over its own half of
// the cells; the levels of at most 4096 cells run in one launch. 128^3: levels 128, 64, 32
// launched, 16^3 down to 2^3 in the tail: 3 * 9 + 1 = 28 (31 with a launch of its own for
// the prolongation; 83 before that: a launch per colour and per fill and prolongation on
// every level, 17 on the 2^3 level).
TEST(PressureCounters, LaunchesPerVcycle128Cubed) {
  Context ctx = Context::cpu();
  PressureSolver<float> solver(ctx, box({128, 128, 128}, 3, BK::Wall));
  EXPECT_EQ(solver.multigrid_levels(), 7);
  EXPECT_EQ(vcycle_launches(ctx, solver), 28);
}

// 2D 256^2: 8 levels (256^2 .. 2^2); 256^2 and 128^2 launched, 64^2 (4096 cells) and
// below in the tail: 2 * 9 + 1 = 19. 64^2: everything in one launch.
TEST(PressureCounters, LaunchesPerVcycle2D) {
  Context ctx = Context::cpu();
  PressureSolver<float> big(ctx, box({256, 256, 1}, 2, BK::Wall));
  EXPECT_EQ(big.multigrid_levels(), 8);
  EXPECT_EQ(vcycle_launches(ctx, big), 19);
  PressureSolver<float> small(ctx, box({64, 64, 1}, 2, BK::Open));
  EXPECT_EQ(vcycle_launches(ctx, small), 1);
  // An odd periodic axis has no red-black colouring: those levels smooth with damped Jacobi
  // (fill, 2 x 2 sweeps, restrict; prolong, 2 x 2 sweeps = 11 launches each).
  Grid odd = box({96, 81, 1}, 2, BK::Wall);
  odd.set_boundary(1, BK::Periodic, BK::Periodic);
  PressureSolver<float> jac(ctx, odd);
  // Levels 96x81, 48x41, 24x21, 12x11 and 3x3 have an odd periodic y (Jacobi, 11 each),
  // 6x6 is red-black (9), and 3x3 keeps the tail down to the 2x2 level (1).
  EXPECT_EQ(jac.multigrid_levels(), 7);
  EXPECT_EQ(vcycle_launches(ctx, jac), 5 * 11 + 9 + 1);
}

namespace {
/// Launches and waits of one project() call, from its parts (krylov.hpp, projection.cpp):
///   project: velocity finiteness checks (dim flag kernels, read at the solve's last host
///            wait: no wait of their own), the rhs (1), after the solve the gradient (dim)
///            and the pressure (1);
///   solve:   setup (2: |b|, region sums of b), fill x (1), r and |r|^2 (2),
///            V + r.z (2) + direction (1);
///   each of K iterations: A p (1), p.q and alpha (2), x and r (1);
///   each of C checks: A x (1), the check's pass (2), one host wait;
///   each iteration that goes on after its check (K - 1): V + r.z (2) + direction (1);
///   the canonical x (1).
/// With the device stop, K = check_every * C, C = ceil(N / check_every) for N iterations.
/// No term depends on the number of floating regions (up to 2).
Events expected_project(int dim, int n_iter, int every, std::int64_t v) {
  const std::int64_t c = (n_iter + every - 1) / every, k = c * every;
  const std::int64_t launches =
      dim + 1 + dim + 1 + (2 + 1 + 2 + v + 2 + 1) + 4 * k + 3 * c + (k - 1) * (v + 3) + 1;
  return {launches, c};
}
}  // namespace

TEST(PressureCounters, HostWaitsAndLaunchesPerSolve) {
  Context ctx = Context::cpu();
  struct Row {
    Grid g;
    int regions;
  } rows[] = {{box({64, 48, 1}, 2, BK::Wall), 1},
              {box({64, 48, 1}, 2, BK::Open), 0},
              {box({24, 20, 16}, 3, BK::Wall), 1}};
  for (auto& row : rows) {
    PressureSolver<float> solver(ctx, row.g);
    ASSERT_EQ(solver.floating_regions(), row.regions);
    const std::int64_t v = vcycle_launches(ctx, solver);
    int n_ref = 0;
    for (int every : {1, 2, 3, 4, 16}) {
      SCOPED_TRACE(std::to_string(row.g.dim) + "D regions " + std::to_string(row.regions) +
                   " check_every " + std::to_string(every));
      MacVelocity<float> u = random_velocity<float>(ctx, row.g, 3);
      Field<float> p(ctx, row.g);
      SolverOptions opt;
      opt.rel_tol = 1e-4;
      opt.check_every = every;
      SolveReport rep;
      const Events e = count(ctx, [&] { rep = solver.project(ctx, u, p, 1.0f, opt); });
      if (every == 1) n_ref = rep.iterations;
      EXPECT_EQ(rep.iterations, n_ref);  // the device stop: same iterations for every interval
      EXPECT_GE(rep.iterations, 2);
      const Events want = expected_project(row.g.dim, rep.iterations, every, v);
      EXPECT_EQ(e.waits, want.waits);
      EXPECT_EQ(e.launches, want.launches);
    }
  }
}

// A right-hand side of zero and a warm start that already meets the tolerance: found on the
// device, learned at the first check; the solve reports 0 iterations and one host wait.
TEST(PressureCounters, ConvergedStartCostsOneCheck) {
  Context ctx = Context::cpu();
  const Grid g = box({32, 32, 1}, 2, BK::Wall);
  PressureSolver<double> solver(ctx, g);
  Field<double> rhs(ctx, g), x(ctx, g);
  SolverOptions opt;
  opt.check_every = 4;
  const ContextCounters a = ctx.counters();
  SolveReport rep = solver.solve(ctx, rhs, x, opt);
  // The rhs finiteness check is a flag kernel, read at the check's wait: one wait in all.
  EXPECT_EQ(ctx.counters().host_waits - a.host_waits, 1);
  EXPECT_TRUE(rep.converged);
  EXPECT_EQ(rep.iterations, 0);
  EXPECT_EQ(rep.residual, 0.0);
  EXPECT_EQ(max_abs(ctx, x), 0.0);
  // Solve a right-hand side in the range of A, then solve again warm from the answer.
  std::vector<double> v(std::size_t(g.cells()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = std::sin(0.1 * double(i));
  Field<double> xs(ctx, g);
  xs.assign(ctx, v);
  solver.apply(ctx, xs, rhs);
  opt.rel_tol = 1e-8;
  rep = solver.solve(ctx, rhs, x, opt);
  EXPECT_GT(rep.iterations, 0);
  opt.warm_start = true;
  const std::vector<double> before = x.to_vector(ctx);
  rep = solver.solve(ctx, rhs, x, opt);
  EXPECT_EQ(rep.iterations, 0);
  EXPECT_TRUE(rep.converged);
  EXPECT_LE(rep.residual, 1e-8 * std::sqrt(dot(ctx, rhs, rhs)));
  const std::vector<double> after = x.to_vector(ctx);
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_NEAR(after[i], before[i], 1e-12);
}

namespace {
/// A closed box with `pockets` walled-off square pockets along x: pockets + 1 floating
/// regions (fused in the reductions up to 2, one reduction each beyond).
template <class T>
void check_regions(int pockets, double rel_tol) {
  Context ctx = Context::cpu();
  const int n = 12 * pockets + 4;
  Grid g = box({n, 20, 1}, 2, BK::Wall);
  ObstacleMask m(ctx, g, Location::Cell);
  std::vector<std::uint8_t> v(std::size_t(g.cells()), 0);
  std::vector<std::vector<int>> inside(static_cast<std::size_t>(pockets));
  for (int q = 0; q < pockets; ++q) {
    const int x0 = 2 + 12 * q, x1 = x0 + 9, y0 = 4, y1 = 13;
    for (int j = y0; j <= y1; ++j)
      for (int i = x0; i <= x1; ++i) {
        const bool wall = i == x0 || i == x1 || j == y0 || j == y1;
        if (wall)
          v[std::size_t(i + n * j)] = 1;
        else
          inside[std::size_t(q)].push_back(i + n * j);
      }
  }
  m.assign(ctx, v);
  PressureSolver<T> solver(ctx, g, &m);
  ASSERT_EQ(solver.floating_regions(), pockets + 1);
  MacVelocity<T> u = random_velocity<T>(ctx, g, 12);
  Field<T> p(ctx, g);
  SolverOptions opt;
  opt.rel_tol = rel_tol;
  const SolveReport rep = solver.project(ctx, u, p, T(1), opt);
  EXPECT_TRUE(rep.converged);
  EXPECT_LE(rep.residual, rel_tol * rep.initial_residual * 1.0001);
  // max |div| <= |b - A x| (physical units); float adds rounding of O(eps |u| / dx).
  const double round = std::is_same<T, float>::value ? 2e-6 / g.dx : 0.0;
  EXPECT_LE(max_abs_divergence(ctx, u, &m), 2 * rel_tol * rep.initial_residual + round);
  // The returned pressure is the canonical one: zero mean on every floating region.
  const std::vector<T> pv = p.to_vector(ctx);
  double scale = 0;
  for (T x : pv)
    scale = std::max(scale, std::abs(double(x)));
  const double eps = std::is_same<T, float>::value ? 1e-6 : 1e-13;
  for (int q = 0; q < pockets; ++q) {
    double s = 0;
    for (int c : inside[std::size_t(q)])
      s += pv[std::size_t(c)];
    EXPECT_LE(std::abs(s / double(inside[std::size_t(q)].size())), eps * scale) << "pocket " << q;
  }
  double s_out = 0;
  std::size_t n_out = 0;
  for (std::size_t c = 0; c < v.size(); ++c) {
    bool in = v[c] != 0;
    for (auto& pk : inside)
      for (int ci : pk)
        in = in || std::size_t(ci) == c;
    if (!in) {
      s_out += pv[c];
      ++n_out;
    }
  }
  EXPECT_LE(std::abs(s_out / double(n_out)), eps * scale) << "outer region";
}
}  // namespace

TEST(PressureNullSpace, RegionMeansVanishFusedAndBeyond) {
  for (int pockets : {1, 3}) {  // 2 regions (both fused), 4 regions (2 fused + 2 reduced)
    SCOPED_TRACE(std::to_string(pockets) + " pockets");
    check_regions<double>(pockets, 1e-10);
    check_regions<float>(pockets, 1e-5);
  }
}

// Each region beyond the fused two costs one reduction (2 launches) per projected
// quantity: b at the setup, z and r at each r.z, t and x at each check.
TEST(PressureNullSpace, RegionsBeyondTwoCostOneReductionEach) {
  Context ctx = Context::cpu();
  const Grid g = box({40, 20, 1}, 2, BK::Wall);
  auto make = [&](int pockets) {
    ObstacleMask m(ctx, g, Location::Cell);
    std::vector<std::uint8_t> v(std::size_t(g.cells()), 0);
    for (int q = 0; q < 3; ++q) {
      const int x0 = 2 + 12 * q, x1 = x0 + 9;
      for (int j = 4; j <= 13; ++j)
        for (int i = x0; i <= x1; ++i)
          // Pockets past `pockets` are solid blocks: the same operator outside them.
          v[std::size_t(i + 40 * j)] =
              (q >= pockets || i == x0 || i == x1 || j == 4 || j == 13) ? 1 : 0;
    }
    m.assign(ctx, v);
    return m;
  };
  for (int pockets : {1, 3}) {
    SCOPED_TRACE(std::to_string(pockets) + " pockets");
    ObstacleMask m = make(pockets);
    PressureSolver<double> solver(ctx, g, &m);
    ASSERT_EQ(solver.floating_regions(), pockets + 1);
    const std::int64_t v = vcycle_launches(ctx, solver);
    MacVelocity<double> u = random_velocity<double>(ctx, g, 4);
    Field<double> p(ctx, g);
    SolverOptions opt;
    opt.rel_tol = 1e-6;
    int n = 0;
    const Events e = count(ctx, [&] { n = solver.project(ctx, u, p, 1.0, opt).iterations; });
    // check_every 1: n r.z passes (the first and n - 1 in the loop) and n checks.
    const std::int64_t beyond = pockets + 1 - 2;
    const Events want = expected_project(2, n, 1, v);
    EXPECT_EQ(e.waits, want.waits);
    EXPECT_EQ(e.launches, want.launches + beyond * 2 * (1 + 2 * n + 2 * n));
  }
}

// Bitwise: the same result run to run, for 1 and 2 CPU threads, and for every check interval.
TEST(PressureSolve, BitwiseReproducibleAcrossThreadsAndCheckIntervals) {
  Context ctx = Context::cpu();
  const int threads = cpu_threads();
  for (int dim : {2, 3}) {
    const Grid g = dim == 2 ? box({130, 96, 1}, 2, BK::Wall) : box({28, 24, 20}, 3, BK::Wall);
    PressureSolver<float> solver(ctx, g);
    std::vector<float> ref;
    for (int t : {1, 2, 1})
      for (int every : {1, 3}) {
        set_cpu_threads(t);
        MacVelocity<float> u = random_velocity<float>(ctx, g, 9);
        Field<float> p(ctx, g);
        SolverOptions opt;
        opt.rel_tol = 1e-5;
        opt.check_every = every;
        solver.project(ctx, u, p, 1.0f, opt);
        std::vector<float> out = p.to_vector(ctx);
        for (int a = 0; a < dim; ++a) {
          const std::vector<float> ua = u[a].to_vector(ctx);
          out.insert(out.end(), ua.begin(), ua.end());
        }
        if (ref.empty())
          ref = out;
        else
          EXPECT_EQ(std::memcmp(out.data(), ref.data(), ref.size() * sizeof(float)), 0)
              << dim << "D threads " << t << " check_every " << every;
      }
  }
  set_cpu_threads(threads);
}

namespace {

/// u on a closed 2D box whose x sides are both Inflow: the low side's faces at `low`, the
/// high side's at `high` (+x velocity: in through x-low, out through x-high), a random
/// interior.
template <class T>
MacVelocity<T> inflow_velocity(const Context& ctx, const Grid& g, double low, double high) {
  MacVelocity<T> u = random_velocity<T>(ctx, g, 5);
  std::vector<T> ux = u[0].to_vector(ctx);
  const int nxf = g.n[0] + 1;
  for (int j = 0; j < g.n[1]; ++j) {
    ux[std::size_t(j * nxf)] = T(low);
    ux[std::size_t(j * nxf + nxf - 1)] = T(high);
  }
  u[0].assign(ctx, ux);
  return u;
}

template <class T>
void check_closed_box_inflow() {
  const Context ctx = Context::cpu();
  Grid g = Grid::make_2d(8, 6, 0.1);
  g.set_boundary(0, BK::Inflow, BK::Inflow);
  g.set_boundary(1, BK::NoSlip, BK::NoSlip);
  PressureSolver<T> solver(ctx, g);
  Field<T> p(ctx, g);
  SolverOptions o;
  o.rel_tol = 1e-6;
  // Net inflow 6 * (1 - 0.5) = 3: refused before any work, u and p untouched.
  MacVelocity<T> u = inflow_velocity<T>(ctx, g, 1.0, 0.5);
  const std::vector<T> before = u[0].to_vector(ctx);
  try {
    solver.project(ctx, u, p, T(0.1), o);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find("PressureSolver::project: net inflow 3.0"), std::string::npos) << m;
    EXPECT_NE(m.find("x-low (6.0"), std::string::npos) << m;
    EXPECT_NE(m.find("x-high (-3.0"), std::string::npos) << m;
    EXPECT_NE(m.find("BoundaryKind::Outflow"), std::string::npos) << m;
  }
  EXPECT_EQ(u[0].to_vector(ctx), before);
  EXPECT_EQ(max_abs(ctx, p), 0.0);
  // Balanced (the same flux out of x-high): projected, divergence-free. The check costs two
  // reductions (host waits) per Inflow side on top of the solve; a Simulation's step, which
  // checked its VelocityBoundary on the host, does not pay them.
  MacVelocity<T> ub = inflow_velocity<T>(ctx, g, 1.0, 1.0);
  MacVelocity<T> same = inflow_velocity<T>(ctx, g, 1.0, 1.0);
  const double div0 = max_abs_divergence(ctx, ub);
  const ContextCounters direct =
      test::events_of(ctx, [&] { solver.project(ctx, ub, p, T(0.1), o); });
  EXPECT_LT(max_abs_divergence(ctx, ub), 1e-4 * div0);
  StepConfig cfg;
  cfg.dt = 0.1;
  cfg.order = {StepPart::Project};
  cfg.pressure = o;
  Simulation<T> sim(ctx, g, cfg);
  VelocityBoundary vb;
  vb.inflow[0][0].assign(6, 1.0);
  vb.inflow[0][1].assign(6, 1.0);
  sim.set_velocity_boundary(vb);
  SmokeState<T> s(ctx, g, {});
  copy(ctx, same, s.velocity);
  const ContextCounters step = test::events_of(ctx, [&] { sim.step(s); });
  EXPECT_EQ(direct.host_waits, step.host_waits + 4);
  // With an outflow side the box is open: no check, any inflow is accepted.
  Grid open = g;
  open.set_boundary(0, BK::Inflow, BK::Outflow);
  PressureSolver<T> open_solver(ctx, open);
  MacVelocity<T> uo = inflow_velocity<T>(ctx, open, 1.0, 0.0);
  Field<T> po(ctx, open);
  EXPECT_NO_THROW(open_solver.project(ctx, uo, po, T(0.1), o));
}

}  // namespace

// A closed box with net inflow has no divergence-free projection: project() called
// directly refuses it, naming the sides and the fix (Simulation::set_velocity_boundary
// refuses such a profile on the host, VelocityBoundaryStep.ClosedBoxWithNetInflowIsRefused).
TEST(PressureSolverInflow, ClosedBoxWithNetInflowIsRefusedNamingTheSides) {
  check_closed_box_inflow<double>();
  check_closed_box_inflow<float>();
}
