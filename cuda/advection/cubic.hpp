// C1 cubic sampling (Interpolation::Cubic, see dfluid/advection.hpp): Catmull-Rom
// interpolation, i.e. the cubic Hermite interpolant whose slope at each sample is the
// centred difference of its neighbours, as a tensor product over 4 samples per axis
// (4, 16, 64 points in 1D, 2D, 3D).
//
// Why Catmull-Rom: the adjoint of semi-Lagrangian advection differentiates the sample
// with respect to the departure point. Linear interpolation's slope jumps at every
// sample plane, so a departure point exactly on one (a symmetric start) has two
// one-sided derivatives. The Catmull-Rom interpolant has a continuous value AND slope
// in the position (C1), it reproduces the samples (unlike an un-prefiltered cubic
// B-spline, which smooths and is more diffusive than linear; a prefiltered B-spline
// needs a global solve per line), it is third-order accurate, and it is LINEAR in the
// data, so its adjoint is a plain scatter with fixed weights (a monotone, limited
// cubic would be nonlinear in the data, with kinks of its own where the limiter
// switches). It can overshoot the data; MacCormack's clamp (the bracketing 2^D
// samples, as with linear) keeps the corrected value in range.
//
// Per axis, with t in [0, 1] the position between samples f1 and f2 of f0..f3:
//   p(t)  = f1 + t (c1 + t (c2 + t c3)),  d0 = f1 - f0, d1 = f2 - f1, d2 = f3 - f2,
//   c1 = (d0 + d1)/2,  c2 = -d0 + 3/2 d1 - 1/2 d2,  c3 = (d0 + d2)/2 - d1
// (the difference form: a uniform field stays exactly uniform, a sample is reproduced
// exactly at t = 0), and in weight form p = sum_m w_m(t) f_m with
//   w0 = -t (1-t)^2 / 2,  w1 = (3t^3 - 5t^2 + 2)/2,  w2 = (-3t^3 + 4t^2 + t)/2,
//   w3 = t^2 (t-1) / 2,
// which the adjoint scatters (the two forms agree to rounding).
//
// Boundary rules (the linear rules of interpolation.hpp, extended to the second
// sample beyond the boundary that the 4-point stencil reaches):
//  * periodic axes: every tap index wraps (mod n);
//  * cell-centred samples: the ghost cells mirror the interior about the boundary
//    face with the same affine rule, ghost[-1-m] = alpha * q[m] + beta (and
//    q[n+m] = alpha * q[n-1-m] + beta on the high side): ZeroGradient is the even
//    extension, Fixed b the odd extension about b, both C1 across the face;
//  * face-centred samples along their normal axis: the one face beyond the boundary
//    face (index -1 or n+1) is the linear extrapolation 2 f[0] - f[1] (odd
//    extension about the boundary face; the slope at the boundary face is the
//    one-sided difference f[1] - f[0], second-order accurate). A tap of this kind
//    reads two samples, so it scatters into two. A Source has at most one face axis
//    (MAC components).
// Positions are wrapped / clamped as for linear; the position derivative is zero
// along clamped axes (dtdp).
// Include only from cuda/*.cpp (see exec.hpp).
#pragma once

#include "advection/interpolation.hpp"

namespace dfluid::interp {

// The heavy per-sample functions of a cubic stencil (its loops over 4^D taps) are compiled
// out of line on the host, once per type and dimension instead of into every cell function
// (a call is nothing beside 64 taps). This trimmed the advection Release compile only
// from about 5.0 to 4.5 CPU-minutes (linear alone: 1.2); the cubic's cost there is mostly
// its own instantiations. Device code (__CUDA_ARCH__) leaves inlining to nvcc.
#if defined(__CUDA_ARCH__)
#define DFLUID_CUBIC_OUTLINE
#else
#define DFLUID_CUBIC_OUTLINE __attribute__((noinline))
#endif

/// Catmull-Rom value of f0..f3 at t (difference form, see above).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T cubic_value(T f0, T f1, T f2, T f3, T t) {
  const T d0 = f1 - f0, d1 = f2 - f1, d2 = f3 - f2;
  const T c1 = T(0.5) * (d0 + d1);
  const T c2 = T(1.5) * d1 - d0 - T(0.5) * d2;
  const T c3 = T(0.5) * (d0 + d2) - d1;
  return f1 + t * (c1 + t * (c2 + t * c3));
}

