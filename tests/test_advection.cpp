// Advection: observed orders of accuracy, MacCormack's clamp, exactness
// properties, backtraces, argument checks, and GPU against CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "advection_test_util.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Physical position of sample (i, j, k) of an array at `loc` on g.
std::array<double, 3> sample_position(const Grid& g, Location loc, int i, int j, int k) {
  const int face = loc == Location::Cell ? -1 : int(loc) - 1;
  const int idx[3] = {i, j, k};
  std::array<double, 3> x{};
  for (int a = 0; a < 3; ++a)
    x[a] = g.origin[a] + (idx[a] + (a == face ? 0.0 : 0.5)) * g.dx;
  return x;
}

/// Fills f with fn(x, y, z) at its sample positions.
template <class T>
void set_values(const Context& ctx, Field<T>& f,
                const std::function<double(double, double, double)>& fn) {
  const auto e = f.extents();
  std::vector<T> v(std::size_t(f.size()));
  std::size_t n = 0;
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i) {
        const auto x = sample_position(f.grid(), f.location(), i, j, k);
        v[n++] = T(fn(x[0], x[1], x[2]));
      }
  f.assign(ctx, v);
}

/// Root-mean-square of f - fn over the samples of f.
template <class T>
double rms_error(const Context& ctx, const Field<T>& f,
                 const std::function<double(double, double, double)>& fn) {
  const auto e = f.extents();
  const std::vector<T> v = f.to_vector(ctx);
  double s = 0;
  std::size_t n = 0;
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i) {
        const auto x = sample_position(f.grid(), f.location(), i, j, k);
        const double d = double(v[n++]) - fn(x[0], x[1], x[2]);
        s += d * d;
      }
  return std::sqrt(s / double(n));
}

Grid unit_grid(int dim, int n, BoundaryKind b) {
  Grid g = dim == 1 ? Grid::make_1d(n, 1.0 / n)
                    : (dim == 2 ? Grid::make_2d(n, n, 1.0 / n) : Grid::make_3d(n, n, n, 1.0 / n));
  g.set_boundary(b);
  return g;
}

/// Deterministic pseudo-random values in [0, 1).
std::vector<double> rough_values(std::size_t n, unsigned seed) {
  std::vector<double> v(n);
  unsigned s = seed * 2654435761u + 12345u;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = double(s >> 8) / double(1u << 24);
  }
  return v;
}

template <class T>
std::vector<T> cast_values(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// Prints a convergence table and returns the observed orders between rows.
std::vector<double> order_table(const std::string& title, const std::vector<int>& ns,
                                const std::vector<double>& errs) {
  std::vector<double> orders;
  std::printf("  %s\n  %8s %14s %8s\n", title.c_str(), "n", "rms error", "order");
  for (std::size_t r = 0; r < ns.size(); ++r) {
    if (r == 0) {
      std::printf("  %8d %14.6e %8s\n", ns[r], errs[r], "-");
      continue;
    }
    const double p = std::log(errs[r - 1] / errs[r]) / std::log(double(ns[r]) / ns[r - 1]);
    orders.push_back(p);
    std::printf("  %8d %14.6e %8.3f\n", ns[r], errs[r], p);
  }
  return orders;
}

AdvectionOptions options(AdvectionScheme s, Backtrace b = Backtrace::Euler,
                         Interpolation in = Interpolation::Linear) {
  AdvectionOptions o;
  o.scheme = s;
  o.backtrace = b;
  o.interpolation = in;
  return o;
}

/// Error after advecting prod_a sin(2 pi x_a) in the uniform velocity (1, 1/2, 1/4)
/// on the periodic unit box, CFL 0.35, `steps_per_n` * n steps.
double scalar_uniform_error(int dim, int n, double steps_per_n, const AdvectionOptions& opt) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(dim, n, BoundaryKind::Periodic);
  const double vel[3] = {1.0, 0.5, 0.25};
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < dim; ++a)
    fill(ctx, u[a], vel[a]);
  const double dt = 0.35 * g.dx;
  const int steps = int(steps_per_n * n);
  const double t = steps * dt;
  auto profile = [dim](double x, double y, double z) {
    const double p[3] = {x, y, z};
    double v = 1;
    for (int a = 0; a < dim; ++a)
      v *= std::sin(2 * kPi * p[a]);
    return v;
  };
  Field<double> q(ctx, g), out(ctx, g), scratch(ctx, g);
  set_values<double>(ctx, q, profile);
  for (int s = 0; s < steps; ++s) {
    advect(ctx, q, u, dt, out, opt, &scratch);
    std::swap(q, out);
  }
  return rms_error<double>(ctx, q, [&](double x, double y, double z) {
    return profile(x - vel[0] * t, y - vel[1] * t, z - vel[2] * t);
  });
}

