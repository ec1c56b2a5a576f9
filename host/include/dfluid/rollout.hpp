// Gradient of a loss over an N-step rollout of a Simulation (reverse mode).
//
// Rollout::run(initial, N, controls, losses) advances states 0 -> N with
// Simulation::step and then walks back: with g the cotangent of the current state,
//   g = dL/d state_N;   for k = N-1 .. 0:  g = step_adjoint_k(g) + dL/d state_k,
// and the loss terms attached to state k are evaluated (value and gradient) when
// state k is current in the backward pass. grad_initial = g at k = 0.
// A step's adjoint needs only the step's input state (pressure included, the
// step warm-starts from it), so the backward pass needs state k at step k.
//
// Two ways to have those states (RolloutOptions::checkpointing):
//  * Store-all (the default): the forward pass keeps states 0..N-1 through a
//    StateStore (StoreAllStates unless the constructor was given another store).
//    Memory: N states.
//  * Checkpointed (checkpointing.enabled): the checkpoint scheduler
//    (dfluid/checkpoint/plan.hpp) plans the run within a byte budget per level
//    (device, pinned host, disk) and run() executes the plan: it keeps only a few
//    states and recomputes the others with extra forward steps ("advances").
//    Rollout::plan() returns that plan and its summary BEFORE running, for the
//    printed report (checkpoint::describe). The results are bitwise identical to
//    store-all: every step and adjoint sees exactly the same input bits.
//    Cost: the plan's advances (the summary says how many); memory: its slots.
//    Disk slots are files in a fresh temporary directory under
//    CheckpointOptions::disk_directory, removed when run() returns or throws.
//
// Memory: the Rollout keeps what a run needs besides its result between runs (a work
// state, the stored states or checkpoint slots), and run(..., options, result) reuses the
// result's fields, so a warm gradient evaluation allocates nothing. A checkpointed run
// allocates its slots before its first step, and what it holds in the context's memory
// space stays within checkpointing.budget.device_bytes (state_size() lists the terms).
//
// Loss terms (all sums over every entry of the fields, in double):
//  (a) ScalarKeyframe  at state `step`:  weight * 1/2 * sum_c m_c (q_c - target_c)^2,
//      q = the state's scalar `scalar`, m = mask (1 everywhere when null).
//  (b) VelocityTarget  at state `step`:  weight * 1/2 * sum_faces (u - target)^2
//      over every component (boundary faces included).
//  (c) Control effort over all steps: force_effort * 1/2 * sum_k |f_k|^2
//      (all faces) + source_effort * 1/2 * sum_k sum_i |s_{k,i}|^2.
//  (e) ObstacleForceLoss over its steps (dfluid/obstacle.hpp): weight * mean over its states
//      of direction · Simulation::obstacle_force(state): pressure and viscous force on the
//      obstacles, reduced on the device. Its gradient reaches the state's pressure too
//      (SmokeGradient::pressure, allocated in the result's grad_initial for the run and
//      carried through each step's projection by step_adjoint: one more pressure solve per
//      step adjoint while it is non-zero). With StepConfig::pressure_correction Incremental
//      each step reads its input pressure, so the cotangent is always carried (one more
//      solve per step adjoint) and grad_initial.pressure is the initial pressure's gradient.
//  (d) UserLoss: at each of its steps, fn(step, state, grad) returns a value and
//      WRITES d value / d state into grad (handed over zero-filled, on the
//      simulation's memory space); the rollout adds it to the cotangent.
// State indices: state 0 is the initial state, state k the one after k steps.
// Terms are evaluated in the same order in both modes (state N first, then N-1 ..
// 0), once per state: a checkpointed run that recomputes a state does not
// evaluate its losses again.
//
// Errors: InvalidArgument naming a loss and its step when the step is outside
// [0, N] (or the scalar index is bad), when the controls vector is neither empty
// nor N long; ShapeMismatch for control/target/mask fields of the wrong shape;
// NonFiniteValue naming the step when a step's adjoint output holds NaN/Inf
// (RolloutOptions::check_finite, on by default: one kernel per field per step, no host
// wait: step k's check is read at the next step adjoint's pressure solve, so the error
// comes during the adjoint of step k-1, or before run() returns for the last steps).
// Checkpointed runs also: InvalidArgument (naming the minimum) for a device budget
// below one state plus the working memory, or for slots the strategy cannot run
// in; dfluid::Error naming the path when the disk directory cannot be created or
// a slot file cannot be written or read back.
// Gradients are deterministic (fixed order, deterministic operator adjoints).
// Host waits of run(): those of its steps and step adjoints (their pressure solves) and
// one more at the end, which reads every loss value (8 bytes per reduced term: a keyframe,
// one per velocity component of a velocity target or a step's force effort, one per
// source effort) and the pending finiteness checks. Loss terms, masked keyframes
// included, are reduced on the device; user losses run on the host as written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dfluid/checkpoint/plan.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/simulation.hpp"

