#include "control/control_problem.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dfluid::control {

template <class T>
ControlProblem<T>::ControlProblem(const Context& ctx, const Scenario& sc, ProblemSettings s)
    : ctx_(ctx),
      grid_(sc.grid),
      set_(std::move(s)),
      sim_(ctx, sc.grid, set_.step),
      rollout_(sim_),
      initial_(ctx, sc.grid, {"density"}),
      target_(ctx, sc.grid, Location::Cell) {
  if (set_.steps < 1) throw InvalidArgument("--steps must be >= 1");
  if (set_.control_interval < 1 || set_.control_interval > set_.steps)
    throw InvalidArgument("--control-interval " + std::to_string(set_.control_interval) +
                          " must be in [1, --steps = " + std::to_string(set_.steps) + "]");
  if (set_.keyframes.empty()) set_.keyframes = {set_.steps};
  for (std::size_t i = 0; i < set_.keyframes.size(); ++i) {
    const int k = set_.keyframes[i];
    if (k < 1 || k > set_.steps)
      throw InvalidArgument("--keyframes: step " + std::to_string(k) + " is outside [1, " +
                            std::to_string(set_.steps) + "]");
    // A repeated keyframe would count its error twice in the loss.
    if (std::find(set_.keyframes.begin(), set_.keyframes.begin() + i, k) !=
        set_.keyframes.begin() + i)
      throw InvalidArgument("--keyframes: step " + std::to_string(k) +
                            " is given twice; list each keyframe once");
  }
  if (!(set_.effort >= 0)) throw InvalidArgument("--effort must be >= 0");

  initial_.scalars[0].assign(ctx, std::vector<T>(sc.initial.begin(), sc.initial.end()));
  target_.assign(ctx, std::vector<T>(sc.target.begin(), sc.target.end()));
  target_norm2_ = 0;
  for (double v : sc.target)
    target_norm2_ += v * v;
  for (int k : set_.keyframes) {
    ScalarKeyframe<T> kf;
    kf.name = "keyframe";
    kf.step = k;
    kf.target = &target_;
    kf.weight = 1.0 / target_norm2_;
    losses_.keyframes.push_back(kf);
  }
  losses_.force_effort = set_.effort;

  for (int a = 0; a < grid_.dim; ++a) {
    const auto e = grid_.face_extents(a);
    face_count_ += Index(e[0]) * e[1] * e[2];
  }
  nctrl_ = (set_.steps + set_.control_interval - 1) / set_.control_interval;
  P_ = face_count_ * (nctrl_ + (set_.optimize_velocity ? 1 : 0));
  if (P_ >= (Index(1) << 31))
    throw InvalidArgument("the control has " + std::to_string(P_) +
                          " unknowns (more than 2^31); raise --control-interval");
  pgrid_ = Grid::make_1d(int(P_), 1.0);
  x_ = Field<T>(ctx, pgrid_, Location::Cell);
  for (int c = 0; c < nctrl_; ++c)
    forces_.emplace_back(ctx, grid_);
  if (set_.smoothing < 0 || set_.smoothing > 1e3)
    throw InvalidArgument("--control-smoothing " + std::to_string(set_.smoothing) +
                          " must be in [0, 1000] cells");
  smooth_alpha_ = grid_.dim == 3 ? 0.15 : 0.2;
  smooth_steps_ = int(std::ceil(set_.smoothing * set_.smoothing / (2 * smooth_alpha_)));
  smooth_tmp_ = MacVelocity<T>(ctx, grid_);
  smooth_tmp2_ = MacVelocity<T>(ctx, grid_);
  controls_.resize(std::size_t(set_.steps));
  for (int k = 0; k < set_.steps; ++k)
    controls_[k].force = &forces_[std::size_t(k / set_.control_interval)];
}