void check_orders(const std::vector<double>& orders, double lo, double hi) {
  for (double p : orders) {
    EXPECT_GE(p, lo);
    EXPECT_LE(p, hi);
  }
}

/// The schemes whose orders are measured, with the bounds asserted on them.
struct Variant {
  std::string name;
  AdvectionOptions opt;
  double lo, hi;
};

/// Semi-Lagrangian: first order. MacCormack without the clamp (the linear
/// scheme): second order. MacCormack with the clamp: second order except at
/// smooth extrema, which the clamp flattens; where the extrema weigh most
/// (1D) the observed order slowly falls (1.87, 1.81, 1.74, 1.70, 1.67 from 32
/// to 1024 cells), hence `clamped_lo`.
std::vector<Variant> order_variants(double clamped_lo) {
  AdvectionOptions linear = options(AdvectionScheme::MacCormack);
  linear.maccormack_clamp = false;
  return {{"semi-lagrangian", options(AdvectionScheme::SemiLagrangian), 0.7, 1.3},
          {"maccormack (clamped)", options(AdvectionScheme::MacCormack), clamped_lo, 2.5},
          {"maccormack (no clamp)", linear, 1.9, 2.2}};
}

struct ConvergenceCase {
  int dim;
  std::vector<int> ns;
  double steps_per_n;
  double clamped_lo;
};

void run_scalar_convergence(const ConvergenceCase& c) {
  for (const Variant& v : order_variants(c.clamped_lo)) {
    std::vector<double> errs;
    for (int n : c.ns)
      errs.push_back(scalar_uniform_error(c.dim, n, c.steps_per_n, v.opt));
    check_orders(order_table(std::to_string(c.dim) + "D scalar, " + v.name, c.ns, errs), v.lo,
                 v.hi);
  }
}

/// Solid-body rotation about the centre of the unit square, one turn per unit time.
template <class T>
void set_rotation(const Context& ctx, MacVelocity<T>& u) {
  const double w = 2 * kPi;
  set_values<T>(ctx, u[0], [w](double, double y, double) { return -w * (y - 0.5); });
  set_values<T>(ctx, u[1], [w](double x, double, double) { return w * (x - 0.5); });
}

}  // namespace

// ---------------------------------------------------------------------------
// Observed order of accuracy (smooth profile, uniform velocity, periodic box)
// ---------------------------------------------------------------------------

TEST(AdvectionOrder, Scalar1D) {
  run_scalar_convergence({1, {32, 64, 128, 256, 512}, 1.0, 1.6});
}
TEST(AdvectionOrder, Scalar2D) {
  run_scalar_convergence({2, {16, 32, 64, 128}, 1.0, 1.7});
}
TEST(AdvectionOrder, Scalar3D) {
  run_scalar_convergence({3, {12, 24, 48}, 0.25, 1.7});
}

// Semi-Lagrangian with Interpolation::Cubic (Catmull-Rom): its error per step is O(h^3),
// so at a fixed Courant number it is second order where linear is first order (above),
// and far more accurate at every size.
TEST(AdvectionOrder, CubicSemiLagrangian) {
  const AdvectionOptions lin = options(AdvectionScheme::SemiLagrangian);
  const AdvectionOptions cub =
      options(AdvectionScheme::SemiLagrangian, Backtrace::Euler, Interpolation::Cubic);
  for (const ConvergenceCase& c :
       {ConvergenceCase{1, {32, 64, 128, 256}, 1.0, 0}, ConvergenceCase{2, {16, 32, 64}, 1.0, 0}}) {
    std::vector<double> errs, lerrs;
    for (int n : c.ns) {
      errs.push_back(scalar_uniform_error(c.dim, n, c.steps_per_n, cub));
      lerrs.push_back(scalar_uniform_error(c.dim, n, c.steps_per_n, lin));
      EXPECT_LT(errs.back(), 0.2 * lerrs.back()) << "n = " << n;
    }
    check_orders(
        order_table(std::to_string(c.dim) + "D scalar, semi-lagrangian (cubic)", c.ns, errs), 1.8,
        2.3);
  }
}

