// Rollout gradients: forward with stored states, then step adjoints in reverse
// with the loss terms of each state added when that state is current.
#include "dfluid/rollout.hpp"

#include <algorithm>

#include <string>
#include <utility>

#include "dfluid/field_ops.hpp"
#include "core/finite_flags.hpp"
#include "rollout/rollout_internal.hpp"

namespace dfluid {

namespace {

using detail::clone_shape;
using detail::copy_state;
using detail::same_layout;

/// Zeroes a field (a memset, like the zero fill of a new one).
template <class T>
void zero(const Context& ctx, Field<T>& f) {
  detail::zero_bytes(ctx, f.data(), sizeof(T) * std::size_t(f.size()), f.space());
}
template <class T>
void zero(const Context& ctx, MacVelocity<T>& u) {
  for (int a = 0; a < u.dim(); ++a)
    zero(ctx, u[a]);
}

std::string loss_at(const std::string& kind, const std::string& name, int step) {
  return kind + " '" + name + "' at step " + std::to_string(step);
}

void check_step(const std::string& kind, const std::string& name, int step, int n) {
  if (step < 0 || step > n)
    throw InvalidArgument(loss_at(kind, name, step) + ": the step is outside [0, " +
                          std::to_string(n) + "] (state indices of a " + std::to_string(n) +
                          "-step rollout)");
}

}  // namespace

template <class T>
void StoreAllStates<T>::save(int step, const SmokeState<T>& state) {
  Entry& e = states_[step];
  if (!same_layout(e.state, state)) e.state = clone_shape(ctx_, state);
  e.state.scalar_names = state.scalar_names;
  copy_state(ctx_, state, e.state);
  e.saved = true;
}

template <class T>
void StoreAllStates<T>::load(int step, SmokeState<T>& state) {
  auto it = states_.find(step);
  if (it == states_.end() || !it->second.saved)
    throw InvalidArgument("StoreAllStates: no state saved for step " + std::to_string(step));
  copy_state(ctx_, it->second.state, state);
}

template <class T>
void StoreAllStates<T>::clear() {
  for (auto& kv : states_)
    kv.second.saved = false;
}

template <class T>
std::size_t StoreAllStates<T>::size() const {
  std::size_t n = 0;
  for (const auto& kv : states_)
    n += kv.second.saved ? 1 : 0;
  return n;
}

template <class T>
Rollout<T>::Rollout(Simulation<T>& sim, StateStore<T>* store)
    : sim_(sim), store_(store), own_store_(sim.context()), ws_(std::make_shared<Workspace>()) {
  if (!store_) store_ = &own_store_;
  const Context& ctx = sim.context();
  diff_ = Field<T>(ctx, sim.grid(), Location::Cell);
  diff_u_ = MacVelocity<T>(ctx, sim.grid());
}

template <class T>
void Rollout<T>::release_workspace() {
  own_store_.release();
  ws_->slots.reset();
  ws_->state = SmokeState<T>();
}

template <class T>
SmokeState<T>& Rollout<T>::work_state(const SmokeState<T>& like) {
  if (!same_layout(ws_->state, like)) ws_->state = clone_shape(sim_.context(), like);
  ws_->state.scalar_names = like.scalar_names;
  return ws_->state;
}

template <class T>
void Rollout<T>::prepare_result(RolloutResult<T>& r, const SmokeState<T>& initial, int n,
                                const RolloutOptions& opt) const {
  const Context& ctx = sim_.context();
  const Grid& g = sim_.grid();
  const int ns = int(initial.scalars.size());
  auto on_grid = [&](const Field<T>& f, Location loc) {
    return !f.empty() && f.grid() == g && f.location() == loc && f.owning();
  };
  auto mac_on_grid = [&](const MacVelocity<T>& u) {
    if (u.dim() != g.dim) return false;
    for (int a = 0; a < g.dim; ++a)
      if (!on_grid(u[a], face_location(a))) return false;
    return true;
  };
  auto scalars_on_grid = [&](const std::vector<Field<T>>& q) {
    if (int(q.size()) != ns) return false;
    for (const Field<T>& f : q)
      if (!on_grid(f, Location::Cell)) return false;
    return true;
  };
  r.loss = 0;
  r.loss_terms.clear();
  r.grad_buoyancy = 0;
  r.grad_viscosity = 0;
  r.grad_scalar_diffusivity = 0;
  r.grad_boundary.wall = WallVelocity{};
  for (auto& axis : r.grad_boundary.inflow)
    for (auto& side : axis)
      std::fill(side.begin(), side.end(), 0.0);  // keeps the vectors (no allocation when warm)
  r.forward_reports.assign(std::size_t(n), StepReport{});
  r.adjoint_reports.assign(std::size_t(n), StepReport{});
  r.checkpointing.reset();

  if (mac_on_grid(r.grad_initial.velocity) && scalars_on_grid(r.grad_initial.scalars)) {
    zero(ctx, r.grad_initial.velocity);
    for (Field<T>& f : r.grad_initial.scalars)
      zero(ctx, f);
  } else {
    r.grad_initial = SmokeGradient<T>(ctx, g, ns);
  }
  if (!(mac_on_grid(r.final_state.velocity) && scalars_on_grid(r.final_state.scalars) &&
        on_grid(r.final_state.pressure, Location::Cell)))
    r.final_state = clone_shape(ctx, initial);
  r.final_state.scalar_names = initial.scalar_names;

  if (!opt.force_gradients) r.grad_force.clear();
  if (opt.force_gradients) {
    r.grad_force.resize(std::size_t(n));
    for (MacVelocity<T>& f : r.grad_force)
      if (mac_on_grid(f))
        zero(ctx, f);
      else
        f = MacVelocity<T>(ctx, g);
  }
  if (!opt.source_gradients) r.grad_source.clear();
  if (opt.source_gradients) {
    r.grad_source.resize(std::size_t(n));
    for (std::vector<Field<T>>& s : r.grad_source) {
      if (scalars_on_grid(s)) {
        for (Field<T>& f : s)
          zero(ctx, f);
        continue;
      }
      s.clear();
      for (int i = 0; i < ns; ++i)
        s.emplace_back(ctx, g, Location::Cell);
    }
  }
}

template <class T>
void Rollout<T>::validate(const SmokeState<T>& initial, int n,
                          const std::vector<StepControls<T>>& controls,
                          const RolloutLosses<T>& losses) const {
  const Grid& g = sim_.grid();
  if (n < 1) throw InvalidArgument("Rollout: steps = " + std::to_string(n) + " must be >= 1");
  check::on_grid(initial.velocity[0], "initial.velocity", g, Location::FaceX);
  const int ns = int(initial.scalars.size());
  if (!controls.empty() && int(controls.size()) != n)
    throw InvalidArgument("Rollout: controls has " + std::to_string(controls.size()) +
                          " entries for " + std::to_string(n) + " steps (use 0 or " +
                          std::to_string(n) + ")");
  for (std::size_t k = 0; k < controls.size(); ++k) {
    const std::string at = " of step " + std::to_string(k);
    if (controls[k].force)
      for (int a = 0; a < g.dim; ++a)
        check::same_shape((*controls[k].force)[a], ("controls.force" + at).c_str(),
                          initial.velocity[a], "state.velocity");
    if (int(controls[k].sources.size()) > ns)
      throw InvalidArgument("controls.sources" + at + " has " +
                            std::to_string(controls[k].sources.size()) + " entries for " +
                            std::to_string(ns) + " scalar(s)");
    for (const Field<T>* s : controls[k].sources)
      if (s) check::on_grid(*s, ("controls.sources" + at).c_str(), g, Location::Cell);
  }
  for (const auto& kf : losses.keyframes) {
    check_step("keyframe", kf.name, kf.step, n);
    if (kf.scalar < 0 || kf.scalar >= ns)
      throw InvalidArgument(loss_at("keyframe", kf.name, kf.step) + ": scalar " +
                            std::to_string(kf.scalar) + " not in [0, " + std::to_string(ns) + ")");
    if (!kf.target)
      throw InvalidArgument(loss_at("keyframe", kf.name, kf.step) + ": target is null");
    const std::string t = loss_at("keyframe", kf.name, kf.step) + " target";
    check::on_grid(*kf.target, t.c_str(), g, Location::Cell);
    if (kf.mask) {
      const std::string m = loss_at("keyframe", kf.name, kf.step) + " mask";
      check::on_grid(*kf.mask, m.c_str(), g, Location::Cell);
    }
  }
  for (const auto& vt : losses.velocity_targets) {
    check_step("velocity target", vt.name, vt.step, n);
    if (!vt.target)
      throw InvalidArgument(loss_at("velocity target", vt.name, vt.step) + ": target is null");
    const std::string t = loss_at("velocity target", vt.name, vt.step) + " target";
    for (int a = 0; a < g.dim; ++a)
      check::same_shape((*vt.target)[a], t.c_str(), initial.velocity[a], "state.velocity");
  }
  for (const auto& u : losses.user) {
    if (!u.fn) throw InvalidArgument("user loss '" + u.name + "': fn is empty");
    for (int k : u.steps)
      check_step("user loss", u.name, k, n);
  }
  for (const auto& f : losses.obstacle_forces) {
    const std::string what = "obstacle force loss '" + f.name + "'";
    if (!sim_.obstacles() && !sim_.has_obstacle_fractions())
      throw InvalidArgument(what +
                            ": the Simulation has no obstacles; pass its ObstacleMask to "
                            "the Simulation's constructor (or set_obstacle_fractions)");
    for (int k : f.steps)
      if (k < 1 || k > n)
        throw InvalidArgument(what + ": step " + std::to_string(k) + " not in [1, " +
                              std::to_string(n) + "] (the force needs the pressure of a step)");
    if (!std::isfinite(f.weight)) throw InvalidArgument(what + ": weight must be finite");
    if (f.body) check::on_grid(*f.body, (what + ": body").c_str(), g, Location::Cell);
    for (int a = 0; a < 3; ++a) {
      if (!std::isfinite(f.direction[a]))
        throw InvalidArgument(what + ": direction must be finite");
      if (a >= g.dim && f.direction[a] != 0)
        throw InvalidArgument(what + ": direction[" + std::to_string(a) + "] must be 0 on a " +
                              std::to_string(g.dim) + "D grid");
    }
  }
}

template <class T>
std::vector<int> Rollout<T>::force_loss_steps(const ObstacleForceLoss<T>& loss, int n) {
  if (!loss.steps.empty()) return loss.steps;
  std::vector<int> all;
  for (int k = 1; k <= n; ++k)
    all.push_back(k);
  return all;
}

template <class T>
void Rollout<T>::prepare_obstacle_terms(RolloutResult<T>& r, int n, const RolloutLosses<T>& losses,
                                        const RolloutOptions& opt) {
  const Context& ctx = sim_.context();
  steps_ = n;
  grad_wall_ = nullptr;
  const Grid& g = sim_.grid();
  // The pressure's cotangent: for force losses (they read the pressure), and with the
  // incremental pressure correction (each step reads its input pressure); it ends as the
  // initial pressure's gradient.
  if (losses.obstacle_forces.empty() && !sim_.config().incremental_pressure()) {
    r.grad_initial.pressure = Field<T>();  // no pressure cotangent: no extra solves
  } else {
    if (r.grad_initial.pressure.empty() || r.grad_initial.pressure.grid() != g)
      r.grad_initial.pressure = Field<T>(ctx, g, Location::Cell);
    zero(ctx, r.grad_initial.pressure);
  }
  if (!opt.obstacle_wall_velocity_gradient) {
    r.grad_obstacle_wall_velocity = MacVelocity<T>();
  } else {
    if (r.grad_obstacle_wall_velocity[0].empty() || r.grad_obstacle_wall_velocity.grid() != g)
      r.grad_obstacle_wall_velocity = MacVelocity<T>(ctx, g);
    zero(ctx, r.grad_obstacle_wall_velocity);
    grad_wall_ = &r.grad_obstacle_wall_velocity;
  }
}

template <class T>
void Rollout<T>::begin_losses(const std::vector<StepControls<T>>& controls,
                              const RolloutLosses<T>& losses, const RolloutOptions* gradients) {
  const int dim = sim_.grid().dim;
  const bool buoyancy = gradients && gradients->buoyancy_gradient;
  const bool viscosity = gradients && gradients->viscosity_gradient;
  const bool diffusivity = gradients && gradients->scalar_diffusivity_gradient;
  // The boundary gradient's slots follow the coefficients' (zeroed with them).
  const int boundary = gradients && gradients->boundary_gradient
                           ? int(VelocityBoundaryGradient::slots(sim_.grid()))
                           : 0;
  const int coefficients = int(buoyancy) + int(viscosity) + int(diffusivity) + boundary;
  std::size_t slots = std::size_t(coefficients) + losses.keyframes.size() +
                      losses.velocity_targets.size() * std::size_t(dim);
  for (const auto& f : losses.obstacle_forces)  // pressure, shear and wall terms per axis
    slots += force_loss_steps(f, steps_).size() * 3 * std::size_t(dim);
  for (const auto& c : controls) {
    if (losses.force_effort != 0 && c.force) slots += std::size_t(dim);
    if (losses.source_effort != 0)
      for (const Field<T>* src : c.sources)
        if (src) ++slots;
  }
  if (Index(slots) > loss_slots_.size()) {
    const Context& ctx = sim_.context();
    loss_slots_ = Buffer<double>(ctx, Index(slots), ctx.memory_space());
  }
  loss_slots_used_ = 0;
  loss_entries_.clear();
  buoyancy_slot_ = viscosity_slot_ = diffusivity_slot_ = boundary_slots_ = nullptr;
  if (coefficients > 0) {  // the first slots, zeroed: the step adjoints add into them on the device
    const Context& ctx = sim_.context();
    detail::zero_bytes(ctx, loss_slots_.data(), sizeof(double) * std::size_t(coefficients),
                       ctx.memory_space());  // a memset
    if (buoyancy) buoyancy_slot_ = loss_slots_.data() + loss_slots_used_++;
    if (viscosity) viscosity_slot_ = loss_slots_.data() + loss_slots_used_++;
    if (diffusivity) diffusivity_slot_ = loss_slots_.data() + loss_slots_used_++;
    if (boundary) {
      boundary_slots_ = loss_slots_.data() + loss_slots_used_;
      loss_slots_used_ += boundary;
    }
  }
}

template <class T>
void Rollout<T>::finish_losses(std::vector<double>& per_state, double& effort,
                               std::map<std::string, double>* terms, RolloutResult<T>* r) {
  const Context& ctx = sim_.context();
  std::vector<double> v(static_cast<std::size_t>(loss_slots_used_));
  if (loss_slots_used_ > 0) {
    read_doubles(ctx, loss_slots_.data(), loss_slots_used_, v.data());  // host wait
    detail::raise_flagged(ctx);  // the checks enqueued before that wait, read for free
  } else {
    raise_nonfinite(ctx);  // a wait only when checks are pending
  }
  double nu_explicit = 0;  // the losses' own viscosity dependence (LossEntry::nu_scale)
  for (const LossEntry& e : loss_entries_) {
    double x = e.host_value;
    if (e.slots > 0) {
      double sum = 0;  // in slot order: as dot_mac sums its components
      for (int i = 0; i < e.slots; ++i)
        sum += v[std::size_t(e.first_slot + i)];
      x = e.scale * sum;
      nu_explicit += e.nu_scale * sum;
    }
    if (e.state < 0)
      effort += x;
    else
      per_state[std::size_t(e.state)] += x;
    if (terms) (*terms)[e.name] += x;
  }
  auto slot_value = [&](const double* slot) { return v[std::size_t(slot - loss_slots_.data())]; };
  if (r && buoyancy_slot_) r->grad_buoyancy = slot_value(buoyancy_slot_);
  if (r && viscosity_slot_) r->grad_viscosity = slot_value(viscosity_slot_) + nu_explicit;
  if (r && diffusivity_slot_) r->grad_scalar_diffusivity = slot_value(diffusivity_slot_);
  if (r && boundary_slots_)  // read with the losses: no host wait of its own
    r->grad_boundary.add_slots(sim_.grid(), v.data() + (boundary_slots_ - loss_slots_.data()));
  loss_entries_.clear();
  loss_slots_used_ = 0;
  buoyancy_slot_ = viscosity_slot_ = diffusivity_slot_ = boundary_slots_ = nullptr;
}

template <class T>
void Rollout<T>::check_gradient_options(const RolloutOptions& opt) const {
  const StepConfig& c = sim_.config();
  for (const char* name : {"viscosity_gradient", "scalar_diffusivity_gradient"}) {
    const bool wanted = name[0] == 'v' ? opt.viscosity_gradient : opt.scalar_diffusivity_gradient;
    if (!wanted) continue;
    if (c.diffusion == DiffusionMode::None)
      throw InvalidArgument(std::string("RolloutOptions::") + name +
                            ": the simulation has no diffusion (StepConfig::diffusion is None); "
                            "set it to Explicit or Implicit, or turn the option off");
    if (std::find(c.order.begin(), c.order.end(), StepPart::Diffuse) == c.order.end())
      throw InvalidArgument(std::string("RolloutOptions::") + name +
                            ": StepConfig::order has no Diffuse part; add one, or turn the "
                            "option off");
  }
}

template <class T>
void Rollout<T>::state_losses(int k, const SmokeState<T>& s, const RolloutLosses<T>& losses,
                              SmokeGradient<T>* grad) {
  const Context& ctx = sim_.context();
  auto slot = [&](int i) { return loss_slots_.data() + loss_slots_used_ + i; };
  auto record = [&](const std::string& name, double scale, int slots, double nu_scale = 0) {
    loss_entries_.push_back({k, name, scale, loss_slots_used_, slots, 0.0, nu_scale});
    loss_slots_used_ += slots;
  };
  for (const auto& kf : losses.keyframes) {
    if (kf.step != k) continue;
    const Field<T>& q = s.scalars[kf.scalar];
    if (!kf.mask) {
      copy(ctx, q, diff_);
      axpy(ctx, T(-1), *kf.target, diff_);
      dot_into(ctx, diff_, diff_, slot(0));
      if (grad) axpy(ctx, T(kf.weight), diff_, grad->scalars[kf.scalar]);
    } else {
      masked_squared_error_into(ctx, q, *kf.target, *kf.mask, slot(0),
                                grad ? &grad->scalars[kf.scalar] : nullptr, kf.weight);
    }
    record(kf.name, 0.5 * kf.weight, 1);
  }
  for (const auto& vt : losses.velocity_targets) {
    if (vt.step != k) continue;
    copy(ctx, s.velocity, diff_u_);
    for (int a = 0; a < s.velocity.dim(); ++a) {
      axpy(ctx, T(-1), (*vt.target)[a], diff_u_[a]);
      dot_into(ctx, diff_u_[a], diff_u_[a], slot(a));
    }
    record(vt.name, 0.5 * vt.weight, s.velocity.dim());
    if (grad)
      for (int a = 0; a < s.velocity.dim(); ++a)
        axpy(ctx, T(vt.weight), diff_u_[a], grad->velocity[a]);
  }
  for (const auto& f : losses.obstacle_forces) {
    const std::vector<int> steps = force_loss_steps(f, steps_);
    const double w = f.weight / double(steps.size());
    const ObstacleWall<T>& wall = sim_.obstacle_wall();
    for (int step : steps) {
      if (step != k) continue;
      const ObstacleForceCoefficients<T>& c = sim_.body_force_coefficients(f.body);
      for (int a = 0; a < s.velocity.dim(); ++a) {
        if (f.direction[a] == 0) continue;
        const double da = w * f.direction[a];
        dot_into(ctx, c.pressure[a], s.pressure, slot(0));
        record(f.name, da * c.pressure_scale, 1);
        // The shear terms scale with nu: a viscosity gradient reads them even at nu = 0.
        const double per_nu = viscosity_slot_ ? c.shear_scale_per_nu : 0.0;
        if (c.shear_scale == 0 && per_nu == 0) continue;
        dot_into(ctx, c.shear[a], s.velocity[a], slot(0));
        record(f.name, da * c.shear_scale, 1, da * per_nu);
        if (!wall.wall_velocity) continue;
        dot_into(ctx, c.shear_wall[a], (*wall.wall_velocity)[a], slot(0));
        record(f.name, -da * c.shear_scale, 1, -da * per_nu);
      }
      if (grad) {
        sim_.obstacle_force_adjoint_on(f.direction, w, *grad, f.body);
        if (wall.wall_velocity && grad_wall_)
          sim_.obstacle_force_wall_gradient_on(f.direction, w, *grad_wall_, f.body);
      }
    }
  }
  for (const auto& u : losses.user) {
    for (int step : u.steps) {
      if (step != k) continue;
      const int ns = int(s.scalars.size());
      // (The velocity check: a state without scalars matches the empty scratch's count.)
      if (user_grad_.velocity[0].empty() || int(user_grad_.scalars.size()) != ns)
        user_grad_ = SmokeGradient<T>(ctx, sim_.grid(), ns);
      else {
        fill(ctx, user_grad_.velocity, T(0));
        for (auto& f : user_grad_.scalars)
          fill(ctx, f, T(0));
      }
      loss_entries_.push_back({k, u.name, 1.0, 0, 0, u.fn(k, s, user_grad_), 0.0});
      if (grad) {
        for (int a = 0; a < s.velocity.dim(); ++a)
          axpy(ctx, T(1), user_grad_.velocity[a], grad->velocity[a]);
        for (int i = 0; i < ns; ++i)
          axpy(ctx, T(1), user_grad_.scalars[i], grad->scalars[i]);
      }
    }
  }
}

template <class T>
double Rollout<T>::loss(const SmokeState<T>& initial, int n,
                        const std::vector<StepControls<T>>& controls,
                        const RolloutLosses<T>& losses) {
  validate(initial, n, controls, losses);
  const Context& ctx = sim_.context();
  SmokeState<T> cur = clone_shape(ctx, initial);
  copy_state(ctx, initial, cur);
  static const StepControls<T> none{};
  steps_ = n;
  grad_wall_ = nullptr;
  begin_losses(controls, losses, nullptr);
  state_losses(0, cur, losses, nullptr);
  for (int k = 0; k < n; ++k) {
    sim_.step(cur, controls.empty() ? none : controls[k]);
    state_losses(k + 1, cur, losses, nullptr);
  }
  for (const auto& c : controls)
    record_effort(c, losses);
  std::vector<double> per_state(std::size_t(n) + 1, 0.0);
  double total = 0, effort = 0;
  finish_losses(per_state, effort, nullptr);
  for (double v : per_state)
    total += v;
  return total + effort;
}

template <class T>
void Rollout<T>::effort_terms(const std::vector<StepControls<T>>& controls,
                              const RolloutLosses<T>& losses, const RolloutOptions& opt,
                              RolloutResult<T>& r) {
  const Context& ctx = sim_.context();
  const Grid& g = sim_.grid();
  for (int k = 0; k < int(controls.size()); ++k) {
    const StepControls<T>& c = controls[k];
    record_effort(c, losses);  // values read at the end of the run (finish_losses)
    if (losses.force_effort != 0 && c.force && opt.force_gradients)
      for (int a = 0; a < g.dim; ++a)
        axpy(ctx, T(losses.force_effort), (*c.force)[a], r.grad_force[k][a]);
    if (losses.source_effort != 0 && opt.source_gradients)
      for (std::size_t i = 0; i < c.sources.size(); ++i)
        if (c.sources[i]) axpy(ctx, T(losses.source_effort), *c.sources[i], r.grad_source[k][i]);
  }
}

template <class T>
void Rollout<T>::record_effort(const StepControls<T>& c, const RolloutLosses<T>& losses) {
  const Context& ctx = sim_.context();
  if (losses.force_effort != 0 && c.force) {
    const int dim = c.force->dim();
    for (int a = 0; a < dim; ++a)
      dot_into(ctx, (*c.force)[a], (*c.force)[a], loss_slots_.data() + loss_slots_used_ + a);
    loss_entries_.push_back(
        {-1, "force_effort", 0.5 * losses.force_effort, loss_slots_used_, dim, 0.0, 0.0});
    loss_slots_used_ += dim;
  }
  if (losses.source_effort != 0)
    for (const Field<T>* src : c.sources)
      if (src) {
        dot_into(ctx, *src, *src, loss_slots_.data() + loss_slots_used_);
        loss_entries_.push_back(
            {-1, "source_effort", 0.5 * losses.source_effort, loss_slots_used_, 1, 0.0, 0.0});
        ++loss_slots_used_;
      }
}

template <class T>
void Rollout<T>::reverse_step(int k, const SmokeState<T>& input, const StepControls<T>& controls,
                              const RolloutLosses<T>& losses, const RolloutOptions& opt,
                              SmokeGradient<T>& grad, RolloutResult<T>& r) {
  const Context& ctx = sim_.context();
  const int ns = int(input.scalars.size());
  StepControlGradient<T> cg;
  if (opt.force_gradients) cg.force = &r.grad_force[k];
  if (opt.source_gradients)
    for (int i = 0; i < ns; ++i)
      cg.sources.push_back(&r.grad_source[k][i]);
  // Added on the device, read at the end of the run.
  cg.buoyancy = buoyancy_slot_;
  cg.viscosity = viscosity_slot_;
  cg.scalar_diffusivity = diffusivity_slot_;
  cg.boundary_slots = boundary_slots_;     // on the device (when asked)
  cg.obstacle_wall_velocity = grad_wall_;  // on the device
  try {
    r.adjoint_reports[k] = sim_.step_adjoint(input, controls, grad, &cg);
  } catch (const NonFiniteValue& e) {
    // A later step's cotangent check, read during this step's solve, names its own step.
    const auto* flagged = dynamic_cast<const detail::FlaggedNonFinite*>(&e);
    if (flagged && flagged->tag() == detail::kFlagRollout) throw;
    throw NonFiniteValue("rollout adjoint of step " + std::to_string(k) + ": " + e.what());
  }
  if (opt.check_finite) {
    // On the device, no host wait: read by the next step adjoint's pressure solve, or at
    // the end of run().
    const std::string at = "rollout adjoint of step " + std::to_string(k) + ": ";
    for (int a = 0; a < sim_.grid().dim; ++a)
      detail::flag_nonfinite(ctx, grad.velocity[a], at + "velocity cotangent",
                             detail::kFlagRollout);
    for (int i = 0; i < ns; ++i)
      detail::flag_nonfinite(ctx, grad.scalars[i],
                             at + "cotangent of scalar '" + input.scalar_names[i] + "'",
                             detail::kFlagRollout);
  }
  state_losses(k, input, losses, &grad);
}

template <class T>
RolloutResult<T> Rollout<T>::run(const SmokeState<T>& initial, int n,
                                 const std::vector<StepControls<T>>& controls,
                                 const RolloutLosses<T>& losses, const RolloutOptions& opt) {
  RolloutResult<T> r;
  run(initial, n, controls, losses, opt, r);
  return r;
}

template <class T>
void Rollout<T>::run(const SmokeState<T>& initial, int n,
                     const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
                     const RolloutOptions& opt, RolloutResult<T>& r) {
  // Warm adjoint solves for this run only, from a cleared start (RolloutOptions).
  struct AdjointStart {
    Simulation<T>& sim;
    bool was;
    AdjointStart(Simulation<T>& s, bool on) : sim(s), was(s.adjoint_warm_start()) {
      sim.set_adjoint_warm_start(on);
    }
    ~AdjointStart() { sim.set_adjoint_warm_start(was); }
  } adjoint_start(sim_, opt.warm_adjoint_solves);
  if (opt.checkpointing.enabled) {
    run_checkpointed(initial, n, controls, losses, opt, r);
    return;
  }
  validate(initial, n, controls, losses);
  check_gradient_options(opt);
  const int ns = int(initial.scalars.size());
  static const StepControls<T> none{};
  auto ctrl = [&](int k) -> const StepControls<T>& {
    return controls.empty() ? none : controls[k];
  };
  ws_->slots.reset();  // a checkpointed run's slots: this run stores every state instead
  prepare_result(r, initial, n, opt);
  prepare_obstacle_terms(r, n, losses, opt);
  // Everything the backward pass needs before the first step (the adjoint's replay buffers
  // and temporaries), so that a lack of memory shows before any work is done.
  sim_.reserve_adjoint(ns);
  SmokeState<T>& work = work_state(initial);

  // ---- forward: save state k before step k; the result's final state is the current one ----
  SmokeState<T>& cur = r.final_state;
  copy_state(sim_.context(), initial, cur);
  store_->clear();
  for (int k = 0; k < n; ++k) {
    store_->save(k, cur);
    r.forward_reports[k] = sim_.step(cur, ctrl(k));
  }

  // ---- gradients of the controls' effort terms ----
  begin_losses(controls, losses, &opt);
  effort_terms(controls, losses, opt, r);

  // ---- backward ----
  SmokeGradient<T>& grad = r.grad_initial;
  state_losses(n, cur, losses, &grad);
  for (int k = n - 1; k >= 0; --k) {
    store_->load(k, work);
    reverse_step(k, work, ctrl(k), losses, opt, grad, r);
  }
  // One host wait: every loss value, and the last steps' cotangent checks.
  std::vector<double> per_state(std::size_t(n) + 1, 0.0);
  double effort = 0;
  finish_losses(per_state, effort, &r.loss_terms, &r);
  for (double v : per_state)
    r.loss += v;
  r.loss += effort;
}

template class StoreAllStates<float>;
template class StoreAllStates<double>;
template class Rollout<float>;
template class Rollout<double>;

}  // namespace dfluid
