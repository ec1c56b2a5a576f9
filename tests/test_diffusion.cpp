// Diffusion: explicit and implicit, scalars, cell vectors and MAC velocities.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "dfluid/diffusion.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;

namespace {

const double kPi = 3.14159265358979323846;

template <class T>
void set_from(const Context& ctx, Field<T>& f, const std::function<double(int, int, int)>& fn) {
  const auto e = f.extents();
  std::vector<T> v(static_cast<std::size_t>(f.size()));
  std::size_t t = 0;
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i)
        v[t++] = T(fn(i, j, k));
  f.assign(ctx, v);
}

template <class T>
void set_random(const Context& ctx, Field<T>& f, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  set_from<T>(ctx, f, [&](int, int, int) { return d(rng); });
}

template <class T>
T at(const std::vector<T>& v, const Field<T>& f, int i, int j = 0, int k = 0) {
  const auto e = f.extents();
  return v[(std::size_t(k) * e[1] + j) * e[0] + i];
}

// Periodic product of sines sin(2 pi k_a (i_a + 1/2) / n_a) over active axes: an
// eigenvector of the periodic discrete Laplacian with eigenvalue
// -4/dx^2 * sum_a sin^2(pi k_a / n_a).
double sine_mode(const Grid& g, const std::array<int, 3>& kk, int i, int j, int k) {
  const int idx[3] = {i, j, k};
  double v = 1;
  for (int a = 0; a < g.dim; ++a)
    v *= std::sin(2 * kPi * kk[a] * (idx[a] + 0.5) / g.n[a]);
  return v;
}
double mode_sin2(const Grid& g, const std::array<int, 3>& kk) {
  double s = 0;
  for (int a = 0; a < g.dim; ++a)
    s += std::pow(std::sin(kPi * kk[a] / g.n[a]), 2);
  return s;
}

void check_explicit_sine_decay(Grid g, std::array<int, 3> kk, double ratio, int steps) {
  Context ctx = Context::cpu();
  g.set_boundary(BoundaryKind::Periodic);
  const double nu = 0.3;
  const double dt = ratio * g.dx * g.dx / nu;
  Field<double> q(ctx, g), tmp(ctx, g);
  set_from<double>(ctx, q, [&](int i, int j, int k) { return sine_mode(g, kk, i, j, k); });
  const std::vector<double> q0 = q.to_vector(ctx);
  for (int s = 0; s < steps; ++s) {
    diffuse_explicit(ctx, q, nu, dt, tmp);
    std::swap(q, tmp);
  }
  const double factor = std::pow(1 - 4 * ratio * mode_sin2(g, kk), steps);
  const std::vector<double> qn = q.to_vector(ctx);
  double err = 0;
  for (std::size_t t = 0; t < qn.size(); ++t)
    err = std::max(err, std::abs(qn[t] - factor * q0[t]));
  EXPECT_LT(err, 1e-12) << g.describe() << " factor " << factor;
  EXPECT_LT(factor, 0.99);  // the mode really decays
}

}  // namespace

// ---------------------------------------------------------------------------
// Explicit diffusion

TEST(DiffusionExplicit, PeriodicSineDecaysByDiscreteFactor1D) {
  check_explicit_sine_decay(Grid::make_1d(32, 1.0 / 32), {3, 0, 0}, 0.45, 20);
}

TEST(DiffusionExplicit, PeriodicSineDecaysByDiscreteFactor2D) {
  check_explicit_sine_decay(Grid::make_2d(24, 16, 0.1), {2, 3, 0}, 0.2, 15);
}

TEST(DiffusionExplicit, PeriodicSineDecaysByDiscreteFactor3D) {
  check_explicit_sine_decay(Grid::make_3d(12, 10, 8, 0.25), {1, 2, 3}, 0.15, 10);
}

