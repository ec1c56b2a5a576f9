// Tangents of the advection operators (advect_tangent, see
// dfluid/advection.hpp): launches and public entry points. The per-sample
// math sits beside the forward and adjoint math in advection_cells.hpp.
#include <string>
#include <utility>
#include <vector>

#include "advection/advection_cells.hpp"
#include "advection/advection_checks.hpp"
#include "dfluid/advection.hpp"
#include "core/exec.hpp"

namespace dfluid {
namespace advection {

template <class T>
std::vector<std::pair<const Field<T>*, std::string>> parts_of(const Field<T>& f, const char* name) {
  return {{&f, name}};
}
template <class T, class V>
std::vector<std::pair<const Field<T>*, std::string>> parts_of(const V& v, const char* name) {
  std::vector<std::pair<const Field<T>*, std::string>> p;
  for (int a = 0; a < v.grid().dim; ++a)
    p.emplace_back(&v[a], comp_name(name, a));
  return p;
}

template <class T, class U>
VelocityDirection<T> direction_of(const U* du, int dim) {
  VelocityDirection<T> d;
  if (!du) return d;
  d.on = 1;
  for (int a = 0; a < dim; ++a)
    d.c[a] = (*du)[a].view();
  return d;
}

/// Tangent of advect_array (one array of q's layout): writes dout.
/// MacCormack recomputes q^ = SL(q) and its tangent dq^ into two temporaries
/// of q's layout from the context's pool.
template <class T, int D, class Vel>
void advect_array_tangent(const Context& ctx, const detail::Exec& ex, const std::array<int, 3>& ext,
                          int face_axis, const Source<T>& q, View<const T> dq, Vel vel,
                          const VelocityDirection<T>& du, T dtc, const AdvectionOptions& opt,
                          View<T> dout) {
  vel.set_nodes(face_axis);
  const int rk2 = opt.backtrace == Backtrace::RK2 ? 1 : 0;
  if (opt.scheme == AdvectionScheme::SemiLagrangian) {
    detail::for_each_cell(
        ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
          T x[3];
          interp::node_position(i, j, k, face_axis, x);
          dout(i, j, k) = semi_lagrangian_tangent_at<T, D>(q, dq, vel, du, dtc, rk2, x);
        });
    return;
  }
  const std::size_t span_bytes =
      sizeof(T) * std::size_t(q.v.offset(q.v.nx - 1, q.v.ny - 1, q.v.nz - 1) + 1);
  detail::TempBuffer qhat_mem(ctx, span_bytes), dqhat_mem(ctx, span_bytes);
  const View<T> qhat_v{static_cast<T*>(qhat_mem.data()), q.v.nx, q.v.ny, q.v.nz, q.v.sy, q.v.sz};
  const View<T> dqhat_v{static_cast<T*>(dqhat_mem.data()), q.v.nx, q.v.ny, q.v.nz, q.v.sy, q.v.sz};
  semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, qhat_v);
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        T x[3];
        interp::node_position(i, j, k, face_axis, x);
        dqhat_v(i, j, k) = semi_lagrangian_tangent_at<T, D>(q, dq, vel, du, dtc, rk2, x);
      });
  Source<T> qhat = q;  // same layout and boundary rule
  qhat.v = qhat_v;
  const View<const T> dqhat_c = dqhat_v;
  const int clamp = opt.maccormack_clamp ? 1 : 0;
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        dout(i, j, k) = maccormack_tangent_cell<T, D>(q, dq, qhat, dqhat_c, vel, du, dtc, rk2,
                                                      clamp, face_axis, i, j, k);
      });
}

template <class T, int D, class I>
void advect_tangent_dim(const Context& ctx, const detail::Exec& ex, const Field<T>& q,
                        const MacVelocity<T>& u, T dtc, const AdvectionOptions& opt,
                        const Field<T>& dq, const MacVelocity<T>* du, Field<T>& dout) {
  advect_array_tangent<T, D>(ctx, ex, q.extents(), -1, interp::cell_source(q, opt.boundary),
                             dq.view(), mac_sampler<T, D, I>(u), direction_of<T>(du, D), dtc, opt,
                             dout.view());
}

template <class T, int D, class I>
void advect_tangent_dim(const Context& ctx, const detail::Exec& ex, const MacVelocity<T>& q,
                        const MacVelocity<T>& u, T dtc, const AdvectionOptions& opt,
                        const MacVelocity<T>& dq, const MacVelocity<T>* du, MacVelocity<T>& dout) {
  const auto vel = mac_sampler<T, D, I>(u);
  for (int a = 0; a < D; ++a)
    advect_array_tangent<T, D>(ctx, ex, q[a].extents(), a,
                               interp::advected_face_source(q[a], a, opt.wall_velocity),
                               dq[a].view(), vel, direction_of<T>(du, D), dtc, opt, dout[a].view());
}

