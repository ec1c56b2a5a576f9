#include "dfluid/grid.hpp"

#include <cmath>
#include <sstream>

#include "dfluid/error.hpp"

namespace dfluid {

const char* to_string(BoundaryKind k) {
  switch (k) {
    case BoundaryKind::Wall:
      return "wall";
    case BoundaryKind::Open:
      return "open";
    case BoundaryKind::Periodic:
      return "periodic";
    case BoundaryKind::NoSlip:
      return "no-slip";
    case BoundaryKind::MovingWall:
      return "moving-wall";
    case BoundaryKind::Inflow:
      return "inflow";
    case BoundaryKind::Outflow:
      return "outflow";
    case BoundaryKind::ConvectiveOutflow:
      return "convective-outflow";
  }
  return "?";
}

BoundaryKind parse_boundary_kind(const std::string& s) {
  if (s == "wall" || s == "closed" || s == "free-slip") return BoundaryKind::Wall;
  if (s == "open") return BoundaryKind::Open;
  if (s == "periodic") return BoundaryKind::Periodic;
  if (s == "no-slip" || s == "noslip") return BoundaryKind::NoSlip;
  if (s == "moving-wall" || s == "moving") return BoundaryKind::MovingWall;
  if (s == "inflow") return BoundaryKind::Inflow;
  if (s == "outflow") return BoundaryKind::Outflow;
  if (s == "convective-outflow" || s == "convective") return BoundaryKind::ConvectiveOutflow;
  throw InvalidArgument("boundary: unknown kind '" + s +
                        "'; use wall (free-slip), no-slip, moving-wall, inflow, outflow, "
                        "convective-outflow, open or periodic");
}

Grid Grid::make_1d(int nx, double dx, double x0) {
  Grid g;
  g.dim = 1;
  g.n = {nx, 1, 1};
  g.dx = dx;
  g.origin = {x0, 0, 0};
  g.validate();
  return g;
}

Grid Grid::make_2d(int nx, int ny, double dx, std::array<double, 2> o) {
  Grid g;
  g.dim = 2;
  g.n = {nx, ny, 1};
  g.dx = dx;
  g.origin = {o[0], o[1], 0};
  g.validate();
  return g;
}

Grid Grid::make_3d(int nx, int ny, int nz, double dx, std::array<double, 3> o) {
  Grid g;
  g.dim = 3;
  g.n = {nx, ny, nz};
  g.dx = dx;
  g.origin = o;
  g.validate();
  return g;
}

Grid& Grid::set_boundary(BoundaryKind k) {
  for (int a = 0; a < 3; ++a)
    boundary[a] = {k, k};
  return *this;
}

Grid& Grid::set_boundary(int axis, BoundaryKind low, BoundaryKind high) {
  if (axis < 0 || axis >= dim)
    throw InvalidArgument("set_boundary: axis " + std::to_string(axis) + " is not an axis of a " +
                          std::to_string(dim) + "D grid");
  boundary[axis] = {low, high};
  return *this;
}

bool Grid::pressure_has_null_space() const {
  for (int a = 0; a < dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (boundary_is_open(boundary[a][s])) return false;
  return true;
}

void Grid::validate() const {
  static const char* axis_name[3] = {"x", "y", "z"};
  if (dim < 1 || dim > 3)
    throw InvalidArgument("grid.dim = " + std::to_string(dim) + ": must be 1, 2 or 3");
  for (int a = 0; a < 3; ++a) {
    if (a < dim) {
      if (n[a] < kMinCellsPerAxis)
        throw InvalidArgument(std::string("grid.n[") + axis_name[a] +
                              "] = " + std::to_string(n[a]) + ": need at least " +
                              std::to_string(kMinCellsPerAxis) + " cells per axis");
      if (!std::isfinite(origin[a]))
        throw InvalidArgument(std::string("grid.origin[") + axis_name[a] + "] is not finite");
      bool lo = boundary[a][0] == BoundaryKind::Periodic;
      bool hi = boundary[a][1] == BoundaryKind::Periodic;
      if (lo != hi)
        throw InvalidArgument(std::string("grid.boundary[") + axis_name[a] +
                              "]: periodic must be set on both sides of the axis");
    } else if (n[a] != 1) {
      throw InvalidArgument(std::string("grid.n[") + axis_name[a] + "] = " + std::to_string(n[a]) +
                            ": a " + std::to_string(dim) + "D grid has 1 cell along unused axes");
    }
  }
  if (!(dx > 0) || !std::isfinite(dx))
    throw InvalidArgument("grid.dx = " + std::to_string(dx) + ": cell size must be finite and > 0");
  // Flat indices are 64-bit; keep the cell count itself sane to catch typos early.
  if (cells() > (Index(1) << 34))
    throw InvalidArgument("grid: " + std::to_string(cells()) + " cells is too large");
}

std::string Grid::describe() const {
  static const char* axis_name[3] = {"x", "y", "z"};
  std::ostringstream s;
  s << dim << "D ";
  for (int a = 0; a < dim; ++a)
    s << (a ? "x" : "") << n[a];
  s << ", dx=" << dx << ", boundary";
  for (int a = 0; a < dim; ++a)
    s << ' ' << axis_name[a] << ':' << to_string(boundary[a][0]) << '/'
      << to_string(boundary[a][1]);
  return s.str();
}

std::string side_name(int axis, int side) {
  static const char* axis_name[3] = {"x", "y", "z"};
  return std::string(axis_name[axis]) + (side ? "-high" : "-low");
}

std::size_t VelocityBoundary::side_faces(const Grid& g, int axis) {
  std::size_t n = 1;
  for (int a = 0; a < g.dim; ++a)
    if (a != axis) n *= std::size_t(g.n[a]);
  return n;
}

void VelocityBoundary::validate(const Grid& g) const {
  double net = 0, scale = 0;  // net volume inflow per unit face area, and its magnitude
  std::string inflow_sides;
  bool convective = false;  // a ConvectiveOutflow side
  for (int a = 0; a < 3; ++a)
    for (int s = 0; s < 2; ++s) {
      const std::string where = "VelocityBoundary: side " + side_name(a, s);
      const BoundaryKind k = a < g.dim ? g.boundary[a][s] : BoundaryKind::Periodic;
      for (int c = 0; c < 3; ++c) {
        const double v = wall.v[a][s][c];
        if (!std::isfinite(v)) throw InvalidArgument(where + ": wall velocity is not finite");
        if (v != 0 && k != BoundaryKind::MovingWall)
          throw InvalidArgument(where + " is " + to_string(k) +
                                ", not moving-wall: its wall velocity must be 0 (set the side's "
                                "kind to BoundaryKind::MovingWall)");
      }
      const double us = outflow_speed[a][s];
      if (k == BoundaryKind::ConvectiveOutflow) {
        convective = true;
        if (!(std::isfinite(us) && us > 0))
          throw InvalidArgument(
              where + " is convective-outflow: its outflow_speed U_c = " + std::to_string(us) +
              " must be finite and > 0 (e.g. the mean outflow velocity)");
      } else if (us != 0) {
        throw InvalidArgument(where + " is " + to_string(k) +
                              ", not convective-outflow: its outflow_speed must be 0 (set the "
                              "side's kind to BoundaryKind::ConvectiveOutflow)");
      }
      const std::vector<double>& p = inflow[a][s];
      if (p.empty()) continue;
      if (k != BoundaryKind::Inflow)
        throw InvalidArgument(where + " is " + to_string(k) +
                              ", not inflow: it takes no inflow profile (set its kind to "
                              "BoundaryKind::Inflow or leave the profile empty)");
      const std::size_t m = side_faces(g, a);
      if (p.size() != m)
        throw InvalidArgument(where + ": the inflow profile has " + std::to_string(p.size()) +
                              " values, the side has " + std::to_string(m) + " faces");
      double flux = 0;
      for (double v : p) {
        if (!std::isfinite(v)) throw InvalidArgument(where + ": the inflow profile is not finite");
        flux += v;
        scale += std::abs(v);
      }
      // +axis velocity enters the box through a low side and leaves through a high side.
      net += s == 0 ? flux : -flux;
      inflow_sides += (inflow_sides.empty() ? "" : ", ") + side_name(a, s) + " (" +
                      std::to_string(s == 0 ? flux : -flux) + ")";
    }
  // A ConvectiveOutflow side takes the net inflow (its faces shift to balance it).
  if (g.pressure_has_null_space() && !convective && std::abs(net) > 1e-9 * scale)
    throw InvalidArgument(
        "VelocityBoundary: net inflow " + std::to_string(net) +
        " (sum of face velocities into the box) through a closed box (no open or outflow "
        "or convective-outflow side), inflow sides " +
        inflow_sides +
        ": an incompressible flow cannot enter a closed box; balance the profiles or make a "
        "side BoundaryKind::Outflow or BoundaryKind::ConvectiveOutflow");
}

std::size_t VelocityBoundaryGradient::slots(const Grid& g) {
  std::size_t n = kWallSlots;
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (g.boundary[a][s] == BoundaryKind::Inflow) n += VelocityBoundary::side_faces(g, a);
  return n;
}

std::size_t VelocityBoundaryGradient::inflow_slot(const Grid& g, int axis, int side) {
  std::size_t n = kWallSlots;
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s) {
      if (g.boundary[a][s] != BoundaryKind::Inflow) continue;
      if (a == axis && s == side) return n;
      n += VelocityBoundary::side_faces(g, a);
    }
  throw InvalidArgument("VelocityBoundaryGradient::inflow_slot: side " + side_name(axis, side) +
                        " is not an Inflow side of the grid; pass one whose kind is "
                        "BoundaryKind::Inflow");
}

void VelocityBoundaryGradient::add_slots(const Grid& g, const double* values) {
  for (int a = 0; a < 3; ++a)
    for (int s = 0; s < 2; ++s)
      for (int c = 0; c < 3; ++c)
        wall.v[a][s][c] += values[wall_slot(a, s, c)];
  std::size_t at = kWallSlots;
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s) {
      if (g.boundary[a][s] != BoundaryKind::Inflow) continue;
      const std::size_t m = VelocityBoundary::side_faces(g, a);
      std::vector<double>& v = inflow[a][s];
      if (v.empty()) v.assign(m, 0.0);
      if (v.size() != m)
        throw ShapeMismatch("VelocityBoundaryGradient: inflow[" + side_name(a, s) + "] has " +
                            std::to_string(v.size()) + " values, the side has " +
                            std::to_string(m) + " faces");
      for (std::size_t i = 0; i < m; ++i)
        v[i] += values[at + i];
      at += m;
    }
}

bool Grid::operator==(const Grid& o) const {
  if (dim != o.dim || n != o.n || dx != o.dx || origin != o.origin) return false;
  for (int a = 0; a < dim; ++a)
    if (boundary[a] != o.boundary[a]) return false;
  return true;
}

}  // namespace dfluid
