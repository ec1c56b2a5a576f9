// Diffusion of cell-centred scalars, cell-centred vectors and MAC velocities:
// explicit (forward Euler) and implicit (backward Euler, solved with CG).
//
// Discretization: the standard 3/5/7-point Laplacian on each array,
//   lap(q)_i = sum over active axes of (q_{i-1} + q_{i+1} - 2 q_i) / dx^2.
//
// Boundaries:
//  - Cell-centred scalars (and each component of a CellVector): periodic axes
//    wrap; other sides follow the ScalarBoundary: ZeroGradient (ghost = boundary
//    cell, no flux: the total is conserved) or Fixed(b) (the value on the side is
//    b: ghost = 2b - boundary cell). With Fixed sides the operator is affine:
//    lap(q) = L q + c, with L symmetric and c from the side values.
//  - MAC velocity, component a on its face grid (extents grid.face_extents(a)):
//      along axis a: faces on a closed side (Wall, NoSlip, MovingWall, Inflow) are not diffused
//      (the wall-normal
//        velocity stays what it is; their neighbours read them as Dirichlet values
//        on the wall); an Open side is zero gradient; periodic wraps;
//      along the other axes (tangential): NoSlip, MovingWall and Inflow sides fix the
//        tangential velocity on the side (0, or the MovingWall's `wall` velocity: ghost =
//        2 U - boundary value, an affine part); every other non-periodic side is zero
//        gradient (free slip: no tangential stress).
//    Obstacles: by default not seen by diffusion (free slip; the projection that follows
//      enforces zero velocity on faces touching solid cells). With a NoSlipObstacle (the
//      mask of no-slip obstacles, optionally their wall velocity W): faces touching a solid
//      cell are held, and a free face next to an interior face (both cells solid) along a
//      tangential axis sees the ghost 2 U - u there, 2 U = W at the two faces (see
//      dfluid/obstacle.hpp): -u in L (symmetric), 2 U in the affine part. With a
//      ghost-fluid body (NoSlipObstacle::face_distance; implicit diffusion only) the wall
//      sits at its true distance theta (a fraction of the spacing) from each free face next
//      to the body, along every axis: the term (U_s - u) / theta, U_s the wall velocity
//      interpolated there; -u / theta in L (still symmetric), U_s / theta in the affine part.
//
// Outputs must not alias inputs (the stencil reads neighbours).
//
// Structure (for adjoints): with L the linear part of the Laplacian on free
// entries (held neighbours and Fixed side values read as 0; symmetric) and c the
// affine part (held neighbour values and 2*b/dx^2 from Fixed sides):
//   explicit  out_free = q_free + nu dt (L q + c),   out_held = q_held;
//   implicit  (I - nu dt L) out_free = q_free + nu dt c,   out_held = q_held.
// The cell functions live in cuda/core/stencil.hpp and cuda/diffusion/diffusion.cpp (the wall
// velocities' gradients in cuda/diffusion/diffusion_wall_gradient.cpp).
#pragma once

#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/linear_solver.hpp"
#include "dfluid/obstacle.hpp"

