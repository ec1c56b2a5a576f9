// Generic preconditioned conjugate gradients (PCG) on Field<T>.
//
// Include only from cuda/*.cpp (it launches through exec.hpp). Interface:
//
//   detail::KrylovWorkspace<T> ws(ctx, grid, loc, regions);  // 4 scratch fields + scalars
//   SolveReport rep = detail::pcg(ctx, apply_A, apply_M, b, x, options, ws, "what",
//                                 null_space);        // last arguments optional
//
//   apply_A(const Field<T>& in, Field<T>& out)  out = A in   (A symmetric positive
//                                               semi-definite; must not alias in/out)
//   apply_M(const Field<T>& r, Field<T>& z)     z = M^-1 r   (M symmetric positive
//                                               definite; IdentityPreconditioner{ctx} for none)
//   null_space (NullSpace)                      A's null space: the constants on each
//                                               labelled region (NullSpace{} when A is
//                                               definite); ws must be built with as many
//                                               regions
//   report_scale (optional, default 1) multiplies the residuals in the report and
//                                               in messages (e.g. back to physical units)
//   b, x, ws fields all have the same shape. x: the initial guess when
//   options.warm_start, else it is zeroed first. `what` names the solve in messages.
//
// Conventions: all inner products are deterministic double sums.
// Every scalar of the solve (|b|, the tolerance, the float rescaling factor, r.z,
// p.q, alpha, beta, the region means, a stop flag) stays in the context's memory
// space: reductions are finished on the device into them (multi_reduce.hpp) and the
// update kernels read them from there. The host reads them only at a convergence
// check, one host wait every options.check_every iterations (and at the cap); a solve
// of n iterations waits ceil(n / check_every) times, nothing else. What that costs:
//  * a right-hand side that is 0, or a start that already meets the tolerance, is
//    seen on the device (the updates stop), but the host learns it at the first
//    check, so check_every preconditioner applications run for nothing;
//  * a non-finite right-hand side is reported at the first check too (same message);
//  * the check computes the true residual |b - A x| (one application of A), which is
//    what the convergence test and the report use; the returned x is that checked x,
//    made canonical (region means removed, rescaled), so the reported residual is the
//    returned x's up to rounding.
// The null space is handled inside the reductions the iteration already does: r.z
// also sums z and r over each region (the projected z never exists as a field: the
// direction update subtracts the region means), and the check also sums x over each
// region for the final projection. Up to kFusedRegions regions ride in those passes;
// each further region costs one extra reduction per projected quantity, as before.
// A breakdown (p.q <= 0) or NaN between two checks stops the updates on the device
// and is acted on at the next check.
// Float solves whose |b| is tiny or huge are run on b/|b| (and x/|b|) so that
// tiny cotangents in adjoint solves do not underflow; the result is scaled back.
// Throws NonFiniteValue if b or a residual is NaN/Inf, or when the returned x leaves the
// range of T; SolverNotConverged at the cap when options.throw_on_failure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>

#include "dfluid/field_ops.hpp"
#include "dfluid/linear_solver.hpp"
#include "dfluid/memory.hpp"
#include "core/exec.hpp"
#include "pressure/multi_reduce.hpp"

