// Per-sample advection math (see dfluid/advection.hpp), side by side: the
// forward value of one sample, its tangent (forward-mode derivative) and its
// adjoint (scatter of the cotangent). All are pure DFLUID_HD functions of the
// step's inputs, so each of them recomputes the same departure points and
// stencils and takes the same branch at kinks (which is what makes the tangent
// and the adjoint exact transposes of each other). The launches and entry points are in
// advection_launches.hpp (forward, adjoint; instantiated per precision in
// advection_{float,double}.cpp) and advection_tangent.cpp.
// Include only from cuda/*.cpp (see exec.hpp).
#pragma once

#include <array>

#include "dfluid/advection.hpp"
#include "core/exec.hpp"
#include "advection/cubic.hpp"
#include "advection/interpolation.hpp"

namespace dfluid::advection {

using interp::Source;

/// Semi-Lagrangian value at sample (i, j, k) of an array at `face_axis`
/// (-1: cell centres): q interpolated at the departure point of a backtrace
/// over dtc = dt / dx through the velocity `vel`. Every function here samples q
/// (and the velocity) with the sampler's interpolation, Vel::Interp (linear or
/// cubic, interpolation.hpp / cubic.hpp).
template <class T, int D, class Vel>
DFLUID_HD DFLUID_FORCEINLINE T semi_lagrangian_cell(const Source<T>& q, const Vel& vel, T dtc,
                                                    int rk2, int face_axis, int i, int j, int k) {
  T x[3], u[3], xd[3];
  interp::node_position(i, j, k, face_axis, x);
  vel.at_node(i, j, k, face_axis, u);  // = vel(x, u), without the search
  interp::departure_point_from(vel, x, u, dtc, rk2, xd);
  return interp::sample_by<typename Vel::Interp>(q, xd);
}

/// MacCormack value at sample (i, j, k), given q and q^ = SL(q; dt) (both
/// read at the sample itself and around it):
///   q~ = SL(q^; -dt),  q_new = q^ + (q - q~)/2,
/// clamped (when `clamp`) to the range of q's stencil values around the
/// departure point of the forward pass: the 2^D samples that bracket it (the
/// linear stencil, also for the cubic: the cubic's own overshoot is clamped too).
template <class T, int D, class Vel>
DFLUID_HD DFLUID_FORCEINLINE T maccormack_cell(const Source<T>& q, const Source<T>& qhat,
                                               const Vel& vel, T dtc, int rk2, int clamp,
                                               int face_axis, int i, int j, int k) {
  T x[3], u[3], xd[3], xf[3];
  interp::node_position(i, j, k, face_axis, x);
  vel.at_node(i, j, k, face_axis, u);                      // u(x), shared by both traces
  interp::departure_point_from(vel, x, u, -dtc, rk2, xf);  // forward trace (backward pass)
  const T qtilde = interp::sample_by<typename Vel::Interp>(qhat, xf);
  const T corrected = qhat.v(i, j, k) + T(0.5) * (q.v(i, j, k) - qtilde);
  if (!clamp) return corrected;
  interp::departure_point_from(vel, x, u, dtc, rk2, xd);
  T lo, hi;
  interp::stencil_range<T, D>(interp::make_stencil<T, D>(q, xd), q.v, lo, hi);
  return interp::min_of(interp::max_of(corrected, lo), hi);
}

/// MacCormack's clamp at sample (i, j, k) at position x, where the velocity is u0:
/// recomputes the corrected value and q's stencil `st` around the departure point of the
/// forward pass, and returns the stencil corner whose value the clamp
/// returned, or -1 when the clamp is not active. Ties: stencil_range keeps the
/// first extremum (strict comparisons), and so does this.
/// The same, given q~ = I(q^, x_f) (the adjoint has q^'s stencil at x_f already).
template <class T, int D, class Vel>
DFLUID_HD inline int maccormack_active_corner_from(const Source<T>& q, const Source<T>& qhat,
                                                   const Vel& vel, T dtc, int rk2, const T x[3],
                                                   const T u0[3], int i, int j, int k, T qtilde,
                                                   interp::Stencil<T, D>& st) {
  T xd[3];
  const T corrected = qhat.v(i, j, k) + T(0.5) * (q.v(i, j, k) - qtilde);
  interp::departure_point_from(vel, x, u0, dtc, rk2, xd);
  st = interp::make_stencil<T, D>(q, xd);
  constexpr int kC = interp::Stencil<T, D>::kCorners;
  T cv[kC];
  interp::corner_values<T, D>(st, q.v, cv);
  int clo = 0, chi = 0;
  DFLUID_UNROLL
  for (int c = 1; c < kC; ++c) {
    if (cv[c] < cv[clo]) clo = c;
    if (cv[chi] < cv[c]) chi = c;
  }
  // forward: min_of(max_of(corrected, lo), hi)
  int active = -1;
  if (corrected < cv[clo]) active = clo;
  if (cv[chi] < (active >= 0 ? cv[clo] : corrected)) active = chi;
  return active;
}

template <class T, int D, class Vel>
DFLUID_HD inline int maccormack_active_corner(const Source<T>& q, const Source<T>& qhat,
                                              const Vel& vel, T dtc, int rk2, const T x[3],
                                              const T u0[3], int i, int j, int k,
                                              interp::Stencil<T, D>& st) {
  T xf[3];
  interp::departure_point_from(vel, x, u0, -dtc, rk2, xf);
  const T qtilde = interp::sample_by<typename Vel::Interp>(qhat, xf);
  return maccormack_active_corner_from<T, D>(q, qhat, vel, dtc, rk2, x, u0, i, j, k, qtilde, st);
}

// ===========================================================================
// Tangents (Jacobian-vector products), per sample. Notation: dq, du = the
// direction (tangent of the advected array and of the velocity), d(.) = the
// derivative of (.) along it. I_lin(dq, p) = sum_c w_c alpha_c dq[c] is the
// interpolant's linear part (I::linear_part: the ghost offsets beta are
// constant), grad I = I::position_gradient (0 along clamped axes), I the
// sampler's interpolation (linear, or cubic: C1, so grad I is continuous).
//
// Semi-Lagrangian, out_s = I(q, x_d):
//   d out_s = I_lin(dq, x_d) + grad I(q, x_d) . d x_d
//   Euler: d x_d = -dtc du(x)
//   RK2:   d x_m = -dtc/2 du(x),
//          d x_d = -dtc [du(x_m) + grad u(x_m) . d x_m]   (u_a's own gradient per row)
// MacCormack, out_s = clamp(q^_s + (q_s - q~_s)/2, lo_s, hi_s):
//   clamp active at corner c: d out_s = alpha_c dq[c]
//   else:                     d out_s = dq^_s + (dq_s - dq~_s)/2,
//   with dq^ = the SL tangent of q^ = SL(q; dt) and dq~_s = the SL tangent of
//   q~ = I(q^, x_f) (source q^, direction dq^, velocity direction du, -dtc).
// Each line is the transpose of the matching line of the adjoints below.
// ===========================================================================

/// Directions of the velocity components (views in the sampler's layouts);
/// `on` = 0: the velocity is held fixed (du = 0).
template <class T>
struct VelocityDirection {
  View<const T> c[3];
  int on = 0;
};

/// Derivative of the velocity sampled at p moving by dp (cell units; nullptr:
/// p fixed) while the velocity moves along du:
///   out_a = I_lin(du_a, p) + grad u_a(p) . dp
template <class T, int D, class Vel>
DFLUID_HD inline void velocity_tangent(const Vel& vel, const VelocityDirection<T>& du, const T p[3],
                                       const T* dp, T out[3]) {
  DFLUID_UNROLL
  for (int a = 0; a < 3; ++a)
    out[a] = T(0);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    using I = typename Vel::Interp;
    const auto st = I::at(vel.c[a], p);
    T v = du.on ? I::linear_part(st, du.c[a]) : T(0);
    if (dp) {
      T grad[D];
      I::position_gradient(st, vel.c[a].v, grad);
      DFLUID_UNROLL
      for (int b = 0; b < D; ++b)
        v += grad[b] * dp[b];
    }
    out[a] = v;
  }
}