namespace dfluid {

/// Where a rollout keeps the states its backward pass needs. save() copies the
/// state that is current after `step` steps; load() copies it back into `state`
/// (which has the right shape).
template <class T>
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual void save(int step, const SmokeState<T>& state) = 0;
  virtual void load(int step, SmokeState<T>& state) = 0;
  virtual void clear() {}
};

/// Keeps every saved state (memory: one state per step). clear() forgets the saved states
/// but keeps their buffers, so a later run of the same shape saves into them without
/// allocating; release() frees them.
template <class T>
class StoreAllStates : public StateStore<T> {
 public:
  explicit StoreAllStates(const Context& ctx) : ctx_(ctx) {}
  void save(int step, const SmokeState<T>& state) override;
  void load(int step, SmokeState<T>& state) override;
  void clear() override;
  void release() { states_.clear(); }
  /// States saved since the last clear().
  std::size_t size() const;

 private:
  struct Entry {
    SmokeState<T> state;
    bool saved = false;
  };
  Context ctx_;
  std::map<int, Entry> states_;
};

template <class T>
struct ScalarKeyframe {
  std::string name = "keyframe";
  int step = 0;    ///< state index in [0, N]
  int scalar = 0;  ///< index of the scalar in the state
  const Field<T>* target = nullptr;
  double weight = 1.0;
  const Field<T>* mask = nullptr;  ///< optional per-cell weight m
};

template <class T>
struct VelocityTarget {
  std::string name = "velocity";
  int step = 0;  ///< state index in [0, N]
  const MacVelocity<T>* target = nullptr;
  double weight = 1.0;
};

template <class T>
struct UserLoss {
  std::string name = "user";
  std::vector<int> steps;  ///< state indices in [0, N]
  /// Returns the loss value at state `step` and writes its gradient into grad
  /// (zero-filled on entry; leave untouched what does not depend on it).
  std::function<double(int step, const SmokeState<T>& state, SmokeGradient<T>& grad)> fn;
};

template <class T>
struct RolloutLosses {
  std::vector<ScalarKeyframe<T>> keyframes;
  std::vector<VelocityTarget<T>> velocity_targets;
  double force_effort = 0;   ///< weight of 1/2 sum_k |f_k|^2
  double source_effort = 0;  ///< weight of 1/2 sum_k sum_i |s_{k,i}|^2
  std::vector<UserLoss<T>> user;
  /// Force on the obstacles (drag, lift); needs a Simulation with an ObstacleMask.
  std::vector<ObstacleForceLoss<T>> obstacle_forces;
};

/// Checkpointing of a rollout's backward pass (see the top of this file).
///
/// Slots per level come from `slots` when slots.device > 0, otherwise from `budget`
/// (checkpoint::slots_from_budget with the StateSize of Rollout::plan()): device slots
/// = (device_bytes - working bytes) / state bytes, host slots = host_bytes / state
/// bytes, disk slots = disk_bytes / state bytes. On the CPU path "device" memory is
/// ordinary host memory too. The default budget (0 bytes) is below the minimum, so
/// an enabled checkpointing needs a budget or slots.
struct CheckpointOptions {
  bool enabled = false;  ///< false: store every state (the default)
  checkpoint::Strategy strategy = checkpoint::Strategy::Auto;
  checkpoint::MemoryBudget budget;  ///< bytes per level (host = pinned host memory)
  checkpoint::SlotCounts slots;     ///< used instead of `budget` when slots.device > 0
  /// Step time and bandwidths for the plan's predicted time (and Auto's choice).
  checkpoint::CostModel costs;
  /// Where disk slots go: a fresh directory "dfluid-checkpoint-<id>-<n>" is created in
  /// it (it must exist and be writable) and removed with its files afterwards. Empty:
  /// std::filesystem::temp_directory_path(). Disk I/O goes through one host buffer of one
  /// state (pinned on the CUDA path), outside the host budget.
  std::string disk_directory;
};

