// Per-cell sampling math: linear / bilinear / trilinear interpolation of
// cell-centred and face-centred (MAC) arrays at a position, with the box
// boundary rules, and the backtrace used by semi-Lagrangian advection. The
// C1 cubic (Interpolation::Cubic) is in cubic.hpp, on the same Source and
// boundary rules; the policies Linear / Cubic (below, and in cubic.hpp) let the
// advection cell functions take either.
//
// Include only from cuda/*.cpp (see exec.hpp). Everything here is a pure
// DFLUID_HD function of its inputs: the forward operators and their adjoints
// call the same functions, so both see the same stencil (indices + weights).
// Interpolation is done in software with full-precision weights (never with
// texture hardware, whose fractional weights are 8-bit).
//
// Positions are in cell units: p = (x - origin) / dx, so the domain is
// [0, n] along each axis, cell (i, j, k) has its centre at (i+½, j+½, k+½)
// and face f normal to axis a sits at p_a = f.
//
// Boundary rules along one axis of a sampled array:
//  * the position is wrapped into [0, n) on a periodic axis and clamped to
//    [0, n] on any other axis (departure points never leave the domain);
//  * cell-centred samples (at i+½): beyond the first / last centre the missing
//    neighbour is a ghost value, an affine function of the boundary sample:
//    ghost = alpha * boundary + beta (ZeroGradient: alpha = 1, beta = 0;
//    Fixed b: alpha = -1, beta = 2b, so that the value on the side is b);
//  * face-centred samples along their normal axis (at integer positions):
//    faces 0..n are all stored, the boundary face is used as stored.
// A corner that is a ghost along several axes composes the axis rules in the
// order x, then y, then z (the same as interpolating along x first).
#pragma once

#include <array>
#include <cmath>
#include <limits>

#include "dfluid/config.hpp"
#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/view.hpp"

namespace dfluid::interp {

template <class T>
DFLUID_HD DFLUID_FORCEINLINE T min_of(T a, T b) {
  return b < a ? b : a;
}
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T max_of(T a, T b) {
  return a < b ? b : a;
}

/// One array to sample, and how it sits on the grid. Trivially copyable:
/// kernels capture it by value.
template <class T>
struct Source {
  View<const T> v;
  int n[3] = {1, 1, 1};                      ///< cells along each axis (domain length in cells)
  int periodic[3] = {0, 0, 0};               ///< 1: the axis wraps
  int face[3] = {0, 0, 0};                   ///< 1: samples at integer positions (MAC normal axis)
  T alpha[3][2] = {{1, 1}, {1, 1}, {1, 1}};  ///< ghost = alpha * boundary sample + beta
  T beta[3][2] = {{0, 0}, {0, 0}, {0, 0}};   ///< (per axis, per side; cell-centred axes only)

  DFLUID_HD Index stride(int a) const { return a == 0 ? Index(1) : (a == 1 ? v.sy : v.sz); }
};

/// The two samples that bracket a position along one axis.
/// value = (1 - t) * g0 + t * g1 with g_b = alpha[b] * data[i[b]] + beta[b].
template <class T>
struct AxisStencil {
  int i[2];
  T t;
  T dtdp;  ///< dt/dp: 1 inside the domain (or wrapped), 0 where the position was clamped
  T alpha[2];
  T beta[2];
  bool ghost;  ///< a ghost rule was applied (alpha, beta not the identity 1, 0 on some side)
};

/// Integer floor of a value known to lie in a small range (no libm call).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE int floor_small(T s) {
  int i = int(s);
  return T(i) > s ? i - 1 : i;
}

/// The axis stencil of the bracket [i0, i0 + 1] with weight t (s = i0 + t, s the position
/// relative to the first sample), with the boundary rules applied: wrapping, the last face,
/// ghost values. Shared by axis_stencil (any position) and node_axis_stencil (grid nodes).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE AxisStencil<T> axis_bracket(int i0, T t, int n, int periodic, int face,
                                                         const T alpha[2], const T beta[2]) {
  AxisStencil<T> st;
  st.alpha[0] = st.alpha[1] = T(1);
  st.beta[0] = st.beta[1] = T(0);
  st.ghost = false;
  if (periodic) {
    if (i0 < 0) i0 += n;  // i0 in [-1, n]
    if (i0 >= n) i0 -= n;
    st.i[0] = i0;
    st.i[1] = i0 + 1 == n ? 0 : i0 + 1;
  } else if (face) {  // faces 0..n stored; s in [0, n]
    st.i[0] = i0;
    st.i[1] = i0 + 1;
    if (i0 >= n) {  // exactly on the last face: take it as is (t = 0)
      st.i[0] = st.i[1] = n;
      t = T(0);
    }
  } else {  // cell centres 0..n-1; s in [-1/2, n-1/2]
    int i1 = i0 + 1;
    if (i0 < 0) {
      i0 = 0;
      st.alpha[0] = alpha[0];
      st.beta[0] = beta[0];
      st.ghost = true;
    }
    if (i1 > n - 1) {
      i1 = n - 1;
      st.alpha[1] = alpha[1];
      st.beta[1] = beta[1];
      st.ghost = true;
    }
    st.i[0] = i0;
    st.i[1] = i1;
  }
  st.t = t;
  st.dtdp = T(1);
  return st;
}

