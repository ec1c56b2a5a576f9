// dfluid-bench --cylinder (see cylinder.hpp).
//
// Setup (the benchmark's): channel [0, 2.2] x [0, 0.41], Inflow side x = 0 with the parabola
// u = 4 Um y (H - y) / H^2 (Um = 0.3 in case 2D-1, 1.5 in 2D-2) sampled at the face centres,
// Outflow (or ConvectiveOutflow, U_c = Ubar) at x = 2.2, NoSlip walls y = 0 and y = 0.41, nu = 1e-3
// (Re = Ubar D / nu = 20 and 100, Ubar = 2 Um / 3). The cylinder (D = 0.1, centre (0.2, 0.2)) is a
// staircase: every cell whose centre lies inside the circle is solid, with no-slip walls
// (ObstacleWall); with --cylinder-surface fractions the circle itself: face open fractions
// for the projection and force, and the no-slip wall at its true distance in the viscous
// step (ghost fluid; dfluid/face_fractions.hpp). Step: MacCormack velocity advection (RK2 back
// trace), implicit diffusion, projection, dt = courant * h / Um (a CFL number on the inflow's
// peak). 2D-1: run from rest until c_D and dp change by less than 1e-5 per unit time. 2D-2: run
// from rest until the lift is periodic (see PeriodTracker), then report over the last period.
// Measured: c_D = 500 F_x, c_L = 500 F_y (2 F / (Ubar^2 D)) with F = Simulation::obstacle_force
// (the pressure part of c_D printed beside it); dp from the cell pressures, each of the two points
// (0.15, 0.2) and (0.25, 0.2) extrapolated linearly along x from the two nearest fluid cells on its
// side, in the two rows around y = 0.2 (interpolated linearly in y).
#include "cylinder.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "common/data_files.hpp"

