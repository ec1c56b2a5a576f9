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
  }
  return "?";
}

BoundaryKind parse_boundary_kind(const std::string& s) {
  if (s == "wall" || s == "closed") return BoundaryKind::Wall;
  if (s == "open") return BoundaryKind::Open;
  if (s == "periodic") return BoundaryKind::Periodic;
  throw InvalidArgument("boundary: unknown kind '" + s + "'; use wall, open or periodic");
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
      if (boundary[a][s] == BoundaryKind::Open) return false;
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

bool Grid::operator==(const Grid& o) const {
  if (dim != o.dim || n != o.n || dx != o.dx || origin != o.origin) return false;
  for (int a = 0; a < dim; ++a)
    if (boundary[a] != o.boundary[a]) return false;
  return true;
}

}  // namespace dfluid