/// A position p (cell units) along one axis, wrapped (periodic) or clamped to [0, n]:
/// s = i0 + t relative to the first sample (cell centres at i + 1/2, faces at i). Shared by
/// the linear (axis_stencil) and the cubic (cubic_axis) stencils.
template <class T>
struct AxisPosition {
  int i0;
  T t;
  bool nan_pos;  ///< p was NaN (mapped to 0, keeping indices in range)
  bool clamped;  ///< p lay outside [0, n] on a non-periodic axis
};

template <class T>
DFLUID_HD DFLUID_FORCEINLINE AxisPosition<T> axis_position(T p, int n, int periodic, int face) {
  const T N = T(n);
  T q = p;
  if (periodic) q = q - N * T(::floor(q / N));
  AxisPosition<T> ap;
  ap.nan_pos = !(q == q);
  ap.clamped = q < T(0) || q > N;
  if (!(q >= T(0))) q = T(0);  // also maps NaN to 0, keeping indices in range
  if (q > N) q = N;
  const T s = face ? q : q - T(0.5);
  ap.i0 = floor_small(s);
  ap.t = s - T(ap.i0);
  return ap;
}

/// Stencil along one axis for position p (cell units). A NaN position gives
/// a NaN weight (so the sample is NaN) with in-range indices.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE AxisStencil<T> axis_stencil(T p, int n, int periodic, int face,
                                                         const T alpha[2], const T beta[2]) {
  const AxisPosition<T> ap = axis_position(p, n, periodic, face);
  AxisStencil<T> st = axis_bracket(ap.i0, ap.t, n, periodic, face, alpha, beta);
  if (ap.nan_pos) st.t = p;
  st.dtdp = ap.clamped ? T(0) : T(1);
  return st;
}

/// axis_stencil at a grid node, bit for bit, without the search: the node sits at index
/// `idx` along the axis, on a face position (`node_face`) or a cell centre. Node positions
/// lie inside the domain (never clamped or wrapped), and relative to the sampled array's
/// own samples they are either on one (t = 0) or halfway between two (t = 1/2, exact in
/// floating point): on a face array along its normal axis, s = idx (node on a face) or
/// idx + 1/2 (node at a centre); on a cell array, s = idx (centre) or idx - 1/2 (face).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE AxisStencil<T> node_axis_stencil(int idx, int node_face, int n,
                                                              int periodic, int face,
                                                              const T alpha[2], const T beta[2]) {
  if (node_face == face) return axis_bracket(idx, T(0), n, periodic, face, alpha, beta);
  return axis_bracket(node_face ? idx - 1 : idx, T(0.5), n, periodic, face, alpha, beta);
}

/// Tensor-product stencil in D dimensions: 2^D corners. Corner c has bit a set
/// when it takes the upper sample along axis a.
///   corner value  g_c = alpha[c] * data[off[c]] + beta[c]
///   sample        lerp along x, then y, then z (see evaluate)
///   weight        w_c = prod_a (bit_a(c) ? t[a] : 1 - t[a])   (sum_c w_c g_c)
/// d(sample) / d(data[off[c]]) = w_c * alpha[c]  (what an adjoint scatters).
/// Most stencils have no ghost corner (ghost == false: every alpha_c = 1, beta_c = 0); their
/// corner values are then read as data[off[c]] + 0, which is alpha_c data[off[c]] + beta_c bit
/// for bit, without composing the per-corner rules (most of the work of building a stencil).
template <class T, int D>
struct Stencil {
  static constexpr int kCorners = 1 << D;
  Index off[kCorners];
  T alpha[kCorners];
  T beta[kCorners];
  T t[D];
  T dtdp[D];   ///< 0 along axes where the position was clamped to the domain, else 1
  bool ghost;  ///< some corner is a ghost value (alpha_c, beta_c not 1, 0)
  /// The position lies inside the samples along every axis (make_stencil's fast path): no
  /// ghost, wrap or clamp, dtdp = 1, and the corners' offsets grow with c, so they span
  /// [off[0], off[kCorners - 1]] (what the adjoints' direct adds test; see box_weights).
  bool box;

  DFLUID_HD T weight(int c) const {
    T w = T(1);
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a)
      w *= ((c >> a) & 1) ? t[a] : T(1) - t[a];
    return w;
  }
  /// Derivative of the sample with respect to data[off[c]].
  DFLUID_HD T gradient_weight(int c) const { return weight(c) * alpha[c]; }
};

