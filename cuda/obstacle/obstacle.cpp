// Obstacle walls (see dfluid/obstacle.hpp): the ghost fill that velocity advection samples
// under no-slip walls, with its adjoints, the coefficients of the force on the obstacles, and
// the rigid-rotation wall velocity.
#include "dfluid/obstacle.hpp"

#include <cmath>
#include <string>

#include "core/exec.hpp"
#include "dfluid/field_ops.hpp"
#include "core/obstacle_faces.hpp"

namespace dfluid {

const char* to_string(ObstacleWallKind k) {
  return k == ObstacleWallKind::NoSlip ? "no-slip" : "free-slip";
}

ObstacleWallKind parse_obstacle_wall_kind(const std::string& s) {
  if (s == "free-slip") return ObstacleWallKind::FreeSlip;
  if (s == "no-slip") return ObstacleWallKind::NoSlip;
  throw InvalidArgument("obstacle wall kind '" + s + "': use free-slip or no-slip");
}

namespace detail::obstacle {

/// The interior faces that carry a ghost: those with at least one fluid neighbour along a
/// tangential axis (b != comp). Returns that number; sums (when given) the neighbours'
/// values of u and w.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE int fluid_tangential(const ObstacleCells& o, int dim, int comp, int i,
                                                  int j, int k, View<const T> u, View<const T> w,
                                                  T* sum_u, T* sum_w) {
  int count = 0;
  for (int b = 0; b < dim; ++b) {
    if (b == comp) continue;
    for (int side = 0; side < 2; ++side) {
      int nb[3];
      if (!face_neighbour(o, comp, b, side, i, j, k, nb)) continue;
      if (obstacle_face_class(o, comp, nb[0], nb[1], nb[2]) != kFaceFluid) continue;
      ++count;
      if (sum_u) *sum_u += u(nb[0], nb[1], nb[2]);
      if (sum_w && w.data) *sum_w += w(nb[0], nb[1], nb[2]);
    }
  }
  return count;
}

/// Number of fluid neighbours of interior face (i, j, k), 0 for any other face (no ghost).
DFLUID_HD DFLUID_FORCEINLINE int ghost_count(const ObstacleCells& o, int dim, int comp, int i,
                                             int j, int k) {
  if (obstacle_face_class(o, comp, i, j, k) != kFaceInterior) return 0;
  return fluid_tangential<float>(o, dim, comp, i, j, k, View<const float>{}, View<const float>{},
                                 nullptr, nullptr);
}

/// The interior neighbours of fluid face (i, j, k) along tangential axes: sum over those with
/// a ghost of v(neighbour) / its ghost count.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T sum_over_ghosts(const ObstacleCells& o, int dim, int comp, int i,
                                               int j, int k, View<const T> v) {
  T acc = 0;
  for (int b = 0; b < dim; ++b) {
    if (b == comp) continue;
    for (int side = 0; side < 2; ++side) {
      int nb[3];
      if (!face_neighbour(o, comp, b, side, i, j, k, nb)) continue;
      const int n = ghost_count(o, dim, comp, nb[0], nb[1], nb[2]);
      if (n > 0) acc += v(nb[0], nb[1], nb[2]) / T(n);
    }
  }
  return acc;
}

template <class T>
void check_mac(const Context& ctx, const MacVelocity<T>& u, const Grid& g,
               const std::string& what) {
  if (u[0].empty()) throw ShapeMismatch(what + " is empty (not allocated)");
  for (int a = 0; a < g.dim; ++a) {
    const std::string name = what + "[" + std::to_string(a) + "]";
    check::on_grid(u[a], name.c_str(), g, face_location(a));
    check::accessible(ctx, u[a], name.c_str());
  }
}

inline void check_mask(const Context& ctx, const ObstacleMask* m, const Grid& g,
                       const std::string& fn) {
  if (!m)
    throw InvalidArgument(fn + ": obstacle.mask is null; give the ObstacleMask of the solid cells");
  check::on_grid(*m, (fn + ": obstacle.mask").c_str(), g, Location::Cell);
  check::accessible(ctx, *m, (fn + ": obstacle.mask").c_str());
}

}  // namespace detail::obstacle