namespace dfluid {

/// Largest explicitly stable time step of diffusion with viscosity nu on g:
/// dx^2 / (2 * dim * nu) (infinity for nu = 0). Throws InvalidArgument naming nu
/// if nu is negative or not finite.
double max_stable_diffusion_dt(const Grid& g, double nu);

/// Explicit diffusion: out = q + nu * dt * lap(q).
/// Throws UnstableTimeStep (carrying the largest stable dt) when
/// nu * dt / dx^2 > 1 / (2 * dim); InvalidArgument naming nu (nu < 0, NaN, Inf)
/// or dt (dt <= 0, NaN, Inf); ShapeMismatch when q and out differ in shape;
/// InvalidArgument when out aliases q.
template <class T>
void diffuse_explicit(const Context& ctx, const Field<T>& q, T nu, T dt, Field<T>& out,
                      const ScalarBoundary& bc = {});
/// Each component of a cell-centred vector, with the same boundary.
template <class T>
void diffuse_explicit(const Context& ctx, const CellVector<T>& q, T nu, T dt, CellVector<T>& out,
                      const ScalarBoundary& bc = {});
/// Each MAC component on its face grid (boundaries as described above).
template <class T>
void diffuse_explicit(const Context& ctx, const MacVelocity<T>& u, T nu, T dt, MacVelocity<T>& out,
                      const WallVelocity& wall = {}, const NoSlipObstacle<T>& obstacle = {});

/// Implicit (backward Euler) diffusion: solves (I - nu * dt * lap) out = q with
/// preconditioned conjugate gradients. The operator I - nu dt L is symmetric
/// positive definite (L as in the header comment; Fixed side values and held
/// wall-normal faces move to the right-hand side), so any dt > 0 is stable.
///
/// Solver options (see linear_solver.hpp): tolerances, iteration cap,
/// check_every and throw_on_failure as for the pressure solve. Preconditioner:
/// Jacobi (Multigrid, the default, maps to Jacobi here) or None. warm_start:
/// start from the values in `out` (else from 0). Held wall-normal faces are not
/// unknowns of the solve (nor part of its residual): they are copied exactly.
/// Allocates the right-hand side and four CG work fields per call.
/// Throws as diffuse_explicit for bad arguments (never UnstableTimeStep), and
/// SolverNotConverged at the iteration cap when options.throw_on_failure.
template <class T>
SolveReport diffuse_implicit(const Context& ctx, const Field<T>& q, T nu, T dt, Field<T>& out,
                             const ScalarBoundary& bc = {}, const SolverOptions& options = {});
/// Each component of a cell-centred vector, one solve per component. The report
/// combines them: iterations and residuals are the largest over the components,
/// converged is true when every solve converged.
template <class T>
SolveReport diffuse_implicit(const Context& ctx, const CellVector<T>& q, T nu, T dt,
                             CellVector<T>& out, const ScalarBoundary& bc = {},
                             const SolverOptions& options = {});
/// Each MAC component on its face grid, one solve per component (report as above).
template <class T>
SolveReport diffuse_implicit(const Context& ctx, const MacVelocity<T>& u, T nu, T dt,
                             MacVelocity<T>& out, const SolverOptions& options = {},
                             const WallVelocity& wall = {}, const NoSlipObstacle<T>& obstacle = {});

// ---------------------------------------------------------------------------
// Adjoints (vector-Jacobian products). Each ACCUMULATES: grad_q += J^T grad_out,
// where J is the Jacobian of the forward step with respect to its input field
// (so contributions from several paths add up; zero grad_q first for a plain
// product). J is the linear part of the step: Fixed side values are constants and
// do not appear. Held wall-normal MAC faces are inputs too: the forward copies
// them (out_held = q_held) and free neighbours read them as Dirichlet values, so
//   grad_q_held = grad_out_held + nu dt / dx^2 * (sum of the adjoint values of
//                 the free neighbours whose stencils read that held face),
// where the adjoint value is grad_out (explicit) or w = (I - nu dt L)^-1 grad_out
// on free entries (implicit). Every adjoint is a gather (each output entry is
// written by one thread): bitwise deterministic. grad_out and grad_q must not
// alias (the stencil reads neighbours). Arguments are checked as for the forward
// (the explicit adjoint refuses the same unstable dt).

/// grad_q += J^T grad_out for diffuse_explicit (same nu, dt, bc as the forward).
template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const Field<T>& grad_out, T nu, T dt,
                              Field<T>& grad_q, const ScalarBoundary& bc = {});
template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const CellVector<T>& grad_out, T nu, T dt,
                              CellVector<T>& grad_q, const ScalarBoundary& bc = {});
template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const MacVelocity<T>& grad_out, T nu, T dt,
                              MacVelocity<T>& grad_u, const NoSlipObstacle<T>& obstacle = {});

/// d<grad_out, diffuse_explicit(q)>/d nu = dt * sum over diffused entries of
/// grad_out * lap(q) (the full Laplacian: Fixed side values and held faces
/// included). q is the forward's input. Host wait (a deterministic double sum).
template <class T>
double diffuse_explicit_nu_gradient(const Context& ctx, const Field<T>& q, T nu, T dt,
                                    const Field<T>& grad_out, const ScalarBoundary& bc = {});
template <class T>
double diffuse_explicit_nu_gradient(const Context& ctx, const MacVelocity<T>& u, T nu, T dt,
                                    const MacVelocity<T>& grad_out, const WallVelocity& wall = {},
                                    const NoSlipObstacle<T>& obstacle = {});