/// The D-dimensional stencil from its axis stencils.
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE Stencil<T, D> combine_axes(const Source<T>& src,
                                                        const AxisStencil<T> ax[D]) {
  Stencil<T, D> s;
  s.ghost = false;
  s.box = false;
  Index o[D][2];  // each axis's part of the corner offsets
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    s.t[a] = ax[a].t;
    s.dtdp[a] = ax[a].dtdp;
    s.ghost = s.ghost || ax[a].ghost;
    o[a][0] = Index(ax[a].i[0]) * src.stride(a);
    o[a][1] = Index(ax[a].i[1]) * src.stride(a);
  }
  DFLUID_UNROLL
  for (int c = 0; c < Stencil<T, D>::kCorners; ++c) {
    Index off = 0;
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a)
      off += o[a][(c >> a) & 1];
    s.off[c] = off;
    s.alpha[c] = T(1);
    s.beta[c] = T(0);
  }
  if (!s.ghost) return s;
  DFLUID_UNROLL
  for (int c = 0; c < Stencil<T, D>::kCorners; ++c) {
    T al = T(1), be = T(0);
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a) {
      const int b = (c >> a) & 1;
      be = ax[a].alpha[b] * be + ax[a].beta[b];  // compose: axis a applied after axes < a
      al = ax[a].alpha[b] * al;
    }
    s.alpha[c] = al;
    s.beta[c] = be;
  }
  return s;
}

template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE Stencil<T, D> make_stencil(const Source<T>& src, const T p[3]) {
  // Most positions lie inside the samples along every axis, s = i0 + t with both i0 and
  // i0 + 1 stored samples (no wrap, clamp or ghost): the stencil is then its lower corner plus
  // the strides, built here without the boundary rules. Bit for bit what axis_stencil and
  // combine_axes give for such a position: s is computed the same way (on a periodic axis
  // the wrap p - n floor(p / n) returns p itself for p in [0, n - 1)), and NaN fails the test.
  T s[D];
  bool inside = true;
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    s[a] = src.face[a] ? p[a] : p[a] - T(0.5);
    const int last = src.face[a] && !src.periodic[a] ? src.n[a] : src.n[a] - 1;
    inside = inside && s[a] >= T(0) && s[a] < T(last);
  }
  if (inside) {
    Stencil<T, D> st;
    st.ghost = false;
    st.box = true;
    Index base = 0;
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a) {
      const int i0 = floor_small(s[a]);
      st.t[a] = s[a] - T(i0);
      st.dtdp[a] = T(1);
      base += Index(i0) * src.stride(a);
    }
    DFLUID_UNROLL
    for (int c = 0; c < Stencil<T, D>::kCorners; ++c) {
      Index off = base;
      DFLUID_UNROLL
      for (int a = 0; a < D; ++a)
        if ((c >> a) & 1) off += src.stride(a);
      st.off[c] = off;
      st.alpha[c] = T(1);
      st.beta[c] = T(0);
    }
    return st;
  }
  AxisStencil<T> ax[D];
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a)
    ax[a] = axis_stencil(p[a], src.n[a], src.periodic[a], src.face[a], src.alpha[a], src.beta[a]);
  return combine_axes<T, D>(src, ax);
}

/// make_stencil at node (i, j, k) of an array at `face_axis` (-1: cell centres), i.e. at
/// node_position(i, j, k, face_axis), bit for bit (see node_axis_stencil).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE Stencil<T, D> node_stencil(const Source<T>& src, int i, int j, int k,
                                                        int face_axis) {
  const int idx[3] = {i, j, k};
  AxisStencil<T> ax[D];
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a)
    ax[a] = node_axis_stencil(idx[a], face_axis == a ? 1 : 0, src.n[a], src.periodic[a],
                              src.face[a], src.alpha[a], src.beta[a]);
  return combine_axes<T, D>(src, ax);
}

/// Corner values g_c of a stencil on the data of `v`.
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE void corner_values(const Stencil<T, D>& s, const View<const T>& v,
                                                T g[Stencil<T, D>::kCorners]) {
  if (!s.ghost) {  // alpha_c = 1, beta_c = 0: 1 * v + 0 is v + 0 (-0 becomes +0 either way)
    DFLUID_UNROLL
    for (int c = 0; c < Stencil<T, D>::kCorners; ++c)
      g[c] = v.data[s.off[c]] + T(0);
    return;
  }
  DFLUID_UNROLL
  for (int c = 0; c < Stencil<T, D>::kCorners; ++c)
    g[c] = s.alpha[c] * v.data[s.off[c]] + s.beta[c];
}

/// The interpolated value: nested lerps a + t (b - a), x first. (Equal to
/// sum_c w_c g_c up to rounding; the lerp form keeps uniform fields exactly
/// uniform and reproduces a sample exactly when t = 0.)
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE T evaluate(const Stencil<T, D>& s, const View<const T>& v) {
  T g[Stencil<T, D>::kCorners];
  corner_values(s, v, g);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    const int h = 1 << a;
    DFLUID_UNROLL
    for (int c = 0; c < Stencil<T, D>::kCorners; c += 2 * h)
      g[c] = g[c] + s.t[a] * (g[c + h] - g[c]);
  }
  return g[0];
}

