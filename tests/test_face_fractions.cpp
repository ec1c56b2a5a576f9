// Face-fraction obstacles (dfluid/face_fractions.hpp): the open fractions of a known surface,
// the weighted projection (divergence, transpose of its adjoint, the multigrid's symmetry),
// the staircase as 0/1 fractions, a body force at rest (hydrostatic pressure), and the
// projection of a rotation inside a circle, which the staircase disturbs at every resolution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "adjoint_test_util.hpp"
#include "face_fraction_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/face_fractions.hpp"

using namespace dfluid;
using dfluid::testing::fill_random;
using dfluid::testing::node_values;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Area of the part of the square [0, 1]^2 where a + b s + c t > 0 (Sutherland-Hodgman
/// clipping of the square by the half-plane, then the shoelace formula).
double clipped_square_area(double a, double b, double c) {
  const double sq[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
  std::vector<std::array<double, 2>> poly;
  for (int e = 0; e < 4; ++e) {
    const double* p = sq[e];
    const double* q = sq[(e + 1) % 4];
    const double fp = a + b * p[0] + c * p[1], fq = a + b * q[0] + c * q[1];
    if (fp > 0) poly.push_back({p[0], p[1]});
    if ((fp > 0) != (fq > 0)) {
      const double t = fp / (fp - fq);
      poly.push_back({p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])});
    }
  }
  double s = 0;
  for (std::size_t i = 0; i < poly.size(); ++i) {
    const auto& p = poly[i];
    const auto& q = poly[(i + 1) % poly.size()];
    s += p[0] * q[1] - q[0] * p[1];
  }
  return 0.5 * std::abs(s);
}

double max_abs(const Context& ctx, const Field<double>& f) {
  double m = 0;
  for (double v : f.to_vector(ctx))
    m = std::max(m, std::abs(v));
  return m;
}

/// A closed 2D box holding a circle and a tilted ramp along its bottom (solid where phi < 0).
std::vector<double> circle_and_ramp(const Grid& g) {
  const double L = g.n[0] * g.dx;
  return node_values(g, [&](double x, double y, double) {
    const double circle = std::hypot(x - 0.45 * L, y - 0.55 * L) - 0.21 * L;
    const double ramp = (y - 0.12 * L - 0.17 * x) / std::hypot(1.0, 0.17);
    return std::min(circle, ramp);
  });
}

SolverOptions tight() {
  SolverOptions o;
  o.rel_tol = 1e-14;
  o.max_iterations = 2000;
  return o;
}

}  // namespace

// Along a flat surface the fractions are exact: the cut segment in 2D, the clipped square
// in 3D (phi linear on the face, so the centre's mean is its value there).
TEST(FaceFractions, ExactForAFlatSurface) {
  Context ctx = Context::cpu();
  {
    Grid g = Grid::make_2d(7, 5, 0.25, {0.1, -0.2});
    const double a = 0.31, b = 0.83, d = 0.45;  // phi = a x + b y - d
    MacVelocity<double> f = face_open_fractions<double>(
        ctx, g, node_values(g, [&](double x, double y, double) { return a * x + b * y - d; }));
    std::vector<double> fx = f[0].to_vector(ctx), fy = f[1].to_vector(ctx);
    int cut = 0;
    for (int j = 0; j < 5; ++j)
      for (int i = 0; i <= 7; ++i) {  // face normal to x at x_i, y in [y_j, y_j + dx]
        const double x = 0.1 + i * 0.25, y0 = -0.2 + j * 0.25;
        const double ys = (d - a * x) / b;  // phi > 0 above ys
        const double expect = std::clamp((y0 + 0.25 - ys) / 0.25, 0.0, 1.0);
        EXPECT_NEAR(fx[std::size_t(i + 8 * j)], expect, 1e-12) << i << " " << j;
        cut += expect > 0 && expect < 1;
      }
    for (int j = 0; j <= 5; ++j)
      for (int i = 0; i < 7; ++i) {
        const double y = -0.2 + j * 0.25, x0 = 0.1 + i * 0.25;
        const double xs = (d - b * y) / a;
        const double expect = std::clamp((x0 + 0.25 - xs) / 0.25, 0.0, 1.0);
        EXPECT_NEAR(fy[std::size_t(i + 7 * j)], expect, 1e-12) << i << " " << j;
      }
    EXPECT_GE(cut, 4);
  }
  {
    Grid g = Grid::make_3d(4, 3, 5, 0.5);
    const double c[3] = {0.37, -0.52, 0.77}, d = 0.3;
    MacVelocity<double> f =
        face_open_fractions<double>(ctx, g, node_values(g, [&](double x, double y, double z) {
                                      return c[0] * x + c[1] * y + c[2] * z - d;
                                    }));
    int cut = 0;
    for (int a = 0; a < 3; ++a) {
      const std::array<int, 3> e = f[a].extents();
      std::vector<double> v = f[a].to_vector(ctx);
      const int b = (a + 1) % 3, cc = (a + 2) % 3;
      for (int k = 0; k < e[2]; ++k)
        for (int j = 0; j < e[1]; ++j)
          for (int i = 0; i < e[0]; ++i) {
            const int idx[3] = {i, j, k};
            double phi0 = -d;  // phi at the face's low corner
            for (int q = 0; q < 3; ++q)
              phi0 += c[q] * idx[q] * 0.5;
            const double expect = clipped_square_area(phi0, c[b] * 0.5, c[cc] * 0.5);
            EXPECT_NEAR(v[std::size_t(i + e[0] * (j + e[1] * k))], expect, 1e-12);
            cut += expect > 1e-9 && expect < 1 - 1e-9;
          }
    }
    EXPECT_GE(cut, 10);
  }
}

