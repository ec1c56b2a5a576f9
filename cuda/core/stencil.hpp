// The 3/5/7-point Laplacian on one array of a grid (cell-centred values, or the
// values of one MAC velocity component on its own face grid), with its boundary
// handling. Shared by diffusion (forward and adjoint) and usable by any operator
// that needs a Laplacian of a cell-centred quantity.
//
// Include only from cuda/*.cpp (see exec.hpp).
//
// Along each active axis, each side of the array is one of:
//   periodic       the array wraps (both sides);
//   zero gradient  the ghost beyond the last entry copies it: no flux;
//   fixed(v)       the value on the side, half a cell beyond the last entry, is v:
//                  ghost = 2v - last entry;
//   held           the last entry itself is a boundary node that the operator does
//                  not update (wall-normal MAC faces); its neighbour reads it as an
//                  ordinary value (a Dirichlet value exactly on the node).
//
// The Laplacian is split into a linear part and an affine part so that the
// discrete operator reads as  lap(q) = L q + c:
//   laplacian_linear  L q, where held neighbours and fixed side values count as 0;
//                     L is symmetric negative semidefinite (on the free entries);
//   laplacian_affine  c, the contribution of held neighbours and fixed side values.
// Held entries have no Laplacian (the operator leaves them alone).
// No-slip obstacles (MAC components only; obst.solid.data == nullptr: none): a face that
// touches a solid cell is held (wall faces: the wall-normal velocity, read by neighbours as
// Dirichlet values like held box nodes; interior faces: not read at all), and an interior
// neighbour of a free face is the ghost 2 U - q (the free face's mirror across the solid
// surface half-way between them; 2 U = W(free) + W(ghost), the wall velocity `wall` at the
// two faces, 0 when null): -q goes to the linear part, 2 U to the affine part. Obstacle
// classes take precedence over the box sides' held nodes.
// Ghost fluid (a face-fraction body's no-slip wall at its true distance; Gibou, Fedkiw, Cheng
// & Kang 2002, J. Comput. Phys. 176): with `level` (the body's signed distance at every entry,
// > 0 in the fluid) an entry with level <= 0 is interior (held, not read), and the surface
// between a free entry c and an interior neighbour lies theta = level_c / (level_c -
// level_nb) of the way to it (level linear between them). The wall velocity there is
// U_s = (1 - theta) W_c + theta W_nb, and the neighbour's term of the Laplacian is
// (U_s - q_c) / theta instead of the staircase's (2U - q_c) - q_c: -q_c / theta goes to the
// linear part, U_s / theta to the affine part. theta = 1/2 is the staircase's ghost exactly
// (bitwise: both read through stencil_ghost_weight). theta is kept >= kGhostMinTheta so the
// wall term stays bounded; the operator stays symmetric (only the diagonal changes).
//   laplacian_held_adjoint  the transpose of the held-neighbour part of c (for
//                     adjoints: what a held entry's cotangent gathers from the free
//                     entries that read it). L itself is symmetric, so its transpose
//                     is laplacian_linear again.
#pragma once

#include <array>

#include "core/obstacle_faces.hpp"
#include "dfluid/config.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/view.hpp"

namespace dfluid::detail {

enum : unsigned char { kGhostZeroGradient = 0, kGhostFixed = 1 };

template <class T>
struct LaplacianStencil {
  int dim = 1;
  int m[3] = {1, 1, 1};  ///< array extents
  T inv_dx2 = 1;
  bool periodic[3] = {false, false, false};
  unsigned char ghost[3][2] = {{kGhostZeroGradient, kGhostZeroGradient},
                               {kGhostZeroGradient, kGhostZeroGradient},
                               {kGhostZeroGradient, kGhostZeroGradient}};
  T value[3][2] = {{0, 0}, {0, 0}, {0, 0}};  ///< side values for kGhostFixed
  bool held[3][2] = {{false, false}, {false, false}, {false, false}};
  ObstacleCells obst;                ///< no-slip obstacle cells (solid.data null: none)
  View<const std::uint8_t> classes;  ///< optional: the obstacle class of every entry
  int comp = 0;                      ///< the MAC component the array holds (read with obst)
  View<const T> wall;   ///< wall velocity of component comp on its faces (null: at rest)
  View<const T> level;  ///< ghost fluid: the body's signed distance at every entry (null: none)
};

/// The smallest fraction of the way to an interior neighbour at which the ghost-fluid wall
/// is placed: a wall closer than a thousandth of a cell to a free entry moves to it (its
/// term 1/theta then stays at most 1000 times a neighbour's).
constexpr double kGhostMinTheta = 1e-3;

/// The obstacle class of entry idx (kFaceFluid without no-slip obstacles).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE unsigned char stencil_obstacle(const LaplacianStencil<T>& s,
                                                            const int idx[3]) {
  if (s.level.data) return s.level(idx[0], idx[1], idx[2]) > T(0) ? kFaceFluid : kFaceInterior;
  if (!s.obst.solid.data) return kFaceFluid;
  if (s.classes.data) return s.classes(idx[0], idx[1], idx[2]);
  return obstacle_face_class(s.obst, s.comp, idx[0], idx[1], idx[2]);
}