/// d/dt of cubic_value.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T cubic_slope(T f0, T f1, T f2, T f3, T t) {
  const T d0 = f1 - f0, d1 = f2 - f1, d2 = f3 - f2;
  const T c1 = T(0.5) * (d0 + d1);
  const T c2 = T(1.5) * d1 - d0 - T(0.5) * d2;
  const T c3 = T(0.5) * (d0 + d2) - d1;
  return c1 + t * (T(2) * c2 + T(3) * t * c3);
}

/// Catmull-Rom weights w_m(t) of the four taps (weight form, see above).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE void cubic_weights(T t, T w[4]) {
  const T s = T(1) - t;
  w[0] = T(-0.5) * t * s * s;
  w[1] = T(0.5) * ((T(3) * t - T(5)) * t * t + T(2));
  w[2] = T(0.5) * (((T(-3) * t + T(4)) * t + T(1)) * t);
  w[3] = T(-0.5) * t * t * s;
}

/// The four taps along one axis: tap m sits at sample index i0 - 1 + m of the extended
/// (ghost-padded) line and reads
///   alpha[m] * ((1 + kappa[m]) data[i[m]] - kappa[m] data[i2[m]]) + beta[m]
/// (kappa = 1 only for the extrapolated face beyond a boundary face; else i2 = i).
template <class T>
struct CubicAxis {
  int i[4];
  int i2[4];
  T kappa[4];
  T alpha[4];
  T beta[4];
  T t;
  T dtdp;  ///< 1 inside the domain (or wrapped), 0 where the position was clamped
};

/// The taps of the bracket [i0, i0 + 1] with weight t (see CubicAxis), with the
/// boundary rules of this file.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE CubicAxis<T> cubic_axis_bracket(int i0, T t, int n, int periodic,
                                                             int face, const T alpha[2],
                                                             const T beta[2]) {
  CubicAxis<T> ax;
  ax.t = t;
  ax.dtdp = T(1);
  DFLUID_UNROLL
  for (int m = 0; m < 4; ++m) {
    int e = i0 - 1 + m;
    T al = T(1), be = T(0), ka = T(0);
    int e2 = e;
    if (periodic) {
      e %= n;
      if (e < 0) e += n;
      e2 = e;
    } else if (face) {  // faces 0..n stored; taps reach -1 and n + 1
      if (e < 0) {
        e = 0;
        e2 = 1;
        ka = T(1);
      } else if (e > n) {
        e = n;
        e2 = n - 1;
        ka = T(1);
      } else {
        e2 = e;
      }
    } else {
      // Cell centres 0..n-1; taps reach -2 and n + 1. Mirror into the domain,
      // composing the affine rules (twice only when n = 1: -2 -> 1 -> 0).
      DFLUID_UNROLL
      for (int r = 0; r < 2; ++r) {
        if (e < 0) {
          e = -1 - e;
          be = al * beta[0] + be;  // value = al * (alpha x + beta) + be
          al = al * alpha[0];
        } else if (e > n - 1) {
          e = 2 * n - 1 - e;
          be = al * beta[1] + be;
          al = al * alpha[1];
        }
      }
      e2 = e;
    }
    ax.i[m] = e;
    ax.i2[m] = e2;
    ax.kappa[m] = ka;
    ax.alpha[m] = al;
    ax.beta[m] = be;
  }
  return ax;
}

/// Taps along one axis for position p (cell units): the position handling of
/// axis_stencil (wrap / clamp, NaN gives NaN weights with in-range indices).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE CubicAxis<T> cubic_axis(T p, int n, int periodic, int face,
                                                     const T alpha[2], const T beta[2]) {
  const AxisPosition<T> ap = axis_position(p, n, periodic, face);
  int i0 = ap.i0;
  T t = ap.t;
  if (face && !periodic && i0 >= n) {  // exactly on the last face: the end of the last bracket
    i0 = n - 1;
    t = T(1);
  }
  CubicAxis<T> ax = cubic_axis_bracket(i0, t, n, periodic, face, alpha, beta);
  if (ap.nan_pos) ax.t = p;
  ax.dtdp = ap.clamped ? T(0) : T(1);
  return ax;
}