// Against the exact length of each face's segment outside a circle: the linear interpolant
// of the distance places each cut to O(dx^2 / R), so the total misplaced length (sum over
// faces of |error| dx, over the O(R / dx) cut faces) is first order: below 1% of the
// perimeter at D/h = 12 and shrinking with h.
TEST(FaceFractions, CircleFractionsConvergeToTheExactCut) {
  Context ctx = Context::cpu();
  const double R = 0.3, cx = 0.5, cy = 0.47;
  double err[2];
  for (int r = 0; r < 2; ++r) {
    const int n = 20 << r;
    Grid g = Grid::make_2d(n, n, 1.0 / n);
    MacVelocity<double> f =
        face_open_fractions<double>(ctx, g, circle_node_distance(g, {cx, cy, 0}, R));
    err[r] = 0;
    int cut = 0;
    for (int a = 0; a < 2; ++a) {
      const std::array<int, 3> e = f[a].extents();
      std::vector<double> v = f[a].to_vector(ctx);
      for (int j = 0; j < e[1]; ++j)
        for (int i = 0; i < e[0]; ++i) {
          // The face's segment: fixed coordinate q along axis a, s0..s0+dx along the other.
          const double q = (a == 0 ? i : j) * g.dx - (a == 0 ? cx : cy);
          const double s0 = (a == 0 ? j : i) * g.dx - (a == 0 ? cy : cx);
          const double h2 = R * R - q * q;  // the circle spans |s| < sqrt(h2) on this line
          double inside = 0;
          if (h2 > 0) {
            const double hs = std::sqrt(h2);
            inside = std::max(0.0, std::min(s0 + g.dx, hs) - std::max(s0, -hs));
          }
          const double exact = 1 - inside / g.dx;
          err[r] += std::abs(v[std::size_t(i + e[0] * j)] - exact) * g.dx;
          cut += exact > 0 && exact < 1;
        }
    }
    EXPECT_GT(cut, 8 * n / 4);
  }
  std::printf("[ circle   ] misplaced length n 20 %.2e, n 40 %.2e\n", err[0], err[1]);
  EXPECT_LE(err[0], 0.01 * 2 * kPi * R);
  EXPECT_LE(err[1], 0.7 * err[0]);
  EXPECT_THROW(circle_node_distance(Grid::make_2d(4, 4, 1.0), {0, 0, 0}, -1), InvalidArgument);
  EXPECT_THROW(face_open_fractions<double>(ctx, Grid::make_2d(4, 4, 1.0), {1.0, 2.0}),
               InvalidArgument);
}

