// The composed smoke step: physics sanity, caller-owned memory, configurable
// order, input validation, and GPU against CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dfluid/dfluid.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;

namespace {

template <class T>
Field<T> disc_source(const Context& ctx, const Grid& g, double cx, double cy, double r, T rate) {
  Field<T> s(ctx, g, Location::Cell);
  std::vector<T> v(s.size(), T(0));
  for (int j = 0; j < g.n[1]; ++j)
    for (int i = 0; i < g.n[0]; ++i)
      if (std::hypot(i + 0.5 - cx, j + 0.5 - cy) <= r) v[j * g.n[0] + i] = rate;
  s.assign(ctx, v);
  return s;
}

template <class T>
double centre_of_mass_y(const Context& ctx, const Field<T>& q) {
  const Grid& g = q.grid();
  std::vector<T> v = q.to_vector(ctx);
  double m = 0, my = 0;
  for (int j = 0; j < g.n[1]; ++j)
    for (int i = 0; i < g.n[0]; ++i) {
      m += v[j * g.n[0] + i];
      my += v[j * g.n[0] + i] * (j + 0.5);
    }
  return my / m;
}

StepConfig plume_config() {
  StepConfig cfg;
  cfg.dt = 1.0;
  cfg.buoyancy = 1.0;
  cfg.pressure.rel_tol = 1e-8;
  return cfg;
}

}  // namespace

TEST(Simulation, PlumeRisesAndStaysDivergenceFree) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(32, 40, 1.0);
  Simulation<double> sim(ctx, g, plume_config());
  SmokeState<double> s(ctx, g);
  Field<double> src = disc_source<double>(ctx, g, 16, 5, 3, 1.0 / 3);
  StepControls<double> c;
  c.sources = {&src};
  double prev_y = 0;
  for (int k = 0; k < 12; ++k) {
    StepReport r = sim.step(s, c);
    EXPECT_TRUE(r.pressure.converged);
    EXPECT_GT(r.pressure.iterations, 0);
    EXPECT_LT(max_abs_divergence(ctx, s.velocity), 1e-6);
    if (k >= 4) {
      const double y = centre_of_mass_y(ctx, s.scalars[0]);
      EXPECT_GT(y, prev_y) << "smoke must rise at step " << k;
      prev_y = y;
    }
  }
  EXPECT_GT(max_abs(ctx, s.velocity[1]), 0.5);
  // Walls: no flow through the box sides.
  std::vector<double> v = s.velocity[1].to_vector(ctx);
  for (int i = 0; i < g.n[0]; ++i) {
    EXPECT_EQ(v[i], 0.0);
    EXPECT_EQ(v[g.n[1] * g.n[0] + i], 0.0);
  }
}

TEST(Simulation, WrappedCallerMemoryGivesBitwiseTheSameRun) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(24, 24, 1.0);
  StepConfig cfg = plume_config();
  cfg.pressure.rel_tol = 1e-5;  // reachable in float
  Simulation<float> sim(ctx, g, cfg);
  Field<float> src = disc_source<float>(ctx, g, 12, 4, 3, 0.5f);
  StepControls<float> c;
  c.sources = {&src};

  SmokeState<float> owned(ctx, g);
  std::vector<float> ux(25 * 24), vy(24 * 25), rho(24 * 24), p(24 * 24);
  SmokeState<float> wrapped;
  wrapped.velocity =
      MacVelocity<float>::wrap(g, {ux.data(), vy.data(), nullptr}, MemorySpace::Host);
  wrapped.scalars.push_back(Field<float>::wrap(g, Location::Cell, rho.data(), MemorySpace::Host));
  wrapped.scalar_names = {"density"};
  wrapped.pressure = Field<float>::wrap(g, Location::Cell, p.data(), MemorySpace::Host);
  for (int k = 0; k < 6; ++k) {
    sim.step(owned, c);
    sim.step(wrapped, c);
  }
  EXPECT_EQ(owned.scalars[0].to_vector(ctx), rho);
  EXPECT_EQ(owned.velocity[0].to_vector(ctx), ux);
  EXPECT_EQ(owned.velocity[1].to_vector(ctx), vy);
  EXPECT_GT(max_abs(ctx, wrapped.scalars[0]), 0.1);  // the caller's buffers were written
}

