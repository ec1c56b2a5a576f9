// What the diffusion files share (diffusion.cpp, diffusion_wall_gradient.cpp): the viscosity
// check and the Laplacian stencil of a MAC component with its no-slip obstacle.
//
// Include only from cuda/*.cpp (see core/exec.hpp).
#pragma once

#include <cmath>
#include <sstream>
#include <string>

#include "core/exec.hpp"
#include "core/stencil.hpp"
#include "dfluid/diffusion.hpp"

namespace dfluid::detail::diffusion {

inline void check_nu(double nu, const char* fn) {
  if (!std::isfinite(nu) || nu < 0) {
    std::ostringstream s;
    s << fn << ": nu = " << nu << ": the viscosity/diffusivity must be finite and >= 0";
    throw InvalidArgument(s.str());
  }
}

/// The explicit step refuses a ghost-fluid body: its wall terms 1/theta (up to
/// 1/kGhostMinTheta) would make the stable dt depend on how close a face is to the surface.
template <class T>
void refuse_ghost_fluid(const NoSlipObstacle<T>& obstacle, const char* fn) {
  if (obstacle.face_distance)
    throw InvalidArgument(std::string(fn) +
                          ": a ghost-fluid obstacle (face_distance) needs implicit diffusion; use "
                          "diffuse_implicit (DiffusionMode::Implicit in a Simulation)");
}

/// The stencil of MAC component a with the no-slip obstacle (checked: the mask a cell field
/// and the wall velocity a MAC velocity on g, both accessible on ctx).
template <class T>
LaplacianStencil<T> mac_stencil(const Context& ctx, const Grid& g, int a, const WallVelocity& wall,
                                const NoSlipObstacle<T>& obstacle, const char* fn) {
  if (!obstacle.any()) return face_stencil<T>(g, a, wall);
  const std::string f(fn);
  View<const T> wv;
  if (obstacle.wall_velocity) {
    const Field<T>& w = (*obstacle.wall_velocity)[a];
    check::on_grid(w, (f + ": obstacle.wall_velocity").c_str(), g, face_location(a));
    check::accessible(ctx, w, (f + ": obstacle.wall_velocity").c_str());
    wv = w.view();
  }
  if (obstacle.face_distance) {
    if (obstacle.mask)
      throw InvalidArgument(f +
                            ": the obstacle has both a mask and a face_distance; pass one (the "
                            "staircase or the ghost-fluid body)");
    const Field<T>& d = (*obstacle.face_distance)[a];
    check::on_grid(d, (f + ": obstacle.face_distance").c_str(), g, face_location(a));
    check::accessible(ctx, d, (f + ": obstacle.face_distance").c_str());
    return ghost_fluid_face_stencil<T>(g, a, wall, d.view(), wv);
  }
  check::on_grid(*obstacle.mask, (f + ": obstacle.mask").c_str(), g, Location::Cell);
  check::accessible(ctx, *obstacle.mask, (f + ": obstacle.mask").c_str());
  View<const std::uint8_t> cv;
  if (obstacle.face_classes) {
    const Field<std::uint8_t>& c = (*obstacle.face_classes)[a];
    check::on_grid(c, (f + ": obstacle.face_classes").c_str(), g, face_location(a));
    check::accessible(ctx, c, (f + ": obstacle.face_classes").c_str());
    cv = c.view();
  }
  return face_stencil<T>(g, a, wall, obstacle.mask->view(), wv, cv);
}

}  // namespace dfluid::detail::diffusion
