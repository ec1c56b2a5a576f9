// The drag-reduction problem of dfluid-drag on dfluid's public API: the flow past a body in a
// channel (drag/channel.hpp), started from rest, and a control that minimizes the body's
// time-averaged drag coefficient over the last steps of the horizon:
//
//   loss = (1/A) Σ_{k = N-A+1..N} C_D(k)  +  λ/2 · Σ_m z_m²
//
// C_D(k) = 2 F_x(k) / (U² D_ref) with F the force of the fluid on the body at state k
// (Simulation::obstacle_force, the library's ObstacleForceLoss), A the averaging steps, and
// the second term a Tikhonov regularization of the parameters z (below).
//
// CONTROL: the inflow profile u(y) on the faces y_j of the inflow side, as a smooth positive
// modulation of the parabolic base profile u0:
//   u_j = u0_j e^{s_j},  s_j = Σ_{m=1..M} z_m cos(m π y_j / H),
// and with a fixed flow rate (the default) rescaled to the base profile's rate Q:
// u_j = Q u0_j e^{s_j} / Σ_k u0_k e^{s_k} Δy. So the profile stays positive and smooth, the
// flow rate is exactly Q for every z the optimizer tries, and z = 0 is the base profile.
// Per-face values, or a profile allowed to turn negative, make the problem ill-posed: the
// optimizer then drives narrow jets past the body, whose entrainment pushes it upstream, and
// the "drag" falls without bound (tried: C_D 4.8 → −6.6 in 10 iterations). The gradient:
// du_j/ds_k = u_j δ_jk (− u_j u_k Δy / Q at a fixed rate), so g_s = u ⊙ (g_u − Σ_j g_j u_j Δy
// / Q), and g_z_m = Σ_j g_s_j cos(m π y_j / H) + λ z_m. A free flow rate adds the mode m = 0
// (a factor on the whole profile). The gradient with respect to u comes from the Rollout
// (RolloutOptions::boundary_gradient). The parameters live in one flat vector of the
// optimizer (a Field on a 1D grid); the profile is a host vector (VelocityBoundary) that each
// evaluation sets on the Simulation before the rollout.
//
// CONTROL: the body's rotation rate (--control rotation; the inflow stays u0). The parameter
// is the surface speed a = ω D_ref / (2U) of a rigid rotation about the body's centroid
// (counter-clockwise positive): the no-slip walls' wall velocity W = ω R, R the rotation at
// rate 1 (rigid_rotation_velocity), so d loss / d ω = <d loss / d W, R> from the Rollout's
// wall-velocity gradient. The regularization is λ/2 a². The library's optimizer needs at
// least two unknowns: the vector holds a and a second entry that nothing reads (its gradient
// is 0, so L-BFGS never moves it).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "drag/channel.hpp"

namespace dfluid::drag {

enum class ControlKind { Inflow, Rotation };

struct ProblemSettings {
  ControlKind control = ControlKind::Inflow;
  int steps = 100;
  int average_steps = 0;         ///< drag averaged over the last this many states (0: steps / 2)
  bool fixed_flux = true;        ///< keep the inflow's flow rate
  int modes = 6;                 ///< M: cosine modes of the profile's modulation
  double regularization = 1e-2;  ///< λ
  StepConfig step;
  checkpoint::MemoryBudget budget;  ///< zero device budget: store every state
};

/// Drag and lift coefficients of one forward run.
struct DragHistory {
  std::vector<double> drag, lift;  ///< per state 0..N
  double mean_drag = 0;            ///< over the averaging window
  double mean_lift = 0;
};

template <class T>
class DragProblem {
 public:
  DragProblem(const Context& ctx, const Channel& channel, ProblemSettings settings);

  /// The step configuration of a channel (implicit viscous diffusion with ν, semi-Lagrangian
  /// velocity advection, pressure to `tolerance`).
  static StepConfig step_config(const Channel& channel, double dt, double tolerance);

  Index parameter_count() const { return P_; }
  Field<T>& parameters() { return x_; }
  const Grid& parameter_grid() const { return pgrid_; }
  const ProblemSettings& settings() const { return set_; }
  const Channel& channel() const { return ch_; }
  const ObstacleMask& mask() const { return mask_; }
  /// First state of the averaging window.
  int window_start() const { return set_.steps - set_.average_steps + 1; }

  /// The optimizer's objective: loss at x and its gradient written into grad.
  double evaluate(const Field<T>& x, Field<T>& grad);

  /// The inflow profile that parameters `x` (host values) stand for (the base profile under
  /// rotation control).
  std::vector<double> inflow_profile(const std::vector<T>& x) const;
  /// The rotation rate ω that parameters `x` stand for (0 under inflow control).
  double rotation_rate(const std::vector<T>& x) const;

  /// Forward run with the current parameters (controlled) or with the base profile;
  /// `on_state(k, state)` is called for every state k = 0..steps.
  DragHistory forward(bool controlled,
                      const std::function<void(int, const SmokeState<T>&)>& on_state = {});

  /// The plan report of the backward pass's checkpointing (one line when storing every state).
  std::string plan_report();

  /// Loss terms of the last evaluate(): "drag" (the mean drag coefficient), "regularization".
  const std::map<std::string, double>& last_terms() const { return terms_; }

 private:
  RolloutOptions rollout_options() const;
  void set_profile(const std::vector<double>& u);
  /// The no-slip walls' velocity: a rigid rotation at rate ω about the body's centroid.
  void set_rotation(double omega);

  Context ctx_;
  Channel ch_;
  ProblemSettings set_;
  ObstacleMask mask_;
  Simulation<T> sim_;
  Rollout<T> rollout_;
  RolloutResult<T> result_;  // reused by every evaluation
  SmokeState<T> initial_;    // at rest
  RolloutLosses<T> losses_;
  Index P_ = 0;
  Grid pgrid_;
  Field<T> x_;
  std::vector<std::vector<double>> modes_;  ///< cos(m π y_j / H) per parameter (inflow control)
  MacVelocity<T> unit_rotation_;            ///< R: the rotation at rate 1 (rotation control only)
  MacVelocity<T> wall_velocity_;            ///< W = ω R, what the Simulation's no-slip walls read
  std::map<std::string, double> terms_;
};

extern template class DragProblem<float>;
extern template class DragProblem<double>;

}  // namespace dfluid::drag