TEST(AdvectionOrder, MacVelocity2D) {
  // A MAC field with smooth components advected by a separate uniform velocity.
  for (const Variant& v : order_variants(1.7)) {
    std::vector<int> ns{16, 32, 64};
    std::vector<double> errs;
    for (int n : ns) {
      Context ctx = Context::cpu();
      const Grid g = unit_grid(2, n, BoundaryKind::Periodic);
      MacVelocity<double> u(ctx, g), q(ctx, g), out(ctx, g), scratch(ctx, g);
      fill(ctx, u[0], 0.8);
      fill(ctx, u[1], -0.6);
      auto fx = [](double x, double y) { return std::sin(2 * kPi * x) * std::cos(2 * kPi * y); };
      auto fy = [](double x, double y) { return std::cos(2 * kPi * (x + y)); };
      set_values<double>(ctx, q[0], [&](double x, double y, double) { return fx(x, y); });
      set_values<double>(ctx, q[1], [&](double x, double y, double) { return fy(x, y); });
      const double dt = 0.35 * g.dx / 0.8;
      const int steps = n;
      for (int s = 0; s < steps; ++s) {
        advect(ctx, q, u, dt, out, v.opt, &scratch);
        std::swap(q, out);
      }
      const double t = steps * dt;
      const double ex = rms_error<double>(
          ctx, q[0], [&](double x, double y, double) { return fx(x - 0.8 * t, y + 0.6 * t); });
      const double ey = rms_error<double>(
          ctx, q[1], [&](double x, double y, double) { return fy(x - 0.8 * t, y + 0.6 * t); });
      errs.push_back(std::sqrt(0.5 * (ex * ex + ey * ey)));
    }
    check_orders(order_table("2D MAC velocity, " + v.name, ns, errs), v.lo, v.hi);
  }
}

// Inviscid Burgers u_t + u u_x = 0 on [-1, 1], periodic, u0 = -sin(pi x) (the
// Burgers setup of reference/README.md section 2 without viscosity), before the
// shock (t = 0.2 < 1/pi): semi-Lagrangian self-advection of the cell-centred
// velocity converges at first order to the solution u = u0(x - u t).
TEST(AdvectionOrder, BurgersSelfAdvection1D) {
  const double t_end = 0.2;
  auto exact = [t_end](double x) {
    double u = -std::sin(kPi * x);
    for (int it = 0; it < 100; ++it) {  // Newton on F(u) = u + sin(pi (x - u t))
      const double arg = kPi * (x - u * t_end);
      const double f = u + std::sin(arg);
      const double df = 1 - kPi * t_end * std::cos(arg);
      u -= f / df;
    }
    return u;
  };
  std::vector<int> ns{64, 128, 256, 512};
  std::vector<double> errs;
  for (int n : ns) {
    Context ctx = Context::cpu();
    Grid g = Grid::make_1d(n, 2.0 / n, -1.0);
    g.set_boundary(BoundaryKind::Periodic);
    CellVector<double> u(ctx, g), out(ctx, g);
    set_values<double>(ctx, u[0], [](double x, double, double) { return -std::sin(kPi * x); });
    const int steps = n / 4;
    const double dt = t_end / steps;  // CFL 0.4
    for (int s = 0; s < steps; ++s) {
      advect(ctx, u, u, dt, out);
      std::swap(u, out);
    }
    errs.push_back(
        rms_error<double>(ctx, u[0], [&](double x, double, double) { return exact(x); }));
  }
  check_orders(order_table("1D Burgers self-advection, semi-lagrangian", ns, errs), 0.7, 1.3);
}

// The Burgers reference step: x_d = x_i - dt u_i, u_new(x_i) = linear
// interpolation of u at x_d, periodic. Written out by hand here.
TEST(Advection, CellVectorMatchesBurgersFormula) {
  Context ctx = Context::cpu();
  const int n = 128;
  Grid g = Grid::make_1d(n, 2.0 / n, -1.0);
  g.set_boundary(BoundaryKind::Periodic);
  CellVector<double> u(ctx, g), out(ctx, g);
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i)
    v[i] = -std::sin(kPi * (-1 + (i + 0.5) * g.dx)) + 0.3 * std::cos(7.0 * i);
  u[0].assign(ctx, v);
  const double dt = 1.0 / 32;
  advect(ctx, u, u, dt, out);
  const std::vector<double> r = out[0].to_vector(ctx);
  for (int i = 0; i < n; ++i) {
    double p = (i + 0.5) - dt * v[i] / g.dx;  // departure point, cell units
    p -= n * std::floor(p / n);
    const double s = p - 0.5;
    int i0 = int(std::floor(s));
    const double t = s - i0;
    i0 = (i0 + n) % n;
    const int i1 = (i0 + 1) % n;
    EXPECT_NEAR(r[i], v[i0] + t * (v[i1] - v[i0]), 1e-14) << "cell " << i;
  }
}

// ---------------------------------------------------------------------------
// MacCormack's clamp
// ---------------------------------------------------------------------------

