// Adjoints of diffusion: transpose tests <J x, y> = <x, J^T y> for the explicit
// and implicit steps (scalars, cell vectors, MAC velocities), the nu gradient,
// accumulation, determinism, and GPU-vs-CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/diffusion.hpp"

#include "adjoint_test_util.hpp"

using namespace dfluid;

namespace {

using dfluid::testing::dotv;
using dfluid::testing::fill_random;
using dfluid::testing::fill_random_vec;

// Makes a zeroed container like the given one.
Field<double> like(const Context& ctx, const Field<double>& f) {
  return Field<double>(ctx, f.grid(), f.location());
}
MacVelocity<double> like(const Context& ctx, const MacVelocity<double>& u) {
  return MacVelocity<double>(ctx, u.grid());
}
CellVector<double> like(const Context& ctx, const CellVector<double>& u) {
  return CellVector<double>(ctx, u.grid());
}

// |<J x, y> - <x, J^T y>| <= tol * |<J x, y>|, with J x = fwd(x), J^T y = adj(y)
// accumulated into a zero field.
template <class V>
void expect_transpose(const Context& ctx, const V& proto,
                      const std::function<void(const V&, V&)>& fwd,
                      const std::function<void(const V&, V&)>& adj, double tol,
                      const std::string& what) {
  V x = like(ctx, proto), y = like(ctx, proto), jx = like(ctx, proto), jty = like(ctx, proto);
  fill_random(ctx, x, 11);
  fill_random(ctx, y, 23);
  fwd(x, jx);
  adj(y, jty);
  const double lhs = dotv(ctx, jx, y), rhs = dotv(ctx, x, jty);
  EXPECT_LE(std::abs(lhs - rhs), tol * std::abs(lhs)) << what << ": " << lhs << " vs " << rhs;
  EXPECT_GT(std::abs(lhs), 1e-3) << what;  // a non-degenerate check
}

using dfluid::testing::O;
using dfluid::testing::P;
using dfluid::testing::W;
using dfluid::testing::with_boundary;

std::vector<Grid> mac_grids() {
  std::vector<Grid> gs;
  const Grid g1 = Grid::make_1d(13, 0.2), g2 = Grid::make_2d(9, 7, 0.3),
             g3 = Grid::make_3d(5, 6, 4, 0.25);
  for (const Grid& g : {g1, g2, g3}) {
    gs.push_back(with_boundary(g, {{W, W}, {W, W}, {W, W}}));
    gs.push_back(with_boundary(g, {{O, O}, {O, O}, {O, O}}));
    gs.push_back(with_boundary(g, {{P, P}, {P, P}, {P, P}}));
    gs.push_back(with_boundary(g, {{W, O}, {P, P}, {O, W}}));
  }
  gs.push_back(with_boundary(Grid::make_1d(2, 0.5), {{W, W}}));  // one free face
  gs.push_back(with_boundary(Grid::make_1d(2, 0.5), {{W, O}}));
  gs.push_back(with_boundary(Grid::make_2d(2, 3, 0.5), {{W, W}, {O, W}}));
  return gs;
}

ScalarBoundary mixed_bc(double v) {
  ScalarBoundary bc;
  bc.kind[0] = {ScalarBoundaryKind::Fixed, ScalarBoundaryKind::ZeroGradient};
  bc.kind[1] = {ScalarBoundaryKind::ZeroGradient, ScalarBoundaryKind::Fixed};
  bc.kind[2] = {ScalarBoundaryKind::Fixed, ScalarBoundaryKind::Fixed};
  bc.value[0] = {v, 0};
  bc.value[1] = {0, -v};
  bc.value[2] = {0.5 * v, v};
  return bc;
}

std::vector<std::pair<Grid, ScalarBoundary>> scalar_cases() {
  std::vector<std::pair<Grid, ScalarBoundary>> cs;
  const Grid g1 = Grid::make_1d(17, 0.1), g2 = Grid::make_2d(11, 8, 0.2),
             g3 = Grid::make_3d(6, 5, 4, 0.3);
  for (const Grid& g : {g1, g2, g3}) {
    cs.push_back({with_boundary(g, {{W, W}, {W, W}, {W, W}}), ScalarBoundary::zero_gradient()});
    cs.push_back({with_boundary(g, {{P, P}, {P, P}, {P, P}}), ScalarBoundary::zero_gradient()});
    // Fixed sides with value 0: exactly the linear part.
    cs.push_back({with_boundary(g, {{W, O}, {O, W}, {W, W}}), ScalarBoundary::fixed(0)});
    cs.push_back({with_boundary(g, {{W, O}, {P, P}, {O, O}}), mixed_bc(0)});
  }
  return cs;
}

// nu*dt/dx^2 = ratio
double nu_for(const Grid& g, double dt, double ratio) {
  return ratio * g.dx * g.dx / dt;
}

SolverOptions tight() {
  SolverOptions o;
  o.rel_tol = 1e-13;
  o.max_iterations = 2000;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------
// Explicit

TEST(DiffusionAdjoint, ExplicitScalarTranspose) {
  Context ctx = Context::cpu();
  for (const auto& [g, bc] : scalar_cases()) {
    const double dt = 0.1, nu = nu_for(g, dt, 0.9 / (2 * g.dim));
    Field<double> proto(ctx, g);
    expect_transpose<Field<double>>(
        ctx, proto,
        [&](const Field<double>& x, Field<double>& o) { diffuse_explicit(ctx, x, nu, dt, o, bc); },
        [&](const Field<double>& y, Field<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o, bc);
        },
        1e-12, g.describe());
  }
}

TEST(DiffusionAdjoint, ExplicitCellVectorTranspose) {
  Context ctx = Context::cpu();
  for (const auto& [g, bc] : scalar_cases()) {
    if (g.dim > 2) continue;
    const double dt = 0.1, nu = nu_for(g, dt, 0.2);
    CellVector<double> proto(ctx, g);
    expect_transpose<CellVector<double>>(
        ctx, proto,
        [&](const CellVector<double>& x, CellVector<double>& o) {
          diffuse_explicit(ctx, x, nu, dt, o, bc);
        },
        [&](const CellVector<double>& y, CellVector<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o, bc);
        },
        1e-12, g.describe());
  }
}