TEST(DiffusionExplicit, ApproachesContinuousDecayWithResolution) {
  // sin(2 pi x) on the periodic unit interval decays as exp(-nu (2 pi)^2 t).
  Context ctx = Context::cpu();
  const double nu = 0.01, t_end = 1.0;
  const double exact = std::exp(-nu * 4 * kPi * kPi * t_end);
  std::vector<double> errors;
  for (int n : {16, 32, 64, 128}) {
    Grid g = Grid::make_1d(n, 1.0 / n);
    g.set_boundary(BoundaryKind::Periodic);
    const int steps = int(std::ceil(t_end / (0.25 * max_stable_diffusion_dt(g, nu))));
    const double dt = t_end / steps;
    Field<double> q(ctx, g), tmp(ctx, g);
    set_from<double>(ctx, q, [&](int i, int, int) { return std::sin(2 * kPi * (i + 0.5) / n); });
    for (int s = 0; s < steps; ++s) {
      diffuse_explicit(ctx, q, nu, dt, tmp);
      std::swap(q, tmp);
    }
    // amplitude by projection onto the mode
    const std::vector<double> v = q.to_vector(ctx);
    double amp = 0;
    for (int i = 0; i < n; ++i)
      amp += v[i] * std::sin(2 * kPi * (i + 0.5) / n) * 2.0 / n;
    errors.push_back(std::abs(amp - exact));
  }
  for (std::size_t r = 1; r < errors.size(); ++r) {
    EXPECT_LT(errors[r], errors[r - 1] / 3.5) << "second order in dx (dt ~ dx^2)";
  }
  EXPECT_LT(errors.back(), 5e-5 * exact);
}

TEST(DiffusionExplicit, BurgersReferenceStepIsTheThreePointLaplacian) {
  // PBDL Burgers (reference README section 2): N = 128 on [-1, 1], periodic,
  // nu = 0.01 / (N pi), dt = 1/32, u <- u + nu dt (u[i-1] - 2 u[i] + u[i+1]) / dx^2.
  Context ctx = Context::cpu();
  const int n = 128;
  const double dx = 2.0 / n, nu = 0.01 / (n * kPi), dt = 1.0 / 32;
  Grid g = Grid::make_1d(n, dx, -1.0);
  g.set_boundary(BoundaryKind::Periodic);
  CellVector<double> u(ctx, g), out(ctx, g);
  set_from<double>(ctx, u[0],
                   [&](int i, int, int) { return -std::sin(kPi * (-1 + (i + 0.5) * dx)); });
  diffuse_explicit(ctx, u, nu, dt, out);
  const std::vector<double> a = u[0].to_vector(ctx), b = out[0].to_vector(ctx);
  for (int i = 0; i < n; ++i) {
    const double lo = a[(i + n - 1) % n], hi = a[(i + 1) % n];
    const double expect = a[i] + nu * dt * (lo - 2 * a[i] + hi) / (dx * dx);
    EXPECT_NEAR(b[i], expect, 1e-15) << i;
  }
  // float path: same formula to float round-off
  CellVector<float> uf(ctx, g), of(ctx, g);
  std::vector<float> af(a.begin(), a.end());
  uf[0].assign(ctx, af);
  diffuse_explicit(ctx, uf, float(nu), float(dt), of);
  const std::vector<float> bf = of[0].to_vector(ctx);
  for (int i = 0; i < n; ++i)
    EXPECT_NEAR(bf[i], b[i], 1e-6) << i;
}