template <class T>
ControlMemory ControlProblem<T>::estimate_memory(const Context& ctx, const Grid& grid,
                                                 const ProblemSettings& s, bool optimize_velocity,
                                                 int optimizer_vectors) {
  const SimulationMemory sim = Simulation<T>::estimate_memory(ctx, grid, s.step, 1);
  std::size_t faces = 0;  // values of one MAC field
  for (int a = 0; a < grid.dim; ++a) {
    const auto e = grid.face_extents(a);
    faces += std::size_t(e[0]) * std::size_t(e[1]) * std::size_t(e[2]);
  }
  const std::size_t cells = std::size_t(grid.cells());
  const std::size_t mac = faces * sizeof(T);
  const std::size_t steps = std::size_t(std::max(1, s.steps));
  const std::size_t interval = std::size_t(std::max(1, s.control_interval));
  const std::size_t controls = (steps + interval - 1) / interval;
  const std::size_t parameters = mac * (controls + (optimize_velocity ? 1 : 0));
  const std::size_t stored =
      s.budget.device_bytes > 0 ? s.budget.device_bytes : (steps + 1) * sim.state;
  ControlMemory m;
  m.context = sim.with_adjoint()               // the simulation, a state, a step's adjoint
              + stored                         // checkpoints (every state without a budget)
              + 4 * sim.state                  // the rollout's working and cotangent states
              + steps * mac                    // the per-step force gradients it returns
              + sim.state + cells * sizeof(T)  // initial state, target
              + (controls + 2) * mac           // force fields, smoothing temporaries
              + parameters * std::size_t(2 + std::max(0, optimizer_vectors));  // x, grad
  m.host = 2 * cells * sizeof(double);  // the scenario's initial and target densities
  return m;
}

template <class T>
MacVelocity<T> ControlProblem<T>::mac_at(const Field<T>& x, Index offset) const {
  std::array<T*, 3> p{nullptr, nullptr, nullptr};
  Index o = offset;
  for (int a = 0; a < grid_.dim; ++a) {
    p[a] = x.data() + o;
    const auto e = grid_.face_extents(a);
    o += Index(e[0]) * e[1] * e[2];
  }
  return MacVelocity<T>::wrap(grid_, p, x.space());
}

template <class T>
MacVelocity<T> ControlProblem<T>::control_view(const Field<T>& x, int c) const {
  return mac_at(x, face_count_ * (c + (set_.optimize_velocity ? 1 : 0)));
}

template <class T>
MacVelocity<T> ControlProblem<T>::velocity_view(const Field<T>& x) const {
  if (!set_.optimize_velocity)
    throw InvalidArgument("velocity_view: the velocity is not optimized");
  return mac_at(x, 0);
}

template <class T>
RolloutOptions ControlProblem<T>::rollout_options() const {
  RolloutOptions o;
  o.force_gradients = true;
  o.source_gradients = false;
  o.buoyancy_gradient = false;
  if (set_.budget.device_bytes > 0) {
    o.checkpointing.enabled = true;
    o.checkpointing.budget = set_.budget;
  }
  return o;
}

template <class T>
void ControlProblem<T>::set_initial_velocity(const Field<T>& x) {
  if (!set_.optimize_velocity) return;
  const MacVelocity<T> v = velocity_view(x);
  copy(ctx_, v, initial_.velocity);
}

template <class T>
void ControlProblem<T>::update_forces(const Field<T>& x) {
  // nu = alpha (dx = 1 cell, dt = 1): one explicit diffusion step per smoothing step.
  const T nu = T(smooth_alpha_ * grid_.dx * grid_.dx);
  for (int c = 0; c < nctrl_; ++c) {
    const MacVelocity<T> z = control_view(x, c);
    if (smooth_steps_ == 0) {
      copy(ctx_, z, forces_[c]);
      continue;
    }
    // Ping-pong so that the last step writes forces_[c].
    const MacVelocity<T>* in = &z;
    for (int m = 0; m < smooth_steps_; ++m) {
      MacVelocity<T>& out = m == smooth_steps_ - 1 ? forces_[c]
                            : (m % 2 == 0)         ? smooth_tmp_
                                                   : smooth_tmp2_;
      diffuse_explicit(ctx_, *in, nu, T(1), out);
      in = &out;
    }
  }
}

