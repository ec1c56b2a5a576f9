// dfluid-drag: drag reduction behind a body in a channel (inverse flow control).
// Optimizes the inflow profile u(y) (by default at a fixed flow rate) or the body's rotation
// rate to minimize the time-averaged drag of a cylinder (or a body from a PNG mask) in a
// channel; writes the
// optimized run (HDF5 + XDMF), PNG frames of the vorticity (uncontrolled above optimized),
// the loss history and plot, the profiles, a state file for --resume, and a summary.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/counters.hpp"
#include "common/image.hpp"
#include "common/optimizer_state_file.hpp"
#include "common/output.hpp"
#include "common/progress.hpp"
#include "common/stop_signal.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/io/hdf5.hpp"
#include "drag/channel.hpp"
#include "drag/drag_problem.hpp"
#include "drag/frames.hpp"

using namespace dfluid;
using namespace dfluid::drag;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kName = "dfluid-drag";
constexpr const char* kStateFile = "drag-state.h5";

struct Options {
  app::CommonOptions common;
  ChannelOptions channel;
  int steps = 64;
  double dt = 0.125;
  int average_steps = 0;  // 0: steps / 2
  std::string control = "inflow";
  std::string flux = "fixed";
  int modes = 6;
  double regularization = -1;  // -1: 5 for inflow control, 0.1 for rotation
  std::string optimizer = "lbfgs";
  int iterations = 10;
  double learning_rate = 0;  // 0: per optimizer default
  int lbfgs_history = 8;
  double tolerance = 1e-6;
  std::size_t memory_budget = 0;
  std::size_t host_budget = 0;
  int frames = 8;
  int h5_interval = 0;  // 0: steps / 16
  int check_gradient = 0;
  double check_step = 1e-3;
  bool dry_run = false;
  int stop_after = 0;  // hidden: test aid, acts like Ctrl-C after this many iterations
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

/// FNV-1a hash of the body's cells, for the fingerprint.
std::uint64_t hash_cells(const std::vector<std::uint8_t>& v) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint8_t x : v) {
    h ^= x;
    h *= 1099511628211ull;
  }
  return h;
}

/// Every setting that changes the objective, the controls or the optimizer's path; a state
/// file written with other settings is refused. The body enters through its cells (hashed).
std::string fingerprint(const Options& o, const OptimizerOptions& oo, const ProblemSettings& s,
                        const Channel& ch, Index P) {
  std::ostringstream f;
  f.precision(17);
  f << "dfluid-drag v1 precision=" << o.common.precision << " grid=" << ch.grid.n[0] << "x"
    << ch.grid.n[1] << " reynolds=" << o.channel.reynolds << " body#" << std::hex
    << hash_cells(ch.solid) << std::dec << (ch.node_distance.empty() ? "" : " surface=fractions")
    << " control=" << o.control << " flux=" << o.flux << " modes=" << o.modes
    << " steps=" << s.steps << " dt=" << s.step.dt << " average=" << s.average_steps
    << " regularization=" << s.regularization << " tolerance=" << s.step.pressure.rel_tol
    << " optimizer=" << to_string(oo.kind) << " learning_rate=" << oo.learning_rate
    << " lbfgs_history=" << oo.lbfgs_history << " P=" << P;
  return f.str();
}

ProblemSettings problem_settings(const Options& o, const Channel& ch) {
  ProblemSettings ps;
  ps.control = o.control == "rotation" ? ControlKind::Rotation : ControlKind::Inflow;
  ps.steps = o.steps;
  ps.average_steps = o.average_steps > 0 ? o.average_steps : o.steps / 2;
  ps.fixed_flux = o.flux == "fixed";
  ps.modes = o.modes;
  // The weights of the defaults: the inflow's modes reach narrow wall jets below λ ≈ 1 (the
  // README's table), the rotation's surface speed is one gentle unknown.
  ps.regularization = o.regularization >= 0     ? o.regularization
                      : o.control == "rotation" ? 0.1
                                                : 5.0;
  ps.step = DragProblem<double>::step_config(ch, o.dt, o.tolerance);
  ps.budget.device_bytes = o.memory_budget;
  ps.budget.host_bytes = o.host_budget;
  return ps;
}