TEST(DiffusionExplicit, ZeroGradientConservesTotalAndFixedPullsTowardValue) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(9, 7, 0.5);
  Field<double> q(ctx, g), out(ctx, g);
  set_random(ctx, q, 3);
  const double nu = 0.2, dt = 0.9 * max_stable_diffusion_dt(g, nu);
  diffuse_explicit(ctx, q, nu, dt, out);
  EXPECT_NEAR(sum(ctx, out), sum(ctx, q), 1e-12);

  // Hand-computed 1D row with Fixed sides: ghost = 2b - boundary cell.
  Grid g1 = Grid::make_1d(4, 1.0);
  ScalarBoundary bc = ScalarBoundary::fixed(0);
  bc.value[0] = {2.0, -1.0};
  Field<double> a(ctx, g1), b(ctx, g1);
  a.assign(ctx, {1.0, 3.0, 4.0, 0.5});
  const double c = 0.25;  // nu dt / dx^2 with nu = 0.5, dt = 0.5
  diffuse_explicit(ctx, a, 0.5, 0.5, b, bc);
  const std::vector<double> r = b.to_vector(ctx);
  EXPECT_DOUBLE_EQ(r[0], 1.0 + c * ((2 * 2.0 - 1.0) - 2 * 1.0 + 3.0));
  EXPECT_DOUBLE_EQ(r[1], 3.0 + c * (1.0 - 6.0 + 4.0));
  EXPECT_DOUBLE_EQ(r[2], 4.0 + c * (3.0 - 8.0 + 0.5));
  EXPECT_DOUBLE_EQ(r[3], 0.5 + c * (4.0 - 1.0 + (2 * -1.0 - 0.5)));
}

TEST(DiffusionExplicit, UnstableStepThrowsWithLargestStableDt) {
  Context ctx = Context::cpu();
  for (int dim = 1; dim <= 3; ++dim) {
    Grid g = dim == 1   ? Grid::make_1d(8, 0.1)
             : dim == 2 ? Grid::make_2d(8, 6, 0.1)
                        : Grid::make_3d(6, 5, 4, 0.1);
    const double nu = 0.5;
    const double max_dt = 0.1 * 0.1 / (2 * dim * nu);
    EXPECT_DOUBLE_EQ(max_stable_diffusion_dt(g, nu), max_dt);
    Field<double> q(ctx, g), out(ctx, g);
    set_random(ctx, q, 7);
    try {
      diffuse_explicit(ctx, q, nu, max_dt * 1.001, out);
      FAIL() << "unstable dt accepted in " << dim << "D";
    } catch (const UnstableTimeStep& e) {
      EXPECT_DOUBLE_EQ(e.max_stable_dt(), max_dt);
      EXPECT_NE(std::string(e.what()).find("largest stable dt"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(diffuse_explicit(ctx, q, nu, max_dt * (1 - 1e-9), out));
    MacVelocity<double> u(ctx, g), uo(ctx, g);
    EXPECT_THROW(diffuse_explicit(ctx, u, nu, max_dt * 1.001, uo), UnstableTimeStep);
    EXPECT_NO_THROW(diffuse_explicit(ctx, u, nu, max_dt * (1 - 1e-9), uo));
    CellVector<float> cv(ctx, g), co(ctx, g);
    EXPECT_THROW(diffuse_explicit(ctx, cv, float(nu), float(max_dt * 1.001), co), UnstableTimeStep);
  }
  Grid g = Grid::make_2d(4, 4, 1.0);
  EXPECT_EQ(max_stable_diffusion_dt(g, 0.0), std::numeric_limits<double>::infinity());
}

TEST(DiffusionExplicit, IsSymmetricForPeriodicAndZeroGradient) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(7, 6, 5, 0.3);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const double nu = 0.1, dt = 0.8 * max_stable_diffusion_dt(g, nu);
  Field<double> x(ctx, g), y(ctx, g), ex(ctx, g), ey(ctx, g), e0(ctx, g), zero(ctx, g);
  set_random(ctx, x, 11);
  set_random(ctx, y, 12);
  diffuse_explicit(ctx, x, nu, dt, ex);
  diffuse_explicit(ctx, y, nu, dt, ey);
  const double lhs = dot(ctx, ex, y), rhs = dot(ctx, x, ey);
  EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs));

  // Fixed sides make the step affine: its linear part E(x) - E(0) is symmetric.
  ScalarBoundary bc = ScalarBoundary::fixed(0.7);
  bc.kind[1][0] = ScalarBoundaryKind::ZeroGradient;
  diffuse_explicit(ctx, x, nu, dt, ex, bc);
  diffuse_explicit(ctx, y, nu, dt, ey, bc);
  diffuse_explicit(ctx, zero, nu, dt, e0, bc);
  axpy(ctx, -1.0, e0, ex);
  axpy(ctx, -1.0, e0, ey);
  const double l2 = dot(ctx, ex, y), r2 = dot(ctx, x, ey);
  EXPECT_NEAR(l2, r2, 1e-12 * std::abs(l2));
  EXPECT_GT(max_abs(ctx, e0), 0.0);
}

