// Velocity-side pieces of the projection that need no solver: divergence,
// its max, and zeroing the fixed faces (see dfluid/projection.hpp).
#include <array>
#include <string>

#include "dfluid/field_ops.hpp"
#include "dfluid/projection.hpp"
#include "pressure/poisson.hpp"
#include "pressure/projection_detail.hpp"

namespace dfluid {
namespace detail {

template <class T>
void check_velocity(const Context& ctx, const MacVelocity<T>& u, const Grid& g, const char* what) {
  static const char* axis[3] = {"x", "y", "z"};
  for (int a = 0; a < g.dim; ++a) {
    const std::string name = std::string(what) + ": u[" + axis[a] + "]";
    check::on_grid(u[a], name.c_str(), g, face_location(a));
    check::accessible(ctx, u[a], name.c_str());
  }
}

void check_obstacles(const Context& ctx, const ObstacleMask* m, const Grid& g, const char* what) {
  if (!m) return;
  const std::string name = std::string(what) + ": obstacles";
  check::on_grid(*m, name.c_str(), g, Location::Cell);
  check::accessible(ctx, *m, name.c_str());
}

template <class T>
MacViews<T> mac_views(const MacVelocity<T>& u) {
  MacViews<T> m;
  const Grid& g = u[0].grid();
  m.dim = g.dim;
  for (int a = 0; a < 3; ++a) {
    m.n[a] = g.n[a];
    m.per[a] = a < g.dim && g.periodic(a);
    if (a < g.dim) m.c[a] = u[a].view();
  }
  return m;
}

template void check_velocity<float>(const Context&, const MacVelocity<float>&, const Grid&,
                                    const char*);
template void check_velocity<double>(const Context&, const MacVelocity<double>&, const Grid&,
                                     const char*);
template MacViews<float> mac_views<float>(const MacVelocity<float>&);
template MacViews<double> mac_views<double>(const MacVelocity<double>&);

}  // namespace detail

template <class T>
void divergence(const Context& ctx, const MacVelocity<T>& u, Field<T>& div,
                const ObstacleMask* obstacles) {
  check::on_grid(u[0], "divergence: u[x]", u[0].grid(), Location::FaceX);
  const Grid& g = u.grid();
  detail::check_velocity(ctx, u, g, "divergence");
  check::on_grid(div, "divergence: div", g, Location::Cell);
  check::accessible(ctx, div, "divergence: div");
  detail::check_obstacles(ctx, obstacles, g, "divergence");
  const detail::MacViews<T> m = detail::mac_views(u);
  View<const std::uint8_t> mv{};
  if (obstacles) mv = obstacles->view();
  View<T> dv = div.view();
  const T inv_dx = T(1 / g.dx);
  detail::for_each_cell(
      detail::exec_of(ctx), g.n, DFLUID_LAMBDA(int i, int j, int k) {
        const bool solid = mv.data != nullptr && mv(i, j, k) != 0;
        dv(i, j, k) = solid ? T(0) : inv_dx * detail::mac_flux_sum(m, i, j, k);
      });
}

template <class T>
double max_abs_divergence(const Context& ctx, const MacVelocity<T>& u,
                          const ObstacleMask* obstacles) {
  check::on_grid(u[0], "max_abs_divergence: u[x]", u[0].grid(), Location::FaceX);
  const Grid& g = u.grid();
  detail::check_velocity(ctx, u, g, "max_abs_divergence");
  detail::check_obstacles(ctx, obstacles, g, "max_abs_divergence");
  const detail::MacViews<T> m = detail::mac_views(u);
  View<const std::uint8_t> mv{};
  if (obstacles) mv = obstacles->view();
  const double inv_dx = 1 / g.dx;
  return detail::max_cells(
      detail::exec_of(ctx), g.n, DFLUID_LAMBDA(int i, int j, int k) {
        if (mv.data != nullptr && mv(i, j, k) != 0) return 0.0;
        const double d = inv_dx * double(detail::mac_flux_sum(m, i, j, k));
        return d == d ? (d < 0 ? -d : d) : std::numeric_limits<double>::infinity();
      });
}

template <class T>
void zero_fixed_faces(const Context& ctx, MacVelocity<T>& u, const ObstacleMask* obstacles) {
  check::on_grid(u[0], "zero_fixed_faces: u[x]", u[0].grid(), Location::FaceX);
  const Grid g = u.grid();
  detail::check_velocity(ctx, u, g, "zero_fixed_faces");
  detail::check_obstacles(ctx, obstacles, g, "zero_fixed_faces");
  View<const std::uint8_t> mv{};
  if (obstacles) mv = obstacles->view();
  for (int a = 0; a < g.dim; ++a) {
    const int n[3] = {g.n[0], g.n[1], g.n[2]};
    const bool per = g.periodic(a);
    const bool open_lo = boundary_is_open(g.boundary[a][0]);
    const bool open_hi = boundary_is_open(g.boundary[a][1]);
    View<T> uv = u[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const int nn[3] = {n[0], n[1], n[2]};
          if (!detail::face_is_free(mv, nn, per, open_lo, open_hi, a, i, j, k)) uv(i, j, k) = T(0);
        });
  }
}

