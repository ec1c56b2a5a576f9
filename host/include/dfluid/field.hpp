// Fields: a grid, a location on it (cell centres or the faces normal to one
// axis) and the values, owned or wrapping caller memory.
//
//  Field<T> at Location::Cell   a cell-centred scalar (smoke density, pressure, ...)
//  MacVelocity<T>               face-centred velocity: component a on faces normal to axis a
//  CellVector<T>                cell-centred vector (1D/2D Burgers-type problems)
//  ObstacleMask                 1 = solid cell, 0 = fluid
#pragma once

#include <array>
#include <string>
#include <vector>

#include "dfluid/error.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/view.hpp"

namespace dfluid {

enum class Location { Cell, FaceX, FaceY, FaceZ };
inline Location face_location(int axis) {
  return static_cast<Location>(1 + axis);
}
const char* to_string(Location l);

/// Array extents of values at `loc` on `g`.
std::array<int, 3> extents_of(const Grid& g, Location loc);

template <class T>
class Field {
 public:
  Field() = default;
  /// Zero-filled field allocated through the allocator hook in `space`
  /// (default: the context's memory space).
  Field(const Context& ctx, const Grid& g, Location loc = Location::Cell);
  Field(const Context& ctx, const Grid& g, Location loc, MemorySpace space);
  /// Wraps memory the caller owns (device or host pointer); no copy is made.
  /// Strides default to the contiguous layout (x fastest).
  static Field wrap(const Grid& g, Location loc, T* data, MemorySpace space, Index stride_y = 0,
                    Index stride_z = 0);

  const Grid& grid() const { return grid_; }
  Location location() const { return loc_; }
  MemorySpace space() const { return buf_.space(); }
  const std::array<int, 3>& extents() const { return ext_; }
  Index size() const { return Index(ext_[0]) * ext_[1] * ext_[2]; }
  T* data() const { return buf_.data(); }
  bool empty() const { return buf_.data() == nullptr; }
  /// False when the field wraps memory the caller owns.
  bool owning() const { return buf_.owning(); }

  View<T> view() { return View<T>{buf_.data(), ext_[0], ext_[1], ext_[2], sy_, sz_}; }
  View<const T> view() const {
    return View<const T>{buf_.data(), ext_[0], ext_[1], ext_[2], sy_, sz_};
  }
  /// A non-owning field over the same memory (cheap; the original must outlive it).
  Field alias() const { return wrap(grid_, loc_, buf_.data(), buf_.space(), sy_, sz_); }

  /// Host wait: copies the values into a host vector, x fastest, contiguous.
  std::vector<T> to_vector(const Context& ctx) const;
  /// Copies a contiguous host vector (x fastest) into the field; throws ShapeMismatch on a size
  /// mismatch.
  void assign(const Context& ctx, const std::vector<T>& values);

 private:
  Grid grid_;
  Location loc_ = Location::Cell;
  std::array<int, 3> ext_{0, 0, 0};
  Index sy_ = 0, sz_ = 0;
  Buffer<T> buf_;
};

template <class T>
using ScalarField = Field<T>;

/// Staggered (MAC) velocity. comp[a] lives on faces normal to axis a; only the
/// first grid.dim components exist.
template <class T>
struct MacVelocity {
  MacVelocity() = default;
  MacVelocity(const Context& ctx, const Grid& g);
  MacVelocity(const Context& ctx, const Grid& g, MemorySpace space);
  /// Wraps caller-owned component arrays (one pointer per active axis).
  static MacVelocity wrap(const Grid& g, std::array<T*, 3> data, MemorySpace space);

  const Grid& grid() const { return comp[0].grid(); }
  int dim() const { return comp[0].grid().dim; }
  Field<T>& operator[](int a) { return comp[a]; }
  const Field<T>& operator[](int a) const { return comp[a]; }
  std::array<Field<T>, 3> comp;
};

/// Cell-centred vector field with grid.dim components.
template <class T>
struct CellVector {
  CellVector() = default;
  CellVector(const Context& ctx, const Grid& g);
  const Grid& grid() const { return comp[0].grid(); }
  int dim() const { return comp[0].grid().dim; }
  Field<T>& operator[](int a) { return comp[a]; }
  const Field<T>& operator[](int a) const { return comp[a]; }
  std::array<Field<T>, 3> comp;
};

/// Solid obstacle cells: 1 = solid, 0 = fluid. Velocity on faces touching a
/// solid cell is held at zero; the pressure solve treats solids as walls.
using ObstacleMask = Field<std::uint8_t>;

// ---- argument checks shared by every operator (throw with the names given) ----
namespace check {
/// Throws ShapeMismatch unless a and b have the same grid, location and extents.
template <class A, class B>
void same_shape(const Field<A>& a, const char* name_a, const Field<B>& b, const char* name_b);
/// Throws ShapeMismatch unless the field is at `loc` on grid g.
template <class A>
void on_grid(const Field<A>& f, const char* name, const Grid& g, Location loc);
/// Throws InvalidArgument unless the field's memory is where ctx computes.
template <class A>
void accessible(const Context& ctx, const Field<A>& f, const char* name);
/// Throws InvalidArgument unless dt is finite and > 0.
void positive_dt(double dt, const char* name = "dt");
/// Whether the memory spanned by a's values and by b's values overlaps (empty fields never
/// do): operators that read neighbours refuse an output that aliases an input.
template <class A>
bool overlap(const Field<A>& a, const Field<A>& b) {
  if (a.empty() || b.empty()) return false;
  const View<const A> va = a.view(), vb = b.view();
  const A* a0 = va.data;
  const A* a1 = a0 + va.offset(va.nx - 1, va.ny - 1, va.nz - 1) + 1;
  const A* b0 = vb.data;
  const A* b1 = b0 + vb.offset(vb.nx - 1, vb.ny - 1, vb.nz - 1) + 1;
  return a0 < b1 && b0 < a1;
}
}  // namespace check

}  // namespace dfluid
