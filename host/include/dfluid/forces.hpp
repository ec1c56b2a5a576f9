// Forces and sources, applied in place with forward Euler over one step dt.
// Every function here is linear in its field arguments (for fixed dt, coef and
// obstacles), so its adjoint is the transposed update.
//
// Obstacles (optional, 1 = solid): a face touching a solid cell (either of the
// two cells it separates) is never changed by a force; a solid cell is never
// changed by a source.
#pragma once

#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"

namespace dfluid {

/// Buoyancy: u[up_axis] += dt * coef * s_face, where s_face is the scalar sampled
/// at the face:
///  - interior face (between two cells): the average of the two cells;
///  - face on a periodic axis: the same average, wrapping around;
///  - boundary face on an Open side: the value of the one adjacent cell
///    (zero-gradient extrapolation of the scalar);
///  - boundary face on a Wall side: left alone (no flow through walls).
/// The smoke plume of the PBDL book is add_buoyancy(ctx, u, smoke, 1, dt) in 2D.
/// Throws InvalidArgument for an up_axis outside [0, dim), a non-finite coef, or
/// a bad dt; ShapeMismatch when scalar or obstacles are not cells of u's grid.
template <class T>
void add_buoyancy(const Context& ctx, MacVelocity<T>& u, const Field<T>& scalar, T coef, T dt,
                  int up_axis = 1, const ObstacleMask* obstacles = nullptr);

/// u += dt * f on every face (boundary faces included), except faces touching a
/// solid cell. f must have u's grid.
template <class T>
void add_force(const Context& ctx, MacVelocity<T>& u, const MacVelocity<T>& f, T dt,
               const ObstacleMask* obstacles = nullptr);

/// Cell-centred force for CellVector problems (Burgers-type): u += dt * f per
/// component, except in solid cells.
template <class T>
void add_force(const Context& ctx, CellVector<T>& u, const CellVector<T>& f, T dt,
               const ObstacleMask* obstacles = nullptr);

/// Scalar source: q += dt * s, except in solid cells. q and s are cell-centred on the same grid.
template <class T>
void add_source(const Context& ctx, Field<T>& q, const Field<T>& s, T dt,
                const ObstacleMask* obstacles = nullptr);

// ---------------------------------------------------------------------------
// Adjoints (vector-Jacobian products). Each ACCUMULATES into its gradient
// argument (grad_x += J^T grad_out), so contributions from several paths add
// up; zero it first for a plain product. Every update above is in place,
// u_out = u_in + dt * (...), so the cotangent of the updated field passes through
// unchanged (grad_u_in = grad_u_out: nothing to call); these functions give the
// other inputs' gradients. Same dt, coef, up_axis and obstacles as the forward.
// Each is a gather (one thread per output entry): bitwise deterministic.

/// grad_scalar += dt * coef * S^T grad_u[up_axis], S the forward's face sampling:
/// each cell gathers from its (at most two) up-axis faces that the forward
/// changes (not Wall boundary faces, not faces touching solids), with the weight
/// the face gives that cell (1/2, or 1 on an Open boundary face).
template <class T>
void add_buoyancy_adjoint(const Context& ctx, const MacVelocity<T>& grad_u, T coef, T dt,
                          Field<T>& grad_scalar, int up_axis = 1,
                          const ObstacleMask* obstacles = nullptr);

/// d<grad_u, add_buoyancy(u, scalar, coef)>/d coef = dt * sum over the faces the
/// forward changes of grad_u[up_axis] * s_face (scalar: the forward's input).
/// Host wait (a deterministic double sum).
template <class T>
double add_buoyancy_coef_gradient(const Context& ctx, const MacVelocity<T>& grad_u,
                                  const Field<T>& scalar, T dt, int up_axis = 1,
                                  const ObstacleMask* obstacles = nullptr);
/// The same value added to *accumulator (one double in ctx's memory space, e.g. a
/// Buffer<double> element), on the device: bitwise the host's `*acc += value`. No host wait;
/// read it when needed (read_doubles, field_ops.hpp).
template <class T>
void add_buoyancy_coef_gradient_into(const Context& ctx, const MacVelocity<T>& grad_u,
                                     const Field<T>& scalar, T dt, int up_axis, double* accumulator,
                                     const ObstacleMask* obstacles = nullptr);

/// grad_f += dt * grad_u on every face the forward add_force changes (0 added on
/// faces touching a solid cell).
template <class T>
void add_force_adjoint(const Context& ctx, const MacVelocity<T>& grad_u, T dt,
                       MacVelocity<T>& grad_f, const ObstacleMask* obstacles = nullptr);

/// grad_f += dt * grad_u per component, except in solid cells.
template <class T>
void add_force_adjoint(const Context& ctx, const CellVector<T>& grad_u, T dt, CellVector<T>& grad_f,
                       const ObstacleMask* obstacles = nullptr);

/// grad_s += dt * grad_q, except in solid cells.
template <class T>
void add_source_adjoint(const Context& ctx, const Field<T>& grad_q, T dt, Field<T>& grad_s,
                        const ObstacleMask* obstacles = nullptr);

}  // namespace dfluid