struct RolloutOptions {
  bool check_finite = true;      ///< NaN/Inf check of each step's adjoint output
  bool force_gradients = true;   ///< fill RolloutResult::grad_force
  bool source_gradients = true;  ///< fill RolloutResult::grad_source
  bool buoyancy_gradient = true;
  /// Fill RolloutResult::grad_viscosity (grad_scalar_diffusivity): d loss / d
  /// StepConfig::viscosity (scalar_diffusivity). Off by default: each step adjoint then
  /// copies the velocity (every scalar) at its Diffuse part, and with implicit diffusion
  /// replays that part's solves (StepControlGradient::viscosity). Needs StepConfig::diffusion
  /// Explicit or Implicit and a Diffuse part (InvalidArgument otherwise).
  bool viscosity_gradient = false;
  bool scalar_diffusivity_gradient = false;
  /// Fill RolloutResult::grad_boundary: d loss / d the Simulation's VelocityBoundary
  /// (inflow profiles, wall velocities), held fixed over the rollout. Gathered on the device
  /// (StepControlGradient::boundary_slots) and read with the losses at the end of run(): no
  /// host wait of its own. Off by default: with a MovingWall side each step adjoint advects
  /// once more per tangential component (the wall velocity's gradient through advection).
  bool boundary_gradient = false;
  /// Fill RolloutResult::grad_obstacle_wall_velocity: d loss / d ObstacleWall::wall_velocity
  /// of the Simulation's no-slip obstacles (held fixed over the rollout; on the device).
  bool obstacle_wall_velocity_gradient = false;
  /// Each step adjoint's projection solve starts from the previous step adjoint's solution
  /// (Simulation::set_adjoint_warm_start, switched on and cleared for the run, restored after;
  /// when StepConfig::pressure.warm_start is on): fewer solver iterations in the backward
  /// pass. The gradient stays a function of the run's inputs (bitwise the same under every
  /// checkpoint plan and thread count) and moves only within the solver tolerance. Off: every
  /// step adjoint solves from zero, as a loop of Simulation::step_adjoint calls does.
  bool warm_adjoint_solves = true;
  CheckpointOptions checkpointing;  ///< off by default: store-all
};

/// The terms of a rollout's working memory (Rollout::estimate_size), in bytes of the
/// context's memory space. working() is StateSize::working_bytes.
struct RolloutMemory {
  SimulationMemory simulation;        ///< Simulation::estimate_memory (its state is not counted)
  std::size_t reduction_scratch = 0;  ///< the context's reduction scratch (GPU path; counted
                                      ///< on the CPU path as the GPU holds it)
  std::size_t rollout = 0;  ///< the Rollout's workspace state, loss scratch, user-loss gradient
  std::size_t result = 0;   ///< the result's final state and initial-state gradient
  std::size_t outputs = 0;  ///< the result's per-step force and source gradients
  std::size_t working() const {
    return simulation.workspace + simulation.adjoint + reduction_scratch + rollout + result +
           outputs;
  }
};

/// A checkpointed rollout's plan, computed before it runs (Rollout::plan).
struct RolloutPlan {
  /// state_bytes: velocity + every scalar + pressure of one state. working_bytes: an
  /// estimate of the device memory the backward pass needs besides the checkpoint slots
  /// (Rollout::state_size lists the terms), gradient outputs included.
  checkpoint::StateSize size;
  std::size_t output_bytes = 0;     ///< the part of working_bytes that is grad_force/grad_source
  RolloutMemory memory;             ///< the terms of working_bytes
  checkpoint::MemoryBudget budget;  ///< the budget the slots came from (0 when slots were given)
  checkpoint::Plan plan;            ///< the actions run() executes
  checkpoint::PlanSummary summary;  ///< counts, peak memory and predicted time of `plan`
  /// The plan report (checkpoint::describe) plus one line on the working memory estimate.
  std::string describe() const;
};

/// What the checkpoint driver did during a checkpointed run() (compare with the summary).
struct CheckpointRunStats {
  std::int64_t advances = 0;  ///< plain forward steps (step N-1 -> N of the first reverse excluded)
  std::int64_t reverses = 0;  ///< adjoint steps
  std::int64_t stores[checkpoint::kLevelCount] = {0, 0, 0};    ///< per Level
  std::int64_t restores[checkpoint::kLevelCount] = {0, 0, 0};  ///< per Level
  std::int64_t prefetch_hits = 0;  ///< Host/Disk restores served by an earlier prefetch
};

