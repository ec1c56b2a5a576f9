// Step composition (plain C++ on the public operator API; no kernels here).
#include "dfluid/simulation.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

#include "dfluid/diffusion.hpp"
#include "dfluid/face_fractions.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/forces.hpp"
#include "core/finite_flags.hpp"
#include "step/place.hpp"
#include "step/step_pool.hpp"

namespace dfluid {

using detail::place;

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

const char* to_string(PressureCorrection m) {
  return m == PressureCorrection::Incremental ? "incremental" : "non-incremental";
}

PressureCorrection parse_pressure_correction(const std::string& s) {
  if (s == "non-incremental") return PressureCorrection::NonIncremental;
  if (s == "incremental") return PressureCorrection::Incremental;
  throw InvalidArgument("pressure correction '" + s + "': use non-incremental or incremental");
}

bool StepConfig::incremental_pressure() const {
  return pressure_correction == PressureCorrection::Incremental &&
         diffusion == DiffusionMode::Implicit && viscosity > 0 &&
         std::find(order.begin(), order.end(), StepPart::Project) != order.end();
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

/// True when the grid has a side with prescribed values (Inflow, MovingWall): the step
/// adjoint then has a boundary gradient to gather.
bool has_boundary_values(const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (g.boundary[a][s] == BoundaryKind::Inflow || g.boundary[a][s] == BoundaryKind::MovingWall)
        return true;
  return false;
}

bool has_convective_outflow_side(const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (g.boundary[a][s] == BoundaryKind::ConvectiveOutflow) return true;
  return false;
}

/// Simulation::boundary_scratch_: one step's wall-velocity reduction (kWallSlots doubles),
/// then the accumulator of a step adjoint that returns the gradient on the host (slots(g)).
std::size_t boundary_scratch_doubles(const Grid& g) {
  return VelocityBoundaryGradient::kWallSlots + VelocityBoundaryGradient::slots(g);
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
  const bool convective = has_convective_outflow_side(grid);
  for (int a = 0; a < grid.dim; ++a)
    for (int side = 0; side < 2; ++side)
      if (grid.boundary[a][side] == BoundaryKind::Inflow) {
        const auto m = Index(VelocityBoundary::side_faces(grid, a));
        inflow_values_[a][side] = Buffer<T>(ctx, m, ctx.memory_space());
        if (convective) inflow_grad_[a][side] = Buffer<T>(ctx, m, ctx.memory_space());
      } else if (grid.boundary[a][side] == BoundaryKind::ConvectiveOutflow) {
        const auto m = Index(VelocityBoundary::side_faces(grid, a));
        convective_values_[a][side] = Buffer<T>(ctx, m, ctx.memory_space());
        convective_grad_[a][side] = Buffer<T>(ctx, m, ctx.memory_space());
      }
  if (has_boundary_values(grid)) {
    // Zeroed once: the step scratch's entries that no MovingWall side writes stay 0.
    boundary_scratch_ =
        Buffer<double>(ctx, Index(boundary_scratch_doubles(grid)), ctx.memory_space());
    detail::zero_bytes(ctx, boundary_scratch_.data(), boundary_scratch_.bytes(),
                       boundary_scratch_.space());
  }
  if (config_.diffusion == DiffusionMode::Explicit && config_.viscosity > 0 &&
      config_.dt > max_stable_diffusion_dt(grid, config_.viscosity))
    throw UnstableTimeStep("StepConfig.dt = " + std::to_string(config_.dt) +
                               " is unstable for explicit diffusion with viscosity " +
                               std::to_string(config_.viscosity) + "; the largest stable dt is " +
                               std::to_string(max_stable_diffusion_dt(grid, config_.viscosity)) +
                               " (or use implicit diffusion)",
                           max_stable_diffusion_dt(grid, config_.viscosity));
}

namespace {

// Bytes of one Field<T> at `loc` on `g`: Field allocates exactly its extents (no padding).
template <class T>
std::size_t field_bytes(const Grid& g, Location loc) {
  const std::array<int, 3> e = extents_of(g, loc);
  return sizeof(T) * std::size_t(e[0]) * std::size_t(e[1]) * std::size_t(e[2]);
}
template <class T>
std::size_t mac_bytes(const Grid& g) {
  std::size_t b = 0;
  for (int a = 0; a < g.dim; ++a)
    b += field_bytes<T>(g, face_location(a));
  return b;
}

// The scalars of a CG solve (KrylovWorkspace::scalars, cuda/pressure/krylov.hpp: kScalarCount
// doubles), plus kRegionArrays doubles per floating region (counted with the null space below).
constexpr std::size_t kKrylovScalarBytes = 14 * sizeof(double);
constexpr std::size_t kKrylovRegionBytes = 7 * sizeof(double);

// What PressureSolver<T> allocates (cuda/pressure/projection.cpp, cuda/pressure/multigrid.cpp): the
// scaled right-hand side and solution, the CG workspace (r, z, p, q), and the multigrid hierarchy.
// The coarsening below repeats PoissonHierarchy's constructor; the tests
// SimulationMemory.EstimateMatchesAllocations* keep the two in step.
template <class T>
std::size_t pressure_solver_bytes(const Grid& g) {
  const std::size_t cell = field_bytes<T>(g, Location::Cell);
  std::size_t b = 6 * cell + kKrylovScalarBytes;
  b += mac_bytes<T>(g) + cell;  // level 0: face weights and one temporary
  // Coarse levels: every axis of 3 or more cells halves (rounding up) until none can or the
  // level has at most 8 cells, at most 24 levels; each has face weights and x, b, t.
  Grid fine = g;
  for (int levels = 1; levels < 24; ++levels) {
    Grid coarse = fine;
    bool coarsens = false;
    for (int a = 0; a < g.dim; ++a) {
      const int r = fine.n[a] >= 3 ? 2 : 1;
      coarse.n[a] = (fine.n[a] + r - 1) / r;
      coarsens = coarsens || r == 2;
    }
    if (!coarsens || fine.cells() <= 8) break;
    b += mac_bytes<T>(coarse) + 3 * field_bytes<T>(coarse, Location::Cell);
    fine = coarse;
  }
  // Null space: without an Open side the fluid is one floating region, labelled per cell
  // (int32), with its cell count and the CG workspace's values for one region.
  bool open = false;
  for (int a = 0; a < g.dim; ++a)
    open = open || boundary_is_open(g.boundary[a][0]) || boundary_is_open(g.boundary[a][1]);
  if (!open)
    b += sizeof(std::int32_t) * std::size_t(g.cells()) + sizeof(double) + kKrylovRegionBytes;
  return b;
}

// A GPU context's reduction scratch (cuda/core/exec.cpp gpu_reduce_scratch: kReduceBlocks + 1
// doubles).
constexpr std::size_t kGpuReduceScratchBytes = (1024 + 1) * sizeof(double);

}  // namespace

template <class T>
SimulationMemory Simulation<T>::estimate_memory(const Context& ctx, const Grid& g,
                                                const StepConfig& config, int num_scalars,
                                                const ObstacleMemory& obstacles) {
  g.validate();
  if (num_scalars < 0)
    throw InvalidArgument("estimate_memory: num_scalars = " + std::to_string(num_scalars) +
                          " must be >= 0");
  if (obstacles.force_bodies < 0)
    throw InvalidArgument("estimate_memory: obstacles.force_bodies = " +
                          std::to_string(obstacles.force_bodies) + " must be >= 0");
  const auto ns = std::size_t(num_scalars);
  const std::size_t cell = field_bytes<T>(g, Location::Cell);
  const std::size_t mac = mac_bytes<T>(g);
  SimulationMemory m;
  m.state = mac + ns * cell + cell;  // velocity, scalars, pressure

  // Simulation: scalar_tmp_, scalar_scratch_, velocity_tmp_, velocity_scratch_, solver_.
  m.workspace = 2 * cell + 2 * mac + pressure_solver_bytes<T>(g);
  // The inflow profile on every Inflow side, and the boundary gradient's device scratch; with
  // a ConvectiveOutflow side, the profiles' cotangent and its sides' values and cotangent.
  const bool convective = has_convective_outflow_side(g);
  for (int a = 0; a < g.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      const std::size_t faces = sizeof(T) * VelocityBoundary::side_faces(g, a);
      if (g.boundary[a][side] == BoundaryKind::Inflow) m.workspace += (convective ? 2 : 1) * faces;
      if (g.boundary[a][side] == BoundaryKind::ConvectiveOutflow) m.workspace += 2 * faces;
    }
  if (has_boundary_values(g)) m.workspace += sizeof(double) * boundary_scratch_doubles(g);
  // Obstacles (set_obstacle_wall, body_force_coefficients; Rollout::state_size counts the
  // same from its Simulation and losses): the no-slip ghost-filled velocity and face classes,
  // the force coefficients, and the adjoint's pressure-cotangent solve.
  if (obstacles.wall == ObstacleWallKind::NoSlip) {
    m.workspace += mac;
    if (!obstacles.face_fractions)
      for (int a = 0; a < g.dim; ++a)
        m.workspace += field_bytes<std::uint8_t>(g, face_location(a));
  }
  if (obstacles.force_bodies > 0) {
    m.workspace += std::size_t(obstacles.force_bodies) * (2 * mac + std::size_t(g.dim) * cell);
  }
  if (obstacles.face_fractions) m.workspace += mac;  // set_obstacle_fractions' copy
  if (obstacles.face_distance) m.workspace += mac;   // and its face distance
  // A GPU context keeps one device buffer for the partial sums of its reductions.
  if (ctx.on_gpu()) m.workspace += kGpuReduceScratchBytes;

  // step_adjoint (simulation_adjoint.cpp): the replay state, one snapshot per part whose
  // adjoint reads forward values, two gradient temporaries.
  m.adjoint = mac + ns * cell + cell + mac + cell;
  // Each Project part's adjoint pressure (the warm start of set_adjoint_warm_start).
  m.adjoint +=
      std::size_t(std::count(config.order.begin(), config.order.end(), StepPart::Project)) * cell;
  if (obstacles.force_bodies > 0) m.adjoint += cell;  // AdjointScratch::pressure_y
  // A MovingWall side: a zero velocity and the advection of it with a unit wall velocity
  // (the wall velocity's gradient through advection).
  bool moving = false;
  for (int a = 0; a < g.dim; ++a)
    moving = moving || g.boundary[a][0] == BoundaryKind::MovingWall ||
             g.boundary[a][1] == BoundaryKind::MovingWall;
  if (moving) m.adjoint += 2 * mac;
  for (StepPart p : config.order) {
    if (p == StepPart::AdvectScalars) m.adjoint += mac + ns * cell;
    if (p == StepPart::AdvectVelocity) m.adjoint += mac;
    if (p == StepPart::Forces && config.buoyancy != 0) m.adjoint += cell;
  }
  // Every temporary of step() and step_adjoint() comes from the context's pool, which keeps
  // its blocks: implicit solves, MacCormack's q^ and its cotangent, and the deterministic
  // scatter's accumulators (reserved on the CPU path too, see reserve_adjoint). What the pool
  // holds after step() is workspace, what step_adjoint() adds is adjoint.
  std::size_t forward_events = 0;
  const detail::PoolScript script =
      detail::step_pool_script<T>(g, config, num_scalars, &forward_events);
  detail::PoolScript forward;
  forward.events.assign(script.events.begin(),
                        script.events.begin() + std::ptrdiff_t(forward_events));
  forward.blocks = script.blocks;
  detail::PoolModel forward_pool, pool;
  forward_pool.run(forward);
  pool.run(script);
  m.pool = pool.total;
  m.workspace += forward_pool.total;
  m.adjoint += pool.total - forward_pool.total;
  return m;
}

template <class T>
void Simulation<T>::set_diffusion_coefficient(double& member, double v, const char* name) {
  if (!std::isfinite(v) || v < 0 || (v == 0) != (member == 0))
    throw InvalidArgument(std::string("Simulation::set_") + name + "(" + std::to_string(v) +
                          "): the value must be finite, >= 0 and stay " +
                          (member == 0 ? "zero" : "non-zero") + " (it is " +
                          std::to_string(member) + "); make a Simulation with StepConfig." + name +
                          " set instead");
  member = v;
}

template <class T>
void Simulation<T>::set_velocity_boundary(const VelocityBoundary& vb) {
  vb.validate(grid_);
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      Buffer<T>& buf = inflow_values_[a][side];
      if (!buf.data()) continue;
      std::vector<T> v(std::size_t(buf.size()), T(0));
      const std::vector<double>& p = vb.inflow[a][side];
      for (std::size_t i = 0; i < p.size(); ++i)
        v[i] = T(p[i]);
      detail::copy_from_host(ctx_, buf.data(), buf.space(), v.data(), buf.bytes());
    }
  vb_ = vb;
}

template <class T>
void Simulation<T>::set_inflow_faces(MacVelocity<T>& u) {
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      if (inflow_values_[a][side].data())
        set_side_faces(ctx_, u, a, side, inflow_values_[a][side].data());
      // ConvectiveOutflow: the values convective_outflow_update computed at the step's start.
      if (convective_values_[a][side].data())
        set_side_faces(ctx_, u, a, side, convective_values_[a][side].data());
    }
}

