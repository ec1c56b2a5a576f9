// Elementwise kernels of the optimizers (see dfluid/optimizer.hpp), either path.
#include <cmath>

#include "dfluid/optimizer.hpp"
#include "core/exec.hpp"

namespace dfluid::detail {

namespace {
// The moment update, shared by adam_moments and adam_apply so that both give
// bitwise the same m and v.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE void adam_update(T g, T& m, T& v, T b1, T a1, T b2, T a2) {
  m = b1 * m + a1 * g;
  v = b2 * v + a2 * (g * g);
}
}  // namespace

template <class T>
void adam_moments(const Context& ctx, const Field<T>& g, Field<T>& m, Field<T>& v, double beta1,
                  double beta2) {
  check::same_shape(g, "adam_moments: g", m, "m");
  check::same_shape(g, "adam_moments: g", v, "v");
  check::accessible(ctx, g, "adam_moments: g");
  check::accessible(ctx, m, "adam_moments: m");
  check::accessible(ctx, v, "adam_moments: v");
  View<const T> gv = g.view();
  View<T> mv = m.view(), vv = v.view();
  const T b1 = T(beta1), b2 = T(beta2), a1 = T(1.0 - beta1), a2 = T(1.0 - beta2);
  for_each_cell(
      exec_of(ctx), g.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        adam_update(gv(i, j, k), mv(i, j, k), vv(i, j, k), b1, a1, b2, a2);
      });
}

template <class T>
void adam_apply(const Context& ctx, const Field<T>& x0, const Field<T>& g, const Field<T>& m,
                const Field<T>& v, const AdamStep& p, Field<T>& x) {
  check::same_shape(x0, "adam_apply: x0", x, "x");
  check::same_shape(x0, "adam_apply: x0", g, "g");
  check::same_shape(x0, "adam_apply: x0", m, "m");
  check::same_shape(x0, "adam_apply: x0", v, "v");
  check::accessible(ctx, x0, "adam_apply: x0");
  check::accessible(ctx, g, "adam_apply: g");
  check::accessible(ctx, m, "adam_apply: m");
  check::accessible(ctx, v, "adam_apply: v");
  check::accessible(ctx, x, "adam_apply: x");
  View<const T> x0v = x0.view(), gv = g.view(), mv = m.view(), vv = v.view();
  View<T> xv = x.view();
  const T b1 = T(p.beta1), b2 = T(p.beta2), a1 = T(1.0 - p.beta1), a2 = T(1.0 - p.beta2);
  const T a = T(p.alpha), inv_c1 = T(1.0 / p.c1), inv_c2 = T(1.0 / p.c2), e = T(p.eps);
  for_each_cell(
      exec_of(ctx), x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        T mi = mv(i, j, k), vi = vv(i, j, k);
        adam_update(gv(i, j, k), mi, vi, b1, a1, b2, a2);
        const T mhat = mi * inv_c1;
        const T vhat = vi * inv_c2;
        xv(i, j, k) = x0v(i, j, k) - a * mhat / (std::sqrt(vhat) + e);
      });
}

template <class T>
double squared_distance(const Context& ctx, const Field<T>& a, const Field<T>& b) {
  check::same_shape(a, "squared_distance: a", b, "b");
  check::accessible(ctx, a, "squared_distance: a");
  check::accessible(ctx, b, "squared_distance: b");
  View<const T> av = a.view(), bv = b.view();
  return sum_cells(
      exec_of(ctx), a.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const double d = double(av(i, j, k)) - double(bv(i, j, k));
        return d * d;
      });
}

template <class T>
Index count_different(const Context& ctx, const Field<T>& a, const Field<T>& b) {
  check::same_shape(a, "count_different: a", b, "b");
  check::accessible(ctx, a, "count_different: a");
  check::accessible(ctx, b, "count_different: b");
  View<const T> av = a.view(), bv = b.view();
  double n = sum_cells(
      exec_of(ctx), a.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { return av(i, j, k) == bv(i, j, k) ? 0.0 : 1.0; });
  return Index(n);
}

#define DFLUID_OPTIMIZER_OPS_INST(T)                                                             \
  template void adam_moments<T>(const Context&, const Field<T>&, Field<T>&, Field<T>&, double,   \
                                double);                                                         \
  template void adam_apply<T>(const Context&, const Field<T>&, const Field<T>&, const Field<T>&, \
                              const Field<T>&, const AdamStep&, Field<T>&);                      \
  template double squared_distance<T>(const Context&, const Field<T>&, const Field<T>&);         \
  template Index count_different<T>(const Context&, const Field<T>&, const Field<T>&);
DFLUID_OPTIMIZER_OPS_INST(float)
DFLUID_OPTIMIZER_OPS_INST(double)
#undef DFLUID_OPTIMIZER_OPS_INST

}  // namespace dfluid::detail