/// Filled by a checkpointed run(): the plan's summary and what the driver did.
struct RolloutCheckpointInfo {
  checkpoint::StateSize size;
  checkpoint::PlanSummary summary;
  CheckpointRunStats performed;
};

template <class T>
struct RolloutResult {
  double loss = 0;
  /// Per term name (keyframes, velocity targets, user losses by name;
  /// "force_effort", "source_effort"), summed over its steps.
  std::map<std::string, double> loss_terms;
  SmokeGradient<T> grad_initial;           ///< d loss / d state 0 (velocity and every scalar)
  std::vector<MacVelocity<T>> grad_force;  ///< [k]: d loss / d f_k (N entries)
  std::vector<std::vector<Field<T>>> grad_source;  ///< [k][i]: d loss / d s_{k,i}
  double grad_buoyancy = 0;                        ///< d loss / d StepConfig::buoyancy
  double grad_viscosity = 0;  ///< d loss / d StepConfig::viscosity (options.viscosity_gradient)
  /// d loss / d StepConfig::scalar_diffusivity (options.scalar_diffusivity_gradient)
  double grad_scalar_diffusivity = 0;
  /// d loss / d the Simulation's VelocityBoundary (RolloutOptions::boundary_gradient; the
  /// inflow vectors stay empty on sides that are not Inflow).
  VelocityBoundaryGradient grad_boundary;
  /// d loss / d the obstacles' wall velocity (RolloutOptions::obstacle_wall_velocity_gradient;
  /// empty otherwise). d loss / d a rotation rate: its inner product with
  /// rigid_rotation_velocity(..., rate = 1).
  MacVelocity<T> grad_obstacle_wall_velocity;
  /// Per step. A checkpointed run that recomputes a step keeps its last evaluation
  /// (deterministic: the same as the first).
  std::vector<StepReport> forward_reports;
  std::vector<StepReport> adjoint_reports;  ///< per step
  SmokeState<T> final_state;                ///< state N
  /// Set by checkpointed runs only (RolloutOptions::checkpointing.enabled).
  std::optional<RolloutCheckpointInfo> checkpointing;
};

template <class T>
class Rollout {
 public:
  /// `sim` must outlive the Rollout. `store` (optional, must outlive it):
  /// where the store-all path keeps states; default StoreAllStates. Checkpointed
  /// runs do not use it.
  explicit Rollout(Simulation<T>& sim, StateStore<T>* store = nullptr);

  /// Runs N >= 1 steps from `initial` (not modified) with controls[k] at step k
  /// (controls empty: none; else exactly N entries), and returns the loss and
  /// its gradients. With options.checkpointing.enabled the backward pass follows
  /// plan(initial, N, options).plan instead of storing every state.
  /// Allocates the result's fields (gradients, final state) on every call; the overload
  /// below reuses them.
  RolloutResult<T> run(const SmokeState<T>& initial, int steps,
                       const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
                       const RolloutOptions& options = {});

  /// run() into `result`, reusing its fields where they already have the right shapes (the
  /// result of an earlier run with the same grid, scalars, steps and options): a warm
  /// gradient evaluation then allocates nothing, since everything else it needs is kept by
  /// the Rollout between runs (its workspace state, the stored states or checkpoint slots)
  /// and by the Simulation. Every value of `result` is overwritten. Checkpoint slots are
  /// allocated (and checked against the memory available) before the first step.
  void run(const SmokeState<T>& initial, int steps, const std::vector<StepControls<T>>& controls,
           const RolloutLosses<T>& losses, const RolloutOptions& options, RolloutResult<T>& result);

  /// The checkpoint plan run() follows for these arguments when
  /// options.checkpointing.enabled (computed whether or not it is enabled; nothing runs).
  /// Throws InvalidArgument for steps < 1, a state not on the simulation's grid, a
  /// budget below the minimum (the message names the minimum in bytes) and slots the
  /// chosen strategy cannot run in.
  /// `losses` (optional; run() passes its own): what they allocate is counted too (see
  /// state_size).
  RolloutPlan plan(const SmokeState<T>& initial, int steps, const RolloutOptions& options = {},
                   const RolloutLosses<T>* losses = nullptr) const;