/// True when the stencil has obstacle faces (a staircase's cells or a ghost-fluid level).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE bool stencil_has_obstacle(const LaplacianStencil<T>& s) {
  return s.obst.solid.data || s.level.data;
}

/// 1 / theta for the ghost between free entry (i, j, k) and its interior neighbour nb: 2 for
/// the staircase (the surface half-way), else level_c / (level_c - level_nb) of the way,
/// at least kGhostMinTheta.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T stencil_ghost_weight(const LaplacianStencil<T>& s, int i, int j,
                                                    int k, const int nb[3]) {
  if (!s.level.data) return T(2);
  const T a = s.level(i, j, k), b = s.level(nb[0], nb[1], nb[2]);
  const T theta = a / (a - b);  // a > 0 >= b
  return T(1) / (theta > T(kGhostMinTheta) ? theta : T(kGhostMinTheta));
}

/// The wall velocity's part of a ghost term, U_s / theta = (1/theta - 1) W_c + W_nb (0
/// without `wall`); the staircase's 2U = W_c + W_nb.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T stencil_wall_sum(const LaplacianStencil<T>& s, int i, int j, int k,
                                                const int nb[3]) {
  if (!s.wall.data) return T(0);
  return (stencil_ghost_weight(s, i, j, k, nb) - T(1)) * s.wall(i, j, k) +
         s.wall(nb[0], nb[1], nb[2]);
}

/// Stencil of a cell-centred scalar on g with boundary bc (ignored on periodic axes).
template <class T>
LaplacianStencil<T> cell_stencil(const Grid& g, const ScalarBoundary& bc) {
  LaplacianStencil<T> s;
  s.dim = g.dim;
  s.inv_dx2 = T(1.0 / (g.dx * g.dx));
  for (int a = 0; a < 3; ++a) {
    s.m[a] = g.n[a];
    if (a >= g.dim) continue;
    s.periodic[a] = g.periodic(a);
    for (int side = 0; side < 2; ++side) {
      const bool fixed = bc.kind[a][side] == ScalarBoundaryKind::Fixed;
      s.ghost[a][side] = fixed ? kGhostFixed : kGhostZeroGradient;
      s.value[a][side] = fixed ? T(bc.value[a][side]) : T(0);
    }
  }
  return s;
}

/// Stencil of MAC component `comp` on its face grid. Along the component's own
/// axis, faces on a closed side (Wall, NoSlip, MovingWall, Inflow) are held (the
/// boundary-normal velocity is not diffused) and an Open/Outflow side is zero gradient.
/// Along the other axes (tangential): a side that prescribes the tangential velocity
/// (NoSlip, MovingWall, Inflow) is fixed at U (`wall` on a MovingWall side, else 0: the
/// affine part); every other non-periodic side is zero gradient (free slip).
/// no_slip: solid cells of no-slip obstacles (null: none), with the component's wall
/// velocity obstacle_wall on its faces (null: at rest) and optionally the precomputed classes
/// of its faces (obstacle_face_classes).
template <class T>
LaplacianStencil<T> face_stencil(const Grid& g, int comp, const WallVelocity& wall = {},
                                 View<const std::uint8_t> no_slip = {},
                                 View<const T> obstacle_wall = {},
                                 View<const std::uint8_t> classes = {}) {
  LaplacianStencil<T> s;
  s.dim = g.dim;
  s.comp = comp;
  if (no_slip.data) {
    s.obst = obstacle_cells(g, no_slip);
    s.wall = obstacle_wall;
    s.classes = classes;
  }
  s.inv_dx2 = T(1.0 / (g.dx * g.dx));
  const std::array<int, 3> e = g.face_extents(comp);
  for (int a = 0; a < 3; ++a) {
    s.m[a] = e[a];
    if (a >= g.dim) continue;
    s.periodic[a] = g.periodic(a);
    if (s.periodic[a]) continue;
    for (int side = 0; side < 2; ++side) {
      const BoundaryKind k = g.boundary[a][side];
      if (a == comp) {
        s.held[a][side] = boundary_is_closed(k);
      } else if (boundary_fixes_tangential(k)) {
        s.ghost[a][side] = kGhostFixed;
        s.value[a][side] = k == BoundaryKind::MovingWall ? T(wall.v[a][side][comp]) : T(0);
      }
    }
  }
  return s;
}

