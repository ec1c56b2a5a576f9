// dfluid-smoke: forward smoke-plume demo. Runs the composed step (MacCormack
// smoke, semi-Lagrangian velocity, buoyancy, inflow, MGPCG projection) on an
// embedded default scenario and prints one summary line per step. It writes no files, so of
// the common options (apps/common/cli.hpp) it takes --config, --device and --precision only.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/counters.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;
namespace app = dfluid::app;

namespace {

constexpr const char* kName = "dfluid-smoke";

struct Options {
  app::CommonOptions common;  // device, precision
  int dim = 2;
  int size = 128;
  int steps = 64;
  double dt = 1.0;
  double buoyancy = 0.5;
  double tolerance = 1e-4;
  std::string advection = "maccormack";
  std::string interpolation = "linear";
};

// A ball of inflow near the bottom centre, of radius n/16 cells.
template <class T>
Field<T> inflow(const Context& ctx, const Grid& g) {
  Field<T> s(ctx, g, Location::Cell, MemorySpace::Host);
  const double r = std::max(2.0, g.n[0] / 16.0);
  const double c[3] = {g.n[0] / 2.0, g.dim > 1 ? g.n[1] / 8.0 : 0, g.n[2] / 2.0};
  std::vector<T> v(s.size(), T(0));
  for (int k = 0; k < g.n[2]; ++k)
    for (int j = 0; j < g.n[1]; ++j)
      for (int i = 0; i < g.n[0]; ++i) {
        double d2 = std::pow(i + 0.5 - c[0], 2) + std::pow(j + 0.5 - c[1], 2);
        if (g.dim == 3) d2 += std::pow(k + 0.5 - c[2], 2);
        if (d2 <= r * r) v[(Index(k) * g.n[1] + j) * g.n[0] + i] = T(0.2);
      }
  s.assign(ctx, v);
  Field<T> out(ctx, g, Location::Cell);
  copy(ctx, s, out);
  return out;
}

/// The grid of the options; a grid Grid::validate() refuses is a bad --size.
Grid make_grid(const Options& o) {
  try {
    Grid g = o.dim == 2 ? Grid::make_2d(o.size, o.size, 1.0)
                        : Grid::make_3d(o.size, o.size, o.size, 1.0);
    g.validate();
    return g;
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("--size " + std::to_string(o.size) + ": " + e.what());
  }
}

/// Refuses (InvalidArgument: exit code 2) a --size whose fields cannot all be allocated,
/// before anything is: the simulation, its state and the inflow field with its host copy.
template <class T>
void check_memory(const Context& ctx, const Grid& g, const StepConfig& cfg, const Options& o) {
  const std::size_t inflow_bytes = 2 * sizeof(T) * std::size_t(g.cells());
  const std::size_t needed =
      Simulation<T>::estimate_memory(ctx, g, cfg, /*num_scalars=*/1).forward() + inflow_bytes;
  const std::string n = std::to_string(o.size);
  check_memory_available(ctx, needed,
                         "--size " + n + ": a " + std::to_string(o.dim) + "D " +
                             o.common.precision + " simulation of " + n + "^" +
                             std::to_string(o.dim) + " cells");
}

/// A NaN/Inf state after step `k` ends the run (exit code 1) with one line naming the step
/// and what is not finite, instead of a table row of inf and nan. These are the values the
/// row prints anyway (max_abs reports a NaN as inf): no extra host wait.
void check_finite_row(int k, double smoke, double umax, double divmax) {
  auto bad = [](double v) { return !std::isfinite(v); };
  std::string what;
  if (bad(umax))
    what = "the velocity is not finite (NaN or Inf)";
  else if (bad(smoke))
    what = "the smoke density is not finite (total " + std::to_string(smoke) + ")";
  else if (bad(divmax))
    what = "the velocity divergence is not finite";
  if (!what.empty())
    throw NonFiniteValue("step " + std::to_string(k) + ": " + what + " after the step");
}

template <class T>
int run(const Options& o) {
  Context ctx = app::make_context(o.common);
  const Grid g = make_grid(o);
  StepConfig cfg;
  cfg.dt = o.dt;
  cfg.buoyancy = o.buoyancy;
  cfg.scalar_advection.scheme = parse_advection_scheme(o.advection);
  cfg.scalar_advection.interpolation = parse_interpolation(o.interpolation);
  cfg.velocity_advection.interpolation = cfg.scalar_advection.interpolation;
  cfg.pressure.rel_tol = o.tolerance;
  check_memory<T>(ctx, g, cfg, o);
  Simulation<T> sim(ctx, g, cfg);
  SmokeState<T> s(ctx, g);
  Field<T> src = inflow<T>(ctx, g);
  StepControls<T> controls;
  controls.sources = {&src};

  std::printf("dfluid-smoke %s: %s, %s precision, device %s\n", DFLUID_VERSION_STRING,
              g.describe().c_str(), o.common.precision.c_str(), ctx.description().c_str());
  std::printf("%5s %7s %12s %10s %10s %6s %10s %9s\n", "step", "time", "smoke", "max|u|",
              "max|div|", "iters", "residual", "ms");
  const auto t_start = std::chrono::steady_clock::now();
  for (int k = 1; k <= o.steps; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    StepReport r;
    try {
      r = sim.step(s, controls);
    } catch (const NonFiniteValue& e) {
      // The library names the operator; the step is ours to name.
      throw NonFiniteValue("step " + std::to_string(k) + ": " + e.what());
    }
    ctx.synchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    double umax = 0;
    for (int a = 0; a < g.dim; ++a)
      umax = std::max(umax, max_abs(ctx, s.velocity[a]));
    const double smoke = sum(ctx, s.scalars[0]);
    const double divmax = max_abs_divergence(ctx, s.velocity);
    check_finite_row(k, smoke, umax, divmax);
    std::printf("%5d %7.2f %12.4f %10.4f %10.2e %6d %10.2e %9.2f\n", k, k * o.dt, smoke, umax,
                divmax, r.pressure.iterations, r.pressure.residual, ms);
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("done: %d steps in %.2f s (%.2f ms/step) on %s\n", o.steps, total,
              1e3 * total / o.steps, ctx.description().c_str());
  std::printf("%s\n", app::counters_summary_line(ctx).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App cli{"dfluid-smoke: forward smoke-plume demo (prints a per-step summary)"};
  app::add_common_options(cli, o.common, app::CommonOptionSet::DeviceOnly);
  cli.add_option("--dim", o.dim, "2 or 3 dimensions")->check(CLI::IsMember({2, 3}));
  cli.add_option("--size", o.size, "cells per axis")->check(CLI::Range(8, 4096));
  cli.add_option("--steps", o.steps, "number of steps")->check(CLI::Range(1, 1000000));
  // CLI::PositiveNumber and CLI::Range let NaN and Inf through (and Range prints 1e-14 as 0).
  cli.add_option("--dt", o.dt, "time step")->check(app::FinitePositive());
  cli.add_option("--buoyancy", o.buoyancy, "buoyancy coefficient")->check(app::Finite());
  cli.add_option("--tolerance", o.tolerance, "pressure solve relative tolerance")
      ->check(app::FiniteRange(1e-14, 1.0));
  cli.add_option("--advection", o.advection, "smoke advection scheme")
      ->check(CLI::IsMember({"maccormack", "semi-lagrangian"}));
  cli.add_option("--interpolation", o.interpolation,
                 "advection sampling of smoke and velocity: linear, or cubic (Catmull-Rom, C1)")
      ->check(CLI::IsMember({"linear", "cubic"}));
  if (auto code = app::parse_command_line(cli, argc, argv, kName)) return *code;
  return app::run_guarded(
      kName, [&] { return o.common.precision == "float" ? run<float>(o) : run<double>(o); });
}
