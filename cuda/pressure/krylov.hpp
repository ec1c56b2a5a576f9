// Generic preconditioned conjugate gradients (PCG) on Field<T>.
//
// Include only from cuda/*.cpp (it launches through exec.hpp). Interface:
//
//   detail::KrylovWorkspace<T> ws(ctx, grid, loc);   // 4 scratch fields + scalars, built once
//   SolveReport rep = detail::pcg(ctx, apply_A, apply_M, b, x, options, ws, "what",
//                                 project_null);       // last argument optional
//
//   apply_A(const Field<T>& in, Field<T>& out)  out = A in   (A symmetric positive
//                                               semi-definite; must not alias in/out)
//   apply_M(const Field<T>& r, Field<T>& z)     z = M^-1 r   (M symmetric positive
//                                               definite; IdentityPreconditioner{ctx} for none)
//   project_null(Field<T>& v)                   removes the null-space component of v
//                                               (NoNullSpace{} when A is definite)
//   report_scale (optional, default 1) multiplies the residuals in the report and
//                                               in messages (e.g. back to physical units)
//   b, x, ws fields all have the same shape. x: the initial guess when
//   options.warm_start, else it is zeroed first. `what` names the solve in messages.
//
// Conventions: all inner products are deterministic double sums (detail::sum_cells).
// The scalars of the iteration (r.z, p.q, alpha, beta, a breakdown flag) stay in
// the context's memory space: the dot products are reduced into them and the
// update kernels read alpha and beta from there, so an iteration has no host
// wait. The host reads them at a convergence check only, one host wait every
// options.check_every iterations (a breakdown or NaN between two checks stops
// the updates on the device and is acted on at the next check).
// The reported residual is recomputed as |b - A x| at exit (after project_null).
// Float solves whose |b| is tiny or huge are run on b/|b| (and x/|b|) so that
// tiny cotangents in adjoint solves do not underflow; the result is scaled back.
// Throws NonFiniteValue if b or a residual is NaN/Inf (the final |b - A x| included: x
// beyond the range of T), SolverNotConverged at the cap when options.throw_on_failure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>

#include "dfluid/field_ops.hpp"
#include "dfluid/linear_solver.hpp"
#include "dfluid/memory.hpp"
#include "core/exec.hpp"

namespace dfluid::detail {

template <class T>
struct KrylovWorkspace {
  Field<T> r, z, p, q;
  Buffer<double> scalars;  ///< kScalarCount doubles in the context's memory space
  KrylovWorkspace() = default;
  KrylovWorkspace(const Context& ctx, const Grid& g, Location loc = Location::Cell);
};

/// z = r (no preconditioning): IdentityPreconditioner{ctx}.
struct IdentityPreconditioner {
  Context ctx;
  template <class T>
  void operator()(const Field<T>& r, Field<T>& z) const {
    copy(ctx, r, z);
  }
};

struct NoNullSpace {
  template <class T>
  void operator()(Field<T>&) const {}
};

// ---- scalars of the iteration, in the context's memory space ----
// Two r.z slots alternate between iterations, so that beta = rz_new / rz_old
// never reads a slot the same iteration overwrote.
enum KrylovScalar : int {
  kRz0,
  kRz1,
  kPq,
  kRr,
  kAlpha,
  kBeta,
  kStop,    ///< 0: running; 1: breakdown (p.q <= 0); 2: p.q not finite
  kStopIt,  ///< iterations completed when the solve stopped
  kScalarCount
};

template <class T>
KrylovWorkspace<T>::KrylovWorkspace(const Context& ctx, const Grid& g, Location loc)
    : r(ctx, g, loc),
      z(ctx, g, loc),
      p(ctx, g, loc),
      q(ctx, g, loc),
      scalars(ctx, kScalarCount, ctx.memory_space()) {}

/// sc[dst] = sum x.y (no host wait).
template <class T>
void dot_into(const Exec& ex, const Field<T>& x, const Field<T>& y, double* sc, int dst) {
  View<const T> xv = x.view(), yv = y.view();
  sum_cells_into(
      ex, x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { return double(xv(i, j, k)) * double(yv(i, j, k)); },
      sc + dst);
}

/// Clears the stop flag before an iteration starts. (The device lambdas of
/// the scalar updates live in these non-template functions: nvcc rejects an
/// extended lambda inside pcg, whose template arguments are local lambdas.)
inline void krylov_reset(const Exec& ex, double* sc) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) {
        sc[kStop] = 0;
        sc[kStopIt] = 0;
      });
}

/// alpha = r.z / p.q, or a stop (recorded once, with the iteration count `it`)
/// when p.q is not positive: p in the null space (breakdown) or NaN.
inline void krylov_alpha(const Exec& ex, double* sc, int rz, int it) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) {
        const double pq = sc[kPq];
        if (sc[kStop] == 0 && !(pq > 0)) {
          sc[kStop] = (pq - pq == 0) ? 1 : 2;  // pq - pq is NaN for NaN and Inf
          sc[kStopIt] = it;
        }
        sc[kAlpha] = sc[kStop] != 0 ? 0.0 : sc[rz] / pq;
      });
}

/// beta = rz_new / rz_old
inline void krylov_beta(const Exec& ex, double* sc, int rz_new, int rz_old) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { sc[kBeta] = sc[rz_new] / sc[rz_old]; });
}

