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

}  // namespace dfluid