/// Refuses a run whose memory cannot exist, before anything is allocated: the simulation with
/// its adjoint and, without --memory-budget, every state of the horizon.
template <class T>
void check_memory(const Context& ctx, const Options& o) {
  const Grid grid = channel_grid(o.channel);
  StepConfig cfg;
  cfg.diffusion = DiffusionMode::Implicit;
  // The body's no-slip scratch and the drag loss's force coefficients (one body); a
  // face-fraction cylinder's fractions and face distance.
  ObstacleMemory om{ObstacleWallKind::NoSlip, 1};
  om.face_fractions = om.face_distance = o.channel.fractions;
  const SimulationMemory sim = Simulation<T>::estimate_memory(ctx, grid, cfg, 0, om);
  const std::size_t stored =
      o.memory_budget > 0 ? o.memory_budget : std::size_t(o.steps + 1) * sim.state;
  const std::size_t need = sim.with_adjoint() + stored + 4 * sim.state;
  const std::string what = "--size " + std::to_string(o.channel.size) + ": a " +
                           o.common.precision + " drag run of " + std::to_string(grid.n[0]) + "x" +
                           std::to_string(grid.n[1]) + " cells and " + std::to_string(o.steps) +
                           " steps (lower --size or --steps" +
                           (o.memory_budget > 0 ? "" : ", or give --memory-budget") + ")";
  check_memory_available(ctx, need, what);
}

OptimizerOptions optimizer_options(const Options& o) {
  OptimizerOptions oo;
  oo.kind = parse_optimizer_kind(o.optimizer);
  oo.lbfgs_history = o.lbfgs_history;
  // Parameters are inflow velocities or the surface speed, in units of U: a first step of
  // 0.5 U (2-norm over the faces) changes a profile by a few percent of U per face.
  oo.learning_rate = o.learning_rate > 0               ? o.learning_rate
                     : oo.kind == OptimizerKind::Lbfgs ? 0.5
                     : oo.kind == OptimizerKind::Adam  ? 1e-2
                                                       : 1.0;
  return oo;
}

template <class T>
void print_setup(const Options& o, const Context& ctx, DragProblem<T>& problem,
                 const OptimizerOptions& oo) {
  const Channel& ch = problem.channel();
  const ProblemSettings& ps = problem.settings();
  std::printf("%s %s: %s\n", kName, DFLUID_VERSION_STRING, ch.description.c_str());
  std::printf("grid %s, Re = %g (nu = %g), %d steps of dt %g, %s precision, device %s\n",
              ch.grid.describe().c_str(), o.channel.reynolds, ch.viscosity, ps.steps, o.dt,
              o.common.precision.c_str(), ctx.description().c_str());
  const std::string control = ps.control == ControlKind::Rotation
                                  ? std::string("the body's rotation rate (about its centroid)")
                                  : "the inflow profile (" + std::to_string(ps.modes) +
                                        " cosine modes of its modulation, " +
                                        (ps.fixed_flux ? "fixed" : "free") + " flow rate)";
  std::printf(
      "control: %s; loss: the mean drag coefficient over states %d..%d + %g x "
      "regularization; optimizer %s, %d iterations\n",
      control.c_str(), problem.window_start(), ps.steps, ps.regularization, to_string(oo.kind),
      o.iterations);
  const std::string plan = problem.plan_report();
  std::printf("%s%s", o.memory_budget > 0 ? "checkpoint plan:\n" : "", plan.c_str());
  std::fflush(stdout);
}

struct OptimizeResult {
  std::vector<app::HistoryRow> history;
  double seconds = 0;
  bool stopped = false;
};

