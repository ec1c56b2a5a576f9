// Interpolation::Cubic (Catmull-Rom, cuda/advection/cubic.hpp) beyond the transpose tests
// of test_advection_adjoint.cpp (which run every case with it too):
//  * it reproduces quadratics exactly (interior) and, along a MAC component's own axis,
//    linear functions up to the boundary face (the extrapolated face beyond it);
//  * (its observed order of convergence: AdvectionOrder.CubicSemiLagrangian in
//    test_advection.cpp);
//  * it is C1 where linear has a kink: departure points exactly on sample planes have
//    two one-sided derivatives with linear, one with cubic;
//  * the test (GitHub issue 14): the finite-difference check of a rollout
//    gradient at a symmetric 3D Taylor-Green start plateaus with linear interpolation
//    and converges with cubic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "advection_test_util.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/rollout.hpp"

using namespace dfluid;
using namespace dfluid::testing::advection;

namespace {

AdvectionOptions cubic_options(AdvectionScheme s = AdvectionScheme::SemiLagrangian,
                               Backtrace bt = Backtrace::Euler) {
  AdvectionOptions o;
  o.scheme = s;
  o.backtrace = bt;
  o.interpolation = Interpolation::Cubic;
  return o;
}

/// Fills an array of the grid at `loc` with f(x, y, z) of its sample positions (cell units).
template <class Fn>
void fill_with(const Context& ctx, F& f, Fn fn) {
  const auto e = f.extents();
  const int fa = int(f.location()) - 1;  // Cell: -1, FaceX: 0, ...
  std::vector<double> v(std::size_t(f.size()));
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i) {
        const double p[3] = {i + (fa == 0 ? 0.0 : 0.5), j + (fa == 1 ? 0.0 : 0.5),
                             k + (fa == 2 ? 0.0 : 0.5)};
        v[(std::size_t(k) * e[1] + j) * e[0] + i] = fn(p[0], p[1], p[2]);
      }
  f.assign(ctx, v);
}

TEST(AdvectionCubic, ParsesAndRejectsUnknownValues) {
  EXPECT_EQ(parse_interpolation("linear"), Interpolation::Linear);
  EXPECT_EQ(parse_interpolation("cubic"), Interpolation::Cubic);
  EXPECT_EQ(parse_interpolation("catmull-rom"), Interpolation::Cubic);
  EXPECT_STREQ(to_string(Interpolation::Cubic), "cubic");
  try {
    parse_interpolation("quadratic");
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("use linear or cubic"), std::string::npos) << e.what();
  }
  const Context ctx = Context::cpu();
  const Grid g = make_grid(2, BoundaryKind::Wall);
  F q(ctx, g), out(ctx, g);
  MacVelocity<double> u(ctx, g);
  AdvectionOptions o;
  o.interpolation = static_cast<Interpolation>(9);
  try {
    advect(ctx, q, u, kDt, out, o);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("options.interpolation"), std::string::npos) << e.what();
  }
}