/// *accumulator += d<grad_out, diffuse(q)>/d nu, on the device: dt * the sum over the
/// diffused entries of w * lap(q) (the full Laplacian: Fixed side values, held faces and the
/// MovingWall wall velocities included), with
///   explicit:  q the forward's INPUT and w = grad_out;
///   implicit:  q the forward's OUTPUT and w the adjoint solve's values, i.e. what
///              diffuse_implicit_adjoint accumulated into a zeroed grad_q (read on the free
///              entries only), since (I - nu dt L) d out/d nu = dt lap(out).
/// nu itself does not appear (the derivative holds at nu = 0 too). `accumulator` is one double
/// in the context's memory space (e.g. a Buffer<double> element): no host wait; read it with
/// read_doubles. Throws InvalidArgument for a null accumulator or bad dt, ShapeMismatch when w
/// is not shaped like q.
template <class T>
void add_diffusion_nu_gradient_into(const Context& ctx, const Field<T>& q, T dt, const Field<T>& w,
                                    double* accumulator, const ScalarBoundary& bc = {});
/// With no-slip obstacles, pass the forward's NoSlipObstacle: their ghosts (and wall velocity,
/// an affine part) are part of lap, as in the forward's stencil.
template <class T>
void add_diffusion_nu_gradient_into(const Context& ctx, const MacVelocity<T>& u, T dt,
                                    const MacVelocity<T>& w, double* accumulator,
                                    const WallVelocity& wall = {},
                                    const NoSlipObstacle<T>& obstacle = {});

/// Gradient of <grad_out, diffuse(u)> with respect to the wall velocity of every
/// MovingWall side (0 elsewhere), given w = grad_out for diffuse_explicit, or for
/// diffuse_implicit the values diffuse_implicit_adjoint accumulated into a zeroed
/// grad_u (the adjoint solve's w = (I - nu dt L)^-1 grad_out on the free entries).
/// The wall velocity enters only the affine part: nu dt 2/dx^2 * the sum of w over the
/// free entries of each tangential component next to the side. One host wait (a
/// deterministic double sum) per MovingWall side and tangential component.
template <class T>
WallVelocity diffuse_wall_velocity_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                            const NoSlipObstacle<T>& obstacle = {});

/// The same gradient left in the context's memory space, no host wait: dst holds
/// VelocityBoundaryGradient::kWallSlots doubles in the WallVelocity layout
/// (VelocityBoundaryGradient::wall_slot); the entries of each MovingWall side's tangential
/// components are SET to the values diffuse_wall_velocity_gradient returns (bitwise), the
/// others are left as they are. Accumulate them over steps with add_doubles.
template <class T>
void diffuse_wall_velocity_gradient_into(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                         double* dst, const NoSlipObstacle<T>& obstacle = {});

/// The same for the wall velocity W of no-slip obstacles: grad_wall += d<grad_out,
/// diffuse(u)>/dW, given w as above (the adjoint with the same obstacle). A gather, no wait.
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const ObstacleMask& mask, MacVelocity<T>& grad_wall);
/// The same for either kind of no-slip body (obstacle.mask or obstacle.face_distance; its
/// wall_velocity is not read: the gradient does not depend on it).
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const NoSlipObstacle<T>& obstacle, MacVelocity<T>& grad_wall);

/// grad_q += J^T grad_out for diffuse_implicit. I - nu dt L is symmetric, so this
/// is the same CG solve (same preconditioner and tolerances, from `options`) on
/// grad_out restricted to the free entries, followed by one gather. The report is
/// that solve's (per component combined as for the forward). options.warm_start
/// is ignored (the solve starts from 0 in scratch memory). Allocates six scratch
/// fields per call. Throws SolverNotConverged as the forward does.
template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const Field<T>& grad_out, T nu, T dt,
                                     Field<T>& grad_q, const ScalarBoundary& bc = {},
                                     const SolverOptions& options = {});
template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const CellVector<T>& grad_out, T nu, T dt,
                                     CellVector<T>& grad_q, const ScalarBoundary& bc = {},
                                     const SolverOptions& options = {});
template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const MacVelocity<T>& grad_out, T nu, T dt,
                                     MacVelocity<T>& grad_u, const SolverOptions& options = {},
                                     const NoSlipObstacle<T>& obstacle = {});

}  // namespace dfluid
