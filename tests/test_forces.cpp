// Forces and sources: buoyancy, face forces, cell forces, scalar sources.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/forces.hpp"

using namespace dfluid;

namespace {

template <class T>
std::vector<T> ramp(Index n, double a, double b) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (Index t = 0; t < n; ++t)
    v[t] = T(a + b * double(t));
  return v;
}

template <class T>
std::vector<T> random_values(Index n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-1, 1);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v)
    x = T(d(rng));
  return v;
}

// value at (i, j, k) of a contiguous vector of a field with extents e
template <class T>
T at(const std::vector<T>& v, const std::array<int, 3>& e, int i, int j, int k = 0) {
  return v[(std::size_t(k) * e[1] + j) * e[0] + i];
}

}  // namespace

TEST(Buoyancy, AveragesNeighbourCellsAndLeavesWallsAlone) {
  // 3x3 cells, closed walls; y-faces are 3x4: j = 0 and j = 3 are wall faces.
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 3, 1.0);
  MacVelocity<double> u(ctx, g);
  Field<double> s(ctx, g);
  s.assign(ctx, {1, 2, 3,  //
                 4, 5, 6,  //
                 7, 8, 9});
  u[0].assign(ctx, ramp<double>(u[0].size(), 0.5, 1.0));
  u[1].assign(ctx, ramp<double>(u[1].size(), -1.0, 0.25));
  const auto u0 = u[0].to_vector(ctx), u1 = u[1].to_vector(ctx);
  add_buoyancy(ctx, u, s, 2.0, 0.5);  // dt * coef = 1
  EXPECT_EQ(u[0].to_vector(ctx), u0) << "only the up component changes";
  const auto r = u[1].to_vector(ctx);
  const auto e = u[1].extents();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(at(r, e, i, 0), at(u1, e, i, 0)) << "bottom wall face";
    EXPECT_EQ(at(r, e, i, 3), at(u1, e, i, 3)) << "top wall face";
  }
  EXPECT_DOUBLE_EQ(at(r, e, 0, 1), at(u1, e, 0, 1) + 0.5 * (1 + 4));
  EXPECT_DOUBLE_EQ(at(r, e, 2, 1), at(u1, e, 2, 1) + 0.5 * (3 + 6));
  EXPECT_DOUBLE_EQ(at(r, e, 1, 2), at(u1, e, 1, 2) + 0.5 * (5 + 8));
}

TEST(Buoyancy, OpenAndPeriodicBoundaryFaces) {
  Context ctx = Context::cpu();
  // Open top: the top boundary face takes the one adjacent cell.
  Grid g = Grid::make_2d(2, 3, 1.0);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  MacVelocity<double> u(ctx, g);
  Field<double> s(ctx, g);
  s.assign(ctx, {1, 2, 3, 4, 5, 6});
  add_buoyancy(ctx, u, s, 1.0, 1.0);
  auto r = u[1].to_vector(ctx);
  auto e = u[1].extents();
  EXPECT_EQ(at(r, e, 0, 0), 0.0);
  EXPECT_EQ(at(r, e, 1, 0), 0.0);
  EXPECT_DOUBLE_EQ(at(r, e, 0, 1), 2.0);
  EXPECT_DOUBLE_EQ(at(r, e, 1, 2), 5.0);
  EXPECT_DOUBLE_EQ(at(r, e, 0, 3), 5.0);
  EXPECT_DOUBLE_EQ(at(r, e, 1, 3), 6.0);

  // Periodic up axis: face 0 averages the top and bottom cells.
  Grid p = Grid::make_2d(2, 3, 1.0);
  p.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  MacVelocity<double> up(ctx, p);
  Field<double> sp(ctx, p);
  sp.assign(ctx, {1, 2, 3, 4, 5, 6});
  add_buoyancy(ctx, up, sp, 1.0, 2.0);
  r = up[1].to_vector(ctx);
  e = up[1].extents();
  ASSERT_EQ(e[1], 3);
  EXPECT_DOUBLE_EQ(at(r, e, 0, 0), 2.0 * 0.5 * (5 + 1));
  EXPECT_DOUBLE_EQ(at(r, e, 1, 0), 2.0 * 0.5 * (6 + 2));
  EXPECT_DOUBLE_EQ(at(r, e, 1, 2), 2.0 * 0.5 * (4 + 6));
}