// Catmull-Rom is exact for polynomials of degree <= 2 (per axis, so for x^2 + x y + y^2
// in 2D) wherever its 4 x 4 stencil stays inside the domain; linear interpolation is not
// (its error is t (1 - t) / 2 times the second difference). Along a MAC component's own
// axis the face beyond the boundary face is 2 f[0] - f[1], exact for a linear function:
// the whole component is reproduced up to the boundary faces.
TEST(AdvectionCubic, ReproducesQuadraticsAndLinearFacesExactly) {
  const Context ctx = Context::cpu();
  Grid g = Grid::make_2d(16, 12, 1.0);
  g.set_boundary(BoundaryKind::Wall);
  MacVelocity<double> u(ctx, g);
  fill(ctx, u[0], 0.3);
  fill(ctx, u[1], -0.45);
  const double dt = 1.0;  // departure point = node - (0.3, -0.45) cells
  auto quad = [](double x, double y, double) {
    return 0.02 * x * x - 0.03 * x * y + 0.05 * y * y + 0.1 * x;
  };
  F q(ctx, g), out(ctx, g);
  fill_with(ctx, q, quad);
  for (Interpolation in : {Interpolation::Linear, Interpolation::Cubic}) {
    AdvectionOptions o;
    o.interpolation = in;
    advect(ctx, q, u, dt, out, o);
    const auto v = out.to_vector(ctx);
    double worst = 0;
    for (int j = 2; j < 10; ++j)  // stencils (departure +-2 cells) inside the domain
      for (int i = 2; i < 14; ++i)
        worst = std::max(
            worst, std::abs(v[std::size_t(j) * 16 + i] - quad(i + 0.5 - 0.3, j + 0.5 + 0.45, 0)));
    if (in == Interpolation::Cubic)
      EXPECT_LE(worst, 1e-13);
    else
      EXPECT_GT(worst, 1e-3);  // linear: 0.3 * 0.7 / 2 * 0.04 + ... per axis
  }
  // A MAC field whose x component is linear in x (and anything smooth in y), advected
  // by u: faces whose departure point lies in [0, n] along x are exact.
  MacVelocity<double> m(ctx, g), mout(ctx, g);
  fill_with(ctx, m[0], [](double x, double y, double) { return 0.7 - 0.2 * x + 0.01 * y * y; });
  fill_with(ctx, m[1], [](double x, double y, double) { return 0.1 * x + 0.2 * y; });
  advect(ctx, m, u, dt, mout, cubic_options());
  const auto v = mout[0].to_vector(ctx);
  double worst = 0;
  for (int j = 2; j < 10; ++j)
    for (int i = 0; i <= 16; ++i) {
      const double xd = i - 0.3, yd = j + 0.5 + 0.45;
      if (xd < 0) continue;  // clamped to the boundary face
      worst =
          std::max(worst, std::abs(v[std::size_t(j) * 17 + i] - (0.7 - 0.2 * xd + 0.01 * yd * yd)));
    }
  EXPECT_LE(worst, 1e-13);
}

// Departure points exactly on cell centres (a uniform velocity of one cell per step):
// with linear interpolation the loss <y, advect(q, u + eps v)> has a kink at eps = 0
// (one-sided derivatives differ by O(1)); with cubic its two one-sided differences
// agree with each other and with the adjoint to O(h).
TEST(AdvectionCubic, OneSidedDerivativesAgreeOnSamplePlanes) {
  const Context ctx = Context::cpu();
  for (int dim = 1; dim <= 3; ++dim) {
    Grid g = make_grid(dim, BoundaryKind::Periodic);
    const double dx = g.dx;
    F q(ctx, g), y(ctx, g), out(ctx, g), gq(ctx, g);
    MacVelocity<double> u(ctx, g), v(ctx, g), w(ctx, g), gu(ctx, g);
    randomize(ctx, q, 7 + dim, -1, 1);
    randomize(ctx, y, 17 + dim, 0, 1);
    randomize(ctx, v, 27 + dim, -1, 1);
    for (int a = 0; a < dim; ++a)
      fill(ctx, u[a], a == 0 ? 1.0 : -1.0);  // dt u / dx = +-1 cell, exactly
    for (Interpolation in : {Interpolation::Linear, Interpolation::Cubic}) {
      SCOPED_TRACE(std::to_string(dim) + "D " + to_string(in));
      AdvectionOptions o;
      o.interpolation = in;
      auto loss = [&](double eps) {
        set_axpy(ctx, u, eps, v, w);
        advect(ctx, q, w, dx, out, o);
        return dot(ctx, out, y);
      };
      fill(ctx, gq, 0.0);
      for (int a = 0; a < dim; ++a)
        fill(ctx, gu[a], 0.0);
      advect_adjoint(ctx, q, u, dx, y, gq, &gu, o);
      const double ad = dotq(ctx, v, gu);
      const double h = 1e-6, l0 = loss(0.0);
      const double right = (loss(h) - l0) / h, left = (l0 - loss(-h)) / h;
      const double scale = std::abs(right) + std::abs(left);
      std::printf("  %dD %-6s one-sided: %.9e %.9e adjoint %.9e\n", dim, to_string(in), left, right,
                  ad);
      if (in == Interpolation::Linear) {
        EXPECT_GT(std::abs(right - left), 0.05 * scale);
      } else {
        EXPECT_LE(std::abs(right - left), 1e-5 * scale);
        EXPECT_LE(std::abs(right - ad), 1e-5 * scale);
      }
    }
  }
}

