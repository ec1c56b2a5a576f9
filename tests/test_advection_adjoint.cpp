// Advection adjoints (advect_adjoint) and tangents (advect_tangent): transpose
// (dot-product) tests in double for the joint linearization in (q, u), the
// tangent against central differences of the forward, self-advection (both
// paths summed), accumulation semantics, argument checks and run-to-run
// determinism.
//
// Tolerances:
//  * w.r.t. q, where advection is linear in q (semi-Lagrangian, MacCormack
//    without the clamp; Fixed boundaries: the linear part F(x) - F(0)), the
//    forward itself is J: |<J x, y> - <x, J^T y>| <= 1e-12 |<J x, y>|
//    (x, y >= 0: no cancellation).
//  * MacCormack with the clamp is piecewise linear and positively homogeneous
//    in q (ZeroGradient sides), so <F(q), y> = <q, J(q)^T y> holds exactly
//    (Euler's theorem; same 1e-12 tolerance).
//  * Jointly in (q, u): J (dq, du) from the exact tangent (advect_tangent),
//    J^T y from the adjoint, both at the same point: 1e-12 relative. The two
//    take the same branch at every kink, so they are transposes of each other
//    everywhere, not only away from kinks.
//  * The tangent itself against central differences of the forward with
//    eps = 1e-6 along a random direction: the forward is piecewise polynomial
//    in eps (degree <= 2 D for RK2), so the truncation error is O(eps^2) and
//    round-off O(1e-16 / eps); we allow 1e-7 relative. Kinks (a departure
//    point crossing a cell centre or face, a clamp switching) have
//    probability O(eps) per sample for these random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "advection_test_util.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;
using namespace dfluid::testing::advection;