/// Runs optimizer iterations until --iterations, convergence, a failed line search or a stop
/// signal; `r` comes in with the history of a resumed run.
template <class T>
void optimize(const Options& o, DragProblem<T>& problem, Optimizer<T>& optim, OptimizeResult& r) {
  Objective<T> objective = [&](const Field<T>& x, Field<T>& g) { return problem.evaluate(x, g); };
  app::Progress progress("optimizing", o.iterations, app::Progress::parse_mode(o.common.progress));
  progress.log("  iter          loss       |grad|         step  evals   seconds   drag C_D");
  while (optim.iteration() < o.iterations) {
    if (app::stop_requested()) {
      r.stopped = true;
      break;
    }
    const auto t0 = Clock::now();
    const IterationReport it = optim.step(problem.parameters(), objective);
    const double dt_it = seconds_since(t0);
    r.seconds += dt_it;
    const auto& terms = problem.last_terms();
    const double cd = terms.count("drag") ? terms.at("drag") : 0.0;
    if (r.history.empty()) {
      r.history.push_back({0, it.loss_before, it.gradient_norm, 0, 0, 0});
      progress.log(fmt("%6.0f", 0) + fmt("  %12.6e", it.loss_before) +
                   fmt("  %11.4e", it.gradient_norm));
    }
    r.history.push_back({int(it.iteration), it.loss_after, it.gradient_norm_after, it.step_length,
                         it.evaluations, dt_it});
    // The drag of the last evaluation: the accepted point unless the search backed off.
    progress.log(fmt("%6.0f", double(it.iteration)) + fmt("  %12.6e", it.loss_after) +
                 fmt("  %11.4e", it.gradient_norm_after) + fmt("  %11.4e", it.step_length) +
                 fmt("  %5.0f", it.evaluations) + fmt("  %8.2f", dt_it) +
                 (it.failed ? std::string() : fmt("  %9.5f", cd)) +
                 (it.backed_off ? "  (line search backed off)" : "") +
                 (it.restarted ? "  (history reset)" : ""));
    progress.update(long(it.iteration), fmt("loss %.5e", it.loss_after));
    if (it.failed) {
      progress.log("the line search found no decrease; stopping (the profile is the best found)");
      break;
    }
    if (it.converged) {
      progress.log("converged: the gradient norm is below the tolerance");
      break;
    }
    if (o.stop_after > 0 && optim.iteration() >= o.stop_after) app::request_stop(SIGINT);
  }
  progress.finish();
}

