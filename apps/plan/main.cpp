// dfluid-plan: the checkpoint plan for reversing an N-step rollout, as a dry run.
//
//   dfluid-plan --steps 1000 --slots 10
//   dfluid-plan --steps 1000 --device-bytes 2GB --state-bytes 34MB --host-bytes 64GB
//   dfluid-plan --steps 100 --device-bytes 2GiB --grid 128x128x128
//
// Prints the plan summary ("key: value" lines, the advance count as "advances: K") and, with
// --actions, the action list. With --grid the state and working bytes are those of the
// library's smoke rollout on that grid (Rollout<T>::estimate_size: every buffer and temporary
// a checkpointed gradient holds, as a GPU holds it), and the report ends with the terms of the
// working memory and the estimated peak against the device budget. Bad flags or values: one
// line on stderr, exit code 2.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "dfluid/checkpoint.hpp"
#include "dfluid/error.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/rollout.hpp"

namespace ck = dfluid::checkpoint;

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "dfluid-plan: error: %s\n", message.c_str());
  return 2;
}

/// The most steps `request` (its slots and strategy) may have within kMaxPlanActions: the
/// bound of max_plan_actions() grows with the step count, so bisect on it.
std::int64_t max_steps(ck::PlanRequest request) {
  std::int64_t lo = 1, hi = ck::kMaxPlanActions;  // every step costs at least one action
  while (lo < hi) {
    request.steps = hi - (hi - lo) / 2;
    if (ck::max_plan_actions(request) <= ck::kMaxPlanActions)
      lo = request.steps;
    else
      hi = request.steps - 1;
  }
  return lo;
}

/// "NXxNY" or "NXxNYxNZ" (cells per axis, each 1 or more) as a grid with closed walls and
/// cell size 1; false when `text` is not of that form.
bool parse_grid(const std::string& text, dfluid::Grid& g) {
  std::vector<int> n;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t x = text.find('x', pos);
    const std::string part = text.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    if (part.empty() || part.size() > 6 ||
        part.find_first_not_of("0123456789") != std::string::npos)
      return false;
    n.push_back(std::stoi(part));
    if (n.back() < 1) return false;
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  if (n.size() == 2)
    g = dfluid::Grid::make_2d(n[0], n[1], 1.0);
  else if (n.size() == 3)
    g = dfluid::Grid::make_3d(n[0], n[1], n[2], 1.0);
  else
    return false;
  return true;
}

/// The rollout's memory on `g` (the default StepConfig: MacCormack smoke, semi-Lagrangian
/// velocity, MGPCG projection), as Rollout<T>::plan() measures it.
template <class T>
ck::StateSize rollout_size(const dfluid::Grid& g, int scalars, std::int64_t steps,
                           const std::string& outputs, dfluid::RolloutMemory& parts) {
  dfluid::RolloutOptions o;
  o.force_gradients = outputs != "none";
  o.source_gradients = outputs == "force+source";
  return dfluid::Rollout<T>::estimate_size(dfluid::Context::cpu(), g, dfluid::StepConfig{}, scalars,
                                           static_cast<int>(steps), o, &parts);
}

