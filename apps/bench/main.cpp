// dfluid-bench: per-operator and whole-step timings of the forward smoke step, and
// (--rollout, --rollout-steps) rollout-gradient timings under checkpoint plans.
//
// For each size: median time over --repeats runs after one warm-up (CUDA events on
// the GPU, a steady clock on the CPU), the estimated compulsory bytes each
// operator moves (every input read once, every output written once; for the
// projection and the whole step a model of the solver's passes, see
// projection_values_per_cell), the resulting bandwidth and its fraction of a plain
// copy measured in the same run, and the Poisson iterations of the projection. Prints a table;
// --json writes JSON.
// --io-steps times a run with and without HDF5 output; --rollout-steps times the
// gradient of an N-step rollout (rollout_bench.hpp); --cavity runs the lid-driven cavity
// against Ghia, Ghia & Shin (1982) (cavity.hpp); --cylinder the flow around a cylinder
// against Schäfer & Turek (1996) (cylinder.hpp).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/counters.hpp"
#include "common.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/forces.hpp"
#include "dfluid/simulation.hpp"
#include "cavity.hpp"
#include "cylinder.hpp"
#include "rollout_bench.hpp"

using namespace dfluid;
using bench::bench_config;
using bench::median_ms;
using bench::parse_size;
using bench::seed_smoke;