/// Tensor-product Catmull-Rom stencil in D dimensions: 4^D taps. Tap c takes tap
/// m_a = (c >> 2a) & 3 along axis a; its value is
///   alpha_c ((1 + kappa_c) data[off_c] - kappa_c data[off2_c]) + beta_c
/// with alpha, beta composed over the axes as in combine_axes (x, then y, then z),
/// and its weight w_c = prod_a w_{m_a}(t_a).
template <class T, int D>
struct CubicStencil {
  static constexpr int kPoints = 1 << (2 * D);
  CubicAxis<T> ax[D];
  Index stride[D];

  /// Offsets, extrapolation and affine rule of tap c.
  DFLUID_HD DFLUID_FORCEINLINE void tap(int c, Index& off, Index& off2, T& kappa, T& alpha,
                                        T& beta) const {
    off = 0;
    off2 = 0;
    kappa = T(0);
    alpha = T(1);
    beta = T(0);
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a) {
      const int m = (c >> (2 * a)) & 3;
      off += Index(ax[a].i[m]) * stride[a];
      off2 += Index(ax[a].i2[m]) * stride[a];
      if (ax[a].kappa[m] != T(0)) kappa = ax[a].kappa[m];  // one face axis at most
      beta = ax[a].alpha[m] * beta + ax[a].beta[m];
      alpha = ax[a].alpha[m] * alpha;
    }
  }

  /// alpha_c ((1 + kappa_c) v[off_c] - kappa_c v[off2_c]) (+ beta_c when `affine`).
  DFLUID_HD DFLUID_FORCEINLINE T tap_value(int c, const View<const T>& v, bool affine) const {
    Index off, off2;
    T kappa, alpha, beta;
    tap(c, off, off2, kappa, alpha, beta);
    T x = v.data[off];
    if (kappa != T(0)) x = x + kappa * (x - v.data[off2]);
    return affine ? alpha * x + beta : alpha * x;
  }

  /// Nested reduction of tap values g (x first), with the slope instead of the value
  /// along axis `slope_axis` (-1: values only).
  DFLUID_HD inline T reduce(T g[kPoints], int slope_axis) const {
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a) {
      const int rows = 1 << (2 * (D - 1 - a));
      const T t = ax[a].t;
      for (int r = 0; r < rows; ++r)  // in place: row r reads 4r..4r+3 >= r
        g[r] = a == slope_axis ? cubic_slope(g[4 * r], g[4 * r + 1], g[4 * r + 2], g[4 * r + 3], t)
                               : cubic_value(g[4 * r], g[4 * r + 1], g[4 * r + 2], g[4 * r + 3], t);
    }
    return g[0];
  }

  /// The interpolated value (ghost offsets included).
  DFLUID_HD DFLUID_CUBIC_OUTLINE T value(const View<const T>& v) const {
    T g[kPoints];
    for (int c = 0; c < kPoints; ++c)
      g[c] = tap_value(c, v, true);
    return reduce(g, -1);
  }

  /// The linear part on another array of the same layout (beta dropped): the
  /// derivative along a direction dv of the data (what a tangent gathers).
  DFLUID_HD DFLUID_CUBIC_OUTLINE T linear_part(const View<const T>& dv) const {
    T g[kPoints];
    for (int c = 0; c < kPoints; ++c)
      g[c] = tap_value(c, dv, false);
    return reduce(g, -1);
  }

  /// d(value)/dp_a for every axis (cell units), zero along clamped axes.
  DFLUID_HD DFLUID_CUBIC_OUTLINE void position_gradient(const View<const T>& v, T grad[D]) const {
    T taps[kPoints];
    for (int c = 0; c < kPoints; ++c)
      taps[c] = tap_value(c, v, true);
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a) {
      T g[kPoints];
      for (int c = 0; c < kPoints; ++c)
        g[c] = taps[c];
      grad[a] = reduce(g, a) * ax[a].dtdp;
    }
  }

  /// Adds s * d(value)/d(data[o]) into every sample o the stencil reads (the
  /// transpose of linear_part): sink.add(target, o, s * weight).
  template <class Sink>
  DFLUID_HD DFLUID_CUBIC_OUTLINE void scatter(T s, int target, Sink& sink) const {
    T w[D][4];
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a)
      cubic_weights(ax[a].t, w[a]);
    for (int c = 0; c < kPoints; ++c) {
      Index off, off2;
      T kappa, alpha, beta;
      tap(c, off, off2, kappa, alpha, beta);
      T wc = alpha;
      DFLUID_UNROLL
      for (int a = 0; a < D; ++a)
        wc *= w[a][(c >> (2 * a)) & 3];
      if (kappa == T(0)) {
        sink.add(target, off, s * wc);
      } else {  // (1 + kappa) data[off] - kappa data[off2]
        sink.add(target, off, s * (wc * (T(1) + kappa)));
        sink.add(target, off2, s * (-wc * kappa));
      }
    }
  }
};