TEST(Buoyancy, OtherUpAxesAndObstacles) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(3, 2, 4, 1.0);
  MacVelocity<float> u(ctx, g);
  Field<float> s(ctx, g);
  s.assign(ctx, ramp<float>(s.size(), 1.0, 1.0));  // s(i,j,k) = 1 + i + 3j + 6k
  ObstacleMask solid(ctx, g);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(solid.size()), 0);
  m[1 + 3 * 0 + 6 * 1] = 1;  // cell (1, 0, 1) is solid
  solid.assign(ctx, m);
  add_buoyancy(ctx, u, s, -1.0f, 1.0f, 2, &solid);
  const auto r = u[2].to_vector(ctx);
  const auto e = u[2].extents();  // 3 x 2 x 5
  auto sv = [](int i, int j, int k) { return float(1 + i + 3 * j + 6 * k); };
  for (int k = 0; k <= 4; ++k)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < 3; ++i) {
        const bool wall = k == 0 || k == 4;
        const bool touches = i == 1 && j == 0 && (k == 1 || k == 2);
        const float expect = (wall || touches) ? 0.f : -0.5f * (sv(i, j, k - 1) + sv(i, j, k));
        EXPECT_FLOAT_EQ(at(r, e, i, j, k), expect) << i << " " << j << " " << k;
      }
  EXPECT_EQ(max_abs(ctx, u[0]), 0.0);
  EXPECT_EQ(max_abs(ctx, u[1]), 0.0);

  // up_axis = 0 in 2D
  Grid g2 = Grid::make_2d(3, 2, 1.0);
  MacVelocity<double> v(ctx, g2);
  Field<double> s2(ctx, g2);
  s2.assign(ctx, {1, 2, 3, 4, 5, 6});
  add_buoyancy(ctx, v, s2, 1.0, 1.0, 0);
  const auto rx = v[0].to_vector(ctx);
  EXPECT_EQ(rx, (std::vector<double>{0, 1.5, 2.5, 0, 0, 4.5, 5.5, 0}));
}

TEST(Buoyancy, SmokePlumeConvention) {
  // PBDL smoke plume (reference README section 3): buoyancy smoke * (0, 1) at the
  // velocity faces, dt = 1, on 32 x 40 closed walls.
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(32, 40, 1.0);
  MacVelocity<double> u(ctx, g);
  Field<double> smoke(ctx, g);
  const auto sv = random_values<double>(smoke.size(), 9);
  smoke.assign(ctx, sv);
  add_buoyancy(ctx, u, smoke, 1.0, 1.0);
  const auto r = u[1].to_vector(ctx);
  const auto e = u[1].extents();
  for (int j = 0; j <= 40; ++j)
    for (int i = 0; i < 32; ++i) {
      const double expect =
          (j == 0 || j == 40) ? 0.0 : 0.5 * (sv[(j - 1) * 32 + i] + sv[j * 32 + i]);
      ASSERT_DOUBLE_EQ(at(r, e, i, j), expect);
    }
  EXPECT_EQ(max_abs(ctx, u[0]), 0.0);
}

