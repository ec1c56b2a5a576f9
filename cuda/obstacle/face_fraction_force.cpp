// The pressure force on a face-fraction obstacle (dfluid/face_fractions.hpp): per cell, the
// coefficient of its pressure in the force. Per-cell code shared by the CPU and CUDA paths.
#include <cmath>

#include "core/exec.hpp"
#include "dfluid/face_fractions.hpp"
#include "dfluid/field_ops.hpp"

namespace dfluid {

template <class T>
void face_fraction_force_coefficients(const Context& ctx, const MacVelocity<T>& open_fractions,
                                      ObstacleForceCoefficients<T>& out) {
  const Grid& g = open_fractions.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(open_fractions[a], "face_fraction_force_coefficients: open_fractions", g,
                   face_location(a));
    check::accessible(ctx, open_fractions[a], "face_fraction_force_coefficients: open_fractions");
  }
  // Free-slip: no shear terms (kept allocated and 0, as a staircase's free-slip set).
  out.shear = MacVelocity<T>(ctx, g);
  out.shear_wall = MacVelocity<T>(ctx, g);
  fill(ctx, out.shear, T(0));
  fill(ctx, out.shear_wall, T(0));
  out.shear_scale = out.shear_scale_per_nu = 0;
  out.pressure_scale = std::pow(g.dx, g.dim - 1);
  for (int a = 0; a < 3; ++a) {
    if (a >= g.dim) {
      out.pressure[a] = Field<T>();
      continue;
    }
    out.pressure[a] = Field<T>(ctx, g, Location::Cell);
    View<const T> wv = open_fractions[a].view();
    View<T> pv = out.pressure[a].view();
    const int n = g.n[a];
    const bool per = g.periodic(a);
    // The fluid part of cell c is closed by its faces' open parts and the body's surface, so
    // the surface's area vector toward the body is sum_faces s W dx^(dim-1) e_a (s = +1 on
    // the high face, -1 on the low face) and the pressure's force on the body is
    // p_c (W_low - W_high) dx^(dim-1) along a.
    detail::for_each_cell(
        detail::exec_of(ctx), g.n, DFLUID_LAMBDA(int i, int j, int k) {
          int c[3] = {i, j, k};
          const T lo = wv(i, j, k);
          c[a] = c[a] + 1 == n && per ? 0 : c[a] + 1;
          pv(i, j, k) = lo - wv(c[0], c[1], c[2]);
        });
  }
}

template void face_fraction_force_coefficients<float>(const Context&, const MacVelocity<float>&,
                                                      ObstacleForceCoefficients<float>&);
template void face_fraction_force_coefficients<double>(const Context&, const MacVelocity<double>&,
                                                       ObstacleForceCoefficients<double>&);

}  // namespace dfluid
