// The gradients of diffusion with respect to the wall velocities it reads (see
// dfluid/diffusion.hpp): a MovingWall side's (reduced to one value per side and component,
// on the host or left on the device) and a no-slip obstacle's (a MAC field, a gather). Each
// is the affine part of the stencil (core/stencil.hpp) transposed, applied to w: grad_out
// for explicit diffusion, the adjoint solve's values for implicit diffusion.
#include <array>
#include <string>

#include "core/exec.hpp"
#include "core/stencil.hpp"
#include "diffusion/diffusion_stencil.hpp"
#include "dfluid/diffusion.hpp"

namespace dfluid {

// The wall velocity U of a MovingWall side enters the stencil of each tangential
// component c only through the affine part, c = 2 U / dx^2 at the free entries next to
// the side (stencil.hpp). Explicit: out = q + nu dt (L q + c), so d<g, out>/dU = nu dt
// 2/dx^2 * sum of g over those entries. Implicit: (I - nu dt L) out = q + nu dt c, so
// the same sum of w = (I - nu dt L)^-1 g, which is what diffuse_implicit_adjoint
// accumulates at the free entries.
template <class T>
WallVelocity diffuse_wall_velocity_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                            const NoSlipObstacle<T>& obstacle) {
  const char* fn = "diffuse_wall_velocity_gradient";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_wall_velocity_gradient: dt");
  const Grid& g = w.grid();
  WallVelocity grad;
  const double coef = double(nu) * double(dt) * 2.0 / (g.dx * g.dx);
  for (int b = 0; b < g.dim; ++b)
    for (int side = 0; side < 2; ++side) {
      if (g.boundary[b][side] != BoundaryKind::MovingWall) continue;
      for (int c = 0; c < g.dim; ++c) {
        if (c == b) continue;
        check::accessible(ctx, w[c], "diffuse_wall_velocity_gradient: w");
        const detail::LaplacianStencil<T> s =
            detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
        View<const T> wv = w[c].view();
        const int edge = side ? s.m[b] - 1 : 0;
        const int axis = b;
        std::array<int, 3> ext = w[c].extents();
        grad.v[b][side][c] =
            coef * detail::sum_cells(
                       detail::exec_of(ctx), ext, DFLUID_LAMBDA(int i, int j, int k)->double {
                         const int idx[3] = {i, j, k};
                         if (idx[axis] != edge || detail::stencil_held(s, i, j, k)) return 0.0;
                         return double(wv(i, j, k));
                       });
      }
    }
  return grad;
}

namespace detail::diffusion {

/// One entry's term of diffuse_wall_velocity_gradient: w at the free entries of the layer
/// next to the side (index `edge` along `axis`). A functor: see NuGradientTerm.
template <class T>
struct WallLayerTerm {
  View<const T> wv;
  LaplacianStencil<T> s;
  int axis, edge;
  DFLUID_HD double operator()(int i, int j, int k) const {
    const int idx[3] = {i, j, k};
    if (idx[axis] != edge || stencil_held(s, i, j, k)) return 0.0;
    return double(wv(i, j, k));
  }
};

/// *p *= f, on the device (one thread). Not a template: see set_scalar (exec.hpp).
void scale_scalar(const Exec& ex, double* p, double f) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { *p *= f; });
}

}  // namespace detail::diffusion

// The same gradient left on the device: the reduction of each MovingWall side and
// tangential component into its slot, then scaled there (bitwise coef * sum, as above).
template <class T>
void diffuse_wall_velocity_gradient_into(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                         double* dst, const NoSlipObstacle<T>& obstacle) {
  const char* fn = "diffuse_wall_velocity_gradient_into";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_wall_velocity_gradient_into: dt");
  if (!dst)
    throw InvalidArgument(std::string(fn) +
                          ": dst is null; pass VelocityBoundaryGradient::kWallSlots doubles in "
                          "the context's memory space");
  const Grid& g = w.grid();
  const double coef = double(nu) * double(dt) * 2.0 / (g.dx * g.dx);
  const detail::Exec ex = detail::exec_of(ctx);
  for (int b = 0; b < g.dim; ++b)
    for (int side = 0; side < 2; ++side) {
      if (g.boundary[b][side] != BoundaryKind::MovingWall) continue;
      for (int c = 0; c < g.dim; ++c) {
        if (c == b) continue;
        check::accessible(ctx, w[c], "diffuse_wall_velocity_gradient_into: w");
        const detail::LaplacianStencil<T> s =
            detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
        double* slot = dst + VelocityBoundaryGradient::wall_slot(b, side, c);
        detail::sum_cells_into(
            ex, w[c].extents(),
            detail::diffusion::WallLayerTerm<T>{w[c].view(), s, b, side ? s.m[b] - 1 : 0}, slot);
        detail::diffusion::scale_scalar(ex, slot, coef);
      }
    }
}