namespace dfluid::detail {

/// A's null space: the constants on each region (label >= 0); counts[r] cells in region r.
struct NullSpace {
  int regions = 0;
  View<const std::int32_t> label{};  ///< per cell, -1 outside every region
  const double* counts = nullptr;    ///< `regions` doubles in the context's memory space
};

/// Regions whose sums ride in the iteration's own reductions (see the header comment).
constexpr int kFusedRegions = 2;

// ---- scalars of the iteration, in the context's memory space ----
// Two r.z slots alternate between iterations, so that beta = rz_new / rz_old
// never reads a slot the same iteration overwrote.
enum KrylovScalar : int {
  kRz0,
  kRz1,
  kPq,
  kAlpha,
  kBeta,
  kStop,    ///< 0: running; 1: breakdown (p.q or r.z <= 0); 2: not finite; 3: converged at
            ///< the start; 4: converged (|r| met the tolerance between two checks)
  kStopIt,  ///< iterations completed when the solve stopped
  kBb,      ///< |b|^2 (unscaled)
  kScale,   ///< s: the solve runs on s b, s x (1; 1/|b| for float |b| far from 1; 0 for b = 0)
  kTol2,    ///< (s * max(rel_tol |b|, abs_tol))^2
  kRr0,     ///< |s b - A s x0|^2 (projected)
  kRr,      ///< |r|^2 (the recursion's residual) at the last check
  kRrTrue,  ///< |s b - A x|^2 (projected) at the last check
  kXmax,    ///< max |x| at the last check (Inf for NaN)
  kScalarCount
};
/// Per-region arrays after the scalars, `regions` doubles each.
enum KrylovRegionArray : int { kMeanB, kMeanZ, kMeanX, kSumZ, kSumR, kSumT, kSumX, kRegionArrays };
static_assert(kScalarCount == 14 && kRegionArrays == 7,
              "Simulation::estimate_memory (host/src/step/simulation.cpp) counts these bytes");

template <class T>
struct KrylovWorkspace {
  Field<T> r, z, p, q;
  int regions = 0;
  /// kScalarCount scalars, then kRegionArrays * regions region values, in the context's
  /// memory space (one allocation).
  Buffer<double> scalars;
  KrylovWorkspace() = default;
  KrylovWorkspace(const Context& ctx, const Grid& g, Location loc = Location::Cell,
                  int null_regions = 0)
      : r(ctx, g, loc),
        z(ctx, g, loc),
        p(ctx, g, loc),
        q(ctx, g, loc),
        regions(null_regions),
        scalars(ctx, kScalarCount + Index(kRegionArrays) * null_regions, ctx.memory_space()) {}
  double* region_array(int which) { return scalars.data() + kScalarCount + which * regions; }
};

/// z = r (no preconditioning): IdentityPreconditioner{ctx}.
struct IdentityPreconditioner {
  Context ctx;
  template <class T>
  void operator()(const Field<T>& r, Field<T>& z) const {
    copy(ctx, r, z);
  }
};

/// Everything the solve's kernels read: scalars, null space.
struct KrylovState {
  double* sc = nullptr;
  int regions = 0;
  View<const std::int32_t> label{};
  const double* counts = nullptr;
  double* mean_b = nullptr;
  double* mean_z = nullptr;
  double* mean_x = nullptr;
  double* sum_z = nullptr;
  double* sum_r = nullptr;
  double* sum_t = nullptr;
  double* sum_x = nullptr;
  DFLUID_HD int region(int i, int j, int k) const { return regions > 0 ? label(i, j, k) : -1; }
};

// The solve's kernels (cuda/pressure/krylov_ops.cpp, instantiated there for float and
// double): each device lambda is defined in exactly one translation unit, as nvcc requires
// of extended lambdas in templates shared by several .cpp files.
/// Sum of v over the cells of region `reg` into *dst (regions past kFusedRegions only).
template <class T>
void krylov_region_sum(const Exec& ex, const KrylovState& s, int reg, const Field<T>& v,
                       double* dst);

/// |b|^2 and the region sums of b; then s, the tolerance, the means of s b; clears the stop.
template <class T>
void krylov_setup(const Exec& ex, const KrylovState& s, const Field<T>& b, double rel_tol,
                  double abs_tol);

/// x = s x (warm start; 0 when b = 0).
template <class T>
void krylov_scale_start(const Exec& ex, const KrylovState& s, Field<T>& x);

/// r = s b (- A x0 in q when warm) minus the region means of s b; |r|^2 -> kRr0, and a stop
/// (3) when it already meets the tolerance.
template <class T>
void krylov_initial_residual(const Exec& ex, const KrylovState& s, const Field<T>& b,
                             const Field<T>* ax, Field<T>& r);

/// r.z with z's region means removed, into sc[rz_new]; beta = rz_new / rz_old unless first.
/// Also |r|^2: when it meets the tolerance the solve stops here on the device (4), with `it`
/// iterations, so the iterations a check interval adds past convergence change nothing.
/// r.z <= 0 before that is a breakdown (1; NaN or Inf: 2): M is positive definite, so it
/// means rounding has taken over (float near its precision limit). Measured on the first
/// smoke step at 128^3, float, rel_tol 1e-6: this stop ends the solve after 9 iterations at
/// 5e-5 relative residual (not converged, reported as such); going on instead stagnates
/// there until the cap (500), and the solver before this one stopped at 134 with 0.89.
template <class T>
void krylov_rz(const Exec& ex, const KrylovState& s, const Field<T>& r, const Field<T>& z,
               int rz_new, int rz_old, bool first, int it);

/// p = (z - its region means) + beta p (first: without the old p). No-op once stopped.
template <class T>
void krylov_xpay(const Exec& ex, const KrylovState& s, const Field<T>& z, Field<T>& p, bool first);

/// p.q, then alpha = r.z / p.q, or a stop (recorded once, with the iteration count `it`)
/// when p.q is not positive: p in the null space (breakdown) or NaN.
template <class T>
void krylov_pq_alpha(const Exec& ex, const KrylovState& s, const Field<T>& p, const Field<T>& q,
                     int rz, int it);

/// x += alpha * p; r -= alpha * q (no-op once stopped)
template <class T>
void krylov_update(const Exec& ex, const double* sc, const Field<T>& p, const Field<T>& q,
                   Field<T>& x, Field<T>& r);

/// The check's pass (ax = A x): the true residual t = s b - A x minus the region means of
/// s b, |t|^2 with t's region means removed -> kRrTrue; x's region means -> mean_x;
/// max |x| -> kXmax; |r|^2 -> kRr (the convergence test, as the recursion's r keeps
/// falling where float's true residual stalls at rounding level).
template <class T>
void krylov_check(const Exec& ex, const KrylovState& s, const Field<T>& b, const Field<T>& ax,
                  const Field<T>& x, const Field<T>& r);

/// x = (x - its region means) / s: the canonical representative in the caller's units.
template <class T>
void krylov_finish_x(const Exec& ex, const KrylovState& s, Field<T>& x);

template <class T, class ApplyA, class ApplyM>
SolveReport pcg(const Context& ctx, ApplyA&& apply_A, ApplyM&& apply_M, const Field<T>& b,
                Field<T>& x, const SolverOptions& opt, KrylovWorkspace<T>& ws, const char* what,
                const NullSpace& null_space = NullSpace{}, double report_scale = 1) {
  validate(opt, what);
  check::same_shape(b, (std::string(what) + ": rhs").c_str(), x, "x");
  check::same_shape(b, (std::string(what) + ": rhs").c_str(), ws.r, "workspace");
  if (null_space.regions != ws.regions)
    throw InvalidArgument(std::string(what) +
                          ": internal: the Krylov workspace was built for another null space");
  const Exec ex = exec_of(ctx);
  Field<T>&r = ws.r, &z = ws.z, &p = ws.p, &q = ws.q;
  KrylovState s;
  s.sc = ws.scalars.data();
  s.regions = null_space.regions;
  s.label = null_space.label;
  s.counts = null_space.counts;
  s.mean_b = ws.region_array(kMeanB);
  s.mean_z = ws.region_array(kMeanZ);
  s.mean_x = ws.region_array(kMeanX);
  s.sum_z = ws.region_array(kSumZ);
  s.sum_r = ws.region_array(kSumR);
  s.sum_t = ws.region_array(kSumT);
  s.sum_x = ws.region_array(kSumX);

  krylov_setup(ex, s, b, opt.rel_tol, opt.abs_tol);
  if (!opt.warm_start) {
    fill(ctx, x, T(0));
    krylov_initial_residual<T>(ex, s, b, nullptr, r);
  } else {
    krylov_scale_start(ex, s, x);
    apply_A(static_cast<const Field<T>&>(x), q);
    krylov_initial_residual(ex, s, b, &q, r);
  }
  apply_M(static_cast<const Field<T>&>(r), z);
  krylov_rz(ex, s, r, z, kRz0, kRz1, true, 0);
  krylov_xpay(ex, s, z, p, true);

  double h[kScalarCount];
  bool converged = false;
  int it = 0;
  while (true) {
    const int rz = it % 2 == 0 ? kRz0 : kRz1, rz_new = it % 2 == 0 ? kRz1 : kRz0;
    apply_A(static_cast<const Field<T>&>(p), q);
    krylov_pq_alpha(ex, s, p, q, rz, it);
    krylov_update(ex, s.sc, p, q, x, r);
    ++it;
    if (it % opt.check_every == 0 || it == opt.max_iterations) {
      apply_A(static_cast<const Field<T>&>(x), q);
      krylov_check(ex, s, b, q, x, r);
      read_scalars(ex, s.sc, kScalarCount, h);  // host wait: the only one of the solve
      if (!std::isfinite(h[kBb]))
        throw NonFiniteValue(std::string(what) + ": right-hand side contains NaN or Inf");
      if (h[kStop] == 2) throw NonFiniteValue(std::string(what) + ": NaN/Inf during the solve");
      if (!std::isfinite(h[kRrTrue]) || !std::isfinite(h[kRr]))
        throw NonFiniteValue(std::string(what) + ": residual became NaN/Inf");
      if (h[kStop] == 3) {  // met at the start (b = 0 included): x is the start
        it = 0;
        converged = true;
        break;
      }
      if (h[kStop] == 4) {  // met the tolerance between two checks; nothing changed since
        it = int(h[kStopIt]);
        converged = true;
        break;
      }
      if (h[kStop] == 1) {
        // p.q = 0: p is in the null space, typically because r reached zero
        // (exact convergence) between two checks; x and r have not changed since.
        it = int(h[kStopIt]);
        converged = h[kRr] <= h[kTol2];
        break;
      }
      if (h[kRr] <= h[kTol2]) {
        converged = true;
        break;
      }
      if (it >= opt.max_iterations) break;
    }
    apply_M(static_cast<const Field<T>&>(r), z);
    krylov_rz(ex, s, r, z, rz_new, rz, false, it);
    krylov_xpay(ex, s, z, p, false);
  }
  krylov_finish_x(ex, s, x);  // canonical representative (e.g. zero-mean pressure)

  const double f = h[kScale], bnorm = std::sqrt(h[kBb]);
  const double tol = std::max(opt.rel_tol * bnorm, opt.abs_tol);
  SolveReport rep;
  rep.iterations = it;
  rep.converged = converged;
  rep.initial_residual = f == 0 ? 0.0 : std::sqrt(h[kRr0]) / f * report_scale;
  rep.residual = f == 0 ? 0.0 : std::sqrt(h[kRrTrue]) / f * report_scale;
  // The residual was finite, so a non-finite x can only come from scaling it back by |b|
  // (float: values beyond 3.4e38; krylov_finish_x multiplies by T(1/s), itself Inf when
  // |b| is). Reported here, where max |x| is already on the host.
  const double tmax = double(std::numeric_limits<T>::max());
  const double back = f == 0 || f == 1 ? 1.0 : 1 / f;
  if (f != 0 && h[kXmax] > 0 && (back > tmax || !(h[kXmax] * back <= tmax))) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ": the solution is not finite after %d iterations: it exceeds the range of %s "
                  "(|b| = %.3g)",
                  it, std::is_same<T, float>::value ? "float" : "double", bnorm * report_scale);
    throw NonFiniteValue(std::string(what) + buf);
  }
  if (!converged && opt.throw_on_failure) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ": not converged after %d iterations: residual %.3e > tolerance %.3e "
                  "(|b| = %.3e; raise max_iterations or loosen rel_tol/abs_tol)",
                  it, rep.residual, tol * report_scale, bnorm * report_scale);
    throw SolverNotConverged(std::string(what) + buf, it, rep.residual);
  }
  return rep;
}

}  // namespace dfluid::detail
