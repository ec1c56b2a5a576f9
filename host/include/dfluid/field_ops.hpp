// Whole-field utilities: fill, copy, axpy, and deterministic reductions.
// Functions returning a value to the host are host waits on the GPU path.
#pragma once

#include "dfluid/field.hpp"

namespace dfluid {

template <class T>
void fill(const Context& ctx, Field<T>& f, T value);
/// dst = src; any combination of memory spaces (a host<->device copy is enqueued on ctx's stream).
template <class T>
void copy(const Context& ctx, const Field<T>& src, Field<T>& dst);
/// y += a * x
template <class T>
void axpy(const Context& ctx, T a, const Field<T>& x, Field<T>& y);
/// f *= a
template <class T>
void scale(const Context& ctx, Field<T>& f, T a);

/// Host wait. Sum over all values of x*y, accumulated in double in a fixed order.
template <class T>
double dot(const Context& ctx, const Field<T>& x, const Field<T>& y);
/// Host wait. Sum of values, in double, fixed order.
template <class T>
double sum(const Context& ctx, const Field<T>& x);
/// Host wait. max |x| (0 for an empty field); NaN values make it NaN.
template <class T>
double max_abs(const Context& ctx, const Field<T>& x);
/// Host wait. True when every value is finite.
template <class T>
bool all_finite(const Context& ctx, const Field<T>& x);
/// Host wait. Throws NonFiniteValue naming `what` if any value is NaN or Inf.
template <class T>
void check_finite(const Context& ctx, const Field<T>& x, const char* what);

template <class T>
void copy(const Context& ctx, const MacVelocity<T>& src, MacVelocity<T>& dst) {
  for (int a = 0; a < src.dim(); ++a)
    copy(ctx, src[a], dst[a]);
}
template <class T>
void fill(const Context& ctx, MacVelocity<T>& u, T value) {
  for (int a = 0; a < u.dim(); ++a)
    fill(ctx, u[a], value);
}

}  // namespace dfluid