namespace dfluid::bench {
namespace {

constexpr double kLength = 2.2, kHeight = 0.41, kDiameter = 0.1, kCx = 0.2, kCy = 0.2;
constexpr double kNu = 1e-3;

struct Bounds {
  double lo = 0, hi = 0;
  double mid() const { return 0.5 * (lo + hi); }
};

/// The intervals of data/schaefer_turek1996_cylinder.txt for one case, by quantity; throws
/// when one of `needed` is missing.
std::map<std::string, Bounds> read_bounds(const std::string& case_name,
                                          const std::vector<std::string>& needed) {
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
    if (c == case_name) b[q] = v;
  }
  for (const std::string& q : needed)
    if (!b.count(q)) throw Error(path + ": no " + case_name + " row for " + q);
  return b;
}

/// Distance of v from the interval (0 inside).
double error_to(const Bounds& b, double v) {
  return v < b.lo ? b.lo - v : v > b.hi ? v - b.hi : 0.0;
}

/// One instant's measurements: c_D (and its pressure part), c_L, dp.
struct Sample {
  double t = 0, cd = 0, cd_pressure = 0, cl = 0, dp = 0;
};

/// The channel and its cylinder (staircase or face fractions) at ny cells across, inflow peak um,
/// and its state.
class ChannelFlow {
 public:
  ChannelFlow(const Context& ctx, int ny, double um, double courant, bool convective = false,
              bool incremental = false, bool fractions = false)
      : ctx_(ctx),
        ny_(ny),
        h_(kHeight / ny),
        nx_(int(std::lround(kLength / h_))),
        grid_(Grid::make_2d(nx_, ny_, h_)),
        scale_(2.0 / std::pow(2.0 * um / 3.0, 2) / kDiameter) {
    grid_.set_boundary(0, BoundaryKind::Inflow,
                       convective ? BoundaryKind::ConvectiveOutflow : BoundaryKind::Outflow);
    grid_.set_boundary(1, BoundaryKind::NoSlip, BoundaryKind::NoSlip);
    solid_.assign(std::size_t(grid_.cells()), 0);
    for (int j = 0; j < ny_; ++j)
      for (int i = 0; i < nx_; ++i) {
        const double x = (i + 0.5) * h_ - kCx, y = (j + 0.5) * h_ - kCy;
        if (x * x + y * y < 0.25 * kDiameter * kDiameter) {
          solid_[std::size_t(i + nx_ * j)] = 1;
          ++solid_cells_;
        }
      }
    mask_ = std::make_unique<ObstacleMask>(ctx, grid_, Location::Cell);
    mask_->assign(ctx, solid_);
    StepConfig cfg;
    cfg.dt = courant * h_ / um;
    cfg.viscosity = kNu;
    cfg.diffusion = DiffusionMode::Implicit;
    // README "Numerics": without it the steady state carries a dt-dependent error at walls.
    if (incremental) cfg.pressure_correction = PressureCorrection::Incremental;
    cfg.velocity_advection.scheme = AdvectionScheme::MacCormack;
    cfg.velocity_advection.backtrace = Backtrace::RK2;
    cfg.pressure.rel_tol = 1e-8;
    cfg.diffusion_solver.rel_tol = 1e-8;
    cfg.order = {StepPart::AdvectVelocity, StepPart::Diffuse, StepPart::Project};
    dt_ = cfg.dt;
    if (fractions) {
      // The circle's signed distance at the nodes: the fractions and the wall's distance.
      const std::vector<double> phi = circle_node_distance(grid_, {kCx, kCy, 0}, 0.5 * kDiameter);
      sim_ = std::make_unique<Simulation<double>>(ctx, grid_, cfg);
      sim_->set_obstacle_fractions(face_open_fractions<double>(ctx, grid_, phi),
                                   face_center_distance<double>(ctx, grid_, phi));
    } else {
      sim_ = std::make_unique<Simulation<double>>(ctx, grid_, cfg, mask_.get());
    }
    sim_->set_obstacle_wall({ObstacleWallKind::NoSlip, nullptr});
    VelocityBoundary vb;
    vb.inflow[0][0].resize(std::size_t(ny_));
    for (int j = 0; j < ny_; ++j) {
      const double y = (j + 0.5) * h_;
      vb.inflow[0][0][std::size_t(j)] = 4 * um * y * (kHeight - y) / (kHeight * kHeight);
    }
    // A convective outflow carries the wake out at the mean velocity Ubar = 2 Um / 3.
    if (convective) vb.outflow_speed[0][1] = 2.0 * um / 3.0;
    sim_->set_velocity_boundary(vb);
    state_ = std::make_unique<SmokeState<double>>(ctx, grid_, std::vector<std::string>{});
  }

  void step() {
    sim_->step(*state_);
    ++steps_;
    time_ += dt_;
  }
  int nx() const { return nx_; }
  double h() const { return h_; }
  double dt() const { return dt_; }
  double time() const { return time_; }
  int steps() const { return steps_; }
  int solid_cells() const { return solid_cells_; }

  /// c_D = 2 F_x / (Ubar^2 D), c_L likewise with F_y (F = Simulation::obstacle_force), and
  /// dp from the cell pressures: each of the two points (0.15, 0.2) and (0.25, 0.2)
  /// extrapolated linearly along x from the two nearest fluid cells on its side, in the two
  /// rows around y = 0.2 (interpolated linearly in y).
  Sample measure() const {
    Sample r;
    r.t = time_;
    const std::array<double, 3> f = sim_->obstacle_force(*state_);
    r.cd = scale_ * f[0];
    r.cl = scale_ * f[1];
    const ObstacleForceCoefficients<double>& c = sim_->obstacle_force_coefficients();
    r.cd_pressure = scale_ * c.pressure_scale * dot(ctx_, c.pressure[0], state_->pressure);
    const std::vector<double> p = state_->pressure.to_vector(ctx_);
    // Pressure at (x0, 0.2) on the surface, extrapolated along x from the fluid side
    // (dir = -1: the fluid lies at smaller x), rows interpolated in y.
    auto surface = [&](double x0, int dir) {
      const double sy = kCy / h_ - 0.5;
      const int j0 = int(std::floor(sy));
      const double wy = sy - j0;
      double v = 0;
      for (int dj = 0; dj < 2; ++dj) {
        const int j = j0 + dj;
        int i = int(std::floor(x0 / h_));  // the cell containing x0
        while (solid_[std::size_t(i + nx_ * j)])
          i += dir;
        const int i2 = i + dir;
        const double xi = (i + 0.5) * h_;
        const double pi = p[std::size_t(i + nx_ * j)], p2 = p[std::size_t(i2 + nx_ * j)];
        v += (dj ? wy : 1 - wy) * (pi + (pi - p2) * (x0 - xi) / (-dir * h_));
      }
      return v;
    };
    r.dp = surface(kCx - 0.5 * kDiameter, -1) - surface(kCx + 0.5 * kDiameter, +1);
    return r;
  }

