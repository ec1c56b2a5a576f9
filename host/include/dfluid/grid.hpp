// Uniform grids in 1D, 2D and 3D with their box boundaries.
//
// Cells are indexed (i, j, k), x fastest. Cell (i, j, k) covers
// [origin + (i, j, k) * dx, origin + (i+1, j+1, k+1) * dx]. Unused axes of a
// 1D or 2D grid have one cell. Cell size dx is the same along every axis.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "dfluid/config.hpp"

namespace dfluid {

/// Velocity boundary of one side of the box.
///  Wall:       free-slip wall: no flow through the side (normal velocity 0), the
///              tangential velocity extrapolated with zero gradient (no stress).
///  NoSlip:     no-slip wall: normal and tangential velocity 0 on the side.
///  MovingWall: no-slip wall moving tangentially: normal velocity 0, tangential
///              velocity VelocityBoundary::wall_velocity of the side (a lid).
///  Inflow:     prescribed normal velocity VelocityBoundary::inflow (a profile on the
///              side's faces), tangential velocity 0.
///  Outflow:    pressure 0 outside, zero normal gradient of the velocity.
///  Open:       pressure 0 outside, zero-gradient velocity (today the same as Outflow).
///  Periodic:   wraps to the opposite side (both sides of an axis must be Periodic).
///  ConvectiveOutflow: the normal velocity u_b on the side's faces obeys the convective
///              (Orlanski-type, fixed speed) condition du/dt + U_c du/dn = 0, U_c =
///              VelocityBoundary::outflow_speed of the side, discretized upwind: u_b <- (1 - c)
///              u_b + c u_i for c = U_c dt / dx <= 1, u_b <- (u_b + c u_i) / (1 + c) (backward
///              Euler) for c > 1, u_i the face next to it, both from the step's input (a
///              convex combination: stable for every dt); then every ConvectiveOutflow face shifts
///              by one outward delta so that the box's net inflow is 0 (the Inflow sides'
///              profiles included). The projection holds those faces (Neumann for the
///              pressure, like an Inflow side): a vortex leaves with its pressure, where an
///              Outflow side's p = 0 pins it. Tangential velocity: zero gradient.
/// For the pressure, Wall, NoSlip, MovingWall, Inflow and ConvectiveOutflow sides are closed
/// (Neumann: their normal faces are fixed); Open and Outflow sides are open (Dirichlet p = 0).
enum class BoundaryKind {
  Wall,
  Open,
  Periodic,
  NoSlip,
  MovingWall,
  Inflow,
  Outflow,
  ConvectiveOutflow
};
const char* to_string(BoundaryKind k);
/// Parses "wall" (= "free-slip"), "no-slip", "moving-wall", "inflow", "outflow",
/// "convective-outflow", "open" or "periodic"; throws InvalidArgument otherwise.
BoundaryKind parse_boundary_kind(const std::string& s);
/// True for the sides whose normal faces the projection holds fixed (Wall, NoSlip,
/// MovingWall, Inflow, ConvectiveOutflow): Neumann sides of the pressure.
inline bool boundary_is_closed(BoundaryKind k) {
  return k == BoundaryKind::Wall || k == BoundaryKind::NoSlip || k == BoundaryKind::MovingWall ||
         k == BoundaryKind::Inflow || k == BoundaryKind::ConvectiveOutflow;
}
/// True for the closed sides whose held normal faces carry a velocity the Simulation writes
/// before projecting (Inflow: the profile; ConvectiveOutflow: the convective update), which
/// the divergence reads.
inline bool boundary_holds_flux(BoundaryKind k) {
  return k == BoundaryKind::Inflow || k == BoundaryKind::ConvectiveOutflow;
}
/// True for the sides with p = 0 outside (Open, Outflow).
inline bool boundary_is_open(BoundaryKind k) {
  return k == BoundaryKind::Open || k == BoundaryKind::Outflow;
}
/// True for the sides where the tangential velocity is prescribed (NoSlip: 0, MovingWall:
/// the wall velocity, Inflow: 0): its ghost value mirrors it, ghost = 2 U - boundary value.
inline bool boundary_fixes_tangential(BoundaryKind k) {
  return k == BoundaryKind::NoSlip || k == BoundaryKind::MovingWall || k == BoundaryKind::Inflow;
}

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
  /// True when no side is Open or Outflow: the pressure is defined up to a constant.
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

/// Tangential velocity of each box side, wall[axis][side] = (u, v, w) in physical units.
/// Read on MovingWall sides only (the component along the side's normal axis is ignored:
/// a wall moves within its plane). The operators that see walls (advection of a MAC
/// velocity, its diffusion) take it; Simulation holds it in its VelocityBoundary.
struct WallVelocity {
  std::array<std::array<std::array<double, 3>, 2>, 3> v{};
  /// wall.v[axis][side][comp]: the value a MovingWall side prescribes for component comp.
  double at(int axis, int side, int comp) const { return v[axis][side][comp]; }
};

/// The prescribed values of the velocity boundary (the kinds are Grid::boundary):
///  wall    the tangential velocity of MovingWall sides;
///  inflow  inflow[axis][side]: the normal velocity on the faces of an Inflow side, one
///          value per face, in the order of the side's face array with the normal axis
///          dropped (x fastest: a y side of a 2D grid holds n[0] values, an x side n[1], a
///          z side of a 3D grid n[0] * n[1], ...). Positive values point along +axis
///          (into the box on a low side, out of it on a high side). Empty: all zero.
///  outflow_speed  outflow_speed[axis][side]: U_c of a ConvectiveOutflow side (> 0, in
///          physical units; e.g. the mean outflow velocity); 0 on every other side.
/// A differentiable control: Simulation::step_adjoint accumulates its gradient into a
/// VelocityBoundaryGradient (not of outflow_speed: a fixed parameter).
struct VelocityBoundary {
  WallVelocity wall;
  std::array<std::array<std::vector<double>, 2>, 3> inflow;
  std::array<std::array<double, 2>, 3> outflow_speed{};