TEST(Buoyancy, RejectsBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(4, 3, 1.0);
  MacVelocity<double> u(ctx, g);
  Field<double> s(ctx, g), wrong(ctx, Grid::make_2d(3, 4, 1.0)), faces(ctx, g, Location::FaceX);
  auto expect_msg = [](auto&& fn, const char* word) {
    try {
      fn();
      ADD_FAILURE() << "no exception, expected one naming " << word;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { add_buoyancy(ctx, u, s, 1.0, 1.0, 2); }, "up_axis");
  expect_msg([&] { add_buoyancy(ctx, u, s, 1.0, 1.0, -1); }, "up_axis");
  expect_msg([&] { add_buoyancy(ctx, u, s, std::nan(""), 1.0); }, "coef");
  expect_msg([&] { add_buoyancy(ctx, u, s, 1.0, 0.0); }, "dt");
  expect_msg([&] { add_buoyancy(ctx, u, s, 1.0, std::nan("")); }, "dt");
  expect_msg([&] { add_buoyancy(ctx, u, wrong, 1.0, 1.0); }, "scalar");
  expect_msg([&] { add_buoyancy(ctx, u, faces, 1.0, 1.0); }, "scalar");
  ObstacleMask bad_mask(ctx, Grid::make_2d(4, 4, 1.0));
  expect_msg([&] { add_buoyancy(ctx, u, s, 1.0, 1.0, 1, &bad_mask); }, "obstacles");
  MacVelocity<double> empty;
  EXPECT_THROW(add_buoyancy(ctx, empty, s, 1.0, 1.0), ShapeMismatch);
}

TEST(Force, AddsOnEveryFaceExceptFacesTouchingSolids) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 3, 1.0);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  MacVelocity<double> u(ctx, g), f(ctx, g);
  for (int a = 0; a < 2; ++a) {
    u[a].assign(ctx, random_values<double>(u[a].size(), 1 + a));
    f[a].assign(ctx, random_values<double>(f[a].size(), 5 + a));
  }
  const auto u0 = u[0].to_vector(ctx), u1 = u[1].to_vector(ctx);
  const auto f0 = f[0].to_vector(ctx), f1 = f[1].to_vector(ctx);
  add_force(ctx, u, f, 0.25);
  const auto r0 = u[0].to_vector(ctx), r1 = u[1].to_vector(ctx);
  for (std::size_t t = 0; t < r0.size(); ++t)
    EXPECT_DOUBLE_EQ(r0[t], u0[t] + 0.25 * f0[t]);
  for (std::size_t t = 0; t < r1.size(); ++t)
    EXPECT_DOUBLE_EQ(r1[t], u1[t] + 0.25 * f1[t]);

  // Solid cell (0, 1): x-faces (0,1) (periodic: between cells 2 and 0) and (1,1);
  // y-faces (0,1) and (0,2) are untouched.
  ObstacleMask solid(ctx, g);
  solid.assign(ctx, {0, 0, 0, 1, 0, 0, 0, 0, 0});
  u[0].assign(ctx, u0);
  u[1].assign(ctx, u1);
  add_force(ctx, u, f, 0.25, &solid);
  const auto s0 = u[0].to_vector(ctx), s1 = u[1].to_vector(ctx);
  const auto e0 = u[0].extents(), e1 = u[1].extents();
  ASSERT_EQ(e0, (std::array<int, 3>{3, 3, 1}));
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 3; ++i) {
      const bool touch = j == 1 && (i == 0 || i == 1);
      EXPECT_DOUBLE_EQ(at(s0, e0, i, j),
                       at(u0, e0, i, j) + (touch ? 0.0 : 0.25 * at(f0, e0, i, j)));
    }
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) {
      const bool touch = i == 0 && (j == 1 || j == 2);
      EXPECT_DOUBLE_EQ(at(s1, e1, i, j),
                       at(u1, e1, i, j) + (touch ? 0.0 : 0.25 * at(f1, e1, i, j)));
    }
}

