// dfluid-plan: the checkpoint plan for reversing an N-step rollout, as a dry run.
//
//   dfluid-plan --steps 1000 --slots 10
//   dfluid-plan --steps 1000 --device-bytes 2GB --state-bytes 34MB --host-bytes 64GB
//
// Prints the plan summary ("key: value" lines, the advance count as "advances: K") and, with
// --actions, the action list. Bad flags or values: one line on stderr, exit code 2.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "dfluid/checkpoint.hpp"
#include "dfluid/error.hpp"

namespace ck = dfluid::checkpoint;

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "dfluid-plan: error: %s\n", message.c_str());
  return 2;
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
  auto* device_opt = app.add_option("--device-bytes", device_bytes,
                                    "device memory for the backward pass (needs --state-bytes)")
                         ->transform(CLI::AsSizeValue(true));
  slots_opt->excludes(device_opt);
  auto* host_opt = app.add_option("--host-bytes", host_bytes, "pinned host memory for checkpoints")
                       ->transform(CLI::AsSizeValue(true));
  auto* host_slots_opt = app.add_option("--host-slots", host_slots, "pinned host checkpoint slots");
  host_slots_opt->excludes(host_opt);
  auto* disk_opt = app.add_option("--disk-bytes", disk_bytes, "disk space for checkpoints")
                       ->transform(CLI::AsSizeValue(true));
  app.add_option("--disk-slots", disk_slots, "disk checkpoint slots")->excludes(disk_opt);
  auto* state_opt = app.add_option("--state-bytes", state_bytes, "bytes of one simulation state")
                        ->transform(CLI::AsSizeValue(true));
  app.add_option("--working-bytes", working_bytes,
                 "device memory one step needs besides the slots (default 0)")
      ->transform(CLI::AsSizeValue(true));
  app.add_option("--step-time", costs.step_seconds, "seconds per forward step (default 5e-3)");
  app.add_option("--reverse-ratio", costs.reverse_ratio,
                 "adjoint step time / forward step time (default 2.5)");
  app.add_option("--copy-bandwidth", costs.host_bandwidth,
                 "device<->pinned host bytes per second (default 2e10)");
  app.add_option("--device-bandwidth", costs.device_bandwidth,
                 "device-to-device copy bytes per second (default 1.5e12)");
  app.add_option("--disk-bandwidth", costs.disk_bandwidth,
                 "device<->disk bytes per second (default 2e9)");
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
    const bool have_state = state_opt->count() > 0;
    if (have_state && state_bytes == 0) return fail("--state-bytes must be > 0");
    if (!have_state && (by_bytes || host_opt->count() > 0 || disk_opt->count() > 0)) {
      return fail("--device-bytes, --host-bytes and --disk-bytes need --state-bytes");
    }
    if (by_slots && slots < 1) {
      return fail("--slots must be >= 1 (one slot holds the initial state), got " +
                  std::to_string(slots));
    }
    if (host_slots < 0 || disk_slots < 0) return fail("slot counts must be >= 0");

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

    const ck::Plan plan = ck::make_plan(request);
    const ck::PlanSummary summary = ck::summarize(plan);
    std::cout << "# dfluid-plan: dry run, nothing simulated\n" << ck::describe(summary, plan);
    if (print_actions) std::cout << "actions:\n" << ck::format_actions(plan);
  } catch (const dfluid::Error& e) {
    return fail(e.what());
  }
  return 0;
}
