#include "control/scenario.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <numeric>

#include "common/image.hpp"
#include "dfluid/error.hpp"
#include "dfluid/io/hdf5.hpp"

namespace dfluid::control {
namespace {

constexpr double kPi = 3.14159265358979323846;
/// Smallest spread of a target picture's smoke values (0..1) that still shows a shape:
/// 0.05 is about 13 of 255 grey levels.
constexpr double kMinPictureContrast = 0.05;

/// Soft indicator of a region given its signed distance (negative inside), edge width ~2 cells.
double soft_inside(double signed_distance) {
  return 0.5 * (1.0 - std::tanh(signed_distance));
}

/// Fills a cell field from a signed distance function of the cell centre (in cells).
std::vector<double> rasterize(const Grid& g,
                              const std::function<double(double, double, double)>& sdf) {
  std::vector<double> v(std::size_t(g.cells()));
  for (int k = 0; k < g.n[2]; ++k)
    for (int j = 0; j < g.n[1]; ++j)
      for (int i = 0; i < g.n[0]; ++i)
        v[(std::size_t(k) * g.n[1] + j) * g.n[0] + i] =
            soft_inside(sdf(i + 0.5, j + 0.5, g.dim == 3 ? k + 0.5 : 0.0));
  return v;
}

double length2(double x, double y) {
  return std::sqrt(x * x + y * y);
}

/// Distance to the segment a–b (2D).
double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double vx = bx - ax, vy = by - ay;
  double t = ((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy);
  t = std::max(0.0, std::min(1.0, t));
  return length2(px - ax - t * vx, py - ay - t * vy);
}

/// Distance to an arc of radius r around (cx, cy) from angle a0 to a1 (radians, a0 < a1).
double arc_distance(double px, double py, double cx, double cy, double r, double a0, double a1) {
  double a = std::atan2(py - cy, px - cx);
  while (a < a0)
    a += 2 * kPi;
  if (a <= a1) return std::abs(length2(px - cx, py - cy) - r);
  const double e0 = length2(px - cx - r * std::cos(a0), py - cy - r * std::sin(a0));
  const double e1 = length2(px - cx - r * std::cos(a1), py - cy - r * std::sin(a1));
  return std::min(e0, e1);
}

std::vector<double> shape_2d(const Grid& g, const std::string& shape) {
  const double n = g.n[0], c = n / 2;
  if (shape == "ring") {
    // A ring of radius n/5 and width n/8 with a gap of 40° at the bottom: a ring the smoke
    // can form without tearing (incompressible flow keeps the blob in one piece).
    const double R = n / 5, half = n / 16;
    const double gap = 40.0 * kPi / 180;
    return rasterize(g, [=](double x, double y, double) {
      return arc_distance(x, y, c, c, R, -kPi / 2 + gap / 2, 1.5 * kPi - gap / 2) - half;
    });
  }
  if (shape == "letter") {
    // An "S": two arcs of radius n/8 stacked, stroke width n/16.
    const double r = n / 8, half = n / 32;
    return rasterize(g, [=](double x, double y, double) {
      const double top = arc_distance(x, y, c, c + r, r, 0.0, 1.5 * kPi);
      const double bottom = arc_distance(x, y, c, c - r, r, -kPi, 0.5 * kPi);
      return std::min(top, bottom) - half;
    });
  }
  throw InvalidArgument("--shape '" + shape + "' is not a 2D shape; use ring or letter");
}

std::vector<double> shape_3d(const Grid& g, const std::string& shape) {
  if (shape != "torus")
    throw InvalidArgument("--shape '" + shape + "' is not a 3D shape; use torus");
  // A torus around the z axis (so that the pictures, a mid-z slice and a projection along
  // z, show its ring): major radius n/4, tube radius n/12.
  const double n = g.n[0], c = n / 2, R = n / 4, r = n / 12;
  return rasterize(g, [=](double x, double y, double z) {
    const double q = length2(x - c, y - c) - R;
    return length2(q, z - c) - r;
  });
}

/// The file's absolute path (the description is part of the --resume fingerprint, which must
/// not depend on how the path was typed).
std::string canonical(const std::string& path) {
  std::error_code ec;
  const auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : p.string();
}

}  // namespace

void match_mass(std::vector<double>& v, double mass, const std::string& what) {
  const double s = std::accumulate(v.begin(), v.end(), 0.0);
  if (!(s > 0))
    throw InvalidArgument(what + " holds no smoke (its values sum to " + std::to_string(s) +
                          "); give a target with positive density");
  for (double& x : v)
    x *= mass / s;
}

Grid scenario_grid(const ScenarioOptions& o, bool on_gpu) {
  if (o.dim != 2 && o.dim != 3)
    throw InvalidArgument("--dim " + std::to_string(o.dim) + ": use 2 or 3");
  const int n = o.size > 0 ? o.size : (o.dim == 2 ? 128 : (on_gpu ? 128 : 64));
  if (n < 8 || n > 2048)
    throw InvalidArgument("--size " + std::to_string(n) + " is outside [8, 2048]");
  return o.dim == 2 ? Grid::make_2d(n, n, 1.0) : Grid::make_3d(n, n, n, 1.0);
}

Scenario make_scenario(const ScenarioOptions& o, bool on_gpu) {
  Scenario s;
  s.grid = scenario_grid(o, on_gpu);
  const int n = s.grid.n[0];
  const double c = n / 2.0;
  if (!o.target_h5.empty()) {
    // Every problem with the file is a bad --target-h5 value: exit code 2, not a crash.
    const std::string where = "--target-h5 '" + o.target_h5 + "'";
    try {
      const Grid file_grid = io::read_grid(o.target_h5);
      if (!(file_grid.dim == s.grid.dim && file_grid.n == s.grid.n))
        throw InvalidArgument(where + " holds a " + file_grid.describe() + " grid; the run uses " +
                              s.grid.describe() + " (pass a matching --dim/--size)");
      const Field<double> f =
          io::read_field<double>(o.target_h5, o.target_step, o.target_dataset, file_grid, true);
      if (f.location() != Location::Cell)
        throw InvalidArgument(where + ": dataset '" + o.target_dataset +
                              "' is not a cell-centred field (--target-dataset names a scalar "
                              "such as density)");
      s.target = std::vector<double>(f.data(), f.data() + f.size());
      const auto bad = std::find_if(s.target.begin(), s.target.end(),
                                    [](double v) { return !std::isfinite(v); });
      if (bad != s.target.end())
        throw InvalidArgument(where + ": dataset '" + o.target_dataset + "' holds " +
                              (std::isnan(*bad) ? "NaN" : "Inf") + " (cell " +
                              std::to_string(bad - s.target.begin()) +
                              "); give a target of finite densities");
    } catch (const InvalidArgument&) {
      throw;
    } catch (const std::exception& e) {
      throw InvalidArgument(where + " (--target-dataset " + o.target_dataset + ", --target-step " +
                            std::to_string(o.target_step) + "): " + e.what());
    }
    s.description = "target '" + o.target_dataset + "' from " + canonical(o.target_h5);
  } else if (!o.target_png.empty()) {
    if (o.dim != 2) throw InvalidArgument("--target-png needs --dim 2");
    s.target = app::read_picture(o.target_png, n, n, o.png_invert);
    // A picture without a shape (all white, all black, one grey) would become a uniform
    // target: nothing to steer the smoke towards. The values are luminances in [0, 1].
    const auto [lo, hi] = std::minmax_element(s.target.begin(), s.target.end());
    if (*hi - *lo < kMinPictureContrast)
      throw InvalidArgument(
          "--target-png '" + o.target_png + "': the picture is uniform (its smoke ranges from " +
          std::to_string(*lo) + " to " + std::to_string(*hi) + " on a 0..1 scale), so there is " +
          "no shape to form; draw the shape " +
          (o.png_invert ? "dark on a light background" : "bright on a dark background") +
          (o.png_invert ? " (or bright on dark with --png-bright-is-smoke)" : ""));
    s.description =
        "target picture " + canonical(o.target_png) + (o.png_invert ? "" : " (bright is smoke)");
  } else {
    const std::string shape = o.shape.empty() ? (o.dim == 2 ? "ring" : "torus") : o.shape;
    s.target = o.dim == 2 ? shape_2d(s.grid, shape) : shape_3d(s.grid, shape);
    s.description = (o.dim == 2 ? "blob -> " : "sphere -> ") + shape;
  }
  // The blob holds as much smoke as the target at the same peak density: incompressible flow
  // moves density values around without changing them, so only then can the blob's values
  // fill the target shape exactly. Its radius follows from the target's volume (its sum when
  // the peak is 1).
  double peak = 0, volume = 0;
  for (double v : s.target) {
    peak = std::max(peak, v);
    volume += v;
  }
  if (!(peak > 0))
    throw InvalidArgument(s.description +
                          ": the target holds no smoke; give a target with positive density");
  volume /= peak;
  const double r0 = o.blob_radius > 0 ? o.blob_radius
                    : o.dim == 2      ? std::sqrt(volume / kPi)
                                      : std::cbrt(3 * volume / (4 * kPi));
  s.initial = rasterize(s.grid, [=](double x, double y, double z) {
    const double dz = o.dim == 3 ? z - c : 0.0;
    return std::sqrt((x - c) * (x - c) + (y - c) * (y - c) + dz * dz) - r0;
  });
  const double mass = std::accumulate(s.initial.begin(), s.initial.end(), 0.0);
  match_mass(s.target, mass, "the target");
  return s;
}

}  // namespace dfluid::control