// 0/1 fractions from a mask are the staircase: the same projection and pressure, bitwise.
TEST(FaceFractions, MaskFractionsAreTheStaircase) {
  Context ctx = Context::cpu();
  for (int dim : {2, 3}) {
    Grid g = dim == 2 ? Grid::make_2d(14, 12, 0.1) : Grid::make_3d(8, 7, 6, 0.1);
    g.set_boundary(0, BoundaryKind::Open, BoundaryKind::Wall);
    ObstacleMask m(ctx, g, Location::Cell);
    std::vector<std::uint8_t> v(std::size_t(g.cells()), 0);
    for (std::size_t c = 0; c < v.size(); ++c)
      v[c] = (c * 7919) % 5 == 0;
    m.assign(ctx, v);
    PressureSolver<double> stair(ctx, g, &m);
    PressureSolver<double> frac(ctx, g, face_open_fractions_from_mask<double>(ctx, m));
    EXPECT_TRUE(frac.face_fractions());
    EXPECT_FALSE(stair.face_fractions());
    MacVelocity<double> u1(ctx, g), u2(ctx, g);
    fill_random(ctx, u1, 3);
    copy(ctx, u1, u2);
    Field<double> p1(ctx, g), p2(ctx, g);
    stair.project(ctx, u1, p1, 0.5, tight());
    frac.project(ctx, u2, p2, 0.5, tight());
    for (int a = 0; a < dim; ++a)
      EXPECT_EQ(u1[a].to_vector(ctx), u2[a].to_vector(ctx)) << dim << "D axis " << a;
    EXPECT_EQ(p1.to_vector(ctx), p2.to_vector(ctx));
  }
}

// After the projection the weighted divergence D W u is 0 (to the solve's tolerance) in
// every cell, cut cells included, for boxes with walls, an open side and a periodic axis.
TEST(FaceFractionsProjection, WeightedDivergenceVanishes) {
  Context ctx = Context::cpu();
  for (int dim : {2, 3}) {
    Grid g = dim == 2 ? Grid::make_2d(24, 20, 1.0 / 24) : Grid::make_3d(12, 10, 11, 1.0 / 12);
    g.set_boundary(0, BoundaryKind::Open, BoundaryKind::Wall);
    if (dim == 3) g.set_boundary(2, BoundaryKind::Periodic, BoundaryKind::Periodic);
    PressureSolver<double> solver(
        ctx, g,
        face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.5, 0.4, 0.45}, 0.27)));
    MacVelocity<double> u(ctx, g);
    fill_random(ctx, u, 9);
    Field<double> div(ctx, g), p(ctx, g);
    solver.divergence_weighted(ctx, u, div);
    const double before = max_abs(ctx, div);
    SolverOptions o = tight();
    o.rel_tol = 1e-12;
    EXPECT_TRUE(solver.project(ctx, u, p, 1.0, o).converged);
    solver.divergence_weighted(ctx, u, div);
    EXPECT_GT(before, 1.0);
    EXPECT_LE(max_abs(ctx, div), 1e-10 * before) << dim << "D";
  }
}

// <P x, y> = <x, P^T y> to 1e-12 for the weighted projection (not symmetric: P^T's solve
// has the unweighted right-hand side and the weighted gradient), 2D and 3D, closed (floating
// region) and open boxes.
TEST(FaceFractionsProjection, AdjointTransposeTest) {
  Context ctx = Context::cpu();
  for (int dim : {2, 3})
    for (bool open : {false, true}) {
      SCOPED_TRACE(std::to_string(dim) + "D " + (open ? "open" : "closed"));
      Grid g = dim == 2 ? Grid::make_2d(16, 14, 1.0 / 16) : Grid::make_3d(9, 8, 8, 1.0 / 9);
      if (open) g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
      PressureSolver<double> solver(
          ctx, g,
          face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.47, 0.5, 0.5}, 0.3)));
      Field<double> p(ctx, g);
      dfluid::testing::expect_mac_transpose(
          ctx, g,
          [&](const MacVelocity<double>& x, MacVelocity<double>& px) {
            copy(ctx, x, px);
            solver.project(ctx, px, p, 1.0, tight());
          },
          [&](const MacVelocity<double>& y, MacVelocity<double>& pty) {
            copy(ctx, y, pty);
            EXPECT_TRUE(solver.project_adjoint(ctx, pty, tight()).converged);
          },
          1e-12);
    }
}

