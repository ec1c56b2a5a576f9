// dfluid-bench's rollout-gradient mode (--rollout, --rollout-steps).
//
// For each size and step count: the forward-only time (Simulation::step N times), then
// the gradient (Rollout::run with force gradients for every step) under each checkpoint
// plan asked for, timed with the context synchronized before and after:
//   store-all    Strategy::StoreAll through the checkpoint driver; skipped with a note
//                when working memory + N-1 states do not fit the device budget.
//   revolve      single-level binomial checkpointing in the device budget.
//   multi-level  device slots + pinned host slots (Strategy::MultiLevel); skipped when the
//                host budget is 0.
// Per plan: slots, planned and performed advances, gradient time and its ratio to the
// forward time, the plan's predicted ratio (cost model: the measured step time, the
// measured adjoint/forward ratio of one step, the measured copy bandwidth), and the peak
// of the memory counter during the gradient (memory_stats(): device_peak on a GPU,
// host_peak on the CPU path, where every level lives in host memory). Afterwards the
// losses (and buoyancy gradients) of the plans that ran are compared bitwise.
//
// Budgets: the device budget covers the checkpoint slots and the backward pass's working
// memory; the gradient outputs (one face field per step) come on top of it, since every
// plan returns them. The planner is handed device budget + output bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

struct RolloutBenchOptions {
  std::vector<std::string> plans{"store-all", "revolve", "multi-level"};
  std::optional<std::size_t>
      device_budget;                       ///< unset: 2 GiB on a GPU, working + 4 states on the CPU
  std::optional<std::size_t> host_budget;  ///< unset: 0 on a GPU, 8 states on the CPU
  bool details = false;                    ///< print each plan's describe()
  /// RolloutOptions::warm_adjoint_solves off: every step adjoint's pressure solve from zero
  /// (--cold-adjoint-solves; for comparing the backward pass's cost with and without).
  bool cold_adjoint_solves = false;
  int repeats = 5;  ///< timed runs of one step and one adjoint step (median, cost model)
};

struct RolloutPlanResult {
  std::string name;  ///< store-all, revolve, multi-level
  bool ran = false;
  std::string note;  ///< why it was skipped
  std::string kind;  ///< the plan kind the planner built
  std::int64_t slots_device = 0, slots_host = 0;
  std::int64_t advances_planned = 0, advances_performed = 0;
  std::int64_t reverses_performed = 0;
  std::int64_t stores[3] = {0, 0, 0}, restores[3] = {0, 0, 0};  ///< performed, per level
  double gradient_s = 0;
  std::int64_t adjoint_pressure_iterations = 0;  ///< summed over the adjoint steps
  int max_adjoint_pressure_iterations = 0;
  double ratio = 0;                      ///< gradient_s / forward_s
  double predicted_ratio = 0;            ///< summary.time_ratio
  std::size_t peak_bytes = 0;            ///< the memory counter's peak during the gradient
  std::size_t held_before_bytes = 0;     ///< held before the Simulation was made (the inputs)
  std::size_t predicted_peak_bytes = 0;  ///< the plan's peak in the counted memory space
  std::size_t predicted_device_bytes = 0, predicted_host_bytes = 0;
  double loss = 0;
  double grad_buoyancy = 0;
  ContextCounters counters;  ///< the gradient evaluation's events (Context::counters())
};

struct RolloutCase {
  bool warm_adjoint_solves = true;  ///< RolloutOptions::warm_adjoint_solves of its gradients
  std::string size;
  int steps = 0;
  double forward_s = 0;
  std::int64_t pressure_iterations = 0;  ///< summed over the forward-only run
  int max_pressure_iterations = 0;
  int unconverged_solves = 0;     ///< forward-only run
  double adjoint_step_ratio = 0;  ///< one adjoint step / one forward step (cost model)
  double copy_bandwidth = 0;      ///< bytes/s of one copy (cost model)
  std::size_t state_bytes = 0, working_bytes = 0, output_bytes = 0;
  std::size_t device_budget = 0, host_budget = 0;  ///< outputs not included
  std::vector<RolloutPlanResult> plans;
  int compared = 0;          ///< plans that ran
  bool losses_agree = true;  ///< bitwise, among the plans that ran
  bool buoyancy_gradients_agree = true;
};

/// Runs one size and step count (`copy_gbps`: measure_copy_bandwidth's figure).
template <class T>
RolloutCase bench_rollout(const Context& ctx, const std::string& size, int steps,
                          const RolloutBenchOptions& options, double copy_gbps);

/// The table (and the notes) on stdout.
void print_rollouts(const Context& ctx, const std::string& precision,
                    const std::vector<RolloutCase>& cases);

/// The JSON value of the "rollouts" key (an array), indented by `indent` spaces.
void write_rollouts_json(std::ostream& out, const std::vector<RolloutCase>& cases, int indent);

/// "device_peak" on a GPU, "host_peak" on the CPU path.
const char* memory_counter_name(const Context& ctx);

}  // namespace dfluid::bench