/// The Inflow faces' cotangent is the inflow profile's: added to acc's inflow slots (in
/// double, on the device), and the faces zeroed (the forward overwrote them). Null acc: only
/// the zeroing.
template <class T>
void Simulation<T>::take_inflow_gradient(MacVelocity<T>& grad_u, double* acc) {
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      // ConvectiveOutflow faces: their cotangent accumulates (over the step's projections) for
      // convective_outflow_adjoint; nothing upstream of the projection sees those faces.
      if (convective_grad_[a][side].data())
        take_side_faces(ctx_, grad_u, a, side, convective_grad_[a][side].data());
      if (grid_.boundary[a][side] != BoundaryKind::Inflow) continue;
      take_side_faces_into(
          ctx_, grad_u, a, side,
          acc ? acc + VelocityBoundaryGradient::inflow_slot(grid_, a, side) : nullptr);
    }
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
  // Checked on the device, no host wait: reported after the step's pressure solve (its
  // convergence read follows these checks), or before the step returns (see simulation.hpp).
  for (int a = 0; a < grid_.dim; ++a)
    flag_nonfinite(ctx_, s.velocity[a], "state.velocity");
  for (std::size_t i = 0; i < s.scalars.size(); ++i)
    flag_nonfinite(ctx_, s.scalars[i], "state scalar '" + s.scalar_names[i] + "'");
  if (c.force)
    for (int a = 0; a < grid_.dim; ++a)
      flag_nonfinite(ctx_, (*c.force)[a], "controls.force");
  for (const Field<T>* src : c.sources)
    if (src) flag_nonfinite(ctx_, *src, "controls.sources");
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
  AdvectionOptions opt = config_.velocity_advection;
  opt.wall_velocity = vb_.wall;
  const NoSlipObstacle<T> ns = no_slip();
  if (ns.any()) {
    // No-slip obstacles: advect (and trace through) a copy whose interior faces next to the
    // fluid hold the ghost 2 U - u, as the box sides' ghosts do inside advection; a
    // face-fraction body's closed faces hold its velocity U.
    if (ns.mask)
      obstacle_ghost_fill(ctx_, s.velocity, ns, obstacle_ghost_);
    else
      fill_closed_faces(ctx_, fractions_, s.velocity, ns.wall_velocity, obstacle_ghost_);
    advect(ctx_, obstacle_ghost_, obstacle_ghost_, config_.dt, velocity_tmp_, opt,
           &velocity_scratch_);
  } else {
    advect(ctx_, s.velocity, s.velocity, config_.dt, velocity_tmp_, opt, &velocity_scratch_);
  }
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
    // Incremental pressure correction: the viscous step runs on u - dt G p and gets dt G p
    // back, J(u - dt G p) + dt G p, so that the projection only adds the increment.
    const bool incremental = config_.incremental_pressure();
    if (incremental) solver_.add_pressure_gradient(ctx_, s.pressure, -dt, s.velocity);
    if (implicit)
      last = diffuse_implicit(ctx_, s.velocity, nu, dt, velocity_tmp_, config_.diffusion_solver,
                              vb_.wall, no_slip());
    else
      diffuse_explicit(ctx_, s.velocity, nu, dt, velocity_tmp_, vb_.wall, no_slip());
    place(ctx_, s.velocity, velocity_tmp_);
    if (incremental) solver_.add_pressure_gradient(ctx_, s.pressure, dt, s.velocity);
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
std::string Simulation<T>::nonfinite_velocity_message(const SmokeState<T>& s,
                                                      const std::vector<StepPart>& parts) const {
  // The parts that ran (a diffusion part with nothing to diffuse did not).
  const bool diffuses = config_.diffusion != DiffusionMode::None &&
                        (config_.viscosity > 0 || config_.scalar_diffusivity > 0);
  std::string ran;
  for (StepPart p : parts)
    if (p != StepPart::Diffuse || diffuses)
      ran += std::string(ran.empty() ? "" : ", ") + to_string(p);
  std::string msg =
      "Simulation::step: the velocity is not finite (NaN/Inf) before the pressure "
      "projection, after " +
      (ran.empty() ? std::string("nothing else ran") : ran);
  if (!config_.check_finite) msg += " (or on input: StepConfig::check_finite is off)";
  // The usual cause: a buoyancy force beyond the range of T.
  const bool forces_ran = std::find(parts.begin(), parts.end(), StepPart::Forces) != parts.end();
  if (forces_ran && config_.buoyancy != 0) {
    const double q = max_abs(ctx_, s.scalars[std::size_t(config_.buoyancy_scalar)]);
    const double force = std::abs(config_.buoyancy * config_.dt) * q;
    if (!(force <= double(std::numeric_limits<T>::max()))) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    ": |buoyancy · dt| · max %s = %.3g exceeds the range of %s (%.3g)",
                    s.scalar_names[std::size_t(config_.buoyancy_scalar)].c_str(), force,
                    sizeof(T) == 4 ? "float" : "double", double(std::numeric_limits<T>::max()));
      msg += buf;
    }
  }
  return msg;
}