/// The samples of non-zero weight of an array (a velocity component) at the nodes of an array
/// at `face_axis` (-1: cell centres), for nodes away from the box sides, where no wrap or ghost
/// rule applies. Along an axis where the nodes sit on the array's own samples (t = 0) the upper
/// sample has weight 0, and evaluate's lerp g0 + 0 (g1 - g0) is g0 for finite data: at most two
/// axes remain (the nodes' face axis and the array's), t = 1/2 along them, so a velocity
/// component at a node is 1, 2 or 4 samples instead of the stencil's 2^D, at fixed offsets from
/// the node. value() is evaluate(node_stencil(...)) bit for bit for finite data (the remaining
/// lerps run in the same order); a non-finite sample of zero weight does not reach it (it
/// would make 0 (g1 - g0) NaN). Built on the host once per launch (node_taps), since every
/// node of a launch has the same plan.
template <class T>
struct NodeTaps {
  Index shift = 0;         ///< first sample's offset relative to the node's own offset
  Index step[2] = {0, 0};  ///< offsets to the upper sample along the remaining axes
  int active = 0;          ///< remaining axes (t = 1/2): 0, 1 or 2
  DFLUID_HD DFLUID_FORCEINLINE T value(const View<const T>& v, int i, int j, int k) const {
    const T* p = v.data + (v.offset(i, j, k) + shift);
    const T h = T(0.5);
    // + 0: evaluate's corner value 1 * v + 0 (-0 becomes +0)
    if (active == 0) return p[0] + T(0);
    const T g0 = p[0] + T(0), g1 = p[step[0]] + T(0);
    const T x0 = g0 + h * (g1 - g0);
    if (active == 1) return x0;
    const T g2 = p[step[1]] + T(0), g3 = p[step[0] + step[1]] + T(0);
    const T x1 = g2 + h * (g3 - g2);
    return x0 + h * (x1 - x0);
  }
  /// Adds s * d(value)/d(sample) into the samples (target `target` of the sink, v's layout):
  /// the linear stencil's scatter at the node without its corners of weight 0, bit for bit
  /// (the weights are products of 1 and 1/2, exact).
  template <class Sink>
  DFLUID_HD DFLUID_FORCEINLINE void scatter(const View<const T>& v, int i, int j, int k, T s,
                                            int target, Sink& sink) const {
    const Index o = v.offset(i, j, k) + shift;
    // The taps span [o, o + step[0] + step[1]] (unused steps are 0).
    if (T* d = sink.direct_range(target, o, o + step[0] + step[1])) {
      if (active == 0) {
        d[o] += s * T(1);
        return;
      }
      if (active == 1) {
        const T w = s * T(0.5);
        d[o] += w;
        d[o + step[0]] += w;
        return;
      }
      const T w = s * T(0.25);
      d[o] += w;
      d[o + step[0]] += w;
      d[o + step[1]] += w;
      d[o + step[0] + step[1]] += w;
      return;
    }
    if (active == 0) {
      sink.add(target, o, s * T(1));
      return;
    }
    if (active == 1) {
      const T w = s * T(0.5);
      sink.add(target, o, w);
      sink.add(target, o + step[0], w);
      return;
    }
    const T w = s * T(0.25);
    sink.add(target, o, w);
    sink.add(target, o + step[0], w);
    sink.add(target, o + step[1], w);
    sink.add(target, o + step[0] + step[1], w);
  }
};

/// The NodeTaps of `src` at the nodes of an array at `face_axis`, and the box of node indices
/// [lo, hi] where they apply: `lo` and `hi` are narrowed to it (host side).
template <class T, int D>
NodeTaps<T> node_taps(const Source<T>& src, int face_axis, int lo[3], int hi[3]) {
  NodeTaps<T> nt;
  for (int a = 0; a < D; ++a) {
    const int n = src.n[a];
    if ((face_axis == a ? 1 : 0) == src.face[a]) {          // on a sample: t = 0
      if (src.periodic[a] && hi[a] > n - 1) hi[a] = n - 1;  // index n wraps
      continue;
    }
    // t = 1/2: samples idx, idx + 1 of a face array at cell centres (the upper one wraps on
    // a periodic axis), or idx - 1, idx of a cell array at faces (ghosts at the sides)
    const Index stride = src.stride(a);
    if (src.face[a]) {
      if (src.periodic[a] && hi[a] > n - 2) hi[a] = n - 2;
    } else {
      if (lo[a] < 1) lo[a] = 1;
      if (hi[a] > n - 1) hi[a] = n - 1;
      nt.shift -= stride;
    }
    if (nt.active < 2) nt.step[nt.active] = stride;
    ++nt.active;  // at most 2: the nodes and the array have at most one face axis each
  }
  return nt;
}

