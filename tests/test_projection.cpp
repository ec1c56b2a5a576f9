// Pressure projection (MGPCG): divergence-free results for every boundary kind,
// symmetry/idempotence (the adjoint relies on them), multigrid quality, options,
// errors, and the GPU against the CPU path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/projection.hpp"

using namespace dfluid;

namespace {

using BK = BoundaryKind;

struct Case {
  const char* name;
  BK x0, x1, y0, y1, z0, z1;
  bool obstacle;
};

const Case kCases[] = {
    {"walls", BK::Wall, BK::Wall, BK::Wall, BK::Wall, BK::Wall, BK::Wall, false},
    {"open", BK::Open, BK::Open, BK::Open, BK::Open, BK::Open, BK::Open, false},
    {"periodic", BK::Periodic, BK::Periodic, BK::Periodic, BK::Periodic, BK::Periodic, BK::Periodic,
     false},
    {"mixed", BK::Periodic, BK::Periodic, BK::Wall, BK::Open, BK::Open, BK::Wall, false},
    {"walls+obstacle", BK::Wall, BK::Wall, BK::Wall, BK::Wall, BK::Wall, BK::Wall, true},
    {"mixed+obstacle", BK::Open, BK::Wall, BK::Periodic, BK::Periodic, BK::Wall, BK::Open, true},
};

Grid make_grid(int dim, std::array<int, 3> n, const Case& c) {
  Grid g = dim == 2 ? Grid::make_2d(n[0], n[1], 1.0 / n[0])
                    : Grid::make_3d(n[0], n[1], n[2], 1.0 / n[0]);
  g.set_boundary(0, c.x0, c.x1);
  g.set_boundary(1, c.y0, c.y1);
  if (dim == 3) g.set_boundary(2, c.z0, c.z1);
  return g;
}

/// A solid ball in the middle plus a solid block touching the low-x side.
ObstacleMask make_obstacle(const Context& ctx, const Grid& g) {
  ObstacleMask m(ctx, g, Location::Cell);
  std::vector<std::uint8_t> v(std::size_t(g.cells()), 0);
  const double r = 0.22 * g.n[1];
  for (int k = 0; k < g.n[2]; ++k)
    for (int j = 0; j < g.n[1]; ++j)
      for (int i = 0; i < g.n[0]; ++i) {
        double d2 = std::pow(i + 0.5 - 0.5 * g.n[0], 2) + std::pow(j + 0.5 - 0.5 * g.n[1], 2);
        if (g.dim == 3) d2 += std::pow(k + 0.5 - 0.5 * g.n[2], 2);
        bool solid = d2 < r * r || (i < 2 && j >= g.n[1] / 4 && j < g.n[1] / 2);
        v[std::size_t(i + g.n[0] * (j + std::size_t(g.n[1]) * k))] = solid;
      }
  m.assign(ctx, v);
  return m;
}

/// The solver of case c on g: with make_obstacle's solid cells when the case has them (the
/// solver reads the mask once, in its constructor).
template <class T>
PressureSolver<T> case_solver(const Context& ctx, const Grid& g, const Case& c) {
  if (!c.obstacle) return PressureSolver<T>(ctx, g);
  const ObstacleMask m = make_obstacle(ctx, g);
  return PressureSolver<T>(ctx, g, &m);
}

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

template <class T>
double mac_dot(const Context& ctx, const MacVelocity<T>& a, const MacVelocity<T>& b) {
  double s = 0;
  for (int d = 0; d < a.dim(); ++d)
    s += dot(ctx, a[d], b[d]);
  return s;
}

template <class T>
double mac_max_diff(const Context& ctx, const MacVelocity<T>& a, const MacVelocity<T>& b) {
  double m = 0;
  for (int d = 0; d < a.dim(); ++d) {
    auto va = a[d].to_vector(ctx), vb = b[d].to_vector(ctx);
    for (std::size_t i = 0; i < va.size(); ++i)
      m = std::max(m, std::abs(double(va[i]) - vb[i]));
  }
  return m;
}

template <class T>
void check_divergence_free(int dim, std::array<int, 3> n, double rel_tol) {
  Context ctx = Context::cpu();
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.name) + " " + std::to_string(dim) + "D");
    Grid g = make_grid(dim, n, c);
    ObstacleMask m;
    if (c.obstacle) m = make_obstacle(ctx, g);
    const ObstacleMask* mp = c.obstacle ? &m : nullptr;
    PressureSolver<T> solver(ctx, g, mp);
    MacVelocity<T> u = random_velocity<T>(ctx, g, 7);
    Field<T> p(ctx, g);
    SolverOptions opt;
    opt.rel_tol = rel_tol;
    SolveReport rep = solver.project(ctx, u, p, T(0.1), opt);
    EXPECT_TRUE(rep.converged);
    EXPECT_GT(rep.iterations, 0);
    const double div = max_abs_divergence(ctx, u, mp);
    // max |div| <= |div|_2 = |b - A x| <= ~rel_tol |b|; float adds rounding of O(eps |u| / dx).
    const double round = std::is_same<T, float>::value ? 2e-6 / g.dx : 0.0;
    EXPECT_LE(div, 2 * rel_tol * rep.initial_residual + round)
        << "iterations " << rep.iterations << " residual " << rep.residual;
    EXPECT_TRUE(all_finite(ctx, p));
  }
}

}  // namespace

