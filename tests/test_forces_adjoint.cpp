// Adjoints of forces and sources: transpose tests for buoyancy (w.r.t. the
// scalar), face and cell forces and scalar sources; the buoyancy coefficient
// gradient (exact and central difference); determinism; GPU-vs-CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/forces.hpp"

#include "adjoint_test_util.hpp"

using namespace dfluid;

namespace {

using dfluid::testing::dotv;
using dfluid::testing::fill_random;
using dfluid::testing::fill_random_vec;

// Every 5th cell solid (a pattern that hits boundary cells too).
void set_obstacles(const Context& ctx, ObstacleMask& m) {
  std::vector<std::uint8_t> v(static_cast<std::size_t>(m.size()));
  for (std::size_t t = 0; t < v.size(); ++t)
    v[t] = (t % 5) == 2;
  m.assign(ctx, v);
}

using dfluid::testing::O;
using dfluid::testing::P;
using dfluid::testing::W;
using dfluid::testing::with_boundary;

std::vector<Grid> grids() {
  std::vector<Grid> gs;
  gs.push_back(with_boundary(Grid::make_1d(2, 0.5), {{P, P}}));  // 2 faces, same 2 cells
  gs.push_back(with_boundary(Grid::make_1d(2, 0.5), {{O, W}}));
  gs.push_back(with_boundary(Grid::make_1d(6, 0.5), {{O, O}}));
  gs.push_back(with_boundary(Grid::make_1d(7, 0.5), {{P, P}}));
  gs.push_back(with_boundary(Grid::make_2d(8, 7, 0.3), {{W, W}, {W, W}}));
  gs.push_back(with_boundary(Grid::make_2d(8, 7, 0.3), {{P, P}, {O, O}}));
  gs.push_back(with_boundary(Grid::make_2d(6, 5, 0.3), {{O, W}, {P, P}}));
  gs.push_back(with_boundary(Grid::make_3d(5, 6, 4, 0.2), {{W, O}, {P, P}, {O, W}}));
  return gs;
}

}  // namespace

TEST(ForcesAdjoint, BuoyancyScalarTranspose) {
  Context ctx = Context::cpu();
  const double coef = 0.7, dt = 0.3;
  for (const Grid& g : grids())
    for (int up = 0; up < g.dim; ++up)
      for (bool obst : {false, true}) {
        const std::string what = g.describe() + " up " + std::to_string(up) + (obst ? " obst" : "");
        ObstacleMask m(ctx, g);
        set_obstacles(ctx, m);
        const ObstacleMask* mp = obst ? &m : nullptr;
        Field<double> x(ctx, g), gs(ctx, g);
        MacVelocity<double> jx(ctx, g), y(ctx, g);
        fill_random(ctx, x, 1);
        fill_random_vec(ctx, y, 2);
        add_buoyancy(ctx, jx, x, coef, dt, up, mp);  // J x: buoyancy on a zero velocity
        add_buoyancy_adjoint(ctx, y, coef, dt, gs, up, mp);
        const double lhs = dotv(ctx, jx, y), rhs = dot(ctx, x, gs);
        EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << what << ": " << lhs << " " << rhs;
        if (!obst) {
          EXPECT_GT(std::abs(lhs), 1e-3) << what;
        }
      }
}

TEST(ForcesAdjoint, BuoyancyCoefGradientExactAndCentralDifference) {
  Context ctx = Context::cpu();
  const double coef = 0.7, dt = 0.3;
  for (const Grid& g : grids())
    for (int up = 0; up < g.dim; ++up) {
      ObstacleMask m(ctx, g);
      set_obstacles(ctx, m);
      Field<double> s(ctx, g);
      MacVelocity<double> y(ctx, g), u0(ctx, g), jc(ctx, g);
      fill_random(ctx, s, 3);
      fill_random_vec(ctx, y, 4);
      fill_random_vec(ctx, u0, 5);
      const double an = add_buoyancy_coef_gradient(ctx, y, s, dt, up, &m);
      // Exact: the derivative of u + dt coef S s w.r.t. coef is dt S s, i.e. the
      // operator with coef = 1 applied to a zero velocity.
      add_buoyancy(ctx, jc, s, 1.0, dt, up, &m);
      const double exact = dotv(ctx, jc, y);
      EXPECT_NEAR(an, exact, 1e-13 * std::max(1.0, std::abs(exact))) << g.describe();
      // Central difference of <add_buoyancy(u0, s, coef), y>.
      const double h = 1e-3;
      MacVelocity<double> up_(ctx, g), um(ctx, g);
      copy(ctx, u0, up_);
      copy(ctx, u0, um);
      add_buoyancy(ctx, up_, s, coef + h, dt, up, &m);
      add_buoyancy(ctx, um, s, coef - h, dt, up, &m);
      const double fd = (dotv(ctx, up_, y) - dotv(ctx, um, y)) / (2 * h);
      EXPECT_NEAR(an, fd, 1e-9 * std::max(1.0, std::abs(fd))) << g.describe();
    }
}

