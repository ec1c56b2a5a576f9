// How a face of a MAC component meets the solid cells of an ObstacleMask (see
// dfluid/obstacle.hpp): fluid, wall (one solid and one fluid cell) or interior (no fluid
// cell). Shared by the no-slip diffusion stencil (core/stencil.hpp), the ghost fill of
// velocity advection and the force coefficients (obstacle/obstacle.cpp).
//
// Include only from cuda/*.cpp (see exec.hpp).
#pragma once

#include <cstdint>

#include "dfluid/config.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/view.hpp"

namespace dfluid::detail {

enum : unsigned char { kFaceFluid = 0, kFaceWall = 1, kFaceInterior = 2 };

/// The solid cells and the cell grid they live on (solid.data == nullptr: no obstacles).
struct ObstacleCells {
  View<const std::uint8_t> solid;
  int n[3] = {1, 1, 1};  ///< cells per axis
  bool periodic[3] = {false, false, false};
};

inline ObstacleCells obstacle_cells(const Grid& g, View<const std::uint8_t> solid) {
  ObstacleCells o;
  o.solid = solid;
  for (int a = 0; a < 3; ++a) {
    o.n[a] = g.n[a];
    o.periodic[a] = a < g.dim && g.periodic(a);
  }
  return o;
}

/// Class of face (i, j, k) of component comp: its cells are the one below (index - 1 along
/// comp, wrapping on a periodic axis) and the one above (index), where they exist. A face on
/// a box side has one cell: interior when that cell is solid.
DFLUID_HD DFLUID_FORCEINLINE unsigned char obstacle_face_class(const ObstacleCells& o, int comp,
                                                               int i, int j, int k) {
  int c[3] = {i, j, k};
  const int f = c[comp];
  int solid = 0, fluid = 0;
  if (f < o.n[comp]) {
    if (o.solid(c[0], c[1], c[2]))
      ++solid;
    else
      ++fluid;
  }
  int lo = f - 1;
  if (lo < 0 && o.periodic[comp]) lo = o.n[comp] - 1;
  if (lo >= 0) {
    c[comp] = lo;
    if (o.solid(c[0], c[1], c[2]))
      ++solid;
    else
      ++fluid;
  }
  if (solid == 0) return kFaceFluid;
  return fluid == 0 ? kFaceInterior : kFaceWall;
}

/// The neighbour of face (i, j, k) of component comp along axis b on side `side` (0: -1,
/// 1: +1), wrapping on a periodic axis; false when it lies outside the face grid.
DFLUID_HD DFLUID_FORCEINLINE bool face_neighbour(const ObstacleCells& o, int comp, int b, int side,
                                                 int i, int j, int k, int nb[3]) {
  nb[0] = i;
  nb[1] = j;
  nb[2] = k;
  const int m = o.n[b] + (b == comp && !o.periodic[b] ? 1 : 0);  // face extent along b
  int p = nb[b] + (side ? 1 : -1);
  if (p < 0 || p >= m) {
    if (!o.periodic[b]) return false;
    p = side ? 0 : m - 1;
  }
  nb[b] = p;
  return true;
}

}  // namespace dfluid::detail
