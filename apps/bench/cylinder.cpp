// dfluid-bench --cylinder (see cylinder.hpp).
//
// Setup (the benchmark's): channel [0, 2.2] x [0, 0.41], Inflow side x = 0 with the parabola
// u = 4 Um y (H - y) / H^2 (Um = 0.3) sampled at the face centres, Outflow at x = 2.2, NoSlip
// walls y = 0 and y = 0.41, nu = 1e-3 (Re = Ubar D / nu = 20, Ubar = 2 Um / 3). The cylinder
// (D = 0.1, centre (0.2, 0.2)) is a staircase: every cell whose centre lies inside the circle is
// solid, with no-slip walls (ObstacleWall). Step: MacCormack velocity advection (RK2 back
// trace), implicit diffusion, projection; run from rest until c_D and dp change by less than
// 1e-5 per unit time.
// Measured: c_D = 500 F_x, c_L = 500 F_y (2 F / (Ubar^2 D)) with F = Simulation::obstacle_force
// (the pressure part of c_D printed beside it);
// dp from the cell pressures, each of the two points (0.15, 0.2) and (0.25, 0.2) extrapolated
// linearly along x from the two nearest fluid cells on its side, in the two rows around y = 0.2
// (interpolated linearly in y).
#include "cylinder.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "common/data_files.hpp"

