// Obstacle walls: how the solid cells of an ObstacleMask meet the fluid, and the force the
// fluid exerts on them.
//
// Faces of a MAC velocity component, classified by the cells they separate:
//   fluid face     no adjacent cell is solid;
//   wall face      one adjacent cell is solid, the other fluid: the solid's surface (its
//                  velocity is the wall-normal velocity, held by the projection);
//   interior face  every adjacent cell is solid (inside the body).
// Wall kinds (ObstacleWall::kind):
//   FreeSlip  (the default, unchanged): the projection holds wall faces at 0; advection and
//             diffusion do not see the solid (no tangential stress).
//   NoSlip    in addition, the tangential velocity on the solid's surface is the wall
//             velocity U (0 by default): a fluid face whose neighbour along a tangential
//             axis is an interior face sees there the ghost 2 U - u (U half-way between
//             the two, the mean of the wall velocity field at the two faces), as a box side
//             of kind NoSlip does. Diffusion (explicit and implicit) puts that ghost in its
//             stencil (per fluid face, exact); advection of the velocity samples a copy of
//             u whose interior faces next to the fluid hold the ghost (ghost_fill below:
//             for an interior face with fluid neighbours on both sides, a body one cell
//             thin, the ghost mirrors their mean); the projection holds the wall faces.
//
// Force on the solid (Simulation::obstacle_force): the momentum the discrete operators
// exchange with the solid per unit time, in physical units of the grid (density 1; per
// unit depth in 2D):
//   pressure  each wall face normal to axis a adds p_f * dx^(dim-1) * s, p_f the pressure
//             of its fluid cell and s = +1 when the solid lies on the +a side of the face,
//             -1 otherwise: summed by parts, this is exactly the impulse the projection's
//             discrete pressure gradient takes out of the fluid at the body;
//   viscous   (NoSlip, with diffusion on) what the diffusion stencil of the fluid faces takes
//             out of the fluid into the solid: each fluid face f of component a next to an
//             interior face g along a tangential axis adds nu * 2 (u_f - U) / dx *
//             dx^(dim-1), U = (W_f + W_g) / 2 (the ghost 2U - u_f: the wall shear), and next
//             to a wall face w along any axis nu * (u_f - u_w) / dx * dx^(dim-1) with u_w = 0
//             (the projection holds wall faces at 0: the steps of a staircase body, and the
//             normal stress at its faces). Summed, this is exactly the a-momentum the
//             stencil moves into faces it holds, so the force closes the discrete momentum
//             balance (tests: a Poiseuille channel's wall shear equals its body force).
// Both are linear in the state (velocity and pressure) and affine in the wall velocity, so
// a loss on the force has an exact adjoint; the pressure term's gradient flows through the
// projection's solve (SmokeGradient::pressure, carried by Simulation::step_adjoint).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dfluid/context.hpp"
#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"