// The multigrid preconditioner on coarsened fractional weights stays symmetric and positive
// (what PCG needs), and beats Jacobi.
TEST(FaceFractionsProjection, MultigridSymmetricPositive) {
  Context ctx = Context::cpu();
  for (int dim : {2, 3}) {
    Grid g = dim == 2 ? Grid::make_2d(40, 33, 1.0 / 40) : Grid::make_3d(12, 11, 10, 1.0 / 12);
    PressureSolver<double> solver(
        ctx, g,
        face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.5, 0.45, 0.4}, 0.23)));
    EXPECT_GE(solver.multigrid_levels(), 3);
    Field<double> r1(ctx, g), r2(ctx, g), z1(ctx, g), z2(ctx, g);
    fill_random(ctx, r1, 1);
    fill_random(ctx, r2, 2);
    solver.precondition(ctx, r1, z1);
    solver.precondition(ctx, r2, z2);
    const double a = dot(ctx, z1, r2), b = dot(ctx, r1, z2);
    EXPECT_LE(std::abs(a - b), 1e-12 * (std::abs(a) + std::abs(b))) << dim << "D";
    EXPECT_GT(dot(ctx, z1, r1), 0.0);
  }
  Grid g = Grid::make_2d(64, 64, 1.0 / 64);
  MacVelocity<double> w =
      face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.5, 0.5, 0}, 0.2));
  int iters[2];
  for (int pc = 0; pc < 2; ++pc) {
    PressureSolver<double> solver(ctx, g, w);
    MacVelocity<double> u(ctx, g);
    fill_random(ctx, u, 4);
    Field<double> p(ctx, g);
    SolverOptions o;
    o.rel_tol = 1e-8;
    o.max_iterations = 3000;
    o.preconditioner = pc == 0 ? Preconditioner::Multigrid : Preconditioner::Jacobi;
    iters[pc] = solver.project(ctx, u, p, 1.0, o).iterations;
  }
  EXPECT_LE(3 * iters[0], iters[1]) << "MGPCG " << iters[0] << " Jacobi " << iters[1];
}

// A fluid at rest under a uniform body force f in a closed box holding a circle and a tilted
// ramp: one step's velocity dt f is a pure gradient for any weights, so the projection leaves
// the fluid at rest and the pressure is hydrostatic, p = f . x + const, in every cell with
// an open face (cut cells included).
TEST(FaceFractionsProjection, BodyForceAtRestIsHydrostatic) {
  Context ctx = Context::cpu();
  const int n = 32;
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  MacVelocity<double> w = face_open_fractions<double>(ctx, g, circle_and_ramp(g));
  PressureSolver<double> solver(ctx, g, w);
  EXPECT_EQ(solver.floating_regions(), 1);
  const double f[2] = {0.4, -1.3}, dt = 0.05;
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < 2; ++a)
    fill(ctx, u[a], dt * f[a]);
  Field<double> p(ctx, g);
  EXPECT_TRUE(solver.project(ctx, u, p, dt, tight()).converged);
  for (int a = 0; a < 2; ++a)
    EXPECT_LE(max_abs(ctx, u[a]), 1e-12) << a;
  // p - f . x is one constant over the cells with an open face.
  std::vector<double> pv = p.to_vector(ctx), wx = w[0].to_vector(ctx), wy = w[1].to_vector(ctx);
  double lo = 1e300, hi = -1e300;
  int live = 0, cut = 0;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      const double open = wx[std::size_t(i + (n + 1) * j)] + wx[std::size_t(i + 1 + (n + 1) * j)] +
                          wy[std::size_t(i + n * j)] + wy[std::size_t(i + n * (j + 1))];
      if (open == 0) continue;
      ++live;
      cut += open < 4;
      const double r = pv[std::size_t(i + n * j)] - (f[0] * (i + 0.5) + f[1] * (j + 0.5)) * g.dx;
      lo = std::min(lo, r);
      hi = std::max(hi, r);
    }
  EXPECT_GT(cut, 40);
  EXPECT_GT(live, n * n / 2);
  EXPECT_LE(hi - lo, 1e-11);
}