namespace {

struct Case {
  int dim;
  BoundaryKind boundary;
  AdvectionScheme scheme;
  Backtrace backtrace;
  bool clamp;
  bool fixed_scalar;
  Interpolation interpolation = Interpolation::Linear;
  std::string name() const {
    return std::to_string(dim) + "D " + to_string(boundary) + " " + to_string(scheme) + " " +
           to_string(backtrace) + (clamp ? " clamp" : " noclamp") +
           (fixed_scalar ? " fixed" : " zerograd") + " " + to_string(interpolation);
  }
  AdvectionOptions options() const {
    AdvectionOptions o;
    o.scheme = scheme;
    o.backtrace = backtrace;
    o.maccormack_clamp = clamp;
    o.interpolation = interpolation;
    o.boundary = fixed_scalar ? ScalarBoundary::fixed(0.7) : ScalarBoundary::zero_gradient();
    if (fixed_scalar) o.boundary.value[0][1] = -0.3;
    return o;
  }
  bool linear_in_q() const { return scheme == AdvectionScheme::SemiLagrangian || !clamp; }
};

std::vector<Case> all_cases(Interpolation in = Interpolation::Linear) {
  std::vector<Case> cs;
  for (int dim = 1; dim <= 3; ++dim)
    for (BoundaryKind b : {BoundaryKind::Wall, BoundaryKind::Open, BoundaryKind::Periodic})
      for (Backtrace bt : {Backtrace::Euler, Backtrace::RK2}) {
        cs.push_back({dim, b, AdvectionScheme::SemiLagrangian, bt, true, false});
        cs.push_back({dim, b, AdvectionScheme::MacCormack, bt, false, false});
        cs.push_back({dim, b, AdvectionScheme::MacCormack, bt, true, false});
        if (b != BoundaryKind::Periodic) {
          cs.push_back({dim, b, AdvectionScheme::SemiLagrangian, bt, true, true});
          cs.push_back({dim, b, AdvectionScheme::MacCormack, bt, false, true});
        }
      }
  for (Case& c : cs)
    c.interpolation = in;
  return cs;
}

/// Forward / adjoint adaptors for the three kinds of advected field.
template <class Q, class U>
struct Ops {
  static void fwd(const Context& ctx, const Q& q, const U& u, Q& out, const AdvectionOptions& o) {
    advect(ctx, q, u, kDt, out, o);
  }
  static void adj(const Context& ctx, const Q& q, const U& u, const Q& y, Q& gq, U* gu,
                  const AdvectionOptions& o) {
    advect_adjoint(ctx, q, u, kDt, y, gq, gu, o);
  }
  static void tan(const Context& ctx, const Q& q, const U& u, const Q& dq, const U* du, Q& dout,
                  const AdvectionOptions& o) {
    advect_tangent(ctx, q, u, kDt, dq, du, dout, o);
  }
};

/// All checks of one case for advected field type Q carried by velocity type U.
template <class Q, class U>
void check_case(const Case& c, unsigned seed) {
  SCOPED_TRACE(c.name());
  const Context ctx = Context::cpu();
  const Grid g = make_grid(c.dim, c.boundary);
  const AdvectionOptions o = c.options();
  using O = Ops<Q, U>;
  Q q = make<Q>(ctx, g), x = make<Q>(ctx, g), y = make<Q>(ctx, g), out = make<Q>(ctx, g),
    out0 = make<Q>(ctx, g), zero = make<Q>(ctx, g), gq = make<Q>(ctx, g), qp = make<Q>(ctx, g),
    qm = make<Q>(ctx, g);
  U u = make<U>(ctx, g), v = make<U>(ctx, g), gu = make<U>(ctx, g), up = make<U>(ctx, g),
    um = make<U>(ctx, g);
  randomize(ctx, q, seed, -1, 1);
  randomize(ctx, x, seed + 1, 0, 1);
  randomize(ctx, y, seed + 2, 0, 1);
  randomize(ctx, u, seed + 3, -1, 1);
  randomize(ctx, v, seed + 4, -1, 1);

  // 1. Transpose w.r.t. q.
  if (c.linear_in_q()) {
    O::fwd(ctx, x, u, out, o);
    O::fwd(ctx, zero, u, out0, o);  // affine part (Fixed sides)
    const double jxy = dotq(ctx, out, y) - dotq(ctx, out0, y);
    O::adj(ctx, x, u, y, gq, nullptr, o);
    const double xjty = dotq(ctx, x, gq);
    EXPECT_NEAR(jxy, xjty, 1e-12 * std::abs(jxy)) << "transpose w.r.t. q";
  } else {  // clamped MacCormack (ZeroGradient): positively homogeneous in q
    O::fwd(ctx, x, u, out, o);
    const double fy = dotq(ctx, out, y);
    O::adj(ctx, x, u, y, gq, nullptr, o);
    const double xjty = dotq(ctx, x, gq);
    EXPECT_NEAR(fy, xjty, 1e-12 * std::abs(fy)) << "<F(q), y> = <q, J(q)^T y>";
  }

  // 2. Joint (q, u) transpose: tangent J (x, v) against adjoint J^T y at (q, u).
  for (F* f : parts(gq))
    fill(ctx, *f, 0.0);
  O::adj(ctx, q, u, y, gq, &gu, o);
  const double dq = dotq(ctx, x, gq), du = dotq(ctx, v, gu);
  O::tan(ctx, q, u, x, &v, out, o);
  const double jt = dotq(ctx, out, y);
  EXPECT_NEAR(jt, dq + du, 1e-12 * std::abs(jt))
      << "transpose (q, u): q part " << dq << ", u part " << du;
  EXPECT_NE(du, 0.0);
  {  // velocity direction only (du alone), and q alone (du = nullptr)
    Q xz = make<Q>(ctx, g);
    O::tan(ctx, q, u, xz, &v, out, o);
    const double jv = dotq(ctx, out, y);
    EXPECT_NEAR(jv, du, 1e-12 * std::abs(jv)) << "transpose w.r.t. u";
    O::tan(ctx, q, u, x, nullptr, out, o);
    const double jq = dotq(ctx, out, y);
    EXPECT_NEAR(jq, dq, 1e-12 * std::abs(jq)) << "transpose w.r.t. q at (q, u)";
  }

  // 3. The tangent against central differences of the forward.
  {
    const double eps = 1e-6;
    set_axpy(ctx, q, eps, x, qp);
    set_axpy(ctx, q, -eps, x, qm);
    set_axpy(ctx, u, eps, v, up);
    set_axpy(ctx, u, -eps, v, um);
    O::fwd(ctx, qp, up, out, o);
    const double fp = dotq(ctx, out, y);
    O::fwd(ctx, qm, um, out, o);
    const double fm = dotq(ctx, out, y);
    const double fd = (fp - fm) / (2 * eps);
    EXPECT_NEAR(fd, jt, 1e-7 * (std::abs(fd) + std::abs(dq) + std::abs(du)))
        << "tangent vs central differences";
  }

  // 4. Accumulation: a second adjoint call adds the same again.
  {
    const auto g1 = flat(ctx, gu);
    O::adj(ctx, q, u, y, gq, &gu, o);
    const auto g2 = flat(ctx, gu);
    for (std::size_t i = 0; i < g1.size(); ++i)
      ASSERT_NEAR(g2[i], 2 * g1[i], 1e-14 * (1 + std::abs(g1[i])));
  }
}

TEST(AdvectionAdjoint, ScalarTransposeAndVelocity) {
  unsigned seed = 1;
  for (const Case& c : all_cases())
    check_case<F, MacVelocity<double>>(c, seed += 10);
}

TEST(AdvectionAdjoint, MacVelocityTransposeAndVelocity) {
  unsigned seed = 2;
  for (Case c : all_cases()) {
    if (c.fixed_scalar) continue;  // MAC fields ignore the scalar boundary rule
    check_case<MacVelocity<double>, MacVelocity<double>>(c, seed += 10);
  }
}

TEST(AdvectionAdjoint, CellVectorTransposeAndVelocity) {
  unsigned seed = 3;
  for (Case c : all_cases()) {
    check_case<CellVector<double>, CellVector<double>>(c, seed += 10);
  }
}

// The same checks with Interpolation::Cubic (Catmull-Rom, cuda/advection/cubic.hpp): its
// ghost layers (mirrored cells, extrapolated faces), the taps that read two faces, and
// MacCormack's clamp to the bracketing samples. The forward is a piecewise polynomial of
// degree <= 3 per axis in eps: the central differences' truncation is O(eps^2) as before.
TEST(AdvectionAdjoint, CubicScalarTransposeAndVelocity) {
  unsigned seed = 501;
  for (const Case& c : all_cases(Interpolation::Cubic))
    check_case<F, MacVelocity<double>>(c, seed += 10);
}

TEST(AdvectionAdjoint, CubicMacVelocityTransposeAndVelocity) {
  unsigned seed = 502;
  for (Case c : all_cases(Interpolation::Cubic)) {
    if (c.fixed_scalar) continue;
    check_case<MacVelocity<double>, MacVelocity<double>>(c, seed += 10);
  }
}

TEST(AdvectionAdjoint, CubicCellVectorTransposeAndVelocity) {
  unsigned seed = 503;
  for (Case c : all_cases(Interpolation::Cubic))
    check_case<CellVector<double>, CellVector<double>>(c, seed += 10);
}

/// Self-advection G(u) = advect(u, u): the adjoint and the tangent sum both paths.
template <class U>
void check_self(const Case& c, unsigned seed) {
  SCOPED_TRACE(c.name() + " self");
  const Context ctx = Context::cpu();
  const Grid g = make_grid(c.dim, c.boundary);
  const AdvectionOptions o = c.options();
  U u = make<U>(ctx, g), v = make<U>(ctx, g), y = make<U>(ctx, g), out = make<U>(ctx, g),
    gu = make<U>(ctx, g), up = make<U>(ctx, g), um = make<U>(ctx, g);
  randomize(ctx, u, seed, -1, 1);
  randomize(ctx, v, seed + 1, -1, 1);
  randomize(ctx, y, seed + 2, 0, 1);
  advect_adjoint(ctx, u, kDt, y, gu, o);
  const double ad = dotq(ctx, v, gu);
  advect_tangent(ctx, u, kDt, v, out, o);
  const double jt = dotq(ctx, out, y);
  EXPECT_NEAR(jt, ad, 1e-12 * std::abs(jt)) << "self-advection transpose";

  const double eps = 1e-6;
  set_axpy(ctx, u, eps, v, up);
  set_axpy(ctx, u, -eps, v, um);
  advect(ctx, up, up, kDt, out, o);
  const double fp = dotq(ctx, out, y);
  advect(ctx, um, um, kDt, out, o);
  const double fm = dotq(ctx, out, y);
  const double fd = (fp - fm) / (2 * eps);
  // Truncation O(eps^2), 1e-7 relative; plus the round-off of the two losses, about
  // 1e-16 sum_i |out_i y_i| each, over 2 eps (it dominates where fd is small beside the
  // terms it sums, as in some cubic cases).
  double mag = 0;
  {
    const auto o_v = flat(ctx, out), y_v = flat(ctx, y);
    for (std::size_t i = 0; i < o_v.size(); ++i)
      mag += std::abs(o_v[i] * y_v[i]);
  }
  EXPECT_NEAR(fd, jt, 1e-7 * std::abs(fd) + 1e-15 * mag / eps)
      << "self-advection tangent vs central differences";

  // The self-advection overloads equal the general ones with both arguments the same.
  U gu2 = make<U>(ctx, g), out2 = make<U>(ctx, g);
  advect_adjoint(ctx, u, u, kDt, y, gu2, &gu2, o);
  EXPECT_EQ(flat(ctx, gu), flat(ctx, gu2));
  advect_tangent(ctx, u, kDt, v, out, o);
  advect_tangent(ctx, u, u, kDt, v, &v, out2, o);
  EXPECT_EQ(flat(ctx, out), flat(ctx, out2));
}

TEST(AdvectionAdjoint, SelfAdvectionSumsBothPaths) {
  unsigned seed = 4;
  for (Case c : all_cases()) {
    if (c.fixed_scalar) continue;
    check_self<MacVelocity<double>>(c, seed += 10);
    check_self<CellVector<double>>(c, seed += 10);
  }
}

TEST(AdvectionAdjoint, CubicSelfAdvectionSumsBothPaths) {
  unsigned seed = 504;
  for (Case c : all_cases(Interpolation::Cubic)) {
    if (c.fixed_scalar) continue;
    check_self<MacVelocity<double>>(c, seed += 10);
    check_self<CellVector<double>>(c, seed += 10);
  }
}

TEST(AdvectionAdjoint, FixedBoundaryCellVectorSelfAdvection) {
  // Fixed sides: the carrier is sampled with the same affine ghost rule.
  for (Backtrace bt : {Backtrace::Euler, Backtrace::RK2})
    for (int dim = 1; dim <= 2; ++dim) {
      Case c{dim, BoundaryKind::Wall, AdvectionScheme::SemiLagrangian, bt, true, true};
      check_self<CellVector<double>>(c, 77u + unsigned(dim));
    }
}

TEST(AdvectionAdjoint, GradientsAreDeterministic) {
  const Context ctx = Context::cpu();
  for (Interpolation in : {Interpolation::Linear, Interpolation::Cubic})
    for (AdvectionScheme s : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
      const Grid g = make_grid(3, BoundaryKind::Periodic);
      AdvectionOptions o;
      o.scheme = s;
      o.backtrace = Backtrace::RK2;
      o.interpolation = in;
      MacVelocity<double> u(ctx, g), y(ctx, g);
      randomize(ctx, u, 5, -1, 1);
      randomize(ctx, y, 6, -1, 1);
      std::vector<double> first;
      for (int run = 0; run < 2; ++run) {
        MacVelocity<double> gu(ctx, g);
        advect_adjoint(ctx, u, kDt, y, gu, o);
        const auto v = flat(ctx, gu);
        if (run == 0) {
          first = v;
        } else {
          ASSERT_EQ(first.size(), v.size());
          EXPECT_EQ(0, std::memcmp(first.data(), v.data(), v.size() * sizeof(double)));
        }
      }
    }
}

// Accumulation::Atomic (float atomics; on the CPU the scatter runs on OpenMP
// threads) computes the same gradient up to the order of the additions, and
// the setting is shared by copies of the context.
TEST(AdvectionAdjoint, AtomicAccumulationAgreesWithDeterministic) {
  Context ctx = Context::cpu();
  const Grid g = Grid::make_3d(24, 24, 24, 0.1);  // above the CPU threading threshold
  for (AdvectionScheme s : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    AdvectionOptions o;
    o.scheme = s;
    o.backtrace = Backtrace::RK2;
    MacVelocity<double> u(ctx, g), y(ctx, g), g_det(ctx, g), g_atomic(ctx, g);
    randomize(ctx, u, 31, -1, 1);
    randomize(ctx, y, 32, -1, 1);
    ASSERT_EQ(ctx.accumulation(), Accumulation::Deterministic);
    advect_adjoint(ctx, u, kDt, y, g_det, o);
    Context alias = ctx;
    alias.set_accumulation(Accumulation::Atomic);
    EXPECT_EQ(ctx.accumulation(), Accumulation::Atomic);
    advect_adjoint(ctx, u, kDt, y, g_atomic, o);
    ctx.set_accumulation(Accumulation::Deterministic);
    const auto a = flat(ctx, g_det), b = flat(ctx, g_atomic);
    double scale = 0;
    for (double x : a)
      scale = std::max(scale, std::abs(x));
    ASSERT_GT(scale, 0.0);
    for (std::size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], 1e-13 * scale) << i;
  }
  EXPECT_THROW(ctx.set_accumulation(static_cast<Accumulation>(7)), InvalidArgument);
  EXPECT_STREQ(to_string(Accumulation::Atomic), "atomic");
}