/// The interpolant's linear part on another array `dv` of the same layout:
/// sum_c w_c alpha_c dv[off_c], the ghost offsets beta dropped, in the nested
/// lerp form of evaluate. This is the derivative of the sample along a
/// direction dv of the data (what a tangent gathers; gradient_weight is what
/// the adjoint scatters).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE T evaluate_linear(const Stencil<T, D>& s, const View<const T>& dv) {
  T g[Stencil<T, D>::kCorners];
  DFLUID_UNROLL
  for (int c = 0; c < Stencil<T, D>::kCorners; ++c)
    g[c] = s.alpha[c] * dv.data[s.off[c]];
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    const int h = 1 << a;
    DFLUID_UNROLL
    for (int c = 0; c < Stencil<T, D>::kCorners; c += 2 * h)
      g[c] = g[c] + s.t[a] * (g[c + h] - g[c]);
  }
  return g[0];
}

/// Smallest and largest corner value of the stencil (MacCormack's clamp range).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE void stencil_range(const Stencil<T, D>& s, const View<const T>& v,
                                                T& lo, T& hi) {
  T g[Stencil<T, D>::kCorners];
  corner_values(s, v, g);
  lo = hi = g[0];
  DFLUID_UNROLL
  for (int c = 1; c < Stencil<T, D>::kCorners; ++c) {
    lo = min_of(lo, g[c]);
    hi = max_of(hi, g[c]);
  }
}

/// Derivative of the interpolant with respect to the position p_a (cell
/// units), for the adjoint of a departure point: sum_c (d w_c / d t_a) g_c,
/// zero along axes where the position was clamped.
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE void position_gradient(const Stencil<T, D>& s, const View<const T>& v,
                                                    T grad[D]) {
  T g[Stencil<T, D>::kCorners];
  corner_values(s, v, g);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    T sum = T(0);
    DFLUID_UNROLL
    for (int c = 0; c < Stencil<T, D>::kCorners; ++c) {
      T w = ((c >> a) & 1) ? T(1) : T(-1);
      DFLUID_UNROLL
      for (int b = 0; b < D; ++b)
        if (b != a) w *= ((c >> b) & 1) ? s.t[b] : T(1) - s.t[b];
      sum += w * g[c];
    }
    grad[a] = sum * s.dtdp[a];
  }
}

/// The corner weights w_c of a box stencil (alpha_c = 1), bit for bit gradient_weight(c):
/// weight(c) multiplies 1 by the axis factors in axis order, and 1 * f = f exactly, so
/// w_c = (f_0 f_1) f_2 with f_a = t_a or 1 - t_a; built here axis by axis, each partial
/// product shared by the corners that extend it (12 products in 3D instead of 24).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE void box_weights(const Stencil<T, D>& s,
                                              T w[Stencil<T, D>::kCorners]) {
  w[0] = T(1) - s.t[0];
  w[1] = s.t[0];
  DFLUID_UNROLL
  for (int a = 1; a < D; ++a) {
    const int h = 1 << a;
    const T lo = T(1) - s.t[a];
    DFLUID_UNROLL
    for (int c = 0; c < h; ++c) {
      w[c + h] = w[c] * s.t[a];
      w[c] = w[c] * lo;
    }
  }
}

/// position_gradient of a box stencil (dtdp = 1), bit for bit: the weight of corner c along
/// axis a is (+-1 f_b) f_b' over the other axes in order, i.e. +-(f_b f_b') exactly (a sign
/// change is exact), so each product of the other axes' factors is formed once for the two
/// corners that differ only along a; the sum runs over c in the same order from 0.
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE void box_position_gradient(const Stencil<T, D>& s,
                                                        const View<const T>& v, T grad[D]) {
  constexpr int kC = Stencil<T, D>::kCorners;
  T g[kC];
  DFLUID_UNROLL
  for (int c = 0; c < kC; ++c)
    g[c] = v.data[s.off[c]] + T(0);  // corner_values of a stencil without ghosts
  T f[D][2];                         // the axis factors: 1 - t (lower sample), t (upper)
  DFLUID_UNROLL
  for (int b = 0; b < D; ++b) {
    f[b][0] = T(1) - s.t[b];
    f[b][1] = s.t[b];
  }
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    // P[m]: the product of the other axes' factors in axis order; m = c with bit a removed.
    T P[kC / 2];
    DFLUID_UNROLL
    for (int m = 0; m < kC / 2; ++m) {
      const int c = (m & ((1 << a) - 1)) | ((m >> a) << (a + 1));  // bit a of c is 0
      if constexpr (D == 1) {
        P[m] = T(1);
      } else {
        const int b0 = a == 0 ? 1 : 0;  // the first other axis
        T w = f[b0][(c >> b0) & 1];
        DFLUID_UNROLL
        for (int b = b0 + 1; b < D; ++b)
          if (b != a) w = w * f[b][(c >> b) & 1];
        P[m] = w;
      }
    }
    T sum = T(0);
    DFLUID_UNROLL
    for (int c = 0; c < kC; ++c) {
      const int m = (c & ((1 << a) - 1)) | ((c >> (a + 1)) << a);
      const T w = ((c >> a) & 1) ? P[m] : -P[m];
      sum += w * g[c];
    }
    grad[a] = sum;  // * dtdp = 1
  }
}

