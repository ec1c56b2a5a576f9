// Advection: semi-Lagrangian (Euler or RK2 backtrace) and MacCormack with the
// min/max clamp, for three kinds of fields:
//
//  1. a cell-centred scalar advected by a MAC velocity,
//  2. a MAC velocity advected by a MAC velocity (self-advection when both
//     arguments are the same object): each face traces back with the full
//     velocity interpolated at its own position and samples its own
//     component at the departure point,
//  3. a CellVector advected by a CellVector velocity (self-advection of 1D/2D
//     Burgers-type problems): each component sampled at the departure point.
//
// Numerics (positions in cell units, p = (x - origin) / dx):
//  * Backtrace. Euler: x_d = x - dt u(x).  RK2 (midpoint):
//    x_m = x - dt/2 u(x), x_d = x - dt u(x_m). Velocities are interpolated
//    linearly from the velocity field at every position needed.
//  * Sampling (options.interpolation). Linear: linear (1D), bilinear (2D),
//    trilinear (3D) interpolation with full-precision weights. Cubic: Catmull-Rom
//    (cubic Hermite with centred-difference slopes; 4, 16, 64 samples), whose value
//    and slope are continuous in the position (C1), so the velocity gradient through
//    the departure point has no kinks where departure points cross a sample plane
//    (linear's slope jumps there: a symmetric start, with departure points exactly on
//    sample planes, has two one-sided derivatives). The interpolation applies to the
//    advected field and to every velocity sample of the backtrace. Positions are wrapped on
//    periodic axes and clamped to the domain [0, n dx] on the others. Cell-centred values beyond
//    the first/last cell centre use a ghost value from options.boundary (ZeroGradient: ghost =
//    boundary cell; Fixed b: ghost = 2b - boundary cell, so the value on the side is b). MAC
//    components use their stored boundary faces along their own axis and are zero-gradient
//    (clamped) beyond the last cell centre along the other axes. The cubic's 4-sample stencil
//    reaches a second ghost cell: ghost[-1-m] = alpha * q[m] + beta with the same rule (the even /
//    odd mirror image about the boundary face), and, along a MAC component's own axis, one face
//    beyond the boundary face: 2 f[0] - f[1] (linear extrapolation). The CellVector velocity of (3)
//    is sampled with options.boundary too (it is meant for self-advection).
//  * MacCormack: q^ = SL(q; dt), q~ = SL(q^; -dt), q_new = q^ + (q - q~)/2,
//    clamped to the [min, max] of the interpolation-stencil values of q around
//    the departure point of the forward pass (no new extrema): the 2^D samples
//    that bracket it, for either interpolation (the cubic's own overshoot is
//    clamped too). The clamp can be switched off (options.maccormack_clamp) for
//    the linear scheme.
//
// Advection does not impose the normal velocity of the boundary (wall faces are
// advected like any other face); the projection does that. The tangential velocity of
// NoSlip, MovingWall and Inflow sides enters through the ghost values of the advected
// components (options.wall_velocity); the adjoint is that of the linear part, and
// the derivative with respect to a wall velocity is advect() of a zero velocity with a
// unit wall velocity (see Simulation::step_adjoint).
//
// Outputs must not share memory with any input (InvalidArgument otherwise).
// MacCormack needs one temporary of the shape of q: pass `scratch` to reuse
// memory across steps (its contents are overwritten); without it, one
// temporary is allocated per call. Work is enqueued on ctx's stream (no host wait).
#pragma once

#include <string>

#include "dfluid/context.hpp"
#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"