TEST(MacCormack, NoNewExtremaInRotationAndShear) {
  Context ctx = Context::cpu();
  for (int flow = 0; flow < 2; ++flow) {
    for (auto bt : {Backtrace::Euler, Backtrace::RK2}) {
      const int n = 40;
      const Grid g = unit_grid(2, n, flow == 0 ? BoundaryKind::Wall : BoundaryKind::Periodic);
      MacVelocity<float> u(ctx, g);
      if (flow == 0) {
        set_rotation(ctx, u);
      } else {
        set_values<float>(ctx, u[0],
                          [](double, double y, double) { return std::sin(2 * kPi * y); });
        set_values<float>(ctx, u[1],
                          [](double x, double, double) { return 0.5 * std::cos(2 * kPi * x); });
      }
      Field<float> q(ctx, g), out(ctx, g), scratch(ctx, g);
      q.assign(ctx, cast_values<float>(rough_values(std::size_t(q.size()), 7)));
      const auto v0 = q.to_vector(ctx);
      const float lo = *std::min_element(v0.begin(), v0.end());
      const float hi = *std::max_element(v0.begin(), v0.end());
      const double dt = 1.3 * g.dx / std::sqrt(2.0) / kPi;  // CFL ~1.3 at the fastest point
      const AdvectionOptions opt = options(AdvectionScheme::MacCormack, bt);
      for (int s = 0; s < 15; ++s) {
        const auto before = q.to_vector(ctx);
        const float blo = *std::min_element(before.begin(), before.end());
        const float bhi = *std::max_element(before.begin(), before.end());
        advect(ctx, q, u, dt, out, opt, &scratch);
        const auto after = out.to_vector(ctx);
        EXPECT_GE(*std::min_element(after.begin(), after.end()), blo) << "step " << s;
        EXPECT_LE(*std::max_element(after.begin(), after.end()), bhi) << "step " << s;
        std::swap(q, out);
      }
      const auto v = q.to_vector(ctx);
      EXPECT_GE(*std::min_element(v.begin(), v.end()), lo);
      EXPECT_LE(*std::max_element(v.begin(), v.end()), hi);
      // The field did move: the clamp is not an identity map.
      double diff = 0;
      for (std::size_t i = 0; i < v.size(); ++i)
        diff += std::fabs(v[i] - v0[i]);
      EXPECT_GT(diff / double(v.size()), 0.05);
    }
  }
}

TEST(MacCormack, NoNewExtremaForMacVelocity3D) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(3, 12, BoundaryKind::Wall);
  MacVelocity<double> u(ctx, g), out(ctx, g);
  for (int a = 0; a < 3; ++a)
    u[a].assign(ctx, rough_values(std::size_t(u[a].size()), 11 + a));  // values in [0, 1)
  // The clamp range is the bracketing 2^D samples also with the cubic, which on its own
  // overshoots: the corrected value stays in range either way.
  for (auto interp : {Interpolation::Linear, Interpolation::Cubic}) {
    AdvectionOptions opt = options(AdvectionScheme::MacCormack, Backtrace::RK2, interp);
    advect(ctx, u, u, 2.0 * g.dx, out, opt);  // self-advection, no scratch given
    for (int a = 0; a < 3; ++a) {
      const auto in = u[a].to_vector(ctx), r = out[a].to_vector(ctx);
      EXPECT_GE(*std::min_element(r.begin(), r.end()), *std::min_element(in.begin(), in.end()));
      EXPECT_LE(*std::max_element(r.begin(), r.end()), *std::max_element(in.begin(), in.end()));
    }
  }
}

// ---------------------------------------------------------------------------
// Exactness
// ---------------------------------------------------------------------------

template <class T>
void expect_zero_velocity_identity(int dim) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(dim, 6, BoundaryKind::Wall);
  MacVelocity<T> u(ctx, g);
  Field<T> q(ctx, g), out(ctx, g);
  q.assign(ctx, cast_values<T>(rough_values(std::size_t(q.size()), 3)));
  MacVelocity<T> m(ctx, g), mout(ctx, g);
  CellVector<T> cv(ctx, g), cu(ctx, g), cout(ctx, g);
  for (int a = 0; a < dim; ++a) {
    m[a].assign(ctx, cast_values<T>(rough_values(std::size_t(m[a].size()), 20 + a)));
    cv[a].assign(ctx, cast_values<T>(rough_values(std::size_t(cv[a].size()), 30 + a)));
  }
  for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack})
    for (auto bt : {Backtrace::Euler, Backtrace::RK2}) {
      AdvectionOptions opt = options(scheme, bt);
      opt.boundary = ScalarBoundary::fixed(5.0);
      advect(ctx, q, u, 0.7, out, opt);
      EXPECT_EQ(out.to_vector(ctx), q.to_vector(ctx));
      advect(ctx, m, u, 0.7, mout, opt);
      for (int a = 0; a < dim; ++a)
        EXPECT_EQ(mout[a].to_vector(ctx), m[a].to_vector(ctx));
      advect(ctx, cv, cu, 0.7, cout, opt);
      for (int a = 0; a < dim; ++a)
        EXPECT_EQ(cout[a].to_vector(ctx), cv[a].to_vector(ctx));
    }
}