// A rigid rotation inside a circular container (fluid inside the circle) is divergence-free
// and tangent to the wall, so the exact projection leaves it unchanged. With face fractions
// the change converges to 0 (here about second order in the mean, first in the max); the
// staircase closes the faces along its steps, and its change stays near the wall speed at
// every resolution.
TEST(FaceFractionsProjection, RotationInACircleConverges) {
  Context ctx = Context::cpu();
  double mean_change[2][2], max_change[2][2];  // [fractions?][resolution]
  const int ns[2] = {24, 48};
  for (int r = 0; r < 2; ++r) {
    const int n = ns[r];
    Grid g = Grid::make_2d(n, n, 1.0 / n);
    std::vector<double> phi = circle_node_distance(g, {0.5, 0.5, 0}, 0.4);
    for (double& v : phi)
      v = -v;  // fluid inside
    MacVelocity<double> w = face_open_fractions<double>(ctx, g, phi);
    ObstacleMask m(ctx, g, Location::Cell);
    std::vector<std::uint8_t> mv(std::size_t(g.cells()));
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        mv[std::size_t(i + n * j)] = std::hypot((i + 0.5) / n - 0.5, (j + 0.5) / n - 0.5) > 0.4;
    m.assign(ctx, mv);
    for (int frac = 0; frac < 2; ++frac) {
      PressureSolver<double> solver =
          frac ? PressureSolver<double>(ctx, g, w) : PressureSolver<double>(ctx, g, &m);
      MacVelocity<double> u0 = rigid_rotation_velocity<double>(ctx, g, {0.5, 0.5, 0}, 1.0);
      MacVelocity<double> u(ctx, g);
      copy(ctx, u0, u);
      Field<double> p(ctx, g);
      solver.project(ctx, u, p, 1.0, tight());
      // Over the faces fully inside the fluid (both methods' open faces), relative to the
      // wall speed 0.4.
      double sum = 0, mx = 0;
      int count = 0;
      for (int a = 0; a < 2; ++a) {
        std::vector<double> a0 = u0[a].to_vector(ctx), a1 = u[a].to_vector(ctx),
                            wa = w[a].to_vector(ctx);
        std::vector<double> stair_open(a0.size(), 1.0);
        MacVelocity<double> s = face_open_fractions_from_mask<double>(ctx, m);
        std::vector<double> sa = s[a].to_vector(ctx);
        for (std::size_t q = 0; q < a0.size(); ++q) {
          if (wa[q] < 1 || sa[q] < 1) continue;
          const double d = std::abs(a1[q] - a0[q]) / 0.4;
          sum += d;
          mx = std::max(mx, d);
          ++count;
        }
      }
      mean_change[frac][r] = sum / count;
      max_change[frac][r] = mx;
      std::printf("[ rotation ] n %2d %-10s mean |du|/U %.3e  max %.3e\n", n,
                  frac ? "fractions" : "staircase", mean_change[frac][r], max_change[frac][r]);
    }
  }
  EXPECT_LE(mean_change[1][1], 0.35 * mean_change[1][0]);  // ~ second order
  EXPECT_LE(max_change[1][1], 0.7 * max_change[1][0]);
  EXPECT_LE(mean_change[1][1], 0.1 * mean_change[0][1]);
  EXPECT_GE(max_change[0][1], 0.5 * max_change[0][0]);  // the staircase does not converge
}