TEST(DiffusionAdjoint, ExplicitMacTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : mac_grids()) {
    const double dt = 0.05, nu = nu_for(g, dt, 0.9 / (2 * g.dim));
    MacVelocity<double> proto(ctx, g);
    expect_transpose<MacVelocity<double>>(
        ctx, proto,
        [&](const MacVelocity<double>& x, MacVelocity<double>& o) {
          diffuse_explicit(ctx, x, nu, dt, o);
        },
        [&](const MacVelocity<double>& y, MacVelocity<double>& o) {
          diffuse_explicit_adjoint(ctx, y, nu, dt, o);
        },
        1e-12, g.describe());
  }
}

// Column by column on a tiny walled grid: the adjoint equals the transposed
// Jacobian entry for entry, held faces included (they pass their own cotangent
// straight through and gather from the free faces that read them).
TEST(DiffusionAdjoint, ExplicitMacHeldFacesEntrywise) {
  Context ctx = Context::cpu();
  const Grid g = with_boundary(Grid::make_2d(3, 2, 0.5), {{W, O}, {W, W}});
  const double dt = 0.1, nu = nu_for(g, dt, 0.2), r = nu * dt / (g.dx * g.dx);
  for (int comp = 0; comp < 2; ++comp) {
    const auto e = g.face_extents(comp);
    const int n = e[0] * e[1];
    std::vector<std::vector<double>> J(n, std::vector<double>(n)), JT(n, std::vector<double>(n));
    for (int c = 0; c < n; ++c) {
      MacVelocity<double> x(ctx, g), o(ctx, g), gi(ctx, g);
      std::vector<double> v(n, 0.0);
      v[c] = 1;
      x[comp].assign(ctx, v);
      diffuse_explicit(ctx, x, nu, dt, o);
      diffuse_explicit_adjoint(ctx, x, nu, dt, gi);
      const auto jo = o[comp].to_vector(ctx), jg = gi[comp].to_vector(ctx);
      for (int rr = 0; rr < n; ++rr) {
        J[rr][c] = jo[rr];   // column c of J
        JT[rr][c] = jg[rr];  // column c of J^T
      }
    }
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        EXPECT_NEAR(JT[a][b], J[b][a], 1e-15) << comp << " " << a << " " << b;
    if (comp == 0) {
      // x faces: the low side is a Wall (face 0 held), the high side Open.
      // Held face (0, 0): d out(1,0) / d in(0,0) = r (read as a Dirichlet value),
      // so its cotangent gathers r * g(1,0) besides its own g(0,0).
      const int h = 0, f = 1;  // (0,0) and (1,0) in the 4x2 face grid
      EXPECT_DOUBLE_EQ(JT[h][h], 1.0);
      EXPECT_NEAR(JT[h][f], r, 1e-15);
      EXPECT_NEAR(J[h][f], 0.0, 0.0);  // the held face itself is not diffused
    }
  }
}