void obstacle_face_classes(const Context& ctx, const ObstacleMask& mask,
                           std::array<Field<std::uint8_t>, 3>& out) {
  const Grid& g = mask.grid();
  detail::obstacle::check_mask(ctx, &mask, g, "obstacle_face_classes");
  const detail::ObstacleCells o = detail::obstacle_cells(g, mask.view());
  for (int a = 0; a < g.dim; ++a) {
    if (out[a].empty() || out[a].grid() != g || out[a].location() != face_location(a))
      out[a] = Field<std::uint8_t>(ctx, g, face_location(a));
    View<std::uint8_t> cv = out[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), out[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          cv(i, j, k) = detail::obstacle_face_class(o, a, i, j, k);
        });
  }
}

template <class T>
MacVelocity<T> rigid_rotation_velocity(const Context& ctx, const Grid& g,
                                       std::array<double, 3> center, double rate) {
  g.validate();
  if (g.dim < 2)
    throw InvalidArgument("rigid_rotation_velocity: the grid is 1D; a rotation needs 2D or 3D");
  if (!std::isfinite(rate) || !std::isfinite(center[0]) || !std::isfinite(center[1]) ||
      !std::isfinite(center[2]))
    throw InvalidArgument("rigid_rotation_velocity: center and rate must be finite");
  MacVelocity<T> u(ctx, g);
  const detail::Exec ex = detail::exec_of(ctx);
  const double dx = g.dx, ox = g.origin[0], oy = g.origin[1];
  const double cx = center[0], cy = center[1];
  View<T> uv = u[0].view(), vv = u[1].view();
  // u = -rate (y - cy) on x faces (x = ox + i dx, y = oy + (j + 1/2) dx); v = rate (x - cx) on
  // y faces. A linear field: its discrete divergence is exactly 0 in every cell.
  detail::for_each_cell(
      ex, u[0].extents(),
      DFLUID_LAMBDA(int i, int j, int k) { uv(i, j, k) = T(-rate * (oy + (j + 0.5) * dx - cy)); });
  detail::for_each_cell(
      ex, u[1].extents(),
      DFLUID_LAMBDA(int i, int j, int k) { vv(i, j, k) = T(rate * (ox + (i + 0.5) * dx - cx)); });
  if (g.dim == 3) fill(ctx, u[2], T(0));
  return u;
}

// Forward: out_g = W_g + mean over the fluid neighbours f of (W_f - u_f) at a ghost face g
// (2 U - u_f with U = (W_g + W_f) / 2, averaged); out = u elsewhere.
template <class T>
void obstacle_ghost_fill(const Context& ctx, const MacVelocity<T>& u,
                         const NoSlipObstacle<T>& obstacle, MacVelocity<T>& out) {
  using namespace detail::obstacle;
  const std::string fn = "obstacle_ghost_fill";
  const Grid& g = u.grid();
  check_mac(ctx, u, g, fn + ": u");
  check_mac(ctx, out, g, fn + ": out");
  check_mask(ctx, obstacle.mask, g, fn);
  if (obstacle.wall_velocity) check_mac(ctx, *obstacle.wall_velocity, g, fn + ": wall_velocity");
  for (int a = 0; a < g.dim; ++a)
    if (check::overlap(u[a], out[a]))
      throw InvalidArgument(fn + ": out aliases u; write into a separate velocity");
  const detail::ObstacleCells o = detail::obstacle_cells(g, obstacle.mask->view());
  const int dim = g.dim;
  for (int a = 0; a < dim; ++a) {
    View<const T> uv = u[a].view();
    View<const T> wv =
        obstacle.wall_velocity ? (*obstacle.wall_velocity)[a].view() : View<const T>{};
    View<T> ov = out[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          T su = 0, sw = 0;
          const int n = detail::obstacle_face_class(o, a, i, j, k) == detail::kFaceInterior
                            ? fluid_tangential(o, dim, a, i, j, k, uv, wv, &su, &sw)
                            : 0;
          if (n == 0) {
            ov(i, j, k) = uv(i, j, k);
            return;
          }
          ov(i, j, k) = (wv.data ? wv(i, j, k) : T(0)) + (sw - su) / T(n);
        });
  }
}