TEST(Advection, ZeroVelocityIsIdentity) {
  for (int dim = 1; dim <= 3; ++dim) {
    expect_zero_velocity_identity<float>(dim);
    expect_zero_velocity_identity<double>(dim);
  }
}

template <class T>
void expect_integer_shift(int dim) {
  Context ctx = Context::cpu();
  const int n = 8;
  const Grid g = unit_grid(dim, n, BoundaryKind::Periodic);
  const int shift[3] = {2, -1, 3};  // cells moved per step along each axis
  const double dt = 2 * g.dx;       // |u| * dt / dx = |shift|
  MacVelocity<T> u(ctx, g);
  for (int a = 0; a < dim; ++a)
    fill(ctx, u[a], T(shift[a] / 2.0));
  Field<T> q(ctx, g), out(ctx, g);
  const auto v = cast_values<T>(rough_values(std::size_t(q.size()), 5));
  q.assign(ctx, v);
  auto wrap = [n](int i) { return ((i % n) + n) % n; };
  for (auto in : {Interpolation::Linear, Interpolation::Cubic})
    for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack})
      for (auto bt : {Backtrace::Euler, Backtrace::RK2}) {
        advect(ctx, q, u, dt, out, options(scheme, bt, in));
        const auto r = out.to_vector(ctx);
        const auto e = g.n;
        for (int k = 0; k < e[2]; ++k)
          for (int j = 0; j < e[1]; ++j)
            for (int i = 0; i < e[0]; ++i) {
              const int si = wrap(i - shift[0]);
              const int sj = dim > 1 ? wrap(j - shift[1]) : 0;
              const int sk = dim > 2 ? wrap(k - shift[2]) : 0;
              ASSERT_EQ(r[(std::size_t(k) * e[1] + j) * e[0] + i],
                        v[(std::size_t(sk) * e[1] + sj) * e[0] + si])
                  << to_string(scheme) << " " << to_string(bt) << " " << to_string(in) << " at "
                  << i << "," << j << "," << k;
            }
      }
  // The same shift of a MAC field (faces move with the flow too).
  MacVelocity<T> m(ctx, g), mout(ctx, g);
  for (int a = 0; a < dim; ++a)
    m[a].assign(ctx, cast_values<T>(rough_values(std::size_t(m[a].size()), 40 + a)));
  for (auto in : {Interpolation::Linear, Interpolation::Cubic}) {
    advect(ctx, m, u, dt, mout, options(AdvectionScheme::MacCormack, Backtrace::RK2, in));
    for (int a = 0; a < dim; ++a) {
      const auto mv = m[a].to_vector(ctx), r = mout[a].to_vector(ctx);
      const auto e = g.n;  // periodic: face extents equal cell extents
      for (int k = 0; k < e[2]; ++k)
        for (int j = 0; j < e[1]; ++j)
          for (int i = 0; i < e[0]; ++i) {
            const int si = wrap(i - shift[0]);
            const int sj = dim > 1 ? wrap(j - shift[1]) : 0;
            const int sk = dim > 2 ? wrap(k - shift[2]) : 0;
            ASSERT_EQ(r[(std::size_t(k) * e[1] + j) * e[0] + i],
                      mv[(std::size_t(sk) * e[1] + sj) * e[0] + si]);
          }
    }
  }
}

TEST(Advection, IntegerShiftIsExactOnPeriodicGrids) {
  for (int dim = 1; dim <= 3; ++dim) {
    expect_integer_shift<float>(dim);
    expect_integer_shift<double>(dim);
  }
}