TEST(DiffusionExplicit, MacVelocityBoundaries) {
  // 2D, x: wall/open, y: wall/wall. Component 0 (x-faces, 4x3 for 3x3 cells+1).
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 3, 1.0);
  g.set_boundary(0, BoundaryKind::Wall, BoundaryKind::Open);
  MacVelocity<double> u(ctx, g), out(ctx, g);
  set_random(ctx, u[0], 1);
  set_random(ctx, u[1], 2);
  const double nu = 0.1, dt = 1.0, c = nu * dt;
  diffuse_explicit(ctx, u, nu, dt, out);
  const auto a = u[0].to_vector(ctx), b = out[0].to_vector(ctx);
  const auto a1 = u[1].to_vector(ctx), b1 = out[1].to_vector(ctx);
  auto A = [&](int i, int j) { return at(a, u[0], i, j); };
  auto B = [&](int i, int j) { return at(b, out[0], i, j); };
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(B(0, j), A(0, j)) << "wall-normal face held";
    // interior face next to the wall reads the wall face as a Dirichlet value
    const double lo_y = j > 0 ? A(1, j - 1) : A(1, j), hi_y = j < 2 ? A(1, j + 1) : A(1, j);
    EXPECT_NEAR(B(1, j),
                A(1, j) + c * (A(0, j) + A(2, j) - 2 * A(1, j) + lo_y + hi_y - 2 * A(1, j)), 1e-15);
    // open side: the boundary face is diffused with a zero-gradient ghost
    const double lo3 = j > 0 ? A(3, j - 1) : A(3, j), hi3 = j < 2 ? A(3, j + 1) : A(3, j);
    EXPECT_NEAR(B(3, j), A(3, j) + c * (A(2, j) - A(3, j) + lo3 + hi3 - 2 * A(3, j)), 1e-15);
  }
  // component 1 (y-faces 3x4): walls at j = 0 and j = 3 held; x-direction is tangential
  auto A1 = [&](int i, int j) { return at(a1, u[1], i, j); };
  auto B1 = [&](int i, int j) { return at(b1, out[1], i, j); };
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(B1(i, 0), A1(i, 0));
    EXPECT_EQ(B1(i, 3), A1(i, 3));
  }
  EXPECT_NEAR(B1(0, 1), A1(0, 1) + c * (A1(1, 1) - A1(0, 1) + A1(0, 0) + A1(0, 2) - 2 * A1(0, 1)),
              1e-15);
}

TEST(DiffusionExplicit, MacVelocityIsSymmetricOnFreeFaces) {
  // With the held wall-normal faces set to zero, the MAC step is symmetric.
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(5, 4, 6, 0.5);
  g.set_boundary(0, BoundaryKind::Wall, BoundaryKind::Open);
  g.set_boundary(2, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const double nu = 0.05, dt = 0.9 * max_stable_diffusion_dt(g, nu);
  MacVelocity<double> x(ctx, g), y(ctx, g), ex(ctx, g), ey(ctx, g);
  for (int a = 0; a < 3; ++a) {
    for (auto* f : {&x, &y}) {
      const bool wall_axis = a != 2;
      const int lo_held = 0, hi_held = (a == 1) ? g.n[1] : -1;  // x: wall low, open high
      const unsigned seed = 100 + a + (f == &y ? 10 : 0);
      std::mt19937 rng(seed);
      std::uniform_real_distribution<double> d(-1, 1);
      set_from<double>(ctx, (*f)[a], [&](int i, int j, int k) {
        const int idx[3] = {i, j, k};
        const double v = d(rng);
        if (wall_axis && (idx[a] == lo_held || idx[a] == hi_held)) return 0.0;
        return v;
      });
    }
  }
  diffuse_explicit(ctx, x, nu, dt, ex);
  diffuse_explicit(ctx, y, nu, dt, ey);
  double lhs = 0, rhs = 0;
  for (int a = 0; a < 3; ++a) {
    lhs += dot(ctx, ex[a], y[a]);
    rhs += dot(ctx, x[a], ey[a]);
  }
  EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs));
}

