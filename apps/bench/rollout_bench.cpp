// The runs of dfluid-bench's rollout-gradient mode (see rollout_bench.hpp).
#include "rollout_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "common.hpp"
#include "rollout_problem.hpp"

namespace dfluid::bench {

namespace ck = dfluid::checkpoint;

namespace {

double seconds_of(const Context& ctx, const std::function<void()>& f) {
  ctx.synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  ctx.synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::size_t counted_bytes(const Context& ctx, const MemoryStats& s) {
  return ctx.on_gpu() ? s.device_bytes : s.host_bytes;
}
std::size_t counted_peak(const Context& ctx, const MemoryStats& s) {
  return ctx.on_gpu() ? s.device_peak : s.host_peak;
}

std::string mib(std::size_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MiB", double(bytes) / (1 << 20));
  return s;
}

bool same_bits(double a, double b) {
  std::uint64_t x, y;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

/// Adjoint/forward time of one step at a state a few steps in (for the cost model); also
/// warms the Simulation up (its adjoint scratch, the context's temporaries).
template <class T>
double adjoint_step_ratio(const Context& ctx, Simulation<T>& sim, const RolloutProblem<T>& p,
                          int repeats) {
  SmokeState<T> st(ctx, p.grid);
  copy(ctx, p.initial.scalars[0], st.scalars[0]);
  for (int k = 0; k < 2; ++k)
    sim.step(st, p.controls[0]);
  SmokeState<T> input(ctx, p.grid);
  copy(ctx, st.velocity, input.velocity);
  copy(ctx, st.scalars[0], input.scalars[0]);
  copy(ctx, st.pressure, input.pressure);
  const double fwd_ms = median_ms(ctx, repeats, [&] {
    copy(ctx, input.velocity, st.velocity);
    copy(ctx, input.scalars[0], st.scalars[0]);
    copy(ctx, input.pressure, st.pressure);
    sim.step(st, p.controls[0]);
  });
  SmokeGradient<T> grad(ctx, p.grid, 1);
  MacVelocity<T> grad_force(ctx, p.grid);
  StepControlGradient<T> cg;
  cg.force = &grad_force;
  double grad_buoyancy = 0;
  const double adj_ms = median_ms(ctx, repeats, [&] {
    fill(ctx, grad.velocity, T(1e-3));
    fill(ctx, grad.scalars[0], T(1e-3));
    sim.step_adjoint(input, p.controls[0], grad, &cg, &grad_buoyancy);
  });
  return fwd_ms > 0 ? adj_ms / fwd_ms : 0;
}

}  // namespace

const char* memory_counter_name(const Context& ctx) {
  return ctx.on_gpu() ? "device_peak" : "host_peak";
}

template <class T>
RolloutCase bench_rollout(const Context& parent, const std::string& size, int steps,
                          const RolloutBenchOptions& options, double copy_gbps) {
  // A context of its own, so that the temporaries it keeps are counted in this case.
  const Context ctx = Context::create(parent.device(), parent.cuda_device());
  const Grid g = parse_size(size);
  RolloutCase c;
  c.size = size;
  c.steps = steps;

  std::fprintf(stderr, "dfluid-bench: %s, %d steps: forward\n", size.c_str(), steps);
  RolloutProblem<T> problem(ctx, g, steps);
  ctx.synchronize();
  const std::size_t held_before = counted_bytes(ctx, memory_stats());

  Simulation<T> sim(ctx, g, bench_config());
  Rollout<T> rollout(sim);
  c.adjoint_step_ratio = adjoint_step_ratio(ctx, sim, problem, options.repeats);

  {  // forward only: N steps with the same controls
    SmokeState<T> st(ctx, g);
    copy(ctx, problem.initial.scalars[0], st.scalars[0]);
    c.forward_s = seconds_of(ctx, [&] {
      for (int k = 0; k < steps; ++k) {
        const SolveReport rep = sim.step(st, problem.controls[k]).pressure;
        c.pressure_iterations += rep.iterations;
        c.max_pressure_iterations = std::max(c.max_pressure_iterations, rep.iterations);
        if (!rep.converged) ++c.unconverged_solves;
      }
    });
  }

  RolloutOptions base;
  base.force_gradients = true;
  base.source_gradients = false;
  base.checkpointing.enabled = true;
  base.warm_adjoint_solves = c.warm_adjoint_solves = !options.cold_adjoint_solves;
  ck::CostModel& costs = base.checkpointing.costs;
  costs.step_seconds = std::max(c.forward_s / steps, 1e-9);
  costs.reverse_ratio = c.adjoint_step_ratio;
  c.copy_bandwidth = copy_gbps * 1e9 / 2;  // measured GB/s counts read + write
  if (c.copy_bandwidth > 0) costs.device_bandwidth = c.copy_bandwidth;
  if (!ctx.on_gpu() && c.copy_bandwidth > 0) costs.host_bandwidth = c.copy_bandwidth;

  const ck::StateSize size_info = rollout.state_size(problem.initial, steps, base, &c.output_bytes);
  c.state_bytes = size_info.state_bytes;
  c.working_bytes = size_info.working_bytes - c.output_bytes;
  c.device_budget = options.device_budget ? *options.device_budget
                    : ctx.on_gpu()        ? (std::size_t(2) << 30)
                                          : c.working_bytes + 4 * c.state_bytes;
  c.host_budget = options.host_budget ? *options.host_budget : ctx.on_gpu() ? 0 : 8 * c.state_bytes;

  for (const std::string& name : options.plans) {
    RolloutPlanResult r;
    r.name = name;
    RolloutOptions ro = base;
    ro.checkpointing.budget.device_bytes = c.device_budget + c.output_bytes;
    if (name == "store-all") {
      ro.checkpointing.strategy = ck::Strategy::StoreAll;
      const std::size_t states = std::size_t(std::max(1, steps - 1));
      const std::size_t need = c.working_bytes + states * c.state_bytes;
      if (need > c.device_budget) {
        r.note = "needs " + mib(need) + " (working " + mib(c.working_bytes) + " + " +
                 std::to_string(states) + " states of " + mib(c.state_bytes) + "), device budget " +
                 mib(c.device_budget);
      }
    } else if (name == "revolve") {
      ro.checkpointing.strategy = ck::Strategy::Revolve;
    } else {
      ro.checkpointing.strategy = ck::Strategy::MultiLevel;
      ro.checkpointing.budget.host_bytes = c.host_budget;
      if (c.host_budget == 0) r.note = "no host budget (--host-budget)";
    }
    if (r.note.empty() && c.device_budget < c.working_bytes + c.state_bytes) {
      r.note = "device budget " + mib(c.device_budget) + " is below the minimum of " +
               mib(c.working_bytes + c.state_bytes) + " (working " + mib(c.working_bytes) +
               " + one state of " + mib(c.state_bytes) + ")";
    }
    RolloutPlan plan;
    if (r.note.empty()) {
      try {
        plan = rollout.plan(problem.initial, steps, ro);
      } catch (const InvalidArgument& e) {
        r.note = e.what();
      }
    }
    if (!r.note.empty()) {
      c.plans.push_back(r);
      continue;
    }
    if (options.details) {
      std::printf("%s, %d steps, %s plan:\n%s", size.c_str(), steps, name.c_str(),
                  plan.describe().c_str());
    }
    r.kind = ck::to_string(plan.summary.kind);
    r.slots_device = plan.plan.slots.device;
    r.slots_host = plan.plan.slots.host;
    r.advances_planned = plan.summary.advances;
    r.predicted_ratio = plan.summary.time_ratio;
    r.predicted_device_bytes = plan.summary.peak_device_bytes;
    r.predicted_host_bytes = plan.summary.peak_host_bytes;
    // On the CPU path the host level is host memory like the device level.
    r.predicted_peak_bytes = r.predicted_device_bytes + (ctx.on_gpu() ? 0 : r.predicted_host_bytes);

    std::fprintf(stderr, "dfluid-bench: %s, %d steps: gradient, %s plan\n", size.c_str(), steps,
                 name.c_str());
    // The previous plan's stored states or slots go first: each plan's peak is its own.
    rollout.release_workspace();
    ctx.synchronize();
    reset_memory_peaks();
    r.held_before_bytes = held_before;
    RolloutResult<T> result;
    ctx.reset_counters();
    r.gradient_s = seconds_of(ctx, [&] {
      result = rollout.run(problem.initial, steps, problem.controls, problem.losses, ro);
    });
    r.counters = ctx.counters();
    r.peak_bytes = counted_peak(ctx, memory_stats());
    r.ratio = c.forward_s > 0 ? r.gradient_s / c.forward_s : 0;
    for (const StepReport& rep : result.adjoint_reports) {
      r.adjoint_pressure_iterations += rep.pressure.iterations;
      r.max_adjoint_pressure_iterations =
          std::max(r.max_adjoint_pressure_iterations, rep.pressure.iterations);
    }
    r.loss = result.loss;
    r.grad_buoyancy = result.grad_buoyancy;
    if (result.checkpointing) {
      const CheckpointRunStats& done = result.checkpointing->performed;
      r.advances_performed = done.advances;
      r.reverses_performed = done.reverses;
      for (int l = 0; l < ck::kLevelCount; ++l) {
        r.stores[l] = done.stores[l];
        r.restores[l] = done.restores[l];
      }
    }
    r.ran = true;
    c.plans.push_back(r);
  }

  const RolloutPlanResult* first = nullptr;
  for (const RolloutPlanResult& r : c.plans) {
    if (!r.ran) continue;
    ++c.compared;
    if (!first) {
      first = &r;
      continue;
    }
    c.losses_agree = c.losses_agree && same_bits(r.loss, first->loss);
    c.buoyancy_gradients_agree =
        c.buoyancy_gradients_agree && same_bits(r.grad_buoyancy, first->grad_buoyancy);
  }
  return c;
}

template RolloutCase bench_rollout<float>(const Context&, const std::string&, int,
                                          const RolloutBenchOptions&, double);
template RolloutCase bench_rollout<double>(const Context&, const std::string&, int,
                                           const RolloutBenchOptions&, double);

}  // namespace dfluid::bench
