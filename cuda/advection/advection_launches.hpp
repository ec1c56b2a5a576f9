// Advection operators (see dfluid/advection.hpp): the launches and the templates of the
// public entry points of the forward and adjoint operators. The per-sample math is in
// advection_cells.hpp, the sampling math in interpolation.hpp, the tangents in
// advection_tangent.cpp.
//
// Why a header: nvcc spends minutes on these kernels (every dimension, interpolation and
// field kind, forward and adjoint), so each precision is instantiated in its own translation
// unit (advection_float.cpp, advection_double.cpp, expanding the two macros at the end of
// this file), which build in parallel. advection.cpp holds the non-template functions.
#pragma once

#include "dfluid/advection.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "advection/advection_cells.hpp"
#include "advection/advection_checks.hpp"
#include "core/exec.hpp"
#include "advection/interpolation.hpp"
#include "core/scatter.hpp"

namespace dfluid {
namespace advection {

// ===========================================================================
// Launches
// ===========================================================================

template <class T, int D, class Vel>
void maccormack_pass(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                     Source<T> q, Source<T> qhat, Vel vel, T dtc, int rk2, int clamp, View<T> out) {
  vel.set_nodes(face_axis);
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        out(i, j, k) = maccormack_cell<T, D>(q, qhat, vel, dtc, rk2, clamp, face_axis, i, j, k);
      });
}

/// Advects one array (given as a Source with its location) through `vel`.
/// `tmp` (same shape as q) holds q^ for MacCormack.
template <class T, int D, class Vel>
void advect_array(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                  const Source<T>& q, const Vel& vel, T dtc, const AdvectionOptions& opt,
                  View<T> out, View<T> tmp) {
  const int rk2 = opt.backtrace == Backtrace::RK2 ? 1 : 0;
  if (opt.scheme == AdvectionScheme::SemiLagrangian) {
    semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, out);
    return;
  }
  semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, tmp);
  Source<T> qhat = q;  // same layout and boundary rule
  qhat.v = tmp;
  maccormack_pass<T, D>(ex, ext, face_axis, q, qhat, vel, dtc, rk2, opt.maccormack_clamp ? 1 : 0,
                        out);
}

// D: the dimension, I: the interpolation (interp::Linear / interp::Cubic), chosen by
// with_dim_and_interpolation at the entry points.
template <class T, int D, class I>
void advect_scalar(const detail::Exec& ex, const Field<T>& q, const MacVelocity<T>& u, T dtc,
                   Field<T>& out, const AdvectionOptions& opt, Field<T>* tmp) {
  advect_array<T, D>(ex, q.extents(), -1, interp::cell_source(q, opt.boundary),
                     mac_sampler<T, D, I>(u), dtc, opt, out.view(), tmp ? tmp->view() : View<T>{});
}

template <class T, int D, class I>
void advect_vector(const detail::Exec& ex, const MacVelocity<T>& q, const MacVelocity<T>& u, T dtc,
                   MacVelocity<T>& out, const AdvectionOptions& opt, MacVelocity<T>* tmp) {
  const auto vel = mac_sampler<T, D, I>(u);
  for (int a = 0; a < D; ++a)
    advect_array<T, D>(ex, q[a].extents(), a,
                       interp::advected_face_source(q[a], a, opt.wall_velocity), vel, dtc, opt,
                       out[a].view(), tmp ? (*tmp)[a].view() : View<T>{});
}

template <class T, int D, class I>
void advect_vector(const detail::Exec& ex, const CellVector<T>& q, const CellVector<T>& u, T dtc,
                   CellVector<T>& out, const AdvectionOptions& opt, CellVector<T>* tmp) {
  const auto vel = cell_sampler<T, D, I>(u, opt.boundary);
  for (int a = 0; a < D; ++a)
    advect_array<T, D>(ex, q[a].extents(), -1, interp::cell_source(q[a], opt.boundary), vel, dtc,
                       opt, out[a].view(), tmp ? (*tmp)[a].view() : View<T>{});
}

// ---- adjoint launches ----