TEST(DiffusionAdjoint, AffinePartsDoNotEnterAndGradAccumulates) {
  Context ctx = Context::cpu();
  Grid g = with_boundary(Grid::make_2d(8, 6, 0.25), {{W, O}, {O, W}});
  const ScalarBoundary bc = mixed_bc(3.0);
  const double dt = 0.1, nu = nu_for(g, dt, 0.2);
  Field<double> x(ctx, g), y(ctx, g), zero(ctx, g), fx(ctx, g), f0(ctx, g), acc(ctx, g),
      plain(ctx, g);
  fill_random(ctx, x, 1);
  fill_random(ctx, y, 2);
  fill_random(ctx, acc, 3);
  const auto acc0 = acc.to_vector(ctx);
  diffuse_explicit(ctx, x, nu, dt, fx, bc);
  diffuse_explicit(ctx, zero, nu, dt, f0, bc);
  axpy(ctx, -1.0, f0, fx);  // J x = f(x) - f(0)
  diffuse_explicit_adjoint(ctx, y, nu, dt, plain, bc);
  const double lhs = dot(ctx, fx, y), rhs = dot(ctx, x, plain);
  EXPECT_NEAR(lhs, rhs, 1e-11 * std::abs(lhs));
  // The same with ZeroGradient in place of Fixed sides is a different operator.
  Field<double> other(ctx, g);
  diffuse_explicit_adjoint(ctx, y, nu, dt, other);
  EXPECT_GT(std::abs(dot(ctx, x, other) - rhs), 1e-6);
  // Accumulation: acc + J^T y.
  diffuse_explicit_adjoint(ctx, y, nu, dt, acc, bc);
  const auto a = acc.to_vector(ctx), p = plain.to_vector(ctx);
  for (std::size_t t = 0; t < a.size(); ++t)
    EXPECT_DOUBLE_EQ(a[t], acc0[t] + p[t]);
}