/// Tangent of out = I(src, departure(x; dtc)) for one sample, along the
/// direction `dsrc` of src (src's layout) and `du` of the velocity.
template <class T, int D, class Vel>
DFLUID_HD inline T semi_lagrangian_tangent_at(const Source<T>& src, const View<const T>& dsrc,
                                              const Vel& vel, const VelocityDirection<T>& du, T dtc,
                                              int rk2, const T x[3]) {
  using I = typename Vel::Interp;
  T xm[3], xd[3];
  interp::departure_point(vel, x, dtc, rk2, xd, xm);
  const auto st = I::at(src, xd);
  T out = I::linear_part(st, dsrc);
  if (!du.on) return out;
  T dxd[3];
  velocity_tangent<T, D>(vel, du, x, nullptr, dxd);  // du(x)
  if (rk2) {
    T dxm[3];
    DFLUID_UNROLL
    for (int a = 0; a < 3; ++a)
      dxm[a] = T(-0.5) * dtc * dxd[a];
    velocity_tangent<T, D>(vel, du, xm, dxm, dxd);  // d[u(x_m)]
  }
  T dq[D];
  I::position_gradient(st, src.v, dq);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a)
    out += dq[a] * (-dtc * dxd[a]);
  return out;
}

/// MacCormack corrector tangent at sample (i, j, k), given q^, its tangent dq^
/// (both whole arrays, q's layout) and the directions dq, du.
template <class T, int D, class Vel>
DFLUID_HD inline T maccormack_tangent_cell(const Source<T>& q, const View<const T>& dq,
                                           const Source<T>& qhat, const View<const T>& dqhat,
                                           const Vel& vel, const VelocityDirection<T>& du, T dtc,
                                           int rk2, int clamp, int face_axis, int i, int j, int k) {
  T x[3];
  interp::node_position(i, j, k, face_axis, x);
  if (clamp) {
    T u0[3];
    vel.at_node(i, j, k, face_axis, u0);  // = vel(x, u0)
    interp::Stencil<T, D> st;
    const int c = maccormack_active_corner<T, D>(q, qhat, vel, dtc, rk2, x, u0, i, j, k, st);
    if (c >= 0) return st.alpha[c] * dq.data[st.off[c]];
  }
  const T dqtilde = semi_lagrangian_tangent_at<T, D>(qhat, dqhat, vel, du, -dtc, rk2, x);
  return dqhat(i, j, k) + T(0.5) * (dq(i, j, k) - dqtilde);
}