TEST(DiffusionExplicit, RejectsBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(6, 5, 0.5);
  Field<double> q(ctx, g), out(ctx, g), wrong(ctx, Grid::make_2d(5, 6, 0.5));
  auto expect_msg = [](auto&& fn, const char* word) {
    try {
      fn();
      ADD_FAILURE() << "no exception, expected one naming " << word;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { diffuse_explicit(ctx, q, -0.1, 0.1, out); }, "nu");
  expect_msg([&] { diffuse_explicit(ctx, q, std::nan(""), 0.1, out); }, "nu");
  expect_msg([&] { diffuse_explicit(ctx, q, 0.1, 0.0, out); }, "dt");
  expect_msg([&] { diffuse_explicit(ctx, q, 0.1, -1.0, out); }, "dt");
  expect_msg([&] { diffuse_explicit(ctx, q, 0.1, std::nan(""), out); }, "dt");
  expect_msg([&] { diffuse_explicit(ctx, q, 0.1, 0.1, q); }, "alias");
  EXPECT_THROW(diffuse_explicit(ctx, q, 0.1, 0.1, wrong), ShapeMismatch);
  Field<double> faces(ctx, g, Location::FaceX), faces2(ctx, g, Location::FaceX);
  EXPECT_THROW(diffuse_explicit(ctx, faces, 0.1, 0.1, faces2), ShapeMismatch);
  MacVelocity<double> u(ctx, g), uo(ctx, Grid::make_2d(6, 4, 0.5));
  EXPECT_THROW(diffuse_explicit(ctx, u, 0.1, 0.1, uo), ShapeMismatch);
  MacVelocity<double> empty;
  EXPECT_THROW(diffuse_explicit(ctx, empty, 0.1, 0.1, u), ShapeMismatch);
  EXPECT_THROW(diffuse_explicit(ctx, u, 0.1, 0.1, u), InvalidArgument);
}

// ---------------------------------------------------------------------------
// Implicit diffusion

namespace {

SolverOptions tight(double rel = 1e-13) {
  SolverOptions o;
  o.rel_tol = rel;
  o.max_iterations = 2000;
  return o;
}

void check_implicit_sine_decay(Grid g, std::array<int, 3> kk, double ratio, int steps) {
  Context ctx = Context::cpu();
  g.set_boundary(BoundaryKind::Periodic);
  const double nu = 0.3;
  const double dt = ratio * g.dx * g.dx / nu;
  Field<double> q(ctx, g), tmp(ctx, g);
  set_from<double>(ctx, q, [&](int i, int j, int k) { return sine_mode(g, kk, i, j, k); });
  const std::vector<double> q0 = q.to_vector(ctx);
  for (int s = 0; s < steps; ++s) {
    const SolveReport rep = diffuse_implicit(ctx, q, nu, dt, tmp, {}, tight());
    EXPECT_TRUE(rep.converged);
    EXPECT_GT(rep.iterations, 0);
    std::swap(q, tmp);
  }
  const double factor = std::pow(1 / (1 + 4 * ratio * mode_sin2(g, kk)), steps);
  const std::vector<double> qn = q.to_vector(ctx);
  double err = 0;
  for (std::size_t t = 0; t < qn.size(); ++t)
    err = std::max(err, std::abs(qn[t] - factor * q0[t]));
  EXPECT_LT(err, 1e-11) << g.describe() << " factor " << factor;
  EXPECT_LT(factor, 0.99);
}

}  // namespace

TEST(DiffusionImplicit, PeriodicSineDecaysByBackwardEulerFactor1D) {
  check_implicit_sine_decay(Grid::make_1d(32, 1.0 / 32), {3, 0, 0}, 2.0, 5);
}

TEST(DiffusionImplicit, PeriodicSineDecaysByBackwardEulerFactor2D) {
  check_implicit_sine_decay(Grid::make_2d(24, 16, 0.1), {2, 3, 0}, 5.0, 4);
}

TEST(DiffusionImplicit, PeriodicSineDecaysByBackwardEulerFactor3D) {
  check_implicit_sine_decay(Grid::make_3d(12, 10, 8, 0.25), {1, 2, 3}, 0.7, 3);
}

TEST(DiffusionImplicit, StableForLargeDtAndConservesWithZeroGradient) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(20, 16, 0.1);
  const double nu = 1.0, dt = 1000 * max_stable_diffusion_dt(g, nu);
  Field<double> q(ctx, g), out(ctx, g);
  set_random(ctx, q, 21);
  const double total = sum(ctx, q), peak = max_abs(ctx, q);
  for (int s = 0; s < 3; ++s) {
    const SolveReport rep = diffuse_implicit(ctx, q, nu, dt, out, {}, tight(1e-12));
    EXPECT_TRUE(rep.converged);
    EXPECT_LE(max_abs(ctx, out), peak);  // maximum principle
    EXPECT_NEAR(sum(ctx, out), total, 1e-10 * q.size());
    copy(ctx, out, q);
  }
  // after three huge steps the field is nearly its mean
  const double mean = total / q.size();
  const auto v = q.to_vector(ctx);
  for (double x : v)
    EXPECT_NEAR(x, mean, 0.05);
}

