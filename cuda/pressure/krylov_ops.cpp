// The kernels of the preconditioned CG solve (declared in krylov.hpp, driven by pcg()):
// one translation unit for every device lambda, instantiated for float and double.
#include "pressure/krylov.hpp"

namespace dfluid::detail {

/// Sum of v over the cells of region `reg` into *dst (regions past kFusedRegions only).
template <class T>
void krylov_region_sum(const Exec& ex, const KrylovState& s, int reg, const Field<T>& v,
                       double* dst) {
  View<const T> vv = v.view();
  const View<const std::int32_t> lab = s.label;
  sum_cells_into(
      ex, v.extents(),
      DFLUID_LAMBDA(int i, int j, int k) {
        return lab(i, j, k) == reg ? double(vv(i, j, k)) : 0.0;
      },
      dst);
}

/// |b|^2 and the region sums of b; then s, the tolerance, the means of s b; clears the stop.
template <class T>
void krylov_setup(const Exec& ex, const KrylovState& s, const Field<T>& b, double rel_tol,
                  double abs_tol) {
  for (int r = kFusedRegions; r < s.regions; ++r)
    krylov_region_sum(ex, s, r, b, s.sum_t + r);
  View<const T> bv = b.view();
  const bool is_float = std::is_same<T, float>::value;
  multi_reduce_into<3>(
      ex, b.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        const double x = bv(i, j, k);
        const int reg = s.region(i, j, k);
        v[0] = x * x;
        v[1] = reg == 0 ? x : 0.0;
        v[2] = reg == 1 ? x : 0.0;
      },
      DFLUID_LAMBDA(const double* out) {
        double* sc = s.sc;
        const double bb = out[0], bn = sqrt(bb);
        double f = 1;
        if (bn == 0)
          f = 0;  // x = 0 is the exact solution
        else if (is_float && (bn < 1e-12 || bn > 1e12))
          f = 1 / bn;
        const double tol = (rel_tol * bn > abs_tol ? rel_tol * bn : abs_tol) * f;
        sc[kBb] = bb;
        sc[kScale] = f;
        sc[kTol2] = tol * tol;
        sc[kStop] = 0;
        sc[kStopIt] = 0;
        sc[kBeta] = 0;
        for (int r = 0; r < s.regions; ++r) {
          const double sb = r < kFusedRegions ? out[1 + r] : s.sum_t[r];
          s.mean_b[r] = f * sb / s.counts[r];
        }
      });
}

/// x = s x (warm start; 0 when b = 0).
template <class T>
void krylov_scale_start(const Exec& ex, const KrylovState& s, Field<T>& x) {
  View<T> xv = x.view();
  const double* sc = s.sc;
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const double f = sc[kScale];
        if (f == 0)
          xv(i, j, k) = T(0);
        else if (f != 1)
          xv(i, j, k) *= T(f);
      });
}