TEST(Projection, DivergenceFree2DDouble) {
  check_divergence_free<double>(2, {40, 32, 1}, 1e-9);
}
TEST(Projection, DivergenceFree3DDouble) {
  check_divergence_free<double>(3, {16, 12, 10}, 1e-9);
}
TEST(Projection, DivergenceFree2DFloat) {
  check_divergence_free<float>(2, {40, 32, 1}, 1e-5);
}
TEST(Projection, DivergenceFree3DFloat) {
  check_divergence_free<float>(3, {16, 12, 10}, 1e-5);
}
TEST(Projection, DivergenceFreeOddPeriodic) {
  // Odd periodic counts: red-black colours meet across the wrap -> Jacobi smoothing.
  Case c{"periodic-odd", BK::Periodic, BK::Periodic, BK::Periodic,
         BK::Periodic,   BK::Wall,     BK::Wall,     false};
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {33, 20, 1}, c);
  PressureSolver<double> solver(ctx, g);
  MacVelocity<double> u = random_velocity<double>(ctx, g, 3);
  Field<double> p(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-10;
  SolveReport rep = solver.project(ctx, u, p, 1.0, opt);
  EXPECT_LE(max_abs_divergence(ctx, u), 2e-10 * rep.initial_residual);
}

namespace {
void check_symmetric_idempotent(int dim, std::array<int, 3> n) {
  Context ctx = Context::cpu();
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.name) + " " + std::to_string(dim) + "D");
    Grid g = make_grid(dim, n, c);
    PressureSolver<double> solver = case_solver<double>(ctx, g, c);
    SolverOptions opt;
    opt.rel_tol = 1e-14;
    opt.max_iterations = 2000;
    Field<double> p(ctx, g);
    MacVelocity<double> x = random_velocity<double>(ctx, g, 11);
    MacVelocity<double> y = random_velocity<double>(ctx, g, 12);
    MacVelocity<double> px(ctx, g), py(ctx, g), ppx(ctx, g);
    copy(ctx, x, px);
    copy(ctx, y, py);
    solver.project(ctx, px, p, 1.0, opt);
    solver.project(ctx, py, p, 1.0, opt);
    const double a = mac_dot(ctx, px, y), b = mac_dot(ctx, x, py);
    const double scale = std::sqrt(mac_dot(ctx, x, x) * mac_dot(ctx, y, y));
    EXPECT_LE(std::abs(a - b), 1e-12 * scale) << "<Px,y>=" << a << " <x,Py>=" << b;
    copy(ctx, px, ppx);
    solver.project(ctx, ppx, p, 1.0, opt);
    EXPECT_LE(mac_max_diff(ctx, px, ppx), 1e-11) << "projection not idempotent";
  }
}
}  // namespace

TEST(Projection, SymmetricAndIdempotent2D) {
  check_symmetric_idempotent(2, {12, 10, 1});
}
namespace {
// Transpose test of the adjoint: |<P x, y> - <x, P^T y>| <= 1e-12 |<P x, y>|.
void check_adjoint_transpose(int dim, std::array<int, 3> n) {
  Context ctx = Context::cpu();
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.name) + " " + std::to_string(dim) + "D");
    Grid g = make_grid(dim, n, c);
    PressureSolver<double> solver = case_solver<double>(ctx, g, c);
    SolverOptions opt;
    opt.rel_tol = 1e-14;
    opt.max_iterations = 2000;
    Field<double> p(ctx, g);
    MacVelocity<double> x = random_velocity<double>(ctx, g, 21);
    MacVelocity<double> y = random_velocity<double>(ctx, g, 22);
    MacVelocity<double> px(ctx, g), pty(ctx, g);
    copy(ctx, x, px);
    copy(ctx, y, pty);
    solver.project(ctx, px, p, 1.0, opt);
    const SolveReport rep = solver.project_adjoint(ctx, pty, opt);
    EXPECT_TRUE(rep.converged);
    EXPECT_GT(rep.iterations, 0);
    const double a = mac_dot(ctx, px, y), b = mac_dot(ctx, x, pty);
    EXPECT_LE(std::abs(a - b), 1e-12 * std::abs(a)) << "<Px,y>=" << a << " <x,P^T y>=" << b;
  }
}
}  // namespace

TEST(ProjectionAdjoint, TransposeTest2D) {
  check_adjoint_transpose(2, {12, 10, 1});
}
TEST(ProjectionAdjoint, TransposeTest3D) {
  check_adjoint_transpose(3, {8, 6, 6});
}

