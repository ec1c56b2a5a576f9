// The CPU path runs its per-cell loops on OpenMP threads; results must not depend on the
// thread count (bitwise), including the adjoints whose transposed interpolation is a scatter
// (fixed slabs on threads, see cuda/core/scatter.hpp). Grids here are above exec.hpp's
// threading threshold (8192 cells).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "adjoint_test_util.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;
using dfluid::testing::fill_random;

namespace {

template <class T>
std::vector<T> flat(const Context& ctx, const MacVelocity<T>& u) {
  std::vector<T> out;
  for (int a = 0; a < u.dim(); ++a) {
    const auto v = u[a].to_vector(ctx);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// Restores the thread count a test changed.
struct ThreadCountGuard {
  int saved = cpu_threads();
  ~ThreadCountGuard() { set_cpu_threads(saved); }
};

/// Scalar MacCormack advection adjoint (a scatter into grad_q and grad_u) on 128² or 32³,
/// velocities up to `speed` cells per step.
std::vector<double> advection_adjoint_result(int threads, int dim = 2, double speed = 3.0) {
  set_cpu_threads(threads);
  const Context ctx = Context::cpu();
  const Grid g = dim == 2 ? Grid::make_2d(128, 128, 1.0) : Grid::make_3d(32, 32, 32, 1.0);
  Field<double> q(ctx, g), go(ctx, g), gq(ctx, g);
  MacVelocity<double> u(ctx, g), gu(ctx, g);
  fill_random(ctx, q, 1);
  fill_random(ctx, go, 2);
  fill_random(ctx, u, 3);
  for (int a = 0; a < dim; ++a)
    scale(ctx, u[a], speed);  // departure points several cells away: many samples per corner
  AdvectionOptions o;
  o.scheme = AdvectionScheme::MacCormack;
  advect_adjoint(ctx, q, u, 1.0, go, gq, &gu, o);
  std::vector<double> out = gq.to_vector(ctx);
  const auto v = flat(ctx, gu);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

}  // namespace

TEST(CpuThreads, SetAndGet) {
  ThreadCountGuard guard;
  set_cpu_threads(1);
  EXPECT_EQ(cpu_threads(), 1);
  EXPECT_THROW(set_cpu_threads(0), InvalidArgument);
}

TEST(CpuThreads, AdvectionAdjointBitwiseIndependentOfThreadCount) {
  ThreadCountGuard guard;
  for (int dim : {2, 3})
    for (double speed : {3.0, 10.0}) {  // 10: far outside a slab's window (the leftover pass)
      SCOPED_TRACE(std::to_string(dim) + "D, speed " + std::to_string(speed));
      const auto one = advection_adjoint_result(1, dim, speed);
      for (int threads : {2, 3, 4})
        EXPECT_TRUE(bitwise_equal(one, advection_adjoint_result(threads, dim, speed))) << threads;
    }
}

TEST(CpuThreads, StepAdjointBitwiseIndependentOfThreadCount) {
  ThreadCountGuard guard;
  auto run = [](int threads) {
    set_cpu_threads(threads);
    const Context ctx = Context::cpu();
    const Grid g = Grid::make_2d(96, 96, 1.0);
    StepConfig cfg;
    cfg.buoyancy = 0.5;
    Simulation<double> sim(ctx, g, cfg);
    SmokeState<double> s(ctx, g);
    fill_random(ctx, s.velocity, 4);
    fill_random(ctx, s.scalars[0], 5);
    SmokeGradient<double> grad(ctx, g, 1);
    fill_random(ctx, grad.velocity, 6);
    fill_random(ctx, grad.scalars[0], 7);
    double gb = 0;
    sim.step_adjoint(s, {}, grad, nullptr, &gb);
    std::vector<double> out = flat(ctx, grad.velocity);
    const auto q = grad.scalars[0].to_vector(ctx);
    out.insert(out.end(), q.begin(), q.end());
    out.push_back(gb);
    return out;
  };
  const auto one = run(1);
  for (int threads : {2, 3, 4})
    EXPECT_TRUE(bitwise_equal(one, run(threads))) << threads;
}