/// r = s b (- A x0 in q when warm) minus the region means of s b; |r|^2 -> kRr0, and a stop
/// (3) when it already meets the tolerance.
template <class T>
void krylov_initial_residual(const Exec& ex, const KrylovState& s, const Field<T>& b,
                             const Field<T>* ax, Field<T>& r) {
  View<const T> bv = b.view();
  View<const T> qv{};
  if (ax) qv = ax->view();
  View<T> rv = r.view();
  const double* sc = s.sc;
  multi_reduce_into<1>(
      ex, r.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        const double f = sc[kScale];
        T t = f == 1 ? bv(i, j, k) : T(f) * bv(i, j, k);
        if (qv.data) t -= qv(i, j, k);
        const int reg = s.region(i, j, k);
        if (reg >= 0) t -= T(s.mean_b[reg]);
        rv(i, j, k) = t;
        v[0] = double(t) * double(t);
      },
      DFLUID_LAMBDA(const double* out) {
        double* c = s.sc;
        c[kRr0] = out[0];
        if (!(out[0] > c[kTol2])) c[kStop] = 3;  // met at the start (or NaN: seen at the check)
      });
}

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
               int rz_new, int rz_old, bool first, int it) {
  for (int g = kFusedRegions; g < s.regions; ++g) {
    krylov_region_sum(ex, s, g, z, s.sum_z + g);
    krylov_region_sum(ex, s, g, r, s.sum_r + g);
  }
  View<const T> rv = r.view(), zv = z.view();
  multi_reduce_into<6>(
      ex, r.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        const double a = rv(i, j, k), c = zv(i, j, k);
        const int reg = s.region(i, j, k);
        v[0] = a * c;
        v[1] = reg == 0 ? c : 0.0;
        v[2] = reg == 0 ? a : 0.0;
        v[3] = reg == 1 ? c : 0.0;
        v[4] = reg == 1 ? a : 0.0;
        v[5] = a * a;
      },
      DFLUID_LAMBDA(const double* out) {
        double* sc = s.sc;
        // r (z - m) = r.z - sum_regions m * (sum of r over the region)
        double rz = out[0];
        for (int g = 0; g < s.regions; ++g) {
          const bool f = g < kFusedRegions;
          const double m = (f ? out[1 + 2 * g] : s.sum_z[g]) / s.counts[g];
          s.mean_z[g] = m;
          rz -= m * (f ? out[2 + 2 * g] : s.sum_r[g]);
        }
        sc[rz_new] = rz;
        if (sc[kStop] == 0) {
          const double rr = out[5];
          if (rr <= sc[kTol2])
            sc[kStop] = 4;
          else if (!(rz > 0))
            sc[kStop] = rz - rz == 0 && rr - rr == 0 ? 1 : 2;
          if (sc[kStop] != 0) sc[kStopIt] = it;
        }
        if (!first) sc[kBeta] = rz / sc[rz_old];
      });
}

/// p = (z - its region means) + beta p (first: without the old p). No-op once stopped.
template <class T>
void krylov_xpay(const Exec& ex, const KrylovState& s, const Field<T>& z, Field<T>& p, bool first) {
  View<const T> zv = z.view();
  View<T> pv = p.view();
  const double* sc = s.sc;
  for_each_cell(
      ex, p.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (sc[kStop] != 0) return;
        T zt = zv(i, j, k);
        const int reg = s.region(i, j, k);
        if (reg >= 0) zt -= T(s.mean_z[reg]);
        pv(i, j, k) = first ? zt : zt + T(sc[kBeta]) * pv(i, j, k);
      });
}

/// p.q, then alpha = r.z / p.q, or a stop (recorded once, with the iteration count `it`)
/// when p.q is not positive: p in the null space (breakdown) or NaN.
template <class T>
void krylov_pq_alpha(const Exec& ex, const KrylovState& s, const Field<T>& p, const Field<T>& q,
                     int rz, int it) {
  View<const T> pv = p.view(), qv = q.view();
  multi_reduce_into<1>(
      ex, p.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        v[0] = double(pv(i, j, k)) * double(qv(i, j, k));
      },
      DFLUID_LAMBDA(const double* out) {
        double* sc = s.sc;
        const double pq = out[0];
        sc[kPq] = pq;
        if (sc[kStop] == 0 && !(pq > 0)) {
          sc[kStop] = (pq - pq == 0) ? 1 : 2;  // pq - pq is NaN for NaN and Inf
          sc[kStopIt] = it;
        }
        sc[kAlpha] = sc[kStop] != 0 ? 0.0 : sc[rz] / pq;
      });
}

/// x += alpha * p; r -= alpha * q (no-op once stopped)
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

