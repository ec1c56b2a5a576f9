// The step adjoint's forward replay (host/src/step/simulation_adjoint.cpp) runs only the parts
// whose output a later snapshot reads, and the advections' snapshots read the step's input
// itself where no earlier part changes it. These tests check that skipping work never
// changes a gradient (bitwise), that the work is really skipped (launch counts), and that a
// gradient sharing memory with the input, which the reverse pass would overwrite before
// reading it, is refused.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "counters_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;

namespace {

/// Smoke and a swirl, deterministic, so that every part of the step does something.
template <class T>
void seed(const Context& ctx, SmokeState<T>& s) {
  const Grid& g = s.grid();
  std::vector<T> q(std::size_t(g.cells()));
  for (std::size_t i = 0; i < q.size(); ++i)
    q[i] = T((i * 37) % 11) / T(10);
  s.scalars[0].assign(ctx, q);
  for (int a = 0; a < g.dim; ++a) {
    std::vector<T> u(std::size_t(s.velocity[a].size()));
    for (std::size_t i = 0; i < u.size(); ++i)
      u[i] = T(0.1) * T(int((i * 13 + std::size_t(a) * 5) % 7) - 3);
    s.velocity[a].assign(ctx, u);
  }
}

template <class T>
void seed_gradient(const Context& ctx, SmokeGradient<T>& g) {
  for (int a = 0; a < g.velocity.grid().dim; ++a) {
    std::vector<T> v(std::size_t(g.velocity[a].size()));
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = T(int((i * 7 + std::size_t(a)) % 9) - 4) / T(8);
    g.velocity[a].assign(ctx, v);
  }
  std::vector<T> q(std::size_t(g.scalars[0].size()));
  for (std::size_t i = 0; i < q.size(); ++i)
    q[i] = T(int((i * 5) % 13) - 6) / T(10);
  g.scalars[0].assign(ctx, q);
}

template <class T>
void expect_bitwise(const Context& ctx, const Field<T>& a, const Field<T>& b, const char* what) {
  const std::vector<T> x = a.to_vector(ctx), y = b.to_vector(ctx);
  ASSERT_EQ(x.size(), y.size()) << what;
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(x[i], y[i]) << what << " at " << i;
}

StepConfig smoke_step() {
  StepConfig cfg;  // MacCormack scalars, semi-Lagrangian velocity, buoyancy, projection
  cfg.buoyancy = 0.3;
  cfg.pressure.rel_tol = 1e-10;
  return cfg;
}

}  // namespace

// Without the buoyancy coefficient's gradient nothing needs the advected scalar: the replay
// advects nothing. The gradients are bitwise those of a call that asks for the coefficient
// (which replays the scalar advection), and the call launches at least a MacCormack
// advection's kernels fewer.
TEST(StepAdjointReplay, SkipsTheScalarAdvectionWithoutTheBuoyancyGradient) {
  for (int dim : {2, 3}) {
    SCOPED_TRACE(dim);
    Context ctx = Context::cpu();
    const Grid g = dim == 2 ? Grid::make_2d(20, 18, 1.0) : Grid::make_3d(10, 9, 8, 1.0);
    const StepConfig cfg = smoke_step();
    Simulation<double> sim(ctx, g, cfg);
    SmokeState<double> input(ctx, g);
    seed(ctx, input);
    SmokeGradient<double> with(ctx, g, 1), without(ctx, g, 1), seed_g(ctx, g, 1);
    seed_gradient(ctx, seed_g);
    auto reset = [&](SmokeGradient<double>& gr) {
      copy(ctx, seed_g.velocity, gr.velocity);
      copy(ctx, seed_g.scalars[0], gr.scalars[0]);
    };
    double gb = 0;
    reset(with);
    sim.step_adjoint(input, {}, with, nullptr, &gb);  // warm-up: scratch, pool
    reset(with);
    gb = 0;
    const ContextCounters c_with =
        test::events_of(ctx, [&] { sim.step_adjoint(input, {}, with, nullptr, &gb); });
    reset(without);
    const ContextCounters c_without =
        test::events_of(ctx, [&] { sim.step_adjoint(input, {}, without); });
    EXPECT_NE(gb, 0.0);
    for (int a = 0; a < dim; ++a)
      expect_bitwise(ctx, with.velocity[a], without.velocity[a], "grad velocity");
    expect_bitwise(ctx, with.scalars[0], without.scalars[0], "grad scalar");

    // What the forward scalar advection alone launches.
    Field<double> out(ctx, g, Location::Cell), scratch(ctx, g, Location::Cell);
    advect(ctx, input.scalars[0], input.velocity, cfg.dt, out, cfg.scalar_advection, &scratch);
    const ContextCounters c_adv = test::events_of(ctx, [&] {
      advect(ctx, input.scalars[0], input.velocity, cfg.dt, out, cfg.scalar_advection, &scratch);
    });
    ASSERT_GT(c_adv.launches, 0);
    EXPECT_GE(c_with.launches - c_without.launches, c_adv.launches)
        << "with the coefficient gradient " << c_with.launches << ", without " << c_without.launches
        << ", one scalar advection " << c_adv.launches;
    EXPECT_EQ(c_without.allocations, 0);
  }
}

// A gradient field that is the input's own memory would be overwritten by the projection's
// and the forces' adjoints before the advections' adjoints read the input: refused.
TEST(StepAdjointReplay, GradientSharingTheInputsMemoryIsRefused) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_2d(12, 10, 1.0);
  Simulation<double> sim(ctx, g, smoke_step());
  SmokeState<double> input(ctx, g);
  seed(ctx, input);
  SmokeGradient<double> grad(ctx, g, 1);
  // A Field wrapping the input's scalar memory (caller-owned memory, as Python passes it).
  grad.scalars[0] = input.scalars[0].alias();
  try {
    sim.step_adjoint(input, {}, grad);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("grad shares memory with the input state"),
              std::string::npos)
        << e.what();
  }
}