TEST(Force, CellVectorForceAndBadInput) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_1d(5, 0.1);
  CellVector<float> u(ctx, g), f(ctx, g);
  u[0].assign(ctx, {1, 2, 3, 4, 5});
  f[0].assign(ctx, {1, -1, 2, -2, 0});
  add_force(ctx, u, f, 0.5f);
  EXPECT_EQ(u[0].to_vector(ctx), (std::vector<float>{1.5f, 1.5f, 4, 3, 5}));
  ObstacleMask solid(ctx, g);
  solid.assign(ctx, {0, 0, 1, 0, 0});
  add_force(ctx, u, f, 0.5f, &solid);
  EXPECT_EQ(u[0].to_vector(ctx), (std::vector<float>{2, 1, 4, 2, 5}));
  EXPECT_THROW(add_force(ctx, u, f, -0.5f), InvalidArgument);
  CellVector<float> other(ctx, Grid::make_1d(6, 0.1));
  EXPECT_THROW(add_force(ctx, u, other, 0.5f), ShapeMismatch);

  Grid g2 = Grid::make_2d(3, 3, 1.0);
  MacVelocity<double> a(ctx, g2), b(ctx, Grid::make_2d(3, 4, 1.0));
  EXPECT_THROW(add_force(ctx, a, b, 1.0), ShapeMismatch);
  EXPECT_THROW(add_force(ctx, a, a, 0.0), InvalidArgument);
}

TEST(Source, AddsScaledSourceExceptInSolids) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(2, 2, 1.0);
  Field<double> q(ctx, g), s(ctx, g);
  q.assign(ctx, {1, 2, 3, 4});
  s.assign(ctx, {0.5, -1, 0, 2});
  add_source(ctx, q, s, 2.0);
  EXPECT_EQ(q.to_vector(ctx), (std::vector<double>{2, 0, 3, 8}));
  ObstacleMask solid(ctx, g);
  solid.assign(ctx, {1, 0, 0, 0});
  add_source(ctx, q, s, 1.0, &solid);
  EXPECT_EQ(q.to_vector(ctx), (std::vector<double>{2, -1, 3, 10}));
  Field<double> wrong(ctx, Grid::make_2d(2, 3, 1.0));
  EXPECT_THROW(add_source(ctx, q, wrong, 1.0), ShapeMismatch);
  EXPECT_THROW(add_source(ctx, q, s, std::nan("")), InvalidArgument);
  Field<double> faces(ctx, g, Location::FaceY), faces2(ctx, g, Location::FaceY);
  EXPECT_THROW(add_source(ctx, faces, faces2, 1.0), ShapeMismatch);
}

TEST(GpuForces, MatchCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  Grid g = Grid::make_3d(17, 12, 9, 0.5);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
  auto compare = [&](const Field<float>& c, const Field<float>& d) {
    const auto a = c.to_vector(cpu), b = d.to_vector(gpu);
    for (std::size_t t = 0; t < a.size(); ++t)
      ASSERT_NEAR(b[t], a[t], 1e-5 * std::max(1.0f, std::abs(a[t]))) << t;
  };
  MacVelocity<float> uc(cpu, g), fc(cpu, g), ug(gpu, g), fg(gpu, g);
  Field<float> sc(cpu, g), sg(gpu, g), qc(cpu, g), qg(gpu, g);
  ObstacleMask mc(cpu, g), mg(gpu, g);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(mc.size()));
  for (std::size_t t = 0; t < m.size(); ++t)
    m[t] = (t % 13) == 0;
  mc.assign(cpu, m);
  mg.assign(gpu, m);
  for (int a = 0; a < 3; ++a) {
    const auto v = random_values<float>(uc[a].size(), 30 + a);
    const auto w = random_values<float>(fc[a].size(), 40 + a);
    uc[a].assign(cpu, v);
    ug[a].assign(gpu, v);
    fc[a].assign(cpu, w);
    fg[a].assign(gpu, w);
  }
  const auto sv = random_values<float>(sc.size(), 50);
  sc.assign(cpu, sv);
  sg.assign(gpu, sv);
  qc.assign(cpu, sv);
  qg.assign(gpu, sv);
  add_buoyancy(cpu, uc, sc, 0.7f, 0.3f, 1, &mc);
  add_buoyancy(gpu, ug, sg, 0.7f, 0.3f, 1, &mg);
  add_force(cpu, uc, fc, 0.4f, &mc);
  add_force(gpu, ug, fg, 0.4f, &mg);
  add_source(cpu, qc, sc, 0.5f, &mc);
  add_source(gpu, qg, sg, 0.5f, &mg);
  for (int a = 0; a < 3; ++a)
    compare(uc[a], ug[a]);
  compare(qc, qg);
}