// ===========================================================================
// Adjoints (vector-Jacobian products), per sample. Notation: g = cotangent
// of the output sample, q^ = SL(q; dt), "scatter" = add into the stencil
// corners (the transpose of a gather), see scatter.hpp for determinism.
//
// Semi-Lagrangian, out_s = I(q, x_d) with x_d = x - dtc u(x) (Euler) or
// x_m = x - dtc/2 u(x), x_d = x - dtc u(x_m) (RK2), I the interpolant
// (linear: 2^D corners, cubic: 4^D taps) with stencil values alpha_c q[c] + beta_c
// (a cubic tap beyond a boundary face reads two faces, see cubic.hpp):
//   q-bar[c]  += g * w_c * alpha_c       (I::scatter; beta is the affine part)
//   xd-bar_a   = g * dI/dp_a (x_d)   (position_gradient; 0 where clamped)
//   Euler: u_a-bar at x   += -dtc * xd-bar_a     scattered through u_a's stencil at x
//   RK2:   u_a-bar at x_m += -dtc * xd-bar_a     scattered through u_a's stencil at x_m,
//          xm-bar_b = sum_a u_a-bar(x_m) * du_a/dp_b (x_m),
//          u_b-bar at x   += -dtc/2 * xm-bar_b   scattered through u_b's stencil at x.
// MacCormack, out_s = clamp(q^_s + (q_s - q~_s)/2, lo_s, hi_s), q~_s = I(q^, x_f)
// with x_f the forward trace (dtc -> -dtc):
//   clamp active: out_s is one corner value alpha_c q[c] + beta_c of q's stencil
//     at x_d (the first minimal / maximal corner, as stencil_range picks it):
//     q-bar[c] += g alpha_c; the range does not move with x_d (piecewise
//     constant), so no velocity term;
//   clamp inactive: q^-bar_s += g, q-bar_s += g/2, and -g/2 goes back through
//     the SL adjoint of q~ = I(q^, x_f) (into q^-bar and u-bar);
//   then q^-bar goes back through the SL adjoint of q^ = SL(q; dt).
// Targets of the sink: 0..2 velocity components, kQ the advected array, kAux q^-bar.
// ===========================================================================

