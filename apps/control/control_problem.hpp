// The keyframe control problem (McNamara et al. 2004; Treuille et al. 2003) on dfluid's public
// API: find per-step force fields (and optionally the initial velocity) such that the smoke
// simulated from the initial state matches target densities at the keyframe steps.
//
//   loss = Σ_keyframes ½ ‖ρ_k − ρ*‖² / ‖ρ*‖²  +  effort · ½ Σ_steps ‖f_k‖²
//
// The keyframe term is normalized by ‖ρ*‖², so that it is half the squared relative keyframe
// error that the summary reports, whatever the grid size or smoke amount.
//
// PARAMETERS. All unknowns live in one flat vector x of P values (the optimizer's vector, on
// the device when the run is on a GPU): first the initial velocity (when optimized), then one
// force field per control interval (the force is held for `control_interval` steps, which
// keeps P moderate and the controls smooth in time). The controls handed to the rollout WRAP
// slices of x: no gathering copies, and the optimizer's trial points are seen directly.
// The gradient of an interval's force is the sum of the rollout's per-step force gradients.
//
// SMOOTH CONTROLS. With smoothing radius σ > 0 the force of an interval is f = S^m z, where z
// is the interval's slice of x and S one explicit diffusion step of the MAC field (α = ν dt/dx²
// = 0.2 in 2D, 0.15 in 3D; m = ⌈σ²/(2α)⌉, a Gaussian blur of standard deviation ≈ σ cells).
// The gradient with respect to z is (S^T)^m of the gradient with respect to f, applied with
// the library's diffusion adjoint. This is a change of variables that keeps the optimizer
// from spending its iterations on cell-scale force noise: the shape-forming flow is smooth.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/scenario.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::control {

struct ProblemSettings {
  int steps = 64;
  int control_interval = 4;
  bool optimize_velocity = false;
  std::vector<int> keyframes;  ///< state indices in [1, steps]
  double effort = 1e-4;        ///< weight of ½ Σ ‖f_k‖²
  double smoothing = 0;        ///< σ of the control smoothing in cells (0: none)
  StepConfig step;
  checkpoint::MemoryBudget budget;  ///< zero device budget: store every state
};

/// Relative keyframe errors ‖ρ_k − ρ*‖/‖ρ*‖ of one forward run.
struct KeyframeErrors {
  std::vector<double> relative;  ///< per keyframe
  double rms = 0;                ///< root mean square over the keyframes
};

/// Memory of a control run, estimated before anything is allocated.
struct ControlMemory {
  std::size_t context = 0;  ///< in the context's memory space (device on a GPU)
  std::size_t host = 0;     ///< host memory besides (the scenario's double-precision fields)
};

template <class T>
class ControlProblem {
 public:
  ControlProblem(const Context& ctx, const Scenario& scenario, ProblemSettings settings);

  /// What a run allocates: the simulation with its adjoint (Simulation<T>::estimate_memory),
  /// the rollout's stored states (all steps + 1, or the --memory-budget), its working states
  /// and per-step force gradients, the parameters, the force fields, and
  /// `optimizer_vectors` more parameter-sized vectors for the optimizer. Grid sizes up to
  /// 2048³ do not overflow.
  static ControlMemory estimate_memory(const Context& ctx, const Grid& grid,
                                       const ProblemSettings& settings, bool optimize_velocity,
                                       int optimizer_vectors);

  Index parameter_count() const { return P_; }
  /// The flat parameter vector x (zero: no force, initial velocity zero).
  Field<T>& parameters() { return x_; }
  const Grid& parameter_grid() const { return pgrid_; }
  const ProblemSettings& settings() const { return set_; }
  const Grid& grid() const { return grid_; }
  int control_fields() const { return nctrl_; }

  /// The optimizer's objective: loss at x (x must be parameters() itself or a field of the
  /// same layout) and its gradient written into grad.
  double evaluate(const Field<T>& x, Field<T>& grad);

  /// Forward run with the current parameters (controlled) or with none (uncontrolled);
  /// `on_state(k, state)` is called for every state k = 0..steps. Returns the keyframe errors.
  KeyframeErrors forward(bool controlled,
                         const std::function<void(int, const SmokeState<T>&)>& on_state = {});

  /// The plan report of the backward pass's checkpointing (one line when storing every state).
  std::string plan_report();

  /// Loss terms of the last evaluate() (keyframes, force_effort).
  const std::map<std::string, double>& last_terms() const { return terms_; }
  /// Force of control interval c, for the parameters of the last evaluate() or forward().
  const MacVelocity<T>& force(int c) const { return forces_[std::size_t(c)]; }
  /// Slice of x (or of a gradient) that parameterizes interval c, as a MAC field wrapping it.
  MacVelocity<T> control_view(const Field<T>& x, int c) const;
  /// Explicit diffusion steps of the smoothing (0: none).
  int smoothing_steps() const { return smooth_steps_; }
  /// Initial velocity wrapping x (optimize_velocity only).
  MacVelocity<T> velocity_view(const Field<T>& x) const;
  const Field<T>& target() const { return target_; }
  const SmokeState<T>& initial_state() const { return initial_; }

 private:
  MacVelocity<T> mac_at(const Field<T>& x, Index offset) const;
  RolloutOptions rollout_options() const;
  void set_initial_velocity(const Field<T>& x);
  /// forces_[c] = S^m (slice c of x).
  void update_forces(const Field<T>& x);

  double smooth_alpha_ = 0.2;
  int smooth_steps_ = 0;
  MacVelocity<T> smooth_tmp_, smooth_tmp2_;
  Context ctx_;
  Grid grid_;
  ProblemSettings set_;
  Simulation<T> sim_;
  Rollout<T> rollout_;
  RolloutResult<T> result_;  // reused by every evaluation: a warm gradient allocates nothing
  SmokeState<T> initial_;
  Field<T> target_;
  RolloutLosses<T> losses_;
  Index face_count_ = 0;  ///< values of one MAC field
  Index P_ = 0;
  int nctrl_ = 0;
  Grid pgrid_;
  Field<T> x_;
  std::vector<MacVelocity<T>> forces_;  ///< f_c = S^m z_c
  std::vector<StepControls<T>> controls_;
  double target_norm2_ = 1;
  std::map<std::string, double> terms_;
};

extern template class ControlProblem<float>;
extern template class ControlProblem<double>;

}  // namespace dfluid::control