template <class T>
StepReport Simulation<T>::step(SmokeState<T>& s, const StepControls<T>& c) {
  check_inputs(s, c);
  convective_outflow_update(s.velocity);  // from the step's input velocity
  StepReport report;
  for (std::size_t k = 0; k < config_.order.size(); ++k) {
    const StepPart part = config_.order[k];
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
        set_inflow_faces(s.velocity);
        try {
          report.pressure = project_step(s.velocity, s.pressure);
        } catch (const detail::FlaggedNonFinite& e) {
          // project() found its velocity not finite (checked on the device, reported after
          // its solve). The step's own inputs were checked before and reported first, so the
          // velocity came from a part that ran before: say which (host waits on this failure
          // path only). Any other check names itself.
          if (e.tag() != detail::kFlagProjectVelocity) throw;
          const std::vector<StepPart> before(config_.order.begin(),
                                             config_.order.begin() + std::ptrdiff_t(k));
          throw NonFiniteValue(nonfinite_velocity_message(s, before));
        }
        break;
      }
    }
  }
  // Without a pressure solve no host wait has read the input checks: read them now.
  raise_nonfinite(ctx_);
  return report;
}

template <class T>
void Simulation<T>::set_obstacle_fractions(const MacVelocity<T>& open_fractions) {
  if (!obstacles_ && obstacle_wall_.kind == ObstacleWallKind::NoSlip)
    throw InvalidArgument(
        "Simulation::set_obstacle_fractions: the obstacle wall is no-slip, which needs the "
        "body's face distance; pass face_center_distance too, or set_obstacle_wall(FreeSlip) "
        "first");
  install_fractions(open_fractions);
  face_distance_ = MacVelocity<T>();
}