/// Linear / bilinear / trilinear sample of `src` at position p (cell units).
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE T sample(const Source<T>& src, const T p[3]) {
  return evaluate<T, D>(make_stencil<T, D>(src, p), src.v);
}

/// sample(src, node_position(i, j, k, face_axis)), bit for bit, at a fraction of the cost:
/// the velocity at a node is most of the samples a semi-Lagrangian pass takes.
template <class T, int D>
DFLUID_HD DFLUID_FORCEINLINE T sample_at_node(const Source<T>& src, int i, int j, int k,
                                              int face_axis) {
  return evaluate<T, D>(node_stencil<T, D>(src, i, j, k, face_axis), src.v);
}

/// Position (cell units) of sample (i, j, k) of an array: cell centres, or
/// faces normal to `face_axis` (0, 1, 2; -1 for cell centres).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE void node_position(int i, int j, int k, int face_axis, T p[3]) {
  p[0] = T(i) + (face_axis == 0 ? T(0) : T(0.5));
  p[1] = T(j) + (face_axis == 1 ? T(0) : T(0.5));
  p[2] = T(k) + (face_axis == 2 ? T(0) : T(0.5));
}

// ---- interpolation policies ----
// The advection cell functions take the interpolation as a type, the velocity sampler's
// `Interp` (the advected array is sampled the same way as the velocity): Linear here,
// Cubic in cubic.hpp. Each gives, for a Source and a position, a stencil and
//   value(st, v)                the sample of data v (ghost offsets included)
//   linear_part(st, dv)         its derivative along a direction dv of the data
//   position_gradient(st, v, g) its derivative w.r.t. the position (0 along clamped axes)
//   scatter(st, s, target, sink) adds s * d(sample)/d(data[o]) into target entry o
// (scatter is the transpose of linear_part).

/// (Bi/tri)linear interpolation: the functions above.
template <class T, int D>
struct Linear {
  using St = Stencil<T, D>;
  static DFLUID_HD DFLUID_FORCEINLINE St at(const Source<T>& src, const T p[3]) {
    return make_stencil<T, D>(src, p);
  }
  /// at(src, node_position(i, j, k, face_axis)), bit for bit, without the search.
  static DFLUID_HD DFLUID_FORCEINLINE St at_node(const Source<T>& src, int i, int j, int k,
                                                 int face_axis) {
    return node_stencil<T, D>(src, i, j, k, face_axis);
  }
  static DFLUID_HD DFLUID_FORCEINLINE T value(const St& st, const View<const T>& v) {
    return evaluate<T, D>(st, v);
  }
  static DFLUID_HD DFLUID_FORCEINLINE T linear_part(const St& st, const View<const T>& dv) {
    return evaluate_linear<T, D>(st, dv);
  }
  static DFLUID_HD DFLUID_FORCEINLINE void position_gradient(const St& st, const View<const T>& v,
                                                             T grad[D]) {
    if (st.box) {
      box_position_gradient<T, D>(st, v, grad);
      return;
    }
    interp::position_gradient<T, D>(st, v, grad);
  }
  /// Node values can be read from NodeTaps (see NodePlan).
  static constexpr bool kNodeTaps = true;
  /// Corners of weight 0 (a position on a sample plane, e.g. a grid node) are skipped: they
  /// would add s * 0, i.e. nothing to a finite sum (and a NaN for a non-finite s). On the GPU
  /// they would be atomics for nothing.
  template <class Sink>
  static DFLUID_HD DFLUID_FORCEINLINE void scatter(const St& st, T s, int target, Sink& sink) {
    if (st.box) {
      T w[St::kCorners];
      box_weights<T, D>(st, w);
      if (T* d = sink.direct_range(target, st.off[0], st.off[St::kCorners - 1])) {
        DFLUID_UNROLL
        for (int c = 0; c < St::kCorners; ++c)
          if (w[c] != T(0)) d[st.off[c]] += s * w[c];
        return;
      }
      DFLUID_UNROLL
      for (int c = 0; c < St::kCorners; ++c)
        if (w[c] != T(0)) sink.add(target, st.off[c], s * w[c]);
      return;
    }
    DFLUID_UNROLL
    for (int c = 0; c < St::kCorners; ++c) {
      const T w = st.gradient_weight(c);
      if (w != T(0)) sink.add(target, st.off[c], s * w);
    }
  }
};

/// The sample of `src` at p with interpolation I.
template <class I, class T>
DFLUID_HD DFLUID_FORCEINLINE T sample_by(const Source<T>& src, const T p[3]) {
  return I::value(I::at(src, p), src.v);
}

// ---- velocity samplers: vel(p, u) writes the velocity (physical units) at p ----

