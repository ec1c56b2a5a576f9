#include "drag/channel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/cli.hpp"
#include "common/image.hpp"

namespace dfluid::drag {
namespace {

std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

/// Whether fluid cells connect the first column (inflow) with the last (outflow), through
/// faces (4-neighbours): otherwise the body blocks the channel.
bool fluid_path(const std::vector<std::uint8_t>& solid, int nx, int ny) {
  std::vector<std::uint8_t> seen(solid.size(), 0);
  std::vector<int> todo;
  for (int j = 0; j < ny; ++j)
    if (!solid[std::size_t(j) * nx]) {
      seen[std::size_t(j) * nx] = 1;
      todo.push_back(j * nx);
    }
  while (!todo.empty()) {
    const int c = todo.back();
    todo.pop_back();
    const int i = c % nx, j = c / nx;
    if (i == nx - 1) return true;
    const int next[4][2] = {{i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
    for (const auto& q : next) {
      if (q[0] < 0 || q[0] >= nx || q[1] < 0 || q[1] >= ny) continue;
      const std::size_t k = std::size_t(q[1]) * nx + q[0];
      if (solid[k] || seen[k]) continue;
      seen[k] = 1;
      todo.push_back(int(k));
    }
  }
  return false;
}

}  // namespace

Grid channel_grid(const ChannelOptions& o) {
  if (o.size < 8)
    throw InvalidArgument("--size " + std::to_string(o.size) +
                          ": at least 8 cells across the channel are needed");
  const double dx = kChannelHeight / o.size;
  const long nx = std::lround(o.length / dx);
  if (nx < 8 || nx > 65536)
    throw InvalidArgument("--length " + app::shorten(fmt("%g", o.length)) + ": gives " +
                          std::to_string(nx) + " cells along the channel at --size " +
                          std::to_string(o.size) + "; choose 8 to 65536 cells");
  Grid g = Grid::make_2d(int(nx), o.size, dx);
  g.set_boundary(0, BoundaryKind::Inflow, BoundaryKind::Outflow);
  g.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::NoSlip);
  return g;
}

Channel make_channel(const ChannelOptions& o) {
  Channel ch;
  ch.grid = channel_grid(o);
  const Grid& g = ch.grid;
  const int nx = g.n[0], ny = g.n[1];
  const double dx = g.dx;
  ch.solid.assign(std::size_t(nx) * ny, 0);
  if (o.fractions && !o.mask.empty())
    throw InvalidArgument("--surface fractions: the body from --mask '" + app::shorten(o.mask) +
                          "' has no surface to cut the faces with (a picture gives cells); use "
                          "--surface staircase with a mask, or drop --mask for the cylinder");
  if (o.mask.empty()) {
    // The cylinder: cells whose centre lies inside (a staircase body).
    const double cx = 2.0, cy = 2.0, r = 0.5;
    if (o.length < cx + 2 * r)
      throw InvalidArgument("--length " + app::shorten(fmt("%g", o.length)) +
                            ": the cylinder at x = 2 needs a channel of at least 3 diameters");
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        const double x = (i + 0.5) * dx - cx, y = (j + 0.5) * dx - cy;
        if (x * x + y * y <= r * r) ch.solid[std::size_t(j) * nx + i] = 1;
      }
    ch.description =
        "cylinder D = 1 at (2, 2) in a channel of " + fmt("%g", o.length) + " x 4.1 diameters";
    if (o.fractions) {
      ch.node_distance = circle_node_distance(g, {cx, cy, 0}, r);
      ch.description += ", face fractions with a ghost-fluid no-slip wall";
    }
  } else {
    // The picture covers the whole channel; its dark pixels (or bright ones) are solid.
    std::vector<double> v;
    try {
      v = app::read_picture(o.mask, nx, ny, !o.mask_bright_is_solid);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string("--mask: ") + e.what());
    }
    for (std::size_t c = 0; c < v.size(); ++c)
      ch.solid[c] = v[c] > 0.5 ? 1 : 0;
    ch.description =
        "body from " + o.mask + " in a channel of " + fmt("%g", o.length) + " x 4.1 diameters";
  }
  // Extent and centroid of the body.
  int jmin = ny, jmax = -1;
  double sx = 0, sy = 0, count = 0;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i)
      if (ch.solid[std::size_t(j) * nx + i]) {
        jmin = std::min(jmin, j);
        jmax = std::max(jmax, j);
        sx += (i + 0.5) * dx;
        sy += (j + 0.5) * dx;
        count += 1;
      }
  const std::string what = o.mask.empty() ? std::string("--size ") + std::to_string(o.size)
                                          : "--mask '" + app::shorten(o.mask) + "'";
  if (count == 0)
    throw InvalidArgument(what + ": the body has no solid cell on the " + std::to_string(nx) + "x" +
                          std::to_string(ny) + " grid (" +
                          (o.mask.empty() ? "raise --size"
                           : o.mask_bright_is_solid
                               ? "draw the body bright, or drop --mask-bright-is-solid"
                               : "draw the body dark on a bright background, or give "
                                 "--mask-bright-is-solid") +
                          ")");
  for (int j = 0; j < ny; ++j)
    if (ch.solid[std::size_t(j) * nx] || ch.solid[std::size_t(j) * nx + nx - 1])
      throw InvalidArgument(what +
                            ": the body touches the inflow or the outflow side; leave the first "
                            "and the last column of the picture free");
  if (!fluid_path(ch.solid, nx, ny))
    throw InvalidArgument(what +
                          ": the body blocks the channel (no fluid path from the inflow to the "
                          "outflow); leave a gap for the flow");
  ch.reference_length = (jmax - jmin + 1) * dx;
  ch.center = {sx / count, sy / count};
  ch.viscosity = kMeanInflow * ch.reference_length / o.reynolds;
  if (!o.mask.empty()) ch.description += fmt(", frontal height %.3g", ch.reference_length);

  // The parabolic profile at the face centres of the x-low side, mean exactly U.
  ch.base_inflow.resize(std::size_t(ny));
  double mean = 0;
  for (int j = 0; j < ny; ++j) {
    const double y = (j + 0.5) * dx, h = kChannelHeight;
    ch.base_inflow[std::size_t(j)] = 6 * kMeanInflow * y * (h - y) / (h * h);
    mean += ch.base_inflow[std::size_t(j)] / ny;
  }
  for (double& u : ch.base_inflow)
    u *= kMeanInflow / mean;
  return ch;
}

}  // namespace dfluid::drag