constexpr int kTargetQ = 3;
constexpr int kTargetAux = 4;

/// Adds the cotangent `g` of the velocity sampled at p (u_a-bar = ubar[a])
/// into the velocity gradient (targets 0..D-1).
template <class T, int D, class Vel, class Sink>
DFLUID_HD inline void scatter_velocity(const Vel& vel, const T p[3], const T ubar[3], Sink& sink) {
  using I = typename Vel::Interp;
  for (int a = 0; a < D; ++a) {
    if (ubar[a] == T(0)) continue;
    I::scatter(I::at(vel.c[a], p), ubar[a], a, sink);
  }
}

/// Adjoint of out = I(src, departure(x; dtc)) for one sample with cotangent g, x the
/// position of node (i, j, k) of an array at `face_axis` and u0 = vel.at_node there:
/// scatters into target `field_target` (src's layout) and, when `with_u`,
/// into the velocity targets.
/// The same from src's stencil `st` at the departure point and the RK2 midpoint xm (the
/// MacCormack adjoint has them already).
template <class T, int D, class Vel, class St, class Sink>
DFLUID_HD DFLUID_FORCEINLINE void semi_lagrangian_adjoint_from(const Source<T>& src, const Vel& vel,
                                                               T dtc, int rk2, int with_u,
                                                               const St& st, const T xm[3], int i,
                                                               int j, int k, int face_axis, T g,
                                                               int field_target, Sink& sink) {
  if (g == T(0)) return;  // exact: no contribution
  using I = typename Vel::Interp;
  I::scatter(st, g, field_target, sink);
  if (!with_u) return;
  T dq[D];
  I::position_gradient(st, src.v, dq);
  T ubar[3] = {T(0), T(0), T(0)};
  for (int a = 0; a < D; ++a)
    ubar[a] = -dtc * g * dq[a];
  if (!rk2) {
    vel.scatter_at_node(i, j, k, face_axis, ubar, sink);  // through u_a's stencil at x
    return;
  }
  scatter_velocity<T, D>(vel, xm, ubar, sink);
  T xmbar[3] = {T(0), T(0), T(0)};
  for (int a = 0; a < D; ++a) {
    if (ubar[a] == T(0)) continue;
    T du[D];
    I::position_gradient(I::at(vel.c[a], xm), vel.c[a].v, du);
    for (int b = 0; b < D; ++b)
      xmbar[b] += ubar[a] * du[b];
  }
  T u0bar[3] = {T(0), T(0), T(0)};
  for (int b = 0; b < D; ++b)
    u0bar[b] = T(-0.5) * dtc * xmbar[b];
  vel.scatter_at_node(i, j, k, face_axis, u0bar, sink);
}

template <class T, int D, class Vel, class Sink>
DFLUID_HD DFLUID_FORCEINLINE void semi_lagrangian_adjoint_at(const Source<T>& src, const Vel& vel,
                                                             T dtc, int rk2, int with_u,
                                                             const T x[3], const T u0[3], int i,
                                                             int j, int k, int face_axis, T g,
                                                             int field_target, Sink& sink) {
  if (g == T(0)) return;  // exact: no contribution
  T xm[3], xd[3];
  interp::departure_point_from(vel, x, u0, dtc, rk2, xd, xm);
  semi_lagrangian_adjoint_from<T, D>(src, vel, dtc, rk2, with_u, Vel::Interp::at(src, xd), xm, i, j,
                                     k, face_axis, g, field_target, sink);
}