// Adjoint (a gather): a face without a ghost passes its cotangent through; a fluid face also
// gathers -grad_out_g / n_g from each ghost g next to it along a tangential axis.
template <class T>
void obstacle_ghost_fill_adjoint(const Context& ctx, const MacVelocity<T>& grad_out,
                                 const NoSlipObstacle<T>& obstacle, MacVelocity<T>& grad_u) {
  using namespace detail::obstacle;
  const std::string fn = "obstacle_ghost_fill_adjoint";
  const Grid& g = grad_out.grid();
  check_mac(ctx, grad_out, g, fn + ": grad_out");
  check_mac(ctx, grad_u, g, fn + ": grad_u");
  check_mask(ctx, obstacle.mask, g, fn);
  for (int a = 0; a < g.dim; ++a)
    if (check::overlap(grad_out[a], grad_u[a]))
      throw InvalidArgument(fn + ": grad_u aliases grad_out; use a separate velocity");
  const detail::ObstacleCells o = detail::obstacle_cells(g, obstacle.mask->view());
  const int dim = g.dim;
  for (int a = 0; a < dim; ++a) {
    View<const T> gv = grad_out[a].view();
    View<T> rv = grad_u[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), grad_out[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const unsigned char cls = detail::obstacle_face_class(o, a, i, j, k);
          if (cls == detail::kFaceFluid) {
            rv(i, j, k) += gv(i, j, k) - sum_over_ghosts(o, dim, a, i, j, k, gv);
            return;
          }
          if (cls == detail::kFaceInterior && ghost_count(o, dim, a, i, j, k) > 0) return;
          rv(i, j, k) += gv(i, j, k);
        });
  }
}

// d<grad_out, out>/dW: a ghost face g has W_g with coefficient 1; each of its fluid
// neighbours f has W_f with coefficient 1 / n_g.
template <class T>
void obstacle_ghost_fill_wall_adjoint(const Context& ctx, const MacVelocity<T>& grad_out,
                                      const ObstacleMask& mask, MacVelocity<T>& grad_wall) {
  using namespace detail::obstacle;
  const std::string fn = "obstacle_ghost_fill_wall_adjoint";
  const Grid& g = grad_out.grid();
  check_mac(ctx, grad_out, g, fn + ": grad_out");
  check_mac(ctx, grad_wall, g, fn + ": grad_wall");
  check_mask(ctx, &mask, g, fn);
  const detail::ObstacleCells o = detail::obstacle_cells(g, mask.view());
  const int dim = g.dim;
  for (int a = 0; a < dim; ++a) {
    View<const T> gv = grad_out[a].view();
    View<T> rv = grad_wall[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), grad_out[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const unsigned char cls = detail::obstacle_face_class(o, a, i, j, k);
          if (cls == detail::kFaceFluid)
            rv(i, j, k) += sum_over_ghosts(o, dim, a, i, j, k, gv);
          else if (cls == detail::kFaceInterior && ghost_count(o, dim, a, i, j, k) > 0)
            rv(i, j, k) += gv(i, j, k);
        });
  }
}

namespace detail::obstacle {

/// Whether face (i, j, k) of component comp (a wall or interior face) belongs to `body`: its
/// solid cell above (index along comp) when that is solid, else the one below (wrapping on a
/// periodic axis). One cell per face, so bodies that partition the solid cells partition the
/// faces. A null body view holds every face.
DFLUID_HD DFLUID_FORCEINLINE bool face_in_body(const ObstacleCells& o,
                                               View<const std::uint8_t> body, int comp, int i,
                                               int j, int k) {
  if (!body.data) return true;
  int c[3] = {i, j, k};
  if (c[comp] < o.n[comp] && o.solid(c[0], c[1], c[2])) return body(c[0], c[1], c[2]) != 0;
  c[comp] = c[comp] - 1 < 0 ? o.n[comp] - 1 : c[comp] - 1;
  return body(c[0], c[1], c[2]) != 0;
}

}  // namespace detail::obstacle

template <class T>
void obstacle_force_coefficients(const Context& ctx, const ObstacleMask& mask, bool no_slip,
                                 double nu, ObstacleForceCoefficients<T>& out) {
  obstacle_body_force_coefficients(ctx, mask, nullptr, no_slip, nu, out);
}

