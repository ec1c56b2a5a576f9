// Non-owning array views for kernels: a pointer, extents and strides
// (x fastest), like a small std::mdspan. Views are what per-cell functions read.
#pragma once

#include <type_traits>

#include "dfluid/config.hpp"

namespace dfluid {

template <class T>
struct View {
  T* data = nullptr;
  int nx = 1, ny = 1, nz = 1;
  Index sy = 1, sz = 1;  ///< strides of j and k, in elements

  DFLUID_HD T& operator()(int i, int j, int k) const { return data[i + sy * j + sz * k]; }
  DFLUID_HD Index offset(int i, int j, int k) const { return i + sy * j + sz * k; }
  DFLUID_HD Index size() const { return Index(nx) * ny * nz; }
  DFLUID_HD bool contiguous() const { return sy == nx && sz == Index(nx) * ny; }
  /// Implicit conversion of a mutable view to a read-only view.
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  DFLUID_HD operator View<const U>() const {
    return View<const U>{data, nx, ny, nz, sy, sz};
  }
};

}  // namespace dfluid