template <class T>
void Simulation<T>::set_obstacle_fractions(const MacVelocity<T>& open_fractions,
                                           const MacVelocity<T>& face_distance) {
  const char* fn = "Simulation::set_obstacle_fractions";
  if (face_distance[0].empty())
    throw ShapeMismatch(std::string(fn) + ": face_distance is empty (not allocated)");
  for (int a = 0; a < grid_.dim; ++a) {
    check::on_grid(face_distance[a], "Simulation::set_obstacle_fractions: face_distance", grid_,
                   face_location(a));
    check::accessible(ctx_, face_distance[a], "Simulation::set_obstacle_fractions: face_distance");
    check::on_grid(open_fractions[a], "Simulation::set_obstacle_fractions: open_fractions", grid_,
                   face_location(a));
  }
  // A face whose centre is in the fluid must be open, or the viscous step would move a
  // velocity the projection then sets to 0 (the two would disagree about the body). A face
  // whose centre is in the solid is closed: the viscous step holds it (its sample point is in
  // the body, where a no-slip wall puts the body's velocity), so left open it would carry a
  // velocity nothing damps (measured: the Schaefer-Turek 2D-1 flow then never settles); its
  // flux next to a no-slip wall is second order small.
  Index closed_fluid = 0;
  MacVelocity<T> open(ctx_, grid_);
  for (int a = 0; a < grid_.dim; ++a) {
    const std::vector<T> d = face_distance[a].to_vector(ctx_);
    std::vector<T> w = open_fractions[a].to_vector(ctx_);
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (!std::isfinite(double(d[i])))
        throw InvalidArgument(std::string(fn) +
                              ": face_distance holds a non-finite value: pass "
                              "face_center_distance of a finite node distance");
      if (d[i] > T(0) && !(w[i] > T(0))) ++closed_fluid;
      if (!(d[i] > T(0))) w[i] = T(0);
    }
    open[a].assign(ctx_, w);
  }
  if (closed_fluid > 0)
    throw InvalidArgument(std::string(fn) + ": " + std::to_string(closed_fluid) +
                          " faces have a positive face_distance (fluid) but an open fraction of "
                          "0; compute both from the same node distance (face_open_fractions, "
                          "face_center_distance)");
  MacVelocity<T> kept(ctx_, grid_);
  copy(ctx_, face_distance, kept);
  install_fractions(open);
  face_distance_ = std::move(kept);
}