// Float adjoint solve of cotangents around 1e-30: the right-hand side is rescaled
// before the solve, so the gradient is finite and matches the double result.
TEST(ProjectionAdjoint, TinyFloatCotangentsDoNotUnderflow) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(16, 16, 1.0);
  PressureSolver<float> sf(ctx, g);
  PressureSolver<double> sd(ctx, g);
  MacVelocity<double> yd = random_velocity<double>(ctx, g, 5);
  MacVelocity<float> yf(ctx, g);
  for (int a = 0; a < 2; ++a) {
    std::vector<double> v = yd[a].to_vector(ctx);
    std::vector<float> vf(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] *= 1e-30;
      vf[i] = float(v[i]);
    }
    yd[a].assign(ctx, v);
    yf[a].assign(ctx, vf);
  }
  SolverOptions opt;
  opt.rel_tol = 1e-5;
  sf.project_adjoint(ctx, yf, opt);
  opt.rel_tol = 1e-12;
  sd.project_adjoint(ctx, yd, opt);
  for (int a = 0; a < 2; ++a) {
    ASSERT_TRUE(all_finite(ctx, yf[a]));
    std::vector<float> f = yf[a].to_vector(ctx);
    std::vector<double> d = yd[a].to_vector(ctx);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      num += (double(f[i]) - d[i]) * (double(f[i]) - d[i]);
      den += d[i] * d[i];
    }
    EXPECT_GT(den, 0);
    EXPECT_LE(std::sqrt(num / den), 1e-4);
  }
}

// project_adjoint with a kept adjoint pressure (the warm start of a rollout's backward pass):
// cold, bitwise the plain overload; warm from the previous solution of a nearby cotangent,
// the same result within the tolerance in fewer iterations; warm from a start unrelated to a
// tiny right-hand side (a nearly divergence-free cotangent), still converged: the start is
// scaled by (b.y)/(y.Ay) first, never further from the solution than zero.
TEST(ProjectionAdjoint, WarmStartFromTheKeptAdjointPressure) {
  Context ctx = Context::cpu();
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Grid g = make_grid(2, {24, 20, 1}, c);
    PressureSolver<double> solver = case_solver<double>(ctx, g, c);
    SolverOptions cold;
    cold.rel_tol = 1e-10;
    cold.max_iterations = 500;
    SolverOptions warm = cold;
    warm.warm_start = true;
    Field<double> y(ctx, g);
    const MacVelocity<double> g0 = random_velocity<double>(ctx, g, 31);
    MacVelocity<double> a(ctx, g), b(ctx, g);
    copy(ctx, g0, a);
    copy(ctx, g0, b);
    const SolveReport ra = solver.project_adjoint(ctx, a, cold);
    const SolveReport rb = solver.project_adjoint(ctx, b, y, cold);  // cold: y is only written
    EXPECT_EQ(ra.iterations, rb.iterations);
    EXPECT_EQ(mac_max_diff(ctx, a, b), 0.0);
    // A nearby cotangent (g0 + 1% noise): the warm solve needs fewer iterations.
    MacVelocity<double> near = random_velocity<double>(ctx, g, 32);
    for (int d = 0; d < 2; ++d) {
      scale(ctx, near[d], 0.01);
      axpy(ctx, 1.0, g0[d], near[d]);
    }
    MacVelocity<double> w(ctx, g);
    copy(ctx, near, w);
    copy(ctx, near, a);
    const SolveReport rw = solver.project_adjoint(ctx, w, y, warm);
    const SolveReport rc = solver.project_adjoint(ctx, a, cold);
    EXPECT_TRUE(rw.converged);
    EXPECT_LT(rw.iterations, rc.iterations);
    EXPECT_LE(mac_max_diff(ctx, w, a), 1e-7 * std::sqrt(mac_dot(ctx, a, a)));
    // A tiny right-hand side against the kept y: converges to the relative tolerance.
    MacVelocity<double> tiny(ctx, g);
    copy(ctx, near, tiny);
    for (int d = 0; d < 2; ++d)
      scale(ctx, tiny[d], 1e-12);
    copy(ctx, tiny, a);
    const SolveReport rt = solver.project_adjoint(ctx, tiny, y, warm);
    solver.project_adjoint(ctx, a, cold);
    EXPECT_TRUE(rt.converged);
    EXPECT_LE(mac_max_diff(ctx, tiny, a), 1e-7 * std::sqrt(mac_dot(ctx, a, a)));
  }
}

TEST(ProjectionAdjoint, KeptAdjointPressureMustBeACellFieldOnTheGrid) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(12, 10, 1.0);
  PressureSolver<double> solver(ctx, g);
  MacVelocity<double> u(ctx, g);
  Field<double> wrong(ctx, Grid::make_2d(10, 10, 1.0));
  EXPECT_THROW(solver.project_adjoint(ctx, u, wrong, SolverOptions{}), ShapeMismatch);
  Field<double> faces(ctx, g, Location::FaceX);
  EXPECT_THROW(solver.project_adjoint(ctx, u, faces, SolverOptions{}), ShapeMismatch);
}

TEST(Projection, SymmetricAndIdempotent3D) {
  check_symmetric_idempotent(3, {8, 6, 6});
}