/// --check-gradient N: the adjoint gradient's directional derivative along N random unit
/// directions against central differences of the loss with step h (the parameters as they
/// are: the base profile, or a resumed run's). Prints a line per direction and writes
/// gradient_check.json. Returns the largest relative difference.
template <class T>
double check_gradient(const Options& o, const Context& ctx, DragProblem<T>& problem,
                      const std::string& out) {
  const Index P = problem.parameter_count();
  Field<T>& x = problem.parameters();
  const std::vector<T> x0 = x.to_vector(ctx);
  Field<T> grad(ctx, problem.parameter_grid(), Location::Cell);
  fill(ctx, grad, T(0));
  const double loss0 = problem.evaluate(x, grad);
  const std::vector<T> g = grad.to_vector(ctx);
  std::mt19937_64 rng(o.common.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double h = o.check_step;
  nlohmann::json rows = nlohmann::json::array();
  double worst = 0;
  std::printf("gradient check at loss %.10e, central differences with h = %g:\n", loss0, h);
  std::printf("  dir        adjoint   central difference   relative difference\n");
  for (int d = 0; d < o.check_gradient; ++d) {
    std::vector<double> dir(static_cast<std::size_t>(P));
    double norm = 0;
    for (double& v : dir) {
      v = normal(rng);
      norm += v * v;
    }
    double adjoint = 0;
    for (Index j = 0; j < P; ++j) {
      dir[j] /= std::sqrt(norm);
      adjoint += dir[j] * double(g[j]);
    }
    auto loss_at = [&](double s) {
      std::vector<T> xs(x0);
      for (Index j = 0; j < P; ++j)
        xs[j] = T(double(x0[j]) + s * dir[j]);
      x.assign(ctx, xs);
      fill(ctx, grad, T(0));
      return problem.evaluate(x, grad);
    };
    const double central = (loss_at(h) - loss_at(-h)) / (2 * h);
    const double rel = std::abs(adjoint - central) / std::max(std::abs(central), 1e-300);
    worst = std::max(worst, rel);
    std::printf("  %3d  %13.6e  %19.6e  %20.3e\n", d, adjoint, central, rel);
    rows.push_back({{"direction", d},
                    {"adjoint", adjoint},
                    {"central", central},
                    {"relative_difference", rel}});
  }
  x.assign(ctx, x0);
  nlohmann::json j;
  j["app"] = kName;
  j["loss"] = loss0;
  j["step"] = h;
  j["directions"] = rows;
  j["max_relative_difference"] = worst;
  app::write_json(app::join(out, "gradient_check.json"), j);
  std::printf("largest relative difference %.3e (gradient_check.json in %s)\n", worst, out.c_str());
  return worst;
}

/// The uncontrolled and the optimized run side by side: HDF5 snapshots of the optimized run
/// (every h5_interval steps and the last), vorticity frames (uncontrolled above optimized)
/// and the drag histories.
template <class T>
void write_runs(const Options& o, const Context& ctx, DragProblem<T>& problem,
                std::int64_t iterations, const std::string& out, DragHistory& before,
                DragHistory& after) {
  const Channel& ch = problem.channel();
  const Grid& g = ch.grid;
  const int steps = problem.settings().steps;
  std::vector<int> frame_steps;
  for (int f = 0; f <= o.frames && o.frames > 0; ++f)
    frame_steps.push_back(int(std::lround(double(f) * steps / o.frames)));
  auto is_frame = [&](int k) {
    return std::find(frame_steps.begin(), frame_steps.end(), k) != frame_steps.end();
  };
  auto vort = [&](const SmokeState<T>& s) {
    const std::vector<T> u = s.velocity[0].to_vector(ctx), v = s.velocity[1].to_vector(ctx);
    return vorticity(g, std::vector<double>(u.begin(), u.end()),
                     std::vector<double>(v.begin(), v.end()), ch.solid);
  };
  // The uncontrolled run first, keeping the vorticity of the frame steps (small).
  std::map<int, std::vector<double>> uncontrolled;
  before = problem.forward(false, [&](int k, const SmokeState<T>& s) {
    if (is_frame(k)) uncontrolled[k] = vort(s);
  });

  const int h5_interval = o.h5_interval > 0 ? o.h5_interval : std::max(1, steps / 16);
  io::WriterOptions wo;
  wo.interval = 1;  // the loop below picks the steps
  io::SnapshotWriter writer(app::join(out, "drag.h5"), g, wo);
  writer.set_run_attribute("app", kName);
  writer.set_run_attribute("body", ch.description);
  writer.set_run_attribute("steps", steps);
  writer.set_run_attribute("iterations", iterations);
  writer.set_run_attribute("reynolds", o.channel.reynolds);
  writer.set_run_attribute("viscosity", ch.viscosity);
  writer.set_run_attribute("reference_length", ch.reference_length);
  const std::string frames_dir =
      app::prepare_output_dir(app::join(out, "frames"), app::OutputLock::Inside);
  Field<T> body(ctx, g, Location::Cell), omega(ctx, g, Location::Cell);
  body.assign(ctx, std::vector<T>(ch.solid.begin(), ch.solid.end()));
  // One colour scale for every frame: the strongest vorticity near the body at rest is set by
  // the inflow; 4 U / D_ref shows the shear layers without saturating the wake.
  const double limit = 4 * kMeanInflow / ch.reference_length;
  const int scale = std::max(1, 512 / g.n[0]);
  const std::string still = problem.settings().control == ControlKind::Rotation
                                ? "parabolic inflow, body at rest"
                                : "parabolic inflow";
  after = problem.forward(true, [&](int k, const SmokeState<T>& s) {
    const bool h5 = k % h5_interval == 0 || k == steps;
    if (!h5 && !is_frame(k)) return;
    const std::vector<double> w = vort(s);
    if (h5) {
      omega.assign(ctx, std::vector<T>(w.begin(), w.end()));
      std::vector<io::NamedField> fields;
      io::add_vector(fields, "velocity", s.velocity, io::FieldKind::Velocity);
      fields.emplace_back("pressure", s.pressure, io::FieldKind::Pressure);
      fields.emplace_back("vorticity", omega, io::FieldKind::Scalar);
      fields.emplace_back("body", body, io::FieldKind::Scalar);
      writer.write(ctx, k, k * o.dt, o.dt, fields);
    }
    if (is_frame(k)) {
      char name[64];
      std::snprintf(name, sizeof name, "step_%04d.png", k);
      const std::string t = fmt("t = %.2f", k * o.dt);
      app::write_png(app::join(frames_dir, name),
                     stack_vertically({render_vorticity(g, uncontrolled[k], ch.solid, limit, scale),
                                       render_vorticity(g, w, ch.solid, limit, scale)},
                                      {"uncontrolled (" + still + "), " + t,
                                       "optimized " + o.control + ", " + t}));
    }
  });
  writer.close();
}

/// inflow.csv (y, base, optimized), drag.csv (per state), loss.png, summary.json and the
/// printed summary.
template <class T>
void write_summary(const Options& o, const Context& ctx, DragProblem<T>& problem,
                   const OptimizerOptions& oo, std::int64_t iterations, const OptimizeResult& r,
                   const DragHistory& before, const DragHistory& after,
                   const ContextCounters& optimization_counters, double wall,
                   const std::string& out) {
  const Channel& ch = problem.channel();
  const std::vector<double> u = problem.inflow_profile(problem.parameters().to_vector(ctx));
  double flux_base = 0, flux_opt = 0;
  {
    std::ostringstream f;
    f.precision(9);
    f << "y,base,optimized\n";
    for (std::size_t j = 0; j < u.size(); ++j) {
      f << (j + 0.5) * ch.grid.dx << ',' << ch.base_inflow[j] << ',' << u[j] << '\n';
      flux_base += ch.base_inflow[j] * ch.grid.dx;
      flux_opt += u[j] * ch.grid.dx;
    }
    app::write_file_atomic(app::join(out, "inflow.csv"), f.str());
  }
  {
    std::ostringstream f;
    f.precision(9);
    f << "step,time,drag_uncontrolled,drag_optimized,lift_uncontrolled,lift_optimized\n";
    for (std::size_t k = 0; k < after.drag.size(); ++k)
      f << k << ',' << k * o.dt << ',' << before.drag[k] << ',' << after.drag[k] << ','
        << before.lift[k] << ',' << after.lift[k] << '\n';
    app::write_file_atomic(app::join(out, "drag.csv"), f.str());
  }
  std::vector<double> losses;
  for (const auto& h : r.history)
    losses.push_back(h.loss);
  app::write_png(app::join(out, "loss.png"), app::plot_curve(losses, "dfluid-drag loss", false));

  const double reduction = 1 - after.mean_drag / before.mean_drag;
  const MemoryStats mem = memory_stats();
  nlohmann::json j;
  j["app"] = kName;
  j["body"] = ch.description;
  j["grid"] = ch.grid.describe();
  j["reynolds"] = o.channel.reynolds;
  j["steps"] = problem.settings().steps;
  j["dt"] = o.dt;
  j["average_from_state"] = problem.window_start();
  j["control"] = o.control;
  j["surface"] = o.channel.fractions ? "fractions" : "staircase";
  j["flux"] = o.flux;
  j["device"] = ctx.description();
  j["precision"] = o.common.precision;
  j["optimizer"] = to_string(oo.kind);
  j["iterations"] = iterations;
  j["initial_loss"] = r.history.empty() ? 0.0 : r.history.front().loss;
  j["final_loss"] = r.history.empty() ? 0.0 : r.history.back().loss;
  j["drag_uncontrolled"] = before.mean_drag;
  j["drag_optimized"] = after.mean_drag;
  j["drag_reduction"] = reduction;
  j["lift_uncontrolled"] = before.mean_lift;
  j["lift_optimized"] = after.mean_lift;
  j["flow_rate_base"] = flux_base;
  j["flow_rate_optimized"] = flux_opt;
  j["inflow_optimized"] = u;
  const double omega = problem.rotation_rate(problem.parameters().to_vector(ctx));
  j["rotation_rate"] = omega;
  j["surface_speed"] = omega * ch.reference_length / (2 * kMeanInflow);
  j["optimization_seconds"] = r.seconds;
  j["wall_seconds"] = wall;
  j["peak_device_bytes"] = mem.device_peak;
  j["peak_host_bytes"] = mem.host_peak;
  j["counters_optimization"] = app::counters_json(optimization_counters);
  j["counters"] = app::counters_json(ctx.counters());
  app::write_json(app::join(out, "summary.json"), j);

  std::printf("\nsummary\n");
  std::printf("  loss: initial %.6e, final %.6e after %lld iterations\n",
              j["initial_loss"].get<double>(), j["final_loss"].get<double>(),
              (long long)iterations);
  std::printf(
      "  mean drag coefficient over t = %.2f..%.2f: uncontrolled %.5f, optimized %.5f "
      "(%.1f%% less)\n",
      problem.window_start() * o.dt, problem.settings().steps * o.dt, before.mean_drag,
      after.mean_drag, 100 * reduction);
  if (problem.settings().control == ControlKind::Rotation)
    std::printf("  rotation rate %.6f (surface speed %.6f U, counter-clockwise positive)\n", omega,
                j["surface_speed"].get<double>());
  else
    std::printf("  flow rate: base %.6f, optimized %.6f\n", flux_base, flux_opt);
  std::printf("  wall time %.1f s (optimization %.1f s), device %s, peak %s memory %.1f MiB\n",
              wall, r.seconds, ctx.description().c_str(), ctx.on_gpu() ? "device" : "host",
              (ctx.on_gpu() ? mem.device_peak : mem.host_peak) / 1048576.0);
  std::printf("  %s\n", app::counters_summary_line(ctx).c_str());
  std::printf(
      "  outputs in %s: drag.h5 (+ drag.xmf), frames/, loss.png, history.csv, drag.csv, "
      "inflow.csv, summary.json, %s\n",
      out.c_str(), kStateFile);
}

template <class T>
int run(const Options& o) {
  // Setup: context, channel, problem, optimizer; nothing is written before --dry-run returns.
  app::install_stop_handlers();
  const auto t_start = Clock::now();
  Context ctx = app::make_context(o.common);
  check_memory<T>(ctx, o);
  const Channel ch = make_channel(o.channel);
  DragProblem<T> problem(ctx, ch, problem_settings(o, ch));
  const OptimizerOptions oo = optimizer_options(o);
  Optimizer<T> optim(ctx, problem.parameter_count(), oo);
  print_setup(o, ctx, problem, oo);
  if (o.dry_run) return 0;
  const std::string out = app::prepare_output_dir(o.common.output);

  const std::string fp = fingerprint(o, oo, problem.settings(), ch, problem.parameter_count());
  const std::string state_path = app::join(out, kStateFile);
  OptimizeResult r;
  if (!o.common.resume.empty()) {
    app::SavedRun<T> saved =
        app::load_state_file<T>(o.common.resume, problem.parameter_grid(), fp, {kName, kStateFile});
    problem.parameters().assign(ctx, saved.parameters);
    optim.restore(saved.optimizer);
    r.history = saved.history;
    r.seconds = saved.seconds;
    std::printf("resumed from %s at iteration %lld\n", o.common.resume.c_str(),
                (long long)optim.iteration());
  }
  if (o.check_gradient > 0) {
    check_gradient(o, ctx, problem, out);
    return app::exit_code_after_outputs(kName);
  }

  ctx.reset_counters();
  optimize(o, problem, optim, r);
  const ContextCounters optimization_counters = ctx.counters();

  // Outputs: the state file first (save_run).
  app::SavedRun<T> saved;
  saved.parameters = problem.parameters().to_vector(ctx);
  saved.optimizer = optim.save();
  saved.history = r.history;
  saved.seconds = r.seconds;
  if (app::save_run(state_path, out, problem.parameter_grid(), fp, saved, r.stopped,
                    (long long)optim.iteration(), "the profile"))
    return app::kStoppedExitCode;
  DragHistory before, after;
  write_runs(o, ctx, problem, optim.iteration(), out, before, after);
  write_summary(o, ctx, problem, oo, optim.iteration(), r, before, after, optimization_counters,
                seconds_since(t_start), out);
  return app::exit_code_after_outputs(kName);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.common.output = "drag-out";
  CLI::App app{
      "dfluid-drag: drag reduction behind a body in a channel. Finds the inflow profile or the "
      "body's rotation rate that minimizes the time-averaged drag (L-BFGS through the adjoint "
      "of the simulation)."};
  app::add_common_options(app, o.common);
  app.add_option("--size", o.channel.size, "cells across the channel (4.1 cylinder diameters)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--length", o.channel.length, "channel length in cylinder diameters")
      ->check(app::FiniteRange(1.0, 1e4));
  app.add_option("--reynolds", o.channel.reynolds,
                 "Reynolds number U D / nu (U: mean inflow, D: the body's frontal height)")
      ->check(app::FiniteRange(0.01, 1e4));
  auto* mask = app.add_option("--mask", o.channel.mask,
                              "the body from a picture stretched over the channel (PNG/JPEG/BMP/"
                              "TGA; dark = solid); default: the cylinder");
  app.add_flag("--mask-bright-is-solid", o.channel.mask_bright_is_solid,
               "with --mask: bright pixels are solid (default: dark pixels are)")
      ->needs(mask);
  std::string surface = "staircase";
  app.add_option("--surface", surface,
                 "the cylinder's surface: staircase (its cells) or fractions (face open "
                 "fractions, the no-slip wall at its true distance: ghost fluid)")
      ->check(CLI::IsMember({"staircase", "fractions"}));
  app.add_option("--steps", o.steps, "simulation steps from rest")->check(CLI::Range(2, 1000000));
  app.add_option("--dt", o.dt, "time step (in D / U)")->check(app::FiniteRange(1e-6, 100.0));
  app.add_option("--average-steps", o.average_steps,
                 "the drag is averaged over the last this many states (0: steps / 2)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--control", o.control,
                 "what is optimized: inflow (the inflow profile u(y)) or rotation (the body's "
                 "rotation rate)")
      ->check(CLI::IsMember({"inflow", "rotation"}));
  app.add_option("--flux", o.flux,
                 "inflow control: fixed (keep the flow rate of the parabolic profile) or free")
      ->check(CLI::IsMember({"fixed", "free"}));
  app.add_option("--modes", o.modes,
                 "inflow control: cosine modes of the profile's modulation u0 exp(sum z_m "
                 "cos(m pi y / H))")
      ->check(CLI::Range(1, 4096));
  app.add_option("--regularization", o.regularization,
                 "weight of the regularization 1/2 |z|^2 of the parameters (default: 5 for "
                 "inflow control, 0.1 for rotation)")
      ->check(app::FiniteRange(0.0, 1e6));
  app.add_option("--optimizer", o.optimizer, "lbfgs, adam or gd")
      ->check(CLI::IsMember({"lbfgs", "adam", "gd"}));
  app.add_option("--iterations", o.iterations, "optimizer iterations")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--learning-rate", o.learning_rate,
                 "gd/adam step size; lbfgs: length of the first step (0: 0.5 for lbfgs, 1 for "
                 "gd, 1e-2 for adam)")
      ->check(app::FiniteRange(0.0, 1e12));
  app.add_option("--lbfgs-history", o.lbfgs_history, "L-BFGS correction pairs")
      ->check(CLI::Range(1, 100));
  app.add_option("--tolerance", o.tolerance, "relative residual of the pressure solves")
      ->check(app::FiniteRange(1e-14, 1.0));
  auto* budget = app.add_option("--memory-budget", o.memory_budget,
                                "device memory the backward pass may use, in bytes (suffixes: "
                                "KiB, MiB, GiB, kB, MB, GB); 0: keep every state")
                     ->transform(CLI::AsSizeValue(true))
                     ->transform(app::NonNegativeSize());
  app.add_option("--host-budget", o.host_budget,
                 "pinned host memory for checkpoints, in bytes (with --memory-budget)")
      ->transform(CLI::AsSizeValue(true))
      ->transform(app::NonNegativeSize())
      ->needs(budget);
  app.add_flag("--dry-run", o.dry_run,
               "print the setup and the checkpoint plan, then exit without simulating");
  app.add_option("--frames", o.frames, "PNG frames of the vorticity (uncontrolled and optimized)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--h5-interval", o.h5_interval,
                 "steps between HDF5 snapshots of the optimized run (0: steps/16; the last step "
                 "is always written)")
      ->check(CLI::Range(0, 1000000));
  auto* check = app.add_option("--check-gradient", o.check_gradient,
                               "instead of optimizing: compare the gradient with central "
                               "differences along this many random directions (--seed)")
                    ->check(CLI::Range(0, 1000));
  app.add_option("--check-step", o.check_step, "step h of the central differences")
      ->check(app::FiniteRange(1e-12, 1.0))
      ->needs(check);
  app::add_stop_after_option(
      app, o.stop_after,
      "act as if Ctrl-C arrived after this many iterations (for testing --resume)");
  if (auto code = app::parse_command_line(app, argc, argv, kName)) return *code;
  o.channel.fractions = surface == "fractions";
  return app::run_guarded(kName, [&] {
    // --flux has a default, so CLI11's needs() cannot refuse it: it means nothing when the
    // inflow is not the control.
    if (o.control != "inflow" && app.get_option("--flux")->count() > 0)
      throw InvalidArgument("--flux applies to --control inflow only; drop it with --control " +
                            o.control);
    return o.common.precision == "float" ? run<float>(o) : run<double>(o);
  });
}