TEST(Advection, UniformFieldsStayUniform) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(2, 24, BoundaryKind::Wall);
  MacVelocity<float> u(ctx, g);
  set_rotation(ctx, u);
  const float c = 0.3f;
  Field<float> q(ctx, g), out(ctx, g);
  fill(ctx, q, c);
  MacVelocity<float> m(ctx, g), mout(ctx, g);
  fill(ctx, m, c);
  CellVector<float> cv(ctx, g), cout(ctx, g);
  fill(ctx, cv[0], c);
  fill(ctx, cv[1], -2 * c);
  for (auto in : {Interpolation::Linear, Interpolation::Cubic})
    for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack})
      for (auto bt : {Backtrace::Euler, Backtrace::RK2})
        for (int fixed = 0; fixed < 2; ++fixed) {
          // (cubic: the difference form keeps uniform data exactly uniform, and so do
          // its second ghost layer and its extrapolated faces)
          AdvectionOptions opt = options(scheme, bt, in);
          // Zero gradient, or a fixed value equal to the field's: nothing enters.
          if (fixed) opt.boundary = ScalarBoundary::fixed(c);
          advect(ctx, q, u, 0.05, out, opt);
          for (float x : out.to_vector(ctx))
            ASSERT_EQ(x, c);
          advect(ctx, m, u, 0.05, mout, opt);
          for (int a = 0; a < 2; ++a)
            for (float x : mout[a].to_vector(ctx))
              ASSERT_EQ(x, c);
          if (!fixed) {
            advect(ctx, cv, cv, 0.05, cout, opt);  // uniform self-advection
            for (float x : cout[0].to_vector(ctx))
              ASSERT_EQ(x, c);
            for (float x : cout[1].to_vector(ctx))
              ASSERT_EQ(x, -2 * c);
          }
        }
}

TEST(Advection, FixedBoundaryValueEntersFromTheSide) {
  Context ctx = Context::cpu();
  const int n = 32;
  const Grid g = unit_grid(1, n, BoundaryKind::Wall);
  MacVelocity<double> u(ctx, g);
  fill(ctx, u[0], 1.0);  // flow to +x: in through the low side
  for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    AdvectionOptions opt = options(scheme);
    opt.boundary.kind[0] = {ScalarBoundaryKind::Fixed, ScalarBoundaryKind::Fixed};
    opt.boundary.value[0] = {1.0, -7.0};  // the outflow side's value must not matter
    Field<double> q(ctx, g), out(ctx, g);
    const double dt = 0.5 * g.dx;
    advect(ctx, q, u, dt, out, opt);
    const auto r1 = out.to_vector(ctx);
    if (scheme == AdvectionScheme::SemiLagrangian) {
      EXPECT_DOUBLE_EQ(r1[0], 1.0);  // departure point on the side: the value b
      for (int i = 1; i < n; ++i)
        EXPECT_EQ(r1[i], 0.0);
    }
    for (int s = 0; s < 40; ++s) {  // the front moves 20 cells
      advect(ctx, q, u, dt, out, opt);
      std::swap(q, out);
    }
    const auto r = q.to_vector(ctx);
    for (int i = 0; i < 10; ++i)
      EXPECT_NEAR(r[i], 1.0, 1e-2) << to_string(scheme) << " cell " << i;
    for (int i = 28; i < n; ++i)
      EXPECT_NEAR(r[i], 0.0, 1e-2) << to_string(scheme) << " cell " << i;
  }
  // 2D: a fixed value on the high y side enters with a downward flow.
  const Grid g2 = unit_grid(2, 16, BoundaryKind::Wall);
  MacVelocity<double> w(ctx, g2);
  fill(ctx, w[1], -1.0);
  AdvectionOptions opt;
  opt.boundary.kind[1][1] = ScalarBoundaryKind::Fixed;
  opt.boundary.value[1][1] = 2.0;
  Field<double> q(ctx, g2), out(ctx, g2);
  advect(ctx, q, w, 0.5 * g2.dx, out, opt);
  const auto r = out.to_vector(ctx);
  for (int i = 0; i < 16; ++i) {
    EXPECT_DOUBLE_EQ(r[15 * 16 + i], 2.0);
    EXPECT_EQ(r[14 * 16 + i], 0.0);
  }
}

// ---------------------------------------------------------------------------
// Backtraces
// ---------------------------------------------------------------------------

TEST(Advection, RK2MatchesEulerInUniformVelocity) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(3, 10, BoundaryKind::Wall);
  MacVelocity<double> u(ctx, g);
  fill(ctx, u[0], 0.37);
  fill(ctx, u[1], -0.21);
  fill(ctx, u[2], 0.55);
  Field<double> q(ctx, g), a(ctx, g), b(ctx, g);
  q.assign(ctx, rough_values(std::size_t(q.size()), 9));
  for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    advect(ctx, q, u, 0.13, a, options(scheme, Backtrace::Euler));
    advect(ctx, q, u, 0.13, b, options(scheme, Backtrace::RK2));
    EXPECT_EQ(a.to_vector(ctx), b.to_vector(ctx)) << to_string(scheme);
  }
}

