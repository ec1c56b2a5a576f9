// The pressure force on a face-fraction obstacle (dfluid/face_fractions.hpp): per cell, the
// coefficient of its pressure in the force. Per-cell code shared by the CPU and CUDA paths.
#include <cmath>

#include "core/exec.hpp"
#include "core/stencil.hpp"
#include "dfluid/face_fractions.hpp"
#include "dfluid/field_ops.hpp"

namespace dfluid {

namespace detail::face_fraction_force {

/// Whether the body mask (null view: every body) holds the cell of face idx of component a:
/// the cell above the face along a, or the last cell for a face on the high box side.
DFLUID_HD DFLUID_FORCEINLINE bool face_cell_in_body(View<const std::uint8_t> body, int a,
                                                    const int n[3], const int idx[3]) {
  if (!body.data) return true;
  int c[3] = {idx[0], idx[1], idx[2]};
  if (c[a] >= n[a]) c[a] = n[a] - 1;
  return body(c[0], c[1], c[2]) != 0;
}

}  // namespace detail::face_fraction_force

template <class T>
void face_fraction_force_coefficients(const Context& ctx, const MacVelocity<T>& open_fractions,
                                      ObstacleForceCoefficients<T>& out) {
  face_fraction_force_coefficients<T>(ctx, open_fractions, nullptr, nullptr, out);
}

template <class T>
void face_fraction_force_coefficients(const Context& ctx, const MacVelocity<T>& open_fractions,
                                      const MacVelocity<T>* face_distance, const ObstacleMask* body,
                                      ObstacleForceCoefficients<T>& out) {
  using detail::face_fraction_force::face_cell_in_body;
  const Grid& g = open_fractions.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(open_fractions[a], "face_fraction_force_coefficients: open_fractions", g,
                   face_location(a));
    check::accessible(ctx, open_fractions[a], "face_fraction_force_coefficients: open_fractions");
    if (face_distance) {
      check::on_grid((*face_distance)[a], "face_fraction_force_coefficients: face_distance", g,
                     face_location(a));
      check::accessible(ctx, (*face_distance)[a],
                        "face_fraction_force_coefficients: face_distance");
    }
  }
  if (body) {
    check::on_grid(*body, "face_fraction_force_coefficients: body", g, Location::Cell);
    check::accessible(ctx, *body, "face_fraction_force_coefficients: body");
  }
  const View<const std::uint8_t> bv = body ? body->view() : View<const std::uint8_t>{};
  const detail::Exec ex = detail::exec_of(ctx);
  out.shear = MacVelocity<T>(ctx, g);
  out.shear_wall = MacVelocity<T>(ctx, g);
  // The scales are the caller's (the Simulation's viscosity and wall kind); free-slip: 0.
  out.shear_scale = out.shear_scale_per_nu = 0;
  out.pressure_scale = std::pow(g.dx, g.dim - 1);
  for (int a = 0; a < 3; ++a) {
    if (a >= g.dim) {
      out.pressure[a] = Field<T>();
      continue;
    }
    // Shear of a no-slip ghost-fluid wall (core/stencil.hpp): the fluid's momentum changes
    // by nu dt (U_s - u_f) / (theta dx^2) per free face f and interior neighbour g, so the
    // body feels nu dx^(dim-2) (u_f / theta - U_s / theta), U_s / theta = (1/theta - 1) W_f +
    // W_g: shear[f] = sum of 1/theta, shear_wall[f] = sum of (1/theta - 1) at f plus 1 per
    // free neighbour at an interior face. A term belongs to the body of its interior face.
    View<T> sv = out.shear[a].view(), wv = out.shear_wall[a].view();
    if (!face_distance) {
      fill(ctx, out.shear[a], T(0));
      fill(ctx, out.shear_wall[a], T(0));
    } else {
      const detail::LaplacianStencil<T> s =
          detail::ghost_fluid_face_stencil<T>(g, a, {}, (*face_distance)[a].view(), {});
      const int n[3] = {g.n[0], g.n[1], g.n[2]};
      detail::for_each_cell(
          ex, out.shear[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
            const int idx[3] = {i, j, k};
            const bool self_free = detail::stencil_obstacle(s, idx) == detail::kFaceFluid;
            T shear = 0, wall = 0;
            for (int b = 0; b < s.dim; ++b)
              for (int side = 0; side < 2; ++side) {
                int nb[3];
                if (!detail::face_neighbour(s.obst, a, b, side, i, j, k, nb)) continue;
                const bool nb_free = detail::stencil_obstacle(s, nb) == detail::kFaceFluid;
                if (self_free && !nb_free && face_cell_in_body(bv, a, n, nb)) {
                  const T w = detail::stencil_ghost_weight(s, i, j, k, nb);
                  shear += w;
                  wall += w - T(1);
                } else if (!self_free && nb_free && face_cell_in_body(bv, a, n, idx)) {
                  wall += T(1);
                }
              }
            sv(i, j, k) = shear;
            wv(i, j, k) = wall;
          });
    }
    out.pressure[a] = Field<T>(ctx, g, Location::Cell);
    View<const T> ov = open_fractions[a].view();
    View<T> pv = out.pressure[a].view();
    const int n = g.n[a];
    const bool per = g.periodic(a);
    // The fluid part of cell c is closed by its faces' open parts and the body's surface, so
    // the surface's area vector toward the body is sum_faces s W dx^(dim-1) e_a (s = +1 on
    // the high face, -1 on the low face) and the pressure's force on the body is
    // p_c (W_low - W_high) dx^(dim-1) along a. A body mask keeps its own cells' terms.
    detail::for_each_cell(
        ex, g.n, DFLUID_LAMBDA(int i, int j, int k) {
          if (bv.data && !bv(i, j, k)) {
            pv(i, j, k) = T(0);
            return;
          }
          int c[3] = {i, j, k};
          const T lo = ov(i, j, k);
          c[a] = c[a] + 1 == n && per ? 0 : c[a] + 1;
          pv(i, j, k) = lo - ov(c[0], c[1], c[2]);
        });
  }
}

template void face_fraction_force_coefficients<float>(const Context&, const MacVelocity<float>&,
                                                      ObstacleForceCoefficients<float>&);
template void face_fraction_force_coefficients<double>(const Context&, const MacVelocity<double>&,
                                                       ObstacleForceCoefficients<double>&);
template void face_fraction_force_coefficients<float>(const Context&, const MacVelocity<float>&,
                                                      const MacVelocity<float>*,
                                                      const ObstacleMask*,
                                                      ObstacleForceCoefficients<float>&);
template void face_fraction_force_coefficients<double>(const Context&, const MacVelocity<double>&,
                                                       const MacVelocity<double>*,
                                                       const ObstacleMask*,
                                                       ObstacleForceCoefficients<double>&);

}  // namespace dfluid