TEST(Multigrid, VcycleIsSymmetric) {
  Context ctx = Context::cpu();
  const std::pair<int, std::array<int, 3>> sizes[] = {{2, {24, 17, 1}}, {3, {10, 9, 8}}};
  for (auto [dim, n] : sizes)
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + std::to_string(dim) + "D");
      Grid g = make_grid(dim, n, c);
      PressureSolver<double> solver = case_solver<double>(ctx, g, c);
      EXPECT_GE(solver.multigrid_levels(), 2);
      std::mt19937 rng(5);
      std::uniform_real_distribution<double> dist(-1, 1);
      std::vector<double> v1(std::size_t(g.cells())), v2(v1.size());
      for (auto& v : v1)
        v = dist(rng);
      for (auto& v : v2)
        v = dist(rng);
      Field<double> r1(ctx, g), r2(ctx, g), z1(ctx, g), z2(ctx, g);
      r1.assign(ctx, v1);
      r2.assign(ctx, v2);
      for (Preconditioner pc : {Preconditioner::Multigrid, Preconditioner::Jacobi}) {
        solver.precondition(ctx, r1, z1, pc);
        solver.precondition(ctx, r2, z2, pc);
        const double a = dot(ctx, z1, r2), b = dot(ctx, r1, z2);
        EXPECT_LE(std::abs(a - b), 1e-12 * (std::abs(a) + std::abs(b))) << to_string(pc);
        EXPECT_GE(dot(ctx, z1, r1), 0.0) << to_string(pc);  // positive semi-definite
      }
    }
}

namespace {
int iterations_for(const Grid& g, Preconditioner pc, const ObstacleMask* m = nullptr) {
  Context ctx = Context::cpu();
  PressureSolver<double> solver(ctx, g, m);
  MacVelocity<double> u = random_velocity<double>(ctx, g, 21);
  Field<double> p(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-8;
  opt.preconditioner = pc;
  opt.max_iterations = 3000;
  return solver.project(ctx, u, p, 1.0, opt).iterations;
}
}  // namespace

TEST(Multigrid, NeedsFarFewerIterationsThanJacobi) {
  Case walls = kCases[0], obst = kCases[4], per = kCases[2];
  struct Row {
    const char* name;
    Grid g;
    bool obstacle;
  } rows[] = {{"64^2 walls", make_grid(2, {64, 64, 1}, walls), false},
              {"64^2 walls+obstacle", make_grid(2, {64, 64, 1}, obst), true},
              {"64^2 periodic", make_grid(2, {64, 64, 1}, per), false},
              {"32^3 walls", make_grid(3, {32, 32, 32}, walls), false}};
  for (auto& r : rows) {
    Context ctx = Context::cpu();
    ObstacleMask m;
    if (r.obstacle) m = make_obstacle(ctx, r.g);
    const ObstacleMask* mp = r.obstacle ? &m : nullptr;
    const int mg = iterations_for(r.g, Preconditioner::Multigrid, mp);
    const int jac = iterations_for(r.g, Preconditioner::Jacobi, mp);
    std::printf("[ iters    ] %-22s MGPCG %4d   Jacobi-PCG %4d  (rel_tol 1e-8)\n", r.name, mg, jac);
    EXPECT_LE(3 * mg, jac) << r.name;
  }
}

TEST(Projection, WarmStartReducesIterations) {
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {48, 48, 1}, kCases[0]);
  PressureSolver<double> solver(ctx, g);
  MacVelocity<double> u0 = random_velocity<double>(ctx, g, 1);
  MacVelocity<double> du = random_velocity<double>(ctx, g, 2);
  MacVelocity<double> u(ctx, g);
  Field<double> p(ctx, g), p_cold(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-8;
  copy(ctx, u0, u);
  solver.project(ctx, u, p, 0.5, opt);
  for (int a = 0; a < 2; ++a)
    axpy(ctx, 1e-3, du[a], u0[a]);  // the next step: a small change
  copy(ctx, u0, u);
  const int cold = solver.project(ctx, u, p_cold, 0.5, opt).iterations;
  copy(ctx, u0, u);
  opt.warm_start = true;
  const int warm = solver.project(ctx, u, p, 0.5, opt).iterations;
  std::printf("[ iters    ] warm start %d vs cold %d\n", warm, cold);
  EXPECT_LT(warm, cold);
  // Same pressure either way (zero-mean representative).
  const std::vector<double> pw = p.to_vector(ctx), pc = p_cold.to_vector(ctx);
  for (std::size_t i = 0; i < pw.size(); ++i)
    EXPECT_NEAR(pw[i], pc[i], 1e-5);
}

TEST(Projection, IterationCapThrowsWithIterationsAndResidual) {
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {32, 32, 1}, kCases[0]);
  PressureSolver<float> solver(ctx, g);
  MacVelocity<float> u = random_velocity<float>(ctx, g, 4);
  Field<float> p(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-12;
  opt.max_iterations = 1;
  try {
    solver.project(ctx, u, p, 1.0f, opt);
    FAIL() << "no SolverNotConverged";
  } catch (const SolverNotConverged& e) {
    EXPECT_EQ(e.iterations(), 1);
    EXPECT_GT(e.residual(), 0.0);
    EXPECT_NE(std::string(e.what()).find("max_iterations"), std::string::npos);
  }
  opt.throw_on_failure = false;
  copy(ctx, random_velocity<float>(ctx, g, 4), u);
  SolveReport rep = solver.project(ctx, u, p, 1.0f, opt);
  EXPECT_FALSE(rep.converged);
  EXPECT_EQ(rep.iterations, 1);
  EXPECT_LT(rep.residual, rep.initial_residual);
}

TEST(Projection, RejectsBadInputs) {
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {16, 12, 1}, kCases[0]);
  PressureSolver<double> solver(ctx, g);
  MacVelocity<double> u = random_velocity<double>(ctx, g, 9);
  Field<double> p(ctx, g);
  // NaN in the velocity: caught before solving.
  std::vector<double> v = u[1].to_vector(ctx);
  v[5] = std::numeric_limits<double>::quiet_NaN();
  u[1].assign(ctx, v);
  EXPECT_THROW(solver.project(ctx, u, p, 0.1, {}), NonFiniteValue);
  u = random_velocity<double>(ctx, g, 9);
  // Shapes: velocity and pressure on another grid; pressure on faces.
  Grid g2 = make_grid(2, {16, 14, 1}, kCases[0]);
  MacVelocity<double> u2(ctx, g2);
  Field<double> p2(ctx, g2), pf(ctx, g, Location::FaceX);
  EXPECT_THROW(solver.project(ctx, u2, p, 0.1, {}), ShapeMismatch);
  EXPECT_THROW(solver.project(ctx, u, p2, 0.1, {}), ShapeMismatch);
  EXPECT_THROW(solver.project(ctx, u, pf, 0.1, {}), ShapeMismatch);
  EXPECT_THROW(solver.solve(ctx, p2, p, {}), ShapeMismatch);
  Grid g3 = g;
  g3.boundary[0] = {BK::Open, BK::Open};  // same shape, different boundary: a different grid
  Field<double> p3(ctx, g3);
  EXPECT_THROW(solver.project(ctx, u, p3, 0.1, {}), ShapeMismatch);
  ObstacleMask m2(ctx, g2, Location::Cell);
  EXPECT_THROW(PressureSolver<double>(ctx, g, &m2), ShapeMismatch);
  EXPECT_THROW(solver.project(ctx, u, p, 0.0, {}), InvalidArgument);
  SolverOptions bad;
  bad.max_iterations = 0;
  EXPECT_THROW(solver.project(ctx, u, p, 0.1, bad), InvalidArgument);
}