TEST(Advection, RK2MoreAccurateThanEulerInRotation) {
  // A Gaussian blob a quarter of a turn around the centre of a closed box.
  Context ctx = Context::cpu();
  const int n = 64;
  const Grid g = unit_grid(2, n, BoundaryKind::Wall);
  MacVelocity<double> u(ctx, g);
  set_rotation(ctx, u);
  auto blob = [](double x, double y) {
    const double dx = x - 0.75, dy = y - 0.5;
    return std::exp(-(dx * dx + dy * dy) / (2 * 0.06 * 0.06));
  };
  // After a quarter turn (counter-clockwise) the blob sits at (0.5, 0.75).
  auto rotated = [&](double x, double y, double) { return blob(0.5 + (y - 0.5), 0.5 - (x - 0.5)); };
  double err[2];
  for (int b = 0; b < 2; ++b) {
    Field<double> q(ctx, g), out(ctx, g), scratch(ctx, g);
    set_values<double>(ctx, q, [&](double x, double y, double) { return blob(x, y); });
    const int steps = 12;
    const double dt = 0.25 / steps;
    const AdvectionOptions opt =
        options(AdvectionScheme::MacCormack, b ? Backtrace::RK2 : Backtrace::Euler);
    for (int s = 0; s < steps; ++s) {
      advect(ctx, q, u, dt, out, opt, &scratch);
      std::swap(q, out);
    }
    err[b] = rms_error<double>(ctx, q, rotated);
  }
  std::printf("  quarter turn, 64^2, 12 steps: rms error euler %.4e, rk2 %.4e\n", err[0], err[1]);
  EXPECT_LT(err[1], 0.5 * err[0]);
}

// ---------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------

TEST(Advection, RejectsBadArguments) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(2, 8, BoundaryKind::Wall);
  const Grid h = unit_grid(2, 9, BoundaryKind::Wall);
  MacVelocity<float> u(ctx, g), uh(ctx, h), m(ctx, g), mout(ctx, g);
  Field<float> q(ctx, g), out(ctx, g), qh(ctx, h), face(ctx, g, Location::FaceX);
  // Shapes.
  EXPECT_THROW(advect(ctx, qh, u, 0.1, out), ShapeMismatch);
  EXPECT_THROW(advect(ctx, q, uh, 0.1, out), ShapeMismatch);
  EXPECT_THROW(advect(ctx, q, u, 0.1, qh), ShapeMismatch);
  EXPECT_THROW(advect(ctx, face, u, 0.1, out), ShapeMismatch);
  EXPECT_THROW(advect(ctx, m, uh, 0.1, mout), ShapeMismatch);
  Field<float> bad_scratch(ctx, h);
  EXPECT_THROW(advect(ctx, q, u, 0.1, out, options(AdvectionScheme::MacCormack), &bad_scratch),
               ShapeMismatch);
  CellVector<float> cv(ctx, g), cvh(ctx, h), cvout(ctx, g);
  EXPECT_THROW(advect(ctx, cv, cvh, 0.1, cvout), ShapeMismatch);
  Field<float> empty;
  EXPECT_THROW(advect(ctx, empty, u, 0.1, out), ShapeMismatch);
  // Time step.
  for (double dt : {0.0, -0.1, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(advect(ctx, q, u, dt, out), InvalidArgument) << dt;
    EXPECT_THROW(advect(ctx, m, u, dt, mout), InvalidArgument) << dt;
    EXPECT_THROW(advect(ctx, cv, cv, dt, cvout), InvalidArgument) << dt;
  }
  // Aliasing.
  try {
    advect(ctx, q, u, 0.1, q);
    FAIL() << "in-place advection accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("out"), std::string::npos) << e.what();
  }
  Field<float> q_alias = q.alias();
  EXPECT_THROW(advect(ctx, q, u, 0.1, q_alias), InvalidArgument);
  EXPECT_THROW(advect(ctx, m, m, 0.1, m), InvalidArgument);
  EXPECT_THROW(advect(ctx, m, u, 0.1, u), InvalidArgument);
  EXPECT_THROW(advect(ctx, cv, cv, 0.1, cv), InvalidArgument);
  EXPECT_THROW(advect(ctx, q, u, 0.1, out, options(AdvectionScheme::MacCormack), &out),
               InvalidArgument);
  EXPECT_THROW(advect(ctx, q, u, 0.1, out, options(AdvectionScheme::MacCormack), &q),
               InvalidArgument);
  EXPECT_THROW(advect(ctx, m, m, 0.1, mout, options(AdvectionScheme::MacCormack), &mout),
               InvalidArgument);
  // A scratch is ignored by semi-Lagrangian advection, so aliasing there is harmless.
  EXPECT_NO_THROW(advect(ctx, q, u, 0.1, out, options(AdvectionScheme::SemiLagrangian), &q));
  // Options.
  AdvectionOptions bad;
  bad.scheme = static_cast<AdvectionScheme>(7);
  EXPECT_THROW(advect(ctx, q, u, 0.1, out, bad), InvalidArgument);
  bad = AdvectionOptions{};
  bad.boundary = ScalarBoundary::fixed(std::nan(""));
  EXPECT_THROW(advect(ctx, q, u, 0.1, out, bad), InvalidArgument);
  EXPECT_EQ(parse_backtrace("rk2"), Backtrace::RK2);
  EXPECT_EQ(parse_advection_scheme("maccormack"), AdvectionScheme::MacCormack);
  EXPECT_THROW(parse_advection_scheme("weno"), InvalidArgument);
}

