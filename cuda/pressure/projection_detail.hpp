// Internal helpers shared by the projection sources (include from cuda/*.cpp only).
#pragma once

#include <limits>

#include "dfluid/field.hpp"
#include "core/exec.hpp"

namespace dfluid::detail {

/// Read-only views of a MAC velocity with what a cell stencil needs.
template <class T>
struct MacViews {
  int dim = 2;
  int n[3] = {1, 1, 1};
  bool per[3] = {false, false, false};
  View<const T> c[3];
};

template <class T>
MacViews<T> mac_views(const MacVelocity<T>& u);

/// Sum over the cell's faces of the outward velocity (high face minus low face):
/// dx times the divergence.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T mac_flux_sum(const MacViews<T>& m, int i, int j, int k) {
  T s = T(0);
  for (int a = 0; a < 3; ++a) {
    if (a >= m.dim) break;
    int c[3] = {i, j, k};
    s -= m.c[a](i, j, k);
    c[a] = (c[a] + 1 == m.n[a] && m.per[a]) ? 0 : c[a] + 1;
    s += m.c[a](c[0], c[1], c[2]);
  }
  return s;
}

/// Throws ShapeMismatch / InvalidArgument unless every active component of u is
/// on g's faces and in ctx's memory space. `what` prefixes the messages.
template <class T>
void check_velocity(const Context& ctx, const MacVelocity<T>& u, const Grid& g, const char* what);
/// Same for an optional obstacle mask (a Cell field on g).
void check_obstacles(const Context& ctx, const ObstacleMask* m, const Grid& g, const char* what);

}  // namespace dfluid::detail