TEST(AdvectionAdjoint, RejectsBadArguments) {
  const Context ctx = Context::cpu();
  const Grid g = make_grid(2, BoundaryKind::Wall);
  F q(ctx, g), y(ctx, g), gq(ctx, g);
  MacVelocity<double> u(ctx, g), gu(ctx, g);
  EXPECT_THROW(advect_adjoint(ctx, q, u, kDt, y, q, &gu), InvalidArgument);    // grad_q = q
  EXPECT_THROW(advect_adjoint(ctx, q, u, kDt, y, y, &gu), InvalidArgument);    // = grad_out
  EXPECT_THROW(advect_adjoint(ctx, q, u, kDt, y, gq, &u), InvalidArgument);    // grad_u = u
  EXPECT_THROW(advect_adjoint(ctx, q, u, -1.0, y, gq, &gu), InvalidArgument);  // dt
  F wrong(ctx, g, Location::FaceX);
  EXPECT_THROW(advect_adjoint(ctx, q, u, kDt, y, wrong, &gu), ShapeMismatch);
  EXPECT_NO_THROW(
      advect_adjoint(ctx, q, u, kDt, y, gq, static_cast<MacVelocity<double>*>(nullptr)));
}

}  // namespace

namespace {

// Velocity derivative to ~1e-11: for the Euler backtrace in 1D (and 2D) the
// semi-Lagrangian output is, between kinks, a polynomial of degree <= 2 in a
// velocity perturbation eps (the departure point is linear in eps, the
// interpolant multilinear), so a central difference has no truncation error;
// with eps = 2e-3 the round-off is about 1e-16 / 1e-3 per sample (~1e-12
// relative after the sum; 1e-11 allowed), and
// departure points stay in their cells for these seeds (checked: two step
// sizes agree).
template <class Q, class U>
void check_velocity_exact(int dim, BoundaryKind b, unsigned seed) {
  SCOPED_TRACE(std::to_string(dim) + "D " + to_string(b));
  const Context ctx = Context::cpu();
  const Grid g = make_grid(dim, b);
  AdvectionOptions o;  // semi-Lagrangian, Euler
  Q q = make<Q>(ctx, g), y = make<Q>(ctx, g), out = make<Q>(ctx, g), gq = make<Q>(ctx, g);
  U u = make<U>(ctx, g), v = make<U>(ctx, g), gu = make<U>(ctx, g), up = make<U>(ctx, g),
    um = make<U>(ctx, g);
  randomize(ctx, q, seed, -1, 1);
  randomize(ctx, y, seed + 1, 0, 1);
  randomize(ctx, u, seed + 2, -1, 1);
  randomize(ctx, v, seed + 3, -1, 1);
  advect_adjoint(ctx, q, u, kDt, y, gq, &gu, o);
  const double ad = dotq(ctx, v, gu);
  double fd[2];
  for (int h = 0; h < 2; ++h) {
    const double eps = h == 0 ? 2e-3 : 1e-3;
    set_axpy(ctx, u, eps, v, up);
    set_axpy(ctx, u, -eps, v, um);
    advect(ctx, q, up, kDt, out, o);
    const double fp = dotq(ctx, out, y);
    advect(ctx, q, um, kDt, out, o);
    const double fm = dotq(ctx, out, y);
    fd[h] = (fp - fm) / (2 * eps);
  }
  EXPECT_NEAR(fd[0], fd[1], 1e-11 * std::abs(fd[0])) << "a kink was crossed";
  EXPECT_NEAR(fd[0], ad, 1e-11 * std::abs(fd[0]));
}

TEST(AdvectionAdjoint, VelocityGradientExactForEulerIn1D) {
  // (2D is as exact in principle, but with eps = 2e-3 some departure point of
  // these small random grids crosses a cell line; 2D/3D/RK2 are covered by the
  // exact tangent transposes and the 1e-7 central differences above.)
  unsigned seed = 900;
  for (int dim = 1; dim <= 1; ++dim)
    for (BoundaryKind b : {BoundaryKind::Wall, BoundaryKind::Periodic}) {
      check_velocity_exact<F, MacVelocity<double>>(dim, b, seed += 10);
      check_velocity_exact<MacVelocity<double>, MacVelocity<double>>(dim, b, seed += 10);
      check_velocity_exact<CellVector<double>, CellVector<double>>(dim, b, seed += 10);
    }
}

}  // namespace

