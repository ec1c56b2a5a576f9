// dfluid-control: keyframe smoke control (McNamara et al. 2004, Treuille et al. 2003).
// Optimizes per-step control forces (and optionally the initial velocity) so that the smoke
// forms target shapes at keyframe steps; writes the optimized run (HDF5 + XDMF), PNG frames,
// the loss history and plot, a state file for --resume, and a summary.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
#include "control/control_problem.hpp"
#include "control/frames.hpp"
#include "control/scenario.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/io/hdf5.hpp"

using namespace dfluid;
using namespace dfluid::control;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kName = "dfluid-control";

struct Options {
  app::CommonOptions common;
  ScenarioOptions scenario;
  int steps = 0;  // 0: 64 in 2D, 100 in 3D
  double dt = 1.0;
  std::vector<int> keyframes;
  int control_interval = 0;  // 0: 8, or --steps when fewer
  bool optimize_velocity = false;
  double effort = 1e-6;
  double smoothing = 3;
  std::string optimizer = "lbfgs";
  int iterations = 0;        // 0: 2D 30, 3D 20
  double learning_rate = 0;  // 0: per optimizer default
  int lbfgs_history = 8;
  double tolerance = 1e-4;
  double target_error = 0;
  std::size_t memory_budget = 0;
  std::size_t host_budget = 0;
  int frames = 8;
  int h5_interval = 0;  // 0: steps / 16
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

/// FNV-1a hash of the values (their bit patterns), for the fingerprint.
std::uint64_t hash_values(const std::vector<double>& v) {
  std::uint64_t h = 1469598103934665603ull;
  for (double x : v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    for (int b = 0; b < 64; b += 8) {
      h ^= (bits >> b) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

/// Every setting that changes the objective, the controls or the optimizer's path; a state
/// file written with other settings is refused. The scenario enters through its initial and
/// target densities themselves (hashed), so --dim, --size, --shape, --blob-radius and the
/// target files (their content, not only their names) are all covered.
std::string fingerprint(const Options& o, const OptimizerOptions& oo, const ProblemSettings& s,
                        const Scenario& sc, Index P) {
  std::ostringstream f;
  f.precision(17);
  f << "dfluid-control v2 precision=" << o.common.precision << " grid=" << sc.grid.n[0] << "x"
    << sc.grid.n[1] << "x" << sc.grid.n[2] << " steps=" << s.steps << " dt=" << s.step.dt
    << " interval=" << s.control_interval << " velocity=" << s.optimize_velocity
    << " effort=" << s.effort << " smoothing=" << s.smoothing << " keyframes=";
  for (int k : s.keyframes)
    f << k << ",";
  f << " tolerance=" << s.step.pressure.rel_tol << " target=" << sc.description << std::hex
    << " initial#" << hash_values(sc.initial) << " target#" << hash_values(sc.target) << std::dec
    << " optimizer=" << to_string(oo.kind) << " learning_rate=" << oo.learning_rate
    << " lbfgs_history=" << oo.lbfgs_history << " P=" << P;
  return f.str();
}

/// The problem the options pose on `grid`.
ProblemSettings problem_settings(const Options& o, const Grid& grid) {
  ProblemSettings ps;
  ps.steps = o.steps > 0 ? o.steps : (grid.dim == 2 ? 64 : 100);
  ps.control_interval = o.control_interval > 0 ? o.control_interval : std::min(8, ps.steps);
  ps.optimize_velocity = o.optimize_velocity;
  ps.keyframes = o.keyframes;
  ps.effort = o.effort;
  ps.smoothing = o.smoothing;
  ps.step.dt = o.dt;
  ps.step.pressure.rel_tol = o.tolerance;
  ps.budget.device_bytes = o.memory_budget;
  ps.budget.host_bytes = o.host_budget;
  return ps;
}

/// Refuses a run whose memory cannot exist, before anything is allocated (a 3D 512³ run
/// would otherwise set up for half a minute and then end in std::bad_alloc).
template <class T>
void check_memory(const Context& ctx, const Options& o) {
  const Grid grid = scenario_grid(o.scenario, ctx.on_gpu());
  ProblemSettings ps = problem_settings(o, grid);
  const int optimizer_vectors = o.optimizer == "lbfgs"  ? 5 + 2 * o.lbfgs_history
                                : o.optimizer == "adam" ? 5
                                                        : 3;
  const ControlMemory m =
      ControlProblem<T>::estimate_memory(ctx, grid, ps, o.optimize_velocity, optimizer_vectors);
  const int n = grid.n[0];
  const std::string cells = grid.dim == 2 ? fmt("%.0f^2", n) : fmt("%.0f^3", n);
  const std::string what = "--size " + std::to_string(n) + ": a " + std::to_string(grid.dim) +
                           "D " + o.common.precision + " control run of " + cells + " cells and " +
                           std::to_string(ps.steps) +
                           " steps (lower --size or --steps, raise --control-interval" +
                           (o.memory_budget > 0 ? "" : ", or give --memory-budget") + ")";
  if (ctx.on_gpu()) {
    check_memory_available(ctx, m.context, what);
    check_memory_available(Context::cpu(), m.host, what);
  } else {
    check_memory_available(ctx, m.context + m.host, what);
  }
}

/// What the optimization loop leaves: the history rows, whether a signal stopped it, and
/// the optimizer's wall time (resumed runs included).
struct OptimizeResult {
  std::vector<app::HistoryRow> history;
  double seconds = 0;
  bool stopped = false;
};

template <class T>
void print_setup(const Options& o, const Context& ctx, const Scenario& sc,
                 const ProblemSettings& ps, ControlProblem<T>& problem, const OptimizerOptions& oo,
                 int iterations) {
  std::printf("%s %s: %s\n", kName, DFLUID_VERSION_STRING, sc.description.c_str());
  std::printf("grid %s, %d steps of dt %g, %s precision, device %s\n", sc.grid.describe().c_str(),
              problem.settings().steps, o.dt, o.common.precision.c_str(),
              ctx.description().c_str());
  std::printf("controls: %d force fields (one per %d steps)%s, %lld unknowns; keyframes at",
              problem.control_fields(), ps.control_interval,
              ps.optimize_velocity ? " + initial velocity" : "",
              (long long)problem.parameter_count());
  for (int k : problem.settings().keyframes)
    std::printf(" %d", k);
  std::printf("; optimizer %s, %d iterations\n", to_string(oo.kind), iterations);
  const std::string plan = problem.plan_report();
  std::printf("%s%s", o.memory_budget > 0 ? "checkpoint plan:\n" : "", plan.c_str());
  std::fflush(stdout);
}

OptimizerOptions optimizer_options(const Options& o) {
  OptimizerOptions oo;
  oo.kind = parse_optimizer_kind(o.optimizer);
  oo.lbfgs_history = o.lbfgs_history;
  oo.learning_rate = o.learning_rate > 0               ? o.learning_rate
                     : oo.kind == OptimizerKind::Lbfgs ? 1.0
                     : oo.kind == OptimizerKind::Adam  ? 1e-3
                                                       : 1.0;
  return oo;
}

/// Runs optimizer iterations until `iterations`, convergence, a failed line search,
/// --target-error or a stop signal; `r` comes in with the history of a resumed run.
template <class T>
void optimize(const Options& o, ControlProblem<T>& problem, Optimizer<T>& optim, int iterations,
              OptimizeResult& r) {
  Objective<T> objective = [&](const Field<T>& x, Field<T>& g) { return problem.evaluate(x, g); };
  app::Progress progress("optimizing", iterations, app::Progress::parse_mode(o.common.progress));
  progress.log("  iter          loss       |grad|         step  evals   seconds");
  while (optim.iteration() < iterations) {
    if (app::stop_requested()) {
      r.stopped = true;
      break;
    }
    const auto t0 = Clock::now();
    const IterationReport it = optim.step(problem.parameters(), objective);
    const double dt_it = seconds_since(t0);
    r.seconds += dt_it;
    if (r.history.empty()) {
      r.history.push_back({0, it.loss_before, it.gradient_norm, 0, 0, 0});
      progress.log(fmt("%6.0f", 0) + fmt("  %12.6e", it.loss_before) +
                   fmt("  %11.4e", it.gradient_norm));
    }
    r.history.push_back({int(it.iteration), it.loss_after, it.gradient_norm_after, it.step_length,
                         it.evaluations, dt_it});
    progress.log(fmt("%6.0f", double(it.iteration)) + fmt("  %12.6e", it.loss_after) +
                 fmt("  %11.4e", it.gradient_norm_after) + fmt("  %11.4e", it.step_length) +
                 fmt("  %5.0f", it.evaluations) + fmt("  %8.2f", dt_it) +
                 (it.backed_off ? "  (line search backed off)" : "") +
                 (it.restarted ? "  (history reset)" : ""));
    progress.update(long(it.iteration), fmt("loss %.4e", it.loss_after));
    if (it.failed) {
      progress.log("the line search found no decrease; stopping (the controls are the best found)");
      break;
    }
    if (it.converged) {
      progress.log("converged: the gradient norm is below the tolerance");
      break;
    }
    const auto& terms = problem.last_terms();
    const double rel = std::sqrt(2 * (terms.count("keyframe") ? terms.at("keyframe") : 0.0) /
                                 double(problem.settings().keyframes.size()));
    if (o.target_error > 0 && std::isfinite(rel) && rel <= o.target_error) break;
    if (o.stop_after > 0 && optim.iteration() >= o.stop_after) app::request_stop(SIGINT);
  }
  progress.finish();
}

/// The optimized run: HDF5 snapshots (every h5_interval steps, the keyframes and the last
/// step) and PNG frames (smoke over the target). Returns its keyframe errors.
template <class T>
KeyframeErrors write_optimized_run(const Options& o, const Context& ctx, const Scenario& sc,
                                   const ProblemSettings& ps, ControlProblem<T>& problem,
                                   std::int64_t iterations, const std::string& out) {
  const int steps = problem.settings().steps;
  const int h5_interval = o.h5_interval > 0 ? o.h5_interval : std::max(1, steps / 16);
  io::WriterOptions wo;
  wo.interval = 1;  // the loop below picks the steps: every h5_interval, keyframes, the last
  io::SnapshotWriter writer(app::join(out, "control.h5"), sc.grid, wo);
  writer.set_run_attribute("app", kName);
  writer.set_run_attribute("scenario", sc.description);
  writer.set_run_attribute("steps", steps);
  writer.set_run_attribute("control_interval", ps.control_interval);
  writer.set_run_attribute("iterations", iterations);
  const std::string frames_dir =
      app::prepare_output_dir(app::join(out, "frames"), app::OutputLock::Inside);
  double vmax = 0;
  for (double v : sc.target)
    vmax = std::max(vmax, v);
  for (double v : sc.initial)
    vmax = std::max(vmax, v);
  std::vector<int> frame_steps;
  for (int f = 0; f <= o.frames && o.frames > 0; ++f)
    frame_steps.push_back(int(std::lround(double(f) * steps / o.frames)));
  for (int k : problem.settings().keyframes)
    frame_steps.push_back(k);
  auto is_frame = [&](int k) {
    return std::find(frame_steps.begin(), frame_steps.end(), k) != frame_steps.end();
  };
  MacVelocity<T> zero_force(ctx, sc.grid);
  const KeyframeErrors after = problem.forward(true, [&](int k, const SmokeState<T>& s) {
    const MacVelocity<T>& f = k < steps ? problem.force(k / ps.control_interval) : zero_force;
    std::vector<io::NamedField> fields;
    fields.emplace_back("density", s.scalars[0], io::FieldKind::Scalar);
    fields.emplace_back("target", problem.target(), io::FieldKind::Scalar);
    io::add_vector(fields, "velocity", s.velocity, io::FieldKind::Velocity);
    io::add_vector(fields, "force", f, io::FieldKind::Force);
    const auto& kfs = problem.settings().keyframes;
    if (k % h5_interval == 0 || k == steps || std::find(kfs.begin(), kfs.end(), k) != kfs.end())
      writer.write(ctx, k, k * o.dt, o.dt, fields);
    if (is_frame(k)) {
      const std::vector<T> v = s.scalars[0].to_vector(ctx);
      char name[64];
      std::snprintf(name, sizeof name, "step_%04d.png", k);
      app::write_png(app::join(frames_dir, name),
                     smoke_and_target(sc.grid, std::vector<double>(v.begin(), v.end()), sc.target,
                                      "step " + std::to_string(k), vmax));
    }
  });
  writer.close();
  return after;
}

/// loss.png, summary.json and the printed summary.
void write_summary(const Options& o, const Context& ctx, const Scenario& sc, int steps,
                   const OptimizerOptions& oo, std::int64_t iterations, const OptimizeResult& r,
                   const KeyframeErrors& before, const KeyframeErrors& after,
                   const ContextCounters& optimization_counters, double wall,
                   const std::string& out) {
  std::vector<double> losses;
  for (const auto& h : r.history)
    losses.push_back(h.loss);
  app::write_png(app::join(out, "loss.png"), app::plot_curve(losses, "dfluid-control loss", true));

  const MemoryStats mem = memory_stats();
  nlohmann::json j;
  j["app"] = kName;
  j["scenario"] = sc.description;
  j["grid"] = sc.grid.describe();
  j["steps"] = steps;
  j["device"] = ctx.description();
  j["precision"] = o.common.precision;
  j["optimizer"] = to_string(oo.kind);
  j["iterations"] = iterations;
  j["initial_loss"] = r.history.empty() ? 0.0 : r.history.front().loss;
  j["final_loss"] = r.history.empty() ? 0.0 : r.history.back().loss;
  j["relative_keyframe_error_uncontrolled"] = before.rms;
  j["relative_keyframe_error_controlled"] = after.rms;
  j["keyframe_errors_controlled"] = after.relative;
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
      "  relative keyframe error ||rho - rho*||/||rho*||: uncontrolled %.4f, controlled %.4f\n",
      before.rms, after.rms);
  // On the CPU path the fields live in host memory: report that peak instead.
  std::printf("  wall time %.1f s (optimization %.1f s), device %s, peak %s memory %.1f MiB\n",
              wall, r.seconds, ctx.description().c_str(), ctx.on_gpu() ? "device" : "host",
              (ctx.on_gpu() ? mem.device_peak : mem.host_peak) / 1048576.0);
  std::printf("  %s\n", app::counters_summary_line(ctx).c_str());
  std::printf(
      "  outputs in %s: control.h5 (+ control.xmf), frames/, loss.png, history.csv, "
      "summary.json, control-state.h5\n",
      out.c_str());
}

template <class T>
int run(const Options& o) {
  // Setup: context, scenario, problem, optimizer; nothing is written before --dry-run returns.
  app::install_stop_handlers();
  const auto t_start = Clock::now();
  Context ctx = app::make_context(o.common);
  check_memory<T>(ctx, o);
  Scenario sc = make_scenario(o.scenario, ctx.on_gpu());
  const ProblemSettings ps = problem_settings(o, sc.grid);
  ControlProblem<T> problem(ctx, sc, ps);
  const int iterations = o.iterations > 0 ? o.iterations : (sc.grid.dim == 2 ? 30 : 20);
  const OptimizerOptions oo = optimizer_options(o);
  Optimizer<T> optim(ctx, problem.parameter_count(), oo);
  print_setup(o, ctx, sc, ps, problem, oo, iterations);
  if (o.dry_run) return 0;
  const std::string out = app::prepare_output_dir(o.common.output);

  const std::string fp = fingerprint(o, oo, problem.settings(), sc, problem.parameter_count());
  const std::string state_path = app::join(out, "control-state.h5");
  OptimizeResult r;
  if (!o.common.resume.empty()) {
    app::SavedRun<T> saved = app::load_state_file<T>(o.common.resume, problem.parameter_grid(), fp,
                                                     {kName, "control-state.h5"});
    problem.parameters().assign(ctx, saved.parameters);
    optim.restore(saved.optimizer);
    r.history = saved.history;
    r.seconds = saved.seconds;
    std::printf("resumed from %s at iteration %lld\n", o.common.resume.c_str(),
                (long long)optim.iteration());
  }

  // Optimize, after the uncontrolled reference run.
  const KeyframeErrors before = problem.forward(false);
  std::printf("uncontrolled relative keyframe error: %.4f\n", before.rms);
  ctx.reset_counters();
  optimize(o, problem, optim, iterations, r);
  const ContextCounters optimization_counters = ctx.counters();

  // Outputs: the state file first (save_run).
  app::SavedRun<T> saved;
  saved.parameters = problem.parameters().to_vector(ctx);
  saved.optimizer = optim.save();
  saved.history = r.history;
  saved.seconds = r.seconds;
  if (app::save_run(state_path, out, problem.parameter_grid(), fp, saved, r.stopped,
                    (long long)optim.iteration(), "controls"))
    return app::kStoppedExitCode;
  const KeyframeErrors after = write_optimized_run(o, ctx, sc, ps, problem, optim.iteration(), out);
  write_summary(o, ctx, sc, problem.settings().steps, oo, optim.iteration(), r, before, after,
                optimization_counters, seconds_since(t_start), out);
  return app::exit_code_after_outputs(kName);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.common.output = "control-out";
  CLI::App app{
      "dfluid-control: keyframe smoke control. Finds the control forces that make the smoke "
      "form a target shape at keyframe steps (L-BFGS through the adjoint of the simulation)."};
  app::add_common_options(app, o.common);
  app.add_option("--dim", o.scenario.dim, "2 or 3 dimensions")->check(CLI::IsMember({2, 3}));
  app.add_option("--size", o.scenario.size,
                 "cells per axis (0: 128 in 2D; 64 in 3D, 128 in 3D on a GPU)")
      ->check(CLI::Range(0, 2048));
  // The target comes from one source; options of another source are refused, not ignored.
  auto* shape = app.add_option(
      "--shape", o.scenario.shape,
      "target shape drawn in code: ring or letter (2D), torus (3D); empty: ring/torus");
  auto* png =
      app.add_option("--target-png", o.scenario.target_png,
                     "2D: make the smoke form this picture (PNG/JPEG/BMP/TGA; dark = smoke)");
  app.add_flag("!--png-bright-is-smoke", o.scenario.png_invert,
               "with --target-png: bright pixels are smoke (default: dark pixels are)")
      ->needs(png);
  auto* h5 =
      app.add_option("--target-h5", o.scenario.target_h5, "target density from a dfluid HDF5 file");
  app.add_option("--target-dataset", o.scenario.target_dataset, "dataset in --target-h5")
      ->needs(h5);
  app.add_option("--target-step", o.scenario.target_step,
                 "snapshot step in --target-h5 (-1: the last)")
      ->needs(h5);
  png->excludes(h5);
  shape->excludes(png)->excludes(h5);
  app.add_option("--blob-radius", o.scenario.blob_radius,
                 "radius of the initial smoke blob in cells (0: as much smoke as the target holds)")
      ->check(app::FiniteRange(0.0, 1e4));
  app.add_option("--steps", o.steps, "simulation steps (0: 64 in 2D, 100 in 3D)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--dt", o.dt, "time step")->check(app::FinitePositive());
  app.add_option("--keyframes", o.keyframes,
                 "steps at which the smoke should match the target (default: the last step)")
      ->check(CLI::Range(1, 1000000000));
  app.add_option("--control-interval", o.control_interval,
                 "steps each control force field is held for (0: 8, or --steps when fewer)")
      ->check(CLI::Range(0, 1000000));
  app.add_flag("--optimize-velocity", o.optimize_velocity, "also optimize the initial velocity");
  app.add_option("--effort", o.effort, "weight of the control-effort penalty 1/2 sum |f|^2")
      ->check(app::FiniteRange(0.0, 1e12));
  app.add_option("--control-smoothing", o.smoothing,
                 "spatial smoothness of the control forces: Gaussian radius in cells (0: none)")
      ->check(app::FiniteRange(0.0, 1000.0));
  app.add_option("--optimizer", o.optimizer, "lbfgs, adam or gd")
      ->check(CLI::IsMember({"lbfgs", "adam", "gd"}));
  app.add_option("--iterations", o.iterations, "optimizer iterations (0: 30 in 2D, 20 in 3D)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--learning-rate", o.learning_rate,
                 "gd/adam step size; lbfgs: length of the first step (0: 1 for lbfgs and gd, "
                 "1e-3 for adam)")
      ->check(app::FiniteRange(0.0, 1e12));
  app.add_option("--lbfgs-history", o.lbfgs_history, "L-BFGS correction pairs")
      ->check(CLI::Range(1, 100));
  app.add_option("--tolerance", o.tolerance, "relative residual of the pressure solves")
      ->check(app::FiniteRange(1e-14, 1.0));
  app.add_option("--target-error", o.target_error,
                 "stop early once the relative keyframe error is at most this (0: never)")
      ->check(app::FiniteRange(0.0, 10.0));
  auto* budget = app.add_option("--memory-budget", o.memory_budget,
                                "device memory the backward pass may use, in bytes (suffixes: "
                                "KiB, MiB, GiB, kB, MB, GB); 0: keep every state")
                     ->transform(CLI::AsSizeValue(true))
                     ->transform(app::NonNegativeSize());  // runs first: transforms go in front
  app.add_option("--host-budget", o.host_budget,
                 "pinned host memory for checkpoints, in bytes (with --memory-budget)")
      ->transform(CLI::AsSizeValue(true))
      ->transform(app::NonNegativeSize())
      ->needs(budget);
  app.add_flag("--dry-run", o.dry_run,
               "print the setup and the checkpoint plan, then exit without simulating");
  app.add_option("--frames", o.frames, "PNG frames of the optimized run (besides keyframes)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--h5-interval", o.h5_interval,
                 "steps between HDF5 snapshots of the optimized run (0: steps/16; keyframes and "
                 "the last step are always written)")
      ->check(CLI::Range(0, 1000000));
  app::add_stop_after_option(
      app, o.stop_after,
      "act as if Ctrl-C arrived after this many iterations (for testing --resume)");
  if (auto code = app::parse_command_line(app, argc, argv, kName)) return *code;
  return app::run_guarded(
      kName, [&] { return o.common.precision == "float" ? run<float>(o) : run<double>(o); });
}