template <class T>
void obstacle_body_force_coefficients(const Context& ctx, const ObstacleMask& mask,
                                      const ObstacleMask* body, bool no_slip, double nu,
                                      ObstacleForceCoefficients<T>& out) {
  using namespace detail::obstacle;
  const Grid& g = mask.grid();
  check_mask(ctx, &mask, g, "obstacle_force_coefficients");
  if (body) check_mask(ctx, body, g, "obstacle_force_coefficients: body");
  View<const std::uint8_t> bv = body ? body->view() : View<const std::uint8_t>{};
  if (!std::isfinite(nu) || nu < 0)
    throw InvalidArgument("obstacle_force_coefficients: nu = " + std::to_string(nu) +
                          " must be finite and >= 0");
  if (out.shear[0].empty() || out.shear.grid() != g) {
    out.shear = MacVelocity<T>(ctx, g);
    out.shear_wall = MacVelocity<T>(ctx, g);
    for (int a = 0; a < 3; ++a)
      out.pressure[a] = a < g.dim ? Field<T>(ctx, g, Location::Cell) : Field<T>();
  }
  out.shear_scale_per_nu = no_slip ? std::pow(g.dx, g.dim - 2) : 0.0;
  out.shear_scale = no_slip ? nu * out.shear_scale_per_nu : 0.0;
  out.pressure_scale = std::pow(g.dx, g.dim - 1);
  const detail::ObstacleCells o = detail::obstacle_cells(g, mask.view());
  const detail::Exec ex = detail::exec_of(ctx);
  const int dim = g.dim;
  for (int a = 0; a < dim; ++a) {
    // Viscous: per fluid face, the diffusion stencil's terms that reach into the solid: 2 per
    // interior neighbour along a tangential axis (the ghost 2U - u), 1 per wall-face neighbour
    // along any axis (a held value, 0 after the projection); the wall velocity's weight 1 at
    // both faces of each ghost pair (2U = W_f + W_g).
    View<T> sv = out.shear[a].view(), wv = out.shear_wall[a].view();
    detail::for_each_cell(
        ex, out.shear[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const unsigned char cls = detail::obstacle_face_class(o, a, i, j, k);
          int pairs = 0, held = 0;
          if (cls != detail::kFaceWall)
            for (int b = 0; b < dim; ++b)
              for (int side = 0; side < 2; ++side) {
                int nb[3];
                if (!detail::face_neighbour(o, a, b, side, i, j, k, nb)) continue;
                const unsigned char c = detail::obstacle_face_class(o, a, nb[0], nb[1], nb[2]);
                // A fluid face's terms belong to the body of the face they reach into.
                const bool in =
                    cls == detail::kFaceFluid
                        ? (c == detail::kFaceFluid || face_in_body(o, bv, a, nb[0], nb[1], nb[2]))
                        : face_in_body(o, bv, a, i, j, k);
                if (!in) continue;
                if (cls == detail::kFaceFluid && c == detail::kFaceWall) ++held;
                if (b == a) continue;
                if (cls == detail::kFaceFluid && c == detail::kFaceInterior) ++pairs;
                if (cls == detail::kFaceInterior && c == detail::kFaceFluid) ++pairs;
              }
          sv(i, j, k) = cls == detail::kFaceFluid ? T(2 * pairs + held) : T(0);
          wv(i, j, k) = T(pairs);
        });
    // Pressure: per fluid cell, +1 for a solid neighbour on the +a side, -1 on the -a side.
    View<const std::uint8_t> solid = mask.view();
    View<T> pv = out.pressure[a].view();
    const int n = g.n[a];
    const bool periodic = g.periodic(a);
    detail::for_each_cell(
        ex, out.pressure[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          if (solid(i, j, k)) {
            pv(i, j, k) = T(0);
            return;
          }
          int c[3] = {i, j, k};
          const int self = c[a];
          T s = 0;
          int hi = self + 1, lo = self - 1;
          if (periodic) {
            hi = hi == n ? 0 : hi;
            lo = lo < 0 ? n - 1 : lo;
          }
          // Each solid neighbour counts for its own body (bv null: every body).
          if (hi < n) {
            c[a] = hi;
            if (solid(c[0], c[1], c[2]) && (!bv.data || bv(c[0], c[1], c[2]))) s += T(1);
          }
          if (lo >= 0) {
            c[a] = lo;
            if (solid(c[0], c[1], c[2]) && (!bv.data || bv(c[0], c[1], c[2]))) s -= T(1);
          }
          pv(i, j, k) = s;
        });
  }
}