/// Adjoint of advect_array: accumulates into gq (q's layout) and, when gu[0]
/// is set, into the velocity components gu (the sampler's layouts).
template <class T, int D, class Vel>
void advect_array_adjoint(const Context& ctx, const detail::Exec& ex, const std::array<int, 3>& ext,
                          int face_axis, const Source<T>& q, Vel vel, T dtc,
                          const AdvectionOptions& opt, View<const T> gout, View<T> gq,
                          const std::array<View<T>, 3>& gu) {
  vel.set_nodes(face_axis);
  const int rk2 = opt.backtrace == Backtrace::RK2 ? 1 : 0;
  const int with_u = gu[0].data ? 1 : 0;
  std::array<View<T>, detail::kMaxScatterTargets> tg{gu[0], gu[1], gu[2], gq, View<T>{}};
  if (opt.scheme == AdvectionScheme::SemiLagrangian) {
    detail::scatter_cells<T>(
        ctx, ex, ext, tg, 4,
        SemiLagrangianAdjoint<T, D, Vel>{q, vel, gout, dtc, rk2, with_u, face_axis, kTargetQ});
    return;
  }
  // MacCormack: recompute q^ = SL(q; dt), then the corrector adjoint (into q-bar,
  // q^-bar and u-bar), then the SL adjoint of q^ with cotangent q^-bar.
  // Two temporaries of q's layout from the context's pool (no allocation once
  // warmed up); q^-bar accumulates, so it starts at zero.
  const std::size_t span_bytes =
      sizeof(T) * std::size_t(q.v.offset(q.v.nx - 1, q.v.ny - 1, q.v.nz - 1) + 1);
  detail::TempBuffer qhat_mem(ctx, span_bytes), qhatbar_mem(ctx, span_bytes);
  detail::zero_bytes(ctx, qhatbar_mem.data(), span_bytes, ctx.memory_space());
  const View<T> qhat_v{static_cast<T*>(qhat_mem.data()), q.v.nx, q.v.ny, q.v.nz, q.v.sy, q.v.sz};
  const View<T> qhatbar_v{
      static_cast<T*>(qhatbar_mem.data()), q.v.nx, q.v.ny, q.v.nz, q.v.sy, q.v.sz};
  semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, qhat_v);
  Source<T> qhat = q;
  qhat.v = qhat_v;
  tg[kTargetAux] = qhatbar_v;
  detail::scatter_cells<T>(ctx, ex, ext, tg, 5,
                           MacCormackAdjoint<T, D, Vel>{q, qhat, vel, gout, dtc, rk2, with_u,
                                                        opt.maccormack_clamp ? 1 : 0, face_axis});
  tg[kTargetAux] = View<T>{};
  detail::scatter_cells<T>(
      ctx, ex, ext, tg, 4,
      SemiLagrangianAdjoint<T, D, Vel>{q, vel, qhatbar_v, dtc, rk2, with_u, face_axis, kTargetQ});
}

template <class T>
std::array<View<T>, 3> grad_views(MacVelocity<T>* g, int dim) {
  std::array<View<T>, 3> v{};
  if (g)
    for (int a = 0; a < dim; ++a)
      v[a] = (*g)[a].view();
  return v;
}
template <class T>
std::array<View<T>, 3> grad_views(CellVector<T>* g, int dim) {
  std::array<View<T>, 3> v{};
  if (g)
    for (int a = 0; a < dim; ++a)
      v[a] = (*g)[a].view();
  return v;
}

template <class T, int D, class I>
void advect_scalar_adjoint(const Context& ctx, const detail::Exec& ex, const Field<T>& q,
                           const MacVelocity<T>& u, T dtc, const AdvectionOptions& opt,
                           const Field<T>& gout, Field<T>& gq, MacVelocity<T>* gu) {
  advect_array_adjoint<T, D>(ctx, ex, q.extents(), -1, interp::cell_source(q, opt.boundary),
                             mac_sampler<T, D, I>(u), dtc, opt, gout.view(), gq.view(),
                             grad_views(gu, D));
}

template <class T, int D, class I>
void advect_vector_adjoint(const Context& ctx, const detail::Exec& ex, const MacVelocity<T>& q,
                           const MacVelocity<T>& u, T dtc, const AdvectionOptions& opt,
                           const MacVelocity<T>& gout, MacVelocity<T>& gq, MacVelocity<T>* gu) {
  const auto vel = mac_sampler<T, D, I>(u);
  for (int a = 0; a < D; ++a)
    advect_array_adjoint<T, D>(ctx, ex, q[a].extents(), a,
                               interp::advected_face_source(q[a], a, opt.wall_velocity), vel, dtc,
                               opt, gout[a].view(), gq[a].view(), grad_views(gu, D));
}