// A moving solid: a body carried with a uniform flow (U = u = V, periodic along the flow,
// walls across it) leaves the flow on every open face alone, D W V + D (1 - W) V = D V = 0,
// where the solid at rest deflects it; and the map (u, U) -> u_new has its exact transpose (1e-12).
TEST(FaceFractionsProjection, MovingSolid) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(24, 16, 1.0 / 16);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const MacVelocity<double> w =
      face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.71, 0.52, 0}, 0.2));
  PressureSolver<double> solver(ctx, g, w);
  MacVelocity<double> v(ctx, g), u(ctx, g), rest(ctx, g);
  fill(ctx, v[0], 0.7);
  fill(ctx, v[1], 0.0);
  copy(ctx, v, u);
  copy(ctx, v, rest);
  Field<double> p(ctx, g);
  EXPECT_TRUE(solver.project_moving_solid(ctx, u, v, p, 0.1, tight()).converged);
  solver.project(ctx, rest, p, 0.1, tight());
  double moved = 0, still = 0;
  for (int a = 0; a < 2; ++a) {
    std::vector<double> m = u[a].to_vector(ctx), r = rest[a].to_vector(ctx),
                        e = v[a].to_vector(ctx), wa = w[a].to_vector(ctx);
    for (std::size_t q = 0; q < m.size(); ++q) {
      if (wa[q] == 0) continue;  // inside the body: the projection holds it at 0
      moved = std::max(moved, std::abs(m[q] - e[q]));
      still = std::max(still, std::abs(r[q] - e[q]));
    }
  }
  EXPECT_LE(moved, 1e-12);
  EXPECT_GT(still, 0.1);
  // Transpose of (u, U) -> u_new, with an open side (a random U's net flux through the body
  // would make a closed box's problem incompatible).
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  PressureSolver<double> open(
      ctx, g, face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.71, 0.52, 0}, 0.2)));
  MacVelocity<double> x(ctx, g), xs(ctx, g), y(ctx, g), px(ctx, g), gu(ctx, g), gs(ctx, g);
  Field<double> po(ctx, g);
  fill_random(ctx, x, 31);
  fill_random(ctx, xs, 32);
  fill_random(ctx, y, 33);
  copy(ctx, x, px);
  open.project_moving_solid(ctx, px, xs, po, 1.0, tight());
  copy(ctx, y, gu);
  fill(ctx, gs, 0.0);
  open.project_moving_solid_adjoint(ctx, gu, gs, tight());
  using dfluid::testing::dotv;
  const double lhs = dotv(ctx, px, y), rhs = dotv(ctx, x, gu) + dotv(ctx, xs, gs);
  EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << lhs << " vs " << rhs;
  EXPECT_GT(std::abs(dotv(ctx, xs, gs)), 1e-3);
  // A staircase solver has no closed face parts to move.
  PressureSolver<double> stair(ctx, g);
  EXPECT_THROW(stair.project_moving_solid(ctx, u, v, p, 0.1), InvalidArgument);
}

// Open fractions outside [0, 1] or off the grid are rejected with the fix.
TEST(FaceFractionsProjection, RejectsBadFractions) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(6, 5, 1.0);
  MacVelocity<double> w(ctx, g);
  fill(ctx, w[0], 1.0);
  fill(ctx, w[1], 1.5);
  EXPECT_THROW(PressureSolver<double>(ctx, g, w), InvalidArgument);
  MacVelocity<double> other(ctx, Grid::make_2d(7, 5, 1.0));
  EXPECT_THROW(PressureSolver<double>(ctx, g, other), ShapeMismatch);
}

namespace {

/// A few steps of a channel (inflow left, outflow right, walls) past a face-fraction circle,
/// with implicit diffusion and the incremental pressure correction (its pressure gradient and
/// the pressure's cotangent pass through the weighted operators too); the loss is
/// 1/2 |u_N - 0|^2. eps * du perturbs the initial velocity.
RolloutResult<double> fraction_rollout(const MacVelocity<double>* du, double eps,
                                       const RolloutOptions& opt, bool drag = false,
                                       bool front_half = false) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(20, 10, 0.1);
  g.set_boundary(0, BoundaryKind::Inflow, BoundaryKind::Outflow);
  StepConfig cfg;
  cfg.dt = 0.04;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.01;
  cfg.pressure_correction = PressureCorrection::Incremental;
  cfg.pressure = tight();
  cfg.pressure.warm_start = false;
  cfg.diffusion_solver = tight();
  Simulation<double> sim(ctx, g, cfg);
  sim.set_obstacle_fractions(
      face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.73, 0.48, 0}, 0.23)));
  VelocityBoundary vb;
  vb.inflow[0][0].resize(10);
  for (int j = 0; j < 10; ++j)
    vb.inflow[0][0][std::size_t(j)] = 0.7 + 0.2 * std::sin(0.9 * j);
  sim.set_velocity_boundary(vb);
  SmokeState<double> s0(ctx, g, {});
  fill_random(ctx, s0.velocity, 17);
  if (du)
    for (int a = 0; a < 2; ++a)
      axpy(ctx, eps, (*du)[a], s0.velocity[a]);
  MacVelocity<double> rest(ctx, g);
  fill(ctx, rest, 0.0);
  RolloutLosses<double> losses;
  VelocityTarget<double> end;
  end.step = 4;
  end.target = &rest;
  // front_half: the losses see only the cut cells upstream of the centre (a body mask).
  ObstacleMask front(ctx, g, Location::Cell);
  std::vector<std::uint8_t> fm(std::size_t(g.cells()), 0);
  for (int j = 0; j < 10; ++j)
    for (int i = 0; i < 20; ++i)
      fm[std::size_t(j * 20 + i)] = (i + 0.5) * g.dx < 0.73 ? 1 : 0;
  front.assign(ctx, fm);
  if (drag) {  // drag on every state and lift on two (the pressure force on the body)
    ObstacleForceLoss<double> d;
    if (front_half) d.body = &front;
    losses.obstacle_forces.push_back(d);
    ObstacleForceLoss<double> lift;
    lift.name = "lift";
    lift.steps = {2, 4};
    lift.direction = {0.0, 1.0, 0.0};
    lift.weight = 0.7;
    if (front_half) lift.body = &front;
    losses.obstacle_forces.push_back(lift);
  } else {
    losses.velocity_targets.push_back(end);
  }
  Rollout<double> ro(sim);
  return ro.run(s0, 4, {}, losses, opt);
}

}  // namespace