TEST(ForcesAdjoint, BuoyancyGathersWithForwardWeights) {
  // 1D, Open below, Wall above: face 0 samples cell 0 with weight 1, interior
  // faces average, the top (wall) face is left alone.
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_1d(3, 1.0), {{O, W}});
  MacVelocity<double> y(ctx, g);
  y[0].assign(ctx, {1.0, 10.0, 100.0, 1000.0});
  Field<double> gs(ctx, g);
  gs.assign(ctx, {5.0, 5.0, 5.0});  // accumulates
  add_buoyancy_adjoint(ctx, y, 2.0, 0.5, gs, 0);
  const auto v = gs.to_vector(ctx);
  EXPECT_DOUBLE_EQ(v[0], 5 + 1.0 * (1.0 + 0.5 * 10.0));
  EXPECT_DOUBLE_EQ(v[1], 5 + 1.0 * (0.5 * 10.0 + 0.5 * 100.0));
  EXPECT_DOUBLE_EQ(v[2], 5 + 1.0 * (0.5 * 100.0));
}

TEST(ForcesAdjoint, ForceAndSourceTranspose) {
  Context ctx = Context::cpu();
  const double dt = 0.4;
  for (const Grid& g : grids())
    for (bool obst : {false, true}) {
      ObstacleMask m(ctx, g);
      set_obstacles(ctx, m);
      const ObstacleMask* mp = obst ? &m : nullptr;
      {
        MacVelocity<double> x(ctx, g), jx(ctx, g), y(ctx, g), gf(ctx, g);
        fill_random_vec(ctx, x, 6);
        fill_random_vec(ctx, y, 7);
        add_force(ctx, jx, x, dt, mp);
        add_force_adjoint(ctx, y, dt, gf, mp);
        const double lhs = dotv(ctx, jx, y), rhs = dotv(ctx, x, gf);
        EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << g.describe();
      }
      if (g.dim <= 2) {
        CellVector<double> x(ctx, g), jx(ctx, g), y(ctx, g), gf(ctx, g);
        fill_random_vec(ctx, x, 8);
        fill_random_vec(ctx, y, 9);
        add_force(ctx, jx, x, dt, mp);
        add_force_adjoint(ctx, y, dt, gf, mp);
        const double lhs = dotv(ctx, jx, y), rhs = dotv(ctx, x, gf);
        EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << g.describe();
      }
      {
        Field<double> x(ctx, g), jx(ctx, g), y(ctx, g), gsrc(ctx, g);
        fill_random(ctx, x, 10);
        fill_random(ctx, y, 11);
        add_source(ctx, jx, x, dt, mp);
        add_source_adjoint(ctx, y, dt, gsrc, mp);
        const double lhs = dot(ctx, jx, y), rhs = dot(ctx, x, gsrc);
        EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::abs(lhs)) << g.describe();
      }
    }
}