/// The check's pass (ax = A x): the true residual t = s b - A x minus the region means of
/// s b, |t|^2 with t's region means removed -> kRrTrue; x's region means -> mean_x;
/// max |x| -> kXmax; |r|^2 -> kRr (the convergence test, as the recursion's r keeps
/// falling where float's true residual stalls at rounding level).
template <class T>
void krylov_check(const Exec& ex, const KrylovState& s, const Field<T>& b, const Field<T>& ax,
                  const Field<T>& x, const Field<T>& r) {
  View<const T> bv = b.view(), qv = ax.view(), xv = x.view(), rv = r.view();
  const double* sc = s.sc;
  if (s.regions > kFusedRegions) {
    const View<const std::int32_t> lab = s.label;
    for (int g = kFusedRegions; g < s.regions; ++g) {
      const double* mb = s.mean_b;
      sum_cells_into(
          ex, b.extents(),
          DFLUID_LAMBDA(int i, int j, int k) {
            if (lab(i, j, k) != g) return 0.0;
            return sc[kScale] * double(bv(i, j, k)) - double(qv(i, j, k)) - mb[g];
          },
          s.sum_t + g);
      krylov_region_sum(ex, s, g, x, s.sum_x + g);
    }
  }
  multi_reduce_into<7, 1u << 5>(
      ex, b.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        const int reg = s.region(i, j, k);
        double t = sc[kScale] * double(bv(i, j, k)) - double(qv(i, j, k));
        if (reg >= 0) t -= s.mean_b[reg];
        const double xc = xv(i, j, k);
        v[0] = t * t;
        v[1] = reg == 0 ? t : 0.0;
        v[2] = reg == 0 ? xc : 0.0;
        v[3] = reg == 1 ? t : 0.0;
        v[4] = reg == 1 ? xc : 0.0;
        v[5] = xc == xc ? (xc < 0 ? -xc : xc) : std::numeric_limits<double>::infinity();
        v[6] = double(rv(i, j, k)) * double(rv(i, j, k));
      },
      DFLUID_LAMBDA(const double* out) {
        double* c = s.sc;
        double rr = out[0];
        for (int g = 0; g < s.regions; ++g) {
          const bool f = g < kFusedRegions;
          const double st = f ? out[1 + 2 * g] : s.sum_t[g];
          rr -= st * st / s.counts[g];  // |t - mean|^2 = |t|^2 - (sum t)^2 / count
          s.mean_x[g] = (f ? out[2 + 2 * g] : s.sum_x[g]) / s.counts[g];
        }
        c[kRrTrue] = rr > 0 ? rr : (rr == rr ? 0.0 : rr);
        c[kXmax] = out[5];
        c[kRr] = out[6];
      });
}

/// x = (x - its region means) / s: the canonical representative in the caller's units.
template <class T>
void krylov_finish_x(const Exec& ex, const KrylovState& s, Field<T>& x) {
  View<T> xv = x.view();
  const double* sc = s.sc;
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const double f = sc[kScale];
        if (f == 0) {
          xv(i, j, k) = T(0);
          return;
        }
        T v = xv(i, j, k);
        const int reg = s.region(i, j, k);
        if (reg >= 0) v -= T(s.mean_x[reg]);
        if (f == 1) {
          xv(i, j, k) = v;
          return;
        }
        // 1 / f beyond T's range is Inf as a factor (the host reports the overflow).
        const double back = 1 / f;
        const T tb = back > double(std::numeric_limits<T>::max())
                         ? std::numeric_limits<T>::infinity()
                         : T(back);
        xv(i, j, k) = v * tb;
      });
}

#define DFLUID_KRYLOV_OPS(T)                                                                       \
  template void krylov_region_sum<T>(const Exec&, const KrylovState&, int, const Field<T>&,        \
                                     double*);                                                     \
  template void krylov_setup<T>(const Exec&, const KrylovState&, const Field<T>&, double, double); \
  template void krylov_scale_start<T>(const Exec&, const KrylovState&, Field<T>&);                 \
  template void krylov_initial_residual<T>(const Exec&, const KrylovState&, const Field<T>&,       \
                                           const Field<T>*, Field<T>&);                            \
  template void krylov_rz<T>(const Exec&, const KrylovState&, const Field<T>&, const Field<T>&,    \
                             int, int, bool, int);                                                 \
  template void krylov_xpay<T>(const Exec&, const KrylovState&, const Field<T>&, Field<T>&, bool); \
  template void krylov_pq_alpha<T>(const Exec&, const KrylovState&, const Field<T>&,               \
                                   const Field<T>&, int, int);                                     \
  template void krylov_update<T>(const Exec&, const double*, const Field<T>&, const Field<T>&,     \
                                 Field<T>&, Field<T>&);                                            \
  template void krylov_check<T>(const Exec&, const KrylovState&, const Field<T>&, const Field<T>&, \
                                const Field<T>&, const Field<T>&);                                 \
  template void krylov_finish_x<T>(const Exec&, const KrylovState&, Field<T>&);
DFLUID_KRYLOV_OPS(float)
DFLUID_KRYLOV_OPS(double)
#undef DFLUID_KRYLOV_OPS

}  // namespace dfluid::detail