// A non-finite velocity shows in the result instead of being silently clamped away.
TEST(Advection, NaNVelocityPropagates) {
  Context ctx = Context::cpu();
  const Grid g = unit_grid(2, 8, BoundaryKind::Periodic);
  MacVelocity<double> u(ctx, g);
  std::vector<double> v(std::size_t(u[0].size()), 0.1);
  v[3 * 8 + 3] = std::nan("");
  u[0].assign(ctx, v);
  Field<double> q(ctx, g), out(ctx, g);
  fill(ctx, q, 1.0);
  for (auto in : {Interpolation::Linear, Interpolation::Cubic}) {
    advect(ctx, q, u, 0.1, out, options(AdvectionScheme::SemiLagrangian, Backtrace::Euler, in));
    EXPECT_FALSE(all_finite(ctx, out)) << to_string(in);
  }
}

// ---------------------------------------------------------------------------
// GPU against CPU (float)
// ---------------------------------------------------------------------------

namespace {

template <class Fn>
void on_both(Fn fn) {
  fn(Context::cpu(), 0);
  fn(Context::create(Device::Cuda), 1);
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0, d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, double(std::fabs(a[i])));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
  }
  return d / std::max(scale, 1e-30);
}

}  // namespace

TEST(Advection, GpuAdvectionMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (auto in : dfluid::testing::advection::gpu_interpolations())
    for (int dim = 1; dim <= 3; ++dim)
      for (auto scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack})
        for (auto bt : {Backtrace::Euler, Backtrace::RK2})
          for (auto bk : {BoundaryKind::Wall, BoundaryKind::Periodic}) {
            const int n = dim == 3 ? 20 : 48;
            const Grid g = unit_grid(dim, n, bk);
            AdvectionOptions opt = options(scheme, bt, in);
            opt.boundary.kind[0][0] = ScalarBoundaryKind::Fixed;
            opt.boundary.value[0][0] = 0.25;
            std::vector<float> res[2][3];  // [device][scalar, mac x, cellvector x]
            on_both([&](const Context& ctx, int d) {
              MacVelocity<float> u(ctx, g), uout(ctx, g), uscratch(ctx, g);
              CellVector<float> cv(ctx, g), cvout(ctx, g);
              for (int a = 0; a < dim; ++a) {
                auto r = rough_values(std::size_t(u[a].size()), 50 + a);
                for (auto& x : r)
                  x = 2 * x - 1;
                u[a].assign(ctx, cast_values<float>(r));
                cv[a].assign(ctx,
                             cast_values<float>(rough_values(std::size_t(cv[a].size()), 60 + a)));
              }
              Field<float> q(ctx, g), out(ctx, g), scratch(ctx, g);
              q.assign(ctx, cast_values<float>(rough_values(std::size_t(q.size()), 70)));
              const double dt = 1.7 * g.dx;
              for (int s = 0; s < 3; ++s) {
                advect(ctx, q, u, dt, out, opt, &scratch);
                std::swap(q, out);
              }
              advect(ctx, u, u, dt, uout, opt, &uscratch);
              advect(ctx, cv, cv, dt, cvout, opt);
              ctx.synchronize();
              res[d][0] = q.to_vector(ctx);
              res[d][1] = uout[0].to_vector(ctx);
              res[d][2] = cvout[0].to_vector(ctx);
            });
            for (int f = 0; f < 3; ++f)
              EXPECT_LE(max_rel_diff(res[0][f], res[1][f]), 1e-5)
                  << dim << "D " << to_string(scheme) << " " << to_string(bt) << " "
                  << to_string(bk) << " " << to_string(in) << " field " << f;
          }
}