// The rollout gradient through steps with a face-fraction obstacle against central finite
// differences of the loss (initial velocity along a random direction): 1e-6 relative.
// The same with drag and lift (the pressure force on the face-fraction body) as the loss, and
// with the force on its front half only (a body mask selecting the cut cells upstream).
TEST(FaceFractionsRollout, GradientMatchesFiniteDifferences) {
  Context ctx = Context::cpu();
  for (int variant = 0; variant < 3; ++variant) {
    const bool drag = variant > 0, half = variant == 2;  // half: the front half's force
    const RolloutResult<double> ref = fraction_rollout(nullptr, 0, {}, drag, half);
    MacVelocity<double> du(ctx, ref.grad_initial.velocity[0].grid());
    fill_random(ctx, du, 5);
    const double h = 1e-5;
    const double fd = (fraction_rollout(&du, h, {}, drag, half).loss -
                       fraction_rollout(&du, -h, {}, drag, half).loss) /
                      (2 * h);
    const double ad = dfluid::testing::dotv(ctx, ref.grad_initial.velocity, du);
    std::printf("[ rollout  ] %-8s grad . du = % .12e  fd = % .12e  rel %.2e\n",
                half   ? "half"
                : drag ? "drag"
                       : "velocity",
                ad, fd, std::abs(ad - fd) / std::abs(fd));
    EXPECT_NEAR(ad, fd, 1e-6 * std::abs(fd));
    EXPECT_GT(std::abs(fd), 1e-3);
    if (drag) EXPECT_GT(std::abs(ref.loss_terms.at("drag")), 1e-2);
  }
}

namespace {
/// A fluid at rest under the body force f (2D): one step's velocity dt f projected by the
/// Simulation's solver, so its pressure is the hydrostatic one and the velocity is zero.
SmokeState<double> at_rest_under(Simulation<double>& sim, const double f[2]) {
  const Context& ctx = sim.context();
  const double dt = 0.1;
  SmokeState<double> s(ctx, sim.grid(), {});
  for (int a = 0; a < 2; ++a)
    fill(ctx, s.velocity[a], dt * f[a]);
  EXPECT_TRUE(sim.pressure_solver().project(ctx, s.velocity, s.pressure, dt, tight()).converged);
  return s;
}
}  // namespace

// A fluid at rest under a body force f around a face-fraction circle: the pressure is
// hydrostatic and the force on the body is exactly -f times its volume as the a-faces
// measure it (dx^2 sum (1 - W) over the faces normal to a), within 1% of -f pi R^2.
TEST(FaceFractionsForce, DiscreteArchimedes) {
  Context ctx = Context::cpu();
  const int n = 40;
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  const double R = 0.23;
  MacVelocity<double> w =
      face_open_fractions<double>(ctx, g, circle_node_distance(g, {0.52, 0.47, 0}, R));
  StepConfig cfg;
  Simulation<double> sim(ctx, g, cfg);
  sim.set_obstacle_fractions(w);
  const double f[2] = {0.6, -2.0};
  SmokeState<double> s = at_rest_under(sim, f);
  const std::array<double, 3> F = sim.obstacle_force(s);
  for (int a = 0; a < 2; ++a) {
    double closed = 0;
    for (double v : w[a].to_vector(ctx))
      closed += 1 - v;
    const double volume = closed * g.dx * g.dx;
    EXPECT_NEAR(F[a], -f[a] * volume, 1e-10 * std::abs(f[a] * volume)) << a;
    EXPECT_NEAR(F[a], -f[a] * kPi * R * R, 0.01 * std::abs(f[a]) * kPi * R * R) << a;
  }
  EXPECT_EQ(F[2], 0.0);
}

