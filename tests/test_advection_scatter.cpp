// The deterministic scatter of the advection adjoints (cuda/core/scatter.hpp): the CPU
// path's coloured slabs (Accumulation::Deterministic) and the GPU path's per-cell fixed
// point, run on the CPU with Accumulation::FixedPoint. Both in double:
//  * a small gradient next to a large one keeps its digits (a field-wide fixed-point
//    scale resolved 2^-61 of the sum of all |contributions|, about 1e-10 here, and kept
//    no digit of the 1e-12 entries);
//  * transposes to 1e-12 on grids with many slabs and departure points far outside a
//    slab's window (the leftover pass) and for the fixed point;
//  * exact counters: launches, no host wait, and the fixed point's pool blocks equal to
//    scatter_workspace_bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "counters_test_util.hpp"
#include "advection_test_util.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;
using namespace dfluid::testing::advection;

namespace {

/// Sets the accumulation of a context for one scope.
struct AccumulationScope {
  Context ctx;
  Accumulation saved;
  AccumulationScope(const Context& c, Accumulation a) : ctx(c), saved(c.accumulation()) {
    ctx.set_accumulation(a);
  }
  ~AccumulationScope() { ctx.set_accumulation(saved); }
};

/// MacCormack (RK2, clamp) adjoint of a 64^3 scalar in double, w.r.t. q and u, for the
/// cotangent y; returns grad_q followed by the velocity components.
std::vector<double> maccormack_adjoint(const Context& ctx, const F& q, const MacVelocity<double>& u,
                                       const F& y) {
  const Grid& g = q.grid();
  AdvectionOptions o;
  o.scheme = AdvectionScheme::MacCormack;
  o.backtrace = Backtrace::RK2;
  F gq(ctx, g);
  MacVelocity<double> gu(ctx, g);
  advect_adjoint(ctx, q, u, 1.0, y, gq, &gu, o);
  std::vector<double> out = gq.to_vector(ctx);
  const auto v = flat(ctx, gu);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

// A cotangent of about 1e-12 on a slab of cells (x in [16, 48)) next to one of about 1e+3
// everywhere else, 64^3, velocity below half a cell per step. Split y = small + large: the
// adjoint is linear in y, and a target that no large contribution reaches (the adjoint of
// `large` alone leaves it exactly 0) must get the adjoint of `small` alone to 12 digits,
// though its neighbours hold ~1e+3. Checked for the CPU slabs and the GPU's fixed point.
TEST(AdvectionScatter, SmallGradientNextToLargeKeepsTwelveDigits) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_3d(64, 64, 64, 1.0);
  F q(ctx, g), small(ctx, g), large(ctx, g), y(ctx, g);
  MacVelocity<double> u(ctx, g);
  randomize(ctx, q, 41, -1, 1);
  randomize(ctx, u, 42, -0.45, 0.45);
  std::vector<double> s(std::size_t(g.cells())), l(s.size());
  {
    F r(ctx, g);
    randomize(ctx, r, 43, 0.5, 1.5);
    const auto rv = r.to_vector(ctx);
    for (std::size_t c = 0; c < s.size(); ++c) {
      const int i = int(c % 64);
      const bool in = i >= 16 && i < 48;
      s[c] = in ? 1e-12 * rv[c] : 0.0;
      l[c] = in ? 0.0 : 1e+3 * rv[c];
    }
  }
  small.assign(ctx, s);
  large.assign(ctx, l);
  std::vector<double> yv(s.size());
  for (std::size_t c = 0; c < s.size(); ++c)
    yv[c] = s[c] + l[c];
  y.assign(ctx, yv);

  for (Accumulation acc : {Accumulation::Deterministic, Accumulation::FixedPoint}) {
    SCOPED_TRACE(to_string(acc));
    AccumulationScope scope(ctx, acc);
    const auto full = maccormack_adjoint(ctx, q, u, y);
    const auto ref = maccormack_adjoint(ctx, q, u, small);
    const auto big = maccormack_adjoint(ctx, q, u, large);
    ASSERT_EQ(full.size(), ref.size());
    const std::size_t nq = std::size_t(g.cells());
    std::size_t checked = 0, beside_large = 0;
    double worst = 0;
    for (std::size_t c = 0; c < full.size(); ++c) {
      if (big[c] != 0.0 || ref[c] == 0.0) continue;
      ASSERT_LT(std::abs(ref[c]), 1e-9) << c;  // a small-only target
      worst = std::max(worst, std::abs(full[c] - ref[c]) / std::abs(ref[c]));
      ++checked;
      // grad_q targets whose x-neighbour received ~1e+3 (ordering: x fastest).
      if (c < nq && c % 64 > 0 && c % 64 < 63 &&
          (std::abs(full[c - 1]) > 1.0 || std::abs(full[c + 1]) > 1.0))
        ++beside_large;
    }
    EXPECT_LE(worst, 1e-12);
    EXPECT_GT(checked, std::size_t(100000));            // the interior of the slab, q and u
    EXPECT_GE(beside_large, std::size_t(64 * 64 / 2));  // one per (y, z) row, about
  }
}

/// The joint (q, u) transpose of MacCormack (RK2, clamp) for a scalar on an n x n
/// periodic grid with velocities up to `umax` cells per step, under `acc`.
void check_large_transpose(int dim, int n, double umax, Accumulation acc,
                           Interpolation in = Interpolation::Linear) {
  SCOPED_TRACE(std::to_string(dim) + "D n=" + std::to_string(n) + " umax=" + std::to_string(umax) +
               " " + to_string(acc) + " " + to_string(in));
  const Context ctx = Context::cpu();
  AccumulationScope scope(ctx, acc);
  Grid g = dim == 2 ? Grid::make_2d(n, n, 1.0) : Grid::make_3d(n, n, n, 1.0);
  g.set_boundary(BoundaryKind::Periodic);
  AdvectionOptions o;
  o.scheme = AdvectionScheme::MacCormack;
  o.backtrace = Backtrace::RK2;
  o.interpolation = in;
  F q(ctx, g), x(ctx, g), y(ctx, g), out(ctx, g), gq(ctx, g);
  MacVelocity<double> u(ctx, g), v(ctx, g), gu(ctx, g);
  randomize(ctx, q, 51, -1, 1);
  randomize(ctx, x, 52, 0, 1);
  randomize(ctx, y, 53, 0, 1);
  randomize(ctx, u, 54, -umax, umax);
  randomize(ctx, v, 55, -1, 1);
  advect_adjoint(ctx, q, u, 1.0, y, gq, &gu, o);
  advect_tangent(ctx, q, u, 1.0, x, &v, out, o);
  const double jt = dotq(ctx, out, y);
  const double dq = dotq(ctx, x, gq), du = dotq(ctx, v, gu);
  EXPECT_NEAR(jt, dq + du, 1e-12 * std::abs(jt)) << "q part " << dq << ", u part " << du;
  EXPECT_NE(du, 0.0);
}

// Many slabs (128 rows: 16 of 8), departure points within and far beyond a slab's window
// (+-4 rows): the leftover pass adds what the slabs skipped.
TEST(AdvectionScatter, TransposeWithManySlabsAndFarDepartures) {
  for (double umax : {0.9, 12.0})
    check_large_transpose(2, 128, umax, Accumulation::Deterministic);
  check_large_transpose(3, 32, 9.0, Accumulation::Deterministic);
  // The cubic stencil reaches one row further than the linear one (more leftovers).
  check_large_transpose(2, 128, 3.2, Accumulation::Deterministic, Interpolation::Cubic);
}

TEST(AdvectionScatter, FixedPointTranspose) {
  check_large_transpose(2, 64, 0.9, Accumulation::FixedPoint);
  check_large_transpose(3, 16, 5.0, Accumulation::FixedPoint);
  check_large_transpose(3, 16, 5.0, Accumulation::FixedPoint, Interpolation::Cubic);
}

// The fixed point's non-finite cells: a NaN cotangent makes NaN exactly where the CPU
// slabs (a float sum) put it, other entries stay finite and agree to rounding.
TEST(AdvectionScatter, FixedPointNanLandsWhereTheSlabsPutIt) {
  const Context ctx = Context::cpu();
  const Grid g = make_grid(3, BoundaryKind::Wall);
  F q(ctx, g), y(ctx, g);
  MacVelocity<double> u(ctx, g);
  randomize(ctx, q, 71, -1, 1);
  randomize(ctx, y, 72, -1, 1);
  randomize(ctx, u, 73, -1, 1);
  std::vector<double> yv = y.to_vector(ctx);
  yv[yv.size() / 2] = std::nan("");
  y.assign(ctx, yv);
  const auto ref = maccormack_adjoint(ctx, q, u, y);
  AccumulationScope scope(ctx, Accumulation::FixedPoint);
  const auto got = maccormack_adjoint(ctx, q, u, y);
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

// Launches per deterministic scatter (both schemes count what the GPU launches): the
// sizing pass, the scatter pass, one conversion per target; no host wait, nothing copied.
// A 3D MacCormack self-advection adjoint, per component: the q^ pass (1), the corrector
// scatter into u0, u1, u2, the component's cotangent and q^'s (2 + 5), the SL scatter of
// q^'s cotangent (2 + 4): 14, 42 in all (the field-wide scale cost 6 more launches and 6
// host waits).
TEST(AdvectionScatter, CountsLaunchesNoHostWaitAndItsWorkspace) {
  const Context ctx = Context::cpu();
  const Grid g = Grid::make_3d(24, 20, 16, 1.0);
  MacVelocity<double> u(ctx, g), y(ctx, g), gu(ctx, g);
  randomize(ctx, u, 81, -1, 1);
  randomize(ctx, y, 82, -1, 1);
  AdvectionOptions mc;
  mc.scheme = AdvectionScheme::MacCormack;
  auto self = [&] { advect_adjoint(ctx, u, 1.0, y, gu, mc); };
  for (Accumulation acc : {Accumulation::Deterministic, Accumulation::FixedPoint}) {
    SCOPED_TRACE(to_string(acc));
    AccumulationScope scope(ctx, acc);
    self();  // warm-up: the pool grows here
    const ContextCounters c = test::events_of(ctx, self);
    EXPECT_EQ(c.launches, 42);
    EXPECT_EQ(c.host_waits, 0);
    EXPECT_EQ(c.allocations, 0);
    EXPECT_EQ(c.frees, 0);
    EXPECT_EQ(c.bytes_to_device, 0);
    EXPECT_EQ(c.bytes_to_host, 0);
  }
  // Semi-Lagrangian scalar adjoint with grad_u: one scatter into u0, u1, u2 and grad_q.
  for (Accumulation acc : {Accumulation::Deterministic, Accumulation::FixedPoint}) {
    SCOPED_TRACE(to_string(acc));
    const Context fresh = Context::cpu();  // a new pool: the first call grows it
    AccumulationScope scope(fresh, acc);
    F q2(fresh, g), y2(fresh, g), gq2(fresh, g);
    MacVelocity<double> u2(fresh, g), gu2(fresh, g);
    const std::size_t held = fresh.counters().bytes_held;
    const ContextCounters c =
        test::events_of(fresh, [&] { advect_adjoint(fresh, q2, u2, 1.0, y2, gq2, &gu2); });
    EXPECT_EQ(c.launches, 2 + 4);
    EXPECT_EQ(c.host_waits, 0);
    // One pool block per target, of scatter_workspace_bytes (0 for the slabs).
    std::size_t ws = scatter_workspace_bytes(fresh, std::size_t(q2.size()));
    for (int a = 0; a < 3; ++a)
      ws += scatter_workspace_bytes(fresh, std::size_t(u2[a].size()));
    EXPECT_EQ(c.allocations, acc == Accumulation::FixedPoint ? 4 : 0);
    EXPECT_EQ(c.bytes_held - held, ws);
    if (acc == Accumulation::FixedPoint)
      EXPECT_EQ(ws, 16 * std::size_t(q2.size() + u2[0].size() + u2[1].size() + u2[2].size()));
    else
      EXPECT_EQ(ws, 0u);
  }
}

}  // namespace