namespace dfluid {

enum class ObstacleWallKind { FreeSlip, NoSlip };
const char* to_string(ObstacleWallKind k);
/// Parses "free-slip" or "no-slip"; throws InvalidArgument otherwise.
ObstacleWallKind parse_obstacle_wall_kind(const std::string& s);

/// How the Simulation's obstacles meet the fluid (Simulation::set_obstacle_wall).
template <class T>
struct ObstacleWall {
  ObstacleWallKind kind = ObstacleWallKind::FreeSlip;
  /// Optional velocity of the solid (a MAC velocity on the simulation's grid, read at the
  /// faces next to the body): the tangential velocity NoSlip walls prescribe. Null: at rest.
  /// Must outlive its use by the Simulation.
  const MacVelocity<T>* wall_velocity = nullptr;
};

/// What the operators need to see no-slip obstacles (null mask and null face_distance:
/// none). diffuse_* take it. Either a staircase (`mask`) or a ghost-fluid body at its true
/// surface (`face_distance`), not both.
template <class T>
struct NoSlipObstacle {
  const ObstacleMask* mask = nullptr;
  const MacVelocity<T>* wall_velocity = nullptr;  ///< null: at rest
  /// Optional: obstacle_face_classes(mask), read by diffusion's stencil instead of the two
  /// cells of each face (one byte a face; the implicit solve reads them every iteration).
  const std::array<Field<std::uint8_t>, 3>* face_classes = nullptr;
  /// Ghost fluid (dfluid/face_fractions.hpp, face_center_distance): the body's signed
  /// distance at every face centre (> 0 in the fluid). Faces with distance <= 0 are held;
  /// a free face next to one sees the wall where the distance, linear between the two,
  /// crosses 0 (Gibou et al. 2002), with the wall velocity interpolated there. Implicit
  /// diffusion only (the explicit step's stable dt would depend on how close a face is).
  const MacVelocity<T>* face_distance = nullptr;
  bool any() const { return mask || face_distance; }
};

/// The class of every face of every component (0 fluid, 1 wall, 2 interior: the header
/// comment), on the face grids of mask's grid; allocates `out` when it is not on them.
void obstacle_face_classes(const Context& ctx, const ObstacleMask& mask,
                           std::array<Field<std::uint8_t>, 3>& out);

/// A loss on the force of the fluid on the obstacles (a Rollout loss term):
///   loss = weight * (1 / |steps|) * sum over the states k in steps of direction · F(state k),
/// F as Simulation::obstacle_force. Drag: direction = the mean flow's; lift: across it.
template <class T>
struct ObstacleForceLoss {
  std::string name = "drag";
  std::vector<int> steps;                    ///< state indices in [1, N]; empty: all of 1..N
  std::array<double, 3> direction{1, 0, 0};  ///< unused components of a 1D/2D grid must be 0
  double weight = 1.0;
  /// Optional: the force on one body only, the solid cells where this mask (a cell field on
  /// the grid, read once when the Simulation first uses it; must outlive the Simulation's use)
  /// is non-zero. Null: every solid cell. Each term of the force belongs to one solid cell
  /// (obstacle_body_force_coefficients), so the forces on masks that partition the solid
  /// cells sum to the total. With face fractions (Simulation::set_obstacle_fractions) the
  /// mask selects the cut cells instead: cover every cut cell of the body and none of another's.
  const ObstacleMask* body = nullptr;
};

/// A rigid rotation about `center` at `rate` (radians per unit time; counter-clockwise about
/// +z in 2D; in 3D about the +z axis through center as well) sampled on every face: u = rate *
/// (-(y - cy)), v = rate * (x - cx). Discretely divergence-free. An ObstacleWall's
/// wall_velocity for a spinning body; rate * (the field at rate 1) is linear in rate, so
/// d loss / d rate = <grad_wall_velocity, rigid_rotation_velocity(..., 1)>. Throws
/// InvalidArgument for a 1D grid or a non-finite center or rate.
template <class T>
MacVelocity<T> rigid_rotation_velocity(const Context& ctx, const Grid& g,
                                       std::array<double, 3> center, double rate);

/// out = u with every interior face next to the fluid along a tangential axis replaced by
/// the no-slip ghost 2 U - (mean of those fluid neighbours), U = (W_ghost + W_fluid) / 2
/// (W: obstacle.wall_velocity, 0 when null); every other face copied. What velocity
/// advection samples under NoSlip walls. out must not alias u.
template <class T>
void obstacle_ghost_fill(const Context& ctx, const MacVelocity<T>& u,
                         const NoSlipObstacle<T>& obstacle, MacVelocity<T>& out);
/// Adjoint of obstacle_ghost_fill's linear part: grad_u += J^T grad_out (a gather).
template <class T>
void obstacle_ghost_fill_adjoint(const Context& ctx, const MacVelocity<T>& grad_out,
                                 const NoSlipObstacle<T>& obstacle, MacVelocity<T>& grad_u);
/// grad_wall += d <grad_out, obstacle_ghost_fill(u)> / d W (the affine part).
template <class T>
void obstacle_ghost_fill_wall_adjoint(const Context& ctx, const MacVelocity<T>& grad_out,
                                      const ObstacleMask& mask, MacVelocity<T>& grad_wall);

/// grad_u += scale * D^T y on the faces the projection's divergence reads (between two fluid
/// cells, periodic wrap included, and on Open, Outflow and Inflow sides next to a fluid cell):
/// (D^T y) = (y_below - y_above) / dx across each face, y = 0 outside the box. With
/// y = A^+ grad_p and scale = -1/dt this is the transpose of the projection's pressure
/// p = -(1/dt) A^+ D u (dfluid/projection.hpp): how step_adjoint carries a pressure cotangent.
template <class T>
void add_divergence_transpose(const Context& ctx, const Field<T>& y, const ObstacleMask* mask,
                              T scale, MacVelocity<T>& grad_u);

/// The coefficients of the force on the obstacles (header comment), per axis a:
///   F_a = shear_scale * <shear[a], u[a]> - shear_scale * <shear_wall[a], W[a]>
///         + pressure_scale * <pressure[a], p>,
/// with shear_scale = nu dx^(dim-2) (nu: 0 without no-slip walls or without diffusion)
/// and pressure_scale = dx^(dim-1); shear_scale_per_nu = d shear_scale / d nu (dx^(dim-2)
/// with no-slip walls, else 0; the Simulation sets it to 0 without diffusion), the force's
/// explicit dependence on the viscosity (a viscosity gradient's term, at nu = 0 too). shear[a]
/// holds, per fluid face of component a, 2 per interior neighbour along a tangential axis plus
/// 1 per wall-face neighbour; shear_wall[a] the weights of the wall velocity in 2U (1 per ghost
/// pair, at both faces of the pair); pressure[a] the signs s per fluid cell, summed over its
/// wall faces normal to a.
template <class T>
struct ObstacleForceCoefficients {
  MacVelocity<T> shear, shear_wall;
  std::array<Field<T>, 3> pressure;
  double shear_scale = 0, pressure_scale = 1;
  double shear_scale_per_nu = 0;
};
/// Builds them for `mask` on its grid (no_slip: whether the shear terms count).
template <class T>
void obstacle_force_coefficients(const Context& ctx, const ObstacleMask& mask, bool no_slip,
                                 double nu, ObstacleForceCoefficients<T>& out);
/// The same for the force on one body: the solid cells of `mask` where `body` (a cell field
/// on the grid) is non-zero; null body: every solid cell (the overload above). Each term is
/// the body's of one solid cell: a pressure term (a wall face) its solid cell's, a shear term
/// that of the wall or interior face it reaches into, and a face's solid cell is the one
/// above it along its component when that is solid, else the one below. So the coefficients
/// of masks that partition the solid cells sum to the total's (exactly: small integers),
/// whether or not the bodies touch.
template <class T>
void obstacle_body_force_coefficients(const Context& ctx, const ObstacleMask& mask,
                                      const ObstacleMask* body, bool no_slip, double nu,
                                      ObstacleForceCoefficients<T>& out);

}  // namespace dfluid