// A no-slip obstacle's wall velocity W enters the stencil of a free entry f only through
// the affine part, nu dt / dx^2 * (W_f + W_g) for each interior neighbour g (stencil.hpp).
// So d<g, out>/dW at face x gathers nu dt / dx^2 times: w_x once per interior neighbour
// when x is free, and the sum of w over the free neighbours that read x as a ghost when x
// is an interior face (explicit: w = grad_out; implicit: w = (I - nu dt L)^-1 grad_out, as
// for the box sides above). A gather; no host wait.
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const ObstacleMask& mask, MacVelocity<T>& grad_wall) {
  diffuse_obstacle_wall_gradient(ctx, w, nu, dt, NoSlipObstacle<T>{&mask, nullptr}, grad_wall);
}

// Ghost fluid: the affine part is (1/theta - 1) W_f + W_g per interior neighbour g, so a
// free face gathers (1/theta - 1) w_x per interior neighbour (1 on the staircase) and an
// interior face w of each free neighbour that reads it, as above.
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const NoSlipObstacle<T>& no_slip, MacVelocity<T>& grad_wall) {
  const char* fn = "diffuse_obstacle_wall_gradient";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_obstacle_wall_gradient: dt");
  if (!no_slip.any())
    throw InvalidArgument(std::string(fn) +
                          ": the obstacle has neither a mask nor a face_distance; pass the "
                          "no-slip body the forward diffused with");
  const Grid& g = w.grid();
  const NoSlipObstacle<T> obstacle{no_slip.mask, nullptr, nullptr, no_slip.face_distance};
  const T coef = T(double(nu) * double(dt) / (g.dx * g.dx));
  for (int c = 0; c < g.dim; ++c) {
    check::on_grid(grad_wall[c], "diffuse_obstacle_wall_gradient: grad_wall", g, face_location(c));
    check::accessible(ctx, w[c], "diffuse_obstacle_wall_gradient: w");
    check::accessible(ctx, grad_wall[c], "diffuse_obstacle_wall_gradient: grad_wall");
    const detail::LaplacianStencil<T> s =
        detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
    View<const T> wv = w[c].view();
    View<T> gv = grad_wall[c].view();
    detail::for_each_cell(
        detail::exec_of(ctx), w[c].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const int idx[3] = {i, j, k};
          const unsigned char self = detail::stencil_obstacle(s, idx);
          const bool self_free = !detail::stencil_held(s, i, j, k);
          if (!self_free && self != detail::kFaceInterior) return;
          T acc = 0;
          for (int a = 0; a < s.dim; ++a)
            for (int side = 0; side < 2; ++side) {
              int nb[3];
              if (!detail::face_neighbour(s.obst, s.comp, a, side, i, j, k, nb)) continue;
              if (self_free) {
                if (detail::stencil_obstacle(s, nb) == detail::kFaceInterior)
                  acc += (detail::stencil_ghost_weight(s, i, j, k, nb) - T(1)) * wv(i, j, k);
              } else if (!detail::stencil_held(s, nb[0], nb[1], nb[2])) {
                acc += wv(nb[0], nb[1], nb[2]);
              }
            }
          gv(i, j, k) += coef * acc;
        });
  }
}

#define DFLUID_DIFFUSION_WALL_INST(T)                                                            \
  template WallVelocity diffuse_wall_velocity_gradient<T>(const Context&, const MacVelocity<T>&, \
                                                          T, T, const NoSlipObstacle<T>&);       \
  template void diffuse_wall_velocity_gradient_into<T>(const Context&, const MacVelocity<T>&, T, \
                                                       T, double*, const NoSlipObstacle<T>&);    \
  template void diffuse_obstacle_wall_gradient<T>(const Context&, const MacVelocity<T>&, T, T,   \
                                                  const ObstacleMask&, MacVelocity<T>&);         \
  template void diffuse_obstacle_wall_gradient<T>(const Context&, const MacVelocity<T>&, T, T,   \
                                                  const NoSlipObstacle<T>&, MacVelocity<T>&);
DFLUID_DIFFUSION_WALL_INST(float)
DFLUID_DIFFUSION_WALL_INST(double)
#undef DFLUID_DIFFUSION_WALL_INST

}  // namespace dfluid