/// The same stencil with a ghost-fluid body (see the header comment): `level` its signed
/// distance at the component's faces (> 0: fluid), obstacle_wall its wall velocity there
/// (null: at rest).
template <class T>
LaplacianStencil<T> ghost_fluid_face_stencil(const Grid& g, int comp, const WallVelocity& wall,
                                             View<const T> level, View<const T> obstacle_wall) {
  LaplacianStencil<T> s = face_stencil<T>(g, comp, wall);
  s.obst = obstacle_cells(g, View<const std::uint8_t>{});  // extents for face_neighbour
  s.level = level;
  s.wall = obstacle_wall;
  return s;
}

/// True when (i, j, k) is a held boundary node.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE bool stencil_held(const LaplacianStencil<T>& s, int i, int j, int k) {
  const int idx[3] = {i, j, k};
  for (int a = 0; a < s.dim; ++a) {
    if (s.held[a][0] && idx[a] == 0) return true;
    if (s.held[a][1] && idx[a] == s.m[a] - 1) return true;
  }
  return stencil_obstacle(s, idx) != kFaceFluid;
}

/// L q at a free entry: sum over axes of (lo + hi - 2 q), held neighbours and fixed
/// side values read as 0, times 1/dx^2. Linear in q.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T laplacian_linear(View<const T> q, const LaplacianStencil<T>& s,
                                                int i, int j, int k) {
  const T c = q(i, j, k);
  T acc = 0;
  for (int a = 0; a < s.dim; ++a) {
    for (int side = 0; side < 2; ++side) {
      int idx[3] = {i, j, k};
      const int p = idx[a] + (side ? 1 : -1);
      T nb;
      if (p < 0 || p >= s.m[a]) {
        if (s.periodic[a]) {
          idx[a] = side ? 0 : s.m[a] - 1;
          const unsigned char cls = stencil_obstacle(s, idx);
          nb = cls == kFaceInterior ? c - c * stencil_ghost_weight(s, i, j, k, idx)
               : cls == kFaceWall   ? T(0)
                                    : q(idx[0], idx[1], idx[2]);
        } else if (s.ghost[a][side] == kGhostFixed) {
          nb = -c;  // ghost = 2v - c; the 2v goes to the affine part
        } else {
          nb = c;  // zero gradient
        }
      } else {
        idx[a] = p;
        const unsigned char cls = stencil_obstacle(s, idx);
        if (cls == kFaceInterior)  // no-slip ghost (2U - c at theta = 1/2): U_s to the affine part
          nb = c - c * stencil_ghost_weight(s, i, j, k, idx);
        else if (cls == kFaceWall || (s.held[a][side] && p == (side ? s.m[a] - 1 : 0)))
          nb = T(0);  // held node: its value goes to the affine part
        else
          nb = q(idx[0], idx[1], idx[2]);
      }
      acc += nb - c;
    }
  }
  return acc * s.inv_dx2;
}