  /// Sizes behind plan(): state_bytes = bytes of velocity + scalars + pressure.
  /// working_bytes: every byte a checkpointed gradient evaluation holds in the context's
  /// memory space besides its checkpoint slots (RolloutMemory lists the terms), from the
  /// same field sizes the code allocates, so that the peak of ctx.counters() over a run
  /// stays within the device budget (test RolloutMemory.PeakWithinBudget64Cubed):
  ///   the Simulation: Simulation::estimate_memory's workspace (scratch fields, pressure
  ///     solver and multigrid hierarchy) and adjoint (replay state and snapshots, gradient
  ///     temporaries), both with the context's pool of temporaries (implicit solves,
  ///     MacCormack temporaries, the deterministic scatter's accumulators), and the
  ///     context's reduction scratch;
  ///   the Rollout: its workspace state (S), the loss scratch (C + U) and the user-loss
  ///     gradient (G, allocated by the first user loss); the result: final state (S) and
  ///     initial-state gradient (G);
  ///   the gradient outputs: N U when options.force_gradients, N * scalars C when
  ///     options.source_gradients (returned in `output_bytes`);
  ///   the step adjoint's Diffuse snapshots: U per Diffuse part when
  ///     options.viscosity_gradient, scalars * C when options.scalar_diffusivity_gradient
  ///     (counted in RolloutMemory::simulation.adjoint);
  ///   grad_obstacle_wall_velocity (U, options.obstacle_wall_velocity_gradient; in result);
  ///   with NoSlip obstacle walls, the ghost-filled velocity (U) and the face classes (a
  ///     byte per face), in simulation.workspace;
  ///     when `losses` (optional) holds obstacle force losses, what they allocate: the force
  ///     coefficients (2 U + dim C, simulation.workspace) and the pressure cotangent (C in
  ///     result, its solve's C in simulation.adjoint). Neither is seen by the static
  ///     estimate_size.
  /// (S: a state, G: velocity + scalars, C: a cell field, U: a face velocity.) The caller's
  /// inputs (initial state, controls, targets) are not counted, nor are the loss-value slots
  /// (8 bytes per loss term reduced on the device: per keyframe, per velocity-target and
  /// force-effort component, per source effort, each coefficient gradient asked for, and
  /// 3 * dim per state an obstacle force loss reads), whose number depends on the losses.
  checkpoint::StateSize state_size(const SmokeState<T>& initial, int steps,
                                   const RolloutOptions& options,
                                   std::size_t* output_bytes = nullptr,
                                   const RolloutLosses<T>* losses = nullptr) const;

  /// The sizes behind plan() without a Simulation or a state (nothing is allocated): what
  /// dfluid-plan reports for a grid. See state_size().
  static checkpoint::StateSize estimate_size(const Context& ctx, const Grid& grid,
                                             const StepConfig& config, int num_scalars, int steps,
                                             const RolloutOptions& options,
                                             RolloutMemory* parts = nullptr);

  /// Frees what the Rollout keeps between runs (its workspace state, stored states,
  /// checkpoint slots); the next run allocates them again.
  void release_workspace();

  /// Forward only: the loss value (no gradients, states not stored).
  double loss(const SmokeState<T>& initial, int steps, const std::vector<StepControls<T>>& controls,
              const RolloutLosses<T>& losses);

  Simulation<T>& simulation() { return sim_; }

 private:
  class Driver;  // the checkpoint::CheckpointDriver of checkpointed runs (rollout_checkpoint.cpp)