/// The Catmull-Rom stencil of `src` at position p (cell units).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE CubicStencil<T, D> make_cubic_stencil(const Source<T>& src,
                                                                   const T p[3]) {
  CubicStencil<T, D> st;
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    st.ax[a] = cubic_axis(p[a], src.n[a], src.periodic[a], src.face[a], src.alpha[a], src.beta[a]);
    st.stride[a] = src.stride(a);
  }
  return st;
}

// Device code of the cubic policy is compiled only with -DDFLUID_CUDA_CUBIC=ON (see
// CMakeLists.txt: it multiplies nvcc's time for cuda/advection by six). Otherwise the
// policy's device side traps; the entry points refuse Interpolation::Cubic on a CUDA
// context before any kernel is launched (advection_checks.hpp), so the trap is never reached.
#if defined(__CUDA_ARCH__) && !DFLUID_WITH_CUDA_CUBIC
#define DFLUID_CUBIC_BODY(...) __trap()
#else
#define DFLUID_CUBIC_BODY(...) __VA_ARGS__
#endif

/// Catmull-Rom interpolation as an interpolation policy (see Linear in interpolation.hpp).
template <class T, int D>
struct Cubic {
  using St = CubicStencil<T, D>;
  static DFLUID_HD DFLUID_FORCEINLINE St at(const Source<T>& src, const T p[3]) {
    return make_cubic_stencil<T, D>(src, p);
  }
  static DFLUID_HD DFLUID_FORCEINLINE St at_node(const Source<T>& src, int i, int j, int k,
                                                 int face_axis) {
    T p[3];
    node_position(i, j, k, face_axis, p);
    return at(src, p);
  }
  /// Node values come from the stencil (NodeTaps are linear).
  static constexpr bool kNodeTaps = false;
  static DFLUID_HD DFLUID_FORCEINLINE T value(const St& st, const View<const T>& v) {
    DFLUID_CUBIC_BODY(return st.value(v));
    return T(0);
  }
  static DFLUID_HD DFLUID_FORCEINLINE T linear_part(const St& st, const View<const T>& dv) {
    DFLUID_CUBIC_BODY(return st.linear_part(dv));
    return T(0);
  }
  static DFLUID_HD DFLUID_FORCEINLINE void position_gradient(const St& st, const View<const T>& v,
                                                             T grad[D]) {
    DFLUID_CUBIC_BODY(st.position_gradient(v, grad));
  }
  template <class Sink>
  static DFLUID_HD DFLUID_FORCEINLINE void scatter(const St& st, T s, int target, Sink& sink) {
    DFLUID_CUBIC_BODY(st.scatter(s, target, sink));
  }
};

}  // namespace dfluid::interp

#undef DFLUID_CUBIC_OUTLINE
#undef DFLUID_CUBIC_BODY