// Two face-fraction circles at rest under a body force, each with a body mask covering its
// cut cells (a disc 1.5 cells wider): each body feels -f times its own area within 2% (the
// discrete Archimedes per body), the two forces sum to the force on the whole obstacle, a mask
// of fluid cells only feels nothing, and new fractions rebuild the bodies' coefficients.
TEST(FaceFractionsForce, PerBodyArchimedes) {
  Context ctx = Context::cpu();
  const int n = 48;
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  const double c[2][2] = {{0.28, 0.30}, {0.68, 0.64}}, R[2] = {0.16, 0.21};
  const std::vector<double> d0 = circle_node_distance(g, {c[0][0], c[0][1], 0}, R[0]);
  const std::vector<double> d1 = circle_node_distance(g, {c[1][0], c[1][1], 0}, R[1]);
  std::vector<double> phi(d0.size());
  for (std::size_t i = 0; i < phi.size(); ++i)
    phi[i] = std::min(d0[i], d1[i]);  // fluid outside both
  Simulation<double> sim(ctx, g, StepConfig{});
  sim.set_obstacle_fractions(face_open_fractions<double>(ctx, g, phi));
  std::vector<ObstacleMask> bodies;
  for (int b = 0; b < 3; ++b) {
    std::vector<std::uint8_t> m(std::size_t(n * n), 0);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) {
        const double x = (i + 0.5) * g.dx, y = (j + 0.5) * g.dx;
        const bool in = b < 2 ? std::hypot(x - c[b][0], y - c[b][1]) < R[b] + 1.5 * g.dx
                              : x > 0.9 && y < 0.1;  // a corner of fluid only
        m[std::size_t(j * n + i)] = in ? 1 : 0;
      }
    bodies.emplace_back(ctx, g, Location::Cell);
    bodies.back().assign(ctx, m);
  }
  const double f[2] = {0.6, -2.0};
  SmokeState<double> s = at_rest_under(sim, f);
  const std::array<double, 3> all = sim.obstacle_force(s);
  const std::array<double, 3> F0 = sim.obstacle_force_on(s, &bodies[0]);
  const std::array<double, 3> F1 = sim.obstacle_force_on(s, &bodies[1]);
  const std::array<double, 3> none = sim.obstacle_force_on(s, &bodies[2]);
  for (int a = 0; a < 2; ++a) {
    EXPECT_NEAR(F0[a] + F1[a], all[a], 1e-12 * std::abs(all[a])) << a;
    EXPECT_NEAR(F0[a], -f[a] * kPi * R[0] * R[0], 0.02 * std::abs(f[a]) * kPi * R[0] * R[0]) << a;
    EXPECT_NEAR(F1[a], -f[a] * kPi * R[1] * R[1], 0.02 * std::abs(f[a]) * kPi * R[1] * R[1]) << a;
    EXPECT_EQ(none[a], 0.0) << a;
  }
  // New fractions (the second circle alone): the bodies' coefficients are rebuilt.
  sim.set_obstacle_fractions(face_open_fractions<double>(ctx, g, d1));
  s = at_rest_under(sim, f);
  const std::array<double, 3> G0 = sim.obstacle_force_on(s, &bodies[0]);
  EXPECT_EQ(G0[0], 0.0);
  EXPECT_EQ(G0[1], 0.0);
}

// Face fractions replace the staircase in a Simulation: one with a mask is refused.
TEST(FaceFractionsRollout, SimulationWithAMaskRefusesFractions) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(8, 8, 0.125);
  ObstacleMask m(ctx, g, Location::Cell);
  fill(ctx, m, std::uint8_t(0));
  Simulation<double> sim(ctx, g, StepConfig{}, &m);
  EXPECT_THROW(sim.set_obstacle_fractions(face_open_fractions_from_mask<double>(ctx, m)),
               InvalidArgument);
  Simulation<double> plain(ctx, g, StepConfig{});
  EXPECT_FALSE(plain.has_obstacle_fractions());
  plain.set_obstacle_fractions(face_open_fractions_from_mask<double>(ctx, m));
  EXPECT_TRUE(plain.has_obstacle_fractions());
}