template <class T, int D, class I>
void advect_vector_adjoint(const Context& ctx, const detail::Exec& ex, const CellVector<T>& q,
                           const CellVector<T>& u, T dtc, const AdvectionOptions& opt,
                           const CellVector<T>& gout, CellVector<T>& gq, CellVector<T>* gu) {
  const auto vel = cell_sampler<T, D, I>(u, opt.boundary);
  for (int a = 0; a < D; ++a)
    advect_array_adjoint<T, D>(ctx, ex, q[a].extents(), -1, interp::cell_source(q[a], opt.boundary),
                               vel, dtc, opt, gout[a].view(), gq[a].view(), grad_views(gu, D));
}

// The MAC-velocity and cell-vector entry points differ only in the overloads
// above; these run either kind (checks, MacCormack scratch, dimension dispatch).
template <class T, class V>
void advect_vector_entry(const Context& ctx, const V& q, const V& u, double dt, V& out,
                         const AdvectionOptions& opt, V* scratch) {
  check_vector_advect<T>(ctx, q, u, out, scratch, dt, opt);
  const Grid& g = q.grid();
  V own;
  V* tmp = nullptr;
  if (opt.scheme == AdvectionScheme::MacCormack) {
    if (!scratch) own = V(ctx, g);
    tmp = scratch ? scratch : &own;
  }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  with_dim_and_interpolation<T>(g.dim, opt.interpolation, [&](auto D, auto I) {
    advect_vector<T, D, decltype(I)>(ex, q, u, dtc, out, opt, tmp);
  });
}

template <class T, class V>
void advect_vector_adjoint_entry(const Context& ctx, const V& q, const V& u, double dt,
                                 const V& grad_out, V& grad_q, V* grad_u,
                                 const AdvectionOptions& opt) {
  check_vector_adjoint<T>(ctx, q, u, grad_out, grad_q, grad_u, dt, opt);
  const Grid& g = q.grid();
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  with_dim_and_interpolation<T>(g.dim, opt.interpolation, [&](auto D, auto I) {
    advect_vector_adjoint<T, D, decltype(I)>(ctx, ex, q, u, dtc, opt, grad_out, grad_q, grad_u);
  });
}

}  // namespace advection

// ===========================================================================
// Public entry points
// ===========================================================================

