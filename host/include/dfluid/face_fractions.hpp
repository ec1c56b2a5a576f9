// Face fractions: a sharper obstacle than the staircase for the pressure projection (opt-in).
//
// The staircase (dfluid/obstacle.hpp) makes each cell solid or fluid and closes every face
// that touches a solid cell, so the body the projection sees is its cells' outline at every
// resolution. Here the user describes the true surface by a signed distance phi sampled at
// the grid's nodes (phi > 0 in the fluid, < 0 in the solid, |phi| about the distance to the
// surface), and each MAC face gets its OPEN FRACTION: the fraction of its area in the fluid
// (phi linear along each face edge, exact for a flat surface; Ng, Min & Gibou 2009, "An
// efficient fluid-solid coupling algorithm for single-phase flows", J. Comput. Phys. 228;
// Batty, Bertails & Bridson 2007, "A fast variational framework for accurate solid-fluid
// coupling", ACM Trans. Graph. 26). A PressureSolver built with these fractions W weights
// its divergence and its Poisson matrix by them (dfluid/projection.hpp):
//     solve  A x = D W u,  A = D W D^T  (symmetric positive semi-definite),
//     u  <-  F (u - D^T x)             (F: the faces with W > 0),
// so the flux through the fluid part of each face, W u, is discretely divergence-free, and
// a face of a cut cell keeps a velocity (the staircase holds it at 0). The solid is at rest:
// its closed fraction 1 - W carries no flux.
//
// A face of the box's sides keeps the box's rule (Wall: closed; Open: open) times its
// fraction. Fractions 0/1 from a mask (face_open_fractions_from_mask) reproduce the
// staircase's projection exactly.
#pragma once

#include <array>
#include <vector>

#include "dfluid/context.hpp"
#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/obstacle.hpp"

namespace dfluid {

/// Nodes of g: (n[0] + 1) (n[1] + 1) (n[2] + 1) with the unused axes of a 1D/2D grid at 1
/// node, x fastest. Node (i, j, k) sits at (origin + (i, j, k) dx).
Index grid_node_count(const Grid& g);

/// The signed distance to a circle (2D; in 3D a sphere; 1D: a segment) of `radius` about
/// `center` at every node: |x - center| - radius (positive outside, in the fluid). For a
/// fluid inside the circle (a container), negate it.
/// Throws InvalidArgument for radius <= 0 or a non-finite center.
std::vector<double> circle_node_distance(const Grid& g, std::array<double, 3> center,
                                         double radius);

/// The open fraction of every face of every active component, from node values phi
/// (grid_node_count(g) of them, x fastest; > 0 fluid): along a 2D face edge, the fraction
/// of the segment where the linear interpolant of phi is positive; on a 3D face, the same
/// over the four triangles that join each edge to the face's centre (centre value: the mean
/// of the four corners). Values in [0, 1]. Throws InvalidArgument when phi has the wrong
/// length or a non-finite value.
template <class T>
MacVelocity<T> face_open_fractions(const Context& ctx, const Grid& g,
                                   const std::vector<double>& node_phi);

/// The signed distance at every face centre of every active component, from the same node
/// values: the mean of the face's corners (2 in 2D, 4 in 3D; the node itself in 1D), exact
/// for a flat surface. A Simulation's no-slip face-fraction body (set_obstacle_fractions with
/// it) places its wall where this distance, linear between two neighbouring faces, crosses
/// 0 (ghost fluid, NoSlipObstacle::face_distance). Throws as face_open_fractions.
template <class T>
MacVelocity<T> face_center_distance(const Context& ctx, const Grid& g,
                                    const std::vector<double>& node_phi);

/// The staircase as fractions: 1 on a face whose adjacent cells (both, or the one of a box
/// side) are fluid in mask, 0 otherwise. A PressureSolver with these projects exactly as one
/// built with the mask.
template <class T>
MacVelocity<T> face_open_fractions_from_mask(const Context& ctx, const ObstacleMask& mask);

/// The force on a face-fraction obstacle (free-slip: pressure only), as the coefficients of
/// Simulation::obstacle_force: the fluid part of each cell is closed by its faces' open
/// parts and the body's surface, so the pressure p_c of the cell pushes the body with
///   p_c (W_low - W_high) dx^(dim-1)  along each axis
/// (W_low, W_high: the open fractions of the cell's two faces normal to it; 0 in a cell
/// that the body does not cut). pressure[a] holds W_low - W_high per cell, pressure_scale
/// dx^(dim-1); the shear fields are 0. A fluid at rest under a body force f then feels
/// exactly -f times the body's volume as its a-faces measure it, dx^dim sum (1 - W) over
/// the faces normal to a (a discrete Archimedes). Linear in p: its adjoint is exact. A body
/// that touches a box side gets the box's pressure on its closed part of that side too.
template <class T>
void face_fraction_force_coefficients(const Context& ctx, const MacVelocity<T>& open_fractions,
                                      ObstacleForceCoefficients<T>& out);
/// The same with the shear of a no-slip ghost-fluid wall (face_distance, as
/// NoSlipObstacle::face_distance; null: free-slip, no shear) and for one body (the cells
/// where `body` is non-zero; null: all). Per free face f and each neighbour g inside the body
/// (distance <= 0) at theta of the way (core/stencil.hpp's ghost), the body feels
///   nu dx^(dim-2) (u_f - U_s) / theta,  U_s = (1 - theta) W_f + theta W_g
/// (W the wall velocity): shear[f] = sum of 1/theta, shear_wall = (1/theta - 1) at f plus 1
/// at g; the caller sets shear_scale = nu dx^(dim-2) (0 here). A pressure term belongs to
/// its cell, a shear term to the cell above its interior face along the component (the last
/// cell on the box's high side): masks that partition the cells partition the force.
template <class T>
void face_fraction_force_coefficients(const Context& ctx, const MacVelocity<T>& open_fractions,
                                      const MacVelocity<T>* face_distance, const ObstacleMask* body,
                                      ObstacleForceCoefficients<T>& out);

/// out = u on the open faces (W > 0) and the solid's velocity (0 when null) on the closed
/// ones (W = 0): what a Simulation's velocity advection samples with a no-slip face-fraction
/// body (set_obstacle_fractions with the face distance), so that a departure point inside
/// the body reads the body's velocity rather than the projection's zeros. u and out may be
/// the same fields.
template <class T>
void fill_closed_faces(const Context& ctx, const MacVelocity<T>& open_fractions,
                       const MacVelocity<T>& u, const MacVelocity<T>* solid_velocity,
                       MacVelocity<T>& out);
/// Its adjoint: grad_u += grad_out on the open faces, grad_solid (when not null) += grad_out
/// on the closed ones.
template <class T>
void fill_closed_faces_adjoint(const Context& ctx, const MacVelocity<T>& open_fractions,
                               const MacVelocity<T>& grad_out, MacVelocity<T>& grad_u,
                               MacVelocity<T>* grad_solid);

}  // namespace dfluid
