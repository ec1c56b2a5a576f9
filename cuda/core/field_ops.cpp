// Whole-field utilities on either path (see dfluid/field_ops.hpp).
#include "dfluid/field_ops.hpp"

#include <cmath>
#include <limits>

#include "core/exec.hpp"

namespace dfluid {

template <class T>
void fill(const Context& ctx, Field<T>& f, T value) {
  check::accessible(ctx, f, "fill: field");
  View<T> v = f.view();
  detail::for_each_cell(
      detail::exec_of(ctx), f.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { v(i, j, k) = value; });
}

template <class T>
void copy(const Context& ctx, const Field<T>& src, Field<T>& dst) {
  check::same_shape(src, "copy: src", dst, "dst");
  if (src.view().contiguous() && dst.view().contiguous()) {
    detail::copy_bytes(ctx, dst.data(), dst.space(), src.data(), src.space(),
                       sizeof(T) * std::size_t(src.size()));
    return;
  }
  check::accessible(ctx, src, "copy: src");
  check::accessible(ctx, dst, "copy: dst");
  View<const T> s = src.view();
  View<T> d = dst.view();
  detail::for_each_cell(
      detail::exec_of(ctx), src.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { d(i, j, k) = s(i, j, k); });
}

template <class T>
void axpy(const Context& ctx, T a, const Field<T>& x, Field<T>& y) {
  check::same_shape(x, "axpy: x", y, "y");
  check::accessible(ctx, x, "axpy: x");
  check::accessible(ctx, y, "axpy: y");
  View<const T> xv = x.view();
  View<T> yv = y.view();
  detail::for_each_cell(
      detail::exec_of(ctx), x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { yv(i, j, k) += a * xv(i, j, k); });
}

template <class T>
void scale(const Context& ctx, Field<T>& f, T a) {
  check::accessible(ctx, f, "scale: field");
  View<T> v = f.view();
  detail::for_each_cell(
      detail::exec_of(ctx), f.extents(), DFLUID_LAMBDA(int i, int j, int k) { v(i, j, k) *= a; });
}

template <class T>
double dot(const Context& ctx, const Field<T>& x, const Field<T>& y) {
  check::same_shape(x, "dot: x", y, "y");
  check::accessible(ctx, x, "dot: x");
  check::accessible(ctx, y, "dot: y");
  View<const T> xv = x.view(), yv = y.view();
  return detail::sum_cells(
      detail::exec_of(ctx), x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { return double(xv(i, j, k)) * double(yv(i, j, k)); });
}

template <class T>
double sum(const Context& ctx, const Field<T>& x) {
  check::accessible(ctx, x, "sum: x");
  View<const T> xv = x.view();
  return detail::sum_cells(
      detail::exec_of(ctx), x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { return double(xv(i, j, k)); });
}

template <class T>
double max_abs(const Context& ctx, const Field<T>& x) {
  check::accessible(ctx, x, "max_abs: x");
  if (x.size() == 0) return 0.0;
  View<const T> xv = x.view();
  // A NaN maps to +inf so that it is never lost in the max; all_finite tells them apart.
  return detail::max_cells(
      detail::exec_of(ctx), x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        double a = double(xv(i, j, k));
        a = a < 0 ? -a : a;
        return a == a ? a : std::numeric_limits<double>::infinity();
      });
}

template <class T>
bool all_finite(const Context& ctx, const Field<T>& x) {
  check::accessible(ctx, x, "all_finite: x");
  View<const T> xv = x.view();
  double bad = detail::sum_cells(
      detail::exec_of(ctx), x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        double a = double(xv(i, j, k));
        return (a - a == 0.0) ? 0.0 : 1.0;  // inf - inf and nan - nan are NaN
      });
  return bad == 0.0;
}

template <class T>
void check_finite(const Context& ctx, const Field<T>& x, const char* what) {
  if (!all_finite(ctx, x))
    throw NonFiniteValue(std::string(what) + ": contains NaN or Inf values (" +
                         to_string(x.location()) + " of " + x.grid().describe() + ")");
}

#define DFLUID_FIELD_OPS_INST(T)                                            \
  template void fill<T>(const Context&, Field<T>&, T);                      \
  template void copy<T>(const Context&, const Field<T>&, Field<T>&);        \
  template void axpy<T>(const Context&, T, const Field<T>&, Field<T>&);     \
  template void scale<T>(const Context&, Field<T>&, T);                     \
  template double dot<T>(const Context&, const Field<T>&, const Field<T>&); \
  template double sum<T>(const Context&, const Field<T>&);                  \
  template double max_abs<T>(const Context&, const Field<T>&);              \
  template bool all_finite<T>(const Context&, const Field<T>&);             \
  template void check_finite<T>(const Context&, const Field<T>&, const char*);
DFLUID_FIELD_OPS_INST(float)
DFLUID_FIELD_OPS_INST(double)
#undef DFLUID_FIELD_OPS_INST
template void fill<std::uint8_t>(const Context&, Field<std::uint8_t>&, std::uint8_t);
template void copy<std::uint8_t>(const Context&, const Field<std::uint8_t>&, Field<std::uint8_t>&);

}  // namespace dfluid
