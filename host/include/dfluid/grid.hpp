// Uniform grids in 1D, 2D and 3D with their box boundaries.
//
// Cells are indexed (i, j, k), x fastest. Cell (i, j, k) covers
// [origin + (i, j, k) * dx, origin + (i+1, j+1, k+1) * dx]. Unused axes of a
// 1D or 2D grid have one cell. Cell size dx is the same along every axis.
#pragma once

#include <array>
#include <string>

#include "dfluid/config.hpp"

namespace dfluid {

/// Velocity boundary of one side of the box.
///  Wall:     closed, no flow through the side (normal velocity 0).
///  Open:     pressure 0 outside, zero-gradient velocity.
///  Periodic: wraps to the opposite side (both sides of an axis must be Periodic).
enum class BoundaryKind { Wall, Open, Periodic };
const char* to_string(BoundaryKind k);
/// Parses "wall", "open" or "periodic"; throws InvalidArgument otherwise.
BoundaryKind parse_boundary_kind(const std::string& s);

/// Smallest number of cells allowed along an active axis.
inline constexpr int kMinCellsPerAxis = 2;

struct Grid {
  int dim = 2;                            ///< 1, 2 or 3
  std::array<int, 3> n{1, 1, 1};          ///< cells per axis (1 on unused axes)
  double dx = 1.0;                        ///< cell size
  std::array<double, 3> origin{0, 0, 0};  ///< position of the low corner
  /// boundary[axis][side], side 0 = low, 1 = high. Unused axes are ignored.
  std::array<std::array<BoundaryKind, 2>, 3> boundary{{{BoundaryKind::Wall, BoundaryKind::Wall},
                                                       {BoundaryKind::Wall, BoundaryKind::Wall},
                                                       {BoundaryKind::Wall, BoundaryKind::Wall}}};

  static Grid make_1d(int nx, double dx, double x0 = 0.0);
  static Grid make_2d(int nx, int ny, double dx, std::array<double, 2> origin = {0, 0});
  static Grid make_3d(int nx, int ny, int nz, double dx, std::array<double, 3> origin = {0, 0, 0});

  /// Sets both sides of every active axis.
  Grid& set_boundary(BoundaryKind k);
  Grid& set_boundary(int axis, BoundaryKind low, BoundaryKind high);

  bool periodic(int axis) const { return boundary[axis][0] == BoundaryKind::Periodic; }
  Index cells() const { return Index(n[0]) * n[1] * n[2]; }
  /// Number of MAC faces along `axis` (normal to it): n+1, or n when periodic
  /// (face n is face 0 and is not stored twice).
  std::array<int, 3> face_extents(int axis) const {
    std::array<int, 3> e = n;
    e[axis] += periodic(axis) ? 0 : 1;
    return e;
  }
  /// True when no side is Open: the pressure is defined up to a constant.
  bool pressure_has_null_space() const;
  /// Throws InvalidArgument naming the bad member (dim, n, dx, origin, boundary).
  void validate() const;
  std::string describe() const;  ///< e.g. "2D 128x128, dx=0.0078125, boundary x:wall/wall ..."

  bool operator==(const Grid& o) const;
  bool operator!=(const Grid& o) const { return !(*this == o); }
};

/// Boundary of a cell-centred scalar on one side (ignored on periodic axes).
///  ZeroGradient: the ghost cell copies the boundary cell (no flux through the side).
///  Fixed:        the value on the side itself is `value` (ghost = 2*value - boundary cell).
enum class ScalarBoundaryKind { ZeroGradient, Fixed };

struct ScalarBoundary {
  std::array<std::array<ScalarBoundaryKind, 2>, 3> kind{
      {{ScalarBoundaryKind::ZeroGradient, ScalarBoundaryKind::ZeroGradient},
       {ScalarBoundaryKind::ZeroGradient, ScalarBoundaryKind::ZeroGradient},
       {ScalarBoundaryKind::ZeroGradient, ScalarBoundaryKind::ZeroGradient}}};
  std::array<std::array<double, 2>, 3> value{{{0, 0}, {0, 0}, {0, 0}}};

  static ScalarBoundary zero_gradient() { return ScalarBoundary{}; }
  /// Every side fixed at `v`.
  static ScalarBoundary fixed(double v) {
    ScalarBoundary b;
    for (auto& k : b.kind)
      k = {ScalarBoundaryKind::Fixed, ScalarBoundaryKind::Fixed};
    for (auto& x : b.value)
      x = {v, v};
    return b;
  }
};

}  // namespace dfluid
