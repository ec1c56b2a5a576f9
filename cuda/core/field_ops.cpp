// Whole-field utilities on either path (see dfluid/field_ops.hpp).
#include "dfluid/field_ops.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "core/exec.hpp"
#include "core/finite_flags.hpp"

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
void dot_into(const Context& ctx, const Field<T>& x, const Field<T>& y, double* dst) {
  check::same_shape(x, "dot_into: x", y, "y");
  check::accessible(ctx, x, "dot_into: x");
  check::accessible(ctx, y, "dot_into: y");
  View<const T> xv = x.view(), yv = y.view();
  detail::sum_cells_into(
      detail::exec_of(ctx), x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { return double(xv(i, j, k)) * double(yv(i, j, k)); },
      dst);
}

template <class T>
void masked_squared_error_into(const Context& ctx, const Field<T>& x, const Field<T>& y,
                               const Field<T>& mask, double* dst, Field<T>* grad,
                               double grad_scale) {
  check::same_shape(x, "masked_squared_error_into: x", y, "y");
  check::same_shape(x, "masked_squared_error_into: x", mask, "mask");
  check::accessible(ctx, x, "masked_squared_error_into: x");
  check::accessible(ctx, y, "masked_squared_error_into: y");
  check::accessible(ctx, mask, "masked_squared_error_into: mask");
  View<const T> xv = x.view(), yv = y.view(), mv = mask.view();
  const detail::Exec ex = detail::exec_of(ctx);
  // The value first: the gradient pass below leaves x alone, but keep the order obvious.
  detail::sum_cells_into(
      ex, x.extents(),
      DFLUID_LAMBDA(int i, int j, int k) {
        const double d = double(xv(i, j, k)) - double(yv(i, j, k));
        return double(mv(i, j, k)) * d * d;
      },
      dst);
  if (!grad) return;
  check::same_shape(x, "masked_squared_error_into: x", *grad, "grad");
  check::accessible(ctx, *grad, "masked_squared_error_into: grad");
  if (grad->data() == x.data())
    throw InvalidArgument("masked_squared_error_into: grad must not alias x");
  View<T> gv = grad->view();
  const double s = grad_scale;
  detail::for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const double d = double(xv(i, j, k)) - double(yv(i, j, k));
        gv(i, j, k) += T(s * double(mv(i, j, k)) * d);
      });
}

namespace {
template <class S>
void add_to_doubles(const Context& ctx, const S* src, int n, double* dst, double scale) {
  if (n < 0) throw InvalidArgument("add_doubles: n = " + std::to_string(n) + " must be >= 0");
  if (n == 0) return;
  if (!src || !dst)
    throw InvalidArgument(
        "add_doubles: src or dst is null; pass n values in the context's "
        "memory space (e.g. a Buffer<double> made with ctx.memory_space())");
  detail::for_each_cell(
      detail::exec_of(ctx), std::array<int, 3>{n, 1, 1},
      DFLUID_LAMBDA(int i, int, int) { dst[i] += scale * double(src[i]); });
}
}  // namespace

void add_doubles(const Context& ctx, const double* src, int n, double* dst, double scale) {
  add_to_doubles(ctx, src, n, dst, scale);
}
void add_doubles(const Context& ctx, const float* src, int n, double* dst, double scale) {
  add_to_doubles(ctx, src, n, dst, scale);
}

void read_doubles(const Context& ctx, const double* src, int n, double* dst) {
  if (n < 0) throw InvalidArgument("read_doubles: n = " + std::to_string(n) + " must be >= 0");
  if (n == 0) return;
  detail::read_scalars(detail::exec_of(ctx), src, n, dst);
}

namespace {
template <class T>
std::string nonfinite_message(const Field<T>& x, const std::string& what) {
  return what + ": contains NaN or Inf values (" + to_string(x.location()) + " of " +
         x.grid().describe() + ")";
}
}  // namespace

template <class T>
void check_finite(const Context& ctx, const Field<T>& x, const char* what) {
  if (!all_finite(ctx, x)) throw NonFiniteValue(nonfinite_message(x, what));
}

namespace detail {
template <class T>
void flag_nonfinite(const Context& ctx, const Field<T>& x, const std::string& what, int tag) {
  check::accessible(ctx, x, "flag_nonfinite: x");
  if (x.size() == 0) return;
  unsigned char* flag = register_flag_site(ctx, nonfinite_message(x, what), tag);
  View<const T> xv = x.view();
  const Exec ex = exec_of(ctx);
  auto cell = DFLUID_LAMBDA(int i, int j, int k) {
    const double a = double(xv(i, j, k));
    if (!(a - a == 0.0)) *flag = 1;  // inf - inf and nan - nan are NaN
  };
  if (ex.gpu) {
    for_each_cell(ex, x.extents(), cell);  // every writer stores the same byte
    flag_check_enqueued(ctx);
    return;
  }
  // CPU: serial, so that no two threads store the byte (the GPU path's one launch counted).
  count_gpu_work(ex, 1);
  const auto n = x.extents();
  for_each_cell_serial(n[0], n[1], n[2], cell);
}
}  // namespace detail

template <class T>
void flag_nonfinite(const Context& ctx, const Field<T>& x, const std::string& what) {
  detail::flag_nonfinite(ctx, x, what, detail::kFlagPlain);
}

#define DFLUID_FIELD_OPS_INST(T)                                                               \
  template void fill<T>(const Context&, Field<T>&, T);                                         \
  template void copy<T>(const Context&, const Field<T>&, Field<T>&);                           \
  template void axpy<T>(const Context&, T, const Field<T>&, Field<T>&);                        \
  template void scale<T>(const Context&, Field<T>&, T);                                        \
  template double dot<T>(const Context&, const Field<T>&, const Field<T>&);                    \
  template double sum<T>(const Context&, const Field<T>&);                                     \
  template double max_abs<T>(const Context&, const Field<T>&);                                 \
  template bool all_finite<T>(const Context&, const Field<T>&);                                \
  template void check_finite<T>(const Context&, const Field<T>&, const char*);                 \
  template void flag_nonfinite<T>(const Context&, const Field<T>&, const std::string&);        \
  template void dot_into<T>(const Context&, const Field<T>&, const Field<T>&, double*);        \
  template void masked_squared_error_into<T>(const Context&, const Field<T>&, const Field<T>&, \
                                             const Field<T>&, double*, Field<T>*, double);     \
  template void detail::flag_nonfinite<T>(const Context&, const Field<T>&, const std::string&, int);
DFLUID_FIELD_OPS_INST(float)
DFLUID_FIELD_OPS_INST(double)
#undef DFLUID_FIELD_OPS_INST
template void fill<std::uint8_t>(const Context&, Field<std::uint8_t>&, std::uint8_t);
template void copy<std::uint8_t>(const Context&, const Field<std::uint8_t>&, Field<std::uint8_t>&);

}  // namespace dfluid