namespace dfluid {

enum class Backtrace { Euler, RK2 };
enum class AdvectionScheme { SemiLagrangian, MacCormack };
/// How advection samples fields between grid points (see "Sampling" above).
/// Linear: the default. Cubic: Catmull-Rom, C1 in the position (smooth gradients
/// through departure points; third-order interpolation), linear in the data; about
/// 2^D times the work of Linear per sample.
enum class Interpolation { Linear, Cubic };

const char* to_string(Backtrace b);
const char* to_string(AdvectionScheme s);
const char* to_string(Interpolation i);
/// "euler" or "rk2"; throws InvalidArgument otherwise.
Backtrace parse_backtrace(const std::string& s);
/// "semi-lagrangian" (or "sl") or "maccormack"; throws InvalidArgument otherwise.
AdvectionScheme parse_advection_scheme(const std::string& s);
/// "linear" or "cubic" (or "catmull-rom"); throws InvalidArgument otherwise.
Interpolation parse_interpolation(const std::string& s);

struct AdvectionOptions {
  AdvectionScheme scheme = AdvectionScheme::SemiLagrangian;
  Backtrace backtrace = Backtrace::Euler;
  /// Ghost rule of cell-centred fields on non-periodic sides (ignored for MAC fields).
  ScalarBoundary boundary;
  /// MacCormack only: clamp to the stencil range (true, the default), or
  /// false for the plain, linear MacCormack update (may create new extrema;
  /// second order also at smooth extrema, which the clamp flattens).
  bool maccormack_clamp = true;
  /// MAC velocities only: the tangential velocity of MovingWall sides. The grid's kinds
  /// decide the ghost of each advected component along its tangential axes: NoSlip,
  /// MovingWall and Inflow sides prescribe the tangential velocity on the side (ghost =
  /// 2 U - boundary sample, U from here on a MovingWall side, else 0); other sides are
  /// zero-gradient. The departure points are traced through zero-gradient velocities.
  WallVelocity wall_velocity;
  /// Sampling of the advected field and of the velocity (Linear: bit for bit the
  /// scheme without this option).
  Interpolation interpolation = Interpolation::Linear;
};

/// Cell-centred scalar q advected by the MAC velocity u over dt (> 0) into out.
/// q, out (and scratch) are cell fields on u's grid.
template <class T>
void advect(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
            Field<T>& out, const AdvectionOptions& options = {}, Field<T>* scratch = nullptr);

/// MAC velocity q advected by the MAC velocity u (pass the same object twice for
/// self-advection) into out.
template <class T>
void advect(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
            MacVelocity<T>& out, const AdvectionOptions& options = {},
            MacVelocity<T>* scratch = nullptr);

/// Cell-centred vector q advected by the cell-centred velocity u (pass the same
/// object twice for self-advection) into out.
template <class T>
void advect(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
            CellVector<T>& out, const AdvectionOptions& options = {},
            CellVector<T>* scratch = nullptr);

// ---- adjoints (vector-Jacobian products) ----
//
// advect_adjoint(inputs of the forward call, grad_out, grad_...) computes the
// cotangents of the forward inputs given the cotangent grad_out of `out`, and
// ACCUMULATES them: grad_q += (d out / d q)^T grad_out and
// grad_u += (d out / d u)^T grad_out. Zero the gradients first for a plain
// product; leave them as they are to add up several paths (for
// self-advection both paths are summed into the same gradient).
//  * Needs only the step's inputs (q, u): departure points, stencils and
//    MacCormack's q^ are recomputed (principle 3). MacCormack allocates two
//    temporaries of q's shape per array and call.
//  * Fixed scalar boundaries make advection affine in q; the adjoint is that
//    of its linear part. Clamped departure points (non-periodic sides) carry
//    no position derivative; MacCormack's clamp passes the cotangent to the
//    stencil corner it selected (first minimal/maximal corner), else through
//    q^ + (q - q~)/2. At kinks (departure points exactly on a cell
//    centre/face, clamp ties) the one-sided derivative the forward's branch
//    took is used.
//  * Deterministic: bitwise identical gradients run to run on the same device,
//    and on the CPU path for any number of threads (CPU: fixed slabs of samples
//    whose additions reach each target in one order, in T; GPU: 64-bit
//    fixed-point integer atomics with a scale per target cell, so a small
//    gradient next to a large one keeps its digits: a cell with n <= 2^L
//    contributions is exact to n 2^(L-61) of its largest one; see
//    cuda/core/scatter.hpp). The GPU and the CPU path agree to rounding, not
//    bitwise; Accumulation::FixedPoint runs the GPU's scheme on the CPU.
//    Accumulation::Atomic: plain float atomics, for measuring the cost.
//  * Gradients must have the same grid, location and memory layout as their
//    forward fields and must not share memory with q, u or grad_out
//    (InvalidArgument otherwise); grad_q and grad_u may be the same object.
//    grad_u = nullptr skips the velocity cotangent.

/// Bytes the scatter of an advection adjoint takes from the context's temporary
/// pool for one target of `target_elements` entries (span of its view), held while
/// that scatter runs: one block per target, i.e. per velocity-cotangent component
/// (when grad_u is given), for the array's cotangent, and for MacCormack's q^
/// cotangent. Non-zero only for the fixed-point scheme (a GPU context with
/// Accumulation::Deterministic, or Accumulation::FixedPoint); 0 on the CPU path's
/// slabs and with Accumulation::Atomic. Used by memory estimates.
std::size_t scatter_workspace_bytes(const Context& ctx, std::size_t target_elements);

/// Adjoint of advect(q, u) for a cell-centred scalar.
template <class T>
void advect_adjoint(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
                    const Field<T>& grad_out, Field<T>& grad_q, MacVelocity<T>* grad_u,
                    const AdvectionOptions& options = {});

/// Adjoint of advect(q, u) for a MAC velocity q carried by u (q and u may be
/// the same object; then pass the same gradient as grad_q and grad_u, or use
/// the self-advection overload below).
template <class T>
void advect_adjoint(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& grad_out, MacVelocity<T>& grad_q, MacVelocity<T>* grad_u,
                    const AdvectionOptions& options = {});

/// Adjoint of advect(q, u) for a CellVector (see the MAC overload).
template <class T>
void advect_adjoint(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
                    const CellVector<T>& grad_out, CellVector<T>& grad_q, CellVector<T>* grad_u,
                    const AdvectionOptions& options = {});

/// Self-advection out = advect(u, u): grad_u += (d out / d u)^T grad_out, both
/// paths (advected field and carrier) summed.
template <class T>
void advect_adjoint(const Context& ctx, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& grad_out, MacVelocity<T>& grad_u,
                    const AdvectionOptions& options = {});
template <class T>
void advect_adjoint(const Context& ctx, const CellVector<T>& u, double dt,
                    const CellVector<T>& grad_out, CellVector<T>& grad_u,
                    const AdvectionOptions& options = {});

// ---- tangents (Jacobian-vector products) ----
//
// advect_tangent(inputs of the forward call, dq, du, dout) writes the
// directional derivative of advect's output at (q, u) along the direction
// (dq, du): dout = (d out / d q) dq + (d out / d u) du. du = nullptr holds the
// velocity fixed. Forward mode, the exact transpose of advect_adjoint: the
// same linearization (clamped departure points carry no position derivative;
// MacCormack's active clamp passes the direction of the stencil corner it
// selected; at kinks the one-sided derivative of the forward's branch).
// Fixed scalar boundaries: the derivative of the affine map, i.e. its linear
// part. dout is overwritten. Used for Gauss-Newton-type products and for
// exact transpose tests of the adjoints.
//  * dq and du must have the grid, location and memory layout of q and u;
//    dout that of out, sharing no memory with any input (InvalidArgument).
//  * Deterministic (a gather, no atomics); MacCormack takes two temporaries
//    of q's shape per array from the context's pool.

/// Tangent of advect(q, u) for a cell-centred scalar.
template <class T>
void advect_tangent(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
                    const Field<T>& dq, const MacVelocity<T>* du, Field<T>& dout,
                    const AdvectionOptions& options = {});

/// Tangent of advect(q, u) for a MAC velocity q carried by u.
template <class T>
void advect_tangent(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& dq, const MacVelocity<T>* du, MacVelocity<T>& dout,
                    const AdvectionOptions& options = {});

/// Tangent of advect(q, u) for a CellVector.
template <class T>
void advect_tangent(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
                    const CellVector<T>& dq, const CellVector<T>* du, CellVector<T>& dout,
                    const AdvectionOptions& options = {});

/// Self-advection out = advect(u, u) moved along du (both paths).
template <class T>
void advect_tangent(const Context& ctx, const MacVelocity<T>& u, double dt,
                    const MacVelocity<T>& du, MacVelocity<T>& dout,
                    const AdvectionOptions& options = {});
template <class T>
void advect_tangent(const Context& ctx, const CellVector<T>& u, double dt, const CellVector<T>& du,
                    CellVector<T>& dout, const AdvectionOptions& options = {});

}  // namespace dfluid