/// The velocity at the nodes of one array (one launch): the components' NodeTaps where
/// they apply (interpolations with kNodeTaps), else their stencils at the node.
template <class T, int D>
struct NodePlan {
  int face_axis = -2;  ///< the nodes' array (-1: cell centres); -2: no taps (set not called)
  int lo[3] = {0, 0, 0}, hi[3] = {-1, -1, -1};  ///< the nodes where the taps apply
  NodeTaps<T> taps[D];

  /// Host side: the taps of the components `c` at the nodes of an array at `axis`.
  void set(const Source<T> (&c)[D], int axis) {
    face_axis = axis;
    for (int a = 0; a < 3; ++a) {
      lo[a] = 0;
      hi[a] = std::numeric_limits<int>::max();
    }
    for (int a = 0; a < D; ++a)
      taps[a] = node_taps<T, D>(c[a], axis, lo, hi);
  }
  /// True when the taps apply at node (i, j, k) of an array at `axis`.
  DFLUID_HD DFLUID_FORCEINLINE bool applies(int i, int j, int k, int axis) const {
    return axis == face_axis && i >= lo[0] && i <= hi[0] && j >= lo[1] && j <= hi[1] &&
           k >= lo[2] && k <= hi[2];
  }
  /// The velocity at node (i, j, k) of an array at `axis`: operator() at
  /// node_position(i, j, k, axis), bit for bit for finite data (see NodeTaps).
  template <class I>
  DFLUID_HD DFLUID_FORCEINLINE void at(const Source<T> (&c)[D], int i, int j, int k, int axis,
                                       T u[3]) const {
    if (I::kNodeTaps && applies(i, j, k, axis)) {
      DFLUID_UNROLL
      for (int a = 0; a < 3; ++a)
        u[a] = a < D ? taps[a].value(c[a].v, i, j, k) : T(0);
      return;
    }
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      u[a] = a < D ? I::value(I::at_node(c[a], i, j, k, axis), c[a].v) : T(0);
  }
  /// Adds the cotangent ubar of the velocity at node (i, j, k) of an array at `axis` into the
  /// velocity gradient (targets 0..D-1): each component's I::scatter at the node position.
  template <class I, class Sink>
  DFLUID_HD DFLUID_FORCEINLINE void scatter(const Source<T> (&c)[D], int i, int j, int k, int axis,
                                            const T ubar[3], Sink& sink) const {
    if (I::kNodeTaps && applies(i, j, k, axis)) {
      DFLUID_UNROLL
      for (int a = 0; a < D; ++a)
        if (ubar[a] != T(0)) taps[a].scatter(c[a].v, i, j, k, ubar[a], a, sink);
      return;
    }
    T x[3];
    node_position(i, j, k, axis, x);
    DFLUID_UNROLL
    for (int a = 0; a < D; ++a)
      if (ubar[a] != T(0)) I::scatter(I::at(c[a], x), ubar[a], a, sink);
  }
};

/// Staggered (MAC) velocity: component a sampled from the faces normal to a.
template <class T, int D, class I = Linear<T, D>>
struct MacSampler {
  static constexpr int kDim = D;
  using Interp = I;  ///< how the velocity (and the array it carries) is sampled
  Source<T> c[D];
  NodePlan<T, D> nodes;  ///< at_node's fast path, for one array's nodes (set_nodes)
  DFLUID_HD DFLUID_FORCEINLINE void operator()(const T p[3], T u[3]) const {
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      u[a] = a < D ? sample_by<I>(c[a], p) : T(0);
  }
  /// Host side, before a launch over the nodes of an array at `face_axis`.
  void set_nodes(int face_axis) { nodes.set(c, face_axis); }
  /// The velocity at node (i, j, k) of an array at `face_axis`: operator() at
  /// node_position(i, j, k, face_axis), bit for bit for finite data (NodePlan).
  DFLUID_HD DFLUID_FORCEINLINE void at_node(int i, int j, int k, int face_axis, T u[3]) const {
    nodes.template at<I>(c, i, j, k, face_axis, u);
  }
  /// Adds the cotangent ubar of at_node(i, j, k, face_axis) into targets 0..D-1.
  template <class Sink>
  DFLUID_HD DFLUID_FORCEINLINE void scatter_at_node(int i, int j, int k, int face_axis,
                                                    const T ubar[3], Sink& sink) const {
    nodes.template scatter<I>(c, i, j, k, face_axis, ubar, sink);
  }
};

