// Checkpoint plans: the action sequence that reverses an n-step rollout within a storage
// budget. Host logic only: it knows steps, slots and costs, never fluids (DESIGN.md, 5).
//
// USE. For a fluid rollout, set RolloutOptions::checkpointing (dfluid/rollout.hpp):
// Rollout<T>::plan() measures the state (StateSize), turns the byte budget into slots,
// builds and summarizes the plan (print it with describe()), and Rollout<T>::run() executes
// it. Standalone:
//   PlanRequest request = request_from_budget(n, budget, size, costs);  // or set slots
//   Plan plan = make_plan(request);
//   PlanSummary summary = summarize(plan);   // advances, peak memory, predicted time
//   std::puts(describe(summary, plan).c_str());
//   execute_plan(plan, driver);              // executor.hpp
//
// STATES AND STEPS. State 0 is the initial state; step i maps state i to state i+1
// (0 ≤ i < n). Reversing step i runs its adjoint, which needs only state i (DESIGN.md, 3):
// the driver recomputes the step's intermediates itself. The steps are reversed exactly once
// each, in the order n−1, n−2, …, 0. For step n−1 the driver also evaluates the step forward
// to obtain state n and the loss (Revolve's "first turn"); that evaluation is part of the
// reverse, not an advance.
//
// THE CURRENT STATE. The driver holds one working state, the "current" state; before the
// first action it is state 0. Each action's precondition and effect:
//   Advance{step, to_step}   current == step  →  current == to_step (to_step − step plain
//                            forward steps, nothing stored). These are the "advances".
//   Store{level, slot, step} current == step; copies it into the free slot (level, slot).
//                            The current state is unchanged. For Host and Disk the copy may
//                            run asynchronously (see executor.hpp).
//   Restore{level, slot, step} the slot holds state `step`; copies it into the current state
//                            (current == step afterwards); the slot keeps its copy.
//   Prefetch{level, slot, step} a hint that a later Restore of this Host/Disk slot follows:
//                            the driver may start the copy towards the device now, on its copy
//                            stream, into its staging buffer. The current state is unchanged.
//   Free{level, slot}        the slot's state is no longer needed; the slot may be reused.
//   Reverse{step}            current == step; runs the adjoint of step `step`. Afterwards the
//                            current state is undefined (the driver may use it as scratch).
// "Held states" are the occupied slots; the current state is not counted (it is part of the
// step's working memory, see MemoryBudget).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dfluid::checkpoint {

/// Storage levels, fastest first.
enum class Level : std::uint8_t { Device = 0, Host = 1, Disk = 2 };
inline constexpr int kLevelCount = 3;
const char* to_string(Level level);

enum class ActionType : std::uint8_t { Advance, Store, Restore, Prefetch, Free, Reverse };
const char* to_string(ActionType type);

struct Action {
  ActionType type = ActionType::Advance;
  Level level = Level::Device;  ///< Store, Restore, Prefetch, Free
  std::int32_t slot = -1;       ///< Store, Restore, Prefetch, Free
  std::int64_t step = 0;        ///< Advance: from; Store/Restore/Prefetch: state; Reverse: step
  std::int64_t to_step = 0;     ///< Advance only
};
std::string to_string(const Action& action);

/// Slots per level. Device slots include the one that holds the initial state.
struct SlotCounts {
  std::int64_t device = 0;
  std::int64_t host = 0;
  std::int64_t disk = 0;
  std::int64_t& operator[](Level level);
  std::int64_t operator[](Level level) const;
};

/// What the backward pass may use, in bytes. Host memory means pinned host memory.
struct MemoryBudget {
  std::size_t device_bytes = 0;
  std::size_t host_bytes = 0;
  std::size_t disk_bytes = 0;
};

/// Size of one checkpointed state, and the device memory one step (forward or adjoint)
/// needs besides the checkpoint slots: the current state, the adjoint state, temporaries.
struct StateSize {
  std::size_t state_bytes = 0;
  std::size_t working_bytes = 0;
};

/// The smallest device budget a plan can run in: one state slot plus one step's working
/// memory. Throws InvalidArgument when state_bytes is 0.
std::size_t minimum_device_bytes(const StateSize& size);

/// Slots per level from a byte budget: device = floor((device − working) / state),
/// host = floor(host / state), disk = floor(disk / state). A device budget below
/// minimum_device_bytes() is refused with an InvalidArgument that names the minimum.
SlotCounts slots_from_budget(const MemoryBudget& budget, const StateSize& size);

/// Cost model of the plan's predicted time. Times in seconds, bandwidths in bytes/second.
/// The defaults are plausible for a 128³ smoke step on an H100 with PCIe Gen5 pinned copies;
/// pass measured values for real predictions.
struct CostModel {
  double step_seconds = 5e-3;        ///< one forward step (an advance)
  double reverse_ratio = 2.5;        ///< one adjoint step / one forward step
  double device_bandwidth = 1.5e12;  ///< device-to-device copy (store/restore on device)
  double host_bandwidth = 2.0e10;    ///< device↔pinned-host copy, each direction
  double disk_bandwidth = 2.0e9;     ///< device↔disk (through the host)
};