namespace dfluid::bench {
namespace {

constexpr double kLength = 2.2, kHeight = 0.41, kDiameter = 0.1, kCx = 0.2, kCy = 0.2;
constexpr double kNu = 1e-3, kUm = 0.3;

struct Bounds {
  double lo = 0, hi = 0;
};

/// The 2D-1 intervals of data/schaefer_turek1996_cylinder.txt, by quantity.
std::map<std::string, Bounds> read_bounds() {
  const std::string path =
      app::find_data_file("schaefer_turek1996_cylinder.txt", "DFLUID_DATA_DIR");
  std::ifstream in(path);
  std::map<std::string, Bounds> b;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string c, q;
    double um;
    Bounds v;
    s >> c >> um >> q >> v.lo >> v.hi;
    if (!s) throw Error(path + ": cannot read the line '" + line + "'");
    if (c == "2D-1") b[q] = v;
  }
  for (const char* q : {"c_D", "c_L", "dp"})
    if (!b.count(q)) throw Error(path + ": no 2D-1 row for " + std::string(q));
  return b;
}

/// Distance of v from the interval (0 inside).
double error_to(const Bounds& b, double v) {
  return v < b.lo ? b.lo - v : v > b.hi ? v - b.hi : 0.0;
}

struct CylinderResult {
  double cd = 0, cl = 0, dp = 0, cd_pressure = 0, time = 0, seconds = 0;
  int steps = 0, solid = 0;
};

CylinderResult run_one(const Context& ctx, int ny, const CylinderOptions& o) {
  const double h = kHeight / ny;
  const int nx = int(std::lround(kLength / h));
  Grid g = Grid::make_2d(nx, ny, h);
  g.set_boundary(0, BoundaryKind::Inflow, BoundaryKind::Outflow);
  g.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::NoSlip);
  CylinderResult r;
  std::vector<std::uint8_t> m(std::size_t(g.cells()), 0);
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const double x = (i + 0.5) * h - kCx, y = (j + 0.5) * h - kCy;
      if (x * x + y * y < 0.25 * kDiameter * kDiameter) {
        m[std::size_t(i + nx * j)] = 1;
        ++r.solid;
      }
    }
  ObstacleMask mask(ctx, g, Location::Cell);
  mask.assign(ctx, m);
  StepConfig cfg;
  cfg.dt = o.courant * h / kUm;
  cfg.viscosity = kNu;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.velocity_advection.scheme = AdvectionScheme::MacCormack;
  cfg.velocity_advection.backtrace = Backtrace::RK2;
  cfg.pressure.rel_tol = 1e-8;
  cfg.diffusion_solver.rel_tol = 1e-8;
  cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project};
  Simulation<double> sim(ctx, g, cfg, &mask);
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
  VelocityBoundary vb;
  vb.inflow[0][0].resize(std::size_t(ny));
  for (int j = 0; j < ny; ++j) {
    const double y = (j + 0.5) * h;
    vb.inflow[0][0][std::size_t(j)] = 4 * kUm * y * (kHeight - y) / (kHeight * kHeight);
  }
  sim.set_velocity_boundary(vb);
  SmokeState<double> s(ctx, g, {});
  const double ubar = 2.0 * kUm / 3.0, scale = 2.0 / (ubar * ubar * kDiameter);
  auto measure = [&](double& cd, double& cl, double& dp) {
    const std::array<double, 3> f = sim.obstacle_force(s);
    cd = scale * f[0];
    cl = scale * f[1];
    const ObstacleForceCoefficients<double>& c = sim.obstacle_force_coefficients();
    r.cd_pressure = scale * c.pressure_scale * dot(ctx, c.pressure[0], s.pressure);
    const std::vector<double> p = s.pressure.to_vector(ctx);
    // Pressure at (x0, 0.2) on the surface, extrapolated along x from the fluid side
    // (dir = -1: the fluid lies at smaller x), rows interpolated in y.
    auto surface = [&](double x0, int dir) {
      const double sy = kCy / h - 0.5;
      const int j0 = int(std::floor(sy));
      const double wy = sy - j0;
      double v = 0;
      for (int dj = 0; dj < 2; ++dj) {
        const int j = j0 + dj;
        int i = int(std::floor(x0 / h));  // the cell containing x0
        while (m[std::size_t(i + nx * j)])
          i += dir;
        const int i2 = i + dir;
        const double xi = (i + 0.5) * h;
        const double pi = p[std::size_t(i + nx * j)], p2 = p[std::size_t(i2 + nx * j)];
        v += (dj ? wy : 1 - wy) * (pi + (pi - p2) * (x0 - xi) / (-dir * h));
      }
      return v;
    };
    dp = surface(kCx - 0.5 * kDiameter, -1) - surface(kCx + 0.5 * kDiameter, +1);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const int check_every = std::max(1, int(std::lround(0.5 / cfg.dt)));
  double cd_prev = 0, dp_prev = 0;
  bool have_prev = false;
  while (r.time < o.max_time) {
    sim.step(s);
    ++r.steps;
    r.time += cfg.dt;
    if (r.steps % check_every) continue;
    measure(r.cd, r.cl, r.dp);
    const double per = 1e-5 * check_every * cfg.dt;
    if (have_prev && std::abs(r.cd - cd_prev) < per && std::abs(r.dp - dp_prev) < per) break;
    cd_prev = r.cd;
    dp_prev = r.dp;
    have_prev = true;
  }
  measure(r.cd, r.cl, r.dp);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

int run_cylinder(const Context& ctx, const CylinderOptions& o) {
  const std::map<std::string, Bounds> b = read_bounds();
  std::printf(
      "flow around a cylinder (Schaefer & Turek 1996, case 2D-1, Re = 20) on %s, double; "
      "staircase cylinder, no-slip; error = distance from the published interval "
      "(c_D %.2f-%.2f, c_L %.4f-%.4f, dp %.4f-%.4f)\n",
      ctx.description().c_str(), b.at("c_D").lo, b.at("c_D").hi, b.at("c_L").lo, b.at("c_L").hi,
      b.at("dp").lo, b.at("dp").hi);
  std::printf("%-9s %7s %6s %7s %8s %9s %9s %9s %10s %9s %9s %9s %8s\n", "grid", "h", "D/h",
              "solid", "steps", "t", "c_D", "(press.)", "c_L", "dp", "err c_D", "err dp",
              "seconds");
  int status = 0;
  std::vector<double> hs, ecd, edp;
  for (int ny : o.sizes) {
    const CylinderResult r = run_one(ctx, ny, o);
    const double h = kHeight / ny;
    const int nx = int(std::lround(kLength / h));
    const double e_cd = error_to(b.at("c_D"), r.cd), e_dp = error_to(b.at("dp"), r.dp);
    std::printf("%-9s %7.5f %6.1f %7d %8d %9.2f %9.4f %9.4f %10.5f %9.5f %9.4f %9.5f %8.1f\n",
                (std::to_string(nx) + "x" + std::to_string(ny)).c_str(), h, kDiameter / h, r.solid,
                r.steps, r.time, r.cd, r.cd_pressure, r.cl, r.dp, e_cd, e_dp, r.seconds);
    std::fflush(stdout);
    hs.push_back(h);
    ecd.push_back(std::abs(r.cd - 0.5 * (b.at("c_D").lo + b.at("c_D").hi)));
    edp.push_back(std::abs(r.dp - 0.5 * (b.at("dp").lo + b.at("dp").hi)));
    if (o.check > 0 && ecd.back() > o.check) status = 3;
  }
  // Observed order between successive resolutions, from the distances to the intervals'
  // midpoints (a staircase obstacle changes shape with h, so these need not be smooth).
  for (std::size_t k = 1; k < hs.size(); ++k)
    std::printf("observed order h=%.5f -> %.5f: c_D %.2f, dp %.2f\n", hs[k - 1], hs[k],
                std::log(ecd[k - 1] / ecd[k]) / std::log(hs[k - 1] / hs[k]),
                std::log(edp[k - 1] / edp[k]) / std::log(hs[k - 1] / hs[k]));
  if (status) std::printf("|c_D - 5.58| exceeds --cylinder-check %g\n", o.check);
  return status;
}

}  // namespace dfluid::bench