/// Cell-centred velocity (CellVector): every component sampled from cell centres.
template <class T, int D, class I = Linear<T, D>>
struct CellSampler {
  static constexpr int kDim = D;
  using Interp = I;  ///< how the velocity (and the array it carries) is sampled
  Source<T> c[D];
  NodePlan<T, D> nodes;  ///< at_node's fast path, for one array's nodes (set_nodes)
  DFLUID_HD DFLUID_FORCEINLINE void operator()(const T p[3], T u[3]) const {
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      u[a] = a < D ? sample_by<I>(c[a], p) : T(0);
  }
  /// Host side, before a launch over the nodes of an array at `face_axis`.
  void set_nodes(int face_axis) { nodes.set(c, face_axis); }
  /// The velocity at node (i, j, k) of an array at `face_axis`: operator() at
  /// node_position(i, j, k, face_axis), bit for bit for finite data (NodePlan).
  DFLUID_HD DFLUID_FORCEINLINE void at_node(int i, int j, int k, int face_axis, T u[3]) const {
    nodes.template at<I>(c, i, j, k, face_axis, u);
  }
  /// Adds the cotangent ubar of at_node(i, j, k, face_axis) into targets 0..D-1.
  template <class Sink>
  DFLUID_HD DFLUID_FORCEINLINE void scatter_at_node(int i, int j, int k, int face_axis,
                                                    const T ubar[3], Sink& sink) const {
    nodes.template scatter<I>(c, i, j, k, face_axis, ubar, sink);
  }
};

/// Departure point of a backtrace from x over dtc = dt / dx (cell units per
/// velocity unit; negative for a forward trace), given u0 = u(x).
///   Euler: x_d = x - dtc u(x)
///   RK2 (midpoint): x_m = x - dtc/2 u(x),  x_d = x - dtc u(x_m)
/// `xm` (optional) receives the midpoint (RK2; x for Euler), which the tangent and the
/// adjoint differentiate through.
template <class T, class Vel>
DFLUID_HD DFLUID_FORCEINLINE void departure_point_from(const Vel& vel, const T x[3], const T u0[3],
                                                       T dtc, int rk2, T xd[3], T* xm = nullptr) {
  T u[3] = {u0[0], u0[1], u0[2]};
  if (rk2) {
    T mid[3];
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      mid[a] = x[a] - T(0.5) * dtc * u[a];
    vel(mid, u);
    if (xm) {
      DFLUID_UNROLL
      for (int a = 0; a < 3; ++a)
        xm[a] = mid[a];
    }
  } else if (xm) {
    // Euler has no midpoint; x keeps every element of xm defined (callers read it only
    // for RK2, which the compiler cannot see once this is inlined).
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      xm[a] = x[a];
  }
  DFLUID_UNROLL
  for (int a = 0; a < 3; ++a)
    xd[a] = x[a] - dtc * u[a];
}

/// departure_point_from with u(x) sampled here.
template <class T, class Vel>
DFLUID_HD DFLUID_FORCEINLINE void departure_point(const Vel& vel, const T x[3], T dtc, int rk2,
                                                  T xd[3], T* xm = nullptr) {
  T u[3];
  vel(x, u);
  departure_point_from(vel, x, u, dtc, rk2, xd, xm);
}

// ---- host-side construction of sources (not for device code) ----

/// A cell-centred field with the scalar boundary rule on its non-periodic sides.
template <class T>
Source<T> cell_source(const Field<T>& f, const ScalarBoundary& b) {
  Source<T> s;
  const Grid& g = f.grid();
  s.v = f.view();
  for (int a = 0; a < 3; ++a) {
    s.n[a] = g.n[a];
    s.periodic[a] = a < g.dim && g.periodic(a) ? 1 : 0;
    s.face[a] = 0;
    for (int side = 0; side < 2; ++side) {
      const bool fixed = b.kind[a][side] == ScalarBoundaryKind::Fixed;
      s.alpha[a][side] = fixed ? T(-1) : T(1);
      s.beta[a][side] = fixed ? T(2 * b.value[a][side]) : T(0);
    }
  }
  return s;
}

/// Component `axis` of a MAC velocity: faces along `axis`, zero-gradient
/// (clamped) beyond the last cell centre along the other axes.
template <class T>
Source<T> face_source(const Field<T>& f, int axis) {
  Source<T> s = cell_source(f, ScalarBoundary::zero_gradient());
  s.face[axis] = 1;
  return s;
}

/// Component `axis` of a MAC velocity as the advected quantity: face_source, except that
/// along each other (tangential) axis a side that prescribes the tangential velocity
/// (NoSlip, MovingWall, Inflow; see boundary_fixes_tangential) has the ghost of a fixed
/// value U on the side, ghost = 2 U - boundary sample (alpha = -1, beta = 2 U), U =
/// wall.v[side's axis][side][axis] on a MovingWall side and 0 on the others. The departure
/// points are still traced through face_source (zero-gradient) velocities.
template <class T>
Source<T> advected_face_source(const Field<T>& f, int axis, const WallVelocity& wall) {
  Source<T> s = face_source(f, axis);
  const Grid& g = f.grid();
  for (int b = 0; b < g.dim; ++b) {
    if (b == axis || g.periodic(b)) continue;
    for (int side = 0; side < 2; ++side) {
      const BoundaryKind k = g.boundary[b][side];
      if (!boundary_fixes_tangential(k)) continue;
      s.alpha[b][side] = T(-1);
      s.beta[b][side] = k == BoundaryKind::MovingWall ? T(2 * wall.v[b][side][axis]) : T(0);
    }
  }
  return s;
}

}  // namespace dfluid::interp