  /// Number of faces of side (axis, *) of g: the product of the other active extents.
  static std::size_t side_faces(const Grid& g, int axis);
  /// Throws InvalidArgument naming the side for values on a side of the wrong kind (a
  /// non-zero wall velocity on a side that is not a MovingWall, an inflow profile on a side
  /// that is not Inflow), a profile of the wrong length, a non-finite value, an
  /// outflow_speed that is not > 0 on a ConvectiveOutflow side or not 0 elsewhere, and a net
  /// inflow through a closed box (no Open/Outflow/ConvectiveOutflow side: the
  /// incompressible flow has nowhere to go), naming the Inflow sides and their fluxes.
  void validate(const Grid& g) const;
};

/// Gradient of a loss with respect to the VelocityBoundary values (same layout).
struct VelocityBoundaryGradient {
  WallVelocity wall;
  std::array<std::array<std::vector<double>, 2>, 3> inflow;

  /// The same gradient kept as doubles in a context's memory space (where
  /// StepControlGradient::boundary_slots accumulates it without host waits): slots(g)
  /// doubles, the wall velocity first, wall.v[axis][side][comp] at
  /// wall_slot(axis, side, comp) (kWallSlots of them), then the faces of each Inflow side
  /// of g in (axis, side) order from inflow_slot(g, axis, side), side_faces each.
  static constexpr std::size_t kWallSlots = 18;
  static constexpr std::size_t wall_slot(int axis, int side, int comp) {
    return std::size_t((axis * 2 + side) * 3 + comp);
  }
  static std::size_t slots(const Grid& g);
  /// First slot of the Inflow side (axis, side) of g (InvalidArgument for another side).
  static std::size_t inflow_slot(const Grid& g, int axis, int side);
  /// this += the gradient held in `values` (a host copy of slots(g) doubles, e.g. from
  /// read_doubles). Empty inflow vectors of Inflow sides are sized first; ShapeMismatch
  /// for one of another length.
  void add_slots(const Grid& g, const double* values);
};

/// "x-low", "y-high", ...: how messages name a side.
std::string side_name(int axis, int side);

}  // namespace dfluid
