// A step whose state leaves the range of its precision throws NonFiniteValue at that step,
// naming the operator where the NaN/Inf appeared, instead of returning a report with a NaN
// residual and failing one step later on the input check (dfluid-smoke --buoyancy 1e37
// --dt 10 printed max|u| = inf and residual nan as a normal row).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;

namespace {

/// A 16² closed box whose density is 2 in a block near the bottom, and still velocity.
template <class T>
SmokeState<T> block_of_smoke(const Context& ctx, const Grid& g) {
  SmokeState<T> s(ctx, g);
  std::vector<T> q(std::size_t(g.cells()), T(0));
  for (int j = 2; j < 6; ++j)
    for (int i = 6; i < 10; ++i)
      q[std::size_t(j * g.n[0] + i)] = T(2);
  s.scalars[0].assign(ctx, q);
  return s;
}

StepConfig huge_buoyancy(double buoyancy) {
  StepConfig cfg;
  cfg.dt = 10;
  cfg.buoyancy = buoyancy;
  cfg.pressure.rel_tol = 1e-4;
  return cfg;
}

template <class T>
std::string step_error(double buoyancy) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 16, 1.0);
  Simulation<T> sim(ctx, g, huge_buoyancy(buoyancy));
  SmokeState<T> s = block_of_smoke<T>(ctx, g);
  try {
    sim.step(s);
  } catch (const NonFiniteValue& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

// 1e37 · dt 10 · density 2 = 2e38: the force fits a float, the pressure that cancels it
// does not (scaling the solution back by |b| ≈ 4e38 overflows): the solve reports it.
TEST(SimulationNonFinite, PressureBeyondFloatIsReportedByTheSolve) {
  const std::string what = step_error<float>(1e37);
  EXPECT_NE(what.find("PressureSolver::project"), std::string::npos) << what;
  EXPECT_NE(what.find("not finite"), std::string::npos) << what;
  EXPECT_NE(what.find("range of float"), std::string::npos) << what;
  EXPECT_EQ(what.find('\n'), std::string::npos) << what;
}

// 1e38 · 10 · 2 = 2e39: the buoyancy force is already beyond float; the projection's input
// check finds it, and the step names the parts that ran before and the force.
TEST(SimulationNonFinite, ForceBeyondFloatNamesThePartsAndTheForce) {
  const std::string what = step_error<float>(1e38);
  EXPECT_NE(what.find("Simulation::step"), std::string::npos) << what;
  EXPECT_NE(what.find("before the pressure projection"), std::string::npos) << what;
  EXPECT_NE(what.find("forces"), std::string::npos) << what;
  EXPECT_EQ(what.find("diffuse"), std::string::npos) << what;  // nothing to diffuse: not run
  EXPECT_NE(what.find("|buoyancy · dt| · max density = 2e+39"), std::string::npos) << what;
}

// The same step in double precision stays finite and reports a finite residual.
TEST(SimulationNonFinite, DoubleHoldsWhatFloatCannot) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 16, 1.0);
  Simulation<double> sim(ctx, g, huge_buoyancy(1e37));
  SmokeState<double> s = block_of_smoke<double>(ctx, g);
  const StepReport r = sim.step(s);
  EXPECT_TRUE(std::isfinite(r.pressure.residual));
  EXPECT_TRUE(all_finite(ctx, s.velocity[1]));
}

// The solver on its own: a finite velocity whose pressure overflows float throws
// NonFiniteValue naming the solve; it does not return a report with a NaN residual.
TEST(SimulationNonFinite, ProjectThrowsInsteadOfReturningNaNResidual) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(16, 16, 1.0);
  PressureSolver<float> solver(ctx, g);
  MacVelocity<float> u(ctx, g);
  std::vector<float> v(std::size_t(u[1].size()), 0.0f);
  for (std::size_t i = 0; i < v.size() / 2; ++i)
    v[i] = 2e38f;  // finite, but the divergence it leaves needs a pressure beyond float
  u[1].assign(ctx, v);
  Field<float> p(ctx, g);
  try {
    const SolveReport r = solver.project(ctx, u, p, 1.0f);
    FAIL() << "expected NonFiniteValue, got a report with residual " << r.residual;
  } catch (const NonFiniteValue& e) {
    EXPECT_NE(std::string(e.what()).find("PressureSolver::project"), std::string::npos) << e.what();
  }
}