template <class T>
void add_divergence_transpose(const Context& ctx, const Field<T>& y, const ObstacleMask* mask,
                              T scale, MacVelocity<T>& grad_u) {
  using namespace detail::obstacle;
  const Grid& g = y.grid();
  check::on_grid(y, "add_divergence_transpose: y", g, Location::Cell);
  check::accessible(ctx, y, "add_divergence_transpose: y");
  check_mac(ctx, grad_u, g, "add_divergence_transpose: grad_u");
  if (mask) check_mask(ctx, mask, g, "add_divergence_transpose");
  View<const std::uint8_t> solid = mask ? mask->view() : View<const std::uint8_t>{};
  View<const T> yv = y.view();
  const T s = T(double(scale) / g.dx);
  for (int a = 0; a < g.dim; ++a) {
    const int n = g.n[a];
    const bool periodic = g.periodic(a);
    // Boundary faces the divergence reads: Open/Outflow (p = 0 outside), Inflow and
    // ConvectiveOutflow (kept).
    const bool reads[2] = {
        !periodic && (boundary_is_open(g.boundary[a][0]) || boundary_holds_flux(g.boundary[a][0])),
        !periodic && (boundary_is_open(g.boundary[a][1]) || boundary_holds_flux(g.boundary[a][1]))};
    View<T> gv = grad_u[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), grad_u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          int c[3] = {i, j, k};
          const int f = c[a];
          int lo = f - 1;
          if (lo < 0 && periodic) lo = n - 1;
          const bool has_lo = lo >= 0, has_hi = f < n;
          T ylo = 0, yhi = 0;
          bool fluid_lo = false, fluid_hi = false;
          if (has_lo) {
            c[a] = lo;
            fluid_lo = !solid.data || !solid(c[0], c[1], c[2]);
            ylo = yv(c[0], c[1], c[2]);
          }
          if (has_hi) {
            c[a] = f;
            fluid_hi = !solid.data || !solid(c[0], c[1], c[2]);
            yhi = yv(c[0], c[1], c[2]);
          }
          bool read = false;
          if (has_lo && has_hi)
            read = fluid_lo && fluid_hi;
          else if (has_hi)
            read = reads[0] && fluid_hi;
          else
            read = reads[1] && fluid_lo;
          if (read) gv(i, j, k) += s * (ylo - yhi);
        });
  }
}

#define DFLUID_OBSTACLE_INST(T)                                                                   \
  template MacVelocity<T> rigid_rotation_velocity<T>(const Context&, const Grid&,                 \
                                                     std::array<double, 3>, double);              \
  template void obstacle_ghost_fill<T>(const Context&, const MacVelocity<T>&,                     \
                                       const NoSlipObstacle<T>&, MacVelocity<T>&);                \
  template void obstacle_ghost_fill_adjoint<T>(const Context&, const MacVelocity<T>&,             \
                                               const NoSlipObstacle<T>&, MacVelocity<T>&);        \
  template void obstacle_ghost_fill_wall_adjoint<T>(const Context&, const MacVelocity<T>&,        \
                                                    const ObstacleMask&, MacVelocity<T>&);        \
  template void obstacle_force_coefficients<T>(const Context&, const ObstacleMask&, bool, double, \
                                               ObstacleForceCoefficients<T>&);                    \
  template void obstacle_body_force_coefficients<T>(const Context&, const ObstacleMask&,          \
                                                    const ObstacleMask*, bool, double,            \
                                                    ObstacleForceCoefficients<T>&);               \
  template void add_divergence_transpose<T>(const Context&, const Field<T>&, const ObstacleMask*, \
                                            T, MacVelocity<T>&);
DFLUID_OBSTACLE_INST(float)
DFLUID_OBSTACLE_INST(double)
#undef DFLUID_OBSTACLE_INST

}  // namespace dfluid