TEST(Simulation, OrderIsConfigurable) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(16, 16, 1.0);
  StepConfig cfg = plume_config();
  cfg.order = {StepPart::AdvectScalars, StepPart::Forces};  // no projection
  Simulation<double> sim(ctx, g, cfg);
  SmokeState<double> s(ctx, g);
  fill(ctx, s.scalars[0], 1.0);
  StepReport r = sim.step(s);
  EXPECT_EQ(r.pressure.iterations, 0);
  EXPECT_GT(max_abs_divergence(ctx, s.velocity), 0.1);  // buoyancy alone is not divergence-free
  EXPECT_EQ(parse_step_part("project"), StepPart::Project);
  EXPECT_THROW(parse_step_part("teleport"), InvalidArgument);
  EXPECT_THROW(parse_diffusion_mode("sideways"), InvalidArgument);
}

TEST(Simulation, RefusesBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(16, 16, 1.0);
  {
    StepConfig cfg = plume_config();
    cfg.diffusion = DiffusionMode::Explicit;
    cfg.viscosity = 1.0;  // dx²/(4ν) = 0.25 < dt = 1
    try {
      Simulation<double> sim(ctx, g, cfg);
      FAIL() << "unstable explicit diffusion accepted";
    } catch (const UnstableTimeStep& e) {
      EXPECT_DOUBLE_EQ(e.max_stable_dt(), 0.25);
    }
  }
  Simulation<double> sim(ctx, g, plume_config());
  SmokeState<double> s(ctx, g);
  std::vector<double> v(s.scalars[0].size(), 0.0);
  v[5] = std::numeric_limits<double>::quiet_NaN();
  s.scalars[0].assign(ctx, v);
  EXPECT_THROW(sim.step(s), NonFiniteValue);

  SmokeState<double> other(ctx, Grid::make_2d(8, 8, 1.0));
  EXPECT_THROW(sim.step(other), ShapeMismatch);

  SmokeState<double> none(ctx, g, {});  // buoyancy needs scalar 0
  EXPECT_THROW(sim.step(none), InvalidArgument);

  StepConfig bad = plume_config();
  bad.dt = 0;
  EXPECT_THROW(Simulation<double>(ctx, g, bad).step(s), InvalidArgument);
  EXPECT_THROW(s.scalar_index("temperature"), InvalidArgument);
}

TEST(Simulation, ThreeDimensionalStepBothPrecisions) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(16, 16, 16, 1.0);
  StepConfig cfg = plume_config();
  cfg.pressure.rel_tol = 1e-5;
  {
    Simulation<float> sim(ctx, g, cfg);
    SmokeState<float> s(ctx, g);
    fill(ctx, s.scalars[0], 0.5f);
    for (int k = 0; k < 3; ++k)
      sim.step(s);
    EXPECT_TRUE(all_finite(ctx, s.velocity[1]));
    EXPECT_LT(max_abs_divergence(ctx, s.velocity), 1e-3);
  }
  {
    Simulation<double> sim(ctx, g, cfg);
    SmokeState<double> s(ctx, g);
    fill(ctx, s.scalars[0], 0.5);
    for (int k = 0; k < 3; ++k)
      sim.step(s);
    EXPECT_LT(max_abs_divergence(ctx, s.velocity), 1e-3);
  }
}

TEST(GpuSimulation, StepMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Grid g = Grid::make_3d(32, 32, 32, 1.0);
  StepConfig cfg = plume_config();
  cfg.pressure.rel_tol = 1e-6;
  std::vector<float> rho_out[2];
  int slot = 0;
  for (Context ctx : {Context::cpu(), Context::create(Device::Cuda)}) {
    Simulation<float> sim(ctx, g, cfg);
    SmokeState<float> s(ctx, g);
    std::vector<float> rho(g.cells());
    for (Index i = 0; i < g.cells(); ++i)
      rho[i] = float((i * 7919) % 101) / 100.0f;
    s.scalars[0].assign(ctx, rho);
    for (int k = 0; k < 4; ++k)
      sim.step(s);
    rho_out[slot++] = s.scalars[0].to_vector(ctx);
  }
  double num = 0, den = 0;
  for (std::size_t i = 0; i < rho_out[0].size(); ++i) {
    num += std::pow(double(rho_out[0][i]) - rho_out[1][i], 2);
    den += std::pow(double(rho_out[0][i]), 2);
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
}
