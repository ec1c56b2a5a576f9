// Whole-field utilities: fill, copy, axpy, and deterministic reductions.
// Functions returning a value to the host are host waits on the GPU path.
#pragma once

#include <string>

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

// Reductions left on the device: no host wait; read the values later, several in one wait
// (read_doubles). `dst` is one double in ctx's memory space (e.g. an element of a
// Buffer<double> made with ctx.memory_space()); it holds the value once the work enqueued so
// far has run.
/// *dst = dot(x, y): bitwise the value dot returns.
template <class T>
void dot_into(const Context& ctx, const Field<T>& x, const Field<T>& y, double* dst);
/// *dst = sum over the cells of mask·(x − y)², in double (the order of dot); with grad,
/// grad += T(grad_scale · mask · (x − y)) (the difference taken in double). x, y, mask and
/// grad share one shape and live in ctx's memory space; x may not alias grad.
template <class T>
void masked_squared_error_into(const Context& ctx, const Field<T>& x, const Field<T>& y,
                               const Field<T>& mask, double* dst, Field<T>* grad = nullptr,
                               double grad_scale = 1);
/// dst[i] += scale * src[i] for i < n, on the device (one launch, no host wait): how a
/// per-step reduction left by an *_into function is accumulated over steps. src and dst are
/// n doubles each in ctx's memory space (they may not overlap).
void add_doubles(const Context& ctx, const double* src, int n, double* dst, double scale = 1);
/// The same from n floats (each converted to double first).
void add_doubles(const Context& ctx, const float* src, int n, double* dst, double scale = 1);
/// Host wait (one, for all n): copies n doubles from ctx's memory space to the host.
void read_doubles(const Context& ctx, const double* src, int n, double* dst);

// Deferred checks: check_finite without its host wait.
/// No host wait: enqueues a check of x (one kernel) whose finding is reported later, by the
/// next read of pending checks: raise_nonfinite, or a library call documented to report them
/// (PressureSolver's solves after their convergence read, Simulation::step and step_adjoint
/// before they return, Rollout::run before it returns). That read throws NonFiniteValue with
/// the message check_finite would give for the first pending check (in enqueue order) that
/// found a NaN/Inf, and forgets every pending check. x must stay alive and unchanged until
/// the check has run on the stream (it is enqueued like any operator). At most 4096 checks
/// are pending: the next one first waits once and reads them (so it may throw).
template <class T>
void flag_nonfinite(const Context& ctx, const Field<T>& x, const std::string& what);
/// Reports the pending checks of flag_nonfinite (see there). One host wait when checks are
/// pending, none otherwise.
void raise_nonfinite(const Context& ctx);

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