// ---- fused vector updates (one pass each; no-ops once the solve stopped) ----
/// p = z + beta * p
template <class T>
void krylov_xpay(const Exec& ex, const Field<T>& z, const double* sc, Field<T>& p) {
  View<const T> zv = z.view();
  View<T> pv = p.view();
  for_each_cell(
      ex, p.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (sc[kStop] != 0) return;
        const T beta = T(sc[kBeta]);
        pv(i, j, k) = zv(i, j, k) + beta * pv(i, j, k);
      });
}
/// x += alpha * p; r -= alpha * q
template <class T>
void krylov_update(const Exec& ex, const double* sc, const Field<T>& p, const Field<T>& q,
                   Field<T>& x, Field<T>& r) {
  View<const T> pv = p.view(), qv = q.view();
  View<T> xv = x.view(), rv = r.view();
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (sc[kStop] != 0) return;
        const T alpha = T(sc[kAlpha]);
        xv(i, j, k) += alpha * pv(i, j, k);
        rv(i, j, k) -= alpha * qv(i, j, k);
      });
}

template <class T, class ApplyA, class ApplyM, class NullProj = NoNullSpace>
SolveReport pcg(const Context& ctx, ApplyA&& apply_A, ApplyM&& apply_M, const Field<T>& b,
                Field<T>& x, const SolverOptions& opt, KrylovWorkspace<T>& ws, const char* what,
                NullProj&& project_null = NullProj{}, double report_scale = 1) {
  validate(opt, what);
  check::same_shape(b, (std::string(what) + ": rhs").c_str(), x, "x");
  check::same_shape(b, (std::string(what) + ": rhs").c_str(), ws.r, "workspace");
  const Exec ex = exec_of(ctx);
  Field<T>&r = ws.r, &z = ws.z, &p = ws.p, &q = ws.q;

  const double bnorm = std::sqrt(dot(ctx, b, b));
  if (!std::isfinite(bnorm))
    throw NonFiniteValue(std::string(what) + ": right-hand side contains NaN or Inf");
  const double tol = std::max(opt.rel_tol * bnorm, opt.abs_tol);
  SolveReport rep;
  if (bnorm == 0) {  // x = 0 is an exact solution (warm start or not)
    fill(ctx, x, T(0));
    rep.converged = true;
    return rep;
  }
  // Underflow guard for float (see header comment). s multiplies b and x.
  double s = 1;
  if (std::is_same<T, float>::value && bnorm > 0 && (bnorm < 1e-12 || bnorm > 1e12)) s = 1 / bnorm;

  if (!opt.warm_start)
    fill(ctx, x, T(0));
  else if (s != 1)
    scale(ctx, x, T(s));
  copy(ctx, b, r);
  if (s != 1) scale(ctx, r, T(s));
  if (opt.warm_start) {
    apply_A(static_cast<const Field<T>&>(x), q);
    axpy(ctx, T(-1), q, r);
  }
  project_null(r);
  double rnorm = std::sqrt(dot(ctx, r, r));
  rep.initial_residual = rnorm / s;
  const double stol = tol * s;
  bool converged = rnorm <= stol;
  int it = 0;
  if (!converged) {
    double* sc = ws.scalars.data();
    krylov_reset(ex, sc);
    apply_M(static_cast<const Field<T>&>(r), z);
    project_null(z);
    copy(ctx, z, p);
    dot_into(ex, r, z, sc, kRz0);
    while (it < opt.max_iterations) {
      const int rz = it % 2 == 0 ? kRz0 : kRz1, rz_new = it % 2 == 0 ? kRz1 : kRz0;
      apply_A(static_cast<const Field<T>&>(p), q);
      dot_into(ex, p, q, sc, kPq);
      krylov_alpha(ex, sc, rz, it);
      krylov_update(ex, sc, p, q, x, r);
      ++it;
      if (it % opt.check_every == 0 || it == opt.max_iterations) {
        dot_into(ex, r, r, sc, kRr);
        double h[kScalarCount];
        read_scalars(ex, sc, kScalarCount, h);  // host wait
        if (h[kStop] == 2) throw NonFiniteValue(std::string(what) + ": NaN/Inf during the solve");
        rnorm = std::sqrt(h[kRr]);
        if (!std::isfinite(rnorm))
          throw NonFiniteValue(std::string(what) + ": residual became NaN/Inf");
        if (h[kStop] == 1) {
          // p.q = 0: p is in the null space, typically because r reached zero
          // (exact convergence) between two checks; x and r have not changed since.
          it = int(h[kStopIt]);
          converged = rnorm <= stol;
          break;
        }
        if (rnorm <= stol) {
          converged = true;
          break;
        }
      }
      apply_M(static_cast<const Field<T>&>(r), z);
      project_null(z);
      dot_into(ex, r, z, sc, rz_new);
      krylov_beta(ex, sc, rz_new, rz);
      krylov_xpay(ex, z, sc, p);
    }
  }
  if (s != 1) scale(ctx, x, T(1 / s));
  project_null(x);  // canonical representative (e.g. zero-mean pressure)
  // True residual of the returned x (one extra A application, one host wait).
  apply_A(static_cast<const Field<T>&>(x), q);
  copy(ctx, b, r);
  axpy(ctx, T(-1), q, r);
  project_null(r);
  rep.residual = std::sqrt(dot(ctx, r, r));
  // The iteration's residual was finite, so x itself left the range of T: values beyond
  // it (float: 3.4e38), e.g. when scaling x back by |b| above. Reported here, where the
  // value is already on the host, rather than as a NaN residual the caller may not check.
  if (!std::isfinite(rep.residual)) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ": the solution is not finite (its residual is %s after %d iterations): it "
                  "exceeds the range of %s (|b| = %.3g)",
                  std::isnan(rep.residual) ? "NaN" : "Inf", it,
                  std::is_same<T, float>::value ? "float" : "double", bnorm * report_scale);
    throw NonFiniteValue(std::string(what) + buf);
  }
  rep.iterations = it;
  rep.converged = converged;
  rep.initial_residual *= report_scale;
  rep.residual *= report_scale;
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