TEST(Poisson, SolveInvertsApplyAndHandlesNullSpace) {
  Context ctx = Context::cpu();
  for (int ci : {0, 1, 4}) {  // walls (null space), open (definite), walls + obstacle
    SCOPED_TRACE(kCases[ci].name);
    Grid g = make_grid(2, {20, 16, 1}, kCases[ci]);
    PressureSolver<double> solver = case_solver<double>(ctx, g, kCases[ci]);
    EXPECT_EQ(solver.floating_regions(), ci == 1 ? 0 : 1);
    // Manufactured: x* random, rhs = A x*; the solve returns x* up to a constant.
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> dist(-1, 1);
    std::vector<double> xs(std::size_t(g.cells()));
    for (auto& v : xs)
      v = dist(rng);
    Field<double> xstar(ctx, g), rhs(ctx, g), x(ctx, g), ax(ctx, g);
    xstar.assign(ctx, xs);
    solver.apply(ctx, xstar, rhs);
    SolverOptions opt;
    opt.rel_tol = 1e-12;
    SolveReport rep = solver.solve(ctx, rhs, x, opt);
    EXPECT_TRUE(rep.converged);
    solver.apply(ctx, x, ax);
    axpy(ctx, -1.0, rhs, ax);
    EXPECT_LE(std::sqrt(dot(ctx, ax, ax)), 1e-10 * std::sqrt(dot(ctx, rhs, rhs)));
    if (ci != 1) EXPECT_NEAR(sum(ctx, x), 0.0, 1e-9);  // zero-mean representative
  }
}

TEST(Projection, DivergenceOperatorAndFixedFaces) {
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {8, 6, 1}, kCases[0]);
  MacVelocity<double> u(ctx, g);
  // u_x = x (face positions i*dx): divergence 1 everywhere.
  std::vector<double> vx(std::size_t(u[0].size()));
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 9; ++i)
      vx[std::size_t(i + 9 * j)] = i * g.dx;
  u[0].assign(ctx, vx);
  Field<double> div(ctx, g);
  divergence(ctx, u, div);
  for (double d : div.to_vector(ctx))
    EXPECT_NEAR(d, 1.0, 1e-12);
  zero_fixed_faces(ctx, u);  // walls: faces i = 0 and i = 8 go to 0
  vx = u[0].to_vector(ctx);
  EXPECT_EQ(vx[8], 0.0);
  EXPECT_EQ(vx[0], 0.0);
  EXPECT_NEAR(vx[4], 4 * g.dx, 1e-15);
}