/// The affine part c at a free entry: held neighbour values and 2 * fixed side
/// values, times 1/dx^2. Linear in (held values of q, side values).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T laplacian_affine(View<const T> q, const LaplacianStencil<T>& s,
                                                int i, int j, int k) {
  T acc = 0;
  for (int a = 0; a < s.dim; ++a) {
    for (int side = 0; side < 2; ++side) {
      int idx[3] = {i, j, k};
      const int p = idx[a] + (side ? 1 : -1);
      if (p < 0 || p >= s.m[a]) {
        if (!s.periodic[a] && s.ghost[a][side] == kGhostFixed) acc += T(2) * s.value[a][side];
        if (s.periodic[a] && stencil_has_obstacle(s)) {
          idx[a] = side ? 0 : s.m[a] - 1;
          const unsigned char cls = stencil_obstacle(s, idx);
          if (cls == kFaceInterior) acc += stencil_wall_sum(s, i, j, k, idx);
          if (cls == kFaceWall) acc += q(idx[0], idx[1], idx[2]);
        }
      } else {
        idx[a] = p;
        const unsigned char cls = stencil_obstacle(s, idx);
        if (cls == kFaceInterior)
          acc += stencil_wall_sum(s, i, j, k, idx);
        else if (cls == kFaceWall || (s.held[a][side] && p == (side ? s.m[a] - 1 : 0)))
          acc += q(idx[0], idx[1], idx[2]);
      }
    }
  }
  return acc * s.inv_dx2;
}

/// Transpose of the held-neighbour part of laplacian_affine, at a held entry h:
/// the sum of w over the free entries whose stencil reads h as a held neighbour,
/// times 1/dx^2 (0 at free entries). A held node at index 0 along an axis with a
/// held low side is read only by its neighbour at index 1 along that axis (when
/// that one is free); likewise at m - 1 on the high side. Entries next to h along
/// other axes share its boundary index, so they are held too and read nothing.
/// Linear in w; a gather (each h reads its own neighbours).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T laplacian_held_adjoint(View<const T> w, const LaplacianStencil<T>& s,
                                                      int i, int j, int k) {
  if (!stencil_held(s, i, j, k)) return T(0);
  const int idx[3] = {i, j, k};
  T acc = 0;
  const unsigned char cls = stencil_obstacle(s, idx);
  if (cls != kFaceFluid) {
    // An obstacle face: every free neighbour reads a wall face as a held value (obstacle
    // classes take precedence over box sides); nobody reads an interior face (its readers
    // see a ghost).
    if (cls == kFaceInterior) return T(0);
    for (int a = 0; a < s.dim; ++a)
      for (int side = 0; side < 2; ++side) {
        int nb[3];
        if (!face_neighbour(s.obst, s.comp, a, side, i, j, k, nb)) continue;
        if (stencil_held(s, nb[0], nb[1], nb[2])) continue;
        acc += w(nb[0], nb[1], nb[2]);
      }
    return acc * s.inv_dx2;
  }
  for (int a = 0; a < s.dim; ++a) {
    if (s.periodic[a] || s.m[a] < 2) continue;
    for (int side = 0; side < 2; ++side) {
      if (!s.held[a][side] || idx[a] != (side ? s.m[a] - 1 : 0)) continue;
      int nb[3] = {i, j, k};
      nb[a] = side ? s.m[a] - 2 : 1;
      if (stencil_held(s, nb[0], nb[1], nb[2])) continue;
      acc += w(nb[0], nb[1], nb[2]);
    }
  }
  return acc * s.inv_dx2;
}

/// Diagonal of L at a free entry (<= 0): minus the number of neighbour terms,
/// 2 for a fixed side (ghost = 2v - c), 0 for a zero-gradient side, 1/theta for an interior
/// neighbour (2 on the staircase).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T laplacian_diagonal(const LaplacianStencil<T>& s, int i, int j,
                                                  int k) {
  const int idx[3] = {i, j, k};
  T d = 0;
  for (int a = 0; a < s.dim; ++a) {
    for (int side = 0; side < 2; ++side) {
      const int p = idx[a] + (side ? 1 : -1);
      if (p < 0 || p >= s.m[a]) {
        if (s.periodic[a]) {
          int nb[3] = {i, j, k};
          nb[a] = side ? 0 : s.m[a] - 1;
          d -= stencil_obstacle(s, nb) == kFaceInterior ? stencil_ghost_weight(s, i, j, k, nb)
                                                        : T(1);
        } else if (s.ghost[a][side] == kGhostFixed) {
          d -= T(2);
        }
      } else {
        int nb[3] = {i, j, k};
        nb[a] = p;
        d -= stencil_obstacle(s, nb) == kFaceInterior ? stencil_ghost_weight(s, i, j, k, nb) : T(1);
      }
    }
  }
  return d * s.inv_dx2;
}

}  // namespace dfluid::detail