namespace detail {

/// The faces of side (axis, side) of u[axis] as a launch: extents with the normal axis
/// collapsed to 1, the face index along it, and checks of the values' length.
template <class T>
std::array<int, 3> side_extents(const Context& ctx, const MacVelocity<T>& u, int axis, int side,
                                const char* fn, int& face) {
  const Grid& g = u.grid();
  if (axis < 0 || axis >= g.dim || side < 0 || side > 1)
    throw InvalidArgument(std::string(fn) + ": no side (" + std::to_string(axis) + ", " +
                          std::to_string(side) + ") on a " + std::to_string(g.dim) + "D grid");
  if (g.periodic(axis))
    throw InvalidArgument(std::string(fn) + ": side " + side_name(axis, side) +
                          " is periodic: it has no boundary faces");
  detail::check_velocity(ctx, u, g, fn);
  std::array<int, 3> e = u[axis].extents();
  face = side ? e[axis] - 1 : 0;
  e[axis] = 1;
  return e;
}

}  // namespace detail

template <class T>
void set_side_faces(const Context& ctx, MacVelocity<T>& u, int axis, int side, const T* values) {
  int face = 0;
  const std::array<int, 3> e = detail::side_extents(ctx, u, axis, side, "set_side_faces", face);
  View<T> uv = u[axis].view();
  const int ax = axis;
  const Index sy = e[0], sz = Index(e[0]) * e[1];
  detail::for_each_cell(
      detail::exec_of(ctx), e, DFLUID_LAMBDA(int i, int j, int k) {
        int c[3] = {i, j, k};
        c[ax] = face;
        uv(c[0], c[1], c[2]) = values[i + j * sy + k * sz];
      });
}

namespace detail {
/// Adds the faces of u[axis] on one box side into acc (one value a face, skipped when acc is
/// null) and zeroes them: take_side_faces and take_side_faces_into, which differ only in
/// the accumulator's type.
template <class T, class Acc>
void take_side_faces_to(const Context& ctx, MacVelocity<T>& u, int axis, int side, Acc* acc,
                        const char* what) {
  int face = 0;
  const std::array<int, 3> e = side_extents(ctx, u, axis, side, what, face);
  View<T> uv = u[axis].view();
  const int ax = axis;
  const Index sy = e[0], sz = Index(e[0]) * e[1];
  for_each_cell(
      exec_of(ctx), e, DFLUID_LAMBDA(int i, int j, int k) {
        int c[3] = {i, j, k};
        c[ax] = face;
        if (acc) acc[i + j * sy + k * sz] += Acc(uv(c[0], c[1], c[2]));
        uv(c[0], c[1], c[2]) = T(0);
      });
}
}  // namespace detail

template <class T>
void take_side_faces(const Context& ctx, MacVelocity<T>& u, int axis, int side, T* values) {
  detail::take_side_faces_to(ctx, u, axis, side, values, "take_side_faces");
}

template <class T>
void take_side_faces_into(const Context& ctx, MacVelocity<T>& u, int axis, int side, double* acc) {
  detail::take_side_faces_to(ctx, u, axis, side, acc, "take_side_faces_into");
}

#define DFLUID_PROJ_OPS_INST(T)                                                            \
  template void divergence<T>(const Context&, const MacVelocity<T>&, Field<T>&,            \
                              const ObstacleMask*);                                        \
  template double max_abs_divergence<T>(const Context&, const MacVelocity<T>&,             \
                                        const ObstacleMask*);                              \
  template void zero_fixed_faces<T>(const Context&, MacVelocity<T>&, const ObstacleMask*); \
  template void set_side_faces<T>(const Context&, MacVelocity<T>&, int, int, const T*);    \
  template void take_side_faces<T>(const Context&, MacVelocity<T>&, int, int, T*);         \
  template void take_side_faces_into<T>(const Context&, MacVelocity<T>&, int, int, double*);
DFLUID_PROJ_OPS_INST(float)
DFLUID_PROJ_OPS_INST(double)
#undef DFLUID_PROJ_OPS_INST

}  // namespace dfluid