/// The setting: a 3D Taylor-Green vortex u = (sin x cos y cos z, -cos x sin y cos z, 0)
/// on a periodic 8^3 grid of [0, 2 pi)^3, three steps (semi-Lagrangian advection, Euler
/// backtrace, projection to rel 1e-13), loss 1/2 |u_3 - target|^2 for a random target.
/// w = 0 and the symmetry planes put departure points exactly on sample planes. Returns
/// the relative error of central differences of the loss along a random direction d of
/// the initial velocity against <grad, d>, for each step size in `hs`.
std::vector<double> taylor_green_fd_errors(Interpolation in, const std::vector<double>& hs) {
  const Context ctx = Context::cpu();
  const int n = 8, steps = 3;
  const double dx = 2 * M_PI / n;
  Grid g = Grid::make_3d(n, n, n, dx);
  g.set_boundary(BoundaryKind::Periodic);
  StepConfig cfg;
  cfg.dt = 0.3;
  cfg.buoyancy = 0;
  for (AdvectionOptions* o : {&cfg.scalar_advection, &cfg.velocity_advection}) {
    o->scheme = AdvectionScheme::SemiLagrangian;
    o->backtrace = Backtrace::Euler;
    o->interpolation = in;
  }
  cfg.pressure.rel_tol = 1e-13;
  cfg.pressure.max_iterations = 1000;
  Simulation<double> sim(ctx, g, cfg);
  Rollout<double> rollout(sim);
  SmokeState<double> init(ctx, g);
  fill_with(ctx, init.velocity[0], [&](double x, double y, double z) {
    return std::sin(x * dx) * std::cos(y * dx) * std::cos(z * dx);
  });
  fill_with(ctx, init.velocity[1], [&](double x, double y, double z) {
    return -std::cos(x * dx) * std::sin(y * dx) * std::cos(z * dx);
  });
  fill(ctx, init.velocity[2], 0.0);
  MacVelocity<double> target(ctx, g), d(ctx, g);
  randomize(ctx, target, 91, -0.5, 0.5);
  randomize(ctx, d, 92, -1, 1);
  RolloutLosses<double> losses;
  VelocityTarget<double> vt;
  vt.step = steps;
  vt.target = &target;
  losses.velocity_targets.push_back(vt);
  const std::vector<StepControls<double>> none;
  RolloutResult<double> r = rollout.run(init, steps, none, losses);
  const double ad = dotq(ctx, r.grad_initial.velocity, d);
  std::vector<double> errs;
  SmokeState<double> s(ctx, g);
  for (double h : hs) {
    double l[2];
    for (int side = 0; side < 2; ++side) {
      set_axpy(ctx, init.velocity, side ? -h : h, d, s.velocity);
      l[side] = rollout.loss(s, steps, none, losses);
    }
    const double fd = (l[0] - l[1]) / (2 * h);
    errs.push_back(std::abs(fd - ad) / std::abs(ad));
  }
  std::printf("  Taylor-Green, %-6s <grad, d> = % .10e, rel. errors of central differences:",
              to_string(in), ad);
  for (std::size_t i = 0; i < hs.size(); ++i)
    std::printf(" h=%.0e: %.1e", hs[i], errs[i]);
  std::printf("\n");
  return errs;
}

// GitHub issue 14: at the symmetric start, linear interpolation's gradient check
// plateaus (central differences converge to the mean of the two one-sided derivatives,
// the adjoint takes the forward's branch); the cubic one converges.
TEST(AdvectionCubic, TaylorGreenGradientCheckConvergesWhereLinearPlateaus) {
  const std::vector<double> hs = {1e-2, 1e-3, 1e-4, 1e-5, 1e-6};
  const auto lin = taylor_green_fd_errors(Interpolation::Linear, hs);
  const auto cub = taylor_green_fd_errors(Interpolation::Cubic, hs);
  // Linear: no convergence, the error stays above 1e-4 down to h = 1e-6.
  EXPECT_GT(lin.back(), 1e-4);
  EXPECT_GT(lin.back(), 0.3 * lin[2]);
  // Cubic: the error falls with h and ends far below linear's plateau.
  EXPECT_LT(cub[2], 0.1 * cub[0]);
  EXPECT_LE(*std::min_element(cub.begin(), cub.end()), 1e-7);
}

}  // namespace