TEST(DiffusionAdjoint, ExplicitNuGradientMatchesCentralDifference) {
  Context ctx = Context::cpu();
  {
    Grid g = with_boundary(Grid::make_2d(9, 7, 0.2), {{W, O}, {P, P}});
    const ScalarBoundary bc = mixed_bc(2.0);
    const double dt = 0.05, nu = nu_for(g, dt, 0.1), h = 1e-4 * nu;
    Field<double> q(ctx, g), y(ctx, g), op(ctx, g), om(ctx, g);
    fill_random(ctx, q, 4);
    fill_random(ctx, y, 5);
    diffuse_explicit(ctx, q, nu + h, dt, op, bc);
    diffuse_explicit(ctx, q, nu - h, dt, om, bc);
    const double fd = (dot(ctx, op, y) - dot(ctx, om, y)) / (2 * h);
    const double an = diffuse_explicit_nu_gradient(ctx, q, nu, dt, y, bc);
    EXPECT_NEAR(an, fd, 1e-8 * std::abs(fd));
    EXPECT_GT(std::abs(an), 1e-3);
  }
  {
    Grid g = with_boundary(Grid::make_3d(5, 4, 6, 0.3), {{W, W}, {O, W}, {P, P}});
    const double dt = 0.05, nu = nu_for(g, dt, 0.1), h = 1e-4 * nu;
    MacVelocity<double> u(ctx, g), y(ctx, g), op(ctx, g), om(ctx, g);
    fill_random(ctx, u, 6);
    fill_random(ctx, y, 7);
    diffuse_explicit(ctx, u, nu + h, dt, op);
    diffuse_explicit(ctx, u, nu - h, dt, om);
    const double fd = (dotv(ctx, op, y) - dotv(ctx, om, y)) / (2 * h);
    const double an = diffuse_explicit_nu_gradient(ctx, u, nu, dt, y);
    EXPECT_NEAR(an, fd, 1e-8 * std::abs(fd));
  }
}

// ---------------------------------------------------------------------------
// Implicit: both sides solve to rel_tol 1e-13; the test tolerance (1e-11) reflects
// that solve accuracy (condition number x residual), not the exactness of the
// transpose, which the explicit tests pin down at 1e-12.

TEST(DiffusionAdjoint, ImplicitScalarTranspose) {
  Context ctx = Context::cpu();
  for (const auto& [g, bc] : scalar_cases()) {
    const double dt = 0.1, nu = nu_for(g, dt, 3.0);
    Field<double> proto(ctx, g);
    expect_transpose<Field<double>>(
        ctx, proto,
        [&](const Field<double>& x, Field<double>& o) {
          diffuse_implicit(ctx, x, nu, dt, o, bc, tight());
        },
        [&](const Field<double>& y, Field<double>& o) {
          const SolveReport r = diffuse_implicit_adjoint(ctx, y, nu, dt, o, bc, tight());
          EXPECT_TRUE(r.converged);
          EXPECT_GT(r.iterations, 0);
        },
        1e-11, g.describe());
  }
}

TEST(DiffusionAdjoint, ImplicitCellVectorTranspose) {
  Context ctx = Context::cpu();
  for (const auto& [g, bc] : scalar_cases()) {
    if (g.dim > 2) continue;
    const double dt = 0.1, nu = nu_for(g, dt, 2.0);
    CellVector<double> proto(ctx, g);
    expect_transpose<CellVector<double>>(
        ctx, proto,
        [&](const CellVector<double>& x, CellVector<double>& o) {
          diffuse_implicit(ctx, x, nu, dt, o, bc, tight());
        },
        [&](const CellVector<double>& y, CellVector<double>& o) {
          diffuse_implicit_adjoint(ctx, y, nu, dt, o, bc, tight());
        },
        1e-11, g.describe());
  }
}

TEST(DiffusionAdjoint, ImplicitMacTranspose) {
  Context ctx = Context::cpu();
  for (const Grid& g : mac_grids()) {
    for (Preconditioner pc : {Preconditioner::Jacobi, Preconditioner::None}) {
      const double dt = 0.05, nu = nu_for(g, dt, 4.0);
      SolverOptions o = tight();
      o.preconditioner = pc;
      MacVelocity<double> proto(ctx, g);
      expect_transpose<MacVelocity<double>>(
          ctx, proto,
          [&](const MacVelocity<double>& x, MacVelocity<double>& out) {
            diffuse_implicit(ctx, x, nu, dt, out, o);
          },
          [&](const MacVelocity<double>& y, MacVelocity<double>& out) {
            const SolveReport r = diffuse_implicit_adjoint(ctx, y, nu, dt, out, o);
            EXPECT_TRUE(r.converged);
          },
          1e-11, g.describe() + " " + to_string(pc));
    }
  }
}