TEST(ForcesAdjoint, SolidsGetNoGradientAndBadInputThrows) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_2d(4, 3, 0.5), {{W, W}, {W, W}});
  ObstacleMask m(ctx, g);
  std::vector<std::uint8_t> mv(12, 0);
  mv[5] = 1;  // cell (1, 1)
  m.assign(ctx, mv);
  Field<double> y(ctx, g), gs(ctx, g);
  fill(ctx, y, 1.0);
  add_source_adjoint(ctx, y, 0.5, gs, &m);
  const auto v = gs.to_vector(ctx);
  for (int t = 0; t < 12; ++t)
    EXPECT_DOUBLE_EQ(v[t], t == 5 ? 0.0 : 0.5);
  MacVelocity<double> gu(ctx, g), gf(ctx, g);
  fill(ctx, gu, 1.0);
  add_force_adjoint(ctx, gu, 1.0, gf, &m);
  const auto fx = gf[0].to_vector(ctx);  // 5 x 3 faces; (1,1) and (2,1) touch cell (1,1)
  EXPECT_DOUBLE_EQ(fx[1 * 5 + 1], 0.0);
  EXPECT_DOUBLE_EQ(fx[1 * 5 + 2], 0.0);
  EXPECT_DOUBLE_EQ(fx[1 * 5 + 3], 1.0);
  EXPECT_THROW(add_buoyancy_adjoint(ctx, gu, 1.0, 0.1, gs, 2), InvalidArgument);
  EXPECT_THROW(add_buoyancy_adjoint(ctx, gu, std::nan(""), 0.1, gs, 1), InvalidArgument);
  EXPECT_THROW(add_buoyancy_coef_gradient(ctx, gu, gs, -0.1, 1), InvalidArgument);
  Field<double> wrong(ctx, Grid::make_2d(3, 3, 0.5));
  EXPECT_THROW(add_buoyancy_adjoint(ctx, gu, 1.0, 0.1, wrong, 1), ShapeMismatch);
  EXPECT_THROW(add_source_adjoint(ctx, y, 0.1, wrong), ShapeMismatch);
}

TEST(ForcesAdjoint, DeterministicBitwise) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_3d(9, 8, 7, 0.2), {{W, O}, {P, P}, {O, W}});
  ObstacleMask m(ctx, g);
  set_obstacles(ctx, m);
  MacVelocity<double> y(ctx, g);
  Field<double> s(ctx, g);
  fill_random_vec(ctx, y, 12);
  fill_random(ctx, s, 13);
  std::vector<double> out[2];
  double c[2];
  for (int r = 0; r < 2; ++r) {
    Field<double> gs(ctx, g);
    add_buoyancy_adjoint(ctx, y, 0.7, 0.3, gs, 2, &m);
    out[r] = gs.to_vector(ctx);
    c[r] = add_buoyancy_coef_gradient(ctx, y, s, 0.3, 2, &m);
  }
  EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(double)));
  EXPECT_EQ(0, std::memcmp(&c[0], &c[1], sizeof(double)));
}

TEST(GpuForcesAdjoint, MatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  const Grid g = with_boundary(Grid::make_3d(17, 12, 9, 0.5), {{P, P}, {W, O}, {O, W}});
  ObstacleMask mc(cpu, g), mg(gpu, g);
  set_obstacles(cpu, mc);
  set_obstacles(gpu, mg);
  MacVelocity<double> yc(cpu, g), yg(gpu, g), fc(cpu, g), fg(gpu, g);
  Field<double> sc(cpu, g), sg(gpu, g), bc(cpu, g), bg(gpu, g), qc(cpu, g), qg(gpu, g);
  fill_random_vec(cpu, yc, 14);
  fill_random_vec(gpu, yg, 14);
  fill_random(cpu, sc, 15);
  fill_random(gpu, sg, 15);
  add_buoyancy_adjoint(cpu, yc, 0.7, 0.3, bc, 1, &mc);
  add_buoyancy_adjoint(gpu, yg, 0.7, 0.3, bg, 1, &mg);
  add_force_adjoint(cpu, yc, 0.4, fc, &mc);
  add_force_adjoint(gpu, yg, 0.4, fg, &mg);
  add_source_adjoint(cpu, sc, 0.5, qc, &mc);
  add_source_adjoint(gpu, sg, 0.5, qg, &mg);
  auto same = [&](const Field<double>& a, const Field<double>& b) {
    const auto x = a.to_vector(cpu), y = b.to_vector(gpu);
    for (std::size_t t = 0; t < x.size(); ++t)
      ASSERT_NEAR(y[t], x[t], 1e-14) << t;
  };
  same(bc, bg);
  same(qc, qg);
  for (int a = 0; a < 3; ++a)
    same(fc[a], fg[a]);
  EXPECT_NEAR(add_buoyancy_coef_gradient(gpu, yg, sg, 0.3, 1, &mg),
              add_buoyancy_coef_gradient(cpu, yc, sc, 0.3, 1, &mc), 1e-11);
}