template <class T>
void advect(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
            Field<T>& out, const AdvectionOptions& opt, Field<T>* scratch) {
  using namespace advection;
  if (q.empty()) throw ShapeMismatch("advect: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_array(ctx, q, "advect: q", g, Location::Cell);
  check_vector(ctx, u, "advect: u", g);
  check_array(ctx, out, "advect: out", g, Location::Cell);
  check::positive_dt(dt, "advect: dt");
  check_options(ctx, opt);
  no_overlap(out, "out", q, "q");
  for (int a = 0; a < g.dim; ++a)
    no_overlap(out, "out", u[a], comp_name("u", a));
  const bool mc = opt.scheme == AdvectionScheme::MacCormack;
  Field<T> own;
  Field<T>* tmp = nullptr;
  if (mc) {
    if (scratch) {
      check_array(ctx, *scratch, "advect: scratch", g, Location::Cell);
      no_overlap(*scratch, "scratch", q, "q");
      no_overlap(*scratch, "scratch", out, "out");
      for (int a = 0; a < g.dim; ++a)
        no_overlap(*scratch, "scratch", u[a], comp_name("u", a));
      tmp = scratch;
    } else {
      own = Field<T>(ctx, g, Location::Cell);
      tmp = &own;
    }
  }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  with_dim_and_interpolation<T>(g.dim, opt.interpolation, [&](auto D, auto I) {
    advect_scalar<T, D, decltype(I)>(ex, q, u, dtc, out, opt, tmp);
  });
}

template <class T>
void advect(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
            MacVelocity<T>& out, const AdvectionOptions& opt, MacVelocity<T>* scratch) {
  advection::advect_vector_entry<T>(ctx, q, u, dt, out, opt, scratch);
}

template <class T>
void advect(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
            CellVector<T>& out, const AdvectionOptions& opt, CellVector<T>* scratch) {
  advection::advect_vector_entry<T>(ctx, q, u, dt, out, opt, scratch);
}

#define DFLUID_ADVECTION_INST(T)                                                                \
  template void advect<T>(const Context&, const Field<T>&, const MacVelocity<T>&, double,       \
                          Field<T>&, const AdvectionOptions&, Field<T>*);                       \
  template void advect<T>(const Context&, const MacVelocity<T>&, const MacVelocity<T>&, double, \
                          MacVelocity<T>&, const AdvectionOptions&, MacVelocity<T>*);           \
  template void advect<T>(const Context&, const CellVector<T>&, const CellVector<T>&, double,   \
                          CellVector<T>&, const AdvectionOptions&, CellVector<T>*);

// ---- adjoints ----

template <class T>
void advect_adjoint(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
                    const Field<T>& grad_out, Field<T>& grad_q, MacVelocity<T>* grad_u,
                    const AdvectionOptions& opt) {
  using namespace advection;
  if (q.empty()) throw ShapeMismatch("advect_adjoint: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_array(ctx, q, "advect_adjoint: q", g, Location::Cell);
  check_vector(ctx, u, "advect_adjoint: u", g);
  check_array(ctx, grad_out, "advect_adjoint: grad_out", g, Location::Cell);
  check::positive_dt(dt, "advect_adjoint: dt");
  check_options(ctx, opt);
  std::vector<std::pair<const Field<T>*, std::string>> in{{&q, "q"}, {&grad_out, "grad_out"}};
  add_inputs(in, u, "u", g.dim);
  check_grad(ctx, grad_q, "grad_q", q);
  grad_no_overlap(grad_q, "grad_q", in);
  if (grad_u)
    for (int a = 0; a < g.dim; ++a) {
      check_grad(ctx, (*grad_u)[a], comp_name("grad_u", a), u[a]);
      grad_no_overlap((*grad_u)[a], comp_name("grad_u", a), in);
    }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  with_dim_and_interpolation<T>(g.dim, opt.interpolation, [&](auto D, auto I) {
    advect_scalar_adjoint<T, D, decltype(I)>(ctx, ex, q, u, dtc, opt, grad_out, grad_q, grad_u);
  });
}

template <class T>
void advect_adjoint(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& grad_out, MacVelocity<T>& grad_q, MacVelocity<T>* grad_u,
                    const AdvectionOptions& opt) {
  advection::advect_vector_adjoint_entry<T>(ctx, q, u, dt, grad_out, grad_q, grad_u, opt);
}

template <class T>
void advect_adjoint(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
                    const CellVector<T>& grad_out, CellVector<T>& grad_q, CellVector<T>* grad_u,
                    const AdvectionOptions& opt) {
  advection::advect_vector_adjoint_entry<T>(ctx, q, u, dt, grad_out, grad_q, grad_u, opt);
}

template <class T>
void advect_adjoint(const Context& ctx, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& grad_out, MacVelocity<T>& grad_u,
                    const AdvectionOptions& opt) {
  advect_adjoint(ctx, u, u, dt, grad_out, grad_u, &grad_u, opt);
}

template <class T>
void advect_adjoint(const Context& ctx, const CellVector<T>& u, double dt,
                    const CellVector<T>& grad_out, CellVector<T>& grad_u,
                    const AdvectionOptions& opt) {
  advect_adjoint(ctx, u, u, dt, grad_out, grad_u, &grad_u, opt);
}

#define DFLUID_ADVECTION_ADJOINT_INST(T)                                                           \
  template void advect_adjoint<T>(const Context&, const Field<T>&, const MacVelocity<T>&, double,  \
                                  const Field<T>&, Field<T>&, MacVelocity<T>*,                     \
                                  const AdvectionOptions&);                                        \
  template void advect_adjoint<T>(const Context&, const MacVelocity<T>&, const MacVelocity<T>&,    \
                                  double, const MacVelocity<T>&, MacVelocity<T>&, MacVelocity<T>*, \
                                  const AdvectionOptions&);                                        \
  template void advect_adjoint<T>(const Context&, const CellVector<T>&, const CellVector<T>&,      \
                                  double, const CellVector<T>&, CellVector<T>&, CellVector<T>*,    \
                                  const AdvectionOptions&);                                        \
  template void advect_adjoint<T>(const Context&, const MacVelocity<T>&, double,                   \
                                  const MacVelocity<T>&, MacVelocity<T>&,                          \
                                  const AdvectionOptions&);                                        \
  template void advect_adjoint<T>(const Context&, const CellVector<T>&, double,                    \
                                  const CellVector<T>&, CellVector<T>&, const AdvectionOptions&);

}  // namespace dfluid
