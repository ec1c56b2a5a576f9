// dfluid-bench --cavity (see cavity.hpp).
#include "cavity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/data_files.hpp"

namespace dfluid::bench {
namespace {

/// One Reynolds number's columns of the table: u(y) on x = 0.5, v(x) on y = 0.5.
struct GhiaColumns {
  std::vector<double> y, u, x, v;
};

GhiaColumns read_ghia(int re) {
  const int col = re == 100 ? 0 : re == 400 ? 1 : re == 1000 ? 2 : -1;
  if (col < 0)
    throw InvalidArgument("--cavity-re " + std::to_string(re) +
                          ": the table (Ghia et al. 1982) has Re = 100, 400 and 1000");
  const std::string path = app::find_data_file("ghia1982_cavity.txt", "DFLUID_DATA_DIR");
  std::ifstream in(path);
  GhiaColumns t;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string what;
    double pos, val[3];
    s >> what >> pos >> val[0] >> val[1] >> val[2];
    if (!s) throw Error(path + ": cannot read the line '" + line + "'");
    (what == "u" ? t.y : t.x).push_back(pos);
    (what == "u" ? t.u : t.v).push_back(val[col]);
  }
  if (t.y.size() != 17 || t.x.size() != 17) throw Error(path + ": expected 17 u and 17 v rows");
  return t;
}

/// Linear interpolation of cell-centred values c (centres at (i + 1/2) / n) at pos in
/// [0, 1], with the wall values lo at 0 and hi at 1.
double sample(const std::vector<double>& c, double lo, double hi, double pos) {
  const int n = int(c.size());
  const double s = pos * n - 0.5;  // in units of cells from the first centre
  if (s <= 0) return lo + (c[0] - lo) * (pos * n / 0.5);
  if (s >= n - 1) return c[std::size_t(n - 1)] + (hi - c[std::size_t(n - 1)]) * (s - (n - 1)) / 0.5;
  const int i = int(s);
  return c[std::size_t(i)] + (c[std::size_t(i + 1)] - c[std::size_t(i)]) * (s - i);
}

struct CavityResult {
  double dev_u = 0, dev_v = 0, time = 0, seconds = 0;
  int steps = 0;
  // Where each centreline deviates most: position, simulated and tabulated value.
  double worst_u[3] = {0, 0, 0}, worst_v[3] = {0, 0, 0};
};

CavityResult run_one(const Context& ctx, int n, int re, const CavityOptions& o) {
  Grid g = Grid::make_2d(n, n, 1.0 / n);
  g.set_boundary(0, BoundaryKind::NoSlip, BoundaryKind::NoSlip);
  g.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::MovingWall);
  StepConfig cfg;
  cfg.dt = o.courant * g.dx;  // lid speed 1
  cfg.viscosity = 1.0 / re;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.velocity_advection.scheme = AdvectionScheme::MacCormack;
  cfg.velocity_advection.backtrace = Backtrace::RK2;
  cfg.pressure.rel_tol = 1e-8;
  cfg.diffusion_solver.rel_tol = 1e-8;
  cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project};
  Simulation<double> sim(ctx, g, cfg);
  VelocityBoundary vb;
  vb.wall.v[1][1] = {1.0, 0.0, 0.0};
  sim.set_velocity_boundary(vb);
  SmokeState<double> s(ctx, g, {});
  const double t_end = o.max_time > 0 ? o.max_time : 40.0 + re / 10.0;
  // Centrelines: u on the x faces at x = 1/2 (index n/2), v on the y faces at y = 1/2.
  auto centrelines = [&](std::vector<double>& ucol, std::vector<double>& vrow) {
    const std::vector<double> ux = s.velocity[0].to_vector(ctx), vy = s.velocity[1].to_vector(ctx);
    ucol.resize(std::size_t(n));
    vrow.resize(std::size_t(n));
    for (int j = 0; j < n; ++j)
      ucol[std::size_t(j)] = ux[std::size_t(j * (n + 1) + n / 2)];
    for (int i = 0; i < n; ++i)
      vrow[std::size_t(i)] = vy[std::size_t((n / 2) * n + i)];
  };
  std::vector<double> ucol, vrow, uprev, vprev;
  CavityResult r;
  const auto t0 = std::chrono::steady_clock::now();
  // Steady when the centrelines change by less than 1e-6 (lid speeds) per unit time.
  const int check_every = std::max(1, int(std::lround(1.0 / cfg.dt)));
  while (r.time < t_end) {
    sim.step(s);
    ++r.steps;
    r.time += cfg.dt;
    if (r.steps % check_every) continue;
    centrelines(ucol, vrow);
    if (!uprev.empty()) {
      double change = 0;
      for (int k = 0; k < n; ++k)
        change = std::max({change, std::abs(ucol[std::size_t(k)] - uprev[std::size_t(k)]),
                           std::abs(vrow[std::size_t(k)] - vprev[std::size_t(k)])});
      if (change < 1e-6 * check_every * cfg.dt) break;
    }
    uprev = ucol;
    vprev = vrow;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  centrelines(ucol, vrow);
  const GhiaColumns t = read_ghia(re);
  for (std::size_t k = 0; k < t.y.size(); ++k) {
    const double sim = sample(ucol, 0.0, 1.0, t.y[k]);
    if (std::abs(sim - t.u[k]) <= r.dev_u) continue;
    r.dev_u = std::abs(sim - t.u[k]);
    r.worst_u[0] = t.y[k], r.worst_u[1] = sim, r.worst_u[2] = t.u[k];
  }
  for (std::size_t k = 0; k < t.x.size(); ++k) {
    const double sim = sample(vrow, 0.0, 0.0, t.x[k]);
    if (std::abs(sim - t.v[k]) <= r.dev_v) continue;
    r.dev_v = std::abs(sim - t.v[k]);
    r.worst_v[0] = t.x[k], r.worst_v[1] = sim, r.worst_v[2] = t.v[k];
  }
  return r;
}

}  // namespace

int run_cavity(const Context& ctx, const CavityOptions& o) {
  for (int re : o.reynolds)
    read_ghia(re);  // refuse a Reynolds number the table lacks first
  std::printf(
      "lid-driven cavity on %s, double: max |deviation| from Ghia, Ghia & Shin (1982) "
      "at the 17 tabulated points of each centreline, in lid speeds\n",
      ctx.description().c_str());
  std::printf("%-8s %6s %8s %8s %9s %9s %9s\n", "size", "Re", "steps", "t", "u(y)", "v(x)",
              "seconds");
  int status = 0;
  for (int n : o.sizes)
    for (int re : o.reynolds) {
      const CavityResult r = run_one(ctx, n, re, o);
      std::printf("%-8s %6d %8d %8.2f %9.4f %9.4f %9.1f\n",
                  (std::to_string(n) + "x" + std::to_string(n)).c_str(), re, r.steps, r.time,
                  r.dev_u, r.dev_v, r.seconds);
      std::printf(
          "         worst points: u(y = %.4f) = %.5f (table %.5f), v(x = %.4f) = %.5f "
          "(table %.5f)\n",
          r.worst_u[0], r.worst_u[1], r.worst_u[2], r.worst_v[0], r.worst_v[1], r.worst_v[2]);
      std::fflush(stdout);
      if (o.check > 0 && std::max(r.dev_u, r.dev_v) > o.check) status = 3;
    }
  if (status) std::printf("a deviation exceeds --cavity-check %g\n", o.check);
  return status;
}

}  // namespace dfluid::bench