TEST(DiffusionImplicit, ApproachesFixedBoundaryValue) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(16, 12, 1.0 / 16);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  ScalarBoundary bc = ScalarBoundary::fixed(2.0);  // y sides fixed at 2
  Field<double> q(ctx, g), out(ctx, g);
  set_random(ctx, q, 4);
  const double nu = 1.0, dt = 1e4 * max_stable_diffusion_dt(g, nu);
  double prev = 1e30;
  for (int s = 0; s < 4; ++s) {
    diffuse_implicit(ctx, q, nu, dt, out, bc, tight(1e-12));
    copy(ctx, out, q);
    fill(ctx, out, 2.0);
    axpy(ctx, -1.0, q, out);
    const double dev = max_abs(ctx, out);
    EXPECT_LT(dev, prev);
    prev = dev;
  }
  EXPECT_LT(prev, 1e-6);
}

TEST(DiffusionImplicit, IsTheInverseOfTheExplicitOperatorStep) {
  // x = implicit(q) satisfies x - nu dt lap(x) = q, with lap exactly the explicit
  // stencil (boundaries, Fixed values and held wall faces included):
  // 2 x - explicit(x) = q.
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(9, 7, 6, 0.2);
  g.set_boundary(0, BoundaryKind::Wall, BoundaryKind::Open);
  g.set_boundary(2, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const double nu = 0.3, dt = 0.5 * max_stable_diffusion_dt(g, nu);
  ScalarBoundary bc;
  bc.kind[0][1] = ScalarBoundaryKind::Fixed;
  bc.value[0][1] = -1.5;
  bc.kind[1][0] = ScalarBoundaryKind::Fixed;
  bc.value[1][0] = 0.75;
  Field<double> q(ctx, g), x(ctx, g), ex(ctx, g);
  set_random(ctx, q, 8);
  diffuse_implicit(ctx, q, nu, dt, x, bc, tight());
  diffuse_explicit(ctx, x, nu, dt, ex, bc);
  scale(ctx, ex, -1.0);
  axpy(ctx, 2.0, x, ex);
  axpy(ctx, -1.0, q, ex);
  EXPECT_LT(max_abs(ctx, ex), 1e-12);

  MacVelocity<double> u(ctx, g), ux(ctx, g), uex(ctx, g);
  for (int a = 0; a < 3; ++a)
    set_random(ctx, u[a], 30 + a);
  const SolveReport rep = diffuse_implicit(ctx, u, nu, dt, ux, tight());
  EXPECT_TRUE(rep.converged);
  diffuse_explicit(ctx, ux, nu, dt, uex);
  for (int a = 0; a < 3; ++a) {
    scale(ctx, uex[a], -1.0);
    axpy(ctx, 2.0, ux[a], uex[a]);
    axpy(ctx, -1.0, u[a], uex[a]);
    EXPECT_LT(max_abs(ctx, uex[a]), 1e-12) << a;
  }
  // wall-normal faces are held exactly
  const auto a0 = u[0].to_vector(ctx), b0 = ux[0].to_vector(ctx);
  const auto e = u[0].extents();
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      EXPECT_EQ(at(b0, u[0], 0, j, k), at(a0, u[0], 0, j, k));

  CellVector<double> cq(ctx, g), cx(ctx, g);
  for (int a = 0; a < 3; ++a)
    copy(ctx, q, cq[a]);
  diffuse_implicit(ctx, cq, nu, dt, cx, bc, tight());
  for (int a = 0; a < 3; ++a) {
    axpy(ctx, -1.0, x, cx[a]);
    EXPECT_LT(max_abs(ctx, cx[a]), 1e-12);
  }
}

TEST(DiffusionImplicit, IsSymmetric) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(8, 6, 5, 0.3);
  g.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const double nu = 0.1, dt = 2.0 * max_stable_diffusion_dt(g, nu);
  Field<double> x(ctx, g), y(ctx, g), ax(ctx, g), ay(ctx, g), a0(ctx, g), zero(ctx, g);
  set_random(ctx, x, 41);
  set_random(ctx, y, 42);
  for (auto pre : {Preconditioner::Jacobi, Preconditioner::None}) {
    SolverOptions o = tight(1e-15);
    o.throw_on_failure = false;  // round-off may stop it just above 1e-15
    o.preconditioner = pre;
    diffuse_implicit(ctx, x, nu, dt, ax, {}, o);
    diffuse_implicit(ctx, y, nu, dt, ay, {}, o);
    const double lhs = dot(ctx, ax, y), rhs = dot(ctx, x, ay);
    EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs));

    ScalarBoundary bc = ScalarBoundary::fixed(-0.4);  // affine: test the linear part
    diffuse_implicit(ctx, x, nu, dt, ax, bc, o);
    diffuse_implicit(ctx, y, nu, dt, ay, bc, o);
    diffuse_implicit(ctx, zero, nu, dt, a0, bc, o);
    axpy(ctx, -1.0, a0, ax);
    axpy(ctx, -1.0, a0, ay);
    const double l2 = dot(ctx, ax, y), r2 = dot(ctx, x, ay);
    EXPECT_NEAR(l2, r2, 1e-12 * std::abs(l2));
  }
}

