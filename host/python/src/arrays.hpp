// Arrays in, fields out, without copies: the one place where Python arrays (numpy, torch,
// jax, CuPy: anything nanobind's ndarray accepts through DLPack or the buffer protocol)
// become dfluid fields that WRAP their memory, and dfluid fields become arrays that view
// dfluid's memory.
//
// Layout: an array is in C order with x fastest, i.e. its shape is the field's extents
// reversed over the grid's active axes: a 2D cell field of an nx x ny grid is (ny, nx), the
// faces normal to x are (ny, nx + 1), a 3D cell field (nz, ny, nx). A leading batch axis
// (a per-step control of a rollout) adds one dimension in front.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <string>
#include <vector>

#include "dfluid/field.hpp"

namespace dfluid::py {

namespace nb = nanobind;

/// The array shape (C order) of values at `loc` on `g`, over the active axes.
std::vector<size_t> array_shape(const Grid& g, Location loc);
/// "(64, 65)".
std::string shape_string(const std::vector<size_t>& shape);
/// "faces normal to x of a 2D 64x64 grid".
std::string location_words(const Grid& g, Location loc);

/// What wrap_array checks besides the shape.
struct ArrayRules {
  bool writable = false;  ///< the field is written (state, gradient): read-only arrays refused
  int batch = -1;         ///< >= 0: a leading axis of this length is expected (per-step arrays)
};

/// The caller's array `obj` as a field at `loc` on `g` that wraps its memory (no copy), after
/// checking everything the kernels rely on; each failure raises dfluid.InvalidArgument whose
/// message names `name`, what was found and what was expected:
///  not an array, dtype not T, shape, not C-contiguous, on another device than ctx computes
///  (CPU memory for the CPU path, CUDA memory of ctx's device for the GPU path), read-only
///  where written. With rules.batch >= 0, one field per entry of the leading axis.
template <class T>
std::vector<Field<T>> wrap_array(const Context& ctx, nb::handle obj, const std::string& name,
                                 const Grid& g, Location loc, ArrayRules rules = {});
/// wrap_array without a batch axis: the single field.
template <class T>
Field<T> wrap_field(const Context& ctx, nb::handle obj, const std::string& name, const Grid& g,
                    Location loc, bool writable) {
  ArrayRules r;
  r.writable = writable;
  return std::move(wrap_array<T>(ctx, obj, name, g, loc, r)[0]);
}

/// An array that views the field's memory (no copy), kept alive by `owner` (the Python object
/// that owns the field). Host memory: a numpy array; device memory: a DLPack-capable array
/// (torch.from_dlpack, cupy.from_dlpack, jax.dlpack.from_dlpack take it without copying).
template <class T>
nb::object view_array(const Field<T>& f, nb::handle owner, int device_id = 0);

}  // namespace dfluid::py