TEST(Projection, WalledOffPocketIsItsOwnNullSpace) {
  Context ctx = Context::cpu();
  for (int ci : {1, 0}) {  // open box: only the ring's inside floats; walls: both regions do
    SCOPED_TRACE(kCases[ci].name);
    Grid g = make_grid(2, {16, 16, 1}, kCases[ci]);
    ObstacleMask m(ctx, g, Location::Cell);
    std::vector<std::uint8_t> v(std::size_t(g.cells()), 0);
    for (int j = 4; j <= 10; ++j)
      for (int i = 4; i <= 10; ++i)
        v[std::size_t(i + 16 * j)] = (i == 4 || i == 10 || j == 4 || j == 10);
    v[0] = 1;  // a solid corner cell...
    v[2 + 16 * 1] = v[1 + 16 * 2] = v[3 + 16 * 2] = v[2 + 16 * 3] =
        1;  // ...and a boxed-in fluid cell
    m.assign(ctx, v);
    PressureSolver<double> solver(ctx, g, &m);
    EXPECT_EQ(solver.floating_regions(), ci == 1 ? 1 : 2);
    MacVelocity<double> u = random_velocity<double>(ctx, g, 8);
    Field<double> p(ctx, g);
    SolverOptions opt;
    opt.rel_tol = 1e-10;
    SolveReport rep = solver.project(ctx, u, p, 1.0, opt);
    EXPECT_LE(max_abs_divergence(ctx, u, &m), 2e-10 * rep.initial_residual);
    const std::vector<double> pv = p.to_vector(ctx);
    EXPECT_EQ(pv[2 + 16 * 2], 0.0);  // inert cell
    double inside = 0;
    for (int j = 5; j < 10; ++j)
      for (int i = 5; i < 10; ++i)
        inside += pv[std::size_t(i + 16 * j)];
    EXPECT_NEAR(inside, 0.0, 1e-9);  // zero mean on the floating pocket
  }
}

TEST(Projection, ProjectAllocatesNothing) {
  Context ctx = Context::cpu();
  Grid g = make_grid(3, {12, 10, 8}, kCases[4]);
  ObstacleMask m = make_obstacle(ctx, g);
  PressureSolver<float> solver(ctx, g, &m);
  EXPECT_GE(solver.multigrid_levels(), 3);
  MacVelocity<float> u = random_velocity<float>(ctx, g, 23);
  Field<float> p(ctx, g), x(ctx, g);
  MacVelocity<float> u2 = random_velocity<float>(ctx, g, 24);
  reset_memory_peaks();
  const MemoryStats before = memory_stats();
  solver.project(ctx, u, p, 0.5f, {});
  SolverOptions warm;
  warm.warm_start = true;
  solver.project(ctx, u2, p, 0.5f, warm);
  solver.solve(ctx, p, x, {});
  const MemoryStats after = memory_stats();
  EXPECT_EQ(after.host_peak, before.host_bytes);
  EXPECT_EQ(after.host_bytes, before.host_bytes);
}

TEST(Projection, PressureSignConvention) {
  // u = grad(phi) (phi = 0 beyond the Open sides) is removed entirely, and the
  // reported pressure satisfies u_new = u - dt grad(p), i.e. p = phi / dt.
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {10, 8, 1}, kCases[1]);
  const int nx = 10, ny = 8;
  std::mt19937 rng(19);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> phi(std::size_t(nx * ny));
  for (auto& v : phi)
    v = dist(rng);
  auto at = [&](int i, int j) {
    return i < 0 || j < 0 || i >= nx || j >= ny ? 0.0 : phi[i + nx * j];
  };
  MacVelocity<double> u(ctx, g);
  std::vector<double> ux(std::size_t((nx + 1) * ny)), uy(std::size_t(nx * (ny + 1)));
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i <= nx; ++i)
      ux[i + (nx + 1) * j] = (at(i, j) - at(i - 1, j)) / g.dx;
  for (int j = 0; j <= ny; ++j)
    for (int i = 0; i < nx; ++i)
      uy[i + nx * j] = (at(i, j) - at(i, j - 1)) / g.dx;
  u[0].assign(ctx, ux);
  u[1].assign(ctx, uy);
  PressureSolver<double> solver(ctx, g);
  Field<double> p(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-13;
  const double dt = 0.25;
  solver.project(ctx, u, p, dt, opt);
  EXPECT_LE(max_abs(ctx, u[0]) + max_abs(ctx, u[1]), 1e-9);
  const std::vector<double> pv = p.to_vector(ctx);
  for (std::size_t c = 0; c < pv.size(); ++c)
    EXPECT_NEAR(pv[c], phi[c] / dt, 1e-9);
}