TEST(DiffusionAdjoint, ImplicitReportsAndThrowsLikeForward) {
  Context ctx = Context::cpu();
  Grid g = with_boundary(Grid::make_2d(16, 16, 0.1), {{W, W}, {W, W}});
  MacVelocity<double> y(ctx, g), gi(ctx, g);
  fill_random(ctx, y, 9);
  SolverOptions o;
  o.max_iterations = 2;
  EXPECT_THROW(diffuse_implicit_adjoint(ctx, y, 1.0, 1.0, gi, o), SolverNotConverged);
  o.throw_on_failure = false;
  const SolveReport r = diffuse_implicit_adjoint(ctx, y, 1.0, 1.0, gi, o);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.iterations, 2);
  EXPECT_GT(r.residual, 0);
  // Aliasing and shape errors.
  Field<double> s(ctx, g), s2(ctx, Grid::make_2d(5, 5, 0.1));
  EXPECT_THROW(diffuse_explicit_adjoint(ctx, s, 0.01, 0.1, s), InvalidArgument);
  EXPECT_THROW(diffuse_implicit_adjoint(ctx, s, 0.01, 0.1, s2), ShapeMismatch);
  EXPECT_THROW(diffuse_explicit_adjoint(ctx, s, 100.0, 1.0, s2), ShapeMismatch);
  Field<double> s3(ctx, g);
  EXPECT_THROW(diffuse_explicit_adjoint(ctx, s, 100.0, 1.0, s3), UnstableTimeStep);
}

TEST(DiffusionAdjoint, DeterministicBitwise) {
  Context ctx = Context::cpu();
  Grid g = with_boundary(Grid::make_3d(7, 6, 5, 0.2), {{W, O}, {P, P}, {O, W}});
  MacVelocity<double> y(ctx, g);
  fill_random(ctx, y, 10);
  std::vector<std::vector<double>> runs[2];
  for (int r = 0; r < 2; ++r) {
    MacVelocity<double> a(ctx, g), b(ctx, g);
    diffuse_explicit_adjoint(ctx, y, 0.01, 0.05, a);
    diffuse_implicit_adjoint(ctx, y, 0.5, 0.05, b);
    for (int c = 0; c < 3; ++c) {
      runs[r].push_back(a[c].to_vector(ctx));
      runs[r].push_back(b[c].to_vector(ctx));
    }
  }
  for (std::size_t t = 0; t < runs[0].size(); ++t)
    EXPECT_EQ(
        0, std::memcmp(runs[0][t].data(), runs[1][t].data(), runs[0][t].size() * sizeof(double)));
}

TEST(GpuDiffusionAdjoint, MatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  Grid g = with_boundary(Grid::make_3d(17, 12, 9, 0.5), {{P, P}, {W, O}, {O, W}});
  MacVelocity<double> yc(cpu, g), yg(gpu, g), ec(cpu, g), eg(gpu, g), ic(cpu, g), ig(gpu, g);
  fill_random(cpu, yc, 12);
  fill_random(gpu, yg, 12);
  const double nu = 0.3, dt = 0.1;
  diffuse_explicit_adjoint(cpu, yc, nu, dt, ec);
  diffuse_explicit_adjoint(gpu, yg, nu, dt, eg);
  diffuse_implicit_adjoint(cpu, yc, nu, dt, ic, tight());
  diffuse_implicit_adjoint(gpu, yg, nu, dt, ig, tight());
  for (int a = 0; a < 3; ++a) {
    const auto e1 = ec[a].to_vector(cpu), e2 = eg[a].to_vector(gpu);
    const auto i1 = ic[a].to_vector(cpu), i2 = ig[a].to_vector(gpu);
    for (std::size_t t = 0; t < e1.size(); ++t) {
      ASSERT_NEAR(e2[t], e1[t], 1e-13) << a << " " << t;
      ASSERT_NEAR(i2[t], i1[t], 1e-10) << a << " " << t;
    }
  }
  EXPECT_NEAR(diffuse_explicit_nu_gradient(gpu, yg, nu, dt, yg),
              diffuse_explicit_nu_gradient(cpu, yc, nu, dt, yc), 1e-9);
}