template <class T>
double ControlProblem<T>::evaluate(const Field<T>& x, Field<T>& grad) {
  set_initial_velocity(x);
  update_forces(x);
  rollout_.run(initial_, set_.steps, controls_, losses_, rollout_options(), result_);
  const RolloutResult<T>& r = result_;
  const T nu = T(smooth_alpha_ * grid_.dx * grid_.dx);
  for (int c = 0; c < nctrl_; ++c) {
    // Gradient with respect to f_c: the sum over the interval's steps.
    MacVelocity<T>& gf = smooth_steps_ == 0 ? smooth_tmp_ : smooth_tmp2_;
    fill(ctx_, gf, T(0));
    const int k0 = c * set_.control_interval;
    const int k1 = std::min(set_.steps, k0 + set_.control_interval);
    for (int k = k0; k < k1; ++k)
      for (int a = 0; a < grid_.dim; ++a)
        axpy(ctx_, T(1), r.grad_force[k][a], gf[a]);
    // Through the smoothing: gz = (S^T)^m gf; the last application writes the gradient slice.
    MacVelocity<T> gz = control_view(grad, c);
    if (smooth_steps_ == 0) {
      copy(ctx_, gf, gz);
      continue;
    }
    MacVelocity<T>* in = &gf;
    for (int m = 0; m < smooth_steps_; ++m) {
      MacVelocity<T>& out =
          m == smooth_steps_ - 1 ? gz : (in == &smooth_tmp2_ ? smooth_tmp_ : smooth_tmp2_);
      fill(ctx_, out, T(0));  // the library's adjoints accumulate
      diffuse_explicit_adjoint(ctx_, *in, nu, T(1), out);
      in = &out;
    }
  }
  if (set_.optimize_velocity) {
    MacVelocity<T> g = velocity_view(grad);
    copy(ctx_, r.grad_initial.velocity, g);
  }
  terms_ = r.loss_terms;
  return r.loss;
}

template <class T>
KeyframeErrors ControlProblem<T>::forward(
    bool controlled, const std::function<void(int, const SmokeState<T>&)>& on_state) {
  SmokeState<T> s(ctx_, grid_, {"density"});
  copy(ctx_, initial_.scalars[0], s.scalars[0]);
  if (controlled) {
    set_initial_velocity(x_);
    update_forces(x_);
  }
  if (controlled && set_.optimize_velocity) copy(ctx_, initial_.velocity, s.velocity);
  Field<T> diff(ctx_, grid_, Location::Cell);
  KeyframeErrors out;
  static const StepControls<T> none{};
  if (on_state) on_state(0, s);
  for (int k = 1; k <= set_.steps; ++k) {
    sim_.step(s, controlled ? controls_[std::size_t(k - 1)] : none);
    if (on_state) on_state(k, s);
    for (int kf : set_.keyframes)
      if (kf == k) {
        copy(ctx_, s.scalars[0], diff);
        axpy(ctx_, T(-1), target_, diff);
        out.relative.push_back(std::sqrt(dot(ctx_, diff, diff) / target_norm2_));
      }
  }
  double acc = 0;
  for (double e : out.relative)
    acc += e * e;
  out.rms = std::sqrt(acc / double(out.relative.size()));
  return out;
}

template <class T>
std::string ControlProblem<T>::plan_report() {
  if (set_.budget.device_bytes > 0) {
    try {
      return rollout_.plan(initial_, set_.steps, rollout_options()).describe();
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("--memory-budget " + std::to_string(set_.budget.device_bytes) +
                            " bytes: " + e.what() + " (raise --memory-budget)");
    }
  }
  const checkpoint::StateSize size = rollout_.state_size(initial_, set_.steps, rollout_options());
  char line[160];
  std::snprintf(line, sizeof line,
                "no --memory-budget: the backward pass keeps all %d states (%.1f MiB each)\n",
                set_.steps, double(size.state_bytes) / 1048576.0);
  return line;
}

template class ControlProblem<float>;
template class ControlProblem<double>;

}  // namespace dfluid::control
