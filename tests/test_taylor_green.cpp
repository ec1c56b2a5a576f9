// Taylor–Green vortex (G. I. Taylor and A. E. Green, Proc. R. Soc. A 158, 1937):
// 2D periodic box [0, 2π]²,
//   u =  cos x sin y e^{-2νt},  v = -sin x cos y e^{-2νt}.
// The full step (self-advection, explicit diffusion, projection) must converge
// to the analytic solution as the grid is refined. Operator splitting with
// dt ∝ dx makes the whole step first order, whatever the advection scheme;
// MacCormack still has the smaller error constant.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "dfluid/dfluid.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;

namespace {

constexpr double kPi = 3.14159265358979323846;

void set_taylor_green(const Context& ctx, MacVelocity<double>& u, double decay) {
  const Grid& g = u.grid();
  const double h = g.dx;
  std::vector<double> ux(u[0].size()), vy(u[1].size());
  for (int j = 0; j < g.n[1]; ++j)
    for (int i = 0; i < g.n[0]; ++i) {
      // x-face i sits at (i h, (j + ½) h); y-face j at ((i + ½) h, j h).
      ux[j * g.n[0] + i] = std::cos(i * h) * std::sin((j + 0.5) * h) * decay;
      vy[j * g.n[0] + i] = -std::sin((i + 0.5) * h) * std::cos(j * h) * decay;
    }
  u[0].assign(ctx, ux);
  u[1].assign(ctx, vy);
}

double taylor_green_error(int n, double t_end, double nu, AdvectionScheme scheme) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(n, n, 2 * kPi / n);
  g.set_boundary(BoundaryKind::Periodic);
  StepConfig cfg;
  const int steps = int(std::ceil(t_end / (0.5 * g.dx)));  // CFL 0.5 for |u| <= 1
  cfg.dt = t_end / steps;
  cfg.velocity_advection.scheme = scheme;
  cfg.velocity_advection.backtrace = Backtrace::RK2;
  cfg.diffusion = DiffusionMode::Explicit;
  cfg.viscosity = nu;
  cfg.pressure.rel_tol = 1e-10;
  cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project};
  Simulation<double> sim(ctx, g, cfg);
  SmokeState<double> s(ctx, g, {});
  set_taylor_green(ctx, s.velocity, 1.0);
  for (int k = 0; k < steps; ++k)
    sim.step(s);

  MacVelocity<double> exact(ctx, g);
  set_taylor_green(ctx, exact, std::exp(-2 * nu * t_end));
  double err = 0;
  for (int a = 0; a < 2; ++a) {
    axpy(ctx, -1.0, exact[a], s.velocity[a]);
    err = std::max(err, max_abs(ctx, s.velocity[a]));
  }
  return err;
}

}  // namespace

TEST(TaylorGreen, ConvergesToAnalyticSolution) {
  const double nu = 0.05, t_end = 1.0;
  const int sizes[] = {16, 32, 64};
  double sl_error[3] = {0, 0, 0};
  for (AdvectionScheme scheme : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    std::printf("Taylor-Green, %s velocity advection, nu=%.2f, t=%.1f\n", to_string(scheme), nu,
                t_end);
    std::printf("%6s %14s %8s\n", "N", "max error", "order");
    double prev = 0;
    for (int r = 0; r < 3; ++r) {
      const int n = sizes[r];
      const double e = taylor_green_error(n, t_end, nu, scheme);
      if (scheme == AdvectionScheme::SemiLagrangian)
        sl_error[r] = e;
      else
        EXPECT_LT(e, sl_error[r]) << "MacCormack should beat semi-Lagrangian at N=" << n;
      if (prev > 0) {
        const double order = std::log2(prev / e);
        std::printf("%6d %14.6e %8.2f\n", n, e, order);
        EXPECT_LT(e, prev) << "error must decrease with resolution";
        EXPECT_GT(order, 0.7);
      } else {
        std::printf("%6d %14.6e %8s\n", n, e, "-");
      }
      prev = e;
    }
    EXPECT_LT(prev, scheme == AdvectionScheme::MacCormack ? 1.5e-2 : 5e-2);
  }
}