TEST(Projection, OneDimensionalIsAnalytic) {
  // In 1D a divergence-free velocity is constant: 0 between walls, the mean when periodic.
  Context ctx = Context::cpu();
  for (BK k : {BK::Wall, BK::Periodic}) {
    Grid g = Grid::make_1d(37, 0.1);
    g.set_boundary(k);
    PressureSolver<double> solver(ctx, g);
    MacVelocity<double> u = random_velocity<double>(ctx, g, 6);
    const double mean = sum(ctx, u[0]) / double(u[0].size());
    Field<double> p(ctx, g);
    SolverOptions opt;
    opt.rel_tol = 1e-12;
    solver.project(ctx, u, p, 1.0, opt);
    for (double v : u[0].to_vector(ctx))
      EXPECT_NEAR(v, k == BK::Wall ? 0.0 : mean, 1e-10);
  }
}

TEST(Projection, EveryPreconditionerAndCheckInterval) {
  Context ctx = Context::cpu();
  Grid g = make_grid(3, {12, 10, 8}, kCases[5]);
  ObstacleMask m = make_obstacle(ctx, g);
  PressureSolver<double> solver(ctx, g, &m);
  for (Preconditioner pc :
       {Preconditioner::Multigrid, Preconditioner::Jacobi, Preconditioner::None}) {
    int its_every_1 = 0;
    for (int every : {1, 4}) {
      SCOPED_TRACE(std::string(to_string(pc)) + " check_every " + std::to_string(every));
      MacVelocity<double> u = random_velocity<double>(ctx, g, 13);
      Field<double> p(ctx, g);
      SolverOptions opt;
      opt.rel_tol = 1e-9;
      opt.preconditioner = pc;
      opt.check_every = every;
      SolveReport rep = solver.project(ctx, u, p, 1.0, opt);
      EXPECT_TRUE(rep.converged);
      // The updates stop on the device at the iteration that met the tolerance, so a
      // check interval changes when the host learns it, not the iterations.
      if (every == 1) its_every_1 = rep.iterations;
      EXPECT_EQ(rep.iterations, its_every_1);
      EXPECT_LE(rep.residual, 2e-9 * rep.initial_residual);
      EXPECT_LE(max_abs_divergence(ctx, u, &m), 2e-9 * rep.initial_residual);
    }
  }
}

// Tiny 1D problems that CG solves exactly in one or two iterations, checked
// only every 8th: the iteration after the exact solve meets p.q = 0
// (breakdown, in most of these 18 cases), which stops the updates on the device;
// the solve reports the iterations it did and converges with the same
// pressure as when checked every iteration.
TEST(Projection, ExactSolveBetweenChecksStopsCleanly) {
  Context ctx = Context::cpu();
  for (int n : {2, 3, 4})
    for (BK bk : {BK::Wall, BK::Periodic})
      for (Preconditioner pc :
           {Preconditioner::Multigrid, Preconditioner::Jacobi, Preconditioner::None}) {
        SCOPED_TRACE(std::to_string(n) + " cells " + to_string(bk) + " " + to_string(pc));
        Grid g = Grid::make_1d(n, 0.1);
        g.set_boundary(bk);
        PressureSolver<double> solver(ctx, g);
        std::vector<double> p_ref;
        int its_ref = 0;
        for (int every : {1, 8}) {
          MacVelocity<double> u = random_velocity<double>(ctx, g, 31);
          Field<double> p(ctx, g);
          SolverOptions opt;
          opt.rel_tol = 1e-12;
          opt.check_every = every;
          opt.max_iterations = 64;
          const SolveReport rep = solver.project(ctx, u, p, 1.0, opt);
          EXPECT_TRUE(rep.converged) << "check_every " << every;
          EXPECT_LE(rep.residual, 1e-11 * rep.initial_residual);
          const std::vector<double> pv = p.to_vector(ctx);
          if (every == 1) {
            p_ref = pv;
            its_ref = rep.iterations;
            EXPECT_LT(its_ref, 8);
          } else {
            EXPECT_GE(rep.iterations, its_ref);
            EXPECT_LE(rep.iterations, 8);
            for (std::size_t i = 0; i < pv.size(); ++i)
              EXPECT_NEAR(pv[i], p_ref[i], 1e-12 * (1 + std::abs(p_ref[i])));
          }
        }
      }
}

