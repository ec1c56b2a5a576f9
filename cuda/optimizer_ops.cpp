// Elementwise kernels of the optimizers (see dfluid/optimizer.hpp), either path.
#include <cmath>

#include "dfluid/optimizer.hpp"
#include "exec.hpp"

namespace dfluid::detail {

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
        const T gi = gv(i, j, k);
        mv(i, j, k) = b1 * mv(i, j, k) + a1 * gi;
        vv(i, j, k) = b2 * vv(i, j, k) + a2 * (gi * gi);
      });
}

template <class T>
void adam_apply(const Context& ctx, const Field<T>& x0, const Field<T>& m, const Field<T>& v,
                double alpha, double c1, double c2, double eps, Field<T>& x) {
  check::same_shape(x0, "adam_apply: x0", x, "x");
  check::same_shape(x0, "adam_apply: x0", m, "m");
  check::same_shape(x0, "adam_apply: x0", v, "v");
  check::accessible(ctx, x0, "adam_apply: x0");
  check::accessible(ctx, m, "adam_apply: m");
  check::accessible(ctx, v, "adam_apply: v");
  check::accessible(ctx, x, "adam_apply: x");
  View<const T> x0v = x0.view(), mv = m.view(), vv = v.view();
  View<T> xv = x.view();
  const T a = T(alpha), inv_c1 = T(1.0 / c1), inv_c2 = T(1.0 / c2), e = T(eps);
  for_each_cell(
      exec_of(ctx), x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const T mhat = mv(i, j, k) * inv_c1;
        const T vhat = vv(i, j, k) * inv_c2;
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
                              double, double, double, double, Field<T>&);                        \
  template double squared_distance<T>(const Context&, const Field<T>&, const Field<T>&);         \
  template Index count_different<T>(const Context&, const Field<T>&, const Field<T>&);
DFLUID_OPTIMIZER_OPS_INST(float)
DFLUID_OPTIMIZER_OPS_INST(double)
#undef DFLUID_OPTIMIZER_OPS_INST

}  // namespace dfluid::detail