TEST(DiffusionImplicit, HonoursSolverOptionsAndRejectsBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(32, 32, 1.0 / 32);
  const double nu = 1.0, dt = 100 * max_stable_diffusion_dt(g, nu);
  Field<double> q(ctx, g), out(ctx, g);
  set_random(ctx, q, 2);
  SolverOptions o;
  o.max_iterations = 2;
  EXPECT_THROW(diffuse_implicit(ctx, q, nu, dt, out, {}, o), SolverNotConverged);
  o.throw_on_failure = false;
  SolveReport rep = diffuse_implicit(ctx, q, nu, dt, out, {}, o);
  EXPECT_FALSE(rep.converged);
  EXPECT_EQ(rep.iterations, 2);
  o = SolverOptions{};
  o.rel_tol = 1e-8;
  rep = diffuse_implicit(ctx, q, nu, dt, out, {}, o);
  EXPECT_TRUE(rep.converged);
  EXPECT_LE(rep.residual, 1e-8 * rep.initial_residual * 1.0001);
  // warm start from the answer: converged at once
  o.warm_start = true;
  rep = diffuse_implicit(ctx, q, nu, dt, out, {}, o);
  EXPECT_EQ(rep.iterations, 0);
  o = SolverOptions{};
  o.rel_tol = -1;
  EXPECT_THROW(diffuse_implicit(ctx, q, nu, dt, out, {}, o), InvalidArgument);
  EXPECT_THROW(diffuse_implicit(ctx, q, -1.0, dt, out), InvalidArgument);
  EXPECT_THROW(diffuse_implicit(ctx, q, nu, 0.0, out), InvalidArgument);
  EXPECT_THROW(diffuse_implicit(ctx, q, nu, dt, q), InvalidArgument);
  Field<double> wrong(ctx, Grid::make_2d(32, 31, 1.0 / 32));
  EXPECT_THROW(diffuse_implicit(ctx, q, nu, dt, wrong), ShapeMismatch);
  // nu = 0: the identity
  diffuse_implicit(ctx, q, 0.0, dt, out);
  axpy(ctx, -1.0, q, out);
  EXPECT_EQ(max_abs(ctx, out), 0.0);
}

