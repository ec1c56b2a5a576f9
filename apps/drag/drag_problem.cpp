#include "drag/drag_problem.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dfluid::drag {
namespace {

ObstacleMask make_mask(const Context& ctx, const Channel& ch) {
  ObstacleMask m(ctx, ch.grid, Location::Cell);
  m.assign(ctx, ch.solid);
  return m;
}

}  // namespace

template <class T>
StepConfig DragProblem<T>::step_config(const Channel& ch, double dt, double tolerance) {
  StepConfig c;
  c.dt = dt;
  // Semi-Lagrangian velocity advection (the default): the only scheme whose gradient with
  // respect to a wall velocity is exact. Viscosity implicitly: stable at any dt.
  c.diffusion = DiffusionMode::Implicit;
  c.viscosity = ch.viscosity;
  c.pressure.rel_tol = tolerance;
  c.diffusion_solver.rel_tol = std::min(tolerance, 1e-6);
  // A face-fraction cylinder: the incremental correction. Without it the projection leaves
  // a slip of dt G p at the wall each step, which the ghost-fluid wall's shear (its 1/theta
  // up to 1000 next to the surface) reads as force: measured C_D 21.9 at the default dt
  // against 6.1 for the staircase (11.6 at dt / 4).
  if (!ch.node_distance.empty()) c.pressure_correction = PressureCorrection::Incremental;
  return c;
}

template <class T>
DragProblem<T>::DragProblem(const Context& ctx, const Channel& ch, ProblemSettings s)
    : ctx_(ctx),
      ch_(ch),
      set_(std::move(s)),
      mask_(make_mask(ctx, ch)),
      // A face-fraction cylinder: no mask (the rest of the step would see its staircase).
      sim_(ctx, ch.grid, set_.step, ch.node_distance.empty() ? &mask_ : nullptr),
      rollout_(sim_),
      initial_(ctx, ch.grid, {}) {
  if (set_.steps < 2) throw InvalidArgument("--steps must be >= 2");
  if (set_.average_steps == 0) set_.average_steps = set_.steps / 2;
  if (set_.average_steps < 1 || set_.average_steps > set_.steps)
    throw InvalidArgument("--average-steps " + std::to_string(set_.average_steps) +
                          " must be in [1, --steps = " + std::to_string(set_.steps) + "]");
  if (!(set_.regularization >= 0)) throw InvalidArgument("--regularization must be >= 0");
  if (!ch.node_distance.empty())
    sim_.set_obstacle_fractions(face_open_fractions<T>(ctx, ch.grid, ch.node_distance),
                                face_center_distance<T>(ctx, ch.grid, ch.node_distance));
  ObstacleWall<T> wall;
  wall.kind = ObstacleWallKind::NoSlip;
  if (set_.control == ControlKind::Rotation) {
    const std::array<double, 3> c{ch_.center[0], ch_.center[1], 0};
    unit_rotation_ = rigid_rotation_velocity<T>(ctx, ch_.grid, c, 1.0);
    wall_velocity_ = MacVelocity<T>(ctx, ch_.grid);
    fill(ctx, wall_velocity_, T(0));
    wall.wall_velocity = &wall_velocity_;
  }
  sim_.set_obstacle_wall(wall);

  // The mean drag coefficient over the window, C_D = 2 F_x / (U² D_ref) per state (the loss
  // averages over its steps itself).
  ObstacleForceLoss<T> drag;
  drag.name = "drag";
  for (int k = window_start(); k <= set_.steps; ++k)
    drag.steps.push_back(k);
  drag.direction = {1, 0, 0};
  drag.weight = 2.0 / (kMeanInflow * kMeanInflow * ch_.reference_length);
  losses_.obstacle_forces.push_back(drag);

  if (set_.control == ControlKind::Inflow) {
    if (set_.modes < 1 || set_.modes > int(ch_.base_inflow.size()))
      throw InvalidArgument("--modes " + std::to_string(set_.modes) + " must be in [1, " +
                            std::to_string(ch_.base_inflow.size()) +
                            "] (the faces of the inflow side)");
    // Cosines m = 1..M; with a free flow rate also m = 0, which scales the profile.
    const int first = set_.fixed_flux ? 1 : 0;
    const double h = kChannelHeight;
    for (int m = first; m <= set_.modes; ++m) {
      std::vector<double> c(ch_.base_inflow.size());
      for (std::size_t j = 0; j < c.size(); ++j)
        c[j] = std::cos(m * M_PI * (double(j) + 0.5) * ch_.grid.dx / h);
      modes_.push_back(c);
    }
  }
  // The optimizer needs two unknowns: one mode (fixed rate) or rotation get a second entry.
  P_ = std::max<Index>(2, Index(modes_.size()));
  pgrid_ = Grid::make_1d(int(P_), 1.0);
  x_ = Field<T>(ctx, pgrid_, Location::Cell);
  set_profile(ch_.base_inflow);
}

template <class T>
std::vector<double> DragProblem<T>::inflow_profile(const std::vector<T>& x) const {
  if (set_.control != ControlKind::Inflow) return ch_.base_inflow;
  // u_j = u0_j e^{s_j}, s_j = Σ_m z_m cos(m π y_j / H), rescaled to the base flow rate when it
  // is fixed.
  std::vector<double> u(ch_.base_inflow);
  double rate = 0, base_rate = 0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    double sj = 0;
    for (std::size_t m = 0; m < modes_.size(); ++m)
      sj += double(x[m]) * modes_[m][j];
    u[j] *= std::exp(sj);
    rate += u[j];
    base_rate += ch_.base_inflow[j];
  }
  if (set_.fixed_flux)
    for (double& v : u)
      v *= base_rate / rate;
  return u;
}