template <class T>
void Simulation<T>::install_fractions(const MacVelocity<T>& open_fractions) {
  if (obstacles_)
    throw InvalidArgument(
        "Simulation::set_obstacle_fractions: this Simulation has an ObstacleMask, whose "
        "staircase the rest of the step would still see; construct it without the mask");
  solver_ = PressureSolver<T>(ctx_, grid_, open_fractions);
  fractions_ = MacVelocity<T>(ctx_, grid_);
  copy(ctx_, open_fractions, fractions_);
  force_coef_.reset();  // the force is now the fractions' (simulation_obstacle.cpp)
  body_coef_.clear();   // and each body's too
}

template <class T>
void Simulation<T>::set_obstacle_wall(const ObstacleWall<T>& wall) {
  if (wall.kind == ObstacleWallKind::NoSlip && !obstacles_ && !has_obstacle_face_distance())
    throw InvalidArgument(
        "Simulation::set_obstacle_wall: no-slip walls need obstacles; pass the ObstacleMask to "
        "the Simulation's constructor, or set_obstacle_fractions with the face distance");
  if (wall.kind == ObstacleWallKind::NoSlip && !obstacles_ &&
      config_.diffusion == DiffusionMode::Explicit)
    throw InvalidArgument(
        "Simulation::set_obstacle_wall: a no-slip face-fraction body needs implicit diffusion "
        "(its wall terms would make the explicit step's stable dt depend on the cut); set "
        "StepConfig::diffusion = DiffusionMode::Implicit");
  if (wall.wall_velocity) {
    if (wall.kind != ObstacleWallKind::NoSlip)
      throw InvalidArgument(
          "Simulation::set_obstacle_wall: a wall_velocity is the tangential velocity of no-slip "
          "walls; set kind = ObstacleWallKind::NoSlip (or drop the wall_velocity)");
    for (int a = 0; a < grid_.dim; ++a) {
      check::on_grid((*wall.wall_velocity)[a], "set_obstacle_wall: wall_velocity", grid_,
                     face_location(a));
      check::accessible(ctx_, (*wall.wall_velocity)[a], "set_obstacle_wall: wall_velocity");
    }
  }
  if (wall.kind != obstacle_wall_.kind) {
    force_coef_.reset();
    body_coef_.clear();
  }
  obstacle_wall_ = wall;
  if (wall.kind == ObstacleWallKind::NoSlip && obstacle_ghost_[0].empty()) {
    obstacle_ghost_ = MacVelocity<T>(ctx_, grid_);
    // The mask is read once, here (a face-fraction body has no classes).
    if (obstacles_) obstacle_face_classes(ctx_, *obstacles_, face_classes_);
  }
}

template struct SmokeState<float>;
template struct SmokeState<double>;
template class Simulation<float>;
template class Simulation<double>;

}  // namespace dfluid