std::string bytes_text(std::size_t b) {
  return std::to_string(b) + " bytes (" + dfluid::format_bytes(b) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfluid-plan: checkpoint plan for reversing an N-step rollout (dry run)"};
  std::int64_t steps = 0;
  std::int64_t slots = 0, host_slots = 0, disk_slots = 0;
  std::uint64_t device_bytes = 0, host_bytes = 0, disk_bytes = 0;
  std::uint64_t state_bytes = 0, working_bytes = 0;
  ck::CostModel costs;
  bool print_actions = false;

  app.add_option("--steps", steps, "number of time steps n to reverse")->required();
  auto* slots_opt =
      app.add_option("--slots", slots, "device checkpoint slots (initial state included)");
  // Byte counts: NonNegativeSize runs before AsSizeValue (a transform added later runs
  // first), because AsSizeValue would wrap "-5" to 2^64 − 5.
  auto size_option = [&app](const char* name, std::uint64_t& value, const char* help) {
    return app.add_option(name, value, help)
        ->transform(CLI::AsSizeValue(true))
        ->transform(dfluid::app::NonNegativeSize());
  };
  auto* device_opt = size_option("--device-bytes", device_bytes,
                                 "device memory for the backward pass (needs --state-bytes)");
  slots_opt->excludes(device_opt);
  auto* host_opt = size_option("--host-bytes", host_bytes, "pinned host memory for checkpoints");
  auto* host_slots_opt = app.add_option("--host-slots", host_slots, "pinned host checkpoint slots");
  host_slots_opt->excludes(host_opt);
  auto* disk_opt = size_option("--disk-bytes", disk_bytes, "disk space for checkpoints");
  app.add_option("--disk-slots", disk_slots, "disk checkpoint slots")->excludes(disk_opt);
  auto* state_opt = size_option("--state-bytes", state_bytes, "bytes of one simulation state");
  auto* working_opt = size_option("--working-bytes", working_bytes,
                                  "device memory one step needs besides the slots (default 0)");
  std::string grid_text, precision = "float", outputs = "none";
  int scalars = 1;
  auto* grid_opt = app.add_option("--grid", grid_text,
                                  "NXxNY or NXxNYxNZ: state and working bytes of the library's "
                                  "smoke rollout on that grid (instead of --state-bytes)");
  grid_opt->excludes(state_opt)->excludes(working_opt);
  app.add_option("--precision", precision, "with --grid: float or double (default float)")
      ->check(CLI::IsMember({"float", "double"}));
  app.add_option("--scalars", scalars, "with --grid: advected scalars (default 1)")
      ->check(CLI::Range(0, 64));
  app.add_option("--gradient-outputs", outputs,
                 "with --grid: per-step gradients the rollout returns: none, force or "
                 "force+source (default none)")
      ->check(CLI::IsMember({"none", "force", "force+source"}));
  // Cost model: finite and > 0 (CLI's own number checks let NaN and Inf through).
  app.add_option("--step-time", costs.step_seconds, "seconds per forward step (default 5e-3)")
      ->check(dfluid::app::FinitePositive());
  app.add_option("--reverse-ratio", costs.reverse_ratio,
                 "adjoint step time / forward step time (default 2.5)")
      ->check(dfluid::app::FinitePositive());
  app.add_option("--copy-bandwidth", costs.host_bandwidth,
                 "device<->pinned host bytes per second (default 2e10)")
      ->check(dfluid::app::FinitePositive());
  app.add_option("--device-bandwidth", costs.device_bandwidth,
                 "device-to-device copy bytes per second (default 1.5e12)")
      ->check(dfluid::app::FinitePositive());
  app.add_option("--disk-bandwidth", costs.disk_bandwidth,
                 "device<->disk bytes per second (default 2e9)")
      ->check(dfluid::app::FinitePositive());
  std::string strategy_name = "auto";
  const std::map<std::string, ck::Strategy> strategies{
      {"auto", ck::Strategy::Auto},
      {"store-all", ck::Strategy::StoreAll},
      {"recompute", ck::Strategy::RecomputeFromStart},
      {"revolve", ck::Strategy::Revolve},
      {"multi-level", ck::Strategy::MultiLevel}};
  app.add_option("--strategy", strategy_name, "auto, store-all, recompute, revolve or multi-level")
      ->check(CLI::IsMember({"auto", "store-all", "recompute", "revolve", "multi-level"}));
  app.add_flag("--actions", print_actions, "print the action list after the summary");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return fail(e.what());
  }

  try {
    if (steps < 1) return fail("--steps must be >= 1, got " + std::to_string(steps));
    const bool by_slots = slots_opt->count() > 0;
    const bool by_bytes = device_opt->count() > 0;
    if (!by_slots && !by_bytes)
      return fail("give --slots S or --device-bytes B with --state-bytes");
    const bool by_grid = grid_opt->count() > 0;
    dfluid::RolloutMemory parts;
    if (by_grid) {
      dfluid::Grid g;
      if (!parse_grid(grid_text, g)) {
        return fail("--grid " + dfluid::app::shorten(grid_text) +
                    ": use NXxNY or NXxNYxNZ, e.g. 128x128x128");
      }
      if (steps > 1'000'000'000) return fail("--steps with --grid: at most 1000000000");
      const ck::StateSize size = precision == "double"
                                     ? rollout_size<double>(g, scalars, steps, outputs, parts)
                                     : rollout_size<float>(g, scalars, steps, outputs, parts);
      state_bytes = size.state_bytes;
      working_bytes = size.working_bytes;
    }
    const bool have_state = state_opt->count() > 0 || by_grid;
    if (have_state && state_bytes == 0) return fail("--state-bytes must be > 0");
    if (!have_state && (by_bytes || host_opt->count() > 0 || disk_opt->count() > 0)) {
      return fail("--device-bytes, --host-bytes and --disk-bytes need --state-bytes or --grid");
    }
    if (by_slots && slots < 1) {
      return fail("--slots must be >= 1 (one slot holds the initial state), got " +
                  std::to_string(slots));
    }
    if (host_slots < 0) return fail("--host-slots must be >= 0, got " + std::to_string(host_slots));
    if (disk_slots < 0) return fail("--disk-slots must be >= 0, got " + std::to_string(disk_slots));

    ck::PlanRequest request;
    request.steps = steps;
    request.size = ck::StateSize{static_cast<std::size_t>(state_bytes),
                                 static_cast<std::size_t>(working_bytes)};
    request.costs = costs;
    request.strategy = strategies.at(strategy_name);
    if (by_bytes || have_state) {
      ck::MemoryBudget budget;
      budget.device_bytes = static_cast<std::size_t>(device_bytes);
      budget.host_bytes = static_cast<std::size_t>(host_bytes);
      budget.disk_bytes = static_cast<std::size_t>(disk_bytes);
      if (by_slots) budget.device_bytes = ck::minimum_device_bytes(request.size);
      request.slots = ck::slots_from_budget(budget, request.size);
    }
    if (by_slots) request.slots.device = slots;
    request.slots.host += host_slots;
    request.slots.disk += disk_slots;

    // make_plan() would refuse this too, before allocating; here the message names --steps
    // and the most steps these slots allow.
    if (const std::int64_t bound = ck::max_plan_actions(request); bound > ck::kMaxPlanActions) {
      return fail("--steps " + std::to_string(steps) +
                  ": too many steps for one plan (its action list could hold up to " +
                  std::to_string(bound) + " actions, the limit is " +
                  std::to_string(ck::kMaxPlanActions) + "): at most " +
                  std::to_string(max_steps(request)) + " steps with these slots");
    }
    const ck::Plan plan = ck::make_plan(request);
    const ck::PlanSummary summary = ck::summarize(plan);
    std::cout << "# dfluid-plan: dry run, nothing simulated\n" << ck::describe(summary, plan);
    if (by_grid) {
      std::cout << "grid: " << grid_text << ", " << precision << ", " << scalars
                << " scalar(s), gradient outputs " << outputs << "\n"
                << "state: " << bytes_text(state_bytes) << "\n"
                << "working memory: " << bytes_text(working_bytes) << "\n"
                << "  simulation workspace: " << bytes_text(parts.simulation.workspace) << "\n"
                << "  step adjoint: " << bytes_text(parts.simulation.adjoint) << "\n"
                << "  pool of temporaries (in the two above): " << bytes_text(parts.simulation.pool)
                << "\n"
                << "  rollout workspace: " << bytes_text(parts.rollout + parts.reduction_scratch)
                << "\n"
                << "  result (final state, initial gradient): " << bytes_text(parts.result) << "\n"
                << "  gradient outputs: " << bytes_text(parts.outputs) << "\n"
                << "estimated peak device memory: " << bytes_text(summary.peak_device_bytes);
      if (by_bytes) {
        std::cout << " of the " << dfluid::format_bytes(static_cast<std::size_t>(device_bytes))
                  << " budget (" << (summary.peak_device_bytes <= device_bytes ? "within" : "OVER")
                  << ")";
      }
      std::cout << "\n";
    }
    if (print_actions) {
      // One line at a time: format_actions() would build the whole text in memory first.
      std::cout << "actions:\n";
      for (const ck::Action& a : plan.actions)
        std::cout << ck::to_string(a) << '\n';
    }
  } catch (const dfluid::Error& e) {
    return fail(e.what());
  }
  return 0;
}