/// Semi-Lagrangian adjoint of one array: cotangent `gout` per sample.
template <class T, int D, class Vel>
struct SemiLagrangianAdjoint {
  Source<T> q;
  Vel vel;
  View<const T> gout;
  T dtc;
  int rk2, with_u, face_axis, target;
  template <class Sink>
  DFLUID_HD void operator()(int i, int j, int k, Sink& sink) const {
    const T g = gout(i, j, k);
    if (g == T(0)) return;
    T x[3], u0[3];
    interp::node_position(i, j, k, face_axis, x);
    vel.at_node(i, j, k, face_axis, u0);
    semi_lagrangian_adjoint_at<T, D>(q, vel, dtc, rk2, with_u, x, u0, i, j, k, face_axis, g, target,
                                     sink);
  }
};

/// MacCormack corrector adjoint (first stage): q-bar, q^-bar (kAux) and
/// u-bar through the backward pass; q^-bar then goes through SemiLagrangianAdjoint.
template <class T, int D, class Vel>
struct MacCormackAdjoint {
  Source<T> q, qhat;
  Vel vel;
  View<const T> gout;
  T dtc;
  int rk2, with_u, clamp, face_axis;
  template <class Sink>
  DFLUID_HD void operator()(int i, int j, int k, Sink& sink) const {
    const T g = gout(i, j, k);
    if (g == T(0)) return;
    using I = typename Vel::Interp;
    T x[3], u0[3], xf[3], xmf[3];
    interp::node_position(i, j, k, face_axis, x);
    vel.at_node(i, j, k, face_axis, u0);  // u(x), shared by both traces
    // q^'s stencil at the forward trace x_f: the clamp's q~ and the SL adjoint of q~ share it.
    interp::departure_point_from(vel, x, u0, -dtc, rk2, xf, xmf);
    const auto stf = I::at(qhat, xf);
    if (clamp) {
      interp::Stencil<T, D> st;
      const int c = maccormack_active_corner_from<T, D>(q, qhat, vel, dtc, rk2, x, u0, i, j, k,
                                                        I::value(stf, qhat.v), st);
      if (c >= 0) {
        sink.add(kTargetQ, st.off[c], g * st.alpha[c]);
        return;
      }
    }
    sink.add(kTargetAux, qhat.v.offset(i, j, k), g);
    sink.add(kTargetQ, q.v.offset(i, j, k), T(0.5) * g);
    semi_lagrangian_adjoint_from<T, D>(qhat, vel, -dtc, rk2, with_u, stf, xmf, i, j, k, face_axis,
                                       T(-0.5) * g, kTargetAux, sink);
  }
};

// ===========================================================================
// Launch helpers shared by the forward, tangent and adjoint entry points
// ===========================================================================

template <class T, int D, class Vel>
void semi_lagrangian_pass(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                          Source<T> q, Vel vel, T dtc, int rk2, View<T> out) {
  vel.set_nodes(face_axis);
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        out(i, j, k) = semi_lagrangian_cell<T, D>(q, vel, dtc, rk2, face_axis, i, j, k);
      });
}

template <class T, int D, class I>
interp::MacSampler<T, D, I> mac_sampler(const MacVelocity<T>& u) {
  interp::MacSampler<T, D, I> s;
  for (int a = 0; a < D; ++a)
    s.c[a] = interp::face_source(u[a], a);
  return s;
}

template <class T, int D, class I>
interp::CellSampler<T, D, I> cell_sampler(const CellVector<T>& u, const ScalarBoundary& b) {
  interp::CellSampler<T, D, I> s;
  for (int a = 0; a < D; ++a)
    s.c[a] = interp::cell_source(u[a], b);
  return s;
}

/// Calls f(D, I) with D = std::integral_constant<int, dim> and I the interpolation
/// policy of `in` (interp::Linear<T, D> or interp::Cubic<T, D>): the dispatch of every
/// entry point. f must call a named function template (not define a device lambda
/// itself: nvcc does not allow extended lambdas inside generic lambdas).
template <class T, class F>
void with_dim_and_interpolation(int dim, Interpolation in, F f) {
  detail::with_dim(dim, [&](auto D) {
    constexpr int kD = decltype(D)::value;
    if (in == Interpolation::Cubic)
      f(D, interp::Cubic<T, kD>{});
    else
      f(D, interp::Linear<T, kD>{});
  });
}

}  // namespace dfluid::advection