enum class PlanKind { StoreAll, RecomputeFromStart, Revolve, MultiLevel };
const char* to_string(PlanKind kind);

/// Which plan to build. Auto builds the single-level binomial (Revolve) plan on the device
/// slots and, where host or disk slots exist, the best multi-level plan by the cost model,
/// and keeps the faster by the model (ties go to the single-level plan).
enum class Strategy { Auto, StoreAll, RecomputeFromStart, Revolve, MultiLevel };

struct PlanRequest {
  std::int64_t steps = 0;  ///< n ≥ 1
  SlotCounts slots;        ///< device ≥ 1
  StateSize size;          ///< optional (0: copy costs and byte counts are zero)
  CostModel costs;
  Strategy strategy = Strategy::Auto;
};

/// A request whose slots come from a byte budget (see slots_from_budget).
PlanRequest request_from_budget(std::int64_t steps, const MemoryBudget& budget,
                                const StateSize& size, const CostModel& costs = {});

struct Plan {
  PlanKind kind = PlanKind::Revolve;
  std::int64_t steps = 0;
  SlotCounts slots;                ///< slots available to the plan, per level
  std::int64_t revolve_slots = 0;  ///< device slots used by the binomial schedule(s)
  bool staging = false;            ///< one extra device state buffers async Host/Disk copies
  std::int64_t segment = 0;        ///< multi-level: steps between Host/Disk checkpoints
  StateSize size;
  CostModel costs;
  std::vector<Action> actions;
};

/// The most actions make_plan() builds for one request. A plan is a list of actions held in
/// memory (sizeof(Action) = 24 bytes: 480 MB at the limit, about 1 s to build and as long
/// again to summarize() on one core), so requests whose list could grow beyond this are
/// refused before anything is allocated. With the bound of max_plan_actions() that allows up
/// to 4 million steps on device slots only, and about 1.9 million under Strategy::Auto with
/// host or disk slots: far beyond the rollouts an adjoint is run through.
inline constexpr std::int64_t kMaxPlanActions = 20'000'000;

/// An upper bound on the number of actions make_plan(request) builds, computed in O(1)
/// without building anything (saturates at INT64_MAX). A single-level plan of n ≥ 2 steps has
/// n reverses, n − 1 restores (one before every reverse but the last), n − 1 advances (one
/// before every step that is not a checkpoint) and a store and a free per checkpoint; with c
/// checkpoints (1 ≤ c ≤ n − 1) that is 3n − 2 + 2c, so between 3n and 5n − 4 actions
/// (n = 1: one reverse). A multi-level plan with k host/disk checkpoints (k ≤ n − 1 and
/// k ≤ host + disk slots) has at most 5n − 4 + k: each of its k + 1 segments is a
/// single-level schedule (at most 5m − 4 actions for m steps) and each checkpoint adds at most
/// 5 (store, advance, restore, free, prefetch). Strategy::Auto with host or disk slots builds
/// both kinds and keeps the faster, so its bound is their sum.
std::int64_t max_plan_actions(const PlanRequest& request);

/// Builds the plan. Throws InvalidArgument for steps < 1, device slots < 1, negative host or
/// disk slots, cost-model values that are not finite and positive (reverse_ratio may be 0),
/// a strategy that cannot run in the slots (store-all with fewer than n−1 device slots,
/// multi-level with no host or disk slot), and when max_plan_actions() exceeds
/// kMaxPlanActions (the message names the steps, the slots and the limit).
Plan make_plan(const PlanRequest& request);

/// Summary of a plan, obtained by replaying its actions against their semantics.
struct PlanSummary {
  PlanKind kind = PlanKind::Revolve;
  std::int64_t steps = 0;
  SlotCounts slots;
  std::int64_t advances = 0;  ///< plain forward steps
  std::int64_t reverses = 0;  ///< adjoint steps
  std::int64_t stores[kLevelCount] = {0, 0, 0};
  std::int64_t restores[kLevelCount] = {0, 0, 0};
  std::int64_t peak_held[kLevelCount] = {0, 0, 0};
  std::size_t peak_device_bytes = 0;  ///< working + (peak device slots + staging) · state
  std::size_t peak_host_bytes = 0;
  std::size_t peak_disk_bytes = 0;
  double forward_seconds = 0;    ///< n · step time: the plain forward pass
  double predicted_seconds = 0;  ///< advances + adjoint steps + copies not hidden by compute
  double stall_seconds = 0;      ///< part of predicted_seconds spent waiting for copies
  double time_ratio = 0;         ///< predicted_seconds / forward_seconds
};

/// Replays the plan, checks every action against the semantics above (slot ranges, free and
/// occupied slots, the current state, each step reversed once in reverse order) and predicts
/// its time with the cost model. Throws dfluid::Error naming the first bad action.
PlanSummary summarize(const Plan& plan);

/// Predicted time of a plan in seconds (the timeline model of summarize()).
double predict_seconds(const Plan& plan);

/// The plan report: "key: value" lines, including "advances: K" on a line of its own.
std::string describe(const PlanSummary& summary, const Plan& plan);
/// One action per line.
std::string format_actions(const Plan& plan);

}  // namespace dfluid::checkpoint