namespace {

struct Row {
  std::string size, op;
  double ms = 0, bytes = 0, gbps = 0, frac = 0;
  int iterations = -1;
};

/// Context::counters() of one warm step and one warm step adjoint of a size.
struct Counts {
  std::string size;
  ContextCounters step, adjoint;
};

/// The events of one call of f: the counters are reset first, so peak_bytes is the most the
/// context held during the call.
ContextCounters count_call(const Context& ctx, const std::function<void()>& f) {
  ctx.reset_counters();
  f();
  return ctx.counters();
}

/// The advection adjoints (the scatter-type kernels) and the step adjoint, each
/// with deterministic accumulation (the default) and with float atomics
/// (Accumulation::Atomic): the ratio is what determinism costs. Bytes: every
/// input read once, every accumulated gradient read and written once.
template <class T, class Add>
void bench_adjoints(Context ctx, const std::string& label, Simulation<T>& sim,
                    const SmokeState<T>& st, int repeats, Add& add) {
  const Grid& g = st.velocity.grid();
  const double cells = double(g.cells()), s = sizeof(T), d = g.dim;
  Field<T> gout(ctx, g, Location::Cell), gq(ctx, g, Location::Cell);
  MacVelocity<T> uout(ctx, g), gu(ctx, g);
  fill(ctx, gout, T(1e-3));
  fill(ctx, uout, T(1e-3));
  const AdvectionOptions sl{
      AdvectionScheme::SemiLagrangian, Backtrace::Euler, {}, true, {}, Interpolation::Linear};
  const AdvectionOptions mc{AdvectionScheme::MacCormack, Backtrace::Euler, {}, true, {},
                            Interpolation::Linear};
  SmokeGradient<T> grad(ctx, g, int(st.scalars.size()));
  const Accumulation before = ctx.accumulation();
  double det[4] = {0, 0, 0, 0};
  const char* names[4] = {"advect scalar SL adjoint", "advect scalar MacCormack adjoint",
                          "advect velocity SL adjoint", "step adjoint"};
  for (Accumulation acc : {Accumulation::Deterministic, Accumulation::Atomic}) {
    ctx.set_accumulation(acc);  // shared by every copy of ctx, restored below
    const bool atomic = acc == Accumulation::Atomic;
    const std::string tag = atomic ? " (float atomics)" : "";
    double ms[4];
    ms[0] = median_ms(ctx, repeats, [&] {
      advect_adjoint(ctx, st.scalars[0], st.velocity, 1.0, gout, gq, &gu, sl);
    });
    ms[1] = median_ms(ctx, repeats, [&] {
      advect_adjoint(ctx, st.scalars[0], st.velocity, 1.0, gout, gq, &gu, mc);
    });
    ms[2] = median_ms(ctx, repeats, [&] { advect_adjoint(ctx, st.velocity, 1.0, uout, gu, sl); });
    int its = 0;
    ms[3] = median_ms(ctx, repeats, [&] {
      fill(ctx, grad.velocity, T(1e-3));
      fill(ctx, grad.scalars[0], T(1e-3));
      its = sim.step_adjoint(st, {}, grad).pressure.iterations;
    });
    const double bytes[4] = {cells * s * (4 + 3 * d), cells * s * (13 + 7 * d),
                             cells * s * d * (4 + 3 * d), 0};
    for (int k = 0; k < 4; ++k) {
      if (atomic || k < 3) add(std::string(names[k]) + tag, ms[k], bytes[k], k == 3 ? its : -1);
      if (!atomic) det[k] = ms[k];
    }
    if (atomic) {
      std::printf("%s: determinism cost (deterministic / float-atomic time):", label.c_str());
      for (int k = 0; k < 4; ++k)
        std::printf(" %s %.2fx%s", names[k], det[k] / ms[k], k < 3 ? "," : "\n");
    }
  }
  ctx.set_accumulation(before);
  // Interpolation::Cubic (Catmull-Rom): the same compulsory bytes, 4^d taps per sample.
  AdvectionOptions sl_cubic = sl;
  sl_cubic.interpolation = Interpolation::Cubic;
  add("advect scalar SL adjoint cubic",
      median_ms(
          ctx, repeats,
          [&] { advect_adjoint(ctx, st.scalars[0], st.velocity, 1.0, gout, gq, &gu, sl_cubic); }),
      cells * s * (4 + 3 * d), -1);
}

/// Bytes a cold MGPCG projection (bench_config: closed box, no obstacles) moves, in units of
/// one value per cell: a documented model of the kernels in cuda/pressure, each pass reading
/// every array it needs once and writing each output once. `its` CG iterations, d dims, face
/// arrays counted as one value per cell, the int32 region labels as one value.
///   divergence 2d + 1 (faces, weights; rhs); gradient subtraction 3d + 1 (p, weights, faces
///   read and written); scaling the rhs d + 2; region-mean projection 5 (two passes over the
///   labels and the field); A x: d + 2 (x, d weights, out); red or black sweep d + 3 (both
///   colours stream whole rows); V-cycle per level: 2 + 2 symmetric sweeps of two colours
///   8 (d + 3), residual restriction d + 2, the first sweep after the coarse correction also
///   reading the correction 1 (prolongation is fused into it, the level needs no zero fill),
///   so 9d + 27, summed over
///   the levels (each 2^-d of the one above): 1 / (1 - 2^-d) of the finest; CG iteration:
///   A p, p.q 2, x/r update 6, V-cycle, region means 5, r.z 2, p update 3, r.r check 2;
///   before the loop a residual, a region projection, a V-cycle and two dots; after it a
///   rescale 2, a region projection and the true residual (A x, copy, axpy, projection, dot).
double projection_values_per_cell(int d, int its) {
  const double levels = 1.0 / (1.0 - std::ldexp(1.0, -d));
  const double apply = d + 2, vcycle = (9.0 * d + 27) * levels, project_null = 5;
  const double iteration = apply + 2 + 6 + vcycle + project_null + 2 + 3 + 2;
  const double before =
      (d + 2) + (apply + 2 + 3 + project_null + 2) + vcycle + project_null + 2 + 2;
  const double after = 2 + project_null + apply + 2 + 3 + project_null + 2;
  return (2.0 * d + 1) + (3.0 * d + 1) + before + its * iteration + after;
}

/// The whole step's bytes (bench_config's parts in order): the operator models of the rows
/// above (MacCormack scalar, semi-Lagrangian velocity, buoyancy) plus the projection model.
double step_values_per_cell(int d, int its) {
  return (3.0 * (2 + d) + 1) + d * (1.0 + d) + 3 + projection_values_per_cell(d, its);
}

template <class T>
void bench_size(const Context& ctx, const std::string& label, int repeats, double copy_gbps,
                std::vector<Row>& rows, std::vector<Counts>& counts) {
  const Grid g = parse_size(label);
  const double cells = double(g.cells()), s = sizeof(T), d = g.dim;
  const StepConfig cfg = bench_config();
  Simulation<T> sim(ctx, g, cfg);
  SmokeState<T> st(ctx, g);
  seed_smoke(ctx, st);
  for (int k = 0; k < 3; ++k)  // some velocity before timing
    sim.step(st);

  Field<T> out(ctx, g, Location::Cell), scratch(ctx, g, Location::Cell);
  MacVelocity<T> uout(ctx, g), uscratch(ctx, g);
  auto add = [&](const std::string& op, double ms, double bytes, int its = -1) {
    Row r{label, op, ms, bytes, bytes > 0 ? bytes / (ms * 1e-3) / 1e9 : 0, 0, its};
    r.frac = copy_gbps > 0 && bytes > 0 ? r.gbps / copy_gbps : 0;
    rows.push_back(r);
  };
  AdvectionOptions sl{
      AdvectionScheme::SemiLagrangian, Backtrace::Euler, {}, true, {}, Interpolation::Linear};
  AdvectionOptions mc{AdvectionScheme::MacCormack, Backtrace::Euler, {}, true, {},
                      Interpolation::Linear};
  add("advect scalar SL",
      median_ms(ctx, repeats,
                [&] { advect(ctx, st.scalars[0], st.velocity, 1.0, out, sl, &scratch); }),
      cells * s * (2 + d));
  add("advect scalar MacCormack",
      median_ms(ctx, repeats,
                [&] { advect(ctx, st.scalars[0], st.velocity, 1.0, out, mc, &scratch); }),
      cells * s * (3 * (2 + d) + 1));
  add("advect velocity SL",
      median_ms(ctx, repeats,
                [&] { advect(ctx, st.velocity, st.velocity, 1.0, uout, sl, &uscratch); }),
      cells * s * d * (1 + d));
  // Interpolation::Cubic (Catmull-Rom): the same compulsory bytes, 4^d taps per sample
  // (the velocity is sampled with it too).
  AdvectionOptions sl_cubic = sl;
  sl_cubic.interpolation = Interpolation::Cubic;
  add("advect scalar SL cubic",
      median_ms(ctx, repeats,
                [&] { advect(ctx, st.scalars[0], st.velocity, 1.0, out, sl_cubic, &scratch); }),
      cells * s * (2 + d));
  add("advect velocity SL cubic",
      median_ms(ctx, repeats,
                [&] { advect(ctx, st.velocity, st.velocity, 1.0, uout, sl_cubic, &uscratch); }),
      cells * s * d * (1 + d));
  add("buoyancy",
      median_ms(ctx, repeats, [&] { add_buoyancy(ctx, uout, st.scalars[0], T(0.1), T(1), 1); }),
      cells * s * 3);
  int its = 0;
  const double solve_ms = median_ms(ctx, repeats, [&] {
    copy(ctx, st.velocity, uout);
    SolverOptions o = cfg.pressure;
    o.warm_start = false;  // a cold solve: iterations from zero pressure
    its = sim.pressure_solver().project(ctx, uout, scratch, T(1), o).iterations;
  });
  add("projection (MGPCG 1e-4)", solve_ms, cells * s * projection_values_per_cell(g.dim, its), its);
  int step_its = 0;
  const double step_ms =
      median_ms(ctx, repeats, [&] { step_its = sim.step(st).pressure.iterations; });
  const double step_bytes = cells * s * step_values_per_cell(g.dim, step_its);
  add("whole step", step_ms, step_bytes, step_its);
  std::printf(
      "%s: whole step moves %.1f MB (model: %.0f bytes per cell); at %.1f GB/s copy bandwidth "
      "that takes %.2f ms; measured %.2f ms: %.0f%% of copy bandwidth\n",
      label.c_str(), step_bytes / 1e6, step_bytes / cells, copy_gbps,
      step_bytes / (copy_gbps * 1e9) * 1e3, step_ms, 100 * rows.back().frac);
  // Adjoint of the same step from the same input state (replays the forward
  // parts it needs, then runs the part adjoints in reverse), including its
  // adjoint pressure solve.
  SmokeGradient<T> grad(ctx, g, int(st.scalars.size()));
  int adj_its = 0;
  const double adj_ms = median_ms(ctx, repeats, [&] {
    fill(ctx, grad.velocity, T(1e-3));
    fill(ctx, grad.scalars[0], T(1e-3));
    adj_its = sim.step_adjoint(st, {}, grad).pressure.iterations;
  });
  add("step adjoint", adj_ms, 0, adj_its);
  // The same adjoint with the cotangent of a loss, 1/2 |u|^2 + 1/2 |q|^2 of the step's
  // output (grad = the output state): the uniform cotangent above has its divergence only
  // next to the walls, which the adjoint's cold pressure solve (it never starts warm, so
  // that a gradient does not depend on earlier calls) converges more slowly on than on a
  // loss's gradient.
  SmokeState<T> next(ctx, g);
  copy(ctx, st.velocity, next.velocity);
  copy(ctx, st.scalars[0], next.scalars[0]);
  copy(ctx, st.pressure, next.pressure);
  sim.step(next);
  int loss_its = 0;
  const double loss_ms = median_ms(ctx, repeats, [&] {
    copy(ctx, next.velocity, grad.velocity);
    copy(ctx, next.scalars[0], grad.scalars[0]);
    loss_its = sim.step_adjoint(st, {}, grad).pressure.iterations;
  });
  add("step adjoint (energy loss cotangent)", loss_ms, 0, loss_its);
  // The step adjoints of a backward pass as Rollout runs it: `repeats` + 1 consecutive steps
  // from st, the energy loss's cotangent at the last state, each adjoint solve warm-started
  // from the previous step adjoint's (Simulation::set_adjoint_warm_start; the first, cold,
  // is not timed). Median time a step and mean solver iterations.
  const int chain_steps = repeats + 1;
  std::vector<SmokeState<T>> chain;
  chain.reserve(std::size_t(chain_steps) + 1);
  auto copy_into = [&](const SmokeState<T>& from, SmokeState<T>& to) {
    copy(ctx, from.velocity, to.velocity);
    copy(ctx, from.scalars[0], to.scalars[0]);
    copy(ctx, from.pressure, to.pressure);
  };
  chain.emplace_back(ctx, g);
  copy_into(st, chain[0]);
  for (int k = 0; k < chain_steps; ++k) {
    chain.emplace_back(ctx, g);
    copy_into(chain[std::size_t(k)], chain[std::size_t(k) + 1]);
    sim.step(chain[std::size_t(k) + 1]);
  }
  copy(ctx, chain.back().velocity, grad.velocity);
  copy(ctx, chain.back().scalars[0], grad.scalars[0]);
  sim.set_adjoint_warm_start(true);
  std::vector<double> pass_ms;
  int pass_its = 0;
  for (int k = chain_steps - 1; k >= 0; --k) {
    ctx.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    const int its = sim.step_adjoint(chain[std::size_t(k)], {}, grad).pressure.iterations;
    ctx.synchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (k == chain_steps - 1) continue;  // the cold start
    pass_ms.push_back(ms);
    pass_its += its;
  }
  sim.set_adjoint_warm_start(false);
  std::sort(pass_ms.begin(), pass_ms.end());
  const double backward_ms = pass_ms[pass_ms.size() / 2];
  const double backward_its = double(pass_its) / double(pass_ms.size());
  add("step adjoint (backward pass, warm solves)", backward_ms, 0, int(std::lround(backward_its)));
  std::printf(
      "%s: adjoint/forward step time %.2f (uniform cotangent), %.2f (energy loss), %.2f (in a "
      "backward pass, warm solves: %.2f iterations a step)\n",
      label.c_str(), adj_ms / step_ms, loss_ms / step_ms, backward_ms / step_ms, backward_its);
  // What one more warm step and step adjoint cost the GPU (Context::counters(); on the CPU
  // path the events the CUDA path would perform).
  Counts c;
  c.size = label;
  c.step = count_call(ctx, [&] { sim.step(st); });
  fill(ctx, grad.velocity, T(1e-3));
  fill(ctx, grad.scalars[0], T(1e-3));
  c.adjoint = count_call(ctx, [&] { sim.step_adjoint(st, {}, grad); });
  counts.push_back(c);
  bench_adjoints<T>(ctx, label, sim, st, repeats, add);
}

// Output cost: the same run with and without an HDF5 snapshot (density,
// velocity, pressure) every `interval` steps. The writer copies fields and
// returns; file writes happen on its own thread.
template <class T>
void bench_io(const Context& ctx, const std::string& label, int steps, int interval,
              const std::string& path) {
  const Grid g = parse_size(label);
  const StepConfig cfg = bench_config();
  double seconds[2] = {0, 0};
  for (int with_io = 0; with_io < 2; ++with_io) {
    Simulation<T> sim(ctx, g, cfg);
    SmokeState<T> st(ctx, g);
    seed_smoke(ctx, st);
    sim.step(st);  // warm-up
    io::WriterOptions wo;
    wo.interval = interval;
    std::unique_ptr<io::SnapshotWriter> writer;
    if (with_io) writer = std::make_unique<io::SnapshotWriter>(path, g, wo);
    ctx.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 1; k <= steps; ++k) {
      sim.step(st);
      if (writer && writer->due(k)) {
        std::vector<io::NamedField> fields{{"density", st.scalars[0]},
                                           {"pressure", st.pressure, io::FieldKind::Pressure}};
        io::add_vector(fields, "velocity", st.velocity);
        writer->write(ctx, k, k * cfg.dt, cfg.dt, fields);
      }
    }
    if (writer) writer->close();  // includes the last file write
    ctx.synchronize();
    seconds[with_io] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf(
      "I/O %s, %d steps, snapshot every %d: %.3f s without output, %.3f s with, "
      "slowdown %.1f%%\n",
      label.c_str(), steps, interval, seconds[0], seconds[1], 100 * (seconds[1] / seconds[0] - 1));
}

/// The rollout-gradient mode: every size with every step count. Exit code 1 when the
/// plans' losses or buoyancy gradients differ, 2 when no plan could run for a case (a budget
/// too small, or every plan left out).
int run_rollouts(const Context& ctx, const std::string& precision, std::vector<std::string> sizes,
                 std::vector<int> steps, bench::RolloutBenchOptions options, int repeats,
                 const std::string& json) {
  if (sizes.empty()) sizes = {ctx.on_gpu() ? "128x128x128" : "32x32x32"};
  if (steps.empty()) steps = ctx.on_gpu() ? std::vector<int>{100, 1000} : std::vector<int>{20};
  std::vector<std::string> plans;  // in the order given, each once
  for (const auto& p : options.plans)
    if (std::find(plans.begin(), plans.end(), p) == plans.end()) plans.push_back(p);
  options.plans = plans;
  options.repeats = repeats;
  for (const auto& s : sizes)
    parse_size(s);  // bad sizes fail before anything runs
  const double copy_gbps = measure_copy_bandwidth(ctx, std::size_t(64) << 20, repeats);
  std::vector<bench::RolloutCase> cases;
  for (const auto& s : sizes) {
    for (int n : steps) {
      cases.push_back(precision == "float"
                          ? bench::bench_rollout<float>(ctx, s, n, options, copy_gbps)
                          : bench::bench_rollout<double>(ctx, s, n, options, copy_gbps));
    }
  }
  bench::print_rollouts(ctx, precision, cases);
  if (!json.empty()) {
    std::ofstream f(json);
    f << "{\n  \"device\": \"" << ctx.description() << "\",\n  \"precision\": \"" << precision
      << "\",\n  \"copy_gbps\": " << copy_gbps << ",\n  \"memory_counter\": \""
      << bench::memory_counter_name(ctx) << "\",\n  \"rollouts\": ";
    bench::write_rollouts_json(f, cases, 2);
    f << "\n}\n";
    if (!f) throw Error("--json: cannot write " + json);
  }
  for (const auto& c : cases) {
    if (!c.losses_agree || !c.buoyancy_gradients_agree) {
      std::fprintf(stderr, "dfluid-bench: error: the plans' results differ (%s, %d steps)\n",
                   c.size.c_str(), c.steps);
      return 1;
    }
  }
  for (const auto& c : cases) {
    if (c.compared == 0) {
      std::fprintf(stderr, "dfluid-bench: no plan ran for %s, %d steps (see the notes)\n",
                   c.size.c_str(), c.steps);
      return 2;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "auto", precision = "float", json;
  std::vector<std::string> sizes;
  int repeats = 5;
  CLI::App app{"dfluid-bench: forward operator and step timings"};
  app.option_defaults()->always_capture_default();
  app.add_option("--device", device, "where to run")->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  app.add_option("--precision", precision, "floating-point precision")
      ->check(CLI::IsMember({"float", "double"}));
  app.add_option("--sizes", sizes,
                 "grid sizes, e.g. 256x256 64x64x64 (default: 256x256 1024x1024 64x64x64 "
                 "128x128x128 256x256x256 on a GPU; 256x256 64x64x64 on the CPU)");
  app.add_option("--repeats", repeats, "timed runs per measurement (median)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--json", json, "also write the results as JSON to this file");
  int io_steps = 0, io_interval = 10;
  std::string io_path = "dfluid-bench-io.h5";
  app.add_option("--io-steps", io_steps,
                 "instead of operator timings: time this many steps with and without HDF5 "
                 "output (first --sizes entry)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--io-interval", io_interval, "steps between snapshots for --io-steps")
      ->check(CLI::Range(1, 100000));
  app.add_option("--io-file", io_path, "snapshot file for --io-steps");
  bool rollout = false;
  std::vector<int> rollout_steps;
  std::size_t device_budget = 0, host_budget = 0;
  bench::RolloutBenchOptions ro;
  app.add_flag("--rollout", rollout,
               "instead of operator timings: time rollout gradients under checkpoint plans "
               "(default steps: 100 and 1000 on a GPU, 20 on the CPU; default size: 128x128x128 "
               "on a GPU, 32x32x32 on the CPU)");
  app.add_option("--rollout-steps", rollout_steps,
                 "rollout lengths for the gradient timings (implies --rollout)")
      ->check(CLI::Range(1, 1000000));
  auto* device_budget_opt =
      app.add_option("--device-budget", device_budget,
                     "rollout mode: device memory for checkpoints and the backward pass's working "
                     "memory, the force gradients not included (suffixes KiB, MiB, GiB, kB, MB, "
                     "GB; default 2GiB on a GPU, working memory + 4 states on the CPU)")
          ->transform(CLI::AsSizeValue(true))
          ->transform(dfluid::app::NonNegativeSize())  // runs first: refuses "-5"
          ->default_str("auto");
  auto* host_budget_opt =
      app.add_option("--host-budget", host_budget,
                     "rollout mode: pinned host memory for the multi-level plan's checkpoints "
                     "(default 0 on a GPU: no multi-level plan; 8 states on the CPU)")
          ->transform(CLI::AsSizeValue(true))
          ->transform(dfluid::app::NonNegativeSize())  // runs first: refuses "-5"
          ->default_str("auto");
  app.add_option("--plans", ro.plans, "rollout mode: plans to run (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"store-all", "revolve", "multi-level"}));
  app.add_flag("--plan-details", ro.details, "rollout mode: print each plan's report");
  app.add_flag("--cold-adjoint-solves", ro.cold_adjoint_solves,
               "rollout mode: start every step adjoint's pressure solve from zero instead of "
               "from the previous step adjoint's solution (the default)");
  bool cavity = false;
  bench::CavityOptions co;
  app.add_flag("--cavity", cavity,
               "instead of operator timings: the lid-driven cavity (no-slip walls, moving lid) "
               "to its steady state, against Ghia et al. (1982), in double");
  app.add_option("--cavity-sizes", co.sizes, "cavity mode: cells per side")
      ->check(CLI::Range(8, 4096));
  app.add_option("--cavity-re", co.reynolds, "cavity mode: Reynolds numbers (100, 400, 1000)")
      ->check(CLI::IsMember({100, 400, 1000}));
  app.add_option("--cavity-courant", co.courant, "cavity mode: dt = courant * dx / lid speed")
      ->check(CLI::Range(0.05, 4.0));
  app.add_option("--cavity-time", co.max_time,
                 "cavity mode: the longest simulated time (0: 40 + Re/10; stops earlier once "
                 "steady)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--cavity-check", co.check,
                 "cavity mode: exit with status 3 when a deviation exceeds this (lid speeds)");
  bool cylinder = false;
  bench::CylinderOptions cyl;
  app.add_flag("--cylinder", cylinder,
               "instead of operator timings: the flow around a cylinder (Schaefer & Turek 1996, "
               "case 2D-1, Re = 20) to its steady state: c_D, c_L and dp against the published "
               "bounds, in double (--cylinder-case 2D-2: Re = 100, periodic shedding)");
  app.add_option("--cylinder-case", cyl.case_name,
                 "cylinder mode: 2D-1 (Re = 20, steady: c_D, c_L, dp) or 2D-2 (Re = 100, "
                 "periodic: c_Dmax, c_Lmax, St, dp)")
      ->check(CLI::IsMember({"2D-1", "2D-2"}));
  app.add_flag("--cylinder-convective", cyl.convective_outflow,
               "cylinder mode: a convective outflow side (U_c = the mean inflow velocity) "
               "instead of the zero-gradient, p = 0 one");
  app.add_flag("--cylinder-incremental", cyl.incremental_pressure,
               "cylinder mode: the incremental pressure correction (the viscous step sees the "
               "last pressure; steady states do not depend on dt)");
  std::string cylinder_surface = "staircase";
  app.add_option("--cylinder-surface", cylinder_surface,
                 "cylinder mode: 'staircase' (solid cells) or 'fractions' (face open fractions "
                 "and the no-slip wall at its true distance: ghost fluid)")
      ->check(CLI::IsMember({"staircase", "fractions"}));
  app.add_option("--cylinder-sizes", cyl.sizes,
                 "cylinder mode: cells across the channel (h = 0.41 / n)")
      ->check(CLI::Range(10, 4096));
  app.add_option("--cylinder-courant", cyl.courant, "cylinder mode: dt = courant * h / Um")
      ->check(CLI::Range(0.05, 4.0));
  app.add_option("--cylinder-time", cyl.max_time,
                 "cylinder mode: the longest simulated time (0: 30; stops earlier once steady "
                 "or periodic)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--cylinder-check", cyl.check,
                 "cylinder mode: exit with status 3 when, in 2D-1, |c_D - 5.58| exceeds this; "
                 "in 2D-2, when the shedding is not periodic by the time cap or St lies further "
                 "than this from its bounds");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfluid-bench: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    Context ctx = Context::create(parse_device(device));
    if (cavity) return bench::run_cavity(ctx, co);
    cyl.face_fractions = cylinder_surface == "fractions";
    if (cylinder) return bench::run_cylinder(ctx, cyl);
    if (rollout || !rollout_steps.empty()) {
      if (device_budget_opt->count() > 0) ro.device_budget = device_budget;
      if (host_budget_opt->count() > 0) ro.host_budget = host_budget;
      return run_rollouts(ctx, precision, sizes, rollout_steps, ro, repeats, json);
    }
    if (sizes.empty())
      sizes = ctx.on_gpu() ? std::vector<std::string>{"256x256", "1024x1024", "64x64x64",
                                                      "128x128x128", "256x256x256"}
                           : std::vector<std::string>{"256x256", "64x64x64"};
    if (io_steps > 0) {
      if (precision == "float")
        bench_io<float>(ctx, sizes[0], io_steps, io_interval, io_path);
      else
        bench_io<double>(ctx, sizes[0], io_steps, io_interval, io_path);
      return 0;
    }
    const double copy_gbps = measure_copy_bandwidth(ctx, std::size_t(256) << 20, repeats);
    std::vector<Row> rows;
    std::vector<Counts> counts;
    for (const auto& s : sizes) {
      if (precision == "float")
        bench_size<float>(ctx, s, repeats, copy_gbps, rows, counts);
      else
        bench_size<double>(ctx, s, repeats, copy_gbps, rows, counts);
    }
    std::printf("dfluid-bench on %s, %s, copy bandwidth %.1f GB/s (read+write)\n",
                ctx.description().c_str(), precision.c_str(), copy_gbps);
    std::printf("%-13s %-44s %10s %10s %8s %7s\n", "size", "operator", "ms", "GB/s", "of copy",
                "iters");
    for (const Row& r : rows)
      std::printf("%-13s %-44s %10.3f %10.1f %7.0f%% %7s\n", r.size.c_str(), r.op.c_str(), r.ms,
                  r.gbps, 100 * r.frac,
                  r.iterations >= 0 ? std::to_string(r.iterations).c_str() : "");
    std::printf("events per warm call (Context::counters()%s):\n",
                ctx.on_gpu() ? "" : "; CPU path: what the GPU path would perform");
    for (const Counts& c : counts) {
      std::printf("%-13s whole step:   %s\n", c.size.c_str(), app::counters_text(c.step).c_str());
      std::printf("%-13s step adjoint: %s\n", c.size.c_str(),
                  app::counters_text(c.adjoint).c_str());
    }
    if (!json.empty()) {
      std::ofstream f(json);
      f << "{\n  \"device\": \"" << ctx.description() << "\",\n  \"precision\": \"" << precision
        << "\",\n  \"copy_gbps\": " << copy_gbps
        << ",\n  \"bytes_model\": \"each pass reads its inputs once and writes its outputs "
           "once; projection and whole step: projection_values_per_cell in apps/bench/main.cpp\""
        << ",\n  \"results\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        f << "    {\"size\": \"" << r.size << "\", \"operator\": \"" << r.op
          << "\", \"ms\": " << r.ms << ", \"bytes\": " << r.bytes << ", \"gbps\": " << r.gbps
          << ", \"fraction_of_copy\": " << r.frac << ", \"iterations\": " << r.iterations << "}"
          << (i + 1 < rows.size() ? ",\n" : "\n");
      }
      f << "  ],\n  \"counters\": [\n";
      for (std::size_t i = 0; i < counts.size(); ++i)
        f << "    {\"size\": \"" << counts[i].size
          << "\", \"step\": " << app::counters_json(counts[i].step).dump()
          << ", \"step_adjoint\": " << app::counters_json(counts[i].adjoint).dump() << "}"
          << (i + 1 < counts.size() ? ",\n" : "\n");
      f << "  ]\n}\n";
      if (!f) throw Error("--json: cannot write " + json);
    }
    return 0;
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "dfluid-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dfluid-bench: error: %s\n", e.what());
    return 1;
  }
}