  void validate(const SmokeState<T>& initial, int steps,
                const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses) const;
  // Loss values stay on the device until the end of a run: each term is reduced into a slot
  // of loss_slots_ and recorded in loss_entries_; finish_losses reads every slot in one host
  // wait (which also reads the pending finiteness checks) and adds the terms up on the host
  // in the order they were recorded (the order of evaluation).
  struct LossEntry {
    int state;         ///< state index, or -1 for a control-effort term
    std::string name;  ///< its loss_terms key
    double scale;      ///< value = scale * (sum of its slots), or host_value without slots
    int first_slot, slots;
    double host_value;  ///< a user loss's value (returned on the host)
    /// d scale / d StepConfig::viscosity (an obstacle force loss's shear terms, whose scale is
    /// proportional to nu): the loss's explicit viscosity dependence, added to grad_viscosity.
    double nu_scale = 0;
  };
  /// Clears the record and makes room for the slots a run of these losses needs, and for the
  /// coefficient gradients `gradients` asks for (null: none), which come first, zeroed.
  void begin_losses(const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
                    const RolloutOptions* gradients);
  /// Records the effort terms of one step's controls (values only).
  void record_effort(const StepControls<T>& controls, const RolloutLosses<T>& losses);
  /// One host wait (none when no slot was used: then only pending checks are read): the
  /// per-state values into per_state (sized steps + 1), the effort into *effort, per name
  /// into *terms (optional), and the coefficient gradients begin_losses reserved into
  /// r->grad_buoyancy, grad_viscosity, grad_scalar_diffusivity (optional).
  void finish_losses(std::vector<double>& per_state, double& effort,
                     std::map<std::string, double>* terms, RolloutResult<T>* r = nullptr);
  /// InvalidArgument naming the option when a coefficient gradient is asked for that the
  /// simulation's StepConfig does not have.
  void check_gradient_options(const RolloutOptions& options) const;
  /// Records the state losses at state `step` and, when grad is given, adds their
  /// gradients to *grad.
  void state_losses(int step, const SmokeState<T>& s, const RolloutLosses<T>& losses,
                    SmokeGradient<T>* grad);
  /// Records the control effort terms and adds their gradients to r.grad_force /
  /// r.grad_source as the options ask (prepared by prepare_result).
  void effort_terms(const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
                    const RolloutOptions& options, RolloutResult<T>& r);
  /// The backward pass at step k: grad <- adjoint of step k at `input` (state k),
  /// control and buoyancy gradients accumulated, finiteness check, then the losses of
  /// state k (recorded).
  void reverse_step(int k, const SmokeState<T>& input, const StepControls<T>& controls,
                    const RolloutLosses<T>& losses, const RolloutOptions& options,
                    SmokeGradient<T>& grad, RolloutResult<T>& r);

  /// The result's fields in the shapes of this run (reused when they have them), zeroed.
  void prepare_result(RolloutResult<T>& r, const SmokeState<T>& initial, int steps,
                      const RolloutOptions& options) const;
  /// The pressure cotangent of r.grad_initial (allocated when obstacle force losses read the
  /// pressure or the incremental pressure correction carries it, dropped otherwise) and
  /// r.grad_obstacle_wall_velocity, zeroed.
  void prepare_obstacle_terms(RolloutResult<T>& r, int steps, const RolloutLosses<T>& losses,
                              const RolloutOptions& options);
  /// Adds the obstacle terms state_size() lists to m (and size.working_bytes): none without
  /// obstacles.
  void add_obstacle_memory(RolloutMemory& m, checkpoint::StateSize& size,
                           const RolloutLosses<T>* losses) const;
  /// The states an obstacle force loss averages over (its steps, or 1..N when empty).
  static std::vector<int> force_loss_steps(const ObstacleForceLoss<T>& loss, int steps);
  /// The workspace state in the layout of `like` (reused when it has it).
  SmokeState<T>& work_state(const SmokeState<T>& like);
  void run_checkpointed(const SmokeState<T>& initial, int steps,
                        const std::vector<StepControls<T>>& controls,
                        const RolloutLosses<T>& losses, const RolloutOptions& options,
                        RolloutResult<T>& r);

  struct Workspace;  // kept between runs (rollout_internal.hpp)

  Simulation<T>& sim_;
  StateStore<T>* store_;
  StoreAllStates<T> own_store_;
  std::shared_ptr<Workspace> ws_;
  Field<T> diff_;               // scratch: q - target
  MacVelocity<T> diff_u_;       // scratch: u - target
  SmokeGradient<T> user_grad_;  // scratch handed to user losses
  Buffer<double> loss_slots_;   // device-side loss values of the current run
  int loss_slots_used_ = 0;
  // The coefficient gradients' slots (the first ones, when the run wants them; else null).
  double* buoyancy_slot_ = nullptr;
  double* viscosity_slot_ = nullptr;
  double* diffusivity_slot_ = nullptr;
  // RolloutOptions::boundary_gradient: VelocityBoundaryGradient::slots(grid) slots after them.
  double* boundary_slots_ = nullptr;
  std::vector<LossEntry> loss_entries_;
  int steps_ = 0;  // N of the current run (the default steps of obstacle force losses)
  MacVelocity<T>* grad_wall_ = nullptr;  // the run's grad_obstacle_wall_velocity (when asked)
};

}  // namespace dfluid