template <class T, int D, class I>
void advect_tangent_dim(const Context& ctx, const detail::Exec& ex, const CellVector<T>& q,
                        const CellVector<T>& u, T dtc, const AdvectionOptions& opt,
                        const CellVector<T>& dq, const CellVector<T>* du, CellVector<T>& dout) {
  const auto vel = cell_sampler<T, D, I>(u, opt.boundary);
  for (int a = 0; a < D; ++a)
    advect_array_tangent<T, D>(ctx, ex, q[a].extents(), -1, interp::cell_source(q[a], opt.boundary),
                               dq[a].view(), vel, direction_of<T>(du, D), dtc, opt, dout[a].view());
}

/// Checks and dimension dispatch of every overload (Q: the advected field's
/// type, U: the velocity's).
template <class T, class Q, class U>
void advect_tangent_entry(const Context& ctx, const Q& q, const U& u, double dt, const Q& dq,
                          const U* du, Q& dout, const AdvectionOptions& opt) {
  const auto q_parts = parts_of<T>(q, "q");
  if (q_parts.empty() || q_parts[0].first->empty())
    throw ShapeMismatch("advect_tangent: q is empty (not allocated)");
  check_tangent<T>(ctx, u, du, dt, opt, q_parts, parts_of<T>(dq, "dq"), parts_of<T>(dout, "dout"));
  const Grid& g = q_parts[0].first->grid();
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  with_dim_and_interpolation<T>(g.dim, opt.interpolation, [&](auto D, auto I) {
    advect_tangent_dim<T, D, decltype(I)>(ctx, ex, q, u, dtc, opt, dq, du, dout);
  });
}

}  // namespace advection

template <class T>
void advect_tangent(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
                    const Field<T>& dq, const MacVelocity<T>* du, Field<T>& dout,
                    const AdvectionOptions& opt) {
  advection::advect_tangent_entry<T>(ctx, q, u, dt, dq, du, dout, opt);
}

template <class T>
void advect_tangent(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& dq, const MacVelocity<T>* du, MacVelocity<T>& dout,
                    const AdvectionOptions& opt) {
  advection::advect_tangent_entry<T>(ctx, q, u, dt, dq, du, dout, opt);
}

template <class T>
void advect_tangent(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
                    const CellVector<T>& dq, const CellVector<T>* du, CellVector<T>& dout,
                    const AdvectionOptions& opt) {
  advection::advect_tangent_entry<T>(ctx, q, u, dt, dq, du, dout, opt);
}

template <class T>
void advect_tangent(const Context& ctx, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& du, MacVelocity<T>& dout, const AdvectionOptions& opt) {
  advect_tangent(ctx, u, u, dt, du, &du, dout, opt);
}

template <class T>
void advect_tangent(const Context& ctx, const CellVector<T>& u, double dt, const CellVector<T>& du,
                    CellVector<T>& dout, const AdvectionOptions& opt) {
  advect_tangent(ctx, u, u, dt, du, &du, dout, opt);
}

#define DFLUID_ADVECTION_TANGENT_INST(T)                                                          \
  template void advect_tangent<T>(const Context&, const Field<T>&, const MacVelocity<T>&, double, \
                                  const Field<T>&, const MacVelocity<T>*, Field<T>&,              \
                                  const AdvectionOptions&);                                       \
  template void advect_tangent<T>(const Context&, const MacVelocity<T>&, const MacVelocity<T>&,   \
                                  double, const MacVelocity<T>&, const MacVelocity<T>*,           \
                                  MacVelocity<T>&, const AdvectionOptions&);                      \
  template void advect_tangent<T>(const Context&, const CellVector<T>&, const CellVector<T>&,     \
                                  double, const CellVector<T>&, const CellVector<T>*,             \
                                  CellVector<T>&, const AdvectionOptions&);                       \
  template void advect_tangent<T>(const Context&, const MacVelocity<T>&, double,                  \
                                  const MacVelocity<T>&, MacVelocity<T>&,                         \
                                  const AdvectionOptions&);                                       \
  template void advect_tangent<T>(const Context&, const CellVector<T>&, double,                   \
                                  const CellVector<T>&, CellVector<T>&, const AdvectionOptions&);
DFLUID_ADVECTION_TANGENT_INST(float)
DFLUID_ADVECTION_TANGENT_INST(double)
#undef DFLUID_ADVECTION_TANGENT_INST

}  // namespace dfluid