template <class T>
double DragProblem<T>::rotation_rate(const std::vector<T>& x) const {
  if (set_.control != ControlKind::Rotation) return 0;
  return 2 * kMeanInflow * double(x[0]) / ch_.reference_length;
}

template <class T>
void DragProblem<T>::set_rotation(double omega) {
  if (set_.control != ControlKind::Rotation) return;
  for (int a = 0; a < ch_.grid.dim; ++a) {
    fill(ctx_, wall_velocity_[a], T(0));
    axpy(ctx_, T(omega), unit_rotation_[a], wall_velocity_[a]);
  }
}

template <class T>
void DragProblem<T>::set_profile(const std::vector<double>& u) {
  VelocityBoundary vb;
  vb.inflow[0][0] = u;
  sim_.set_velocity_boundary(vb);
}

template <class T>
RolloutOptions DragProblem<T>::rollout_options() const {
  RolloutOptions o;
  o.force_gradients = false;
  o.source_gradients = false;
  o.buoyancy_gradient = false;
  o.boundary_gradient = set_.control == ControlKind::Inflow;
  o.obstacle_wall_velocity_gradient = set_.control == ControlKind::Rotation;
  if (set_.budget.device_bytes > 0) {
    o.checkpointing.enabled = true;
    o.checkpointing.budget = set_.budget;
  }
  return o;
}

template <class T>
double DragProblem<T>::evaluate(const Field<T>& x, Field<T>& grad) {
  const std::vector<T> xv = x.to_vector(ctx_);
  if (set_.control == ControlKind::Rotation) {
    set_rotation(rotation_rate(xv));
    rollout_.run(initial_, set_.steps, {}, losses_, rollout_options(), result_);
    // d loss / d a = (dω/da) <d loss / d W, R>, plus the regularization λ/2 a².
    double dw = 0;
    for (int a = 0; a < ch_.grid.dim; ++a)
      dw += dot(ctx_, result_.grad_obstacle_wall_velocity[a], unit_rotation_[a]);
    const double a = double(xv[0]);
    const double reg = 0.5 * set_.regularization * a * a;
    grad.assign(ctx_,
                {T(2 * kMeanInflow / ch_.reference_length * dw + set_.regularization * a), T(0)});
    terms_ = result_.loss_terms;
    terms_["regularization"] = reg;
    return result_.loss + reg;
  }
  const std::vector<double> u = inflow_profile(xv);
  set_profile(u);
  rollout_.run(initial_, set_.steps, {}, losses_, rollout_options(), result_);
  const std::vector<double>& gu = result_.grad_boundary.inflow[0][0];
  const std::size_t n = u.size();
  // Through the parametrization: du_j/ds_k = u_j δ_jk, minus u_j u_k / Σ u at a fixed rate,
  // so g_s = u (g - the flux-weighted mean of g) (free rate: g_s = u g); then
  // g_z_m = Σ_j g_s_j cos(m π y_j / H), plus the regularization's λ z_m.
  double flux_mean = 0, rate = 0;
  for (std::size_t j = 0; j < n; ++j) {
    flux_mean += gu[j] * u[j];
    rate += u[j];
  }
  flux_mean /= rate;
  double reg = 0;
  std::vector<T> gz(xv.size(), T(0));  // an unused second entry keeps gradient 0
  for (std::size_t m = 0; m < modes_.size(); ++m) {
    const double z = double(xv[m]);
    reg += 0.5 * set_.regularization * z * z;
    double gm = set_.regularization * z;
    for (std::size_t j = 0; j < n; ++j)
      gm += u[j] * (set_.fixed_flux ? gu[j] - flux_mean : gu[j]) * modes_[m][j];
    gz[m] = T(gm);
  }
  grad.assign(ctx_, gz);
  terms_ = result_.loss_terms;
  terms_["regularization"] = reg;
  return result_.loss + reg;
}

template <class T>
DragHistory DragProblem<T>::forward(
    bool controlled, const std::function<void(int, const SmokeState<T>&)>& on_state) {
  const std::vector<T> xv = x_.to_vector(ctx_);
  set_profile(controlled ? inflow_profile(xv) : ch_.base_inflow);
  set_rotation(controlled ? rotation_rate(xv) : 0.0);
  SmokeState<T> s(ctx_, ch_.grid, {});
  DragHistory h;
  const double to_coefficient = 2.0 / (kMeanInflow * kMeanInflow * ch_.reference_length);
  for (int k = 0; k <= set_.steps; ++k) {
    if (k > 0) sim_.step(s);
    const std::array<double, 3> f = sim_.obstacle_force(s);
    h.drag.push_back(to_coefficient * f[0]);
    h.lift.push_back(to_coefficient * f[1]);
    if (k >= window_start()) {
      h.mean_drag += h.drag.back() / set_.average_steps;
      h.mean_lift += h.lift.back() / set_.average_steps;
    }
    if (on_state) on_state(k, s);
  }
  return h;
}

template <class T>
std::string DragProblem<T>::plan_report() {
  if (set_.budget.device_bytes > 0) {
    try {
      return rollout_.plan(initial_, set_.steps, rollout_options(), &losses_).describe();
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("--memory-budget " + std::to_string(set_.budget.device_bytes) +
                            " bytes: " + e.what() + " (raise --memory-budget)");
    }
  }
  const checkpoint::StateSize size =
      rollout_.state_size(initial_, set_.steps, rollout_options(), nullptr, &losses_);
  char line[160];
  std::snprintf(line, sizeof line,
                "no --memory-budget: the backward pass keeps all %d states (%.1f MiB each)\n",
                set_.steps, double(size.state_bytes) / 1048576.0);
  return line;
}

template class DragProblem<float>;
template class DragProblem<double>;

}  // namespace dfluid::drag