namespace {

// A NaN cotangent: the GPU's fixed-point scatter marks the cells it reaches and
// turns them into NaN (as a float sum would), so NaN lands on the same entries
// as on the CPU path and the other entries keep their finite values.
TEST(GpuAdvectionAdjoint, NanCotangentLandsWhereItDoesOnTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Context cpu = Context::cpu(), gpu = Context::cuda();
  const Grid g = make_grid(3, BoundaryKind::Wall);
  F q(cpu, g), y(cpu, g), gq(cpu, g);
  MacVelocity<double> u(cpu, g), gu(cpu, g);
  randomize(cpu, q, 71, -1, 1);
  randomize(cpu, y, 72, -1, 1);
  randomize(cpu, u, 73, -1, 1);
  std::vector<double> yv = y.to_vector(cpu);
  yv[yv.size() / 2] = std::nan("");
  y.assign(cpu, yv);
  advect_adjoint(cpu, q, u, kDt, y, gq, &gu);
  F qd(gpu, g), yd(gpu, g), gqd(gpu, g);
  MacVelocity<double> ud(gpu, g), gud(gpu, g);
  qd.assign(gpu, q.to_vector(cpu));
  yd.assign(gpu, yv);
  for (int a = 0; a < 3; ++a)
    ud[a].assign(gpu, u[a].to_vector(cpu));
  advect_adjoint(gpu, qd, ud, kDt, yd, gqd, &gud);
  const auto ref = flat(cpu, gq), got = flat(gpu, gqd);
  int nans = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(std::isnan(ref[i]), std::isnan(got[i])) << i;
    if (std::isnan(ref[i]))
      ++nans;
    else
      ASSERT_NEAR(got[i], ref[i], 1e-12 * (1 + std::abs(ref[i]))) << i;
  }
  EXPECT_GT(nans, 0);
  EXPECT_LT(nans, int(ref.size()));
}

}  // namespace