TEST(Projection, FloatSolveOfTinyInputsDoesNotUnderflow) {
  // Adjoint cotangents can be tiny (1e-35 here: the rhs and residuals go subnormal).
  // Inner products are double sums and float solves rescale |b| to 1 internally.
  Context ctx = Context::cpu();
  Grid g = make_grid(2, {32, 24, 1}, kCases[4]);
  ObstacleMask m = make_obstacle(ctx, g);
  PressureSolver<float> solver(ctx, g, &m);
  MacVelocity<float> u = random_velocity<float>(ctx, g, 17);
  MacVelocity<float> tiny(ctx, g);
  copy(ctx, u, tiny);
  for (int a = 0; a < 2; ++a)
    scale(ctx, tiny[a], 1e-35f);
  Field<float> p(ctx, g), pt(ctx, g);
  SolverOptions opt;
  opt.rel_tol = 1e-6;
  solver.project(ctx, u, p, 1.0f, opt);
  SolveReport rep = solver.project(ctx, tiny, pt, 1.0f, opt);
  EXPECT_TRUE(rep.converged);
  const double umax = max_abs(ctx, u[0]);
  for (int a = 0; a < 2; ++a) {
    auto big = u[a].to_vector(ctx), small = tiny[a].to_vector(ctx);
    for (std::size_t i = 0; i < big.size(); ++i)
      ASSERT_NEAR(double(small[i]) * 1e35, big[i], 1e-4 * umax) << "face " << i;
  }
}

// ---- GPU against CPU (skipped without a CUDA device) ----
namespace {
template <class Fn>
void gpu_vs_cpu(int dim, std::array<int, 3> n, const Case& c, Fn&& run) {
  Context cpu = Context::cpu();
  Context gpu = Context::create(Device::Cuda);
  Grid g = make_grid(dim, n, c);
  ObstacleMask mc, mg;
  if (c.obstacle) {
    mc = make_obstacle(cpu, g);
    mg = ObstacleMask(gpu, g, Location::Cell);
    mg.assign(gpu, mc.to_vector(cpu));
  }
  run(cpu, gpu, g, c.obstacle ? &mc : nullptr, c.obstacle ? &mg : nullptr);
}
}  // namespace

TEST(Projection, GpuProjectionMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (int ci : {0, 3, 4, 5})
    for (int dim : {2, 3}) {
      SCOPED_TRACE(std::string(kCases[ci].name) + " " + std::to_string(dim) + "D");
      std::array<int, 3> n =
          dim == 2 ? std::array<int, 3>{64, 48, 1} : std::array<int, 3>{24, 20, 16};
      gpu_vs_cpu(dim, n, kCases[ci],
                 [&](const Context& cpu, const Context& gpu, const Grid& g, const ObstacleMask* mc,
                     const ObstacleMask* mg) {
                   MacVelocity<float> uc = random_velocity<float>(cpu, g, 31);
                   MacVelocity<float> ug(gpu, g);
                   for (int a = 0; a < dim; ++a)
                     ug[a].assign(gpu, uc[a].to_vector(cpu));
                   Field<float> pc(cpu, g), pg(gpu, g);
                   SolverOptions opt;
                   opt.rel_tol = 1e-6;
                   PressureSolver<float> sc(cpu, g, mc), sg(gpu, g, mg);
                   SolveReport rc = sc.project(cpu, uc, pc, 0.1f, opt);
                   SolveReport rg = sg.project(gpu, ug, pg, 0.1f, opt);
                   std::printf("[ iters    ] cpu %d gpu %d\n", rc.iterations, rg.iterations);
                   double umax = 0, du = 0;
                   for (int a = 0; a < dim; ++a) {
                     auto a1 = uc[a].to_vector(cpu), a2 = ug[a].to_vector(gpu);
                     for (std::size_t i = 0; i < a1.size(); ++i) {
                       umax = std::max(umax, double(std::abs(a1[i])));
                       du = std::max(du, double(std::abs(a1[i] - a2[i])));
                     }
                   }
                   EXPECT_LE(du, 1e-5 * umax);
                   auto p1 = pc.to_vector(cpu), p2 = pg.to_vector(gpu);
                   double pmax = 0, dp = 0;
                   for (std::size_t i = 0; i < p1.size(); ++i) {
                     pmax = std::max(pmax, double(std::abs(p1[i])));
                     dp = std::max(dp, double(std::abs(p1[i] - p2[i])));
                   }
                   EXPECT_LE(dp, 1e-5 * pmax);
                 });
    }
}

TEST(Multigrid, GpuVcycleMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  gpu_vs_cpu(3, {20, 18, 16}, kCases[5],
             [&](const Context& cpu, const Context& gpu, const Grid& g, const ObstacleMask* mc,
                 const ObstacleMask* mg) {
               std::vector<float> v(std::size_t(g.cells()));
               std::mt19937 rng(2);
               std::uniform_real_distribution<float> dist(-1, 1);
               for (auto& x : v)
                 x = dist(rng);
               PressureSolver<float> sc(cpu, g, mc), sg(gpu, g, mg);
               Field<float> rc(cpu, g), zc(cpu, g), rg(gpu, g), zg(gpu, g);
               rc.assign(cpu, v);
               rg.assign(gpu, v);
               sc.precondition(cpu, rc, zc);
               sg.precondition(gpu, rg, zg);
               auto a = zc.to_vector(cpu), b = zg.to_vector(gpu);
               double m = 0, d = 0;
               for (std::size_t i = 0; i < a.size(); ++i) {
                 m = std::max(m, double(std::abs(a[i])));
                 d = std::max(d, double(std::abs(a[i] - b[i])));
               }
               EXPECT_LE(d, 1e-5 * m);
             });
}