TEST(DiffusionImplicit, FloatMatchesDouble) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(24, 20, 0.05);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  const double nu = 0.2, dt = 10 * max_stable_diffusion_dt(g, nu);
  MacVelocity<double> ud(ctx, g), od(ctx, g);
  MacVelocity<float> uf(ctx, g), of(ctx, g);
  for (int a = 0; a < 2; ++a) {
    set_random(ctx, ud[a], 60 + a);
    set_random(ctx, uf[a], 60 + a);
  }
  SolverOptions o;
  o.rel_tol = 1e-6;
  diffuse_implicit(ctx, ud, nu, dt, od, o);
  diffuse_implicit(ctx, uf, float(nu), float(dt), of, o);
  for (int a = 0; a < 2; ++a) {
    const auto d = od[a].to_vector(ctx);
    const auto f = of[a].to_vector(ctx);
    for (std::size_t t = 0; t < d.size(); ++t)
      ASSERT_NEAR(f[t], d[t], 1e-5) << a << " " << t;
  }
}

// ---------------------------------------------------------------------------
// GPU against CPU

TEST(GpuDiffusion, ExplicitAndImplicitMatchCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  Grid g = Grid::make_3d(20, 17, 9, 0.1);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  ScalarBoundary bc;
  bc.kind[2][1] = ScalarBoundaryKind::Fixed;
  bc.value[2][1] = 0.5;
  const float nu = 0.01f, dt = float(0.9 * max_stable_diffusion_dt(g, nu));
  auto compare = [&](const Field<float>& c, const Field<float>& d) {
    const auto a = c.to_vector(cpu), b = d.to_vector(gpu);
    for (std::size_t t = 0; t < a.size(); ++t)
      ASSERT_NEAR(b[t], a[t], 1e-5 * std::max(1.0f, std::abs(a[t]))) << t;
  };
  Field<float> qc(cpu, g), oc(cpu, g), qg(gpu, g), og(gpu, g);
  set_random(cpu, qc, 5);
  copy(gpu, qc, qg);
  diffuse_explicit(cpu, qc, nu, dt, oc, bc);
  diffuse_explicit(gpu, qg, nu, dt, og, bc);
  compare(oc, og);
  MacVelocity<float> uc(cpu, g), uoc(cpu, g), ug(gpu, g), uog(gpu, g);
  for (int a = 0; a < 3; ++a) {
    set_random(cpu, uc[a], 20 + a);
    copy(gpu, uc[a], ug[a]);
  }
  diffuse_explicit(cpu, uc, nu, dt, uoc);
  diffuse_explicit(gpu, ug, nu, dt, uog);
  for (int a = 0; a < 3; ++a)
    compare(uoc[a], uog[a]);
}
