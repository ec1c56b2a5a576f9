// Step composition (plain C++ on the public operator API; no kernels here).
#include "dfluid/simulation.hpp"

#include <cmath>
#include <utility>

#include "dfluid/diffusion.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/forces.hpp"

namespace dfluid {

const char* to_string(StepPart p) {
  switch (p) {
    case StepPart::AdvectScalars:
      return "advect-scalars";
    case StepPart::AdvectVelocity:
      return "advect-velocity";
    case StepPart::Forces:
      return "forces";
    case StepPart::Diffuse:
      return "diffuse";
    case StepPart::Project:
      return "project";
  }
  return "?";
}

StepPart parse_step_part(const std::string& s) {
  for (StepPart p : {StepPart::AdvectScalars, StepPart::AdvectVelocity, StepPart::Forces,
                     StepPart::Diffuse, StepPart::Project})
    if (s == to_string(p)) return p;
  throw InvalidArgument("step part '" + s +
                        "': use advect-scalars, advect-velocity, forces, diffuse or project");
}

const char* to_string(DiffusionMode m) {
  switch (m) {
    case DiffusionMode::None:
      return "none";
    case DiffusionMode::Explicit:
      return "explicit";
    case DiffusionMode::Implicit:
      return "implicit";
  }
  return "?";
}

DiffusionMode parse_diffusion_mode(const std::string& s) {
  if (s == "none") return DiffusionMode::None;
  if (s == "explicit") return DiffusionMode::Explicit;
  if (s == "implicit") return DiffusionMode::Implicit;
  throw InvalidArgument("diffusion mode '" + s + "': use none, explicit or implicit");
}

void StepConfig::validate(const Grid& g, int num_scalars) const {
  check::positive_dt(dt, "StepConfig.dt");
  if (!std::isfinite(buoyancy)) throw InvalidArgument("StepConfig.buoyancy must be finite");
  if (buoyancy != 0 && (buoyancy_scalar < 0 || buoyancy_scalar >= num_scalars))
    throw InvalidArgument("StepConfig.buoyancy_scalar = " + std::to_string(buoyancy_scalar) +
                          ": the state has " + std::to_string(num_scalars) + " scalar(s)");
  if (up_axis < 0 || up_axis >= g.dim)
    throw InvalidArgument("StepConfig.up_axis = " + std::to_string(up_axis) + ": must be < " +
                          std::to_string(g.dim));
  if (!(viscosity >= 0) || !std::isfinite(viscosity))
    throw InvalidArgument("StepConfig.viscosity must be finite and >= 0");
  if (!(scalar_diffusivity >= 0) || !std::isfinite(scalar_diffusivity))
    throw InvalidArgument("StepConfig.scalar_diffusivity must be finite and >= 0");
  dfluid::validate(pressure, "StepConfig.pressure");
  dfluid::validate(diffusion_solver, "StepConfig.diffusion_solver");
}

template <class T>
SmokeState<T>::SmokeState(const Context& ctx, const Grid& g, std::vector<std::string> names)
    : velocity(ctx, g), scalar_names(std::move(names)), pressure(ctx, g, Location::Cell) {
  for (std::size_t i = 0; i < scalar_names.size(); ++i)
    scalars.emplace_back(ctx, g, Location::Cell);
}

template <class T>
int SmokeState<T>::scalar_index(const std::string& name) const {
  std::string known;
  for (std::size_t i = 0; i < scalar_names.size(); ++i) {
    if (scalar_names[i] == name) return int(i);
    known += (i ? ", " : "") + scalar_names[i];
  }
  throw InvalidArgument("scalar '" + name + "' not in the state (it has: " + known + ")");
}

namespace {
// Puts a freshly computed field into the state: a swap when the state owns its
// memory (no copy), a copy when it wraps the caller's buffers (they stay put).
template <class T>
void place(const Context& ctx, Field<T>& state, Field<T>& fresh) {
  if (state.owning())
    std::swap(state, fresh);
  else
    copy(ctx, fresh, state);
}
template <class T>
void place(const Context& ctx, MacVelocity<T>& state, MacVelocity<T>& fresh) {
  for (int a = 0; a < state.dim(); ++a)
    place(ctx, state[a], fresh[a]);
}
}  // namespace

template <class T>
Simulation<T>::Simulation(const Context& ctx, const Grid& grid, StepConfig config,
                          const ObstacleMask* obstacles)
    : ctx_(ctx),
      grid_(grid),
      config_(std::move(config)),
      obstacles_(obstacles),
      solver_(ctx, grid, obstacles),
      scalar_tmp_(ctx, grid, Location::Cell),
      scalar_scratch_(ctx, grid, Location::Cell),
      velocity_tmp_(ctx, grid),
      velocity_scratch_(ctx, grid) {
  if (config_.diffusion == DiffusionMode::Explicit && config_.viscosity > 0 &&
      config_.dt > max_stable_diffusion_dt(grid, config_.viscosity))
    throw UnstableTimeStep("StepConfig.dt = " + std::to_string(config_.dt) +
                               " is unstable for explicit diffusion with viscosity " +
                               std::to_string(config_.viscosity) + "; the largest stable dt is " +
                               std::to_string(max_stable_diffusion_dt(grid, config_.viscosity)) +
                               " (or use implicit diffusion)",
                           max_stable_diffusion_dt(grid, config_.viscosity));
}

template <class T>
void Simulation<T>::check_inputs(const SmokeState<T>& s, const StepControls<T>& c) const {
  check::on_grid(s.velocity[0], "state.velocity", grid_, Location::FaceX);
  config_.validate(grid_, int(s.scalars.size()));
  if (s.scalars.size() != s.scalar_names.size())
    throw InvalidArgument("state: " + std::to_string(s.scalars.size()) + " scalars but " +
                          std::to_string(s.scalar_names.size()) + " names");
  if (c.sources.size() > s.scalars.size())
    throw InvalidArgument("controls.sources has " + std::to_string(c.sources.size()) +
                          " entries for " + std::to_string(s.scalars.size()) + " scalar(s)");
  for (std::size_t i = 0; i < s.scalars.size(); ++i)
    check::on_grid(s.scalars[i], "state.scalars", grid_, Location::Cell);
  if (!config_.check_finite) return;
  for (int a = 0; a < grid_.dim; ++a)
    check_finite(ctx_, s.velocity[a], "state.velocity");
  for (std::size_t i = 0; i < s.scalars.size(); ++i)
    check_finite(ctx_, s.scalars[i], ("state scalar '" + s.scalar_names[i] + "'").c_str());
  if (c.force)
    for (int a = 0; a < grid_.dim; ++a)
      check_finite(ctx_, (*c.force)[a], "controls.force");
  for (const Field<T>* src : c.sources)
    if (src) check_finite(ctx_, *src, "controls.sources");
}

template <class T>
void Simulation<T>::advect_scalars(SmokeState<T>& s) {
  for (auto& q : s.scalars) {
    advect(ctx_, q, s.velocity, config_.dt, scalar_tmp_, config_.scalar_advection,
           &scalar_scratch_);
    place(ctx_, q, scalar_tmp_);
  }
}

template <class T>
void Simulation<T>::advect_velocity(SmokeState<T>& s) {
  advect(ctx_, s.velocity, s.velocity, config_.dt, velocity_tmp_, config_.velocity_advection,
         &velocity_scratch_);
  place(ctx_, s.velocity, velocity_tmp_);
}

template <class T>
void Simulation<T>::add_forces(SmokeState<T>& s, const StepControls<T>& c) {
  // Sources first, so that buoyancy already feels this step's inflow (the order
  // of the published smoke-plume setup).
  const T dt = T(config_.dt);
  for (std::size_t i = 0; i < c.sources.size(); ++i)
    if (c.sources[i]) add_source(ctx_, s.scalars[i], *c.sources[i], dt, obstacles_);
  if (config_.buoyancy != 0)
    add_buoyancy(ctx_, s.velocity, s.scalars[config_.buoyancy_scalar], T(config_.buoyancy), dt,
                 config_.up_axis, obstacles_);
  if (c.force) add_force(ctx_, s.velocity, *c.force, dt, obstacles_);
}

template <class T>
SolveReport Simulation<T>::diffuse(SmokeState<T>& s) {
  SolveReport last;
  if (config_.diffusion == DiffusionMode::None) return last;
  const T dt = T(config_.dt);
  const bool implicit = config_.diffusion == DiffusionMode::Implicit;
  if (config_.viscosity > 0) {
    const T nu = T(config_.viscosity);
    if (implicit)
      last = diffuse_implicit(ctx_, s.velocity, nu, dt, velocity_tmp_, config_.diffusion_solver);
    else
      diffuse_explicit(ctx_, s.velocity, nu, dt, velocity_tmp_);
    place(ctx_, s.velocity, velocity_tmp_);
  }
  if (config_.scalar_diffusivity > 0) {
    const T kappa = T(config_.scalar_diffusivity);
    for (auto& q : s.scalars) {
      const ScalarBoundary& bc = config_.scalar_advection.boundary;
      if (implicit)
        last = diffuse_implicit(ctx_, q, kappa, dt, scalar_tmp_, bc, config_.diffusion_solver);
      else
        diffuse_explicit(ctx_, q, kappa, dt, scalar_tmp_, bc);
      place(ctx_, q, scalar_tmp_);
    }
  }
  return last;
}

template <class T>
StepReport Simulation<T>::step(SmokeState<T>& s, const StepControls<T>& c) {
  check_inputs(s, c);
  StepReport report;
  for (StepPart part : config_.order) {
    switch (part) {
      case StepPart::AdvectScalars:
        advect_scalars(s);
        break;
      case StepPart::AdvectVelocity:
        advect_velocity(s);
        break;
      case StepPart::Forces:
        add_forces(s, c);
        break;
      case StepPart::Diffuse:
        report.diffusion = diffuse(s);
        break;
      case StepPart::Project: {
        report.pressure =
            solver_.project(ctx_, s.velocity, s.pressure, T(config_.dt), config_.pressure);
        break;
      }
    }
  }
  return report;
}

template struct SmokeState<float>;
template struct SmokeState<double>;
template class Simulation<float>;
template class Simulation<double>;

}  // namespace dfluid