 private:
  const Context& ctx_;
  int ny_;
  double h_;
  int nx_;
  Grid grid_;
  double scale_;
  std::vector<std::uint8_t> solid_;
  int solid_cells_ = 0;
  std::unique_ptr<ObstacleMask> mask_;
  std::unique_ptr<Simulation<double>> sim_;
  std::unique_ptr<SmokeState<double>> state_;
  double dt_ = 0, time_ = 0;
  int steps_ = 0;
};

// ---- Case 2D-1 (steady) ----

struct SteadyResult {
  Sample s;
  double seconds = 0, time = 0;
  int steps = 0, solid = 0;
};

SteadyResult run_steady(const Context& ctx, int ny, const CylinderOptions& o) {
  ChannelFlow flow(ctx, ny, 0.3, o.courant, o.convective_outflow, o.incremental_pressure,
                   o.face_fractions);
  const double max_time = o.max_time > 0 ? o.max_time : 30.0;
  const auto t0 = std::chrono::steady_clock::now();
  const int check_every = std::max(1, int(std::lround(0.5 / flow.dt())));
  Sample prev;
  bool have_prev = false;
  while (flow.time() < max_time) {
    flow.step();
    if (flow.steps() % check_every) continue;
    const Sample s = flow.measure();
    const double per = 1e-5 * check_every * flow.dt();
    if (have_prev && std::abs(s.cd - prev.cd) < per && std::abs(s.dp - prev.dp) < per) break;
    prev = s;
    have_prev = true;
  }
  SteadyResult r;
  r.s = flow.measure();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.time = flow.time();
  r.steps = flow.steps();
  r.solid = flow.solid_cells();
  return r;
}

int run_2d1(const Context& ctx, const CylinderOptions& o) {
  const std::map<std::string, Bounds> b = read_bounds("2D-1", {"c_D", "c_L", "dp"});
  std::printf(
      "flow around a cylinder (Schaefer & Turek 1996, case 2D-1, Re = 20) on %s, double; "
      "%s cylinder, no-slip; %s side; %s pressure correction; error = distance from "
      "the published interval (c_D %.2f-%.2f, c_L %.4f-%.4f, dp %.4f-%.4f)\n",
      ctx.description().c_str(),
      o.face_fractions ? "face-fraction (ghost-fluid wall)" : "staircase",
      o.convective_outflow ? "convective-outflow" : "outflow",
      o.incremental_pressure ? "incremental" : "non-incremental", b.at("c_D").lo, b.at("c_D").hi,
      b.at("c_L").lo, b.at("c_L").hi, b.at("dp").lo, b.at("dp").hi);
  std::printf("%-9s %7s %6s %7s %8s %9s %9s %9s %10s %9s %9s %9s %8s\n", "grid", "h", "D/h",
              "solid", "steps", "t", "c_D", "(press.)", "c_L", "dp", "err c_D", "err dp",
              "seconds");
  int status = 0;
  std::vector<double> hs, ecd, edp;
  for (int ny : o.sizes) {
    const SteadyResult r = run_steady(ctx, ny, o);
    const double h = kHeight / ny;
    const int nx = int(std::lround(kLength / h));
    const double e_cd = error_to(b.at("c_D"), r.s.cd), e_dp = error_to(b.at("dp"), r.s.dp);
    std::printf("%-9s %7.5f %6.1f %7d %8d %9.2f %9.4f %9.4f %10.5f %9.5f %9.4f %9.5f %8.1f\n",
                (std::to_string(nx) + "x" + std::to_string(ny)).c_str(), h, kDiameter / h, r.solid,
                r.steps, r.time, r.s.cd, r.s.cd_pressure, r.s.cl, r.s.dp, e_cd, e_dp, r.seconds);
    std::fflush(stdout);
    hs.push_back(h);
    ecd.push_back(std::abs(r.s.cd - b.at("c_D").mid()));
    edp.push_back(std::abs(r.s.dp - b.at("dp").mid()));
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

// ---- Case 2D-2 (periodic vortex shedding) ----

/// One lift period, from a maximum of c_L to the next.
struct Cycle {
  double start = 0, period = 0, cd_max = 0, cl_max = 0;
  double dp_half = 0;   ///< dp at start + period / 2 (the paper's dp(t0 + 1/(2f)), t0 at c_Lmax)
  double dp_start = 0;  ///< dp at the cycle's start (c_Lmax)
};

/// Linear interpolation of member `m` of the samples at time t (clamped to the history).
double sample_at(const std::vector<Sample>& h, double t, double Sample::*m) {
  auto it =
      std::lower_bound(h.begin(), h.end(), t, [](const Sample& s, double v) { return s.t < v; });
  if (it == h.begin()) return (*it).*m;
  if (it == h.end()) return h.back().*m;
  const Sample &b = *it, &a = *(it - 1);
  return a.*m + (b.*m - a.*m) * (t - a.t) / (b.t - a.t);
}

/// The parabola through sample k and its neighbours: its vertex value and time (the time
/// step samples a period 24-100 times: the parabola moves a maximum by up to 1% at the
/// coarsest, and is within 1e-4 of the smooth maximum then).
std::pair<double, double> vertex(const std::vector<Sample>& h, std::size_t k, double Sample::*m) {
  if (k == 0 || k + 1 >= h.size()) return {h[k].*m, h[k].t};
  const double y0 = h[k - 1].*m, y1 = h[k].*m, y2 = h[k + 1].*m, den = y0 - 2 * y1 + y2;
  if (den >= 0) return {y1, h[k].t};
  const double d = 0.5 * (y0 - y2) / den;  // offset of the vertex in steps, |d| <= 1/2
  return {y1 - 0.25 * (y0 - y2) * d, h[k].t + d * (h[k + 1].t - h[k].t)};
}

/// The largest value of member m over samples [i0, i1], refined by vertex().
double refined_max(const std::vector<Sample>& h, std::size_t i0, std::size_t i1,
                   double Sample::*m) {
  std::size_t k = i0;
  for (std::size_t i = i0; i <= i1; ++i)
    if (h[i].*m > h[k].*m) k = i;
  return vertex(h, k, m).first;
}

struct PeriodicResult {
  std::vector<Cycle> cycles;
  bool periodic = false;
  double seconds = 0, time = 0, st = 0, period = 0;
  int steps = 0, solid = 0;
};

/// Periodic when the last kCycles cycles' periods and lift maxima agree to kTol (relative)
/// and the lift's peak-to-peak amplitude is a shedding one (> 0.1; the steady flow at Re = 20
/// has c_L = 0.01, and a staircase body's lift has an offset, so the amplitude, not the
/// value, tells shedding apart).
constexpr int kCycles = 3;
constexpr double kTol = 2e-3;

/// A lift maximum is a sample larger than every other within +-kPeakWindow of it: a quarter
/// of the period the published St = 0.3 gives (D / (0.3 Ubar) = 1/3), so that wiggles of the
/// staircase's lift are not taken for periods while every shedding period up to St = 0.75 is.
constexpr double kPeakWindow = 1.0 / 12;

bool is_periodic(const std::vector<Cycle>& c, const std::vector<double>& amplitude) {
  if (int(c.size()) < kCycles) return false;
  double tmin = 1e300, tmax = 0, lmin = 1e300, lmax = -1e300;
  for (std::size_t k = c.size() - kCycles; k < c.size(); ++k) {
    tmin = std::min(tmin, c[k].period);
    tmax = std::max(tmax, c[k].period);
    lmin = std::min(lmin, c[k].cl_max);
    lmax = std::max(lmax, c[k].cl_max);
    if (amplitude[k] < 0.1) return false;
  }
  return tmax - tmin < kTol * tmax && lmax - lmin < kTol * std::abs(lmax);
}

PeriodicResult run_periodic(const Context& ctx, int ny, const CylinderOptions& o) {
  ChannelFlow flow(ctx, ny, 1.5, o.courant, o.convective_outflow, o.incremental_pressure,
                   o.face_fractions);
  const double max_time = o.max_time > 0 ? o.max_time : 30.0;
  const int window = std::max(1, int(std::lround(kPeakWindow / flow.dt())));
  const auto t0 = std::chrono::steady_clock::now();
  PeriodicResult r;
  std::vector<Sample> hist{flow.measure()};
  std::vector<std::size_t> peaks;  // samples that are lift maxima
  std::vector<double> amplitude;   // per cycle: max - min of c_L
  while (flow.time() < max_time) {
    flow.step();
    hist.push_back(flow.measure());
    // Sample k = n - 1 - window has `window` samples on each side now.
    if (hist.size() < std::size_t(2 * window + 1)) continue;
    const std::size_t k = hist.size() - 1 - std::size_t(window);
    bool peak = true;
    for (std::size_t i = k - std::size_t(window); i <= k + std::size_t(window) && peak; ++i)
      peak = i == k || hist[i].cl < hist[k].cl;
    if (!peak) continue;
    peaks.push_back(k);
    if (peaks.size() < 2) continue;
    // The cycle that just closed: from the previous maximum to this one.
    const std::size_t i0 = peaks[peaks.size() - 2], i1 = k;
    const std::pair<double, double> a = vertex(hist, i0, &Sample::cl),
                                    b = vertex(hist, i1, &Sample::cl);
    Cycle c;
    c.start = a.second;
    c.period = b.second - a.second;
    c.cl_max = a.first;
    c.cd_max = refined_max(hist, i0, i1, &Sample::cd);
    double lo = hist[i0].cl;
    for (std::size_t i = i0; i <= i1; ++i)
      lo = std::min(lo, hist[i].cl);
    amplitude.push_back(a.first - lo);
    c.dp_half = sample_at(hist, c.start + 0.5 * c.period, &Sample::dp);
    c.dp_start = sample_at(hist, c.start, &Sample::dp);
    r.cycles.push_back(c);
    if (is_periodic(r.cycles, amplitude)) {
      r.periodic = true;
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.time = flow.time();
  r.steps = flow.steps();
  r.solid = flow.solid_cells();
  // St from the mean period of the last kCycles cycles (or of those there are).
  const std::size_t k0 = r.cycles.size() > std::size_t(kCycles) ? r.cycles.size() - kCycles : 0;
  if (r.cycles.size() > k0) {
    r.period = 0;
    for (std::size_t k = k0; k < r.cycles.size(); ++k)
      r.period += r.cycles[k].period;
    r.period /= double(r.cycles.size() - k0);
    r.st = kDiameter / (r.period * (2.0 * 1.5 / 3.0));
  }
  return r;
}

int run_2d2(const Context& ctx, const CylinderOptions& o) {
  const std::map<std::string, Bounds> b = read_bounds("2D-2", {"c_Dmax", "c_Lmax", "St", "dp"});
  std::printf(
      "flow around a cylinder (Schaefer & Turek 1996, case 2D-2, Re = 100, periodic) on %s, "
      "double; %s cylinder, no-slip; %s side; run until %d successive lift periods and "
      "maxima "
      "agree to %g; maxima over the last period, St = D / (T Ubar) with T the mean of the last "
      "%d periods (between maxima of c_L, interpolated); dp(t0+T/2): t0 the time of c_Lmax "
      "(the error's); dp(t0): at c_Lmax; error = distance from the published "
      "interval (c_Dmax %.2f-%.2f, c_Lmax %.2f-%.2f, St %.3f-%.3f, dp %.2f-%.2f)\n",
      ctx.description().c_str(),
      o.face_fractions ? "face-fraction (ghost-fluid wall)" : "staircase",
      o.convective_outflow ? "convective-outflow" : "outflow", kCycles, kTol, kCycles,
      b.at("c_Dmax").lo, b.at("c_Dmax").hi, b.at("c_Lmax").lo, b.at("c_Lmax").hi, b.at("St").lo,
      b.at("St").hi, b.at("dp").lo, b.at("dp").hi);
  std::printf("%-9s %7s %6s %6s %7s %7s %8s %8s %8s %8s %9s %9s %8s %8s %8s %8s %8s\n", "grid", "h",
              "D/h", "solid", "steps", "t", "periodic", "c_Dmax", "c_Lmax", "St", "dp(t0+T/2)",
              "dp(t0)", "err c_D", "err c_L", "err St", "err dp", "seconds");
  int status = 0;
  std::vector<double> hs, e[4];
  for (int ny : o.sizes) {
    const PeriodicResult r = run_periodic(ctx, ny, o);
    const double h = kHeight / ny;
    const int nx = int(std::lround(kLength / h));
    Cycle last;
    if (!r.cycles.empty()) last = r.cycles.back();
    const double v[4] = {last.cd_max, last.cl_max, r.st, last.dp_half};
    const char* q[4] = {"c_Dmax", "c_Lmax", "St", "dp"};
    double err[4];
    for (int k = 0; k < 4; ++k)
      err[k] = error_to(b.at(q[k]), v[k]);
    std::printf(
        "%-9s %7.5f %6.1f %6d %7d %7.2f %8s %8.4f %8.4f %8.4f %9.4f %9.4f %8.4f %8.4f %8.4f "
        "%8.4f %8.1f\n",
        (std::to_string(nx) + "x" + std::to_string(ny)).c_str(), h, kDiameter / h, r.solid, r.steps,
        r.time, r.periodic ? "yes" : "NO", v[0], v[1], v[2], v[3], last.dp_start, err[0], err[1],
        err[2], err[3], r.seconds);
    std::fflush(stdout);
    hs.push_back(h);
    for (int k = 0; k < 4; ++k)
      e[k].push_back(std::abs(v[k] - b.at(q[k]).mid()));
    if (o.check > 0 && (!r.periodic || err[2] > o.check)) status = 3;
  }
  for (std::size_t k = 1; k < hs.size(); ++k) {
    auto order = [&](const std::vector<double>& x) {
      return std::log(x[k - 1] / x[k]) / std::log(hs[k - 1] / hs[k]);
    };
    std::printf("observed order h=%.5f -> %.5f: c_Dmax %.2f, c_Lmax %.2f, St %.2f, dp %.2f\n",
                hs[k - 1], hs[k], order(e[0]), order(e[1]), order(e[2]), order(e[3]));
  }
  if (status)
    std::printf(
        "no periodic shedding by t = %g, or St further than --cylinder-check %g from %g-%g\n",
        o.max_time > 0 ? o.max_time : 30.0, o.check, b.at("St").lo, b.at("St").hi);
  return status;
}

}  // namespace

int run_cylinder(const Context& ctx, const CylinderOptions& o) {
  if (o.case_name == "2D-1") return run_2d1(ctx, o);
  if (o.case_name == "2D-2") return run_2d2(ctx, o);
  throw InvalidArgument("--cylinder-case '" + o.case_name + "': use 2D-1 or 2D-2");
}

}  // namespace dfluid::bench
