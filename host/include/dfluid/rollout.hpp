// Gradient of a loss over an N-step rollout of a Simulation (reverse mode).
//
// Rollout::run(initial, N, controls, losses) advances states 0 -> N with
// Simulation::step, keeping the states through a StateStore (store-all by
// default; the checkpoint scheduler can supply another store), then walks back:
// with g the cotangent of the current state,
//   g = dL/d state_N;   for k = N-1 .. 0:  g = step_adjoint_k(g) + dL/d state_k,
// and the loss terms attached to state k are evaluated (value and gradient) when
// state k is current in the backward pass. grad_initial = g at k = 0.
//
// Loss terms (all sums over every entry of the fields, in double):
//  (a) ScalarKeyframe  at state `step`:  weight * 1/2 * sum_c m_c (q_c - target_c)^2,
//      q = the state's scalar `scalar`, m = mask (1 everywhere when null).
//  (b) VelocityTarget  at state `step`:  weight * 1/2 * sum_faces (u - target)^2
//      over every component (boundary faces included).
//  (c) Control effort over all steps: force_effort * 1/2 * sum_k |f_k|^2
//      (all faces) + source_effort * 1/2 * sum_k sum_i |s_{k,i}|^2.
//  (d) UserLoss: at each of its steps, fn(step, state, grad) returns a value and
//      WRITES d value / d state into grad (handed over zero-filled, on the
//      simulation's memory space); the rollout adds it to the cotangent.
// State indices: state 0 is the initial state, state k the one after k steps.
//
// Errors: InvalidArgument naming a loss and its step when the step is outside
// [0, N] (or the scalar index is bad), when the controls vector is neither empty
// nor N long; ShapeMismatch for control/target/mask fields of the wrong shape;
// NonFiniteValue naming the step when a step's adjoint output holds NaN/Inf
// (RolloutOptions::check_finite, on by default: one reduction per field per step).
// Gradients are deterministic (fixed order, deterministic operator adjoints).
// Masked keyframes are evaluated on the host (one copy of q, target and mask per
// keyframe; to be replaced by a device kernel).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

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

/// Keeps every saved state (memory: one state per step; buffers are reused
/// across runs of the same shape).
template <class T>
class StoreAllStates : public StateStore<T> {
 public:
  explicit StoreAllStates(const Context& ctx) : ctx_(ctx) {}
  void save(int step, const SmokeState<T>& state) override;
  void load(int step, SmokeState<T>& state) override;
  void clear() override { states_.clear(); }
  std::size_t size() const { return states_.size(); }

 private:
  Context ctx_;
  std::map<int, SmokeState<T>> states_;
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
};

struct RolloutOptions {
  bool check_finite = true;      ///< NaN/Inf check of each step's adjoint output
  bool force_gradients = true;   ///< fill RolloutResult::grad_force
  bool source_gradients = true;  ///< fill RolloutResult::grad_source
  bool buoyancy_gradient = true;
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
  std::vector<StepReport> forward_reports;         ///< per step
  std::vector<StepReport> adjoint_reports;         ///< per step
  SmokeState<T> final_state;                       ///< state N
};

template <class T>
class Rollout {
 public:
  /// `sim` must outlive the Rollout. `store` (optional, must outlive it):
  /// where states are kept; default store-all.
  explicit Rollout(Simulation<T>& sim, StateStore<T>* store = nullptr);

  /// Runs N >= 1 steps from `initial` (not modified) with controls[k] at step k
  /// (controls empty: none; else exactly N entries), and returns the loss and
  /// its gradients.
  RolloutResult<T> run(const SmokeState<T>& initial, int steps,
                       const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
                       const RolloutOptions& options = {});

  /// Forward only: the loss value (no gradients, states not stored).
  double loss(const SmokeState<T>& initial, int steps, const std::vector<StepControls<T>>& controls,
              const RolloutLosses<T>& losses);

  Simulation<T>& simulation() { return sim_; }

 private:
  void validate(const SmokeState<T>& initial, int steps,
                const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses) const;
  /// Adds the state losses at state `step` to result (value) and, when grad is
  /// given, their gradients to *grad.
  double state_losses(int step, const SmokeState<T>& s, const RolloutLosses<T>& losses,
                      SmokeGradient<T>* grad, std::map<std::string, double>* terms);

  Simulation<T>& sim_;
  StateStore<T>* store_;
  StoreAllStates<T> own_store_;
  Field<T> diff_;               // scratch: q - target
  MacVelocity<T> diff_u_;       // scratch: u - target
  SmokeGradient<T> user_grad_;  // scratch handed to user losses
};

}  // namespace dfluid