namespace {

// GPU path (fixed-point scatter with a scale per target cell, see
// cuda/core/scatter.hpp): matches the CPU path to rounding and is bitwise
// identical run to run.
TEST(GpuAdvectionAdjoint, CubicRefusedWhereItsGpuCodeWasNotBuilt) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  if (DFLUID_WITH_CUDA_CUBIC) GTEST_SKIP() << "built with -DDFLUID_CUDA_CUBIC=ON";
  const Context gpu = Context::cuda();
  const Grid g = make_grid(2, BoundaryKind::Wall);
  AdvectionOptions o;
  o.interpolation = Interpolation::Cubic;
  MacVelocity<double> u(gpu, g), y(gpu, g), gu(gpu, g), out(gpu, g);
  EXPECT_THROW(advect(gpu, u, u, kDt, out, o), InvalidArgument);
  EXPECT_THROW(advect_adjoint(gpu, u, kDt, y, gu, o), InvalidArgument);
  EXPECT_THROW(advect_tangent(gpu, u, u, kDt, y, &y, out, o), InvalidArgument);
}

TEST(GpuAdvectionAdjoint, MatchesCpuAndIsDeterministic) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Context cpu = Context::cpu(), gpu = Context::cuda();
  const Grid g = make_grid(3, BoundaryKind::Wall);
  for (Interpolation in : gpu_interpolations())
    for (AdvectionScheme s : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
      SCOPED_TRACE(std::string(to_string(s)) + " " + to_string(in));
      AdvectionOptions o;
      o.scheme = s;
      o.backtrace = Backtrace::RK2;
      o.interpolation = in;
      MacVelocity<double> u(cpu, g), y(cpu, g), gu(cpu, g);
      randomize(cpu, u, 11, -1, 1);
      randomize(cpu, y, 12, -1, 1);
      advect_adjoint(cpu, u, kDt, y, gu, o);
      const auto ref = flat(cpu, gu);
      double scale = 0;
      for (double x : ref)
        scale = std::max(scale, std::abs(x));
      std::vector<double> first;
      for (int run = 0; run < 2; ++run) {
        MacVelocity<double> ud(gpu, g), yd(gpu, g), gd(gpu, g);
        for (int a = 0; a < 3; ++a) {
          ud[a].assign(gpu, u[a].to_vector(cpu));
          yd[a].assign(gpu, y[a].to_vector(cpu));
        }
        advect_adjoint(gpu, ud, kDt, yd, gd, o);
        // The tangent is a gather (no atomics): equal to the CPU's up to the
        // device's rounding order within a sample (FMA contraction).
        MacVelocity<double> td(gpu, g), tc(cpu, g);
        advect_tangent(gpu, ud, kDt, yd, td, o);
        advect_tangent(cpu, u, kDt, y, tc, o);
        const auto tg = flat(gpu, td), tr = flat(cpu, tc);
        for (std::size_t i = 0; i < tg.size(); ++i)
          ASSERT_NEAR(tg[i], tr[i], 1e-12 * (1 + std::abs(tr[i]))) << "tangent " << i;
        const auto v = flat(gpu, gd);
        ASSERT_EQ(v.size(), ref.size());
        for (std::size_t i = 0; i < v.size(); ++i)
          ASSERT_NEAR(v[i], ref[i], 1e-10 * scale) << i;
        if (run == 0)
          first = v;
        else
          EXPECT_EQ(0, std::memcmp(first.data(), v.data(), v.size() * sizeof(double)));
      }
      // Float atomics (Accumulation::Atomic): the same gradient up to rounding.
      Context gpu_atomic = Context::cuda();
      gpu_atomic.set_accumulation(Accumulation::Atomic);
      MacVelocity<double> ud(gpu_atomic, g), yd(gpu_atomic, g), gd(gpu_atomic, g);
      for (int a = 0; a < 3; ++a) {
        ud[a].assign(gpu_atomic, u[a].to_vector(cpu));
        yd[a].assign(gpu_atomic, y[a].to_vector(cpu));
      }
      advect_adjoint(gpu_atomic, ud, kDt, yd, gd, o);
      const auto v = flat(gpu_atomic, gd);
      for (std::size_t i = 0; i < v.size(); ++i)
        ASSERT_NEAR(v[i], ref[i], 1e-12 * scale) << "atomic " << i;
    }
}

}  // namespace
